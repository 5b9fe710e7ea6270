# Copyright (c) diffmtl contributors. All rights reserved.
"""Depth kind: distance per pixel (metres or dataset units)."""
from collections import OrderedDict
from typing import Optional, Sequence

import numpy as np

from diffmtl.evaluation.functional.dense_stats import (depth_metrics,
                                                       depth_stats, sum_stats)
from diffmtl.structures import TaskKind, TaskMetric, register_task_kind

__all__ = ['DepthKind', 'DepthMetric']


class DepthMetric(TaskMetric):
    """absErr / RMSE / absRel / sqRel / logRMSE over valid (> 0) pixels.

    Args:
        depth_range (tuple, optional): ``(min, max)`` ground-truth depth
            kept.
    """

    def __init__(self, task, spec,
                 depth_range: Optional[Sequence[float]] = None) -> None:
        super().__init__(task, spec)
        self.depth_range = tuple(depth_range) if depth_range else None

    def process(self, pred, gt, img_id):
        st = depth_stats(pred.reshape(pred.shape[-2:]),
                         gt.reshape(gt.shape[-2:]), self.depth_range)
        return st if st['n'] > 0 else None

    def compute(self, records):
        res = OrderedDict(depth_metrics(sum_stats(records)))
        return res, dict(table=self.summary_table(res))

    def config(self):
        return dict(depth_range=self.depth_range)


@register_task_kind
class DepthKind(TaskKind):
    """float32 (H, W), 0 marks invalid pixels; zooming in by ``s`` divides
    the values by ``s``; prediction = the raw output; exported as ``.npy``;
    drawn with ``magma`` over the ground truth's valid range."""
    name = 'depth'
    discrete = False
    out_channels = 1
    ignore_index = None
    pad_value = 0.0
    loss = dict(type='DepthL1Loss')
    primary_metric = 'absErr'
    higher_is_better = False
    cmap = 'magma'
    formats = {'.png': 'depth_png', '.npy': 'depth_npy'}
    encode_suffix = '.npy'  # lossless, unlike 1 / depth_scale PNG units
    zoom_exponent = -1.0
    metric = DepthMetric

    def perfect_scores(self, spec):
        return dict(absErr=0.0, rmse=0.0, absRel=0.0, sqRel=0.0,
                    logRMSE=0.0)

    def dataset_meta(self, spec, dataset) -> dict:
        unit = getattr(dataset, 'depth_unit', None)
        return {} if unit is None else dict(depth_unit=unit)

    def check_map(self, spec, arr, path):
        """Refuse negative depth: the loss and the metrics count every
        non-zero pixel as valid, so a negative value would be trained on
        as a distance."""
        negative = arr < 0
        if negative.any():
            raise ValueError(
                f'task {spec.name!r}: {path!r} holds '
                f'{int(np.count_nonzero(negative))} negative depth values '
                f'(min {float(arr.min()):.6g}). Depth maps hold distances '
                '>= 0 with 0 = invalid, and every non-zero pixel counts as '
                'valid. If negative values mark missing depth, set them to '
                '0 (np.where(d < 0, 0, d)); if the file holds disparity, '
                'log depth or normalised depth, convert it to depth first')

