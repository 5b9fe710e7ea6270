# Copyright (c) diffmtl contributors. All rights reserved.
"""Partial-label mappings: which tasks are labelled for which image.

A *label mapping* is a dict ``{image_id: tuple of bools}`` whose tuples are
in the order of the dataset's ``tasks``. It is read from a file with
:func:`load_label_mapping`, generated with :func:`generate_label_mapping`
and written with :func:`dump_label_mapping` (diffmtl JSON format).

Formats understood by :func:`load_label_mapping` (by file suffix):

* ``.json`` (diffmtl): ``{"tasks": [...], "labels": {"<id>": ["semseg",
  "edge"], ...}}`` with the labelled tasks of every image by name.
* ``.npy`` (MTPSL / DiffusionMTL PASCAL ``onelabel.npy``,
  ``randomlabels.npy``): a 0-d numpy object array holding
  ``{task: [image ids]}``. numpy can only read it through pickle, so it is
  decoded with a *restricted* unpickler that accepts nothing but the numpy
  array/scalar/dtype reconstructors (never ``np.load(allow_pickle=True)``);
  a file that needs anything else is rejected with a pointer to the
  converter.
* ``.pth`` (MTPSL NYUv2 / Cityscapes): ``{'labels_weights': Tensor[N, T]}``
  of 0/1 where row ``i`` is training sample ``i`` (image id ``str(i)``) and
  column ``j`` is task ``file_tasks[j]``. Loaded with
  ``torch.load(weights_only=True)``. The DiffusionMTL PASCAL
  ``new_*.pth`` files are full pickles (``{id: [5 ints]}`` holding numpy
  scalars); they are refused here and must be converted once with
  ``tools/dataset_converters/convert_label_mapping.py``.
"""
import json
import os.path as osp
import pickle
from collections import Counter
from typing import (Any, Dict, Iterable, Mapping, Optional, Sequence,
                    Tuple)

import numpy as np

__all__ = [
    'LabelMapping', 'load_label_mapping', 'parse_label_mapping',
    'generate_label_mapping', 'dump_label_mapping', 'label_mapping_stats',
    'check_mapping_matches_split', 'LABEL_SETTINGS', 'read_json_file'
]

#: ``{image_id: tuple of bools in task order}``.
LabelMapping = Dict[str, Tuple[bool, ...]]

#: Accepted values of a dataset's ``label_setting``.
LABEL_SETTINGS = ('full', 'one', 'random')

_CONVERTER = 'tools/dataset_converters/convert_label_mapping.py'

# Globals a numpy object array pickle legitimately needs. They only build
# arrays, dtypes and scalars from bytes held in the pickle stream itself.
_NUMPY_SAFE_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'),
    ('numpy._core.multiarray', 'scalar'),
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
    ('_codecs', 'encode'),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy array/scalar reconstructors."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f'refusing to load global {module}.{name}')


def read_json_file(path: str, what: str = 'JSON file') -> Any:
    """``json.load`` of ``path`` with errors that name the file.

    Raises:
        ValueError: For bytes that are not UTF-8 text (e.g. a binary or
            corrupt file with a ``.json`` name) or not valid JSON.
    """
    with open(path, 'rb') as f:
        raw = f.read()
    try:
        text = raw.decode('utf-8-sig')
    except UnicodeDecodeError as e:
        raise ValueError(
            f'{what} {path!r} is not UTF-8 text ({e}); is it a binary '
            '(.npy / .pth) file with a .json name, or corrupt?') from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f'{what} {path!r} is not valid JSON: {e}') from None


