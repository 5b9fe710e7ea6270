# Copyright (c) diffmtl contributors. All rights reserved.
"""A picture of synthetic samples and all their task maps (numpy only)."""
from typing import Sequence

import numpy as np

from .generate import encode_normals, render_sample
from .scene import PARTS_PALETTE, SEMSEG_PALETTE

__all__ = ['PREVIEW_COLUMNS', 'colorize_sample', 'render_preview']

PREVIEW_COLUMNS = ('image', 'semseg', 'human_parts', 'sal', 'normals',
                   'edge', 'depth')


def colorize_sample(maps: dict) -> list:
    """RGB uint8 tiles (H, W, 3) of one rendered sample.

    Order: :data:`PREVIEW_COLUMNS`. Ignored human-parts pixels are grey,
    normals are shown as ``(n + 1) / 2``, depth as grey levels (near =
    bright) with invalid pixels black.
    """
    sem_pal = np.array(SEMSEG_PALETTE, np.uint8)
    part_pal = np.array(PARTS_PALETTE, np.uint8)
    parts = maps['human_parts']
    parts_rgb = part_pal[np.where(parts == 255, 0, parts)]
    parts_rgb[parts == 255] = 128
    depth = maps['depth']
    valid = depth > 0
    dmax = depth[valid].max() if valid.any() else 1.0
    grey = np.where(valid, 255 - 200 * depth / dmax, 0).astype(np.uint8)

    def gray3(a):
        return np.repeat(a[..., None], 3, axis=2)

    return [
        maps['img'], sem_pal[maps['semseg']], parts_rgb,
        gray3(maps['sal'] * 255),
        encode_normals(maps['normals']),
        gray3(maps['edge'] * 255),
        gray3(grey)
    ]


def render_preview(indices: Sequence[int] = (3, 5, 7),
                   seed: int = 0,
                   height: int = 96,
                   width: int = 128,
                   gap: int = 2) -> np.ndarray:
    """One row per sample index, one column per :data:`PREVIEW_COLUMNS`.

    Returns:
        np.ndarray: uint8 RGB picture, white between tiles.
    """
    rows = []
    for index in indices:
        tiles = colorize_sample(render_sample(index, seed, height, width))
        row = tiles[0]
        for tile in tiles[1:]:
            row = np.concatenate(
                [row, np.full((height, gap, 3), 255, np.uint8), tile], 1)
        rows.append(row)
    out = rows[0]
    for row in rows[1:]:
        out = np.concatenate(
            [out, np.full((gap, out.shape[1], 3), 255, np.uint8), row], 0)
    return out
