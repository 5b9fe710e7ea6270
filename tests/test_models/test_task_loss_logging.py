# Copyright (c) diffmtl contributors. All rights reserved.
"""Logged per-task losses cover only the batches that had the task: a batch
without task X logs no value for X (not X's last loss, not NaN), and X's
windowed mean spans the same iterations as the total loss."""
import copy
import uuid
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.hooks import RuntimeInfoHook
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmengine.runner import LogProcessor

from diffmtl.registry import MODELS
from _mtl_model_utils import make_batch, tiny_baseline_cfg

torch.set_num_threads(1)
TASKS = ('semseg', 'sal')


class LoggedTraining:
    """train_step + RuntimeInfoHook + LogProcessor, as in a runner."""

    def __init__(self, model, window=10):
        self.model = model
        self.optim = OptimWrapper(
            torch.optim.SGD(model.parameters(), lr=0.01))
        self.hub = MessageHub.get_instance(f'loss-log-{uuid.uuid4()}')
        assert MessageHub.get_current_instance() is self.hub
        self.runner = SimpleNamespace(message_hub=self.hub)
        self.logger = LogProcessor(window_size=window, by_epoch=False)
        self.values = []  # log_vars of every iteration, as floats

    def step(self, masks, seed):
        inputs, samples = make_batch(masks, tasks=TASKS, seed=seed)
        log_vars = self.model.train_step(
            dict(inputs=inputs, data_samples=samples), self.optim)
        RuntimeInfoHook().after_train_iter(self.runner, 0, outputs=log_vars)
        self.values.append(
            {k: float(v.detach()) for k, v in log_vars.items()})
        return self.logger._collect_scalars([], self.runner, 'train')


@pytest.fixture
def training():
    torch.manual_seed(0)
    return LoggedTraining(MODELS.build(tiny_baseline_cfg(tasks=TASKS)))


def test_absent_task_logs_no_value_and_windows_follow_iterations(training):
    both, only_sal, only_seg = [(1, 1), (1, 0)], [(0, 1)], [(1, 0)]
    tag = training.step(both, seed=0)
    v = training.values
    assert tag['semseg.loss'] == pytest.approx(v[0]['semseg.loss'])
    assert tag['sal.loss'] == pytest.approx(v[0]['sal.loss'])
    # a batch without semseg: semseg is not logged (not its last loss again)
    tag = training.step(only_sal, seed=1)
    assert 'semseg.loss' not in v[1]
    assert 'semseg.loss' not in tag
    assert tag['sal.loss'] == pytest.approx(
        np.mean([v[0]['sal.loss'], v[1]['sal.loss']]))
    assert tag['loss'] == pytest.approx(np.mean([v[0]['loss'],
                                                 v[1]['loss']]))
    # semseg back: the mean of the batches that had it, sal hidden
    tag = training.step(only_seg, seed=2)
    assert 'sal.loss' not in tag
    assert tag['semseg.loss'] == pytest.approx(
        np.mean([v[0]['semseg.loss'], v[2]['semseg.loss']]))
    # 10 iterations without semseg, then one with it: the 10-iteration
    # window holds only that batch (the mean does not reach back to
    # iterations 1 and 3)
    for k in range(10):
        tag = training.step(only_sal, seed=3 + k)
        assert 'semseg.loss' not in tag and 'sal.loss' in tag
        assert np.isfinite(tag['sal.loss'])
    tag = training.step(only_seg, seed=20)
    assert tag['semseg.loss'] == pytest.approx(v[-1]['semseg.loss'])
    assert 'sal.loss' not in tag
    # the history of sal weights only its batches: 12 with sal, the others
    # are count-0 skip entries
    hidden = training.hub.get_info(training.model.HIDDEN_LOSS_LOGS)
    logs, counts = hidden['train/sal.loss'].data
    assert len(logs) == len(v) and counts.sum() == 12
    assert logs[counts == 0].sum() == 0
    # sal back: the mean of its batches among the last 10 iterations (9)
    tag = training.step(only_sal, seed=21)
    recent = [x['sal.loss'] for x in v[-10:] if 'sal.loss' in x]
    assert len(recent) == 9
    assert tag['sal.loss'] == pytest.approx(np.mean(recent))
    assert 'semseg.loss' not in tag


def test_window_of_one_never_repeats_nor_nans(training):
    training.logger = LogProcessor(window_size=1, by_epoch=False)
    plan = [[(1, 1)], [(0, 1)], [(0, 1)], [(1, 0)], [(1, 1)], [(0, 0), (0, 1)]]
    for seed, masks in enumerate(plan):
        tag = training.step(masks, seed=seed)
        now = training.values[-1]
        for key in ('semseg.loss', 'sal.loss'):
            if key in now:
                assert tag[key] == pytest.approx(now[key])
            else:
                assert key not in tag
        assert all(np.isfinite(x) for x in tag.values())


def test_total_loss_gradients_and_log_vars_unchanged():
    torch.manual_seed(0)
    model = MODELS.build(tiny_baseline_cfg(tasks=TASKS))
    plain = copy.deepcopy(model)
    plain.update_task_loss_logs = lambda log_vars: None
    MessageHub.get_instance(f'loss-log-{uuid.uuid4()}')
    for seed, masks in enumerate([[(1, 1)], [(0, 1)], [(1, 0)]]):
        inputs, samples = make_batch(masks, tasks=TASKS, seed=seed)
        out = []
        for m in (model, plain):
            m.zero_grad()
            losses = m(inputs, copy.deepcopy(samples), mode='loss')
            loss, log_vars = m.parse_losses(losses)
            loss.backward()
            out.append((loss.detach(), dict(log_vars),
                        [p.grad.clone() for p in m.parameters()
                         if p.grad is not None]))
        (l1, v1, g1), (l2, v2, g2) = out
        assert torch.equal(l1, l2)
        assert v1.keys() == v2.keys()
        assert all(torch.equal(v1[k], v2[k]) for k in v1)
        assert len(g1) == len(g2) and all(
            torch.equal(a, b) for a, b in zip(g1, g2))


def test_eval_mode_and_other_keys_are_left_alone(training):
    training.step([(1, 1)], seed=0)
    hub = training.hub
    hub.update_scalar('train/semseg.acc', 1.0)  # not a loss key
    hub.update_scalar('train/depth.loss', 2.0)  # not a task of the model
    training.model.eval()
    training.model.update_task_loss_logs({'loss': torch.tensor(1.)})
    assert 'train/semseg.loss' in hub.log_scalars  # eval: no change
    training.model.train()
    training.model.update_task_loss_logs({'loss': torch.tensor(1.)})
    assert 'train/semseg.loss' not in hub.log_scalars
    assert 'train/sal.loss' not in hub.log_scalars
    assert hub.get_scalar('train/semseg.acc').current() == 1.0
    assert hub.get_scalar('train/depth.loss').current() == 2.0
