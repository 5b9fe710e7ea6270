# Copyright (c) diffmtl contributors. All rights reserved.
"""The Gaussian diffusion schedule of DiffusionMTL (x0-parameterised)."""
from typing import Optional

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from diffmtl.registry import MODELS

__all__ = ['DiffusionSchedule', 'BETA_SCHEDULES', 'make_betas']

#: ``beta_schedule`` names, as the reference (LDM's ``make_beta_schedule``):
#: ``'linear'`` is linear in ``sqrt(beta)`` (the default), ``'sqrt_linear'``
#: is linear in ``beta``. With ``num_steps <= 2`` both give
#: ``[beta_start, beta_end]`` (up to float64 rounding).
BETA_SCHEDULES = ('linear', 'sqrt_linear')


def make_betas(num_steps: int, beta_start: float, beta_end: float,
               beta_schedule: str = 'linear') -> np.ndarray:
    """Betas of a schedule, in float64 (the reference's names).

    Args:
        num_steps (int): Number of steps S.
        beta_start (float): First beta.
        beta_end (float): Last beta.
        beta_schedule (str): ``'linear'``:
            ``linspace(sqrt(beta_start), sqrt(beta_end), S) ** 2`` (the
            reference's default, "linear" in the LDM sense);
            ``'sqrt_linear'``: ``linspace(beta_start, beta_end, S)``.

    Returns:
        np.ndarray: (S,) float64 betas.
    """
    if beta_schedule == 'linear':
        return np.linspace(
            beta_start**0.5, beta_end**0.5, num_steps, dtype=np.float64)**2
    if beta_schedule == 'sqrt_linear':
        return np.linspace(beta_start, beta_end, num_steps, dtype=np.float64)
    raise ValueError(f'DiffusionSchedule: unknown beta_schedule '
                     f'{beta_schedule!r}; expected one of {BETA_SCHEDULES} '
                     "('linear' = linear in sqrt(beta), the reference's "
                     "default; 'sqrt_linear' = linear in beta)")


@MODELS.register_module()
class DiffusionSchedule(nn.Module):
    """Noise schedule, forward noising and posterior step.

    ``beta_t = linspace(sqrt(beta_start), sqrt(beta_end), S)_t ** 2``
    (``'linear'``, "linear" in the LDM sense and the reference's default)
    or ``linspace(beta_start, beta_end, S)_t`` (``'sqrt_linear'``), named
    as the reference's (LDM's) ``make_beta_schedule``; computed in float64
    and stored as float32 buffers. Step indices are 0-based
    (``t = 0..S-1``).

    With S <= 2 both schedules give ``[beta_start, beta_end]`` (up to
    float64 rounding); they differ from S = 3 on.

    ``DiffusionMTL`` builds it from its ``schedule`` config, which is the
    one place of ``num_steps`` and ``beta_*`` (e.g. ``--cfg-options
    model.schedule.num_steps=3``); a replacement provides ``num_steps``,
    :meth:`q_sample` and :meth:`posterior_sample`.

    Args:
        num_steps (int): Number of diffusion steps S. Defaults to 2.
        beta_start (float): First beta. Defaults to 1e-3.
        beta_end (float): Last beta. Defaults to 1e-2.
        beta_schedule (str): ``'linear'`` or ``'sqrt_linear'``. Defaults
            to 'linear'.

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
                 beta_schedule: str = 'linear'):
        super().__init__()
        if num_steps < 1:
            raise ValueError(f'DiffusionSchedule: num_steps must be >= 1, got '
                             f'{num_steps}')
        self.num_steps = int(num_steps)
        self.beta_schedule = beta_schedule
        betas = make_betas(num_steps, beta_start, beta_end, beta_schedule)
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
        return (f'num_steps={self.num_steps}, '
                f'beta_schedule={self.beta_schedule!r}')
