# Copyright (c) diffmtl contributors. All rights reserved.
"""Saliency kind: salient / not salient per pixel (``sal``)."""
from collections import OrderedDict
from typing import Sequence

import numpy as np
from torch import Tensor

from diffmtl.evaluation.functional.dense_stats import (SAL_THRESHOLDS,
                                                       sal_metrics, sal_stats,
                                                       sum_stats)
from diffmtl.structures import TaskMetric, register_task_kind
from .binary import BinaryMapKind

__all__ = ['SaliencyKind', 'SaliencyMetric']


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
class SaliencyKind(BinaryMapKind):
    """0/1 labels (255 = unlabelled); two logits; prediction = softmax of
    the salient class; TTA averages the softmax; exported as a probability
    PNG; drawn grey."""
    name = 'saliency'
    out_channels = 2
    loss = dict(type='BalancedCrossEntropyLoss')
    primary_metric = 'maxF'
    metric = SaliencyMetric

    def perfect_scores(self, spec):
        return dict(maxF=100.0, maxF_corrected=100.0)

    def logits_to_pred(self, logits: Tensor) -> Tensor:
        return logits.softmax(dim=-3).narrow(-3, 1, 1)

    def merge_logits(self, stack: Tensor) -> Tensor:
        return stack.softmax(dim=1).mean(0).clamp_min(1e-12).log()
