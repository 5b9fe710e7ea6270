# Copyright (c) diffmtl contributors. All rights reserved.
"""Draw a model's denoising process (the paper's Figures 5 and 9).

:func:`draw_denoising_process` / :func:`draw_process_panel` render one task
strip / one image's panel: ``image | initial | noisy | step_1 .. | final |
GT`` from the stages that :func:`diffmtl.apis.run_denoising_process`
computes (the model's ``denoising_process``, each stage turned into a
prediction by the task kind's ``logits_to_pred``).
"""
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from diffmtl.structures import get_task_spec
from .multitask_visualizer import compose_grid
from .task_tiles import (draw_caption, draw_task_tile, draw_unlabelled_tile,
                         fit_to_shape, to_numpy_map)

__all__ = ['draw_denoising_process', 'draw_process_panel']

Stages = List[Tuple[str, torch.Tensor]]


def draw_denoising_process(task: str,
                           stages: Stages,
                           meta: Optional[dict] = None,
                           gt_map=None,
                           labelled: bool = True,
                           image: Optional[np.ndarray] = None,
                           captions: bool = True) -> np.ndarray:
    """One strip: ``[image] | stage tiles ... | GT`` for one task.

    Args:
        task (str): Task name.
        stages (list[tuple[str, Tensor | ndarray]]): (stage name,
            prediction map) in process order, maps as
            :func:`draw_task_tile` takes them.
        meta (dict, optional): Dataset meta (palettes, classes).
        gt_map (optional): Ground-truth map; drawn as the last tile. With
            ``labelled=False`` (or when None but ``labelled`` is requested
            through the caller), an "unlabelled" tile is drawn instead.
        labelled (bool): Whether the image is labelled for ``task``.
        image (ndarray, optional): (H, W, 3) RGB image for the first tile;
            every tile is brought to its size.
        captions (bool): Write the stage names above the tiles.

    Returns:
        ndarray: (H', W', 3) ``uint8`` RGB strip.
    """
    spec = get_task_spec(task)
    maps = [(name, to_numpy_map(m, spec.gt_channels)) for name, m in stages]
    if image is not None:
        hw = image.shape[:2]
    elif maps:
        hw = maps[0][1].shape[:2]
    else:
        hw = to_numpy_map(gt_map, spec.gt_channels).shape[:2]
    maps = [(n, fit_to_shape(m, hw, nearest=True)) for n, m in maps]
    gt = None
    if gt_map is not None and labelled:
        gt = fit_to_shape(to_numpy_map(gt_map, spec.gt_channels),
                          hw,
                          nearest=True)
    # the GT's range, else the final prediction's (None: fixed colours)
    value_range = spec.task_kind.shared_value_range(
        spec, gt, maps[-1][1] if maps else None)

    def _cap(tile, text):
        return draw_caption(tile, text) if captions else tile

    tiles = []
    if image is not None:
        tiles.append(_cap(np.ascontiguousarray(image), 'image'))
    for name, m in maps:
        tiles.append(
            _cap(
                draw_task_tile(task, m, meta, value_range, mark_invalid=False),
                f'{task} {name}'))
    if gt is not None:
        tiles.append(
            _cap(draw_task_tile(task, gt, meta, value_range), f'{task} GT'))
    elif gt_map is not None or not labelled:
        tiles.append(_cap(draw_unlabelled_tile(*hw), f'{task} GT'))
    canvas, _ = compose_grid([tiles])
    return canvas


def draw_process_panel(image: np.ndarray,
                       process: Dict[str, Stages],
                       meta: Optional[dict] = None,
                       gt_maps: Optional[Dict[str, object]] = None,
                       task_mask: Optional[Dict[str, bool]] = None,
                       captions: bool = True) -> np.ndarray:
    """Stack the strips of every task of one image, one task per row.

    Args:
        image (ndarray): (H, W, 3) RGB image.
        process (dict): ``{task: [(stage, map)]}`` in task order.
        meta (dict, optional): Dataset meta.
        gt_maps (dict, optional): ``{task: map}``; tasks missing here get no
            GT tile unless ``task_mask`` marks them unlabelled.
        task_mask (dict, optional): ``{task: labelled}``.
        captions (bool): Write stage names.

    Returns:
        ndarray: (H', W', 3) ``uint8`` RGB panel.
    """
    gt_maps = gt_maps or {}
    task_mask = task_mask or {}
    strips = [[
        draw_denoising_process(task,
                               stages,
                               meta,
                               gt_map=gt_maps.get(task),
                               labelled=task_mask.get(task, True),
                               image=image,
                               captions=captions)
    ] for task, stages in process.items()]
    canvas, _ = compose_grid(strips)
    return canvas
