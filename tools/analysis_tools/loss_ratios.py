# Copyright (c) diffmtl contributors. All rights reserved.
"""Final against initial training loss, per task, from training logs.

DiffusionMTL logs ``<task>.loss`` (the denoised output's loss) and
``<task>.loss_init`` (the initial prediction's loss times
``model.init_loss_weight``). For each run directory this reads the
``vis_data/scalars.json`` files that mmengine wrote (a resumed run has one
per start; a later record of the same iteration wins), keeps the logged
training records after ``--from-iter``, and reports per task::

    ratio = mean(<task>.loss) / (mean(<task>.loss_init) / init_loss_weight)

below 1: the denoiser's output fits the training batches better than the
initial prediction does; about 1: no better; above 1: worse. The task loss
weight multiplies both terms and cancels. ``init_loss_weight`` is read from
the config the run dumped into its directory unless given.

Example::

    python tools/analysis_tools/loss_ratios.py \\
        work_dirs/studies/synthetic_one/feature/seed_{0,1,2} \\
        --from-iter 2500 --out results/diagnostics/loss_ratios.json
"""
import argparse
import glob
import json
import os.path as osp
import sys
from collections import defaultdict
from typing import Dict, List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

SUFFIX_FINAL = '.loss'
SUFFIX_INIT = '.loss_init'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Final vs initial training loss per task, from the '
        'scalars.json logs of training runs')
    parser.add_argument('run_dirs', nargs='+',
                        help='training work directories')
    parser.add_argument('--from-iter', type=int, default=0,
                        help='only records of iterations after this one')
    parser.add_argument('--init-loss-weight', type=float,
                        help='weight of <task>.loss_init in the logs '
                        '(default: model.init_loss_weight of the config '
                        'dumped in the run directory)')
    parser.add_argument('--out', help='write the table as JSON here')
    return parser.parse_args(argv)


def read_training_records(run_dir: str) -> Dict[int, dict]:
    """``{iteration: record}`` of the training records in ``run_dir``.

    Raises:
        FileNotFoundError: no ``*/vis_data/scalars.json`` in ``run_dir``.
        ValueError: a line of a log is not JSON (names file and line).
    """
    files = sorted(glob.glob(osp.join(run_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not files:
        raise FileNotFoundError(
            f'{run_dir}: no */vis_data/scalars.json (is it a training work '
            'directory of mmengine?)')
    records = {}
    for path in files:  # timestamped names: later starts come later
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f'{path}:{lineno}: not JSON ({e})')
                if 'step' in rec and any(
                        k.endswith(SUFFIX_FINAL) for k in rec):
                    records[int(rec['step'])] = rec
    return records


def init_loss_weight_of(run_dir: str) -> float:
    """``model.init_loss_weight`` of the config dumped in ``run_dir``."""
    from mmengine.config import Config
    for path in sorted(glob.glob(osp.join(run_dir, '*.py'))):
        cfg = Config.fromfile(path)
        model = cfg.get('model', {})
        if 'init_loss_weight' in model:
            return float(model['init_loss_weight'])
    raise ValueError(
        f'{run_dir}: no dumped config with model.init_loss_weight; pass '
        '--init-loss-weight')


def loss_ratios(records: Dict[int, dict], init_loss_weight: float,
                from_iter: int = 0) -> Dict[str, dict]:
    """Per task: ``ratio``, ``final`` and unweighted ``init`` mean loss and
    ``n`` (records with both terms) over iterations > ``from_iter``."""
    if init_loss_weight <= 0:
        raise ValueError(f'init_loss_weight must be > 0, got '
                         f'{init_loss_weight}')
    sums = defaultdict(lambda: [0.0, 0.0, 0])
    for step, rec in records.items():
        if step <= from_iter:
            continue
        for key, value in rec.items():
            if not key.endswith(SUFFIX_FINAL):
                continue
            task = key[:-len(SUFFIX_FINAL)]
            init = rec.get(task + SUFFIX_INIT)
            if init is None:
                continue
            s = sums[task]
            s[0] += value
            s[1] += init / init_loss_weight
            s[2] += 1
    if not sums:
        raise ValueError(
            f'no record after iteration {from_iter} has both <task>.loss '
            'and <task>.loss_init')
    return {
        task: dict(ratio=f / i, final=f / n, init=i / n, n=n)
        for task, (f, i, n) in sorted(sums.items())
    }


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    table = {}
    for run_dir in args.run_dirs:
        weight = (args.init_loss_weight if args.init_loss_weight is not None
                  else init_loss_weight_of(run_dir))
        table[run_dir] = loss_ratios(read_training_records(run_dir), weight,
                                     args.from_iter)
        print(run_dir + ': ' + ', '.join(
            f"{t} {r['ratio']:.2f}" for t, r in table[run_dir].items()))
    if args.out:
        from mmengine.utils import mkdir_or_exist
        mkdir_or_exist(osp.dirname(osp.abspath(args.out)))
        with open(args.out, 'w') as f:
            json.dump(dict(from_iter=args.from_iter, runs=table), f,
                      indent=1)
    return table


if __name__ == '__main__':
    main()
