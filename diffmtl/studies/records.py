# Copyright (c) diffmtl contributors. All rights reserved.
"""What a study's runs leave on disk: their ``*.done.json`` records, the
committed copies of the test records, the checkpoints, and the code's
commit written into every record."""
import glob
import json
import math
import os
import os.path as osp
import subprocess
from typing import Dict, Optional, Tuple

from .study_file import CHECKOUT_ROOT

__all__ = [
    'read_json', 'write_json', 'finished_record', 'train_done_path',
    'latest_checkpoint', 'checkpoint_path', 'code_commit',
    'logged_losses', 'training_loss', 'checkpoint_iteration'
]


def read_json(path: str) -> Optional[dict]:
    """The JSON object in ``path``; None when it is missing or damaged."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_json(path: str, obj) -> None:
    """Write ``obj`` atomically (temporary file, fsync, rename)."""
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1, sort_keys=False)
        f.write('\n')
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def finished_record(run: dict) -> Optional[dict]:
    """The run's test record from its work dir, else from its committed
    copy (``run['record']``); None while the run is not finished."""
    rec = read_json(osp.join(run['run_dir'], 'test.done.json'))
    if rec is None and run.get('record'):
        rec = read_json(run['record'])
    return rec


def train_done_path(run: dict) -> str:
    """The record written once the training of ``run``'s checkpoint (its
    own, or its source arm's for an evaluation-only run) has finished."""
    return osp.join(run['ckpt_dir'], 'train.done.json')


def latest_checkpoint(ckpt_dir: str) -> Optional[str]:
    """The checkpoint named by ``last_checkpoint``, else the newest
    ``iter_*.pth`` / ``epoch_*.pth``."""
    pointer = osp.join(ckpt_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            path = f.read().strip()
        if path and osp.isfile(path):
            return path
        if path and osp.isfile(osp.join(ckpt_dir, osp.basename(path))):
            return osp.join(ckpt_dir, osp.basename(path))
    best = None
    if osp.isdir(ckpt_dir):
        for name in os.listdir(ckpt_dir):
            parsed = _checkpoint_number(name)
            if parsed and (best is None or parsed[1] > best[0]):
                best = (parsed[1], osp.join(ckpt_dir, name))
    return best[1] if best else None


def checkpoint_path(run: dict) -> str:
    """The checkpoint a checkpoint-evaluation run tests:
    ``<ckpt_dir>/iter_<iteration>.pth``."""
    return osp.join(run['ckpt_dir'], f'iter_{run["checkpoint"]}.pth')


def code_commit() -> Optional[str]:
    """The git commit of the checkout that runs the study
    (:data:`~diffmtl.studies.study_file.CHECKOUT_ROOT`), with ``+dirty``
    when tracked files differ from it; None for an installed package or
    outside a git checkout."""
    if CHECKOUT_ROOT is None:
        return None

    def git(*args):
        return subprocess.run(['git', '-C', CHECKOUT_ROOT, *args],
                              capture_output=True, text=True, timeout=60)
    try:
        head = git('rev-parse', '--short=12', 'HEAD')
        if head.returncode != 0:
            return None
        dirty = git('status', '--porcelain', '--untracked-files=no')
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ('+dirty' if dirty.stdout.strip() else '')


def _checkpoint_number(path: str) -> Optional[Tuple[str, int]]:
    """``('iter' | 'epoch', n)`` of an ``iter_<n>.pth`` / ``epoch_<n>.pth``
    file name (None for another name)."""
    stem, ext = osp.splitext(osp.basename(path))
    prefix, _, num = stem.rpartition('_')
    if ext == '.pth' and prefix in ('iter', 'epoch') and num.isdigit():
        return prefix, int(num)
    return None


def checkpoint_iteration(path: str) -> Optional[int]:
    """The iteration of an ``iter_<n>.pth`` checkpoint (None otherwise)."""
    parsed = _checkpoint_number(path)
    return parsed[1] if parsed and parsed[0] == 'iter' else None


def logged_losses(ckpt_dir: str, key: str = 'loss') -> Dict[int, float]:
    """``{iteration: value}`` of a logged training scalar of a run.

    Read from mmengine's ``<ckpt_dir>/<timestamp>/vis_data/scalars.json``
    of every launch of the run (a run resumed after an interruption has
    one per launch), oldest first, so that where two launches logged the
    same iteration (a run killed after its last checkpoint) the later one,
    whose weights the later checkpoints come from, wins. Lines without
    ``key``, or that are not JSON (a line cut by a kill), are skipped.
    """
    values: Dict[int, float] = {}
    pattern = osp.join(glob.escape(ckpt_dir), '*', 'vis_data',
                       'scalars.json')
    for path in sorted(glob.glob(pattern)):
        with open(path) as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if (isinstance(entry, dict) and key in entry
                        and isinstance(entry.get('iter'), int)):
                    values[entry['iter']] = float(entry[key])
    return values


def training_loss(ckpt_dir: str, iteration: int,
                  window: int) -> Optional[dict]:
    """Mean logged training loss of a run over the iterations
    ``(iteration - window, iteration]``.

    Each logged value is mmengine's running mean over the iterations since
    the previous log line, so this is the training loss of the model that
    the checkpoint at ``iteration`` was trained into. With partial labels
    every batch holds other tasks, so a window of many log lines is
    needed for a stable value.

    Returns:
        dict or None: ``mean, n (log lines), first, last (their
        iterations), window``; None when no line falls in the window (no
        logs in ``ckpt_dir``) or a value is not finite.
    """
    values = logged_losses(ckpt_dir)
    its = sorted(i for i in values if iteration - window < i <= iteration)
    if not its or not all(math.isfinite(values[i]) for i in its):
        return None
    return dict(mean=sum(values[i] for i in its) / len(its), n=len(its),
                first=its[0], last=its[-1], window=window)
