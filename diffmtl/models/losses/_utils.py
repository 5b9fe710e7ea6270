# Copyright (c) diffmtl contributors. All rights reserved.
"""Shared checks of the per-image loss signature."""
import torch
from torch import Tensor


def check_pair(name: str, pred: Tensor, target: Tensor,
               gt_channels: int) -> None:
    """Validate ``pred`` (N, C, H, W) against ``target`` (N, gt_ch, H, W).

    Raises:
        ValueError: Naming the loss ``name`` and the offending shapes.
    """
    if pred.dim() != 4 or target.dim() != 4:
        raise ValueError(f'{name}: expected 4-D pred (N, C, H, W) and target '
                         f'(N, {gt_channels}, H, W), got {tuple(pred.shape)} '
                         f'and {tuple(target.shape)}')
    if pred.shape[0] != target.shape[0] or pred.shape[2:] != target.shape[2:]:
        raise ValueError(f'{name}: pred {tuple(pred.shape)} and target '
                         f'{tuple(target.shape)} differ in batch or spatial '
                         'size; resize the prediction to the label first')
    if target.shape[1] != gt_channels:
        raise ValueError(f'{name}: target must have {gt_channels} channel(s), '
                         f'got {target.shape[1]}')


def masked_image_mean(values: Tensor, valid: Tensor) -> Tensor:
    """Per-image sum of ``values`` over ``valid`` pixels / #valid pixels.

    Args:
        values (Tensor): (N, H, W) per-pixel losses.
        valid (Tensor): (N, H, W) bool mask.

    Returns:
        Tensor: (N,), 0 for an image without valid pixels.
    """
    values = torch.where(valid, values, values.new_zeros(()))
    num = valid.flatten(1).sum(1).clamp(min=1).to(values.dtype)
    return values.flatten(1).sum(1) / num
