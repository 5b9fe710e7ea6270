# Copyright (c) diffmtl contributors. All rights reserved.
"""The Makefile's set-up stamp and the CI entry point (dry runs only)."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which('make') is None, reason='needs GNU make')
]


#: Make variables a surrounding make (``make test MM_STACK=...``, as CI
#: runs this suite) passes down through the environment.
_MAKE_ENV = ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'MAKEOVERRIDES', 'MM_STACK',
             'VENV', 'WHEELS', 'TORCH_SPEC', 'PYTHON', 'PYTEST_ARGS')


def _make_env():
    """The environment without the variables of a surrounding make."""
    return {k: v for k, v in os.environ.items() if k not in _MAKE_ENV}


def _dry_run(*args):
    cmd = ['make', '-n', '--no-print-directory', '-C', str(REPO), *args]
    proc = subprocess.run(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_make_env(),
        timeout=60)
    assert proc.returncode == 0, proc.stdout
    return proc.stdout


def _stamp(venv):
    out = _dry_run('-p', f'VENV={venv}', 'test')
    stamps = {
        line.split(':')[0]
        for line in out.splitlines()
        if line.startswith(f'{venv}/.diffmtl-setup-')
    }
    assert len(stamps) == 1, out
    return Path(stamps.pop())


def test_setup_runs_once_per_requirement_set(tmp_path):
    venv = tmp_path / 'venv'
    first = _dry_run(f'VENV={venv}', 'test')
    assert 'pip install torch==2.13.0' in first
    assert '-m pytest tests -q' in first

    stamp = _stamp(venv)
    stamp.parent.mkdir(parents=True)
    stamp.touch()
    second = _dry_run(f'VENV={venv}', 'test')
    assert 'pip install' not in second
    assert second.strip() == f'{venv}/bin/python -m pytest tests -q'

    # another torch choice is another requirement set: set-up runs again
    other = _dry_run(f'VENV={venv}', 'TORCH_SPEC=torch==2.12.0', 'test')
    assert 'pip install torch==2.12.0' in other


def test_demo_uses_the_demo_config_variable(tmp_path):
    out = _dry_run(f'VENV={tmp_path}/venv', 'DEMO_CFG=configs/x.py', 'demo')
    assert 'make_synthetic_scenes.py --out data/synthetic_scenes' in out
    assert f'{tmp_path}/venv/bin/python tools/train.py configs/x.py' in out


def test_ci_entry_point_runs_make_test_on_both_stacks():
    script = (REPO / '.ci' / 'run').read_text()
    commands = [
        line.strip() for line in script.splitlines()
        if line.strip() and not line.lstrip().startswith('#')
    ]
    assert commands[0] == 'set -euo pipefail'
    assert commands[-2:] == [
        'make test', 'make test MM_STACK=openmmlab VENV=.venv-openmmlab'
    ]


def test_default_stack_is_onedl_without_a_compiler(tmp_path):
    out = _dry_run(f'VENV={tmp_path}/venv', 'setup')
    (stack_line, ) = [ln for ln in out.splitlines()
                      if '-r requirements/onedl.txt' in ln]
    # built in pip's isolated environment, where the build finds no torch
    # and so compiles no op
    assert '--no-build-isolation' not in stack_line
    assert 'MMCV_WITH_OPS' not in stack_line
    assert 'requirements/openmmlab.txt' not in out
    # the other stack's distributions are removed first
    assert 'uninstall -y mmcv mmengine mmsegmentation' in out
    assert out.index('uninstall -y') < out.index('requirements/onedl.txt')


def test_switching_stack_reruns_set_up_and_removes_the_other(tmp_path):
    venv = tmp_path / 'venv'
    stamp = _stamp(venv)
    stamp.parent.mkdir(parents=True)
    stamp.touch()
    assert 'pip install' not in _dry_run(f'VENV={venv}', 'setup')
    out = _dry_run(f'VENV={venv}', 'MM_STACK=openmmlab', 'setup')
    assert ('MMCV_WITH_OPS=1 MAX_JOBS=2 ' in out
            and '--no-build-isolation -r requirements/openmmlab.txt' in out)
    assert ('uninstall -y onedl-mmcv onedl-mmengine onedl-mmsegmentation'
            in out)


def test_unknown_stack_is_refused(tmp_path):
    cmd = ['make', '-n', '-C', str(REPO), f'VENV={tmp_path}/v',
           'MM_STACK=conda', 'setup']
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                          env=_make_env())
    assert proc.returncode != 0
    assert 'MM_STACK must be onedl or openmmlab' in proc.stderr


def test_wheels_folder_installs_without_an_index(tmp_path):
    out = _dry_run(f'VENV={tmp_path}/venv', f'WHEELS={tmp_path}/whl',
                   'setup')
    installs = [ln for ln in out.splitlines() if ' install ' in ln]
    assert installs and all(
        f'--no-index --find-links {tmp_path}/whl' in ln for ln in installs)


def test_fast_lane_deselects_slow_tests(tmp_path):
    venv = tmp_path / 'venv'
    stamp = _stamp(venv)
    stamp.parent.mkdir(parents=True)
    stamp.touch()
    out = _dry_run(f'VENV={venv}', 'test-fast')
    assert out.strip() == f'{venv}/bin/python -m pytest tests -q -m "not slow"'
