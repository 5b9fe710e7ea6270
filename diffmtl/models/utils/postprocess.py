# Copyright (c) diffmtl contributors. All rights reserved.
"""Turn a task's raw network output into its prediction, and undo the test
time geometry (padding, flips, resizing) of one sample.

The maths is the task kind's (:class:`~diffmtl.structures.TaskKind`), the
un-padding :mod:`diffmtl.structures.maps`; these functions are what the
segmentors and the test-time-augmentation wrapper call.
"""
from typing import Optional, Sequence

import torch.nn.functional as F
from torch import Tensor

from diffmtl.structures import get_task_spec, unpad

__all__ = ['logits_to_pred', 'postprocess_task_logits', 'flip_task_logits']


def logits_to_pred(task: str, logits: Tensor) -> Tensor:
    """Convert raw outputs of ``task`` into its prediction.

    Works on (C, H, W) or (N, C, H, W) tensors; the channel dim is ``-3``.
    The maths is the task kind's
    :meth:`~diffmtl.structures.TaskKind.logits_to_pred`; for the built-in
    kinds:

    * segmentation: argmax class ids, ``int64`` with 1 channel;
    * saliency: ``softmax[:, 1]``, probability of the salient class;
    * boundary: ``sigmoid`` probability;
    * normals: L2-normalised vectors (3 channels);
    * depth: the raw output.

    Args:
        task (str): Task name (looked up in ``TASK_SPECS``).
        logits (Tensor): (..., C, H, W) raw network output.

    Returns:
        Tensor: (..., C', H, W) prediction (``C' = spec.gt_channels`` for
        the built-in kinds).
    """
    spec = get_task_spec(task)
    if logits.dim() < 3:
        raise ValueError(f'logits_to_pred({task!r}): expected (C, H, W) or '
                         f'(N, C, H, W), got {tuple(logits.shape)}')
    return spec.task_kind.logits_to_pred(logits)


def flip_task_logits(task: str, logits: Tensor, direction: str) -> Tensor:
    """Flip a (..., C, H, W) map of ``task`` in ``direction``
    (``'horizontal'`` or ``'vertical'``).

    The task kind's :meth:`~diffmtl.structures.TaskKind.flip_tensor`:
    channels in the kind's ``flip_negate`` change sign (normals: the
    component along the flipped axis, x for ``'horizontal'``, y for
    ``'vertical'``).
    """
    spec = get_task_spec(task)
    return spec.task_kind.flip_tensor(spec, logits, direction)


def postprocess_task_logits(task: str,
                            logits: Tensor,
                            img_meta: dict,
                            align_corners: bool = False,
                            ori_shape: Optional[Sequence[int]] = None
                            ) -> Tensor:
    """Undo padding and flip and resize one sample's logits to its size.

    Like :meth:`mmseg.models.BaseSegmentor.postprocess_result`: crops the
    padding (:func:`~diffmtl.structures.unpad`, which reads
    ``padding_size`` and ``img_padding_size`` as documented in
    :mod:`diffmtl.structures.maps`), un-flips when ``img_meta['flip']``
    (:func:`flip_task_logits`, negating the normals' flipped component
    back) and resizes bilinearly to ``ori_shape``.

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
    logits = unpad(logits, img_meta)
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
