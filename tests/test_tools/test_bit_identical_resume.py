# Copyright (c) diffmtl contributors. All rights reserved.
"""kill -9 after iter_8.pth, --resume to 12 == an uninterrupted run.

The toy model draws training noise from torch's, numpy's and Python's
global generators (like DiffusionMTL's diffusion noise), the dataset
augments with all three (in dataloader workers when ``num_workers=2``),
and validation draws random numbers too. Weights, optimizer state,
scheduler state, RNG states and every logged loss must be bit-identical.
"""
import pytest
from resume_utils import (assert_same, load, logged_train_values,
                          losses_by_iter, read_losses, run_train,
                          write_noisy_cfg)
from rng_components import KILL_ENV

from diffmtl.engine import RNG_STATES_KEY

pytestmark = pytest.mark.slow


def _final(work_dir):
    return load(work_dir / 'iter_12.pth')


def _kill_and_resume(cfg, work_dir, *extra):
    killed = run_train(cfg, work_dir, *extra, env={KILL_ENV: '10'})
    assert killed.returncode == -9, killed.stdout[-3000:]
    assert (work_dir / 'iter_8.pth').is_file()
    assert not (work_dir / 'iter_12.pth').exists()
    resumed = run_train(cfg, work_dir, '--resume', *extra)
    assert resumed.returncode == 0, resumed.stdout[-5000:]
    assert 'resumed epoch: 0, iter: 8' in resumed.stdout
    return killed, resumed


@pytest.mark.parametrize('num_workers', [0, 2])
def test_killed_and_resumed_run_is_bit_identical(tmp_path, num_workers):
    cfg = write_noisy_cfg(tmp_path / 'noisy.py', num_workers=num_workers)
    ref_dir = tmp_path / 'uninterrupted'
    ref = run_train(cfg, ref_dir)
    assert ref.returncode == 0, ref.stdout[-5000:]
    run_dir = tmp_path / 'killed'
    killed, resumed = _kill_and_resume(cfg, run_dir)

    # the checkpoint carries one RNG state per rank
    ckpt8 = load(run_dir / 'iter_8.pth')
    assert len(ckpt8[RNG_STATES_KEY]) == 1
    assert set(ckpt8[RNG_STATES_KEY][0]) >= {'torch', 'numpy', 'python'}

    a, b = _final(ref_dir), _final(run_dir)
    assert_same(a['state_dict'], b['state_dict'], 'state_dict')
    assert_same(a['optimizer'], b['optimizer'], 'optimizer')
    assert a['optimizer']['state'], 'no momentum buffers saved'
    assert_same(a['param_schedulers'], b['param_schedulers'],
                'param_schedulers')
    assert_same(a[RNG_STATES_KEY], b[RNG_STATES_KEY], 'rng_states')
    assert a['meta']['iter'] == b['meta']['iter'] == 12
    hub_a, hub_b = a['message_hub'], b['message_hub']
    for key in ('train/loss', 'train/loss_mse', 'train/lr'):
        assert_same(hub_a['log_scalars'][key].data,
                    hub_b['log_scalars'][key].data, key)

    # exact per-iteration losses: the killed run's 1..10, the resumed 9..12
    ref_losses = losses_by_iter(read_losses(ref_dir))
    records = read_losses(run_dir)
    pids = list(dict.fromkeys(r['pid'] for r in records))
    assert len(pids) == 2
    first = {r['iter']: r['loss'] for r in records if r['pid'] == pids[0]}
    second = {r['iter']: r['loss'] for r in records if r['pid'] == pids[1]}
    assert sorted(first) == list(range(1, 11))
    assert sorted(second) == [9, 10, 11, 12]
    assert sorted(ref_losses) == list(range(1, 13))
    for step, loss in {**first, **second}.items():
        assert loss == ref_losses[step], f'loss of iteration {step} differs'
    # the training noise matters: losses are not all equal to each other
    assert len(set(ref_losses.values())) == 12

    # and the logged (smoothed) values match line by line
    ref_log = logged_train_values(ref.stdout)
    res_log = logged_train_values(resumed.stdout)
    assert sorted(res_log) == [9, 10, 11, 12]
    for step, text in res_log.items():
        assert text == ref_log[step], step


@pytest.mark.parametrize('option', ['save_rng_state', 'isolate_val_rng'])
def test_controls_without_rng_handling_drift(tmp_path, option):
    """Controls: the same check catches the drift the RNG handling removes.

    Without RNG states in the checkpoint, or when validation (run by the
    uninterrupted job at iteration 8 but not by the resumed one) advances
    the training generators, the resumed losses differ from iteration 9.
    """
    cfg = write_noisy_cfg(tmp_path / 'noisy.py')
    off = ('--cfg-options', f'default_hooks.checkpoint.{option}=False')
    ref_dir = tmp_path / 'uninterrupted'
    assert run_train(cfg, ref_dir, *off).returncode == 0
    run_dir = tmp_path / 'killed'
    _kill_and_resume(cfg, run_dir, *off)
    ref_losses = losses_by_iter(read_losses(ref_dir))
    records = read_losses(run_dir)
    resumed_pid = records[-1]['pid']
    second = {r['iter']: r['loss'] for r in records if r['pid'] == resumed_pid}
    before = {r['iter']: r['loss'] for r in records if r['pid'] != resumed_pid}
    assert all(before[i] == ref_losses[i] for i in range(1, 11))
    assert second[9] != ref_losses[9]
    has_rng = RNG_STATES_KEY in load(run_dir / 'iter_12.pth')
    assert has_rng == (option != 'save_rng_state')
