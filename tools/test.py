# Copyright (c) diffmtl contributors. All rights reserved.
"""Test (evaluate) a checkpoint of a diffmtl (or MMSegmentation) model.

Examples:
    python tools/test.py CFG work_dirs/run1/iter_4000.pth
    python tools/test.py CFG CKPT --out results/ --show-dir vis/
    bash tools/dist_test.sh CFG CKPT 4

The checkout's entry to :mod:`diffmtl.cli.test` (``diffmtl-test`` of an
installed diffmtl), which describes ``--out``, ``--show-dir`` and the
checkpoint checks.
"""
import os.path as osp
import sys

# Let `python tools/<tool>.py` work from a checkout that is not installed.
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from diffmtl.cli.test import main, parse_args  # noqa: E402

__all__ = ['main', 'parse_args']

if __name__ == '__main__':
    main()
