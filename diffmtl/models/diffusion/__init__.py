# Copyright (c) diffmtl contributors. All rights reserved.
from .attention import (CrossAttentionBlock, MultiHeadAttention,
                        SelfAttentionBlock)
from .conditioner import MultiTaskConditioner
from .denoiser import MultiTaskDenoiser
from .schedule import DiffusionSchedule
from .step_embedding import StepEmbedding

__all__ = [
    'DiffusionSchedule', 'StepEmbedding', 'MultiHeadAttention',
    'CrossAttentionBlock', 'SelfAttentionBlock', 'MultiTaskConditioner',
    'MultiTaskDenoiser'
]
