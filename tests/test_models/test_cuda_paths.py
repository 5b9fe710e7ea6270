# Copyright (c) diffmtl contributors. All rights reserved.
"""CUDA code paths (``pytest -m cuda``; skipped without a CUDA device).

CPU and CUDA logits of the tiny models agree; the seeded inference noise is
drawn on the GPU from a CUDA generator and is a fixed function of the
checkpoint and the pixels there; the RNG states survive a checkpoint round
trip; AMP float16 and bfloat16 training steps give finite losses, a
non-finite float16 loss is a step the GradScaler skips, and the training
forward pass makes no host sync.

``tools/misc/gpu_check.py`` runs these on a GPU machine."""
import copy
import warnings

import pytest
import torch
from mmengine.optim import OptimWrapper

from diffmtl.registry import MODELS
from _mtl_model_utils import (PASCAL_TASKS, make_batch, tiny_baseline_cfg,
                              tiny_diffusion_cfg)

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason='needs a CUDA device'),
]


@pytest.fixture
def exact_float32():
    """No TF32 in convolutions and matmuls while the test runs."""
    saved = (torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    (torch.backends.cuda.matmul.allow_tf32,
     torch.backends.cudnn.allow_tf32) = saved


def _to(samples, device):
    return [s.to(device) for s in samples]


def _model(cfg, device='cpu'):
    torch.manual_seed(0)
    return MODELS.build(cfg).to(device)


@pytest.mark.parametrize('cfg', [
    tiny_diffusion_cfg(inference_noise=False),
    tiny_diffusion_cfg(mode='prediction', inference_noise=False),
    tiny_baseline_cfg()
],
                         ids=['feature', 'prediction', 'baseline'])
def test_cpu_and_cuda_logits_agree(cfg, exact_float32):
    cpu = _model(cfg).eval()
    gpu = copy.deepcopy(cpu).cuda().eval()
    inputs, samples = make_batch([(1, ) * 5] * 3)
    with torch.no_grad():
        ref = cpu.inference(inputs, samples)
        got = gpu.inference(inputs.cuda(), _to(samples, 'cuda'))
    for task in PASCAL_TASKS:
        assert got[task].is_cuda
        torch.testing.assert_close(
            got[task].cpu(), ref[task], rtol=0, atol=1e-3, msg=task)


def test_seeded_noise_is_drawn_on_cuda_from_a_cuda_generator():
    from diffmtl.models.segmentors.diffusion_mtl import seeded_noise
    noise = seeded_noise(1234, (3, 8, 8), 'cuda')
    assert noise.is_cuda and noise.dtype == torch.float32
    gen = torch.Generator(device='cuda').manual_seed(1234)
    assert torch.equal(noise,
                       torch.randn(3, 8, 8, generator=gen, device='cuda'))
    assert torch.equal(noise, seeded_noise(1234, (3, 8, 8), 'cuda'))
    assert not torch.equal(noise.cpu(), seeded_noise(1234, (3, 8, 8), 'cpu'))


def test_seeded_inference_on_cuda_is_a_function_of_checkpoint_and_pixels():
    model = _model(tiny_diffusion_cfg(inference_seed=0), 'cuda').eval()
    inputs, samples = make_batch([(1, ) * 5] * 4)
    inputs, samples = inputs.cuda(), _to(samples, 'cuda')
    order = [3, 1, 0, 2]
    with torch.no_grad():
        full = model.inference(inputs, samples)
        again = model.inference(inputs, samples)
        alone = model.inference(inputs[3:], samples[3:])
        shuffled = model.inference(inputs[order], [samples[i] for i in order])
        torch.manual_seed(99)  # the global RNG plays no part
        reseeded = model.inference(inputs, samples)
    for task in PASCAL_TASKS:
        assert torch.equal(again[task], full[task])
        assert torch.equal(reseeded[task], full[task])
        torch.testing.assert_close(alone[task], full[task][3:], rtol=0,
                                   atol=1e-4)
        torch.testing.assert_close(shuffled[task], full[task][order],
                                   rtol=0, atol=1e-4)


def test_rng_state_round_trip_through_a_checkpoint_on_cuda(tmp_path):
    from diffmtl.engine import (RNG_STATES_KEY, get_rng_state,
                                load_checkpoint_file, set_rng_state)
    torch.cuda.manual_seed(5)
    torch.randn(4, device='cuda')  # initialises the CUDA generator
    path = tmp_path / 'iter_1.pth'
    torch.save(
        dict(meta=dict(iter=1), state_dict={},
             **{RNG_STATES_KEY: [get_rng_state()]}), path)
    expected = (torch.randn(16, device='cuda'), torch.randn(16))
    torch.randn(100, device='cuda')  # move on
    loaded = load_checkpoint_file(str(path), map_location='cpu')
    state = loaded[RNG_STATES_KEY][0]
    assert 'cuda' in state
    set_rng_state(state)
    assert torch.equal(torch.randn(16, device='cuda'), expected[0])
    assert torch.equal(torch.randn(16), expected[1])


def _amp_wrapper(model, dtype, init_scale=2.**16):
    from mmengine.optim import AmpOptimWrapper
    return AmpOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
        loss_scale=dict(init_scale=init_scale),
        dtype=dtype)


