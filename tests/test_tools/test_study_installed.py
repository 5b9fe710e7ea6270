# Copyright (c) diffmtl contributors. All rights reserved.
"""An installed diffmtl runs a study without the checkout: a wheel of the
package, installed into a folder that is the only diffmtl on
``PYTHONPATH``, trains and tests a tiny study from a directory outside the
checkout that holds the study's configs."""
import json
import os
import shutil
import subprocess
import sys

import pytest
from test_run_study import STUDY
from tool_runner import REPO

from diffmtl.datasets.synthetic import generate_synthetic_scenes

pytestmark = pytest.mark.slow

MAX_ITERS = 4
PROBE = ('import importlib.util, json, sys, diffmtl; print(json.dumps('
         '[diffmtl.__file__, importlib.util.find_spec("projects") is None, '
         'sys.path]))')


def _run(cmd, cwd, env=None, timeout=600):
    proc = subprocess.run([str(c) for c in cmd], cwd=str(cwd), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    return proc.stdout


def _install_wheel(tmp_path):
    """Build a wheel of diffmtl and install it into ``tmp_path/site``.

    The wheel is built from a copy of the package sources, so the build
    leaves no ``build/`` folder in the checkout.
    """
    src = tmp_path / 'src'
    src.mkdir()
    for name in ('setup.py', 'README.md'):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / 'requirements', src / 'requirements')
    shutil.copytree(REPO / 'diffmtl', src / 'diffmtl',
                    ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
    pip = [sys.executable, '-m', 'pip', '--disable-pip-version-check']
    dist, site = tmp_path / 'dist', tmp_path / 'site'
    _run(pip + ['wheel', '--no-deps', '--no-build-isolation', '--no-index',
                src, '-w', dist], tmp_path)
    (wheel, ) = dist.glob('diffmtl-*.whl')
    _run(pip + ['install', '--no-deps', '--no-index', '--target', site,
                wheel], tmp_path)
    return site


def test_installed_wheel_runs_a_study_outside_the_checkout(tmp_path):
    site = _install_wheel(tmp_path)
    (entry_points, ) = site.glob('diffmtl-*.dist-info/entry_points.txt')
    for line in ('diffmtl-train = diffmtl.cli.train:main',
                 'diffmtl-test = diffmtl.cli.test:main',
                 'diffmtl-study = diffmtl.cli.study:main'):
        assert line in entry_points.read_text()
    assert not (site / 'setup.py').exists()

    # a directory outside the checkout with the configs the study names
    outside = tmp_path / 'outside'
    shutil.copytree(REPO / 'configs', outside / 'configs')
    root = tmp_path / 'scenes'
    generate_synthetic_scenes(
        str(root), num_train=6, num_val=1, num_test=3, seed=2, workers=1)
    study = STUDY.replace('seeds = [0, 1]', 'seeds = [0]')
    (outside / 'tiny_study.py').write_text(
        study.format(root=root, iters=MAX_ITERS))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ('PYTHONPATH', 'LOCAL_RANK',
                     'DIFFMTL_TRUSTED_CHECKPOINTS')
    }
    env.update(PYTHONPATH=str(site), OMP_NUM_THREADS='1')

    # there, diffmtl is the installed one and the checkout is unreachable
    module, no_projects, path = json.loads(
        _run([sys.executable, '-c', PROBE], outside, env).splitlines()[-1])
    assert module == str(site / 'diffmtl' / '__init__.py')
    assert no_projects, 'projects/ of the checkout is importable'
    assert str(REPO) not in path and '' in path

    # the installed diffmtl-study command trains and tests every run
    out = _run([sys.executable, site / 'bin' / 'diffmtl-study',
                'tiny_study.py', '--work-dir', 'work', '--results',
                'results'], outside, env, timeout=1500)
    assert 'study tiny_study: 3 runs, 0 finished, 3 to do' in out
    work = outside / 'work'
    log = (work / 'feat' / 'seed_0' / 'study_train.log').read_text()
    # the config found from the current directory, as the study writes it
    assert (f'$ {sys.executable} -m diffmtl.cli.train '
            'configs/diffmtl/synthetic_one_r18.py --work-dir work/feat/'
            'seed_0 --cfg-options') in log
    assert f'Iter(train) [{MAX_ITERS}/{MAX_ITERS}]' in log
    summary = json.loads((outside / 'results' / 'summary.json').read_text())
    arms = {a['name']: a for a in summary['arms']}
    assert set(arms) == {'feat', 'base', 'feat_off'}
    for name, arm in arms.items():
        rec = json.loads(
            (work / name / 'seed_0' / 'test.done.json').read_text())
        source = 'feat' if name == 'feat_off' else name
        assert rec['checkpoint'].endswith(
            f'work/{source}/seed_0/iter_{MAX_ITERS}.pth')
        assert rec['commit'] is None  # no checkout: no commit to record
        assert arm['n'] == 1 and 'semseg/mIoU' in arm['metrics']
        assert arm['params'] > 0 and arm['macs'] > 0
    assert 'initial/semseg/mIoU' in arms['feat']['metrics']
