# Copyright (c) diffmtl contributors. All rights reserved.
"""Checks a multi-task dataset runs on its files before training on them.

* :func:`check_label_encodings` decodes a few labelled files of every task
  when the data list is first read and hands them to the task kind's
  :meth:`~diffmtl.structures.TaskKind.check_encoding`: 0/255 binary maps,
  negative depth or non-unit normals are caught at dataset construction,
  not after a run trained on them.
* :func:`check_all_files` decodes every listed image and labelled
  annotation with the dataset's own loading transforms (the dataset option
  ``check_data=True``, ``tools/train.py --check-data``), so a damaged file
  late in the list stops the run before iteration 1 rather than at
  iteration 22, and all damaged files are named at once.
"""
import copy
import io
import logging
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log

from diffmtl.structures import get_task_spec
from .transforms.loading import (LoadMultiTaskAnnotations,
                                 LoadMultiTaskImageFromFile, apply_label_map,
                                 decode_annotation, error_text)

__all__ = [
    'sample_evenly', 'check_label_encodings', 'pipeline_loaders',
    'check_all_files'
]


def sample_evenly(items: Sequence, num: int) -> List:
    """Up to ``num`` items spread evenly over ``items`` (first and last
    included), in order; deterministic."""
    if num <= 0 or not items:
        return []
    if len(items) <= num:
        return list(items)
    idx = np.unique(np.linspace(0, len(items) - 1, num).round().astype(int))
    return [items[i] for i in idx]


def check_label_encodings(data_list: Sequence[dict],
                          tasks: Sequence[str],
                          num_samples: int,
                          source: str,
                          backend_args: Optional[dict] = None) -> None:
    """Decode ``num_samples`` labelled files per task and check them.

    Each task's files are decoded with the sample's ``ann_format`` decoder
    (and mmseg's ``label_map`` for the task that has one) and passed to
    the task kind's ``check_encoding``; its warnings are logged.

    Args:
        data_list (list[dict]): Data-list entries (``ann_paths``,
            ``ann_format`` and decode options).
        tasks (list[str]): The dataset's tasks.
        num_samples (int): Files per task; 0 checks nothing.
        source (str): Prefix of the logged warnings (the dataset).
        backend_args (dict, optional): mmengine file backend arguments.

    Raises:
        ValueError: From the kinds (see ``TaskKind.check_encoding``) or
            the decoders, naming the files.
    """
    if num_samples <= 0:
        return
    for task in tasks:
        labelled = [
            info for info in data_list
            if (info.get('ann_paths') or {}).get(task) is not None
        ]
        chosen = sample_evenly(labelled, num_samples)
        if not chosen:
            continue
        spec = get_task_spec(task)
        maps, paths = [], []
        for info in chosen:
            path = info['ann_paths'][task]
            results = copy.copy(info)
            arr = decode_annotation(info['ann_format'][task], path, results,
                                    backend_args)
            maps.append(apply_label_map(spec, arr, info))
            paths.append(path)
        for message in spec.task_kind.check_encoding(spec, maps, paths):
            print_log(
                f'{source}: {message}',
                logger='current',
                level=logging.WARNING)


def pipeline_loaders(
        pipeline) -> Tuple[LoadMultiTaskImageFromFile,
                           LoadMultiTaskAnnotations]:
    """The loading transforms of a dataset's pipeline (their options:
    backend, ``npy_scale``, ``resize_mismatched`` ...), or default ones
    where the pipeline has none."""
    image_loader, ann_loader = None, None
    for transform in getattr(pipeline, 'transforms', None) or []:
        if image_loader is None and isinstance(transform,
                                               LoadMultiTaskImageFromFile):
            image_loader = transform
        if ann_loader is None and isinstance(transform,
                                             LoadMultiTaskAnnotations):
            ann_loader = transform
    return (image_loader or LoadMultiTaskImageFromFile(), ann_loader
            or LoadMultiTaskAnnotations())


def _strict_image_check(path: str, backend_args: Optional[dict]) -> None:
    """Decode an image file with PIL, which refuses truncated files that
    OpenCV decodes silently (a grey bottom part)."""
    import mmengine.fileio as fileio
    from PIL import Image
    data = fileio.get(path, backend_args=backend_args)
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except Exception as err:  # noqa: BLE001  (reported with the path)
        raise ValueError(f'image file {path!r} is damaged ({len(data)} '
                         f'bytes): {error_text(err)}') from None


def check_all_files(num_samples: int,
                    get_info: Callable[[int], dict],
                    pipeline,
                    source: str,
                    max_shown: int = 10) -> None:
    """Load every sample's image and labelled annotations once.

    Uses the dataset pipeline's own loading transforms (so the same
    decoders, size and label checks run as in training), plus a strict
    decode of PNG / JPEG images that refuses truncated files.

    Args:
        num_samples (int): Number of samples.
        get_info (callable): ``index -> data-list entry``.
        pipeline: The dataset's pipeline (``Compose``).
        source (str): The dataset, for the messages.
        max_shown (int): Failures quoted in the error.

    Raises:
        ValueError: Naming the number of failing samples and, for the
            first ``max_shown``, the file and the reason.
    """
    image_loader, ann_loader = pipeline_loaders(pipeline)
    print_log(
        f'{source}: checking that the files of all {num_samples} samples '
        'decode (check_data=True)', logger='current')
    failures: List[Tuple[str, str]] = []
    for i in range(num_samples):
        info = get_info(i)
        results = copy.deepcopy(info)
        try:
            if not str(info['img_path']).lower().endswith('.npy') and \
                    results.get('img_format', 'file') == 'file':
                _strict_image_check(info['img_path'],
                                    image_loader.backend_args)
            results = image_loader.transform(results)
            ann_loader.transform(results)
        except Exception as err:  # noqa: BLE001  (all collected)
            failures.append((str(info.get('img_id', i)), error_text(err)))
    if failures:
        shown = '\n'.join(f'  {img_id}: {msg}'
                          for img_id, msg in failures[:max_shown])
        more = ('' if len(failures) <= max_shown else
                f'\n  ... and {len(failures) - max_shown} more')
        raise ValueError(
            f'{source}: {len(failures)} of {num_samples} samples cannot be '
            f'loaded (check_data=True):\n{shown}{more}')
    print_log(f'{source}: all {num_samples} samples load', logger='current')
