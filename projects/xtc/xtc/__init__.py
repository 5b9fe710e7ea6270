# Copyright (c) diffmtl contributors. All rights reserved.
"""XTC cross-task consistency on the MTL baseline (an OpenMMLab project).

Importing this package (``custom_imports=dict(imports=['diffmtl',
'projects.xtc.xtc'])``) registers :class:`XTCMultiTaskBaseline` and
:class:`FiLMResNetMapper` into diffmtl's (mmseg's) ``MODELS`` registry.
"""
from .encodings import (encode_ground_truth, encode_prediction,
                        valid_ground_truth)
from .mapper import FiLM, FiLMBasicBlock, FiLMResNetMapper, pair_code
from .xtc_baseline import XTCMultiTaskBaseline, cosine_distance

__all__ = [
    'XTCMultiTaskBaseline', 'FiLMResNetMapper', 'FiLMBasicBlock', 'FiLM',
    'pair_code', 'cosine_distance', 'encode_prediction', 'encode_ground_truth',
    'valid_ground_truth'
]
