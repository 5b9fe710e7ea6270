# Copyright (c) diffmtl contributors. All rights reserved.
"""Colour helpers shared by the task kinds' ``colorize`` methods."""
from typing import List, Optional

import numpy as np

from diffmtl.structures import get_task_spec, task_class_names
from diffmtl.structures.task_kind import apply_cmap  # noqa: F401  (re-export)

__all__ = ['voc_palette', 'apply_cmap', 'task_palette']


def voc_palette(num_classes: int) -> List[List[int]]:
    """The PASCAL VOC bit-interleaved palette for ``num_classes`` classes.

    Class 0 is black; used when the dataset meta has no palette for a task.
    """
    palette = []
    for label in range(num_classes):
        r = g = b = 0
        c = label
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette.append([r, g, b])
    return palette


def task_palette(task: str,
                 meta: Optional[dict],
                 num_classes: Optional[int] = None) -> List[List[int]]:
    """Palette of a segmentation-kind task.

    Uses ``meta['task_palettes'][task]``, then mmseg's ``meta['palette']``
    for the task with ``mmseg_classes``; otherwise (or when it is shorter
    than ``num_classes``) the VOC palette.
    """
    meta = meta or {}
    palette = (meta.get('task_palettes') or {}).get(task)
    if palette is None and get_task_spec(task).mmseg_classes:
        palette = meta.get('palette') or None
    if num_classes is None:
        classes = task_class_names(task, meta)
        num_classes = len(classes) if classes else 256
    if palette is None or len(palette) < num_classes:
        base = [list(map(int, c)) for c in (palette or [])]
        return base + voc_palette(num_classes)[len(base):]
    return [list(map(int, c)) for c in palette]
