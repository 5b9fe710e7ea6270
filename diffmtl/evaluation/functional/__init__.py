# Copyright (c) diffmtl contributors. All rights reserved.
"""Pure numpy per-image statistics and metric maths (no registry)."""
from .boundary import (binary_thin, boundary_metrics, boundary_nms,
                       boundary_stats, default_edge_thresholds,
                       has_pyedgeeval, match_boundaries)
from .delta_m import (DELTA_M_PRESETS, delta_m, primary_metric_key,
                      resolve_reference)
from .dense_stats import (SAL_THRESHOLDS, depth_metrics, depth_stats,
                          normals_metrics, normals_stats, sal_metrics,
                          sal_stats, seg_metrics, seg_stats, sum_stats)

__all__ = [
    'binary_thin', 'boundary_metrics', 'boundary_nms', 'boundary_stats',
    'default_edge_thresholds', 'has_pyedgeeval', 'match_boundaries',
    'DELTA_M_PRESETS', 'delta_m', 'primary_metric_key', 'resolve_reference',
    'SAL_THRESHOLDS', 'depth_metrics', 'depth_stats', 'normals_metrics',
    'normals_stats', 'sal_metrics', 'sal_stats', 'seg_metrics', 'seg_stats',
    'sum_stats'
]
