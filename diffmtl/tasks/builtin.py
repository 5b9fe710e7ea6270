# Copyright (c) diffmtl contributors. All rights reserved.
"""The six tasks of the paper, registered when :mod:`diffmtl` is imported.

Each spec gives the task's field names and only what differs from its
kind's defaults (losses, metrics, channels and colours come from the kind
modules of :mod:`diffmtl.tasks`).
"""
from diffmtl.structures import (HUMAN_PART_CLASSES, TaskSpec,
                                register_task_spec)

__all__ = ['BUILTIN_TASKS']


def _task(name, kind, results_key, gt_field, pred_field, logits_field,
          **options) -> TaskSpec:
    return register_task_spec(
        TaskSpec(name=name, kind=kind, results_key=results_key,
                 gt_field=gt_field, pred_field=pred_field,
                 logits_field=logits_field, **options))


#: The built-in tasks, in the paper's order.
BUILTIN_TASKS = (
    _task('semseg', 'segmentation', 'gt_seg_map', 'gt_sem_seg',
          'pred_sem_seg', 'seg_logits', mmseg_classes=True),
    _task('human_parts', 'segmentation', 'gt_parts_map', 'gt_human_parts',
          'pred_human_parts', 'logits_human_parts',
          default_classes=HUMAN_PART_CLASSES),
    _task('sal', 'saliency', 'gt_sal_map', 'gt_sal', 'pred_sal',
          'logits_sal'),
    _task('normals', 'normals', 'gt_normal_map', 'gt_normals',
          'pred_normals', 'logits_normals'),
    _task('edge', 'boundary', 'gt_edge_map', 'gt_edge', 'pred_edge',
          'logits_edge'),
    _task('depth', 'depth', 'gt_depth_map', 'gt_depth', 'pred_depth',
          'logits_depth'),
)
