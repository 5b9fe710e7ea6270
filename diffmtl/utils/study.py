# Copyright (c) diffmtl contributors. All rights reserved.
"""Seeded, resumable studies: the names of :mod:`diffmtl.studies`, where
the study-file format and the runner are described."""
from diffmtl.studies import (backfill_training_loss, checkpoint_arm_name, checkpoint_path,
                             curve_chart, execute_run, finished_record,
                             format_options, learning_curve, load_study,
                             mean_std, plan_runs, run_study, summarise_study,
                             summary_chart, summary_markdown, test_command,
                             train_command, write_summary)

__all__ = [
    'load_study', 'plan_runs', 'run_study', 'summarise_study',
    'write_summary', 'mean_std', 'format_options', 'checkpoint_arm_name',
    'learning_curve', 'finished_record', 'checkpoint_path', 'train_command',
    'test_command', 'execute_run', 'summary_markdown', 'summary_chart',
    'curve_chart', 'backfill_training_loss'
]
