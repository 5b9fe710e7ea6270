# Copyright (c) diffmtl contributors. All rights reserved.
"""tools/train.py --resume with a damaged pointer or latest checkpoint.

A 4-iteration toy run saves iter_2.pth, iter_4.pth and last_checkpoint;
each test damages a copy of that work dir and resumes to iteration 6.
"""
import shutil

import pytest
from resume_utils import load, pointer_target
from tool_runner import TOY_CFG, run_tool

pytestmark = pytest.mark.slow

RESUME_TO_6 = [
    '--resume', '--cfg-options', 'train_cfg.max_iters=6',
    'train_cfg.val_interval=6'
]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('fallback') / 'work'
    proc = run_tool(
        'train.py', [TOY_CFG, '--work-dir', work_dir], cwd=work_dir.parent)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert pointer_target(work_dir) == str(work_dir / 'iter_4.pth')
    return work_dir


def _copy(trained, tmp_path):
    work_dir = tmp_path / 'work'
    shutil.copytree(trained, work_dir)
    # the pointer holds an absolute path into the original folder; point
    # it into the copy as a moved work dir would need
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_4.pth'))
    return work_dir


def _resume(work_dir):
    return run_tool(
        'train.py', [TOY_CFG, '--work-dir', work_dir, *RESUME_TO_6],
        cwd=work_dir.parent)


def _assert_resumed(proc, work_dir, from_iter):
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert f'resumed epoch: 0, iter: {from_iter}' in proc.stdout
    assert 'Iter(train) [1/6]' not in proc.stdout
    assert 'Iter(train) [6/6]' in proc.stdout
    assert load(work_dir / 'iter_6.pth')['meta']['iter'] == 6
    assert pointer_target(work_dir) == str(work_dir / 'iter_6.pth')


@pytest.mark.parametrize(
    'content', [b'', b'\x80\x02\x8a\xff binary' * 8], ids=['empty', 'binary'])
def test_bad_pointer_falls_back_to_newest(trained, tmp_path, content):
    work_dir = _copy(trained, tmp_path)
    (work_dir / 'last_checkpoint').write_bytes(content)
    proc = _resume(work_dir)
    _assert_resumed(proc, work_dir, from_iter=4)
    assert f'Cannot resume from {work_dir / "last_checkpoint"}' in proc.stdout


def test_corrupt_latest_checkpoint_falls_back_to_previous(trained, tmp_path):
    work_dir = _copy(trained, tmp_path)
    latest = work_dir / 'iter_4.pth'
    latest.write_bytes(latest.read_bytes()[:1000])  # truncated
    proc = _resume(work_dir)
    _assert_resumed(proc, work_dir, from_iter=2)
    assert f'the checkpoint it names, {latest}, is unusable' in proc.stdout
    assert 'truncated' in proc.stdout


def test_checkpoints_without_pointer_resume_from_newest(trained, tmp_path):
    work_dir = _copy(trained, tmp_path)
    (work_dir / 'last_checkpoint').unlink()
    proc = _resume(work_dir)
    _assert_resumed(proc, work_dir, from_iter=4)
    assert 'last_checkpoint is missing but 2 checkpoint(s)' in proc.stdout


def test_only_damaged_checkpoints_is_an_error(trained, tmp_path):
    work_dir = _copy(trained, tmp_path)
    for name in ('iter_2.pth', 'iter_4.pth'):
        (work_dir / name).write_bytes(b'')
    proc = _resume(work_dir)
    assert proc.returncode != 0
    assert 'NoResumableCheckpointError' in proc.stdout
    assert str(work_dir / 'iter_2.pth') in proc.stdout
    assert str(work_dir / 'iter_4.pth') in proc.stdout
    assert 'Iter(train)' not in proc.stdout  # nothing was overwritten
    assert (work_dir / 'iter_4.pth').read_bytes() == b''
