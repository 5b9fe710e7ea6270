# Copyright (c) diffmtl contributors. All rights reserved.
from .cpu_norms import sync_norms_to_bn
from .launch import (close_distributed, cuda_available, exit_finished_cpu_job,
                     init_distributed, set_local_rank_env, setup_launcher)
from .tool_cfg import (add_common_args, build_runner, drop_training,
                       enable_amp, enable_tta, enable_visualization,
                       load_tool_config, set_test_output, set_work_dir)

__all__ = [
    'close_distributed', 'cuda_available', 'exit_finished_cpu_job',
    'init_distributed', 'set_local_rank_env', 'setup_launcher',
    'build_runner', 'enable_amp', 'enable_tta', 'enable_visualization',
    'set_test_output', 'set_work_dir', 'add_common_args', 'load_tool_config',
    'drop_training', 'sync_norms_to_bn'
]
