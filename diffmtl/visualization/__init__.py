# Copyright (c) diffmtl contributors. All rights reserved.
"""Pictures of multi-task samples and of the denoising process."""
from diffmtl.structures.maps import unpad_window
from .denoising_process import draw_denoising_process, draw_process_panel
from .denoising_process_hook import DenoisingProcessHook
from .multitask_visualizer import (MultiTaskLocalVisualizer, compose_grid,
                                   sample_tasks)
from .task_tiles import (HATCH_COLOR, IGNORE_COLOR, UNLABELLED_COLOR,
                         apply_cmap, depth_value_range, draw_caption,
                         draw_legend, draw_task_tile, draw_unlabelled_tile,
                         fit_to_shape, get_task_classes, get_task_palette,
                         resize_map, to_numpy_map, voc_palette)

__all__ = [
    'MultiTaskLocalVisualizer', 'DenoisingProcessHook', 'draw_task_tile',
    'draw_unlabelled_tile', 'draw_caption', 'draw_legend', 'compose_grid',
    'sample_tasks', 'draw_denoising_process', 'draw_process_panel',
    'unpad_window',
    'depth_value_range', 'fit_to_shape', 'resize_map', 'to_numpy_map',
    'get_task_classes', 'get_task_palette', 'voc_palette', 'apply_cmap',
    'IGNORE_COLOR', 'UNLABELLED_COLOR', 'HATCH_COLOR'
]
