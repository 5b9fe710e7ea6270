# Copyright (c) diffmtl contributors. All rights reserved.
"""Turn a task's raw network output into its prediction, and undo the test
time geometry (padding, flips, resizing) of one sample.

Both functions are driven by :class:`~diffmtl.structures.TaskSpec` and are
shared by the segmentors, the test-time-augmentation wrapper and the
visualiser.
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from diffmtl.structures import get_task_spec

__all__ = ['logits_to_pred', 'postprocess_task_logits', 'flip_task_logits']


def logits_to_pred(task: str, logits: Tensor) -> Tensor:
    """Convert raw outputs of ``task`` into its prediction.

    Works on (C, H, W) or (N, C, H, W) tensors; the channel dim is ``-3``.

    * segmentation: argmax class ids, ``int64`` with 1 channel;
    * saliency: ``softmax[:, 1]``, probability of the salient class;
    * boundary: ``sigmoid`` probability;
    * normals: L2-normalised vectors (3 channels);
    * depth: the raw output.

    Args:
        task (str): Task name (looked up in ``TASK_SPECS``).
        logits (Tensor): (..., C, H, W) raw network output.

    Returns:
        Tensor: (..., 1 or 3, H, W) prediction.
    """
    kind = get_task_spec(task).kind
    if logits.dim() < 3:
        raise ValueError(f'logits_to_pred({task!r}): expected (C, H, W) or '
                         f'(N, C, H, W), got {tuple(logits.shape)}')
    if kind == 'segmentation':
        return logits.argmax(dim=-3, keepdim=True).long()
    if kind == 'saliency':
        return logits.softmax(dim=-3).narrow(-3, 1, 1)
    if kind == 'boundary':
        return logits.sigmoid()
    if kind == 'normals':
        return F.normalize(logits, p=2, dim=-3, eps=1e-12)
    if kind == 'depth':
        return logits
    raise ValueError(f'logits_to_pred: unsupported kind {kind!r} of task '
                     f'{task!r}')


def flip_task_logits(task: str, logits: Tensor, direction: str) -> Tensor:
    """Flip a (..., C, H, W) map of ``task`` in ``direction``.

    Normals change the sign of the component along the flipped axis
    (x for ``'horizontal'``, y for ``'vertical'``).
    """
    if direction == 'horizontal':
        dim, comp = -1, 0
    elif direction == 'vertical':
        dim, comp = -2, 1
    else:
        raise ValueError(f'flip_task_logits: unsupported flip direction '
                         f'{direction!r} (expected horizontal or vertical)')
    out = logits.flip(dims=(dim, ))
    if get_task_spec(task).kind == 'normals':
        sign = torch.ones(out.shape[-3], dtype=out.dtype, device=out.device)
        sign[comp] = -1
        out = out * sign.view(-1, 1, 1)
    return out


def postprocess_task_logits(task: str,
                            logits: Tensor,
                            img_meta: dict,
                            align_corners: bool = False,
                            ori_shape: Optional[Sequence[int]] = None
                            ) -> Tensor:
    """Undo padding and flip and resize one sample's logits to its size.

    Mirrors :meth:`mmseg.models.BaseSegmentor.postprocess_result`: crops
    ``img_padding_size`` (or ``padding_size``) ``(left, right, top,
    bottom)``, un-flips when ``img_meta['flip']`` (negating the normals'
    flipped component back) and resizes bilinearly to ``ori_shape``.

    Args:
        task (str): Task name.
        logits (Tensor): (C, H, W) raw output at network input size.
        img_meta (dict): The sample's metainfo.
        align_corners (bool): Of the final resize. Defaults to False.
        ori_shape (Sequence[int], optional): Output size; defaults to
            ``img_meta['ori_shape']`` or the cropped size.

    Returns:
        Tensor: (C, H0, W0) logits at the original size.
    """
    if logits.dim() != 3:
        raise ValueError(f'postprocess_task_logits({task!r}): expected '
                         f'(C, H, W) logits, got {tuple(logits.shape)}')
    pad = img_meta.get('img_padding_size', img_meta.get('padding_size'))
    if pad is None:
        pad = (0, 0, 0, 0)
    left, right, top, bottom = (int(p) for p in pad)
    h, w = logits.shape[-2:]
    logits = logits[:, top:h - bottom, left:w - right]
    if img_meta.get('flip', False):
        logits = flip_task_logits(task, logits,
                                  img_meta.get('flip_direction', None))
    if ori_shape is None:
        ori_shape = img_meta.get('ori_shape', logits.shape[-2:])
    ori_shape = tuple(int(s) for s in ori_shape[:2])
    if tuple(logits.shape[-2:]) != ori_shape:
        logits = F.interpolate(
            logits[None], size=ori_shape, mode='bilinear',
            align_corners=align_corners)[0]
    return logits
