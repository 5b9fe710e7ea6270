# Copyright (c) diffmtl contributors. All rights reserved.
"""Train a diffmtl (or any MMSegmentation) model from a config.

Examples:
    python tools/train.py configs/diffmtl/synthetic_one_r18.py
    python tools/train.py CFG --work-dir work_dirs/run1 --resume
    bash tools/dist_train.sh CFG 4            # 4 processes on this node

The command line matches MMSegmentation's ``tools/train.py``. On a host
without CUDA, ``--launcher pytorch`` runs with the gloo backend and CPU DDP
automatically (see :mod:`diffmtl.utils.launch`).
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction

# Let `python tools/<tool>.py` work from a checkout that is not installed.
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def parse_args(argv=None):
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
        help='resume from the latest checkpoint in the work_dir '
        '(or from cfg.load_from when it is set)')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (CUDA only)')
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        default=False,
        help='load checkpoints with weights_only=False (runs code from the '
        'pickle; only for files you trust). Same as '
        'DIFFMTL_TRUSTED_CHECKPOINTS=1')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (older: --local_rank);
    # torchrun sets the LOCAL_RANK environment variable instead.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.trust_checkpoint:
        from diffmtl.engine import TRUSTED_CHECKPOINTS_ENV
        os.environ[TRUSTED_CHECKPOINTS_ENV] = '1'

    # Registers every diffmtl component and the safe checkpoint loader.
    import diffmtl  # noqa: F401
    from diffmtl.utils import (build_runner, enable_amp, init_distributed,
                               set_local_rank_env, set_work_dir,
                               setup_launcher)

    set_local_rank_env(args.local_rank)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    setup_launcher(cfg, args.launcher)
    set_work_dir(cfg, args.work_dir, args.config)
    if args.amp:
        enable_amp(cfg)
    if args.resume:
        cfg.resume = True

    init_distributed(cfg)
    runner = build_runner(cfg)
    runner.train()


if __name__ == '__main__':
    main()
