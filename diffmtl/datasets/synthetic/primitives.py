# Copyright (c) diffmtl contributors. All rights reserved.
"""Vectorised ray/primitive intersections for the synthetic scenes.

Every function takes one ray origin ``origin`` (3,) and a block of unit ray
directions ``dirs`` (..., 3) in world coordinates (X right, Y up, Z into
the room) and returns ``(t, normal)``: the distance along the ray of the
nearest hit in front of the origin, (...) with ``inf`` where the ray misses,
and the unit outward surface normal (..., 3) at that hit (undefined where
``t`` is ``inf``).
"""
from typing import Tuple

import numpy as np

__all__ = [
    'intersect_plane', 'intersect_sphere', 'intersect_box',
    'intersect_cylinder', 'intersect_capsule'
]

_EPS = 1e-6


def _normalize(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norm, 1e-12)


def intersect_plane(origin: np.ndarray, dirs: np.ndarray, point: np.ndarray,
                    normal: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Infinite plane through ``point`` with unit ``normal`` (3,)."""
    denom = dirs @ normal
    with np.errstate(divide='ignore', invalid='ignore'):
        t = ((point - origin) @ normal) / denom
    t = np.where((np.abs(denom) > _EPS) & (t > _EPS), t, np.inf)
    n = np.broadcast_to(normal, dirs.shape)
    return t, n


def intersect_sphere(origin: np.ndarray, dirs: np.ndarray,
                     center: np.ndarray,
                     radius: float) -> Tuple[np.ndarray, np.ndarray]:
    """Sphere of ``radius`` around ``center`` (3,)."""
    oc = origin - center
    b = dirs @ oc
    c = oc @ oc - radius * radius
    disc = b * b - c
    sq = np.sqrt(np.maximum(disc, 0.0))
    t0 = -b - sq
    t1 = -b + sq
    t = np.where(t0 > _EPS, t0, np.where(t1 > _EPS, t1, np.inf))
    t = np.where(disc >= 0, t, np.inf)
    hit = origin + np.where(np.isfinite(t), t, 0.0)[..., None] * dirs
    return t, _normalize(hit - center)


def intersect_box(origin: np.ndarray, dirs: np.ndarray, center: np.ndarray,
                  half_size: np.ndarray,
                  yaw: float) -> Tuple[np.ndarray, np.ndarray]:
    """Box with ``half_size`` (3,) rotated by ``yaw`` (rad) about +Y.

    The box's local axes are ``R @ e_x``, ``e_y`` and ``R @ e_z`` where ``R``
    rotates by ``yaw`` about the world Y axis.
    """
    c, s = np.cos(yaw), np.sin(yaw)
    # Columns: local x, y, z axes expressed in world coordinates.
    axes = np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])
    o_loc = (origin - center) @ axes
    d_loc = dirs @ axes
    with np.errstate(divide='ignore', invalid='ignore'):
        inv = 1.0 / np.where(np.abs(d_loc) > 1e-12, d_loc, 1e-12)
    t_a = (-half_size - o_loc) * inv
    t_b = (half_size - o_loc) * inv
    t_min = np.minimum(t_a, t_b)
    t_max = np.maximum(t_a, t_b)
    t_near = t_min.max(axis=-1)
    t_far = t_max.min(axis=-1)
    hit = (t_near <= t_far) & (t_far > _EPS)
    t = np.where(hit & (t_near > _EPS), t_near, np.where(hit, t_far, np.inf))
    # The face entered through: the axis attaining t_near.
    axis = t_min.argmax(axis=-1)
    sign = -np.sign(np.take_along_axis(d_loc, axis[..., None], -1))[..., 0]
    n_loc = np.zeros(dirs.shape)
    np.put_along_axis(n_loc, axis[..., None], sign[..., None], -1)
    return t, n_loc @ axes.T


def intersect_cylinder(origin: np.ndarray, dirs: np.ndarray, base: np.ndarray,
                       axis: np.ndarray, length: float, radius: float,
                       caps: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """Finite cylinder from ``base`` along unit ``axis`` for ``length``.

    Args:
        caps (bool): Close both ends with flat discs.
    """
    oc = origin - base
    d_ax = dirs @ axis
    oc_ax = oc @ axis
    d_perp = dirs - d_ax[..., None] * axis
    oc_perp = oc - oc_ax * axis
    a = np.einsum('...i,...i->...', d_perp, d_perp)
    b = d_perp @ oc_perp
    c = oc_perp @ oc_perp - radius * radius
    disc = b * b - a * c
    sq = np.sqrt(np.maximum(disc, 0.0))
    with np.errstate(divide='ignore', invalid='ignore'):
        t_side = np.where(a > 1e-12, (-b - sq) / a, np.inf)
    h = oc_ax + t_side * d_ax
    t_side = np.where((disc >= 0) & (t_side > _EPS) & (h >= 0) & (h <= length),
                      t_side, np.inf)
    hit_side = origin + np.where(np.isfinite(t_side), t_side,
                                 0.0)[..., None] * dirs
    rel = hit_side - base
    n_side = _normalize(rel - (rel @ axis)[..., None] * axis)
    t, n = t_side, n_side
    if caps:
        for offset, cap_normal in ((0.0, -axis), (length, axis)):
            centre = base + offset * axis
            with np.errstate(divide='ignore', invalid='ignore'):
                t_cap = ((centre - origin) @ axis) / d_ax
            p = origin + np.where(np.isfinite(t_cap), t_cap,
                                  0.0)[..., None] * dirs - centre
            inside = np.einsum('...i,...i->...', p, p) <= radius * radius
            t_cap = np.where((np.abs(d_ax) > _EPS) & (t_cap > _EPS) & inside,
                             t_cap, np.inf)
            closer = t_cap < t
            t = np.where(closer, t_cap, t)
            n = np.where(closer[..., None], cap_normal, n)
    return t, n


def intersect_capsule(origin: np.ndarray, dirs: np.ndarray, p0: np.ndarray,
                      p1: np.ndarray,
                      radius: float) -> Tuple[np.ndarray, np.ndarray]:
    """Capsule: the segment ``p0``-``p1`` swept by a sphere of ``radius``."""
    seg = p1 - p0
    length = float(np.linalg.norm(seg))
    axis = seg / max(length, 1e-12)
    t, n = intersect_cylinder(origin, dirs, p0, axis, length, radius,
                              caps=False)
    for centre in (p0, p1):
        t_s, n_s = intersect_sphere(origin, dirs, centre, radius)
        closer = t_s < t
        t = np.where(closer, t_s, t)
        n = np.where(closer[..., None], n_s, n)
    return t, n
