# Copyright (c) diffmtl contributors. All rights reserved.
"""Multi-task performance Delta-m against a single-task reference.

``delta_m = 100 / T * sum_t (-1)^{l_t} (M_t - S_t) / S_t`` where ``l_t = 1``
when lower is better for task ``t`` (``spec.higher_is_better`` is False:
normals mErr, depth absErr) and ``S`` is the single-task baseline of the
same benchmark and label setting.
"""
import json
import os.path as osp
from typing import Dict, Mapping, Optional, Sequence, Union

from diffmtl.structures.task_spec import TASK_SPECS, get_task_spec

__all__ = [
    'DELTA_M_PRESETS', 'primary_metric_key', 'resolve_reference', 'delta_m'
]

#: Single-task references printed in the paper (the delta-m presets table of
#: ``docs/en/metrics.md``), keyed by ``<task>/<primary metric>``.
DELTA_M_PRESETS: Dict[str, Dict[str, float]] = {
    'pascal_one': {
        'semseg/mIoU': 50.34,
        'human_parts/mIoU': 59.05,
        'sal/maxF': 77.43,
        'normals/mErr': 16.59,
        'edge/odsF': 64.40
    },
    'pascal_random': {
        'semseg/mIoU': 51.51,
        'human_parts/mIoU': 57.90,
        'sal/maxF': 80.30,
        'normals/mErr': 15.24,
        'edge/odsF': 67.80
    },
    'pascal_full': {
        'semseg/mIoU': 52.56,
        'human_parts/mIoU': 62.21,
        'sal/maxF': 82.75,
        'normals/mErr': 14.12,
        'edge/odsF': 68.90
    },
    'nyud_one': {
        'semseg/mIoU': 45.28,
        'depth/absErr': 0.4802,
        'normals/mErr': 25.93
    },
    'nyud_random': {
        'semseg/mIoU': 48.25,
        'depth/absErr': 0.4792,
        'normals/mErr': 24.65
    },
    'cityscapes_one': {
        'semseg/mIoU': 75.82,
        'depth/absErr': 0.0125
    },
}
DELTA_M_PRESETS['cityscapes_random'] = DELTA_M_PRESETS['cityscapes_one']


def primary_metric_key(task: str) -> str:
    """``'<task>/<spec.primary_metric>'``, e.g. ``'normals/mErr'``."""
    spec = get_task_spec(task)
    if not spec.primary_metric:
        raise ValueError(f'task {task!r} has no primary_metric in its '
                         'TaskSpec; delta-m cannot use it')
    return f'{task}/{spec.primary_metric}'


def resolve_reference(
        reference: Union[str, Mapping[str, float], None]
) -> Optional[Dict[str, float]]:
    """Turn a preset name, a JSON path or a dict into ``{key: value}``.

    Args:
        reference: ``None``; a preset name of :data:`DELTA_M_PRESETS`; a
            path to a JSON file whose top level maps metric keys to numbers
            (e.g. the ``metrics.json`` this package's metric writes; non
            numeric entries are ignored); or a dict. Keys may be full
            metric keys (``'normals/mErr'``) or bare task names
            (``'normals'``, meaning its primary metric).

    Returns:
        dict or None: Metric key -> reference value.
    """
    if reference is None:
        return None
    if isinstance(reference, str):
        if reference in DELTA_M_PRESETS:
            return dict(DELTA_M_PRESETS[reference])
        if not osp.isfile(reference):
            raise ValueError(
                f'delta_m_reference {reference!r} is neither a preset '
                f'({sorted(DELTA_M_PRESETS)}) nor an existing JSON file')
        with open(reference) as f:
            reference = json.load(f)
        if not isinstance(reference, dict):
            raise ValueError('delta-m reference JSON must hold an object of '
                             'metric key -> value')
    out = {}
    prefixed = {}
    for k, v in reference.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        parts = k.split('/')
        if len(parts) == 2:
            out[k] = float(v)
        elif len(parts) > 2:
            # 'val/semseg/mIoU'; never overrides a plain 'semseg/mIoU', so
            # the 'initial/<task>/<metric>' stage keys of a metrics.json do
            # not replace its final metrics
            prefixed.setdefault('/'.join(parts[-2:]), float(v))
        elif k in TASK_SPECS:
            out[primary_metric_key(k)] = float(v)
        # other bare keys (e.g. a stored 'delta_m') are not references
    for k, v in prefixed.items():
        out.setdefault(k, v)
    return out


def delta_m(metrics: Mapping[str, float],
            reference: Mapping[str, float],
            tasks: Optional[Sequence[str]] = None) -> Optional[float]:
    """Delta-m (%) of ``metrics`` against ``reference``.

    Args:
        metrics (dict): Metric key -> value, e.g. ``{'semseg/mIoU': 57.8}``
            (a key may carry a prefix such as ``'val/'``; only the last two
            path parts are used, and a plain ``'<task>/<metric>'`` key wins
            over prefixed ones such as the ``'initial/'`` stage metrics).
        reference (dict): Resolved reference (:func:`resolve_reference`).
        tasks (sequence of str, optional): Tasks to include; default: every
            task whose primary metric is in both dicts.

    Returns:
        float or None: Delta-m in percent, None when no task is shared.
    """
    flat = {k: v for k, v in metrics.items() if k.count('/') == 1}
    for k, v in metrics.items():  # 'val/semseg/mIoU': only if no plain key
        if k.count('/') > 1:
            flat.setdefault('/'.join(k.split('/')[-2:]), v)
    if tasks is None:
        tasks = []
        for k in reference:
            t = k.split('/')[0]
            if t in TASK_SPECS and t not in tasks:
                tasks.append(t)
    terms = []
    for task in tasks:
        key = primary_metric_key(task)
        if key not in flat or key not in reference:
            continue
        m, s = float(flat[key]), float(reference[key])
        if s == 0:
            raise ValueError(f'delta-m reference of {key!r} is 0')
        sign = 1.0 if get_task_spec(task).higher_is_better else -1.0
        terms.append(sign * (m - s) / s)
    if not terms:
        return None
    return 100.0 * sum(terms) / len(terms)
