# Copyright (c) diffmtl contributors. All rights reserved.
from .complexity import MACCounter, count_macs, count_parameters
from .head_init import init_head_bias, output_conv
from .postprocess import (flip_task_logits, logits_to_pred,
                          postprocess_task_logits)
from .weight_init import xavier_normal_init

__all__ = [
    'logits_to_pred', 'postprocess_task_logits', 'flip_task_logits',
    'MACCounter', 'count_macs', 'count_parameters', 'init_head_bias',
    'output_conv', 'xavier_normal_init'
]
