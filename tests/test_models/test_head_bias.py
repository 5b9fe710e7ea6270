# Copyright (c) diffmtl contributors. All rights reserved.
"""``TaskKind.head_bias``: a kind sets the initial bias of the layers that
predict its tasks (a focal-loss prior, say); every other weight of a
seeded model stays what it is without it."""
import math

import pytest
import torch
import torch.nn as nn
from mmengine.registry import init_default_scope

from diffmtl.registry import MODELS, TASK_KINDS
from diffmtl.structures import (TASK_SPECS, TaskSpec, get_task_kind,
                                register_task_kind, register_task_spec)
from diffmtl.tasks import BoundaryKind
from _mtl_model_utils import tiny_baseline_cfg, tiny_diffusion_cfg

PRIOR = -math.log((1 - 0.01) / 0.01)


@pytest.fixture
def prior_task():
    """A boundary-like kind whose heads start at a 1 % prior, and a task
    ``'edge_prior'`` of it; both removed again afterwards."""

    @register_task_kind(force=True)
    class PriorBoundaryKind(BoundaryKind):
        name = 'prior_boundary'
        bias = PRIOR

        def head_bias(self, spec, out_channels):
            return self.bias

    register_task_spec(
        TaskSpec(name='edge_prior', kind='prior_boundary',
                 results_key='gt_edge_prior_map', gt_field='gt_edge_prior',
                 pred_field='pred_edge_prior',
                 logits_field='logits_edge_prior'),
        force=True)
    try:
        yield get_task_kind('prior_boundary')
    finally:
        TASK_SPECS.pop('edge_prior', None)
        TASK_KINDS.module_dict.pop('prior_boundary', None)


def _build(cfg, seed=0):
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    return MODELS.build(cfg)


def _heads(model, task):
    """The convolutions that output ``task``'s logits."""
    if hasattr(model, 'init_heads'):
        final = (model.final_heads[task] if model.final_heads is not None
                 else model.denoiser.task_heads[task][-1])
        return [model.init_heads[task], final]
    return [model.decoders[task].head]


CFGS = {
    'baseline': lambda tasks: tiny_baseline_cfg(tasks=tasks),
    'feature': lambda tasks: tiny_diffusion_cfg(tasks=tasks),
    'prediction': lambda tasks: tiny_diffusion_cfg(tasks=tasks,
                                                   mode='prediction'),
}


@pytest.mark.parametrize('arch', sorted(CFGS))
def test_heads_start_at_the_kinds_bias_and_nothing_else_changes(
        arch, prior_task):
    tasks = ('semseg', 'edge_prior')
    model = _build(CFGS[arch](tasks))
    for conv in _heads(model, 'edge_prior'):
        assert torch.equal(conv.bias, torch.full_like(conv.bias, PRIOR))

    # the same model without a bias: every other value is the same
    prior_task.bias = None
    try:
        plain = _build(CFGS[arch](tasks))
    finally:
        prior_task.bias = PRIOR
    biases = {id(c.bias) for c in _heads(model, 'edge_prior')}
    differ = [
        name for (name, p), (_, q) in zip(model.named_parameters(),
                                          plain.named_parameters())
        if not torch.equal(p, q)
    ]
    want = [name for name, p in model.named_parameters() if id(p) in biases]
    assert differ == want and len(want) == 2 - (arch == 'baseline')


def test_one_value_per_channel_and_a_wrong_count(prior_task):
    prior_task.bias = [0.5]  # one value: every channel
    model = _build(tiny_baseline_cfg(tasks=('edge_prior', )))
    assert model.decoders['edge_prior'].head.bias.tolist() == [0.5]
    prior_task.bias = [0.1, 0.2, 0.3]
    with pytest.raises(ValueError, match=r"'edge_prior'.*3 values.*1 out"):
        _build(tiny_baseline_cfg(tasks=('edge_prior', )))


@MODELS.register_module(force=True)
class _NoHeadDecoder(nn.Module):

    def __init__(self, channels, out_channels, num_blocks=1, norm_cfg=None):
        super().__init__()
        self.body = nn.Conv2d(channels, out_channels, 1)

    def forward(self, x):
        return self.body(x)


def test_a_decoder_without_an_output_conv_is_named(prior_task):
    cfg = tiny_baseline_cfg(tasks=('edge_prior', ),
                            decoder=dict(type='_NoHeadDecoder'))
    with pytest.raises(ValueError, match=r"'edge_prior'.*_NoHeadDecoder"):
        _build(cfg)
    prior_task.bias = None  # asks for nothing: any decoder builds
    try:
        _build(cfg)
    finally:
        prior_task.bias = PRIOR