def _load_npy_object(path: str) -> Any:
    """Read a pickled (object dtype) ``.npy`` without arbitrary code."""
    with open(path, 'rb') as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        except (ValueError, EOFError, SyntaxError) as e:
            raise ValueError(f'label mapping {path!r} is not a readable .npy '
                             f'file ({e})') from None
        if dtype != np.dtype(object):
            # A plain numeric array (e.g. an (N, T) 0/1 matrix).
            f.seek(0)
            try:
                return np.load(f, allow_pickle=False)
            except (ValueError, EOFError) as e:
                raise ValueError(f'label mapping {path!r} is not a readable '
                                 f'.npy file ({e})') from None
        try:
            arr = _NumpyOnlyUnpickler(f).load()
        except pickle.UnpicklingError as e:
            raise ValueError(
                f'label mapping {path!r}: this .npy pickle needs more than '
                f'numpy arrays ({e}); convert it once with {_CONVERTER} '
                '(only for files you trust)') from None
        except (EOFError, ValueError, TypeError, IndexError) as e:
            raise ValueError(f'label mapping {path!r}: the .npy pickle is '
                             f'truncated or corrupt ({e})') from None
    if isinstance(arr, np.ndarray) and arr.shape == ():
        return arr.item()
    return arr


def _load_pth(path: str) -> Any:
    import torch
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # pickle.UnpicklingError and friends
        raise ValueError(
            f'label mapping {path!r} is a pickle that torch.load cannot read '
            f'with weights_only=True ({type(e).__name__}). diffmtl never '
            'unpickles third-party files at training time: convert it once '
            f'with `python {_CONVERTER} {path} --out <name>.json` (only for '
            'files you trust) and point label_mapping at the JSON.') from None


def _to_bool_rows(matrix: Any, path: str) -> np.ndarray:
    arr = np.asarray(
        matrix.detach().cpu().numpy() if hasattr(matrix, 'detach') else
        matrix)
    if arr.ndim != 2:
        raise ValueError(f'label mapping {path!r}: expected an (N, T) 0/1 '
                         f'matrix, got shape {arr.shape}')
    if not np.isin(arr, (0, 1)).all():
        raise ValueError(f'label mapping {path!r}: the matrix holds values '
                         f'other than 0/1: {np.unique(arr)[:10]}')
    return arr.astype(bool)


def _project(labels: Mapping[str, Sequence[bool]], file_tasks: Sequence[str],
             tasks: Sequence[str], path: str) -> LabelMapping:
    """Re-order per-image flags from ``file_tasks`` order to ``tasks``."""
    missing = [t for t in tasks if t not in file_tasks]
    if missing:
        raise ValueError(f'label mapping {path!r} has tasks {list(file_tasks)}'
                         f' but the dataset asks for {missing} as well')
    cols = [list(file_tasks).index(t) for t in tasks]
    out = {}
    for img_id, flags in labels.items():
        flags = list(flags)
        if len(flags) != len(file_tasks):
            raise ValueError(
                f'label mapping {path!r}: image {img_id!r} has {len(flags)} '
                f'flags but the file tasks are {list(file_tasks)}')
        out[str(img_id)] = tuple(bool(flags[c]) for c in cols)
    return out


