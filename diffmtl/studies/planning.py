# Copyright (c) diffmtl contributors. All rights reserved.
"""Planning a study: its (arm, seed) runs in order and the training and
testing commands of each (``python -m diffmtl.cli.train`` /
``diffmtl.cli.test``, so an installed diffmtl runs them as a checkout
does)."""
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

from .records import latest_checkpoint
from .study_file import DEFAULT_TRAIN_LOSS_WINDOW, study_arm

__all__ = [
    'plan_runs', 'format_options', 'train_command', 'test_command',
    'TRAIN_MODULE', 'TEST_MODULE'
]

#: The module every training run executes (``python -m``).
TRAIN_MODULE = 'diffmtl.cli.train'
#: The module every test run executes (``python -m``).
TEST_MODULE = 'diffmtl.cli.test'


def format_options(options: Dict) -> List[str]:
    """``{key: value}`` -> ``['key=value', ...]`` for ``--cfg-options``.

    Values are written so that mmengine's ``DictAction`` reads them back
    unchanged: bools as ``True``/``False``, None as ``None``, tuples and
    lists in brackets.
    """
    def fmt(v):
        if isinstance(v, bool) or v is None:
            return str(v)
        if isinstance(v, (list, tuple)):
            inner = ','.join(fmt(x) for x in v)
            return f'({inner},)' if isinstance(v, tuple) else f'[{inner}]'
        if isinstance(v, str):
            return f"'{v}'" if ',' in v or v in ('True', 'False',
                                                 'None') else v
        return repr(v)

    return [f'{k}={fmt(v)}' for k, v in options.items()]


def plan_runs(study: dict, work_dir: str,
              only: Optional[Sequence[str]] = None,
              record_root: Optional[str] = None) -> List[dict]:
    """Every (arm, seed) step in order: seed by seed (so that every arm
    has a first seed early), within a seed the trained arms in file order,
    then the evaluation-only arms (which need those checkpoints).

    ``record_root`` (the results folder) keeps a copy of every finished
    run's test record in ``<record_root>/runs/<arm>/seed_<s>.json``: small
    files to commit, so a study continued in a fresh checkout (without the
    work dir's checkpoints) does not repeat finished runs.

    Returns:
        list[dict]: ``arm, seed, kind ('train+test' | 'test'), source (the
        trained arm whose checkpoint is tested), run_dir, ckpt_dir, record
        (path or None), checkpoint (the iteration a checkpoint-evaluation
        run tests, else None), train_loss_window (see
        :func:`~diffmtl.studies.records.training_loss`), config (the
        source arm's config file, resolved by
        :func:`~diffmtl.studies.study_file.resolve_config`), cfg_options,
        test_options``.
    """
    only = set(only or [])
    unknown = only - {a['name'] for a in study['arms']}
    if unknown:
        raise ValueError(f'--only names unknown arms {sorted(unknown)}; '
                         f'the study has {[a["name"] for a in study["arms"]]}')
    runs = []
    order = [a for a in study['arms'] if 'config' in a] + \
        [a for a in study['arms'] if 'eval_of' in a]
    for seed in study['seeds']:
        for arm in order:
            if only and arm['name'] not in only:
                continue
            src = study_arm(study, arm.get('eval_of', arm['name']))
            runs.append(
                dict(
                    arm=arm['name'],
                    seed=seed,
                    kind='test' if 'eval_of' in arm else 'train+test',
                    source=src['name'],
                    run_dir=osp.join(work_dir, arm['name'], f'seed_{seed}'),
                    ckpt_dir=osp.join(work_dir, src['name'],
                                      f'seed_{seed}'),
                    record=None if record_root is None else osp.join(
                        record_root, 'runs', arm['name'],
                        f'seed_{seed}.json'),
                    checkpoint=arm.get('checkpoint'),
                    train_loss_window=study.get(
                        'train_loss_window', DEFAULT_TRAIN_LOSS_WINDOW),
                    config=src['config_file'],
                    cfg_options={
                        **study['train_options'], **src['cfg_options'],
                        'randomness.seed': seed
                    },
                    test_options={
                        **study['test_options'], **src['cfg_options'],
                        **arm['test_options']
                    }))
    return runs


def train_command(run: dict, python: str = sys.executable) -> List[str]:
    """``python -m diffmtl.cli.train`` of ``run`` into its ``ckpt_dir``,
    with ``--resume`` when a checkpoint is already there."""
    cmd = [
        python, '-m', TRAIN_MODULE, run['config'], '--work-dir',
        run['ckpt_dir']
    ]
    if latest_checkpoint(run['ckpt_dir']):
        cmd.append('--resume')
    return cmd + ['--cfg-options'] + format_options(run['cfg_options'])


def test_command(run: dict, ckpt: str, python: str = sys.executable
                 ) -> List[str]:
    """``python -m diffmtl.cli.test`` of checkpoint ``ckpt`` with
    ``run``'s test options; the metrics go to ``<run_dir>/eval``."""
    eval_dir = osp.join(run['run_dir'], 'eval')
    options = {
        **run['test_options'],
        'test_evaluator.output_dir': eval_dir,
        'test_evaluator.keep_results': False,
    }
    return [
        python, '-m', TEST_MODULE, run['config'], ckpt, '--work-dir',
        osp.join(run['run_dir'], 'test_logs'), '--cfg-options'
    ] + format_options(options)
