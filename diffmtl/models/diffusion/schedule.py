# Copyright (c) diffmtl contributors. All rights reserved.
"""The Gaussian diffusion schedule of DiffusionMTL (x0-parameterised)."""
from typing import Optional

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from diffmtl.registry import MODELS


@MODELS.register_module()
class DiffusionSchedule(nn.Module):
    """Noise schedule, forward noising and posterior step.

    ``beta_t = linspace(sqrt(beta_start), sqrt(beta_end), S)_t ** 2``
    (``'sqrt_linear'``, "linear" in the LDM sense) or plain ``'linear'``,
    computed in float64 and stored as float32 buffers. Step indices are
    0-based (``t = 0..S-1``).

    Args:
        num_steps (int): Number of diffusion steps S. Defaults to 2.
        beta_start (float): First beta. Defaults to 1e-3.
        beta_end (float): Last beta. Defaults to 1e-2.
        beta_schedule (str): ``'sqrt_linear'`` or ``'linear'``.

    Buffers (all (S,)): ``betas``, ``alphas_cumprod``,
    ``alphas_cumprod_prev``, ``sqrt_alphas_cumprod``,
    ``sqrt_one_minus_alphas_cumprod``, ``posterior_variance``,
    ``posterior_log_variance_clipped``, ``posterior_mean_coef1`` (c1),
    ``posterior_mean_coef2`` (c2).
    """

    def __init__(self,
                 num_steps: int = 2,
                 beta_start: float = 1e-3,
                 beta_end: float = 1e-2,
                 beta_schedule: str = 'sqrt_linear'):
        super().__init__()
        if num_steps < 1:
            raise ValueError(f'DiffusionSchedule: num_steps must be >= 1, got '
                             f'{num_steps}')
        self.num_steps = int(num_steps)
        if beta_schedule == 'sqrt_linear':
            betas = np.linspace(
                beta_start**0.5, beta_end**0.5, num_steps,
                dtype=np.float64)**2
        elif beta_schedule == 'linear':
            betas = np.linspace(
                beta_start, beta_end, num_steps, dtype=np.float64)
        else:
            raise ValueError(f'DiffusionSchedule: unknown beta_schedule '
                             f'{beta_schedule!r} (sqrt_linear or linear)')
        alphas = 1.0 - betas
        ac = np.cumprod(alphas)
        ac_prev = np.append(1.0, ac[:-1])
        post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
        consts = dict(
            betas=betas,
            alphas_cumprod=ac,
            alphas_cumprod_prev=ac_prev,
            sqrt_alphas_cumprod=np.sqrt(ac),
            sqrt_one_minus_alphas_cumprod=np.sqrt(1.0 - ac),
            posterior_variance=post_var,
            posterior_log_variance_clipped=np.log(
                np.maximum(post_var, 1e-20)),
            posterior_mean_coef1=betas * np.sqrt(ac_prev) / (1.0 - ac),
            posterior_mean_coef2=(1.0 - ac_prev) * np.sqrt(alphas) /
            (1.0 - ac))
        for k, v in consts.items():
            self.register_buffer(
                k, torch.tensor(v, dtype=torch.float32), persistent=False)

    def _check(self, t: int) -> int:
        t = int(t)
        if not 0 <= t < self.num_steps:
            raise IndexError(f'DiffusionSchedule: step {t} outside '
                             f'[0, {self.num_steps})')
        return t

    def q_sample(self, x_start: Tensor, t: int,
                 noise: Optional[Tensor] = None) -> Tensor:
        """``sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``; ``noise=None`` gives
        the mean (no noise)."""
        t = self._check(t)
        out = self.sqrt_alphas_cumprod[t] * x_start
        if noise is not None:
            out = out + self.sqrt_one_minus_alphas_cumprod[t] * noise
        return out

    def posterior_sample(self, x0: Tensor, x_t: Tensor, t: int,
                         noise: Optional[Tensor] = None) -> Tensor:
        """Sample ``x_{t-1} ~ q(x_{t-1} | x_t, x0)`` for ``t >= 1``.

        ``c1_t x0 + c2_t x_t + sigma_t eps``; ``noise=None`` returns the
        posterior mean.
        """
        t = self._check(t)
        if t == 0:
            raise IndexError('DiffusionSchedule: the posterior step needs '
                             't >= 1; step 0 outputs x0 directly')
        out = (self.posterior_mean_coef1[t] * x0 +
               self.posterior_mean_coef2[t] * x_t)
        if noise is not None:
            std = torch.exp(0.5 * self.posterior_log_variance_clipped[t])
            out = out + std * noise
        return out

    def extra_repr(self) -> str:
        return f'num_steps={self.num_steps}'
