# Copyright (c) diffmtl contributors. All rights reserved.
"""A few optimisation steps on a fixed synthetic batch lower the loss."""
import pytest
import torch

from diffmtl.registry import MODELS
from _mtl_model_utils import (make_batch, tiny_baseline_cfg,
                              tiny_diffusion_cfg)

pytestmark = pytest.mark.slow

torch.set_num_threads(1)

MASKS = [(1, 0, 0, 0, 0), (0, 1, 0, 0, 0), (0, 0, 1, 0, 1), (1, 0, 0, 1, 1)]


def _loss(model, inputs, samples):
    torch.manual_seed(0)  # same diffusion noise for every evaluation
    return sum(model.loss(inputs, samples).values())


@pytest.mark.parametrize('cfg', [
    tiny_diffusion_cfg(mode='feature'),
    tiny_diffusion_cfg(mode='prediction'),
    tiny_diffusion_cfg(mode='prediction', use_diffusion=False),
    tiny_diffusion_cfg(mode='prediction', multi_task_condition=False),
    tiny_baseline_cfg(),
    tiny_baseline_cfg(tasks=('normals', )),
],
                         ids=[
                             'feature', 'prediction', 'wo_diffusion',
                             'wo_mt_cond', 'mtl_baseline', 'single_task'
                         ])
def test_few_iterations_lower_the_loss(cfg):
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    tasks = model.tasks
    masks = [m[:len(tasks)] if len(tasks) > 1 else (1, ) for m in MASKS]
    inputs, samples = make_batch(masks, tasks=tasks)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    first = _loss(model, inputs, samples)
    for _ in range(6):
        opt.zero_grad()
        loss = _loss(model, inputs, samples)
        loss.backward()
        opt.step()
    last = _loss(model, inputs, samples)
    assert torch.isfinite(first) and torch.isfinite(last)
    assert last.item() < 0.9 * first.item()
