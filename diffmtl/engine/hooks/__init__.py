# Copyright (c) diffmtl contributors. All rights reserved.
from .atomic_checkpoint_hook import RNG_STATES_KEY, AtomicCheckpointHook
from .checkpoint_match_hook import CheckpointMatchHook
from .finite_check_hook import FiniteCheckHook
from .input_check_hook import InputCheckHook
from .visualization_hook import MultiTaskVisualizationHook

__all__ = [
    'AtomicCheckpointHook', 'CheckpointMatchHook', 'RNG_STATES_KEY',
    'InputCheckHook', 'MultiTaskVisualizationHook', 'FiniteCheckHook'
]
