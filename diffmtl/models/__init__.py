# Copyright (c) diffmtl contributors. All rights reserved.
"""Models: segmentors, the diffusion modules, necks, heads, losses, TTA."""
from .data_preprocessor import MultiTaskDataPreProcessor
from .decode_heads import *  # noqa: F401,F403
from .diffusion import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
from .tta import *  # noqa: F401,F403
from .utils import (count_macs, count_parameters, logits_to_pred,
                    postprocess_task_logits)
from . import decode_heads, diffusion, losses, necks, segmentors, tta

__all__ = (
    decode_heads.__all__ + diffusion.__all__ + losses.__all__ +
    necks.__all__ + segmentors.__all__ + tta.__all__ + [
        'logits_to_pred', 'postprocess_task_logits', 'count_macs',
        'count_parameters', 'MultiTaskDataPreProcessor'
    ])
