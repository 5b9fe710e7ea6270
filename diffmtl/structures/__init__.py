# Copyright (c) diffmtl contributors. All rights reserved.
"""Task specs (name + kind + per-task options), the task-kind base and the
map geometry helpers (un-padding, resizing)."""
from .maps import (CV2_INTERP, cast_like, image_padding, resize_map, unpad,
                   unpad_window)
from .task_kind import (FLIP_DIRECTIONS, TaskKind, TaskMetric, apply_cmap,
                        get_task_kind, list_task_kinds, register_task_kind)
from .task_spec import (HUMAN_PART_CLASSES, TASK_SPECS, TaskSpec,
                        get_task_mask, get_task_spec, get_task_specs,
                        register_task_spec, stack_task_gt, stage_field,
                        task_class_names, task_out_channels)

__all__ = [
    'TaskSpec', 'TASK_SPECS', 'register_task_spec', 'get_task_spec',
    'get_task_specs', 'task_out_channels', 'stack_task_gt', 'get_task_mask',
    'stage_field', 'task_class_names', 'HUMAN_PART_CLASSES', 'TaskKind',
    'TaskMetric', 'get_task_kind', 'list_task_kinds', 'register_task_kind',
    'FLIP_DIRECTIONS', 'apply_cmap', 'image_padding', 'unpad_window', 'unpad',
    'resize_map', 'CV2_INTERP', 'cast_like'
]
