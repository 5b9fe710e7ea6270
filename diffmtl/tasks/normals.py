# Copyright (c) diffmtl contributors. All rights reserved.
"""Surface-normals kind: unit (x, y, z) vectors in the image frame."""
from collections import OrderedDict
from typing import Sequence

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from diffmtl.evaluation.functional.dense_stats import (normals_metrics,
                                                       normals_stats,
                                                       sum_stats)
from diffmtl.structures import TaskKind, TaskMetric, register_task_kind

__all__ = ['NormalsKind', 'NormalsMetric']


class NormalsMetric(TaskMetric):
    """Angular errors in degrees (mean, median, RMSE, % under thresholds).

    Args:
        bin_width (float): Angle histogram bin width in degrees; the median
            is exact to half of it (default 0.05 -> 0.025 deg).
        thresholds (sequence of float): ``% < t`` angles.
    """

    def __init__(self, task, spec, bin_width: float = 0.05,
                 thresholds: Sequence[float] = (11.25, 22.5, 30.0)) -> None:
        super().__init__(task, spec)
        if bin_width <= 0:
            raise ValueError(f'task {task!r}: normals bin_width must be > 0, '
                             f'got {bin_width}')
        self.bin_width = float(bin_width)
        self.bins = int(np.ceil(180.0 / self.bin_width))
        self.thresholds = tuple(float(t) for t in thresholds)

    def process(self, pred, gt, img_id):
        c = self.spec.gt_channels
        st = normals_stats(pred.reshape(c, *pred.shape[-2:]),
                           gt.reshape(c, *gt.shape[-2:]), self.bin_width,
                           self.thresholds)
        return st if st['n'] > 0 else None

    def compute(self, records):
        res = OrderedDict(
            normals_metrics(
                sum_stats(records, self.bins), self.bin_width,
                self.thresholds))
        return res, dict(table=self.summary_table(res))

    def config(self):
        return dict(bin_width=self.bin_width,
                    thresholds=list(self.thresholds))


@register_task_kind
class NormalsKind(TaskKind):
    """float32 (H, W, 3) vectors, the zero vector marks invalid pixels;
    a flip negates the component along the flipped axis; prediction = the
    L2-normalised output; TTA averages unit vectors; exported as
    (H, W, 3) ``.npy``; drawn as ``255 * (n + 1) / 2``."""
    name = 'normals'
    discrete = False
    gt_channels = 3
    out_channels = 3
    ignore_index = None
    pad_value = 0.0
    loss = dict(type='NormalsL1Loss')
    primary_metric = 'mErr'
    higher_is_better = False
    cmap = 'normals'
    formats = {'.png': 'normals_png', '.npy': 'normals_npy'}
    encode_suffix = '.npy'  # lossless
    flip_negate = {'horizontal': (0, ), 'vertical': (1, )}
    metric = NormalsMetric
    gt_value_range = (-1.0, 1.0)  # components of unit vectors

    def perfect_scores(self, spec):
        # the angle thresholds of the default options (11.25, 22.5, 30)
        return {'mErr': 0.0, 'rmse': 0.0, '11.25': 100.0, '22.5': 100.0,
                '30': 100.0}

    #: Vectors whose length differs from 1 by more than this count as
    #: "not unit length" in :meth:`check_encoding` (an 8-bit PNG
    #: quantises lengths to about 1 +- 0.01).
    unit_tolerance: float = 0.1
    #: Share of such vectors in a sample above which a warning is logged.
    non_unit_share: float = 0.05

    def check_encoding(self, spec, maps, paths):
        """Warn, with the measured lengths, when the valid vectors of the
        sampled files are not unit vectors (a wrong scale, e.g. 0..255
        values in an ``.npy``, or another PNG mapping)."""
        warnings = super().check_encoding(spec, maps, paths)
        lengths = []
        for arr in maps:
            norm = np.linalg.norm(np.asarray(arr, np.float64), axis=-1)
            lengths.append(norm[norm > 0])
        lengths = np.concatenate(lengths) if lengths else np.zeros(0)
        if lengths.size == 0:
            return warnings
        off = float(np.mean(np.abs(lengths - 1) > self.unit_tolerance))
        if off > self.non_unit_share:
            lo, med, hi = np.percentile(lengths, [0, 50, 100])
            shown = ', '.join(repr(p) for p in list(paths)[:3])
            warnings.append(
                f'task {spec.name!r}: the valid normal vectors of the '
                f'{len(maps)} sampled files (e.g. {shown}) have lengths '
                f'{lo:.3g}..{hi:.3g} (median {med:.3g}); {off:.0%} of them '
                f'differ from 1 by more than {self.unit_tolerance:g}. '
                'Normals are unit vectors: an RGB PNG encodes n = 2 v / 255 '
                '- 1 per channel, an .npy holds the vectors themselves. '
                'Check the encoding (training goes on)')
        return warnings

    def logits_to_pred(self, logits: Tensor) -> Tensor:
        return F.normalize(logits, p=2, dim=-3, eps=1e-12)

    def merge_logits(self, stack: Tensor) -> Tensor:
        return F.normalize(stack, dim=1, eps=1e-12).mean(0)

    def resize_pred(self, arr, shape_hw):
        out = super().resize_pred(arr, shape_hw)
        norm = np.linalg.norm(out, axis=-1, keepdims=True)
        return out / np.maximum(norm, 1e-12)


    def colorize(self, spec, arr, meta=None, value_range=None, image=None,
                 alpha=1.0):
        arr = np.asarray(arr, dtype=np.float32)
        invalid = self.invalid_mask(spec, arr)
        norm = np.linalg.norm(arr, axis=-1, keepdims=True)
        unit = arr / np.maximum(norm, 1e-12)
        tile = np.clip(np.round((unit + 1.0) * 127.5), 0, 255)
        return tile.astype(np.uint8), invalid
