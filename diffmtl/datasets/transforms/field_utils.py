# Copyright (c) diffmtl contributors. All rights reserved.
"""Helpers that let the multi-task transforms treat every task's map alike.

A transform walks ``results['seg_fields']`` and asks :func:`field_spec` for
the :class:`~diffmtl.structures.TaskSpec` that owns each key; everything
task-specific (interpolation, pad value, whether the map is a depth or a
normal map) is then read from the spec, never from the task's name.
"""
from typing import Dict, Iterator, Mapping, Optional, Tuple

import numpy as np

from diffmtl.structures import TASK_SPECS, TaskSpec
# resize_map and CV2_INTERP live in diffmtl.structures.maps (shared with the
# models and the visualiser); re-exported here for the transforms.
from diffmtl.structures.maps import CV2_INTERP, cast_like, resize_map

__all__ = [
    'CV2_INTERP', 'field_spec', 'iter_seg_fields', 'resolve_interp',
    'check_interp', 'check_label_interp', 'resize_map', 'pad_map',
    'cast_like'
]


def field_spec(key: str, transform: str = 'transform') -> TaskSpec:
    """The spec whose ``results_key`` is ``key``.

    Args:
        key (str): A key of ``results['seg_fields']``.
        transform (str): Name of the calling transform, used in errors.

    Raises:
        KeyError: Naming the transform, the key and the known keys.
    """
    for spec in TASK_SPECS.values():
        if spec.results_key == key:
            return spec
    known = sorted(s.results_key for s in TASK_SPECS.values())
    raise KeyError(f'{transform}: results["seg_fields"] lists {key!r}, which '
                   f'is not the results_key of any registered task (known: '
                   f'{known}); register a TaskSpec for it')


def iter_seg_fields(
        results: dict,
        transform: str = 'transform') -> Iterator[Tuple[str, TaskSpec]]:
    """Yield ``(key, spec)`` for every key of ``results['seg_fields']``.

    Raises:
        KeyError: If a listed key is missing from ``results`` or belongs to
            no registered task.
    """
    for key in results.get('seg_fields', []):
        if key not in results:
            raise KeyError(f'{transform}: results["seg_fields"] lists {key!r} '
                           'but results has no such key')
        yield key, field_spec(key, transform)


def resolve_interp(spec: TaskSpec,
                   overrides: Optional[Mapping[str, str]] = None) -> str:
    """Interpolation for ``spec``'s map.

    ``overrides`` may name a task (``'normals'``) or a task kind
    (``'depth'``); a task name wins over a kind. Without a match the spec's
    own ``interp`` is used.
    """
    if overrides:
        if spec.name in overrides:
            return overrides[spec.name]
        if spec.kind in overrides:
            return overrides[spec.kind]
    return spec.interp


def check_interp(name: str, where: str) -> str:
    """Validate an interpolation name; returns it."""
    if name not in CV2_INTERP:
        raise ValueError(f'{where}: unknown interpolation {name!r}; expected '
                         f'one of {sorted(CV2_INTERP)}')
    return name


def check_label_interp(label_interp: Optional[Mapping[str, str]],
                       where: str) -> Dict[str, str]:
    """Copy a ``label_interp`` argument, validating every interpolation.

    Args:
        label_interp (dict, optional): ``{task name or kind: interp}``.
        where (str): Name of the calling transform, used in errors.

    Returns:
        dict: A new dict (empty for ``None``).
    """
    label_interp = dict(label_interp or {})
    for v in label_interp.values():
        check_interp(v, where)
    return label_interp


def pad_map(arr: np.ndarray, padding: Tuple[int, int, int, int],
            value) -> np.ndarray:
    """Constant-pad the two spatial dims of ``arr``.

    Args:
        arr (np.ndarray): (H, W) or (H, W, C) map.
        padding (tuple[int, int, int, int]): (left, right, top, bottom).
        value (float | sequence): Fill value; a sequence gives one value
            per channel.

    Returns:
        np.ndarray: (H + top + bottom, W + left + right[, C]).
    """
    left, right, top, bottom = (int(p) for p in padding)
    if not any((left, right, top, bottom)):
        return arr
    out_shape = (arr.shape[0] + top + bottom,
                 arr.shape[1] + left + right) + arr.shape[2:]
    out = np.empty(out_shape, dtype=arr.dtype)
    out[...] = np.asarray(value, dtype=arr.dtype)
    out[top:top + arr.shape[0], left:left + arr.shape[1]] = arr
    return out
