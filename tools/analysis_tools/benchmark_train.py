# Copyright (c) diffmtl contributors. All rights reserved.
"""Time training iterations of one or more configs on this machine.

Builds each config's model, optimiser wrapper and training dataloader the
way ``tools/train.py`` does (an MMEngine Runner; nothing is written but a
temporary work dir), runs ``--warmup`` iterations, then times ``--iters``
iterations of ``model.train_step`` (data loading included, as in training)
and prints seconds per iteration (median and mean) and images per second.
Run it on an otherwise idle machine: numbers taken while other jobs share
the cores are not comparable.

Example (XTC against its baseline on the synthetic scenes)::

    python tools/analysis_tools/benchmark_train.py \\
        configs/baselines/mtl_baseline_synthetic_one_r18_matched.py \\
        projects/xtc/configs/xtc_synthetic_one_r18_matched.py --iters 30
"""
import argparse
import os.path as osp
import statistics
import sys
import tempfile
import time

import torch
from mmengine.config import Config, DictAction

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Seconds per training iteration of diffmtl configs')
    p.add_argument('configs', nargs='+', help='config files')
    p.add_argument('--iters', type=int, default=30,
                   help='timed iterations (default 30)')
    p.add_argument('--warmup', type=int, default=5,
                   help='untimed iterations first (default 5)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='overrides applied to every config')
    return p.parse_args(argv)


def time_config(path: str, iters: int, warmup: int, seed: int,
                options=None, work_dir: str = None) -> dict:
    """Time ``iters`` training iterations of the config at ``path``.

    Returns:
        dict: ``config``, ``batch_size``, ``sec_per_iter`` (per-iteration
        list), ``median``, ``mean``, ``images_per_sec``.
    """
    import diffmtl  # noqa: F401  (registers diffmtl modules)
    from diffmtl.utils.tool_cfg import build_runner
    if iters < 1 or warmup < 0:
        raise ValueError('--iters must be >= 1 and --warmup >= 0')
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(options)
    cfg.randomness = dict(seed=seed)
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator',
                'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.custom_hooks = []  # hooks are built but never called here
    cfg.log_level = 'WARNING'
    # MMEngine's visualiser and logger outlive the runner: keep one work
    # dir for the whole benchmark (main() removes it at the end)
    cfg.work_dir = osp.join(work_dir or tempfile.mkdtemp(),
                            osp.splitext(osp.basename(path))[0])
    runner = build_runner(cfg)
    loader = runner.build_dataloader(cfg.train_dataloader)
    model = runner.model
    optim = runner.build_optim_wrapper(cfg.optim_wrapper)
    model.train()
    times = []
    it = iter(loader)
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        try:
            data = next(it)
        except StopIteration:
            it = iter(loader)
            data = next(it)
        model.train_step(data, optim)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    batch = cfg.train_dataloader.get('batch_size', 1)
    median = statistics.median(times)
    return dict(
        config=path,
        batch_size=batch,
        sec_per_iter=times,
        median=median,
        mean=statistics.fmean(times),
        images_per_sec=batch / median)


def main(argv=None):
    args = parse_args(argv)
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads; '
          f'{args.warmup} warm-up + {args.iters} timed iterations')
    with tempfile.TemporaryDirectory() as work_dir:
        rows = [
            time_config(c, args.iters, args.warmup, args.seed,
                        args.cfg_options, work_dir) for c in args.configs
        ]
    base = rows[0]['median']
    for r in rows:
        print(f"{r['config']}: {r['median']:.3f} s/iter median, "
              f"{r['mean']:.3f} mean, {r['images_per_sec']:.1f} img/s "
              f"(batch {r['batch_size']}), x{r['median'] / base:.2f} of the "
              'first')
    return rows


if __name__ == '__main__':
    main()
