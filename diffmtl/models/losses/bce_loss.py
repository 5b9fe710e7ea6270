# Copyright (c) diffmtl contributors. All rights reserved.
"""Positive-weighted binary cross-entropy for boundary detection."""
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from diffmtl.registry import MODELS
from ._utils import accumulation_dtype, check_pair, masked_image_mean


@MODELS.register_module()
class WeightedBCELoss(nn.Module):
    """Positive-weighted binary cross-entropy with logits.

    Per pixel ``w y (-log s(x)) + (1 - w) (1 - y) (-log(1 - s(x)))`` with
    ``w = pos_weight`` and ``s`` the sigmoid,
    averaged over each image's valid pixels (label != ``ignore_index``).
    With ``pos_weight=0.95`` this equals the reference's BCE with
    ``pos_weight=19`` divided by 20. Half-precision logits are computed
    and summed in float32.

    Args:
        pos_weight (float): Weight of positive pixels in (0, 1).
            Defaults to 0.95.
        ignore_index (int): Label excluded from the loss. Defaults to 255.
        loss_weight (float): Multiplier of the result. Defaults to 1.0.
    """

    def __init__(self,
                 pos_weight: float = 0.95,
                 ignore_index: int = 255,
                 loss_weight: float = 1.0):
        super().__init__()
        if not 0 < pos_weight < 1:
            raise ValueError(f'WeightedBCELoss: pos_weight must be in (0, 1), '
                             f'got {pos_weight}')
        self.pos_weight = pos_weight
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Args: pred (N, 1, H, W) logits; target (N, 1, H, W) 0/1 labels.

        Returns:
            Tensor: (N,) per-image loss.
        """
        check_pair(type(self).__name__, pred, target, 1)
        if pred.shape[1] != 1:
            raise ValueError('WeightedBCELoss: expects 1-channel logits, got '
                             f'{pred.shape[1]}')
        x = pred[:, 0].to(accumulation_dtype(pred.dtype))
        y = target[:, 0].to(x.dtype)
        valid = target[:, 0] != self.ignore_index
        y = y * valid
        # -log sigmoid(x) = softplus(-x); -log(1 - sigmoid(x)) = softplus(x)
        loss = (self.pos_weight * y * F.softplus(-x) +
                (1 - self.pos_weight) * (1 - y) * F.softplus(x))
        return self.loss_weight * masked_image_mean(loss, valid)
