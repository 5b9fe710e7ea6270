# Copyright (c) diffmtl contributors. All rights reserved.
from .launch import (cuda_available, init_distributed, set_local_rank_env,
                     setup_launcher)
from .tool_cfg import (build_runner, enable_amp, enable_tta,
                       enable_visualization, set_test_output, set_work_dir)

__all__ = [
    'cuda_available', 'init_distributed', 'set_local_rank_env',
    'setup_launcher', 'build_runner', 'enable_amp', 'enable_tta',
    'enable_visualization', 'set_test_output', 'set_work_dir'
]
