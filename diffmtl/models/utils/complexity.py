# Copyright (c) diffmtl contributors. All rights reserved.
"""Parameter and multiply-accumulate (MAC) counting.

MACs are counted the way the DiffusionMTL paper's "FLOPs" column was
reproduced (``docs/en/models.md``, *Complexity*): convolutions (``out
elements x in/groups x kernel area``), linear layers (``out elements x in
features``) and the two matmuls of every :class:`MultiHeadAttention`
(``2 x N x Lq x Lk x C``).
Normalisation, activations, additions, softmax and interpolation are not
counted. The model can live on the ``meta`` device, so counting a 512x512
forward pass costs no compute.
"""
from collections import defaultdict
from typing import Callable, Dict, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from ..diffusion.attention import MultiHeadAttention

__all__ = ['count_parameters', 'MACCounter', 'count_macs']


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared tensors counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def _conv_macs(m: nn.modules.conv._ConvNd, inputs, output: Tensor) -> int:
    k = 1
    for s in m.kernel_size:
        k *= s
    return output.numel() * (m.in_channels // m.groups) * k


def _linear_macs(m: nn.Linear, inputs, output: Tensor) -> int:
    return output.numel() * m.in_features


def _attention_macs(m: MultiHeadAttention, inputs, output: Tensor) -> int:
    query, key_value = inputs[0], inputs[1]
    n, lq, c = query.shape
    lk = key_value.shape[1]
    return 2 * n * lq * lk * c  # q @ k^T and attn @ v


class MACCounter:
    """Context manager that sums MACs of the hooked layers per module.

    Example:
        >>> with MACCounter(model) as counter:
        ...     model(x)
        >>> counter.total

    Args:
        model (nn.Module): The model to hook.
    """

    RULES: Dict[type, Callable] = {
        nn.modules.conv._ConvNd: _conv_macs,
        nn.Linear: _linear_macs,
        MultiHeadAttention: _attention_macs,
    }

    def __init__(self, model: nn.Module):
        self.model = model
        self.per_module: Dict[str, int] = defaultdict(int)
        self._handles = []

    @property
    def total(self) -> int:
        return int(sum(self.per_module.values()))

    def by_prefix(self, depth: int = 1) -> Dict[str, int]:
        """MACs summed by the first ``depth`` components of module names."""
        out: Dict[str, int] = defaultdict(int)
        for name, v in self.per_module.items():
            out['.'.join(name.split('.')[:depth])] += v
        return dict(out)

    def __enter__(self) -> 'MACCounter':
        for name, m in self.model.named_modules():
            for cls, rule in self.RULES.items():
                if isinstance(m, cls):
                    self._handles.append(
                        m.register_forward_hook(self._hook(name, rule)))
                    break
        return self

    def _hook(self, name: str, rule: Callable):

        def hook(module, inputs, output):
            self.per_module[name] += int(rule(module, inputs, output))

        return hook

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def count_macs(model: nn.Module, inputs: Tensor,
               forward: Callable = None) -> Tuple[int, MACCounter]:
    """Run ``forward(inputs)`` (default ``model(inputs)``) under a
    :class:`MACCounter` in eval mode without gradients.

    Returns:
        tuple[int, MACCounter]: total MACs and the counter.
    """
    forward = forward or model
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), MACCounter(model) as counter:
            forward(inputs)
    finally:
        model.train(was_training)
    return counter.total, counter
