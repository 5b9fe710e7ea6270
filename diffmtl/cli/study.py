# Copyright (c) diffmtl contributors. All rights reserved.
"""Run a seeded study: train and test every (arm, seed), then summarise.

The program behind ``tools/analysis_tools/run_study.py``,
``python -m diffmtl.cli.study`` and the ``diffmtl-study`` command of an
installed diffmtl.

Examples::

    python tools/analysis_tools/run_study.py configs/studies/synthetic_one.py
    python tools/analysis_tools/run_study.py STUDY --only feature --dry-run
    python tools/analysis_tools/run_study.py STUDY --summary-only \\
        --results results/synthetic_one
    diffmtl-study STUDY --results results/STUDY   # diffmtl installed

Finished runs are skipped and a killed run continues from its last
checkpoint, so rerunning the same command resumes the study. The runs
(``python -m diffmtl.cli.train`` / ``diffmtl.cli.test``) run in the
current directory; a relative config path of the study file is looked up
from there, then under the repository root of a checkout. The summary
(``summary.json``, ``summary.md``, ``summary.png``) goes to ``--results``
(default: the work dir) and is rewritten after every run; every finished
run's record is copied to ``<results>/runs/<arm>/seed_<s>.json``, so with
``--results`` in the repository (``results/<study>``) a fresh checkout
continues the study without repeating committed runs. See
:mod:`diffmtl.studies` for the study-file format.
"""
import argparse
import os.path as osp

__all__ = ['parse_args', 'main']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train and test every (arm, seed) of a study file, '
        'resumably, and write its summary')
    parser.add_argument('study', help='study file (Python)')
    parser.add_argument(
        '--work-dir',
        help='runs go to <work-dir>/<arm>/seed_<seed> (default: '
        'work_dirs/studies/<study name>)')
    parser.add_argument(
        '--only', nargs='+', metavar='ARM', help='run only these arms')
    parser.add_argument(
        '--dry-run', action='store_true',
        help='print the commands of the unfinished runs and stop')
    parser.add_argument(
        '--max-runs', type=int, default=None,
        help='stop after this many runs (resume later with the same '
        'command)')
    parser.add_argument(
        '--summary-only', action='store_true',
        help='only summarise the finished runs')
    parser.add_argument(
        '--results', help='where summary.json/md/png go (default: the work '
        'dir)')
    parser.add_argument(
        '--shape', type=int, nargs=2, default=None, metavar=('H', 'W'),
        help='input size of the parameter/MAC count (default: the '
        "study's `input_shape`, else none)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config

    from diffmtl.studies import (backfill_training_loss, execute_run,
                                 load_study, plan_runs, run_study,
                                 summarise_study, write_summary)
    study = load_study(args.study)
    work_dir = args.work_dir or osp.join('work_dirs', 'studies',
                                         study['name'])
    results = args.results or work_dir
    extra = Config.fromfile(args.study)
    shape = tuple(args.shape or extra.get('input_shape') or ()) or None
    tasks = list(extra.get('tasks') or [])

    def summarise():
        # records written before the training loss was recorded get it
        # from the runs' logs, where the work dir still has them
        backfill_training_loss(
            plan_runs(study, work_dir, record_root=results))
        summary = summarise_study(study, work_dir, shape, results)
        names = tasks or sorted({
            k.split('/')[0]
            for a in summary['arms'] for k in a['metrics']
            if '/' in k and not k.startswith('initial/')
        })
        paths = write_summary(summary, results, names)
        print('summary: ' + ', '.join(paths))

    if not args.summary_only:

        def execute(run):
            result = execute_run(run)
            summarise()
            return result

        run_study(study, work_dir, only=args.only, record_root=results,
                  dry_run=args.dry_run, max_runs=args.max_runs,
                  execute=execute)
        if args.dry_run:
            return
    summarise()


if __name__ == '__main__':
    main()
