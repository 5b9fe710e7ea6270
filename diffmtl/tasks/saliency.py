# Copyright (c) diffmtl contributors. All rights reserved.
"""Saliency kind: salient / not salient per pixel (``sal``)."""
from collections import OrderedDict
from typing import Sequence

import numpy as np
from torch import Tensor

from diffmtl.evaluation.functional.dense_stats import (SAL_THRESHOLDS,
                                                       sal_metrics, sal_stats,
                                                       sum_stats)
from diffmtl.structures import TaskKind, TaskMetric, register_task_kind

__all__ = ['SaliencyKind', 'SaliencyMetric', 'export_probability_png']


def export_probability_png(pred: np.ndarray, path: str) -> str:
    """Write a (1, H, W) probability as ``uint8(p * 255)`` PNG (truncated,
    as the reference's dump)."""
    import mmcv
    pred = pred.reshape(pred.shape[-2:]).astype(np.float64)
    mmcv.imwrite((np.clip(pred, 0, 1) * 255).astype(np.uint8), path)
    return path


class SaliencyMetric(TaskMetric):
    """Max F-measure over thresholds, pooled over the set.

    Args:
        thresholds (sequence of float): Thresholds (0.05:0.05:0.95).
        beta2 (float): beta^2 of the F-measure (0.3).
    """

    def __init__(self, task, spec,
                 thresholds: Sequence[float] = SAL_THRESHOLDS,
                 beta2: float = 0.3) -> None:
        super().__init__(task, spec)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.beta2 = float(beta2)

    def process(self, pred, gt, img_id):
        st = sal_stats(pred.reshape(pred.shape[-2:]),
                       gt.reshape(gt.shape[-2:]), self.thresholds,
                       self.spec.ignore_index)
        return st if st['n_valid'] > 0 else None

    def compute(self, records):
        m = sal_metrics(sum_stats(records), self.beta2)
        res = OrderedDict(maxF=m['maxF'], maxF_corrected=m['maxF_corrected'])
        return res, dict(table=self.summary_table(res))

    def config(self):
        return dict(thresholds=list(self.thresholds), beta2=self.beta2)


@register_task_kind
class SaliencyKind(TaskKind):
    """0/1 labels (255 = unlabelled); two logits; prediction = softmax of
    the salient class; TTA averages the softmax; exported as a probability
    PNG; drawn grey."""
    name = 'saliency'
    out_channels = 2
    loss = dict(type='BalancedCrossEntropyLoss')
    primary_metric = 'maxF'
    cmap = 'gray'
    export_suffix = '.png'
    metric = SaliencyMetric

    def num_labels(self, spec, num_classes):
        return 2

    def logits_to_pred(self, logits: Tensor) -> Tensor:
        return logits.softmax(dim=-3).narrow(-3, 1, 1)

    def merge_logits(self, stack: Tensor) -> Tensor:
        return stack.softmax(dim=1).mean(0).clamp_min(1e-12).log()

    def export(self, spec, pred, path_stem):
        return export_probability_png(pred, path_stem + self.export_suffix)
