# Copyright (c) diffmtl contributors. All rights reserved.
"""The built-in task kinds, one module each, and the paper's six tasks.

=============  ====================================================
kind           module
=============  ====================================================
segmentation   :mod:`diffmtl.tasks.segmentation` (semseg, human_parts)
saliency       :mod:`diffmtl.tasks.saliency` (sal)
normals        :mod:`diffmtl.tasks.normals` (normals)
boundary       :mod:`diffmtl.tasks.boundary` (edge)
depth          :mod:`diffmtl.tasks.depth` (depth)
=============  ====================================================

Saliency and boundary share :class:`~diffmtl.tasks.binary.BinaryMapKind`
(0/1 labels, probability predictions). The base classes and the registry are in :mod:`diffmtl.structures`
(``TaskKind``, ``TaskMetric``, ``register_task_kind``); outside these
modules no diffmtl code branches on a kind or a task name.
"""
from .binary import BinaryMapKind
from .boundary import BoundaryKind, BoundaryMetric
from .depth import DepthKind, DepthMetric
from .normals import NormalsKind, NormalsMetric
from .saliency import SaliencyKind, SaliencyMetric
from .segmentation import SegmentationKind, SegmentationMetric, per_class_keys
from .builtin import BUILTIN_TASKS  # noqa: E402  (after the kinds)
from .colour import apply_cmap, task_palette, voc_palette

__all__ = [
    'BinaryMapKind', 'SegmentationKind', 'SegmentationMetric', 'SaliencyKind',
    'SaliencyMetric', 'NormalsKind', 'NormalsMetric', 'BoundaryKind',
    'BoundaryMetric', 'DepthKind', 'DepthMetric', 'per_class_keys',
    'BUILTIN_TASKS', 'apply_cmap', 'task_palette', 'voc_palette'
]
