# Copyright (c) diffmtl contributors. All rights reserved.
"""Toy components that draw random numbers, for the resume/kill tests.

Imported by the configs the tests write (``custom_imports``, with this
directory on ``PYTHONPATH``):

* ``NoisyRegressionDataset`` augments every sample with numpy, Python and
  torch random numbers (in dataloader workers when ``num_workers > 0``);
* ``NoisyRegressor`` draws training noise from the global generators
  (like DiffusionMTL's ``torch.randn_like`` diffusion noise) and also
  draws random numbers while predicting (validation);
* ``LossRecorderHook`` appends every iteration's exact loss to
  ``<work_dir>/losses.jsonl`` and, with ``DIFFMTL_TEST_KILL_AT_ITER=N``,
  SIGKILLs its own process after iteration ``N``.

With ``DIFFMTL_TEST_SLOW_WRITE=SECONDS`` importing this module makes
diffmtl's atomic writer write half of each file, sleep, then write the
rest, so that tests can kill a process in the middle of a checkpoint
write.
"""
import json
import os
import os.path as osp
import random
import signal
import time

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from toy_components import ToyRegressionDataset, ToyRegressor

from diffmtl.engine import fileio
from diffmtl.registry import DATASETS, HOOKS, MODELS

KILL_ENV = 'DIFFMTL_TEST_KILL_AT_ITER'
SLOW_WRITE_ENV = 'DIFFMTL_TEST_SLOW_WRITE'


@DATASETS.register_module()
class NoisyRegressionDataset(ToyRegressionDataset):
    """``ToyRegressionDataset`` with random augmentation of ``x``."""

    def __getitem__(self, idx: int) -> dict:
        item = super().__getitem__(idx)
        noise = torch.from_numpy(
            np.random.normal(0, 0.1, item['inputs'].shape).astype(np.float32))
        scale = 1 + 0.05 * (random.random() - 0.5)
        jitter = 0.05 * torch.rand(item['inputs'].shape)
        item['inputs'] = (item['inputs'] + noise + jitter) * scale
        return item


@MODELS.register_module()
class NoisyRegressor(ToyRegressor):
    """``ToyRegressor`` with noise from the global RNGs while training."""

    def forward(self,
                inputs: torch.Tensor,
                data_samples: torch.Tensor,
                mode: str = 'tensor'):
        if mode == 'loss':
            noisy = inputs + 0.1 * torch.randn_like(inputs)
            gain = 1 + 0.01 * float(np.random.randn()) + \
                0.01 * random.random()
            pred = self.linear(noisy) * gain
            return dict(loss_mse=((pred - data_samples)**2).mean())
        if mode == 'predict':
            # validation draws random numbers too (as DiffusionMTL's
            # inference samples its initial noise)
            torch.randn(7)
            np.random.rand(3)
            random.random()
        return super().forward(inputs, data_samples, mode)


@HOOKS.register_module()
class LossRecorderHook(Hook):
    """Record exact per-iteration losses; optionally SIGKILL the process."""

    priority = 'LOWEST'

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        step = runner.iter + 1
        loss = float(outputs['loss'])
        record = dict(
            pid=os.getpid(), rank=get_rank(), iter=step, loss=loss.hex())
        with open(osp.join(runner.work_dir, 'losses.jsonl'), 'a') as f:
            f.write(json.dumps(record) + '\n')
        if os.environ.get(KILL_ENV) == str(step):
            os.kill(os.getpid(), signal.SIGKILL)


def _slow_write_all(f, data) -> None:
    """Write half, flush, sleep, write the rest (a slow disk)."""
    delay = float(os.environ[SLOW_WRITE_ENV])
    half = len(data) // 2
    f.write(data[:half])
    f.flush()
    time.sleep(delay)
    f.write(data[half:])


if os.environ.get(SLOW_WRITE_ENV):
    fileio._write_all = _slow_write_all
