# Copyright (c) diffmtl contributors. All rights reserved.
"""Atomic writes, RNG state capture and AtomicCheckpointHook in a Runner."""
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import get_file_backend
from mmengine.runner import Runner

from diffmtl.engine import (ATOMIC_BACKEND, RNG_STATES_KEY,
                            AtomicCheckpointHook, AtomicLocalBackend,
                            atomic_write_bytes, fileio, gather_rng_states,
                            get_rng_state, load_checkpoint_file,
                            remove_stale_temp_files, set_rng_state)
from diffmtl.registry import HOOKS

TOY_CFG = (
    Path(__file__).resolve().parents[1] / 'data' / 'configs' /
    'toy_regression.py')


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / 'sub' / 'file.bin'
    atomic_write_bytes(b'old', path)
    assert path.read_bytes() == b'old'
    atomic_write_bytes(b'new content', str(path))
    assert path.read_bytes() == b'new content'
    assert sorted(p.name for p in path.parent.iterdir()) == ['file.bin']


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / 'ckpt.pth'
    atomic_write_bytes(b'complete old checkpoint', path)

    def broken(f, data):
        f.write(data[:3])
        raise OSError('disk full')

    monkeypatch.setattr(fileio, '_write_all', broken)
    with pytest.raises(OSError, match='disk full'):
        atomic_write_bytes(b'new checkpoint', path)
    assert path.read_bytes() == b'complete old checkpoint'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ckpt.pth']


