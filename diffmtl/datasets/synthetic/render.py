# Copyright (c) diffmtl contributors. All rights reserved.
"""Ray-cast a :class:`Scene` into an image and exact labels for six tasks.

Every label comes from the same per-pixel ray hit (one ray through each
pixel centre), so the tasks agree with each other exactly:

* ``semseg``: class of the hit surface (``SEMSEG_CLASSES``); the window
  counts as ``wall``.
* ``human_parts``: part of the hit figure (``HUMAN_PART_CLASSES``), 0 on
  every other surface; all 255 (ignored) when no figure pixel is visible.
* ``sal``: 1 on every figure pixel and on the non-figure object with the
  largest visible area (ties: lowest instance id), 0 elsewhere. Floor and
  walls are never salient.
* ``normals``: unit surface normal in the camera frame (x right, y down,
  z forward), facing the camera (z < 0).
* ``edge``: 1-px instance boundaries. For every pair of 4-neighbours with
  different instance ids (floor, each wall, the window, each object and
  each figure are instances) the pixel nearer to the camera is marked.
* ``depth``: z-depth in metres in the camera frame; 0 (invalid) where the
  ray passes through the window glass.
"""
from typing import Dict

import numpy as np

from .primitives import (intersect_box, intersect_capsule, intersect_cylinder,
                         intersect_plane, intersect_sphere)
from .scene import SEMSEG_CLASSES, Material, Scene

__all__ = ['render_scene', 'procedural_albedo']

_INTERSECT = dict(
    plane=intersect_plane,
    sphere=intersect_sphere,
    box=intersect_box,
    cylinder=intersect_cylinder,
    capsule=intersect_capsule)
_FIGURE = SEMSEG_CLASSES.index('figure')
_WALL = SEMSEG_CLASSES.index('wall')
#: Instance id given to window pixels in the instance map.
WINDOW_INSTANCE = 5


def _value_noise(p: np.ndarray, seed: int) -> np.ndarray:
    """Trilinear value noise of points ``p`` (N, 3), in [0, 1).

    Lattice values come from an integer hash of the 8 surrounding corners,
    blended with smoothstep weights (computed separably per axis).
    """
    base = np.floor(p)
    f = p - base
    f = f * f * (3 - 2 * f)
    i = base.astype(np.int64)
    # Per axis: hash terms and weights of the lower / upper corner (N, 2).
    hx, hy, hz = (np.stack([i[:, a], i[:, a] + 1], axis=1) * prime
                  for a, prime in enumerate((73856093, 19349663, 83492791)))
    wx, wy, wz = (np.stack([1 - f[:, a], f[:, a]], axis=1) for a in range(3))
    h = (hx[:, :, None, None] ^ hy[:, None, :, None] ^ hz[:, None, None, :]
         ^ seed)
    h = (h ^ (h >> 13)) * 1274126177
    h = h ^ (h >> 16)
    values = (h & 0xFFFF).astype(np.float64) * (1.0 / 65536.0)
    w = wx[:, :, None, None] * wy[:, None, :, None] * wz[:, None, None, :]
    return (values * w).reshape(len(p), 8).sum(axis=1)


def procedural_albedo(material: Material, points: np.ndarray) -> np.ndarray:
    """Albedo (N, 3) of ``material`` at world ``points`` (N, 3)."""
    a, b = material.color_a, material.color_b
    q = points / material.scale
    if material.texture == 'plain':
        w = np.zeros(len(points))
    elif material.texture == 'checker':
        w = (np.floor(q).astype(np.int64).sum(axis=1) % 2).astype(float)
    elif material.texture == 'stripes':
        w = (np.sin(2 * np.pi * (q @ material.direction)) > 0).astype(float)
    elif material.texture == 'noise':
        w = 0.65 * _value_noise(q, material.seed) + 0.35 * _value_noise(
            2.7 * q, material.seed + 1)
    else:
        raise ValueError(f'unknown texture {material.texture!r}')
    return a * (1 - w[:, None]) + b * w[:, None]


