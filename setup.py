# Copyright (c) diffmtl contributors. All rights reserved.
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name):
    """Requirement lines of requirements/<name>.txt (comments dropped)."""
    path = osp.join(HERE, 'requirements', f'{name}.txt')
    with open(path, encoding='utf-8') as f:
        lines = [ln.split('#', 1)[0].strip() for ln in f]
    return [ln for ln in lines if ln and not ln.startswith('-')]


def read_readme():
    with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
        return f.read()


def read_version():
    namespace = {}
    with open(osp.join(HERE, 'diffmtl', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='diffmtl',
    version=read_version(),
    description='DiffusionMTL multi-task dense prediction from partially '
    'annotated data, as an OpenMMLab (MMSegmentation) extension',
    long_description=read_readme(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['diffmtl', 'diffmtl.*']),
    # Python >= 3.10 with the default (onedl) stack, >= 3.8 with openmmlab
    python_requires='>=3.8',
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    install_requires=read_requirements('runtime'),
    # One OpenMMLab stack as an extra, so that installing diffmtl never
    # pulls one stack over the other: pip install "diffmtl[onedl]" (pure
    # Python, the default) or "diffmtl[openmmlab]" (mmcv 2.1.0 with ops,
    # built from source; see docs/en/get_started.md).
    extras_require=dict(
        onedl=read_requirements('onedl'),
        openmmlab=read_requirements('openmmlab'),
        tests=read_requirements('tests')),
    # The study runner starts its runs with `python -m diffmtl.cli.train`
    # and `diffmtl.cli.test`, so an installed diffmtl needs no checkout.
    entry_points={
        'console_scripts': [
            'diffmtl-train = diffmtl.cli.train:main',
            'diffmtl-test = diffmtl.cli.test:main',
            'diffmtl-study = diffmtl.cli.study:main',
        ]
    },
    license='Apache-2.0',
    zip_safe=False,
)