def test_sigkill_mid_write_keeps_the_old_file(tmp_path):
    """A child killed while writing leaves the old file and a temp file."""
    path = tmp_path / 'ckpt.pth'
    atomic_write_bytes(b'old' * 100, path)
    pid = os.fork()
    if pid == 0:  # child: write half, then hang until killed
        try:

            def slow(f, data):
                f.write(data[:len(data) // 2])
                f.flush()
                time.sleep(60)

            fileio._write_all = slow
            atomic_write_bytes(b'new' * 1000, path)
        finally:
            os._exit(0)
    deadline = time.time() + 20
    temps = []
    while time.time() < deadline and not temps:
        temps = [p for p in tmp_path.iterdir() if fileio.is_temp_file(p.name)]
        if temps and temps[0].stat().st_size == 0:
            temps = []
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert temps, 'the child never started writing'
    assert path.read_bytes() == b'old' * 100
    assert temps[0].name == f'.ckpt.pth.{pid}.diffmtl-tmp'
    assert 0 < temps[0].stat().st_size < 3000
    assert remove_stale_temp_files(str(tmp_path)) == [str(temps[0])]
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ckpt.pth']


def test_remove_stale_temp_files_only_removes_ours(tmp_path):
    for name in ('.iter_4.pth.123.diffmtl-tmp', 'iter_4.pth', '.hidden',
                 'x.diffmtl-tmp', '.last_checkpoint.9.diffmtl-tmp'):
        (tmp_path / name).write_text('x')
    removed = remove_stale_temp_files(str(tmp_path))
    assert sorted(Path(p).name for p in removed) == [
        '.iter_4.pth.123.diffmtl-tmp', '.last_checkpoint.9.diffmtl-tmp'
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        '.hidden', 'iter_4.pth', 'x.diffmtl-tmp'
    ]
    assert remove_stale_temp_files(str(tmp_path / 'missing')) == []


def test_atomic_backend_is_registered(tmp_path):
    backend = get_file_backend(
        str(tmp_path), backend_args=dict(backend=ATOMIC_BACKEND))
    assert isinstance(backend, AtomicLocalBackend)
    backend.put(b'abc', str(tmp_path / 'a.bin'))
    backend.put_text('t\u00e9xt', str(tmp_path / 'a.txt'))
    assert (tmp_path / 'a.bin').read_bytes() == b'abc'
    assert (tmp_path / 'a.txt').read_text(encoding='utf-8') == 't\u00e9xt'


def _draw():
    py = [random.random() for _ in range(3)]
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(), py,
            float(np.random.randn()), random.gauss(0, 1))


def test_rng_state_round_trip_through_a_checkpoint(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    random.gauss(0, 1)  # and in Python's
    state = get_rng_state()
    expected = _draw()
    path = tmp_path / 'rng.pth'
    torch.save(dict(rng=gather_rng_states(state)), path)
    _draw()
    _draw()
    loaded = load_checkpoint_file(path)['rng']  # weights_only=True
    assert len(loaded) == 1
    set_rng_state(loaded[0])
    assert _draw() == expected
    assert set(state) == {'torch', 'numpy', 'python'}  # no CUDA here


def _toy_cfg(work_dir, **checkpoint):
    cfg = Config.fromfile(str(TOY_CFG))
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = 6
    cfg.train_cfg.val_interval = 6
    cfg.default_hooks.checkpoint = dict(
        type='AtomicCheckpointHook', by_epoch=False, **checkpoint)
    cfg.experiment_name = f'atomic_{work_dir.name}'
    return cfg


def test_hook_is_registered():
    assert HOOKS.get('AtomicCheckpointHook') is AtomicCheckpointHook


@pytest.mark.slow
def test_old_checkpoint_is_removed_only_after_the_new_one(tmp_path):
    """max_keep_ckpts=1: while iter_4 is written, iter_2 and its pointer
    stay; afterwards only iter_4 is left and the pointer names it."""
    torch.set_num_threads(1)
    work_dir = tmp_path / 'work'
    runner = Runner.from_cfg(_toy_cfg(work_dir, interval=2, max_keep_ckpts=1))
    seen = []
    real_put = AtomicLocalBackend.put

    def spy(self, obj, filepath):
        pointer = work_dir / 'last_checkpoint'
        seen.append((Path(filepath).name,
                     sorted(p.name for p in work_dir.glob('*.pth')),
                     pointer.read_text() if pointer.exists() else None))
        real_put(self, obj, filepath)

    AtomicLocalBackend.put = spy
    try:
        runner.train()
    finally:
        AtomicLocalBackend.put = real_put
    assert [s[0] for s in seen] == ['iter_2.pth', 'iter_4.pth', 'iter_6.pth']
    assert seen[0][1:] == ([], None)
    assert seen[1][1:] == (['iter_2.pth'], str(work_dir / 'iter_2.pth'))
    assert seen[2][1:] == (['iter_4.pth'], str(work_dir / 'iter_4.pth'))
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['iter_6.pth']
    assert (work_dir / 'last_checkpoint').read_text() == str(work_dir /
                                                             'iter_6.pth')
    assert not [p for p in work_dir.iterdir() if p.name.endswith('-tmp')]
    ckpt = load_checkpoint_file(work_dir / 'iter_6.pth')
    assert len(ckpt[RNG_STATES_KEY]) == 1
    assert ckpt['message_hub']['runtime_info']['keep_ckpt_ids'] == [6]


@pytest.mark.slow
def test_stale_temp_files_are_removed_when_training_starts(tmp_path):
    torch.set_num_threads(1)
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    stale = work_dir / '.iter_2.pth.4242.diffmtl-tmp'
    stale.write_bytes(b'PK\x03\x04partial')
    runner = Runner.from_cfg(_toy_cfg(work_dir, interval=3))
    runner.train()
    assert not stale.exists()
    assert sorted(p.name for p in work_dir.glob('*.pth')) == [
        'iter_3.pth', 'iter_6.pth'
    ]


@pytest.mark.slow
def test_save_rng_state_false_stores_none(tmp_path):
    torch.set_num_threads(1)
    work_dir = tmp_path / 'work'
    runner = Runner.from_cfg(
        _toy_cfg(work_dir, interval=6, save_rng_state=False))
    runner.train()
    ckpt = load_checkpoint_file(work_dir / 'iter_6.pth')
    assert RNG_STATES_KEY not in ckpt
    assert ckpt['meta']['iter'] == 6
