# Copyright (c) diffmtl contributors. All rights reserved.
import pytest
import torch

from diffmtl.models.diffusion import DiffusionSchedule, StepEmbedding


def test_two_step_constants_match_reference_table():
    s = DiffusionSchedule(num_steps=2)
    approx = lambda v: pytest.approx(v, rel=1e-5, abs=1e-8)  # noqa: E731
    assert s.betas.tolist() == approx([0.001, 0.01])
    assert s.alphas_cumprod.tolist() == approx([0.999, 0.98901])
    assert s.sqrt_alphas_cumprod.tolist() == approx([0.99949987, 0.99448982])
    assert s.sqrt_one_minus_alphas_cumprod.tolist() == approx(
        [0.03162278, 0.10483320])
    assert s.posterior_variance.tolist() == approx([0.0, 9.099181e-4])
    assert s.posterior_mean_coef1.tolist() == approx([1.0, 0.90946303])
    assert s.posterior_mean_coef2.tolist() == approx([0.0, 0.09053571])
    assert torch.exp(0.5 * s.posterior_log_variance_clipped[1]).item() == \
        approx(0.03016485)


def test_three_step_betas():
    s = DiffusionSchedule(num_steps=3)
    assert s.betas.tolist() == pytest.approx([0.001, 0.00433114, 0.01],
                                             rel=1e-5)


def test_schedule_names_follow_the_reference_s3():
    """'linear' = linear in sqrt(beta) (the reference's / LDM's default),
    'sqrt_linear' = linear in beta; S = 3, betas by hand."""
    import math
    lo, hi = math.sqrt(1e-3), math.sqrt(1e-2)
    linear = [lo**2, ((lo + hi) / 2)**2, hi**2]  # 0.001, 0.0043311, 0.01
    sqrt_linear = [1e-3, (1e-3 + 1e-2) / 2, 1e-2]  # 0.001, 0.0055, 0.01
    assert linear[1] == pytest.approx(0.00433114, rel=1e-6)
    s = DiffusionSchedule(num_steps=3, beta_schedule='linear')
    assert s.betas.tolist() == pytest.approx(linear, rel=1e-6)
    s = DiffusionSchedule(num_steps=3, beta_schedule='sqrt_linear')
    assert s.betas.tolist() == pytest.approx(sqrt_linear, rel=1e-6)
    assert s.betas[1].item() == pytest.approx(0.0055, rel=1e-6)
    assert "beta_schedule='sqrt_linear'" in repr(s)
    with pytest.raises(ValueError, match='linear in sqrt'):
        DiffusionSchedule(beta_schedule='quadratic')


def test_default_schedule_is_bit_identical_and_s2_names_agree():
    """The betas every config gets (S = 2, default / 'linear') are
    bit-identical to linspace(sqrt(b0), sqrt(b1), S) ** 2, and with S = 2
    both names give the same float32 buffers (no warning)."""
    import warnings

    import numpy as np
    old = np.linspace(1e-3**0.5, 1e-2**0.5, 2, dtype=np.float64)**2
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        default = DiffusionSchedule()
        named = DiffusionSchedule(num_steps=2, beta_schedule='linear')
        other = DiffusionSchedule(num_steps=2, beta_schedule='sqrt_linear')
    ref = torch.tensor(old, dtype=torch.float32)
    assert torch.equal(default.betas, ref) and torch.equal(named.betas, ref)
    for name, buf in default.named_buffers():
        assert torch.equal(buf, dict(other.named_buffers())[name]), name
    # the model default and the shipped configs name the same schedule
    import inspect
    import os.path as osp

    from mmengine.config import Config

    sig = inspect.signature(DiffusionSchedule.__init__)
    assert sig.parameters['beta_schedule'].default == 'linear'
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(
        osp.join(repo, 'configs', '_base_', 'models', 'diffmtl_r18.py'))
    assert cfg.model.schedule.beta_schedule == 'linear'
    assert cfg.model.schedule.num_steps == 2


def test_q_sample_and_posterior():
    s = DiffusionSchedule(num_steps=2)
    x0 = torch.full((1, 2), 2.0)
    eps = torch.full((1, 2), -1.0)
    assert s.q_sample(x0, 1, eps)[0, 0].item() == pytest.approx(
        2 * 0.99448982 - 0.10483320, rel=1e-6)
    assert s.q_sample(x0, 1, None)[0, 0].item() == pytest.approx(
        2 * 0.99448982, rel=1e-6)
    xt = torch.full((1, 2), 3.0)
    out = s.posterior_sample(x0, xt, 1, eps)
    assert out[0, 0].item() == pytest.approx(
        0.90946303 * 2 + 0.09053571 * 3 - 0.03016485, rel=1e-5)
    with pytest.raises(IndexError):
        s.posterior_sample(x0, xt, 0)
    with pytest.raises(ValueError, match='beta_schedule'):
        DiffusionSchedule(beta_schedule='cosine')


def test_step_embedding_sinusoid_cos_first():
    emb = StepEmbedding(channels=4, freq_dim=4)
    sin = emb.sinusoid(torch.tensor([0, 1]))
    # t = 0 -> cos = 1, sin = 0; t = 1 -> f = [1, 1e-2]
    assert sin[0].tolist() == pytest.approx([1, 1, 0, 0])
    assert sin[1].tolist() == pytest.approx(
        [torch.cos(torch.tensor(1.)).item(),
         torch.cos(torch.tensor(0.01)).item(),
         torch.sin(torch.tensor(1.)).item(),
         torch.sin(torch.tensor(0.01)).item()], rel=1e-6)
    assert emb(torch.tensor([0, 1])).shape == (2, 4)