def parse_label_mapping(obj: Any,
                        tasks: Sequence[str],
                        file_tasks: Optional[Sequence[str]] = None,
                        source: str = '<object>') -> LabelMapping:
    """Turn an already loaded mapping object into a :data:`LabelMapping`.

    Args:
        obj: One of ``{'tasks': [...], 'labels': {id: [names]}}`` (diffmtl
            JSON), ``{task: [ids]}`` (PASCAL ``.npy``),
            ``{'labels_weights': (N, T) tensor/array}`` (MTPSL ``.pth``, id
            ``str(row)``), ``{id: [T ints]}`` (DiffusionMTL ``new_*.pth``) or
            an (N, T) 0/1 array (ids ``str(row)``).
        tasks (Sequence[str]): Task order of the result.
        file_tasks (Sequence[str], optional): Column order of the formats
            that store unnamed flags (matrices and ``{id: [ints]}``).
            Defaults to ``tasks``.
        source (str): Name used in error messages.

    Returns:
        dict: ``{image_id (str): tuple of bools in tasks order}``.
    """
    tasks = list(tasks)
    file_tasks = list(file_tasks) if file_tasks is not None else tasks
    if isinstance(obj, Mapping) and 'labels' in obj and 'tasks' in obj:
        ftasks = list(obj['tasks'])
        labels = {}
        for img_id, names in obj['labels'].items():
            unknown = [n for n in names if n not in ftasks]
            if unknown:
                raise ValueError(f'label mapping {source!r}: image {img_id!r} '
                                 f'lists tasks {unknown} not in the file '
                                 f'tasks {ftasks}')
            labels[img_id] = [t in names for t in ftasks]
        return _project(labels, ftasks, tasks, source)
    if isinstance(obj, Mapping) and 'labels_weights' in obj:
        rows = _to_bool_rows(obj['labels_weights'], source)
        if rows.shape[1] != len(file_tasks):
            raise ValueError(
                f'label mapping {source!r} has {rows.shape[1]} columns but '
                f'{len(file_tasks)} tasks {file_tasks} were given as its '
                'column order (pass file_tasks=...)')
        return _project({str(i): r
                         for i, r in enumerate(rows)}, file_tasks, tasks,
                        source)
    if isinstance(obj, np.ndarray) or hasattr(obj, 'detach'):
        return parse_label_mapping({'labels_weights': obj}, tasks, file_tasks,
                                   source)
    if isinstance(obj, Mapping) and obj:
        values = list(obj.values())
        if all(isinstance(k, str) for k in obj) and set(obj) <= set(
                list(tasks) + list(file_tasks)) and all(
                    isinstance(v, (list, tuple, np.ndarray)) and (
                        len(v) == 0 or isinstance(v[0], str))
                    for v in values):
            # {task: [ids]}: the PASCAL .npy layout.
            ftasks = list(obj)
            ids = sorted({str(i) for v in values for i in v})
            members = {t: {str(i) for i in obj[t]} for t in ftasks}
            labels = {i: [i in members[t] for t in ftasks] for i in ids}
            return _project(labels, ftasks, tasks, source)
        # {id: [ints]}: the DiffusionMTL new_*.pth layout.
        labels = {}
        for img_id, flags in obj.items():
            flags = [int(f) for f in flags]
            if any(f not in (0, 1) for f in flags):
                raise ValueError(f'label mapping {source!r}: image {img_id!r} '
                                 f'has flags {flags}, expected 0/1')
            labels[str(img_id)] = flags
        return _project(labels, file_tasks, tasks, source)
    raise ValueError(f'label mapping {source!r}: unrecognised content of '
                     f'type {type(obj).__name__}')


