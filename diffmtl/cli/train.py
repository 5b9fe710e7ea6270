# Copyright (c) diffmtl contributors. All rights reserved.
"""Train a diffmtl (or any MMSegmentation) model from a config.

The program behind ``tools/train.py``, ``python -m diffmtl.cli.train``
and the ``diffmtl-train`` command of an installed diffmtl.

Examples:
    python tools/train.py configs/diffmtl/synthetic_one_r18.py
    python tools/train.py CFG --work-dir work_dirs/run1 --resume
    diffmtl-train CFG --work-dir work_dirs/run1  # diffmtl installed
    bash tools/dist_train.sh CFG 4            # 4 processes on this node

The command line matches MMSegmentation's ``tools/train.py``. On a host
without CUDA, ``--launcher pytorch`` runs with the gloo backend and CPU DDP
automatically (see :mod:`diffmtl.utils.launch`). Checkpoints are written
atomically with every rank's RNG states (``AtomicCheckpointHook`` replaces
``CheckpointHook``, see :mod:`diffmtl.engine.hooks`): a job killed at any
moment resumes with ``--resume`` from the last complete checkpoint and, on
the same hardware, continues bit-identically to an uninterrupted run. A
``load_from`` checkpoint that does not fit the model is an error unless
``--allow-partial-checkpoint``.

One run per work dir: the run holds ``<work_dir>/.train.lock`` (host, pid,
command) while it trains, and a second ``tools/train.py`` on the same work
dir stops at once naming the first; a lock left by a run that ended (even
by ``kill -9``) is taken over with a warning (see
:mod:`diffmtl.engine.work_dir_lock`).

``--resume`` refuses a config whose ``model``, ``optim_wrapper`` or
``param_scheduler`` differ from those stored in the checkpoint, listing
the differences: mmengine would silently continue with the checkpoint's
optimizer and scheduler state (a changed learning rate would not take
effect) and mix two models' settings in one run. ``--allow-resume-changes``
resumes anyway (the differences are logged; the optimizer and scheduler
*state*, learning rates included, still come from the checkpoint, the new
model and loop settings apply). See :mod:`diffmtl.engine.resume_config`.
"""
import argparse

__all__ = ['parse_args', 'main']


def parse_args(argv=None):
    from diffmtl.utils import add_common_args

    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--work-dir',
        help='the dir to save logs and models (default: '
        'the config\'s work_dir, else ./work_dirs/<config name>)')
    parser.add_argument(
        '--resume',
        action='store_true',
        default=False,
        help='resume from the latest checkpoint in the work_dir (or from '
        'cfg.load_from when it is set). A missing, empty or damaged '
        'last_checkpoint or checkpoint is skipped with a warning for the '
        'newest loadable one, and a complete checkpoint newer than the one '
        'last_checkpoint names is used; model, optimizer, schedulers, '
        'iteration and RNG states continue bit-identically. A config whose '
        'model, optim_wrapper or param_scheduler differ from the '
        'checkpoint\'s is refused, listing the differences (see '
        '--allow-resume-changes)')
    parser.add_argument(
        '--allow-resume-changes',
        action='store_true',
        default=False,
        help='with --resume, continue although the config\'s model, '
        'optim_wrapper or param_scheduler differ from the checkpoint\'s '
        '(the differences are logged). The optimizer and scheduler state, '
        'learning rates included, still come from the checkpoint; the new '
        'model and loop settings apply')
    parser.add_argument(
        '--check-data',
        action='store_true',
        default=False,
        help='decode every listed image and labelled annotation of the '
        'training and validation sets before training (check_data=True '
        'on their datasets) and stop naming every damaged file')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (CUDA only)')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    # Importing diffmtl (this package) registered every diffmtl component
    # and the safe checkpoint loader.
    from diffmtl.utils import (build_runner, close_distributed, enable_amp,
                               exit_finished_cpu_job, init_distributed,
                               load_tool_config)
    from diffmtl.utils.tool_cfg import enable_data_check
    from diffmtl.engine.work_dir_lock import (WorkDirLock, WorkDirLockedError,
                                             launcher_rank)

    cfg = load_tool_config(args)
    if args.amp:
        enable_amp(cfg)
    if args.resume:
        cfg.resume = True
    if args.allow_resume_changes:
        from diffmtl.engine.resume_config import ALLOW_RESUME_CHANGES_KEY
        cfg[ALLOW_RESUME_CHANGES_KEY] = True
    if args.check_data:
        enable_data_check(cfg)

    lock = WorkDirLock(cfg.work_dir)
    if launcher_rank() == 0:
        try:
            lock.acquire()
        except WorkDirLockedError as err:
            raise SystemExit(f'ERROR: {err}') from None
    try:
        init_distributed(cfg)
        runner = build_runner(cfg)
        runner.train()
        closed = close_distributed()
    finally:
        lock.release()
    exit_finished_cpu_job(closed)


if __name__ == '__main__':
    main()
