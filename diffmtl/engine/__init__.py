# Copyright (c) diffmtl contributors. All rights reserved.
from .checkpoint import (TRUSTED_CHECKPOINTS_ENV, CorruptCheckpointError,
                         UnsafeCheckpointError, checkpoint_safe_globals,
                         checkpoints_trusted, load_checkpoint_file,
                         load_from_http, load_from_local)
from .fileio import (ATOMIC_BACKEND, AtomicLocalBackend, atomic_write_bytes,
                     remove_stale_temp_files)
from .hooks import (RNG_STATES_KEY, AtomicCheckpointHook, CheckpointMatchHook,
                    FiniteCheckHook)
from .model_checkpoint import (ALLOW_PARTIAL_KEY, CheckpointMismatchError,
                               check_checkpoint_matches,
                               find_checkpoint_mismatch, load_model_checkpoint)
from .resume import (POINTER_FILE, NoResumableCheckpointError,
                     find_resumable_checkpoint, list_checkpoints,
                     resolve_resume)
from .resume_config import (ALLOW_RESUME_CHANGES_KEY,
                            ResumeConfigMismatchError, check_resume_config)
from .rng_state import gather_rng_states, get_rng_state, set_rng_state

__all__ = [
    'TRUSTED_CHECKPOINTS_ENV', 'UnsafeCheckpointError',
    'CorruptCheckpointError', 'checkpoint_safe_globals', 'checkpoints_trusted',
    'load_checkpoint_file', 'load_from_http', 'load_from_local',
    'ATOMIC_BACKEND', 'AtomicLocalBackend', 'atomic_write_bytes',
    'remove_stale_temp_files', 'AtomicCheckpointHook', 'CheckpointMatchHook',
    'RNG_STATES_KEY', 'ALLOW_PARTIAL_KEY', 'CheckpointMismatchError',
    'check_checkpoint_matches', 'find_checkpoint_mismatch',
    'load_model_checkpoint', 'POINTER_FILE', 'NoResumableCheckpointError',
    'find_resumable_checkpoint', 'list_checkpoints', 'resolve_resume',
    'gather_rng_states', 'get_rng_state', 'set_rng_state',
    'FiniteCheckHook', 'ALLOW_RESUME_CHANGES_KEY',
    'ResumeConfigMismatchError', 'check_resume_config'
]
