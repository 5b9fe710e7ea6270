# Copyright (c) diffmtl contributors. All rights reserved.
"""Boundary kind: thin object/part contours (``edge``)."""
from collections import OrderedDict
from typing import Sequence, Union

import numpy as np
from torch import Tensor

from diffmtl.evaluation.functional.boundary import (boundary_metrics,
                                                    boundary_stats,
                                                    default_edge_thresholds,
                                                    has_pyedgeeval)
from diffmtl.structures import TaskMetric, register_task_kind
from .binary import BinaryMapKind

__all__ = ['BoundaryKind', 'BoundaryMetric']


def _maxpool(x: np.ndarray, k: int, fill: float = 0) -> np.ndarray:
    h, w = x.shape
    hh, ww = -(-h // k) * k, -(-w // k) * k
    p = np.full((hh, ww), fill, dtype=x.dtype)
    p[:h, :w] = x
    return p.reshape(hh // k, k, ww // k, k).max(axis=(1, 3))


class BoundaryMetric(TaskMetric):
    """ODS-F, OIS-F and AP of the BSDS / seism benchmark (per-image counts
    at every threshold, see :mod:`diffmtl.evaluation.functional.boundary`).

    Args:
        thresholds (int or sequence of float): Thresholds (an int ``n``
            means ``linspace(0.01, 0.99, n)``). Cost grows linearly.
        max_dist (float): Matching tolerance as a fraction of the image
            diagonal (0.0075 PASCAL-Context, 0.011 NYUD).
        nms (bool): seism's structured-edge NMS before thresholding (needs
            ``pyedgeeval``).
        thin_gt (bool): Thin the ground-truth boundaries (seism does).
        backend (str): ``'numpy'`` (deterministic exact maximum matching),
            ``'pyedgeeval'`` (BSDS ``correspondPixels``; clock-seeded, so
            counts vary slightly between runs) or ``'auto'``.
        downsample (int): Max-pool prediction and ground truth by this
            factor before matching (1 = off); approximate, for monitoring.
        enabled (bool): Score at all; False only exports.
        eval_ids (str or sequence of str, optional): Score only these image
            ids (a list, or a text file with one id per line), e.g. seism's
            PASCAL-Context ``test_new``.
    """

    def __init__(self, task, spec,
                 thresholds: Union[int, Sequence[float]] = 25,
                 max_dist: float = 0.0075,
                 nms: bool = False,
                 thin_gt: bool = True,
                 backend: str = 'numpy',
                 downsample: int = 1,
                 enabled: bool = True,
                 eval_ids: Union[str, Sequence[str], None] = None) -> None:
        super().__init__(task, spec)
        if isinstance(thresholds, int):
            thresholds = default_edge_thresholds(thresholds)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.max_dist = float(max_dist)
        self.nms = bool(nms)
        self.enabled = bool(enabled)
        if self.nms and self.enabled and not has_pyedgeeval():
            raise ImportError(f'task {task!r}: boundary nms=True needs the '
                              '`pyedgeeval` package: pip install pyedgeeval')
        self.thin_gt = bool(thin_gt)
        if backend not in ('auto', 'pyedgeeval', 'numpy'):
            raise ValueError(f'task {task!r}: boundary backend {backend!r}: '
                             "expected 'auto', 'pyedgeeval' or 'numpy'")
        if backend == 'auto':
            backend = 'pyedgeeval' if has_pyedgeeval() else 'numpy'
        self.backend = backend
        self.downsample = max(int(downsample), 1)
        if isinstance(eval_ids, str):
            with open(eval_ids) as f:
                eval_ids = [ln.strip() for ln in f if ln.strip()]
        self.eval_ids = (None if eval_ids is None else
                         {str(i) for i in eval_ids})

    @property
    def scored(self) -> bool:
        return self.enabled

    def process(self, pred, gt, img_id):
        if not self.enabled or (self.eval_ids is not None
                                and img_id not in self.eval_ids):
            return None
        pred = pred.reshape(pred.shape[-2:])
        gt = gt.reshape(gt.shape[-2:])
        ignore = self.spec.ignore_index
        valid = gt != ignore
        if not valid.any():
            return None
        if self.downsample > 1:
            k = self.downsample
            gt = np.where(valid, gt, 0)
            gt = _maxpool((gt == 1).astype(np.uint8), k)
            pred = _maxpool(pred.astype(np.float32), k)
        return boundary_stats(pred, gt, self.thresholds, self.max_dist,
                              ignore, self.nms, self.thin_gt, self.backend)

    def compute(self, records):
        per_image = {
            k: np.stack([r[k] for r in records])
            for k in ('cnt_r', 'sum_r', 'cnt_p', 'sum_p')
        }
        m = boundary_metrics(per_image)
        res = OrderedDict(odsF=m['odsF'], oisF=m['oisF'], AP=m['AP'])
        res['ods_threshold'] = float(self.thresholds[m['ods_thr_idx']])
        return res, dict(table=self.summary_table(res))

    def config(self):
        return dict(
            thresholds=list(self.thresholds),
            max_dist=self.max_dist,
            nms=self.nms,
            thin_gt=self.thin_gt,
            backend=self.backend,
            downsample=self.downsample,
            enabled=self.enabled,
            num_eval_ids=(None if self.eval_ids is None else len(
                self.eval_ids)))


@register_task_kind
class BoundaryKind(BinaryMapKind):
    """0/1 labels (255 = unlabelled); one logit; prediction = sigmoid; TTA
    averages the sigmoid; exported as a probability PNG; drawn grey."""
    name = 'boundary'
    out_channels = 1
    loss = dict(type='WeightedBCELoss', pos_weight=0.95)
    primary_metric = 'odsF'
    metric = BoundaryMetric

    def perfect_scores(self, spec):
        return dict(odsF=100.0, oisF=100.0, AP=100.0)

    def logits_to_pred(self, logits: Tensor) -> Tensor:
        return logits.sigmoid()

    def merge_logits(self, stack: Tensor) -> Tensor:
        import torch
        return torch.logit(stack.sigmoid().mean(0), eps=1e-6)
