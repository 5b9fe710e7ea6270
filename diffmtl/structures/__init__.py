# Copyright (c) diffmtl contributors. All rights reserved.
from .task_spec import (TASK_SPECS, TaskSpec, get_task_mask, get_task_spec,
                        get_task_specs, register_task_spec, stack_task_gt,
                        stage_field, task_out_channels)

__all__ = [
    'TaskSpec', 'TASK_SPECS', 'register_task_spec', 'get_task_spec',
    'get_task_specs', 'task_out_channels', 'stack_task_gt', 'get_task_mask',
    'stage_field'
]
