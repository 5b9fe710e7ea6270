# Copyright (c) diffmtl contributors. All rights reserved.
"""A NaN loss stops training with an error naming the term, before the
optimizer touches the weights."""
import pytest
import torch
from mmengine.optim import OptimWrapper

from diffmtl.registry import MODELS
from _mtl_model_utils import make_batch, tiny_diffusion_cfg

torch.set_num_threads(1)


def _train_step(model, inputs, samples):
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    # the model's data preprocessor is the identity: inputs are tensors
    return model.train_step(dict(inputs=inputs, data_samples=samples), optim)


def _nan_semseg(model):
    ce = model.task_losses['semseg']
    original = ce.forward
    ce.forward = lambda pred, target: original(pred, target) * float('nan')


def test_nan_loss_raises_naming_the_term_and_keeps_weights():
    torch.manual_seed(0)
    model = MODELS.build(tiny_diffusion_cfg())
    inputs, samples = make_batch([(1, 0, 0, 0, 0), (0, 0, 1, 0, 0)])
    _nan_semseg(model)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    with pytest.raises(FloatingPointError, match=r'semseg\.loss'):
        _train_step(model, inputs, samples)
    # no optimizer step: every parameter is unchanged (BN running stats,
    # buffers of the forward pass, may move)
    for key, value in model.named_parameters():
        assert torch.equal(value, before[key]), key


def test_finite_check_can_be_switched_off():
    torch.manual_seed(0)
    model = MODELS.build(
        tiny_diffusion_cfg(train_cfg=dict(check_finite_loss=False)))
    inputs, samples = make_batch([(1, 0, 0, 0, 0), (0, 0, 1, 0, 0)])
    _nan_semseg(model)
    log_vars = _train_step(model, inputs, samples)
    assert torch.isnan(log_vars['loss'])
    assert torch.isfinite(log_vars['sal.loss'])
