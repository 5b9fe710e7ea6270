# Copyright (c) diffmtl contributors. All rights reserved.
"""Sinusoidal diffusion-step embedding followed by an MLP (DiT style)."""
import math

import torch
import torch.nn as nn
from torch import Tensor

from diffmtl.registry import MODELS


@MODELS.register_module()
class StepEmbedding(nn.Module):
    """Embed integer step indices into ``channels``-d vectors.

    ``[cos(t f), sin(t f)]`` with ``f_i = exp(-ln(max_period) i / half)``
    (cosine first), then ``Linear -> SiLU -> Linear``. Linear weights are
    drawn from N(0, 0.02^2), biases keep PyTorch's default init.

    Args:
        channels (int): Output width. Defaults to 512.
        freq_dim (int): Sinusoid width (even). Defaults to 256.
        max_period (float): Defaults to 10000.
    """

    def __init__(self,
                 channels: int = 512,
                 freq_dim: int = 256,
                 max_period: float = 10000.):
        super().__init__()
        if freq_dim % 2:
            raise ValueError(f'StepEmbedding: freq_dim must be even, got '
                             f'{freq_dim}')
        self.freq_dim = freq_dim
        self.max_period = max_period
        self.mlp = nn.Sequential(
            nn.Linear(freq_dim, channels), nn.SiLU(),
            nn.Linear(channels, channels))
        nn.init.normal_(self.mlp[0].weight, std=0.02)
        nn.init.normal_(self.mlp[2].weight, std=0.02)

    def sinusoid(self, t: Tensor) -> Tensor:
        """(N,) step indices -> (N, freq_dim) features."""
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(self.max_period) * torch.arange(
            half, dtype=torch.float32, device=t.device) / half)
        args = t.float()[:, None] * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    def forward(self, t: Tensor) -> Tensor:
        """(N,) step indices -> (N, channels)."""
        return self.mlp(self.sinusoid(t).to(self.mlp[0].weight.dtype))
