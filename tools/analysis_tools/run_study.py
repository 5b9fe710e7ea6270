# Copyright (c) diffmtl contributors. All rights reserved.
"""Run a seeded study: train and test every (arm, seed), then summarise.

Examples::

    python tools/analysis_tools/run_study.py configs/studies/synthetic_one.py
    python tools/analysis_tools/run_study.py STUDY --only feature --dry-run
    python tools/analysis_tools/run_study.py STUDY --summary-only \\
        --results results/synthetic_one

The checkout's entry to :mod:`diffmtl.cli.study` (``diffmtl-study`` of an
installed diffmtl), which describes resuming and the results folder; see
:mod:`diffmtl.studies` for the study-file format.
"""
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from diffmtl.cli.study import main, parse_args  # noqa: E402

__all__ = ['main', 'parse_args']

if __name__ == '__main__':
    main()
