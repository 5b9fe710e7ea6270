# Copyright (c) diffmtl contributors. All rights reserved.
"""The loss-finiteness check under mixed precision: a non-finite float16
loss is a step the AMP GradScaler skips (up to a limit), not a crash; the
losses' deferred label checks still stop a run before the optimizer step.

mmengine's ``AmpOptimWrapper`` asserts CUDA; these tests run it on the CPU
with a CPU ``GradScaler`` and CPU autocast (float16 and bfloat16), the same
code path as on a GPU apart from the device."""
import contextlib
import functools

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from diffmtl.registry import MODELS
from _mtl_model_utils import make_batch, tiny_diffusion_cfg

torch.set_num_threads(1)


@pytest.fixture
def amp_wrapper(monkeypatch):
    """``make(model, dtype)``: an AmpOptimWrapper (dynamic loss scale,
    a GradScaler) running on the CPU."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper as amp
    monkeypatch.setattr(amp, 'is_cuda_available', lambda: True)
    monkeypatch.setattr(amp, 'GradScaler',
                        functools.partial(torch.amp.GradScaler, device='cpu'))

    class CpuAmpOptimWrapper(amp.AmpOptimWrapper):

        @contextlib.contextmanager
        def optim_context(self, model):
            with OptimWrapper.optim_context(self, model), torch.autocast(
                    'cpu', dtype=self.cast_dtype):
                yield

    def make(model, dtype, init_scale=8.):
        # a small initial scale: the default 2**16 overflows the float16
        # gradients of the tiny model, and the first steps are skipped
        return CpuAmpOptimWrapper(
            optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
            loss_scale=dict(init_scale=init_scale),
            dtype=dtype)

    return make


def _model(**train_cfg):
    torch.manual_seed(0)
    MessageHub.get_instance('amp_finite_loss')
    model = MODELS.build(tiny_diffusion_cfg(train_cfg=train_cfg))
    model.train()
    return model


def _batch():
    return make_batch([(1, 0, 1, 0, 0), (0, 1, 0, 1, 1)])


def _step(model, optim, batch):
    inputs, samples = batch
    return model.train_step(dict(inputs=inputs, data_samples=samples), optim)


def _params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def _unchanged(model, before):
    return all(torch.equal(v, before[k]) for k, v in model.named_parameters())


def _poison(model, task='semseg', value=float('inf')):
    """Make ``task``'s loss non-finite until the returned undo is called."""
    loss = model.task_losses[task]
    original = loss.forward
    loss.forward = lambda pred, target: original(pred, target) * value
    return lambda: setattr(loss, 'forward', original)


@pytest.mark.parametrize('dtype', ['float16', 'bfloat16'])
def test_amp_train_steps_give_finite_losses(amp_wrapper, dtype):
    model = _model()
    optim = amp_wrapper(model, dtype)
    before = _params(model)
    for _ in range(2):
        log_vars = _step(model, optim, _batch())
        assert torch.isfinite(log_vars['loss'])
        assert all(torch.isfinite(v) for v in log_vars.values())
    assert model._loss_autocast_dtype == getattr(torch, dtype)
    assert not _unchanged(model, before)


def test_non_finite_fp16_loss_is_a_skipped_step(amp_wrapper):
    model = _model()
    optim = amp_wrapper(model, 'float16')
    scale = optim.loss_scaler.get_scale()
    undo = _poison(model)
    before = _params(model)
    log_vars = _step(model, optim, _batch())  # no FloatingPointError
    assert not torch.isfinite(log_vars['loss'])
    assert not torch.isfinite(log_vars['semseg.loss'])
    assert _unchanged(model, before)  # the GradScaler skipped the step
    assert optim.loss_scaler.get_scale() == scale / 2
    assert model._fp16_nonfinite_streak == 1
    undo()
    log_vars = _step(model, optim, _batch())
    assert torch.isfinite(log_vars['loss'])
    assert not _unchanged(model, before)  # this step was taken
    assert model._fp16_nonfinite_streak == 0


def test_consecutive_non_finite_fp16_losses_stop_at_the_limit(amp_wrapper):
    model = _model(fp16_nonfinite_limit=2)
    optim = amp_wrapper(model, 'float16')
    _poison(model, value=float('nan'))
    for _ in range(2):
        _step(model, optim, _batch())
    before = _params(model)
    with pytest.raises(FloatingPointError,
                       match=r'3 consecutive float16 .*semseg\.loss'):
        _step(model, optim, _batch())
    assert _unchanged(model, before)


def test_non_finite_bf16_or_fp32_loss_still_stops_the_run(amp_wrapper):
    model = _model()
    _poison(model)
    before = _params(model)
    with pytest.raises(FloatingPointError, match=r'semseg\.loss'):
        _step(model, amp_wrapper(model, 'bfloat16'), _batch())
    with pytest.raises(FloatingPointError, match=r'semseg\.loss'):
        _step(model, OptimWrapper(torch.optim.SGD(model.parameters(), 0.1)),
              _batch())
    assert _unchanged(model, before)


@pytest.mark.parametrize('dtype', [None, 'float16'])
def test_bad_labels_stop_the_run_before_the_step(amp_wrapper, dtype):
    """The losses' label checks are read in parse_losses (one host sync
    per iteration, with the finiteness flag), before any optimizer step;
    the fp16 allowance does not cover them."""
    model = _model()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1)) \
        if dtype is None else amp_wrapper(model, dtype)
    inputs, samples = _batch()
    gt = samples[0].gt_sem_seg.data
    gt[0, 0, 0] = 7  # the tiny model has 5 semseg classes
    before = _params(model)
    with pytest.raises(ValueError, match=r'labels must lie in \[0, 5\)'):
        _step(model, optim, (inputs, samples))
    assert _unchanged(model, before)
    assert model._pending_data_checks == []
