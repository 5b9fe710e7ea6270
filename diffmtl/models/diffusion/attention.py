# Copyright (c) diffmtl contributors. All rights reserved.
"""Token attention blocks of the multi-task denoiser."""
import torch.nn as nn
from torch import Tensor

from diffmtl.registry import MODELS


class MultiHeadAttention(nn.Module):
    """Multi-head attention with explicit matmuls (counted by the MAC
    counter of :mod:`diffmtl.models.utils.complexity`).

    Query projection ``Linear(C, C, bias=False)``; key/value projection
    ``Linear(C, 2C, bias=False)`` whose first C outputs are K and last C are
    V (per-head contiguous); output projection ``Linear(C, C)``.

    Args:
        dim (int): Token width C.
        num_heads (int): Number of heads; ``dim`` must be divisible by it.
    """

    def __init__(self, dim: int, num_heads: int = 4):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'MultiHeadAttention: dim {dim} not divisible by '
                             f'num_heads {num_heads}')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(dim, dim * 2, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, query: Tensor, key_value: Tensor) -> Tensor:
        """Args: query (N, Lq, C); key_value (N, Lk, C).

        Returns:
            Tensor: (N, Lq, C).
        """
        n, lq, c = query.shape
        lk = key_value.shape[1]
        h, d = self.num_heads, self.head_dim
        q = self.q(query).reshape(n, lq, h, d).transpose(1, 2)
        kv = self.kv(key_value).reshape(n, lk, 2, h, d).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(n, lq, c)
        return self.proj(out)


def _mlp(dim: int, ratio: float) -> nn.Sequential:
    hidden = int(dim * ratio)
    return nn.Sequential(
        nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


def _xavier_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@MODELS.register_module()
class CrossAttentionBlock(nn.Module):
    """Pre-norm cross-attention block; the query stream is the output.

    In order: ``E += MLP_kv(LN_kv2(E))``; ``Q += Attn(LN_1(Q), LN_kv(E))``;
    ``Q += MLP(LN_2(Q))``. Linear layers are Xavier-uniform initialised with
    zero biases.

    Args:
        dim (int): Token width. Defaults to 512.
        num_heads (int): Attention heads. Defaults to 4.
        mlp_ratio (float): MLP hidden ratio. Defaults to 4.
    """

    def __init__(self, dim: int = 512, num_heads: int = 4,
                 mlp_ratio: float = 4.):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.norm_kv2 = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, num_heads)
        self.mlp = _mlp(dim, mlp_ratio)
        self.mlp_kv = _mlp(dim, mlp_ratio)
        _xavier_init(self)

    def forward(self, query: Tensor, key_value: Tensor):
        """Args: query (N, Lq, C), key_value (N, Lk, C).

        Returns:
            tuple[Tensor, Tensor]: updated query and key/value streams.
        """
        key_value = key_value + self.mlp_kv(self.norm_kv2(key_value))
        query = query + self.attn(
            self.norm1(query), self.norm_kv(key_value))
        query = query + self.mlp(self.norm2(query))
        return query, key_value


@MODELS.register_module()
class SelfAttentionBlock(nn.Module):
    """Standard pre-norm transformer block over one token stream (the
    "w/o multi-task conditioning" ablation).

    ``X += Attn(LN_1(X), LN_1(X))``; ``X += MLP(LN_2(X))``.

    Args:
        dim (int): Token width. Defaults to 512.
        num_heads (int): Attention heads. Defaults to 4.
        mlp_ratio (float): MLP hidden ratio. Defaults to 4.
    """

    def __init__(self, dim: int = 512, num_heads: int = 4,
                 mlp_ratio: float = 4.):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, num_heads)
        self.mlp = _mlp(dim, mlp_ratio)
        _xavier_init(self)

    def forward(self, tokens: Tensor) -> Tensor:
        """(N, L, C) -> (N, L, C)."""
        x = self.norm1(tokens)
        tokens = tokens + self.attn(x, x)
        return tokens + self.mlp(self.norm2(tokens))
