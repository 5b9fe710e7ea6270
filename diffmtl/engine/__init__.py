# Copyright (c) diffmtl contributors. All rights reserved.
from .checkpoint import (TRUSTED_CHECKPOINTS_ENV, UnsafeCheckpointError,
                         checkpoint_safe_globals, checkpoints_trusted,
                         load_checkpoint_file, load_from_http, load_from_local)

__all__ = [
    'TRUSTED_CHECKPOINTS_ENV', 'UnsafeCheckpointError',
    'checkpoint_safe_globals', 'checkpoints_trusted', 'load_checkpoint_file',
    'load_from_http', 'load_from_local'
]
