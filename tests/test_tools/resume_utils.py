# Copyright (c) diffmtl contributors. All rights reserved.
"""Helpers for the checkpoint kill / resume tool tests."""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from tool_runner import TOOLS, TOY_CFG, tool_env

from diffmtl.engine import load_checkpoint_file


def write_noisy_cfg(path: Path,
                    num_workers: int = 0,
                    max_iters: int = 12,
                    interval: int = 4,
                    max_keep_ckpts: int = -1,
                    extra: str = '') -> Path:
    """A toy config whose training draws from every global RNG."""
    workers = (f'num_workers={num_workers}, '
               f'persistent_workers={num_workers > 0}, ')
    path.write_text(f"""_base_ = [{str(TOY_CFG)!r}]
custom_imports = dict(
    imports=['diffmtl', 'toy_components', 'rng_components'],
    allow_failed_imports=False)
model = dict(type='NoisyRegressor')
train_dataloader = dict({workers}
    dataset=dict(type='NoisyRegressionDataset'))
train_cfg = dict(max_iters={max_iters}, val_interval={interval})
default_hooks = dict(
    checkpoint=dict(interval={interval}, max_keep_ckpts={max_keep_ckpts}))
custom_hooks = [dict(type='RankMarkerHook'), dict(type='LossRecorderHook')]
{extra}
""")
    return path


def train_cmd(cfg: Path, work_dir: Path, *args) -> List[str]:
    return [
        sys.executable,
        str(TOOLS / 'train.py'),
        str(cfg), '--work-dir',
        str(work_dir), *[str(a) for a in args]
    ]


def run_train(cfg: Path,
              work_dir: Path,
              *args,
              env: Optional[Dict[str, str]] = None,
              timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``tools/train.py`` to completion (or its death)."""
    return subprocess.run(
        train_cmd(cfg, work_dir, *args),
        cwd=str(work_dir.parent),
        env=tool_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout)


def start_train(cfg: Path,
                work_dir: Path,
                *args,
                env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
    """Start ``tools/train.py`` in the background (log in train.log)."""
    work_dir.parent.mkdir(parents=True, exist_ok=True)
    log = open(work_dir.parent / f'{work_dir.name}.log', 'a')
    return subprocess.Popen(
        train_cmd(cfg, work_dir, *args),
        cwd=str(work_dir.parent),
        env=tool_env(env),
        stdout=log,
        stderr=subprocess.STDOUT)


def wait_for(predicate,
             proc: subprocess.Popen,
             timeout: float = 90,
             poll: float = 0.01):
    """Poll ``predicate()`` until truthy; fail if ``proc`` ends first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(
                f'training ended (rc={proc.returncode}) before the awaited '
                'moment')
        time.sleep(poll)
    raise AssertionError('timed out waiting')


def temp_files(folder: Path, name: str) -> List[Path]:
    """diffmtl's temporary files for ``name`` in ``folder``."""
    return sorted(folder.glob(f'.{name}.*.diffmtl-tmp'))


def read_losses(work_dir: Path) -> List[dict]:
    """Records of ``LossRecorderHook`` in file order."""
    path = work_dir / 'losses.jsonl'
    return [json.loads(line) for line in path.read_text().splitlines()]


def losses_by_iter(records: List[dict]) -> Dict[int, str]:
    """Iteration -> exact loss (``float.hex``) of the last run logging it."""
    return {r['iter']: r['loss'] for r in records}


def logged_train_values(log: str) -> Dict[int, str]:
    """Iteration -> ``'loss: .. lr: ..'`` text of the train log lines."""
    values = {}
    for match in re.finditer(
            r'Iter\(train\) \[\s*(\d+)/\d+\].*?(lr: \S+).*?'
            r'(loss: \S+)\s+(loss_mse: \S+)', log):
        values[int(match.group(1))] = ' '.join(match.groups()[1:])
    return values


def assert_same(a, b, where: str = 'checkpoint') -> None:
    """Recursive exact equality of checkpoint contents (tensors bitwise)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f'{where} differs'
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        assert np.array_equal(a, b), f'{where} differs: {a} != {b}'
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), \
            f'{where}: keys {sorted(map(str, a))} != {sorted(map(str, b))}'
        for key in a:
            assert_same(a[key], b[key], f'{where}[{key!r}]')
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f'{where}[{i}]')
    else:
        assert a == b, f'{where}: {a!r} != {b!r}'


def load(path) -> dict:
    return load_checkpoint_file(str(path), map_location='cpu')


def loadable(path) -> bool:
    try:
        load(path)
    except Exception:  # noqa: BLE001
        return False
    return True


def pointer_target(work_dir: Path) -> Optional[str]:
    path = work_dir / 'last_checkpoint'
    if not path.exists():
        return None
    return path.read_text().strip()


def checkpoint_names(work_dir: Path) -> List[str]:
    return sorted(p.name for p in work_dir.glob('iter_*.pth'))


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc`` (started by this test) and reap it."""
    if proc.poll() is None:
        os.kill(proc.pid, 9)
    proc.wait(timeout=30)
