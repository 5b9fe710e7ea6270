# Copyright (c) diffmtl contributors. All rights reserved.
"""Ignore rules that depend on the content of an (augmented) map."""
from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from diffmtl.registry import TRANSFORMS
from diffmtl.structures import get_task_spec

__all__ = ['MultiTaskIgnoreEmptyMaps']


@TRANSFORMS.register_module()
class MultiTaskIgnoreEmptyMaps(BaseTransform):
    """Ignore a whole map that holds nothing but background.

    The reference (ATRC ``AddIgnoreRegions``, run after cropping) sets the
    human-parts map of a training crop to the ignore index when every pixel
    is background (0) or already ignored: a crop without any visible person
    part would otherwise teach "everything is background". The loader
    applies the same rule per image; place this transform after the crop to
    apply it per crop, as the reference.

    Only maps of discrete tasks can be treated. ``task_mask`` is left as
    it is (as in the reference, the task still counts as labelled for the
    per-image loss rescale; its loss is 0 with no valid pixel).

    Required Keys:

    - the ``results_key`` of each task in ``tasks`` that is present

    Modified Keys:

    - those maps

    Args:
        tasks (sequence[str]): Tasks to check. Defaults to
            ``('human_parts', )``.
        background_index (int): Label that alone does not count as content.
            Defaults to 0.
    """

    def __init__(self,
                 tasks: Sequence[str] = ('human_parts', ),
                 background_index: int = 0) -> None:
        self.tasks = tuple(tasks)
        for task in self.tasks:
            spec = get_task_spec(task)
            if not spec.discrete or spec.ignore_index is None:
                raise ValueError(
                    f'{type(self).__name__}: task {task!r} has no discrete '
                    'labels with an ignore_index')
        self.background_index = background_index

    def transform(self, results: dict) -> dict:
        for task in self.tasks:
            spec = get_task_spec(task)
            arr = results.get(spec.results_key)
            if arr is None:
                continue
            content = (arr != self.background_index) & (arr
                                                        != spec.ignore_index)
            if not content.any():
                results[spec.results_key] = np.full_like(
                    arr, spec.ignore_index)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(tasks={self.tasks}, '
                f'background_index={self.background_index})')