def _screen_window(scene: Scene, bound, cam_axes, intr, height, width):
    """Pixel rows/cols that a bounding sphere can cover, or None if empty."""
    centre, radius = bound
    corners = centre + radius * np.array(
        [[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    rel = (corners - scene.camera.position) @ cam_axes.T  # (8, 3) cam frame
    if np.any(rel[:, 2] <= 1e-3):
        return slice(0, height), slice(0, width)
    u = rel[:, 0] / rel[:, 2] * intr['fx'] + intr['cx'] - 0.5
    v = rel[:, 1] / rel[:, 2] * intr['fy'] + intr['cy'] - 0.5
    u0 = max(int(np.floor(u.min())) - 1, 0)
    u1 = min(int(np.ceil(u.max())) + 2, width)
    v0 = max(int(np.floor(v.min())) - 1, 0)
    v1 = min(int(np.ceil(v.max())) + 2, height)
    if u0 >= u1 or v0 >= v1:
        return None
    return slice(v0, v1), slice(u0, u1)


def _boundaries(instance: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """1-px instance boundaries: the nearer pixel of each differing pair."""
    edge = np.zeros(instance.shape, dtype=bool)
    diff = instance[:, :-1] != instance[:, 1:]
    first = dist[:, :-1] <= dist[:, 1:]
    edge[:, :-1] |= diff & first
    edge[:, 1:] |= diff & ~first
    diff = instance[:-1] != instance[1:]
    first = dist[:-1] <= dist[1:]
    edge[:-1] |= diff & first
    edge[1:] |= diff & ~first
    return edge


def render_scene(scene: Scene, height: int = 96,
                 width: int = 128) -> Dict[str, np.ndarray]:
    """Ray-cast ``scene`` at ``height`` x ``width`` pixels.

    Returns:
        dict: ``img`` uint8 (H, W, 3) RGB; ``semseg``, ``human_parts``,
        ``sal``, ``edge`` uint8 (H, W); ``normals`` float32 (H, W, 3) unit
        camera-frame normals; ``depth`` float32 (H, W) metres (0 =
        invalid); ``instance`` int32 (H, W); ``window`` bool (H, W);
        ``intrinsics`` dict ``fx, fy, cx, cy``. The label rules are in this
        module's docstring.
    """
    cam = scene.camera
    intr = cam.intrinsics(height, width)
    cam_axes = np.stack([cam.right, cam.down, cam.forward])  # rows
    xs = (np.arange(width) + 0.5 - intr['cx']) / intr['fx']
    ys = (np.arange(height) + 0.5 - intr['cy']) / intr['fy']
    rays_cam = np.stack(
        [np.broadcast_to(xs[None], (height, width)),
         np.broadcast_to(ys[:, None], (height, width)),
         np.ones((height, width))], axis=-1)
    rays_cam /= np.linalg.norm(rays_cam, axis=-1, keepdims=True)
    dirs = rays_cam @ cam_axes  # world directions (H, W, 3)
    origin = cam.position

    t_buf = np.full((height, width), np.inf)
    n_buf = np.zeros((height, width, 3))
    p_buf = np.full((height, width), -1, dtype=np.int32)
    for k, prim in enumerate(scene.primitives):
        if prim.bound is None:
            win = (slice(0, height), slice(0, width))
        else:
            win = _screen_window(scene, prim.bound, cam_axes, intr, height,
                                 width)
            if win is None:
                continue
        t, n = _INTERSECT[prim.kind](origin, dirs[win], **prim.params)
        closer = t < t_buf[win]
        if not closer.any():
            continue
        t_buf[win] = np.where(closer, t, t_buf[win])
        p_buf[win] = np.where(closer, k, p_buf[win])
        if prim.kind != 'plane':  # constant plane normals are set below
            n_buf[win] = np.where(closer[..., None], n, n_buf[win])
    if (p_buf < 0).any():
        raise RuntimeError('synthetic scene: some rays hit nothing; the room '
                           'must enclose the view')

    # Per-pixel primitive masks, computed once.
    pids = np.unique(p_buf)
    masks = {int(k): p_buf == k for k in pids}
    for k in pids:
        prim = scene.primitives[k]
        if prim.kind == 'plane':
            n_buf[masks[int(k)]] = prim.params['normal']
    # Normals face the camera.
    facing = np.einsum('hwc,hwc->hw', n_buf, dirs)
    n_buf = np.where((facing > 0)[..., None], -n_buf, n_buf)
    n_buf /= np.linalg.norm(n_buf, axis=-1, keepdims=True)
    points = origin + t_buf[..., None] * dirs

    semantic = np.array([p.semantic for p in scene.primitives])[p_buf]
    instance = np.array([p.instance for p in scene.primitives])[p_buf]
    part = np.array([p.part for p in scene.primitives])[p_buf]

    window = np.zeros((height, width), dtype=bool)
    if scene.window is not None:
        x0, x1, y0, y1 = scene.window
        on_back = p_buf == 1  # primitive 1 is the back wall
        window = (on_back & (points[..., 0] >= x0) & (points[..., 0] <= x1) &
                  (points[..., 1] >= y0) & (points[..., 1] <= y1))
        instance = np.where(window, WINDOW_INSTANCE, instance)

    # Appearance: procedural albedo x Lambertian shading, sky in the window.
    albedo = np.zeros((height, width, 3))
    for k, m in masks.items():
        albedo[m] = procedural_albedo(scene.primitives[k].material, points[m])
    shade = scene.ambient + (1 - scene.ambient) * np.clip(
        n_buf @ scene.light_dir, 0, None)
    img = albedo * shade[..., None]
    if window.any():
        x0, x1, y0, y1 = scene.window
        w = np.clip((points[..., 1] - y0) / (y1 - y0), 0, 1)[..., None]
        sky = scene.sky_colors[0] * (1 - w) + scene.sky_colors[1] * w
        img = np.where(window[..., None], sky, img)
    if scene.noise_sigma > 0:
        noise_rng = np.random.default_rng(scene.noise_seed)
        img = img + noise_rng.normal(0, scene.noise_sigma, img.shape)
    img = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)

    # Labels.
    is_fig = semantic == _FIGURE
    if is_fig.any():
        parts = part.astype(np.uint8)
    else:
        parts = np.full((height, width), 255, dtype=np.uint8)
    sal = is_fig.copy()
    others = instance[(~is_fig) & (semantic > _WALL)]
    if others.size:
        ids, counts = np.unique(others, return_counts=True)
        sal |= instance == ids[np.argmax(counts)]
    depth = (t_buf * rays_cam[..., 2]).astype(np.float32)
    depth[window] = 0
    normals = (n_buf @ cam_axes.T).astype(np.float32)
    return dict(
        img=img,
        semseg=semantic.astype(np.uint8),
        human_parts=parts,
        sal=sal.astype(np.uint8),
        normals=normals,
        edge=_boundaries(instance, t_buf).astype(np.uint8),
        depth=depth,
        instance=instance.astype(np.int32),
        window=window,
        intrinsics=intr)
