# Copyright (c) diffmtl contributors. All rights reserved.
"""Masked L1 losses for surface normals and depth."""
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from diffmtl.registry import MODELS
from ._utils import accumulation_dtype, check_pair, masked_image_mean


@MODELS.register_module()
class NormalsL1Loss(nn.Module):
    """L1 between the L2-normalised prediction and the GT normals.

    Per image: ``sum over valid pixels and the 3 channels of |n_hat - n| /
    #valid`` (channels summed, not averaged). A pixel is valid when its GT
    is not the zero vector (the contract's invalid / padding value).
    Half-precision predictions are normalised and summed in float32.

    Args:
        eps (float): Normalisation epsilon. Defaults to 1e-12.
        loss_weight (float): Multiplier of the result. Defaults to 1.0.
    """

    def __init__(self, eps: float = 1e-12, loss_weight: float = 1.0):
        super().__init__()
        self.eps = eps
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Args: pred (N, 3, H, W); target (N, 3, H, W) unit vectors.

        Returns:
            Tensor: (N,) per-image loss.
        """
        check_pair(type(self).__name__, pred, target, 3)
        pred = pred.to(accumulation_dtype(pred.dtype))
        target = target.to(pred.dtype)
        valid = target.abs().sum(1) > 0
        n_hat = F.normalize(pred, p=2, dim=1, eps=self.eps)
        err = (n_hat - target).abs().sum(1)
        return self.loss_weight * masked_image_mean(err, valid)


@MODELS.register_module()
class DepthL1Loss(nn.Module):
    """L1 over the pixels whose GT depth differs from ``invalid_value``.

    Half-precision predictions are compared and summed in float32 (the GT
    is never rounded to the prediction's dtype).

    Args:
        invalid_value (float): GT value of invalid / padded pixels.
            Defaults to 0.
        loss_weight (float): Multiplier of the result. Defaults to 1.0.
    """

    def __init__(self, invalid_value: float = 0.0, loss_weight: float = 1.0):
        super().__init__()
        self.invalid_value = invalid_value
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Args: pred (N, 1, H, W); target (N, 1, H, W) depth.

        Returns:
            Tensor: (N,) per-image loss.
        """
        check_pair(type(self).__name__, pred, target, 1)
        pred = pred.to(accumulation_dtype(pred.dtype))
        target = target.to(pred.dtype)
        valid = target[:, 0] != self.invalid_value
        return self.loss_weight * masked_image_mean(
            (pred[:, 0] - target[:, 0]).abs(), valid)
