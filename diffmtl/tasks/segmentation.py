# Copyright (c) diffmtl contributors. All rights reserved.
"""Segmentation kind: per-pixel class ids (``semseg``, ``human_parts``)."""
from collections import OrderedDict
from typing import List, Optional

import numpy as np
from torch import Tensor

from diffmtl.evaluation.functional.dense_stats import (seg_metrics, seg_stats,
                                                       sum_stats)
from diffmtl.structures import (TaskKind, TaskMetric, register_task_kind,
                                resize_map, task_class_names)
from .colour import task_palette

__all__ = ['SegmentationKind', 'SegmentationMetric', 'per_class_keys']


def per_class_keys(names) -> List[str]:
    """Metric-key suffixes of per-class values: ``'IoU.<class>'``.

    Slashes and whitespace in a class name become ``'_'`` (a ``'/'`` would
    read as another level of the ``<task>/<metric>`` key); a name that is
    then repeated gets ``'.<index>'`` appended.
    """
    import re
    keys, seen = [], set()
    for i, name in enumerate(names):
        key = 'IoU.' + (re.sub(r'[/\s]+', '_', str(name)) or str(i))
        if key in seen:
            key = f'{key}.{i}'
        seen.add(key)
        keys.append(key)
    return keys


class SegmentationMetric(TaskMetric):
    """mIoU / mAcc / aAcc pooled over the set (and per-class IoU).

    Args:
        num_classes (int, optional): Classes; default from the dataset meta
            (:func:`~diffmtl.structures.task_class_names`).
        per_class_iou (bool): Also return ``IoU.<class>`` keys.
    """

    def __init__(self, task, spec, num_classes: Optional[int] = None,
                 per_class_iou: bool = True) -> None:
        super().__init__(task, spec)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.per_class_iou = bool(per_class_iou)

    def class_names(self) -> List[str]:
        names = task_class_names(self.task, self.dataset_meta,
                                 self.num_classes)
        if names is None:
            raise KeyError(f'MultiTaskMetric: no classes for task '
                           f"{self.task!r}; set dataset_meta['task_classes'] "
                           f'or task_metrics={{{self.task!r}: '
                           'dict(num_classes=N)}')
        return list(names)

    def config(self):
        return dict(num_classes=len(self.class_names()),
                    per_class_iou=self.per_class_iou)

    def process(self, pred, gt, img_id):
        st = seg_stats(pred.reshape(pred.shape[-2:]),
                       gt.reshape(gt.shape[-2:]), len(self.class_names()))
        return st if st['n_valid'] > 0 else None

    def compute(self, records):
        from prettytable import PrettyTable
        m = seg_metrics(sum_stats(records))
        names = self.class_names()
        if len(names) != len(m['IoU']):
            names = [str(i) for i in range(len(m['IoU']))]
        table = PrettyTable(field_names=['Class', 'IoU', 'Acc'])
        for name, iou, acc in zip(names, m['IoU'], m['Acc']):
            table.add_row([
                name, f'{iou * 100:.2f}',
                '-' if np.isnan(acc) else f'{acc * 100:.2f}'
            ])
        res = OrderedDict(mIoU=m['mIoU'], mAcc=m['mAcc'], aAcc=m['aAcc'])
        extra = dict(
            per_class={n: float(i * 100)
                       for n, i in zip(names, m['IoU'])},
            table=table.get_string() + '\n' + self.summary_table(res))
        if self.per_class_iou:
            extra['per_class_keys'] = OrderedDict(
                (k, float(i * 100))
                for k, i in zip(per_class_keys(names), m['IoU']))
        return res, extra


@register_task_kind
class SegmentationKind(TaskKind):
    """Class ids: ``uint8`` (H, W) labels with ignore index 255; the network
    predicts one logit per class; prediction = argmax; TTA averages the
    softmax; exported as PNG of class ids; drawn with the task's palette."""
    name = 'segmentation'
    loss = dict(type='MTCrossEntropyLoss')
    primary_metric = 'mIoU'
    cmap = 'palette'
    export_suffix = '.png'
    metric = SegmentationMetric
    always_mark_invalid = True
    has_classes = True

    def num_labels(self, spec, num_classes):
        if num_classes is not None:
            return int(num_classes)
        return len(spec.default_classes) if spec.default_classes else None

    def perfect_scores(self, spec):
        return dict(mIoU=100.0, mAcc=100.0, aAcc=100.0)

    def logits_to_pred(self, logits: Tensor) -> Tensor:
        return logits.argmax(dim=-3, keepdim=True).long()

    def merge_logits(self, stack: Tensor) -> Tensor:
        return stack.softmax(dim=1).mean(0).clamp_min(1e-12).log()

    def resize_pred(self, arr, shape_hw):
        return resize_map(arr, shape_hw, 'nearest')  # class ids: nearest

    def export(self, spec, pred, path_stem):
        import mmcv
        pred = pred.reshape(pred.shape[-2:])
        dtype = np.uint8 if pred.max(initial=0) < 256 else np.uint16
        path = path_stem + self.export_suffix
        mmcv.imwrite(pred.astype(dtype), path)
        return path

    def colorize(self, spec, arr, meta=None, value_range=None, image=None,
                 alpha=1.0):
        arr = np.asarray(arr)
        if arr.ndim == 3:
            arr = arr[..., 0]
        labels = np.round(arr.astype(np.float64)).astype(np.int64)
        classes = task_class_names(spec.name, meta)
        num_classes = len(classes) if classes else int(
            max(labels[labels != spec.ignore_index].max(initial=0) + 1, 1))
        palette = np.asarray(task_palette(spec.name, meta, num_classes),
                             dtype=np.uint8)
        invalid = self.invalid_mask(spec, arr) | (labels < 0) | (
            labels >= num_classes)
        tile = palette[np.clip(labels, 0, num_classes - 1)]
        if image is not None and alpha < 1:
            img = np.asarray(image)  # (H, W, 3), fitted by the caller
            tile = (img.astype(np.float32) * (1 - alpha) +
                    tile.astype(np.float32) * alpha).astype(np.uint8)
        return tile, invalid
