# Copyright (c) diffmtl contributors. All rights reserved.
"""AtomicCheckpointHook RNG restore in a Runner: epoch loops, old files."""
from pathlib import Path

import pytest
import rng_components  # noqa: F401  (registers the noisy toy parts)
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from diffmtl.engine import RNG_STATES_KEY, load_checkpoint_file

pytestmark = pytest.mark.slow

TOY_CFG = (
    Path(__file__).resolve().parents[1] / 'data' / 'configs' /
    'toy_regression.py')


def _epoch_cfg(work_dir, max_epochs, name, hook='AtomicCheckpointHook'):
    cfg = Config.fromfile(str(TOY_CFG))
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = name
    cfg.model.type = 'NoisyRegressor'
    cfg.train_dataloader.dataset.type = 'NoisyRegressionDataset'
    cfg.train_dataloader.sampler = dict(type='DefaultSampler', shuffle=True)
    cfg.train_cfg = dict(
        type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
    cfg.log_processor = dict(by_epoch=True)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.checkpoint = dict(type=hook, by_epoch=True, interval=1)
    cfg.custom_hooks = []
    return cfg


def _run(cfg, resume=False):
    torch.set_num_threads(1)
    cfg.resume = resume
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_epoch_based_stop_and_resume_is_bit_identical(tmp_path):
    ref_dir, run_dir = tmp_path / 'ref', tmp_path / 'run'
    _run(_epoch_cfg(ref_dir, 4, 'epoch_ref'))
    _run(_epoch_cfg(run_dir, 2, 'epoch_first_half'))
    runner = _run(_epoch_cfg(run_dir, 4, 'epoch_second_half'), resume=True)
    assert runner.epoch == 4
    a = load_checkpoint_file(ref_dir / 'epoch_4.pth')
    b = load_checkpoint_file(run_dir / 'epoch_4.pth')
    assert torch.equal(a['state_dict']['linear.weight'],
                       b['state_dict']['linear.weight'])
    buf_a = a['optimizer']['state'][0]['momentum_buffer']
    assert torch.equal(buf_a, b['optimizer']['state'][0]['momentum_buffer'])
    rng_a, rng_b = a[RNG_STATES_KEY][0], b[RNG_STATES_KEY][0]
    assert torch.equal(rng_a['torch'], rng_b['torch'])
    assert torch.equal(rng_a['numpy']['keys'], rng_b['numpy']['keys'])
    assert rng_a['numpy']['pos'] == rng_b['numpy']['pos']
    assert torch.equal(rng_a['python']['internal'],
                       rng_b['python']['internal'])
    losses_a = a['message_hub']['log_scalars']['train/loss'].data[0]
    losses_b = b['message_hub']['log_scalars']['train/loss'].data[0]
    assert losses_a.tolist() == losses_b.tolist()
    assert len(set(losses_a.tolist())) == len(losses_a)  # noisy training


def test_resuming_an_old_checkpoint_warns(tmp_path):
    """A checkpoint of mmengine's CheckpointHook has no RNG states."""
    work_dir = tmp_path / 'work'
    _run(_epoch_cfg(work_dir, 1, 'old_first', hook='CheckpointHook'))
    assert RNG_STATES_KEY not in load_checkpoint_file(work_dir / 'epoch_1.pth')
    runner = _run(_epoch_cfg(work_dir, 2, 'old_resumed'), resume=True)
    assert runner.epoch == 2
    log = Path(runner.log_dir) / f'{runner.timestamp}.log'
    assert 'holds no RNG states' in log.read_text()
    assert RNG_STATES_KEY in load_checkpoint_file(work_dir / 'epoch_2.pth')
