# Copyright (c) diffmtl contributors. All rights reserved.
"""Pack a multi-task pipeline result into model inputs."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from diffmtl.registry import TRANSFORMS
from diffmtl.structures import TaskSpec, get_task_spec
from .field_utils import field_spec

__all__ = ['PackMultiTaskInputs']


@TRANSFORMS.register_module()
class PackMultiTaskInputs(BaseTransform):
    """Pack the image and every task's map into one ``SegDataSample``.

    The image becomes a (C, H, W) tensor (its dtype kept; the data
    preprocessor casts it). Each task's map ``results[spec.results_key]``
    becomes ``PixelData`` at ``spec.gt_field``: ``int64`` [1, H, W] for
    discrete tasks, ``float32`` [gt_channels, H, W] otherwise ((H, W, 3)
    normals are moved channel-first, (H, W) maps get a leading axis).

    The tasks packed are ``results['tasks']`` when present, otherwise the
    tasks owning the keys of ``results['seg_fields']``. A task that is not
    labelled (``task_mask`` False) and has no map gets one at the image size
    from its kind's :meth:`~diffmtl.structures.TaskKind.fill_map` (the
    spec's ``pad_value``), so every sample of a dataset
    carries the same fields; a *labelled* task without a map is an error.
    Every map must have the image's size, or, when ``padding_size`` is
    recorded, the size of the image without that padding (test pipelines
    that pad only the image, ``MultiTaskPad(pad_gt=False)``).

    Required Keys:

    - img
    - tasks and task_mask, or seg_fields
    - the maps of the labelled tasks

    Added Keys:

    - inputs (Tensor)
    - data_samples (SegDataSample) with metainfo from ``meta_keys`` (the
      keys missing from ``results`` are skipped); ``tasks`` and
      ``task_mask`` are stored as tuples (of str and bool).

    Args:
        meta_keys (sequence[str]): Keys copied into the metainfo.
    """

    DEFAULT_META_KEYS = ('img_path', 'img_id', 'ori_shape', 'img_shape',
                         'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                         'tasks', 'task_mask', 'padding_size')

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    @staticmethod
    def _to_pixel_data(arr: np.ndarray, spec: TaskSpec) -> PixelData:
        """(H, W) or (H, W, C) map -> PixelData of (gt_channels, H, W)."""
        arr = np.asarray(arr)
        if arr.ndim == 2:
            arr = arr[None]
        elif arr.ndim == 3:
            arr = arr.transpose(2, 0, 1)
        else:
            raise ValueError(f'PackMultiTaskInputs: map of task '
                             f'{spec.name!r} ({spec.results_key}) must be '
                             f'(H, W) or (H, W, C), got shape {arr.shape}')
        if arr.shape[0] != spec.gt_channels:
            raise ValueError(f'PackMultiTaskInputs: map of task '
                             f'{spec.name!r} ({spec.results_key}) has '
                             f'{arr.shape[0]} channels, its TaskSpec says '
                             f'gt_channels={spec.gt_channels}')
        dtype = np.int64 if spec.discrete else np.float32
        data = torch.from_numpy(np.ascontiguousarray(arr, dtype=dtype))
        return PixelData(data=data)

    @staticmethod
    def _tasks(results: dict):
        """(task names, task mask) of ``results``."""
        if 'tasks' in results:
            tasks = tuple(results['tasks'])
        else:
            tasks = tuple(
                field_spec(k, 'PackMultiTaskInputs').name
                for k in results.get('seg_fields', []))
        mask = results.get('task_mask')
        if mask is None:
            mask = (True, ) * len(tasks)
        mask = tuple(bool(m) for m in mask)
        if len(mask) != len(tasks):
            raise ValueError(f'PackMultiTaskInputs: task_mask {mask} does '
                             f'not match tasks {tasks}')
        return tasks, mask

    def transform(self, results: dict) -> dict:
        packed = dict()
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        packed['inputs'] = torch.from_numpy(
            np.ascontiguousarray(img.transpose(2, 0, 1)))

        tasks, mask = self._tasks(results)
        h, w = img.shape[:2]
        left, right, top, bottom = results.get('padding_size') or (0, ) * 4
        allowed = {(h, w), (h - top - bottom, w - left - right)}
        present = [
            results[get_task_spec(t).results_key] for t in tasks
            if results.get(get_task_spec(t).results_key) is not None
        ]
        gt_hw = tuple(present[0].shape[:2]) if present else (h, w)
        sample = SegDataSample()
        for task, labelled in zip(tasks, mask):
            spec = get_task_spec(task)
            arr = results.get(spec.results_key)
            if arr is None:
                if labelled:
                    raise KeyError(
                        f'PackMultiTaskInputs: task {task!r} is labelled '
                        f'for {results.get("img_path", "this sample")} but '
                        f'results has no {spec.results_key!r}')
                arr = spec.task_kind.fill_map(spec, gt_hw)
            if tuple(arr.shape[:2]) not in allowed or tuple(
                    arr.shape[:2]) != gt_hw:
                raise ValueError(
                    f'PackMultiTaskInputs: {spec.results_key!r} of task '
                    f'{task!r} is {arr.shape[:2]} but the image is '
                    f'{(h, w)} with padding_size '
                    f'{results.get("padding_size")} and the first map is '
                    f'{gt_hw} ({results.get("img_path", "")})')
            sample.set_field(self._to_pixel_data(arr, spec), spec.gt_field)

        meta = {}
        for key in self.meta_keys:
            if key == 'tasks':
                meta[key] = tasks
            elif key == 'task_mask':
                meta[key] = mask
            elif key in results:
                meta[key] = results[key]
        sample.set_metainfo(meta)
        packed['data_samples'] = sample
        return packed

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
