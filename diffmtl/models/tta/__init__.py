# Copyright (c) diffmtl contributors. All rights reserved.
from .multitask_tta import MultiTaskTTAModel, merge_task_logits

__all__ = ['MultiTaskTTAModel', 'merge_task_logits']
