# Copyright (c) diffmtl contributors. All rights reserved.
"""Evaluation: ``MultiTaskMetric`` and its per-task statistics."""
from .functional import (DELTA_M_PRESETS, SAL_THRESHOLDS, binary_thin,
                         boundary_metrics, boundary_stats, delta_m,
                         depth_metrics, depth_stats, match_boundaries,
                         normals_metrics, normals_stats, resolve_reference,
                         sal_metrics, sal_stats, seg_metrics, seg_stats,
                         sum_stats)
from .metrics import MultiTaskMetric

__all__ = [
    'MultiTaskMetric', 'DELTA_M_PRESETS', 'SAL_THRESHOLDS', 'binary_thin',
    'boundary_metrics', 'boundary_stats', 'delta_m', 'depth_metrics',
    'depth_stats', 'match_boundaries', 'normals_metrics', 'normals_stats',
    'resolve_reference', 'sal_metrics', 'sal_stats', 'seg_metrics',
    'seg_stats', 'sum_stats'
]