def load_label_mapping(path: str,
                       tasks: Sequence[str],
                       file_tasks: Optional[Sequence[str]] = None
                       ) -> LabelMapping:
    """Read a partial-label mapping file in any supported format.

    Args:
        path (str): ``.json`` (diffmtl), ``.npy`` (PASCAL ``{task: [ids]}``)
            or ``.pth`` (MTPSL ``{'labels_weights': Tensor[N, T]}``) file.
        tasks (Sequence[str]): Task order of the returned flags; every task
            must be present in the file.
        file_tasks (Sequence[str], optional): Column order of formats that
            do not name their tasks (``.pth`` matrices). Defaults to
            ``tasks`` (NYUD ``semseg, depth, normals``; Cityscapes
            ``semseg, depth``).

    Returns:
        dict: ``{image_id: tuple of bools in tasks order}``; for matrix
        formats the image id is the row index as ``str``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: For unknown suffixes, undecodable or corrupt files,
            unsafe pickles (pointing at the converter) or content that does
            not match ``tasks``, naming the file.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'label mapping file not found: {path!r}')
    suffix = osp.splitext(path)[1].lower()
    if suffix == '.json':
        obj = read_json_file(path, 'label mapping')
        if not (isinstance(obj, dict) and 'tasks' in obj and 'labels' in obj):
            raise ValueError(f'label mapping {path!r}: a diffmtl JSON mapping '
                             'needs the keys "tasks" and "labels"')
    elif suffix == '.npy':
        obj = _load_npy_object(path)
    elif suffix in ('.pth', '.pt'):
        obj = _load_pth(path)
    else:
        raise ValueError(f'label mapping {path!r}: unknown suffix {suffix!r} '
                         '(expected .json, .npy or .pth)')
    return parse_label_mapping(obj, tasks, file_tasks, source=path)


def dump_label_mapping(mapping: Mapping[str, Sequence[bool]],
                       tasks: Sequence[str], path: str) -> None:
    """Write ``mapping`` as diffmtl JSON (labelled task names per image)."""
    labels = {
        str(k): [t for t, f in zip(tasks, flags) if f]
        for k, flags in mapping.items()
    }
    with open(path, 'w') as f:
        json.dump({'tasks': list(tasks), 'labels': labels}, f, indent=0)
        f.write('\n')


def generate_label_mapping(ids: Iterable[str],
                           tasks: Sequence[str],
                           setting: str,
                           seed: int = 0) -> LabelMapping:
    """Draw a reproducible partial-label mapping.

    Rules (ids are sorted first, so the result does not depend on the order
    they are given in):

    * ``'full'``: every task for every image.
    * ``'one'``: every image gets exactly one task. The ids are shuffled and
      task ``i % T`` goes to the ``i``-th shuffled id, so per-task counts
      differ by at most one.
    * ``'random'``: every image gets a non-empty random subset, never all
      tasks when ``T > 1``: its size ``k`` is uniform in ``1..T-1`` and the
      subset uniform among those of size ``k``. With ``T == 1`` every image
      is labelled.

    Args:
        ids (Iterable[str]): Image ids.
        tasks (Sequence[str]): Task order of the flags.
        setting (str): ``'full'``, ``'one'`` or ``'random'``.
        seed (int): Seed of the ``numpy.random.Generator``.

    Returns:
        dict: ``{image_id: tuple of bools in tasks order}``.
    """
    if setting not in LABEL_SETTINGS:
        raise ValueError(f'unknown label setting {setting!r}; expected one '
                         f'of {LABEL_SETTINGS}')
    ids = sorted(str(i) for i in ids)
    num_tasks = len(tasks)
    if num_tasks == 0:
        raise ValueError('generate_label_mapping needs at least one task')
    if setting == 'full' or num_tasks == 1:
        return {i: (True, ) * num_tasks for i in ids}
    rng = np.random.default_rng(seed)
    out = {}
    if setting == 'one':
        order = rng.permutation(len(ids))
        for rank, idx in enumerate(order):
            flags = [False] * num_tasks
            flags[rank % num_tasks] = True
            out[ids[idx]] = tuple(flags)
        return {i: out[i] for i in ids}
    for i in ids:
        k = int(rng.integers(1, num_tasks))  # 1..T-1
        chosen = rng.choice(num_tasks, size=k, replace=False)
        out[i] = tuple(bool(t in chosen) for t in range(num_tasks))
    return out


def label_mapping_stats(mapping: Mapping[str, Sequence[bool]],
                        tasks: Sequence[str]) -> dict:
    """Per-task labelled counts and the labels-per-image histogram.

    Returns:
        dict: ``num_images``, ``per_task`` (``{task: count}``) and
        ``labels_per_image`` (``{k: number of images with k labels}``, for
        ``k`` in ``0..T``).
    """
    per_task = {t: 0 for t in tasks}
    hist = Counter()
    for flags in mapping.values():
        for t, f in zip(tasks, flags):
            per_task[t] += int(bool(f))
        hist[int(sum(bool(f) for f in flags))] += 1
    return dict(
        num_images=len(mapping),
        per_task=per_task,
        labels_per_image={k: hist.get(k, 0)
                          for k in range(len(tasks) + 1)})


def check_mapping_matches_split(mapping: Mapping[str, Any],
                                split_ids: Sequence[str],
                                source: str = 'label mapping',
                                max_show: int = 5) -> None:
    """Raise if ``mapping`` and ``split_ids`` do not hold the same ids.

    Raises:
        ValueError: Naming up to ``max_show`` offending ids of each side and
            the counts.
    """
    split = set(split_ids)
    keys = set(mapping)
    extra = sorted(keys - split)
    missing = sorted(split - keys)
    if not extra and not missing:
        return
    msg = [f'{source} does not match the split ({len(keys)} mapping ids, '
           f'{len(split)} split ids):']
    if extra:
        msg.append(f'{len(extra)} mapping ids are not in the split, e.g. '
                   f'{extra[:max_show]}')
    if missing:
        msg.append(f'{len(missing)} split images are missing from the '
                   f'mapping, e.g. {missing[:max_show]}')
    raise ValueError(' '.join(msg))
