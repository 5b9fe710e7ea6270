# Copyright (c) diffmtl contributors. All rights reserved.
"""2 CPU processes: every rank's RNG state is saved and restored.

With ``randomness.diff_rank_seed=True`` the ranks draw different noise.
A job killed after iteration 6 and resumed from iter_4.pth must end with
the weights, optimizer state, per-rank RNG states and per-rank losses of
an uninterrupted job.
"""
import pytest
import torch
from resume_utils import assert_same, load, read_losses, write_noisy_cfg
from rng_components import KILL_ENV
from tool_runner import TOOLS, free_port, run

from diffmtl.engine import RNG_STATES_KEY

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        torch.cuda.is_available(),
        reason='runs the automatic CPU (gloo) set-up of hosts without CUDA')
]


def _dist_train(cfg, work_dir, *args, env=None):
    extra = dict(PORT=str(free_port()), **(env or {}))
    cmd = ['bash', TOOLS / 'dist_train.sh', cfg, 2, '--work-dir', work_dir]
    return run([*cmd, *args],
               cwd=work_dir.parent,
               extra_env=extra,
               timeout=180)


def _losses(work_dir):
    """(rank, iter) -> loss, the last run logging it winning."""
    return {(r['rank'], r['iter']): r['loss'] for r in read_losses(work_dir)}


def test_two_rank_kill_and_resume_is_bit_identical(tmp_path):
    cfg = write_noisy_cfg(
        tmp_path / 'noisy.py',
        max_iters=8,
        extra='randomness = dict(seed=0, diff_rank_seed=True)')
    ref_dir = tmp_path / 'ref'
    proc = _dist_train(cfg, ref_dir)
    assert proc.returncode == 0, proc.stdout[-5000:]
    run_dir = tmp_path / 'killed'
    proc = _dist_train(cfg, run_dir, env={KILL_ENV: '6'})
    assert proc.returncode != 0
    assert (run_dir / 'iter_4.pth').is_file()
    assert not (run_dir / 'iter_8.pth').exists()
    proc = _dist_train(cfg, run_dir, '--resume')
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert 'resumed epoch: 0, iter: 4' in proc.stdout

    a, b = load(ref_dir / 'iter_8.pth'), load(run_dir / 'iter_8.pth')
    states = a[RNG_STATES_KEY]
    assert len(states) == 2
    # the ranks' generators differ (diff_rank_seed), so both were saved
    assert not torch.equal(states[0]['torch'], states[1]['torch'])
    assert_same(a[RNG_STATES_KEY], b[RNG_STATES_KEY], 'rng_states')
    assert_same(a['state_dict'], b['state_dict'], 'state_dict')
    assert_same(a['optimizer'], b['optimizer'], 'optimizer')
    ref, got = _losses(ref_dir), _losses(run_dir)
    assert sorted(ref) == [(r, i) for r in (0, 1) for i in range(1, 9)]
    assert got == ref
    assert ref[(0, 5)] != ref[(1, 5)]  # different noise on the two ranks
