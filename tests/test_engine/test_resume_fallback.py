# Copyright (c) diffmtl contributors. All rights reserved.
"""find_resumable_checkpoint / resolve_resume: bad pointers and files."""
import logging
import os
from collections import OrderedDict

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from diffmtl.engine import (NoResumableCheckpointError,
                            find_resumable_checkpoint, list_checkpoints,
                            resolve_resume)


class _Records(logging.Handler):

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def logged():
    logger = MMLogger.get_current_instance()
    handler = _Records()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def _save(path, step, seed=7):
    torch.save(
        dict(
            meta=dict(iter=step, epoch=0, seed=seed),
            state_dict=OrderedDict(w=torch.full((2, ), float(step)))), path)
    return str(path)


@pytest.fixture
def work_dir(tmp_path):
    """iter_2, iter_4 and iter_10 (numeric, not lexical, order) + pointer."""
    work = tmp_path / 'work'
    work.mkdir()
    for step in (2, 4, 10):
        _save(work / f'iter_{step}.pth', step)
    (work / 'last_checkpoint').write_text(str(work / 'iter_10.pth'))
    return work


def test_valid_pointer_is_used(work_dir, logged):
    path, meta = find_resumable_checkpoint(str(work_dir))
    assert path == str(work_dir / 'iter_10.pth')
    assert meta['iter'] == 10 and meta['seed'] == 7
    assert not logged


def test_pointer_wins_over_a_newer_stale_file(work_dir):
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_4.pth'))
    path, _ = find_resumable_checkpoint(str(work_dir))
    assert path == str(work_dir / 'iter_4.pth')


def test_list_checkpoints_orders_by_step(work_dir):
    (work_dir / 'iter_x.pth').write_text('not a step')
    (work_dir / 'best_mse_iter_4.pth').write_text('best')
    assert [os.path.basename(p) for p in list_checkpoints([str(work_dir)])
            ] == ['iter_10.pth', 'iter_4.pth', 'iter_2.pth']


@pytest.mark.parametrize('content, reason',
                         [(b'', 'it is empty'), (b'  \n', 'it is empty'),
                          (b'\xff\xfe\x00garbage\x9c', 'it is not text'),
                          (b'a\nb\n', 'does not hold one path')])
def test_bad_pointer_falls_back_to_newest(work_dir, logged, content, reason):
    pointer = work_dir / 'last_checkpoint'
    pointer.write_bytes(content)
    path, _ = find_resumable_checkpoint(str(work_dir))
    assert path == str(work_dir / 'iter_10.pth')
    assert any(str(pointer) in m and reason in m for m in logged), logged


def test_pointer_to_missing_file_falls_back(work_dir, logged):
    (work_dir / 'iter_10.pth').unlink()
    path, _ = find_resumable_checkpoint(str(work_dir))
    assert path == str(work_dir / 'iter_4.pth')
    assert any('iter_10.pth' in m and 'does not exist' in m
               for m in logged), logged


@pytest.mark.parametrize('damage', ['empty', 'truncated', 'random'])
def test_corrupt_latest_checkpoint_falls_back(work_dir, logged, damage):
    latest = work_dir / 'iter_10.pth'
    data = latest.read_bytes()
    latest.write_bytes({
        'empty': b'',
        'truncated': data[:len(data) // 2],
        'random': os.urandom(len(data))
    }[damage])
    path, meta = find_resumable_checkpoint(str(work_dir))
    assert path == str(work_dir / 'iter_4.pth')
    assert meta['iter'] == 4
    assert any(str(latest) in m and 'unusable' in m for m in logged)
    assert any('Resuming from' in m and 'iter_4.pth' in m for m in logged)


def test_no_pointer_resumes_from_newest(work_dir, logged):
    (work_dir / 'last_checkpoint').unlink()
    path, _ = find_resumable_checkpoint(str(work_dir))
    assert path == str(work_dir / 'iter_10.pth')
    assert any('last_checkpoint is missing' in m for m in logged)


def test_moved_work_dir_pointer_is_resolved_by_name(work_dir, logged):
    (work_dir / 'last_checkpoint').write_text('/elsewhere/old/iter_4.pth')
    path, _ = find_resumable_checkpoint(str(work_dir))
    assert path == str(work_dir / 'iter_4.pth')
    assert any('/elsewhere/old/iter_4.pth' in m for m in logged)


def test_all_checkpoints_corrupt_is_an_error(work_dir):
    for p in work_dir.glob('iter_*.pth'):
        p.write_bytes(b'')
    with pytest.raises(NoResumableCheckpointError) as info:
        find_resumable_checkpoint(str(work_dir))
    for step in (2, 4, 10):
        assert f'iter_{step}.pth' in str(info.value)


def test_nothing_to_resume(tmp_path):
    assert find_resumable_checkpoint(str(tmp_path)) == (None, None)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    # the pointer names a file that is gone and there is no other: nothing
    # would be overwritten by starting over
    assert find_resumable_checkpoint(str(tmp_path)) == (None, None)


def test_extra_checkpoint_dir_and_template(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    out = tmp_path / 'out' / 'work'
    out.mkdir(parents=True)
    _save(out / 'ckpt-5.pth', 5)
    path, _ = find_resumable_checkpoint(
        str(work), [str(out)], templates=['ckpt-{}.pth'])
    assert path == str(out / 'ckpt-5.pth')


def _cfg(work_dir, **kw):
    return Config(
        dict(
            work_dir=str(work_dir),
            resume=True,
            load_from=None,
            randomness=dict(seed=None),
            default_hooks=dict(checkpoint=dict(type='CheckpointHook')),
            **kw))


def test_resolve_resume_sets_load_from_and_seed(work_dir):
    (work_dir / 'last_checkpoint').write_bytes(b'')
    cfg = resolve_resume(_cfg(work_dir))
    assert cfg.resume is True
    assert cfg.load_from == str(work_dir / 'iter_10.pth')
    # the interrupted run's seed, so the data order continues
    assert cfg.randomness.seed == 7
    cfg = _cfg(work_dir)
    cfg.randomness = dict(seed=3)
    assert resolve_resume(cfg).randomness.seed == 3


def test_resolve_resume_leaves_other_configs_alone(work_dir):
    cfg = _cfg(work_dir)
    cfg.load_from = 'explicit.pth'
    assert resolve_resume(cfg).load_from == 'explicit.pth'
    cfg = _cfg(work_dir)
    cfg.resume = False
    assert resolve_resume(cfg).load_from is None


def test_resolve_resume_without_checkpoints_starts_over(tmp_path):
    cfg = resolve_resume(_cfg(tmp_path))
    assert cfg.resume is False and cfg.load_from is None


def test_resolve_resume_with_only_corrupt_files_raises(work_dir):
    for p in work_dir.glob('iter_*.pth'):
        p.write_bytes(b'junk')
    with pytest.raises(NoResumableCheckpointError, match='iter_10.pth'):
        resolve_resume(_cfg(work_dir))
