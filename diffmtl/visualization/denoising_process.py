# Copyright (c) diffmtl contributors. All rights reserved.
"""Run and draw a model's denoising process (the paper's Figures 5 and 9).

A DiffusionMTL model exposes ``model.denoising_process(inputs)`` returning,
per task, the ordered stages ``[('initial', logits), ('noisy', ...),
('step_1', ...), ..., ('final', logits)]`` as (B, n_t, H, W) logits at input
size. :func:`run_denoising_process` feeds packed samples through the model's
data preprocessor, calls it with a fixed seed (inference is stochastic),
turns every stage into a displayable prediction and removes the padding;
:func:`draw_denoising_process` / :func:`draw_process_panel` render one task
strip / one image's panel: ``image | initial | noisy | step_1 .. | final |
GT``.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from diffmtl.structures import get_task_spec, unpad_window
from .multitask_visualizer import compose_grid
from .task_tiles import (draw_caption, draw_task_tile, draw_unlabelled_tile,
                         fit_to_shape, to_numpy_map)

__all__ = [
    'logits_to_pred', 'run_denoising_process', 'draw_denoising_process',
    'draw_process_panel', 'unpad_window'
]

Stages = List[Tuple[str, torch.Tensor]]


def logits_to_pred(task: str, logits: torch.Tensor) -> torch.Tensor:
    """Convert a task's logits (B, n_t, H, W) into its displayable map.

    The task kind's :meth:`~diffmtl.structures.TaskKind.logits_to_pred`,
    the maths of the models' predictions and of the metrics: class ids
    (argmax) for segmentation, the salient-class probability for saliency,
    the sigmoid for boundaries, unit vectors for normals and the raw value
    for depth.

    Returns:
        Tensor: (B, C, H, W) with ``C = spec.gt_channels`` (3 for normals,
        1 otherwise).
    """
    pred = get_task_spec(task).task_kind.logits_to_pred(logits)
    if pred.dim() == 3:
        pred = pred.unsqueeze(1)
    return pred


def _unwrap(model):
    from mmengine.model import is_model_wrapper
    return model.module if is_model_wrapper(model) else model


@torch.no_grad()
def run_denoising_process(model: torch.nn.Module,
                          data: dict,
                          seed: Optional[int] = 0,
                          tasks: Optional[Sequence[str]] = None) -> list:
    """Run ``model.denoising_process`` on packed samples.

    Args:
        model (nn.Module): Model with ``data_preprocessor`` and
            ``denoising_process(inputs) -> {task: [(stage, logits)]}``
            (wrappers such as DDP are unwrapped).
        data (dict): ``inputs`` (list of (3, H, W) tensors) and
            ``data_samples`` (list of SegDataSample), as a dataset or the
            test pipeline produces them. Images are run one at a time so
            that their sizes may differ.
        seed (int, optional): Seed of the process' noise; the global RNG
            state is restored afterwards. None leaves the RNG alone.
        tasks (sequence of str, optional): Keep only these tasks.

    Returns:
        list[dict]: Per image ``{task: [(stage, pred)]}`` with ``pred`` a
        CPU tensor (C, h, w) from :func:`logits_to_pred` with the padding
        removed, plus the key
        ``'data_sample'`` holding the preprocessed sample and ``'window'``,
        the (top, bottom, left, right) bounds of the image in the padded
        input (see :func:`unpad_window`).
    """
    model = _unwrap(model)
    if not hasattr(model, 'denoising_process'):
        raise AttributeError(
            f'{type(model).__name__} has no denoising_process(inputs); only '
            'DiffusionMTL-style models can draw their denoising process')
    was_training = model.training
    model.eval()
    results = []
    try:
        for inputs, sample in zip(data['inputs'], data['data_samples']):
            batch = model.data_preprocessor(
                dict(inputs=[inputs], data_samples=[sample]), False)
            x, sample = batch['inputs'], batch['data_samples'][0]
            top, bottom, left, right = unpad_window(sample.metainfo,
                                                    x.shape[-2:])
            devices = [x.device.index or 0] if x.is_cuda else []
            with torch.random.fork_rng(devices=devices,
                                       enabled=seed is not None):
                if seed is not None:
                    torch.manual_seed(seed)
                process = model.denoising_process(x)
            out = {'data_sample': sample}
            for task, stages in process.items():
                if tasks is not None and task not in tasks:
                    continue
                out[task] = [(name,
                              logits_to_pred(task,
                                             logits.float())[0, :, top:bottom,
                                                             left:right].cpu())
                             for name, logits in stages]
            out['window'] = (top, bottom, left, right)
            results.append(out)
    finally:
        model.train(was_training)
    return results


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
