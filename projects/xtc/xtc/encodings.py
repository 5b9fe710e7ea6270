# Copyright (c) diffmtl contributors. All rights reserved.
"""Encode predictions and ground truth into the inputs of the XTC mapper.

Each task is encoded to ``n_t`` channels at the network input size, the
same for the prediction side (``y_hat_s``) and the ground-truth side
(``y_t``), following the MTPSL code (``model/mapfns.py``) and, for the
PASCAL tasks it does not have, the inferred defaults of XTC* on the
DiffusionMTL baseline (see the project README):

============ ================================== ===========================
kind         prediction (logits)                ground truth
============ ================================== ===========================
segmentation hard Gumbel-softmax straight-      one-hot; ignored pixels
(semseg,     through (tau=1) over the classes   (255) become the zero
human_parts, (``'softmax'``: plain softmax)     vector
sal)
boundary     sigmoid(logit)                     binary map, 255 -> 0
normals      L2-normalised, then (n + 1) / 2    (n + 1) / 2, invalid (zero
                                                vector) pixels -> 0
depth        y / (max_image |y| + eps)          y / (max_image y + eps),
                                                invalid (0) stays 0
============ ================================== ===========================
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from diffmtl.structures import TaskSpec

__all__ = [
    'SEG_ENCODINGS', 'encode_prediction', 'encode_ground_truth',
    'valid_ground_truth'
]

#: Encodings of segmentation-kind predictions.
SEG_ENCODINGS = ('gumbel', 'softmax')


def encode_prediction(spec: TaskSpec,
                      logits: Tensor,
                      seg_encoding: str = 'gumbel',
                      tau: float = 1.0,
                      eps: float = 1e-12) -> Tensor:
    """Map the network output of one task to the mapper's input space.

    Args:
        spec (TaskSpec): The task.
        logits (Tensor): (N, n_t, H, W) raw network output at input size.
        seg_encoding (str): ``'gumbel'`` (MTPSL: a hard one-hot sample with
            the straight-through gradient of the soft sample; stochastic)
            or ``'softmax'`` (the class probabilities; deterministic).
            Only for segmentation and saliency.
        tau (float): Gumbel-softmax temperature. Defaults to 1.
        eps (float): Of the normals / depth normalisation.

    Returns:
        Tensor: (N, n_t, H, W), differentiable w.r.t. ``logits``.
    """
    kind = spec.kind
    if kind in ('segmentation', 'saliency'):
        if seg_encoding == 'gumbel':
            return F.gumbel_softmax(logits, tau=tau, hard=True, dim=1)
        if seg_encoding == 'softmax':
            return logits.softmax(dim=1)
        raise ValueError(f'seg_encoding must be one of {SEG_ENCODINGS}, got '
                         f'{seg_encoding!r}')
    if kind == 'boundary':
        return logits.sigmoid()
    if kind == 'normals':
        return (F.normalize(logits, p=2, dim=1, eps=eps) + 1) / 2
    if kind == 'depth':
        # MTPSL divides by the image's maximum (the gradient also flows
        # through it); the magnitude keeps a non-positive maximum from
        # flipping the sign or exploding early in training.
        scale = logits.abs().flatten(1).amax(dim=1)
        return logits / (scale[:, None, None, None] + eps)
    raise NotImplementedError(f'XTC has no encoding for task kind {kind!r} '
                              f'(task {spec.name!r})')


def valid_ground_truth(spec: TaskSpec, gt: Tensor) -> Tensor:
    """(N, H, W) bool: the labelled pixels of a packed GT map.

    Args:
        spec (TaskSpec): The task.
        gt (Tensor): (N, gt_channels, H, W) as stacked by
            :func:`diffmtl.structures.stack_task_gt`.
    """
    if spec.discrete:
        return gt[:, 0] != spec.ignore_index
    if spec.kind == 'normals':
        return gt.abs().sum(dim=1) > 0
    return gt[:, 0] != 0


def encode_ground_truth(spec: TaskSpec,
                        gt: Tensor,
                        num_channels: int,
                        eps: float = 1e-12,
                        dtype: Optional[torch.dtype] = None) -> Tensor:
    """Map one task's ground truth to the mapper's input space.

    Args:
        spec (TaskSpec): The task.
        gt (Tensor): (N, gt_channels, H, W) stacked GT (``int64`` labels
            for discrete tasks, ``float32`` otherwise).
        num_channels (int): ``n_t`` (classes of a segmentation task).
        eps (float): Of the depth normalisation.
        dtype (torch.dtype, optional): Output dtype. Defaults to float32.

    Returns:
        Tensor: (N, n_t, H, W); invalid pixels are the zero vector.
    """
    dtype = dtype or torch.float32
    valid = valid_ground_truth(spec, gt)
    kind = spec.kind
    if kind in ('segmentation', 'saliency'):
        labels = torch.where(valid, gt[:, 0], torch.zeros_like(gt[:, 0]))
        if bool((labels >= num_channels).any()) or bool((labels < 0).any()):
            raise ValueError(
                f'XTC: GT of task {spec.name!r} holds labels outside '
                f'[0, {num_channels}) besides {spec.ignore_index}')
        onehot = F.one_hot(labels.long(), num_channels).permute(0, 3, 1, 2)
        return onehot.to(dtype) * valid[:, None].to(dtype)
    if kind == 'boundary':
        return (gt.to(dtype) * valid[:, None].to(dtype))
    if kind == 'normals':
        return (gt.to(dtype) + 1) / 2 * valid[:, None].to(dtype)
    if kind == 'depth':
        depth = gt.to(dtype) * valid[:, None].to(dtype)
        scale = depth.flatten(1).amax(dim=1)
        return depth / (scale[:, None, None, None] + eps)
    raise NotImplementedError(f'XTC has no encoding for task kind {kind!r} '
                              f'(task {spec.name!r})')
