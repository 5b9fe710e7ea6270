# Copyright (c) diffmtl contributors. All rights reserved.
from .multitask_metric import MultiTaskMetric

__all__ = ['MultiTaskMetric']
