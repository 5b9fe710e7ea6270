# Copyright (c) diffmtl contributors. All rights reserved.
"""Train a diffmtl (or any MMSegmentation) model from a config.

Examples:
    python tools/train.py configs/diffmtl/synthetic_one_r18.py
    python tools/train.py CFG --work-dir work_dirs/run1 --resume
    bash tools/dist_train.sh CFG 4            # 4 processes on this node

The checkout's entry to :mod:`diffmtl.cli.train` (``diffmtl-train`` of an
installed diffmtl), which describes the work-dir lock, resuming and the
checkpoint checks.
"""
import os.path as osp
import sys

# Let `python tools/<tool>.py` work from a checkout that is not installed.
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from diffmtl.cli.train import main, parse_args  # noqa: E402

__all__ = ['main', 'parse_args']

if __name__ == '__main__':
    main()
