# Copyright (c) diffmtl contributors. All rights reserved.
"""A task-kind plugin that lives outside the package: optical flow.

Importing this module (``custom_imports=dict(imports=['flow_plugin'])``)
adds everything a new kind needs, without editing any diffmtl file:

* a 2-channel vector kind ``'flow'``: (dx, dy) pixel displacements; the
  zero vector marks unknown pixels (a toy convention: real sparse-flow
  datasets store validity separately); a horizontal flip negates dx, a
  vertical one dy; zooming by ``s`` multiplies displacements by ``s``;
  prediction = the raw output; TTA = mean; metric = end-point error (EPE)
  and the fraction of pixels with EPE > 3 px; drawn with a colour wheel
  (hue = direction, saturation = magnitude); ground truth drawn from
  [-4, 4] px by the generic kind tests; perfect scores EPE = outliers = 0;
* an annotation decoder ``'flow_npy'`` for float32 (H, W, 2) ``.npy``;
* a masked end-point-error loss ``FlowEPELoss`` in ``MODELS``;
* a task ``'flow'`` of that kind.
"""
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from diffmtl.datasets.formats import register_ann_decoder
from diffmtl.registry import MODELS
from diffmtl.structures import (TASK_SPECS, TaskKind, TaskMetric, TaskSpec,
                                register_task_kind, register_task_spec)


class FlowMetric(TaskMetric):
    """EPE pooled over the valid pixels of the set, and the % above
    ``outlier_px``."""

    def __init__(self, task, spec, outlier_px: float = 3.0):
        super().__init__(task, spec)
        self.outlier_px = float(outlier_px)

    def process(self, pred, gt, img_id):
        valid = np.abs(gt).sum(0) > 0
        if not valid.any():
            return None
        epe = np.sqrt(((pred - gt)**2).sum(0))[valid]
        return dict(sum=np.asarray(epe.sum(), dtype=np.float64),
                    n=np.asarray(epe.size, dtype=np.int64),
                    out=np.asarray((epe > self.outlier_px).sum(),
                                   dtype=np.int64))

    def compute(self, records):
        total = sum(float(r['sum']) for r in records)
        n = sum(int(r['n']) for r in records)
        out = sum(int(r['out']) for r in records)
        res = OrderedDict(EPE=total / n, outliers=100.0 * out / n)
        return res, dict(table=self.summary_table(res))


@register_task_kind(force=True)
class FlowKind(TaskKind):
    name = 'flow'
    discrete = False
    gt_channels = 2
    out_channels = 2
    ignore_index = None
    pad_value = 0.0
    loss = dict(type='FlowEPELoss')
    primary_metric = 'EPE'
    higher_is_better = False
    cmap = 'flow_wheel'
    formats = {'.npy': 'flow_npy'}
    flip_negate = {'horizontal': (0, ), 'vertical': (1, )}
    zoom_exponent = 1.0
    metric = FlowMetric
    gt_value_range = (-4.0, 4.0)  # displacements in pixels, either sign

    def perfect_scores(self, spec):
        return dict(EPE=0.0, outliers=0.0)

    def colorize(self, spec, arr, meta=None, value_range=None, image=None,
                 alpha=1.0):
        from matplotlib.colors import hsv_to_rgb
        arr = np.asarray(arr, dtype=np.float64)
        invalid = self.invalid_mask(spec, arr)
        mag = np.linalg.norm(arr, axis=-1)
        top = value_range[1] if value_range else max(mag.max(), 1e-12)
        hsv = np.stack([
            (np.arctan2(-arr[..., 1], -arr[..., 0]) / np.pi + 1) / 2,
            np.clip(mag / top, 0, 1),
            np.ones_like(mag)
        ], -1)
        return (hsv_to_rgb(hsv) * 255).round().astype(np.uint8), invalid


@register_ann_decoder('flow_npy', force=True)
def decode_flow_npy(path, results, backend_args=None):
    arr = np.load(path)
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise ValueError(f'{path!r}: flow must be (H, W, 2), got '
                         f'{arr.shape}')
    return arr.astype(np.float32)


@MODELS.register_module(force=True)
class FlowEPELoss(nn.Module):
    """Per-image mean end-point error over pixels with a non-zero GT."""

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor):
        valid = target.abs().sum(1) > 0
        epe = ((pred - target.to(pred.dtype))**2).sum(1).clamp_min(
            1e-12).sqrt()
        num = valid.flatten(1).sum(1).clamp(min=1)
        return self.loss_weight * (epe * valid).flatten(1).sum(1) / num


if 'flow' not in TASK_SPECS:
    register_task_spec(
        TaskSpec(name='flow', kind='flow', results_key='gt_flow_map',
                 gt_field='gt_flow', pred_field='pred_flow',
                 logits_field='logits_flow'))