def _step(model, optim, masks=((1, 0, 1, 0, 0), (0, 1, 0, 1, 1))):
    inputs, samples = make_batch(list(masks))
    return model.train_step(
        dict(inputs=inputs.cuda(), data_samples=_to(samples, 'cuda')), optim)


@pytest.mark.parametrize('dtype', ['float16', 'bfloat16'])
@pytest.mark.parametrize('make_cfg', [tiny_diffusion_cfg, tiny_baseline_cfg],
                         ids=['diffusion', 'baseline'])
def test_amp_train_steps_give_finite_losses(make_cfg, dtype):
    model = _model(make_cfg(), 'cuda').train()
    optim = _amp_wrapper(model, dtype, init_scale=256.)
    for _ in range(3):
        log_vars = _step(model, optim)
        for key, value in log_vars.items():
            assert torch.isfinite(value), (key, value)
    assert model._loss_autocast_dtype == getattr(torch, dtype)


def test_non_finite_fp16_loss_is_a_skipped_step_on_cuda():
    model = _model(tiny_diffusion_cfg(), 'cuda').train()
    optim = _amp_wrapper(model, 'float16', init_scale=256.)
    loss = model.task_losses['semseg']
    original = loss.forward
    loss.forward = lambda pred, target: original(pred, target) * float('inf')
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    log_vars = _step(model, optim)
    assert not torch.isfinite(log_vars['loss'])
    assert optim.loss_scaler.get_scale() == 128.
    for key, value in model.named_parameters():
        assert torch.equal(value, before[key]), key
    loss.forward = original
    assert torch.isfinite(_step(model, optim)['loss'])


@pytest.mark.parametrize('dtype', [None, torch.float16])
@pytest.mark.parametrize('make_cfg', [tiny_diffusion_cfg, tiny_baseline_cfg],
                         ids=['diffusion', 'baseline'])
def test_training_forward_makes_no_host_sync(make_cfg, dtype):
    """``forward(mode='loss')`` (label checks deferred, labelled rows from
    the host) runs without a device-to-host sync; the one sync of an
    iteration is in ``parse_losses``."""
    model = _model(make_cfg(), 'cuda').train()
    inputs, samples = make_batch([(1, 0, 1, 0, 0), (0, 1, 0, 1, 1)])
    inputs, samples = inputs.cuda(), _to(samples, 'cuda')
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn')
        try:
            with torch.autocast('cuda', dtype=dtype or torch.float32,
                                enabled=dtype is not None):
                losses = model(inputs, samples, mode='loss')
        finally:
            torch.cuda.set_sync_debug_mode('default')
    syncs = [str(w.message) for w in caught
             if 'synchroniz' in str(w.message).lower()]
    assert not syncs, syncs
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
