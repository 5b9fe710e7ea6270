# Copyright (c) diffmtl contributors. All rights reserved.
"""Print the label statistics JTR's depth encoding needs, for a config.

JTR encodes depth as ``Phi((d - mean) / std)``. ``mean`` and ``std`` are
the mean and standard deviation (population, ``ddof=0``) of the valid
ground-truth values pooled over all pixels of the training images that are
labelled for the task in the config's label setting, as loaded (before
any augmentation), in the dataset's units. They are computed for every task
whose JTR encoding lists ``statistics`` (the depth kind)::

    python projects/jtr/tools/depth_stats.py \\
        configs/baselines/mtl_baseline_nyud_one_r18.py
    python projects/jtr/tools/depth_stats.py CONFIG --label-setting random \\
        --cfg-options train_dataloader.dataset.data_root=data/other

The last line printed is the config entry, e.g.
``encodings=dict(depth=dict(mean=2.36, std=1.59))``.
"""
import argparse
import copy
import math
import os.path as osp
import sys
from typing import Dict, Optional

import numpy as np

# Let `python projects/jtr/tools/depth_stats.py` work from the repository
# root of a checkout that is not installed.
REPO_ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

__all__ = ['PooledMoments', 'label_statistics', 'format_statistics', 'main']


class PooledMoments:
    """Count, mean and sum of squared deviations of values seen in chunks
    (Chan et al.'s parallel update, in float64)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.images = 0

    def update(self, values: np.ndarray) -> None:
        """Add one image's valid values (any shape)."""
        values = np.asarray(values, dtype=np.float64).ravel()
        self.images += 1
        n = values.size
        if n == 0:
            return
        mean = float(values.mean())
        m2 = float(((values - mean)**2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total

    @property
    def std(self) -> float:
        """Population standard deviation."""
        return math.sqrt(self.m2 / self.count) if self.count else math.nan


def label_statistics(cfg,
                     label_setting: Optional[str] = None
                     ) -> Dict[str, PooledMoments]:
    """Pooled moments of the valid labels of the tasks whose JTR encoding
    lists ``statistics``.

    Args:
        cfg (mmengine.Config): A diffmtl training config; its
            ``train_dataloader.dataset`` is built with only the loading
            transforms of its pipeline (those whose type starts with
            ``'Load'``).
        label_setting (str, optional): Overrides the dataset's
            ``label_setting`` (``'one'``, ``'random'``, ``'full'``).

    Returns:
        dict[str, PooledMoments]: Per task, in the dataset's task order.

    Raises:
        ValueError: No task needs statistics, or a task has no labelled
            training image with a valid pixel.
    """
    import diffmtl  # noqa: F401  (registers the datasets and transforms)
    from diffmtl.registry import DATASETS
    from diffmtl.structures import get_task_spec
    from projects.jtr.jtr import ENCODINGS

    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    if label_setting is not None:
        ds_cfg['label_setting'] = label_setting
    loads = [
        t for t in ds_cfg.get('pipeline', [])
        if str(t.get('type', '')).startswith('Load')
    ]
    if not loads:
        raise ValueError('train_dataloader.dataset.pipeline has no loading '
                         'transform (a type starting with "Load")')
    ds_cfg['pipeline'] = loads
    dataset = DATASETS.build(ds_cfg)
    tasks = tuple(dataset.metainfo['tasks'])
    specs = {t: get_task_spec(t) for t in tasks}
    wanted = [
        t for t in tasks
        if getattr(ENCODINGS.get(specs[t].kind), 'statistics', ())
    ]
    if not wanted:
        raise ValueError(f'none of the tasks {list(tasks)} has a JTR '
                         'encoding that needs label statistics')
    moments = {t: PooledMoments() for t in wanted}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        labelled = dict(zip(info['tasks'], info['task_mask']))
        if not any(labelled.get(t, False) for t in wanted):
            continue
        results = dataset.pipeline(info)
        for t in wanted:
            if not labelled.get(t, False):
                continue
            spec = specs[t]
            arr = np.asarray(results[spec.results_key])
            valid = ~spec.task_kind.invalid_mask(spec, arr)
            moments[t].update(arr[valid])
    empty = [t for t, m in moments.items() if m.count == 0]
    if empty:
        setting = ds_cfg.get('label_setting')
        raise ValueError(f'tasks {empty} have no valid labelled pixel in '
                         f'the training images of label setting '
                         f'{setting!r}')
    return moments


def format_statistics(moments: Dict[str, PooledMoments]) -> str:
    """Report lines and, last, the config entry."""
    lines = [
        f'{t}: {m.images} labelled images, {m.count} valid pixels, '
        f'mean {m.mean:.6g}, std {m.std:.6g}' for t, m in moments.items()
    ]
    entry = ', '.join(f'{t}=dict(mean={m.mean:.6g}, std={m.std:.6g})'
                      for t, m in moments.items())
    lines.append(f'encodings=dict({entry})')
    return '\n'.join(lines)


def main(argv=None) -> None:
    from mmengine.config import Config, DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a diffmtl training config')
    parser.add_argument(
        '--label-setting',
        help="partial-label setting ('one', 'random', 'full'); default: "
        "the config's")
    parser.add_argument('--cfg-options',
                        nargs='+',
                        action=DictAction,
                        help='KEY=VALUE overrides of the config (dotted keys)')
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    print(format_statistics(label_statistics(cfg, args.label_setting)))


if __name__ == '__main__':
    main()
