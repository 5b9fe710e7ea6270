# Copyright (c) diffmtl contributors. All rights reserved.
"""Procedurally ray-cast multi-task room scenes (the embedded dataset).

``generate_synthetic_scenes(out_dir)`` writes a complete dataset in the
``FolderMultiTaskDataset`` layout; ``render_sample(index, seed)`` and
``sample_scene`` + ``render_scene`` give the arrays in memory.
"""
from .generate import (GENERATOR_VERSION, SYNTHETIC_TASKS, decode_normals,
                       encode_depth, encode_normals,
                       generate_synthetic_scenes, render_sample)
from .png import encode_png, read_png, write_png
from .preview import PREVIEW_COLUMNS, colorize_sample, render_preview
from .render import render_scene
from .scene import (PARTS_PALETTE, SEMSEG_CLASSES, SEMSEG_PALETTE,
                    SHAPE_CLASSES, Camera, Scene, sample_scene)

__all__ = [
    'GENERATOR_VERSION', 'SYNTHETIC_TASKS', 'SEMSEG_CLASSES',
    'SEMSEG_PALETTE', 'PARTS_PALETTE', 'SHAPE_CLASSES', 'Camera', 'Scene',
    'sample_scene', 'render_scene', 'render_sample',
    'generate_synthetic_scenes', 'encode_normals', 'decode_normals',
    'encode_depth', 'encode_png', 'write_png', 'read_png',
    'PREVIEW_COLUMNS', 'colorize_sample', 'render_preview'
]
