# Copyright (c) diffmtl contributors. All rights reserved.
"""Helpers to run the repository's tools from tests: in subprocesses, or
imported as modules (:func:`load_tool`)."""
import importlib.util
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / 'tools'
TOY_CFG = REPO / 'tests' / 'data' / 'configs' / 'toy_regression.py'


def load_tool(path: str, name: Optional[str] = None) -> ModuleType:
    """Import a script of the repository as a module.

    Args:
        path (str): The script, relative to the repository root (e.g.
            ``'tools/image_demo.py'``).
        name (str, optional): Module name. Defaults to the file's stem.
    """
    full = REPO / path
    spec = importlib.util.spec_from_file_location(name or full.stem,
                                                  str(full))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tool_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment with the repo root and the toy components importable."""
    env = dict(os.environ)
    paths = [str(REPO), str(REPO / 'tests' / 'test_tools')]
    if env.get('PYTHONPATH'):
        paths.append(env['PYTHONPATH'])
    env['PYTHONPATH'] = os.pathsep.join(paths)
    env['OMP_NUM_THREADS'] = '1'
    env['PYTHON'] = sys.executable
    env.pop('LOCAL_RANK', None)
    env.pop('DIFFMTL_TRUSTED_CHECKPOINTS', None)
    env.update(extra or {})
    return env


def run(cmd: List[str],
        cwd: Path,
        extra_env: Optional[Dict[str, str]] = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``cmd``; stdout and stderr are merged into ``.stdout``."""
    return subprocess.run([str(c) for c in cmd],
                          cwd=str(cwd),
                          env=tool_env(extra_env),
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=timeout)


def free_port() -> int:
    """A TCP port that was free a moment ago (for torchrun's master)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def logged_metric(output: str, name: str) -> float:
    """The last logged value of metric ``name`` (e.g. ``'toy/mse'``)."""
    values = re.findall(
        re.escape(name) + r': (-?[\d.]+(?:e[-+]?\d+)?)', output)
    assert values, f'{name} not found in the log:\n{output[-3000:]}'
    return float(values[-1])


def run_tool(script: str,
             args: List,
             cwd: Path,
             extra_env: Optional[Dict[str, str]] = None,
             timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python tools/<script> *args`` with :func:`run`."""
    return run([sys.executable, TOOLS / script, *args], cwd, extra_env,
               timeout)


def run_script(script: str, *args, cwd: Path = REPO,
               timeout: float = 900) -> str:
    """Run a repository script as a user does (``python <script> ...``
    from ``cwd``, without the root on PYTHONPATH: the tools put it on
    sys.path); asserts exit 0 and returns the merged output."""
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    env['OMP_NUM_THREADS'] = '1'
    proc = subprocess.run([sys.executable, script, *map(str, args)],
                          cwd=str(cwd), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-5000:]
    return proc.stdout


def train_and_test_config(config: str, small: Dict, tmp_path: Path):
    """Train a config for 2 iterations on tiny generated scenes with
    ``tools/train.py``, then test the checkpoint with ``tools/test.py``.

    Returns:
        tuple: ``(train output, checkpoint path, test output, data root)``.
    """
    from diffmtl.datasets.synthetic import generate_synthetic_scenes
    from diffmtl.studies.planning import format_options
    root = tmp_path / 'scenes'
    generate_synthetic_scenes(str(root), num_train=6, num_val=2, num_test=2,
                              workers=1)
    loader = {'num_workers': 0, 'persistent_workers': False,
              'dataset.data_root': str(root), 'batch_size': 2}
    train = run_script(
        'tools/train.py', config, '--work-dir', tmp_path / 'work',
        '--cfg-options', *format_options({
            **small, 'train_cfg.max_iters': 2,
            'train_cfg.val_interval': 100000, 'val_cfg': None,
            'val_dataloader': None, 'val_evaluator': None,
            'param_scheduler': None, 'default_hooks.logger.interval': 1,
            **{f'train_dataloader.{k}': v for k, v in loader.items()}
        }))
    assert 'Iter(train) [2/2]' in train
    ckpt = tmp_path / 'work' / 'iter_2.pth'
    test = run_script(
        'tools/test.py', config, ckpt, '--work-dir', tmp_path / 'test',
        '--cfg-options', *format_options({
            **small, 'test_dataloader.dataset.split': 'test',
            **{f'test_dataloader.{k}': v for k, v in loader.items()}
        }))
    assert 'semseg/mIoU' in test and 'depth/absErr' in test
    return train, ckpt, test, root
