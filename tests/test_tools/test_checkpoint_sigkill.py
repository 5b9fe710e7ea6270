# Copyright (c) diffmtl contributors. All rights reserved.
"""kill -9 while tools/train.py writes a checkpoint, then --resume.

``DIFFMTL_TEST_SLOW_WRITE`` (see ``rng_components``) makes every atomic
write stop half-way for a while, so the test can poll for the temporary
file and SIGKILL the job exactly in the middle of writing ``iter_8.pth``
or the ``last_checkpoint`` pointer. With ``max_keep_ckpts=1`` mmengine's
own hook has already deleted ``iter_4.pth`` at that moment; here the
previous checkpoint must still be complete and named by the pointer;
with all checkpoints kept, no truncated ``iter_8.pth`` may appear.
"""
import random
import time

import pytest
from resume_utils import (checkpoint_names, kill, load, loadable,
                          pointer_target, run_train, start_train, temp_files,
                          wait_for, write_noisy_cfg)
from rng_components import SLOW_WRITE_ENV

from diffmtl.engine import CorruptCheckpointError, load_checkpoint_file

pytestmark = pytest.mark.slow


def _resume_to_the_end(cfg, work_dir, from_iter):
    proc = run_train(cfg, work_dir, '--resume')
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert f'resumed epoch: 0, iter: {from_iter}' in proc.stdout
    assert 'Iter(train) [ 1/12]' not in proc.stdout
    if from_iter < 12:  # killed after iter_12.pth: nothing left to train
        assert 'Iter(train) [12/12]' in proc.stdout
    assert load(work_dir / 'iter_12.pth')['meta']['iter'] == 12
    assert pointer_target(work_dir) == str(work_dir / 'iter_12.pth')
    assert not list(work_dir.glob('.*diffmtl-tmp'))  # cleaned up
    return proc


@pytest.mark.parametrize('max_keep_ckpts', [1, -1])
def test_kill_mid_checkpoint_write_keeps_previous(tmp_path, max_keep_ckpts):
    cfg = write_noisy_cfg(tmp_path / 'cfg.py', max_keep_ckpts=max_keep_ckpts)
    work_dir = tmp_path / 'work'
    proc = start_train(cfg, work_dir, env={SLOW_WRITE_ENV: '3'})
    try:
        temps = wait_for(lambda: temp_files(work_dir, 'iter_8.pth'), proc)
        wait_for(lambda: temps[0].stat().st_size > 0, proc)
    finally:
        kill(proc)
    assert proc.returncode == -9
    # killed half-way through iter_8: a truncated temporary file, nothing
    # under the normal name, and iter_4 complete, kept and pointed to
    assert temps[0].is_file()
    with pytest.raises(CorruptCheckpointError, match='truncated'):
        load_checkpoint_file(str(temps[0]))
    assert checkpoint_names(work_dir) == ['iter_4.pth']
    assert pointer_target(work_dir) == str(work_dir / 'iter_4.pth')
    assert load(work_dir / 'iter_4.pth')['meta']['iter'] == 4
    resumed = _resume_to_the_end(cfg, work_dir, from_iter=4)
    assert 'partial checkpoint write of an interrupted run' in resumed.stdout
    if max_keep_ckpts == 1:
        assert checkpoint_names(work_dir) == ['iter_12.pth']
    else:
        assert checkpoint_names(work_dir) == [
            'iter_12.pth', 'iter_4.pth', 'iter_8.pth'
        ]


def test_kill_mid_pointer_write_keeps_both(tmp_path):
    cfg = write_noisy_cfg(tmp_path / 'cfg.py', max_keep_ckpts=1)
    work_dir = tmp_path / 'work'

    def pointer_being_written():
        return (work_dir / 'iter_8.pth').exists() and temp_files(
            work_dir, 'last_checkpoint')

    proc = start_train(cfg, work_dir, env={SLOW_WRITE_ENV: '2'})
    try:
        wait_for(pointer_being_written, proc)
    finally:
        kill(proc)
    # iter_8 is complete, but the pointer still names iter_4, which is
    # therefore not deleted yet
    assert checkpoint_names(work_dir) == ['iter_4.pth', 'iter_8.pth']
    assert pointer_target(work_dir) == str(work_dir / 'iter_4.pth')
    assert load(work_dir / 'iter_8.pth')['meta']['iter'] == 8
    # --resume continues from the newest complete checkpoint of the run,
    # points last_checkpoint at it and finishes the pruning of iter_4
    resumed = _resume_to_the_end(cfg, work_dir, from_iter=8)
    assert 'is newer and complete' in resumed.stdout
    assert 'Iter(train) [ 5/12]' not in resumed.stdout
    assert checkpoint_names(work_dir) == ['iter_12.pth']


def test_kill_at_random_moments_always_leaves_a_resumable_state(tmp_path):
    """Kill at random moments until one lands mid-write (at most 4 runs).

    After every kill each file under a checkpoint name is complete, the
    pointer names a loadable checkpoint, and --resume finishes the run.
    """
    cfg = write_noisy_cfg(tmp_path / 'cfg.py', max_keep_ckpts=1)
    rng = random.Random(0)
    landed_mid_write = False
    for trial in range(4):
        work_dir = tmp_path / f'work{trial}'
        proc = start_train(cfg, work_dir, env={SLOW_WRITE_ENV: '0.4'})
        try:
            # wait until the first checkpoint is being written, then a bit
            wait_for(lambda: temp_files(work_dir, 'iter_4.pth'), proc)
            time.sleep(rng.uniform(0, 2.5))
        finally:
            kill(proc)
        landed_mid_write = bool(list(work_dir.glob('.*.diffmtl-tmp')))
        names = checkpoint_names(work_dir)
        assert all(loadable(work_dir / n) for n in names), names
        target = pointer_target(work_dir)
        if target is not None:
            assert loadable(target), target
            _resume_to_the_end(
                cfg, work_dir,
                from_iter=max(load(work_dir / n)['meta']['iter']
                              for n in names))
        else:  # killed during the very first write: nothing to lose yet
            assert names == []
            proc = run_train(cfg, work_dir, '--resume')
            assert proc.returncode == 0, proc.stdout[-3000:]
            assert 'training starts from scratch' in proc.stdout
        if landed_mid_write:
            break
    assert landed_mid_write, 'no kill landed during a write in 4 runs'
