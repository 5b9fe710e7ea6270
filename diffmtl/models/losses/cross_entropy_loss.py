# Copyright (c) diffmtl contributors. All rights reserved.
"""Per-image softmax cross-entropy losses for discrete dense tasks."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from diffmtl.registry import MODELS
from ._utils import (accumulation_dtype, check_data, check_pair,
                     masked_image_mean)


@MODELS.register_module()
class MTCrossEntropyLoss(nn.Module):
    """Softmax cross-entropy averaged over each image's labelled pixels.

    ``loss_b = sum_{valid p} CE(pred_b[:, p], y_b[p]) / max(#valid_b, 1)``;
    an image without labelled pixels gives 0. Computed in float32 for
    half-precision logits (see :func:`accumulation_dtype`).

    Args:
        ignore_index (int): Label excluded from the loss. Defaults to 255.
        loss_weight (float): Multiplier of the result. Defaults to 1.0.
    """

    def __init__(self, ignore_index: int = 255, loss_weight: float = 1.0):
        super().__init__()
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Args: pred (N, C, H, W) logits; target (N, 1, H, W) int labels.

        Returns:
            Tensor: (N,) per-image loss.
        """
        check_pair(type(self).__name__, pred, target, 1)
        pred = pred.to(accumulation_dtype(pred.dtype))
        target = target[:, 0].long()
        valid = target != self.ignore_index
        in_range = (target >= 0) & (target < pred.shape[1])
        check_data((valid & ~in_range).any(),
                   f'{type(self).__name__}: labels must lie in '
                   f'[0, {pred.shape[1]}) or be {self.ignore_index}')
        # out-of-range labels (an error, see above) must not reach the
        # kernel, which would fail on an accelerator before the check
        safe = torch.where(valid & in_range, target, torch.zeros_like(target))
        ce = F.cross_entropy(pred, safe, reduction='none')
        return self.loss_weight * masked_image_mean(ce, valid)


@MODELS.register_module()
class BalancedCrossEntropyLoss(nn.Module):
    """Class-balanced 2-class softmax cross-entropy (saliency).

    Per image, with ``w = #negatives / #valid``, label 1 pixels are weighted
    by ``w`` and label 0 pixels by ``1 - w``; the weighted sum is divided by
    the number of valid pixels (not by the sum of weights), as the reference.
    Counts, weights and sums are float32 for half-precision logits (see
    :func:`accumulation_dtype`).

    Args:
        ignore_index (int): Label excluded from the loss. Defaults to 255.
        loss_weight (float): Multiplier of the result. Defaults to 1.0.
    """

    def __init__(self, ignore_index: int = 255, loss_weight: float = 1.0):
        super().__init__()
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Args: pred (N, 2, H, W) logits; target (N, 1, H, W) 0/1 labels.

        Returns:
            Tensor: (N,) per-image loss.
        """
        name = type(self).__name__
        check_pair(name, pred, target, 1)
        if pred.shape[1] != 2:
            raise ValueError(f'{name}: expects 2-channel logits, got '
                             f'{pred.shape[1]}')
        acc = accumulation_dtype(pred.dtype)
        pred = pred.to(acc)
        target = target[:, 0].long()
        valid = target != self.ignore_index
        binary = (target == 0) | (target == 1)
        check_data((valid & ~binary).any(),
                   f'{name}: saliency labels must be 0, 1 or '
                   f'{self.ignore_index}')
        safe = torch.where(valid & binary, target, torch.zeros_like(target))
        num_valid = valid.flatten(1).sum(1).to(acc)
        num_pos = (valid & (safe == 1)).flatten(1).sum(1).to(acc)
        w_pos = (num_valid - num_pos) / num_valid.clamp(min=1)  # (N,)
        w = torch.where(safe == 1, w_pos[:, None, None],
                        1 - w_pos[:, None, None])
        ce = F.cross_entropy(pred, safe, reduction='none')
        return self.loss_weight * masked_image_mean(w * ce, valid)
