# Copyright (c) diffmtl contributors. All rights reserved.
"""Render one task map as an RGB picture (a *tile*).

Every colouring decision is the task kind's
(:meth:`~diffmtl.structures.TaskKind.colorize`, reading the task's
:class:`~diffmtl.structures.TaskSpec`), so a new task, or a new kind, gets a
picture without new code here. The built-in kinds:

* segmentation (``cmap='palette'``; semseg, human parts): class ``k`` is
  drawn with ``meta['task_palettes'][task][k]`` (falling back to
  ``meta['palette']`` for the task with ``mmseg_classes`` and to a fixed
  VOC-style palette otherwise, :func:`~diffmtl.tasks.colour.task_palette`).
* normals: the unit normal ``n`` is drawn as ``255 * (n + 1) / 2`` per
  channel (x, y, z = R, G, B), the convention of the paper's figures.
* the others: a matplotlib colour map (``spec.cmap``) applied to the value
  normalised by ``value_range``: ``(0, 1)`` for probabilities and 0/1
  labels (saliency, boundaries), the valid min/max of the map for depth.

Pixels that carry no label (the kind's
:meth:`~diffmtl.structures.TaskKind.invalid_mask`: ``ignore_index`` for
discrete tasks, the zero vector for normals, depth <= 0) are drawn in
:data:`IGNORE_COLOR`. A task that is not labelled at all for an image is
drawn with :func:`draw_unlabelled_tile` (grey with diagonal hatching and a
caption). All functions return ``uint8`` RGB arrays of shape (H, W, 3).
"""
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

from diffmtl.structures import get_task_spec, resize_map, task_class_names
from diffmtl.tasks.colour import apply_cmap, task_palette, voc_palette

__all__ = [
    'IGNORE_COLOR', 'UNLABELLED_COLOR', 'HATCH_COLOR', 'draw_task_tile',
    'draw_unlabelled_tile', 'draw_caption', 'draw_legend', 'get_task_palette',
    'get_task_classes', 'to_numpy_map', 'fit_to_shape', 'resize_map',
    'depth_value_range', 'voc_palette', 'apply_cmap'
]

#: Colour of pixels without a label (ignore index, zero normal, depth 0);
#: the PASCAL VOC "void" colour, which none of the colour maps produce.
IGNORE_COLOR: Tuple[int, int, int] = (224, 224, 192)
#: Background and hatching colours of an unlabelled task's tile.
UNLABELLED_COLOR: Tuple[int, int, int] = (128, 128, 128)
HATCH_COLOR: Tuple[int, int, int] = (96, 96, 96)

MapLike = Union[np.ndarray, torch.Tensor]

#: Class names of a segmentation-kind task (the old name of
#: :func:`diffmtl.structures.task_class_names`).
get_task_classes = task_class_names
#: Palette of a segmentation-kind task (the old name of
#: :func:`diffmtl.tasks.colour.task_palette`).
get_task_palette = task_palette


def to_numpy_map(task_map: MapLike, channels: int) -> np.ndarray:
    """Bring a map to numpy (H, W) (``channels=1``) or (H, W, 3).

    Accepts (H, W), (1, H, W) / (H, W, 1) and (3, H, W) / (H, W, 3) arrays
    or tensors (``PixelData`` too, through its ``data``).
    """
    if hasattr(task_map,
               'data') and not isinstance(task_map,
                                          (np.ndarray, torch.Tensor)):
        task_map = task_map.data
    if isinstance(task_map, torch.Tensor):
        task_map = task_map.detach().cpu().numpy()
    arr = np.asarray(task_map)
    if channels == 1:
        if arr.ndim == 3 and arr.shape[0] == 1:
            arr = arr[0]
        elif arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim != 2:
            raise ValueError(f'expected a single-channel map (H, W) or '
                             f'(1, H, W), got shape {arr.shape}')
        return arr
    if arr.ndim == 3 and arr.shape[0] == channels and arr.shape[-1] != \
            channels:
        arr = arr.transpose(1, 2, 0)
    elif arr.ndim == 3 and arr.shape[0] == channels and arr.shape[-1] == \
            channels and arr.shape[1] != channels:
        arr = arr.transpose(1, 2, 0)
    if arr.ndim != 3 or arr.shape[-1] != channels:
        raise ValueError(f'expected a {channels}-channel map ({channels}, H, '
                         f'W) or (H, W, {channels}), got shape {arr.shape}')
    return arr


def fit_to_shape(arr: np.ndarray, shape: Tuple[int, int],
                 nearest: bool) -> np.ndarray:
    """Make a (H, W[, C]) map ``shape`` large.

    A larger map is assumed to be padded at the bottom/right (mmseg pads
    there) and is cropped; a smaller one is resized (nearest for labels).
    """
    h, w = int(shape[0]), int(shape[1])
    if arr.shape[:2] == (h, w):
        return arr
    if arr.shape[0] >= h and arr.shape[1] >= w:
        return arr[:h, :w]
    if nearest:
        return resize_map(arr, (h, w), 'nearest')
    return resize_map(arr.astype(np.float32), (h, w), 'bilinear')


def depth_value_range(task: str,
                      task_map: MapLike,
                      valid_only: bool = True) -> Tuple[float, float]:
    """(min, max) over the valid pixels of a continuous map; (0, 1) if none.

    Pass the ground truth's range to :func:`draw_task_tile` for both the
    ground truth and the prediction so that colours are comparable. With
    ``valid_only=False`` (predictions) every finite value counts. Valid
    pixels are those outside the kind's
    :meth:`~diffmtl.structures.TaskKind.invalid_mask`
    (:meth:`~diffmtl.structures.TaskKind.valid_value_range`).
    """
    spec = get_task_spec(task)
    arr = to_numpy_map(task_map, spec.gt_channels)
    return spec.task_kind.valid_value_range(spec, arr, valid_only)


def draw_task_tile(task: str,
                   task_map: MapLike,
                   meta: Optional[dict] = None,
                   value_range: Optional[Tuple[float, float]] = None,
                   image: Optional[np.ndarray] = None,
                   alpha: float = 1.0,
                   mark_invalid: bool = True) -> np.ndarray:
    """Colour one task map.

    Args:
        task (str): Task name (a registered :class:`TaskSpec`).
        task_map (ndarray | Tensor | PixelData): The ground truth or the
            prediction in the layout of the data contract: class ids
            (1, H, W) / (H, W) for segmentation, probabilities or 0/1 labels
            (1, H, W) for saliency and boundaries, vectors (3, H, W) or
            (H, W, 3) for normals, depth (1, H, W).
        meta (dict, optional): Dataset meta (``task_palettes``,
            ``task_classes``, ``palette``).
        value_range (tuple, optional): (low, high) mapped to the ends of a
            colour map. Defaults to (0, 1) for discrete-label tasks
            (saliency, boundaries) and to the map's valid range otherwise.
        image (ndarray, optional): RGB (H, W, 3) image to blend under
            the colours (segmentation, when ``alpha < 1``); cropped or
            resized to the map's size first (:func:`fit_to_shape`).
        alpha (float): Opacity of the colours over ``image``.
        mark_invalid (bool): Draw pixels without a label (ignore index,
            zero normal, depth <= 0) in :data:`IGNORE_COLOR`. Pass False
            for predictions, whose values are never "missing" (an untrained
            depth head may predict negative values).

    Returns:
        ndarray: (H, W, 3) ``uint8`` RGB tile.
    """
    spec = get_task_spec(task)
    kind = spec.task_kind
    arr = to_numpy_map(task_map, spec.gt_channels)
    if image is not None:  # colorize takes an image of the map's size
        image = fit_to_shape(np.asarray(image), arr.shape[:2], nearest=False)
    tile, invalid = kind.colorize(spec, arr, meta, value_range, image, alpha)
    tile = np.require(tile, np.uint8, ['C', 'W'])
    if mark_invalid or kind.always_mark_invalid:
        # e.g. class ids outside the palette have no colour of their own
        tile[invalid] = IGNORE_COLOR
    return tile


def draw_unlabelled_tile(height: int,
                         width: int,
                         text: Optional[str] = 'unlabelled',
                         spacing: int = 8) -> np.ndarray:
    """Grey tile with diagonal hatching and a caption for a missing label.

    Pixel (y, x) is :data:`HATCH_COLOR` where ``(x + y) % spacing == 0``
    (one-pixel lines), :data:`UNLABELLED_COLOR` elsewhere, apart from the
    centred ``text``.
    """
    tile = np.empty((height, width, 3), dtype=np.uint8)
    tile[:] = UNLABELLED_COLOR
    yy, xx = np.mgrid[:height, :width]
    tile[(yy + xx) % spacing == 0] = HATCH_COLOR
    if text:
        scale = max(min(width / 220.0, 1.0), 0.3)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale,
                                         1)
        x0 = max((width - tw) // 2, 0)
        y0 = max((height + th) // 2, th)
        cv2.rectangle(tile, (x0 - 2, y0 - th - 2), (x0 + tw + 2, y0 + base),
                      UNLABELLED_COLOR, -1)
        cv2.putText(tile, text, (x0, y0), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def draw_caption(tile: np.ndarray,
                 text: str,
                 height: Optional[int] = None) -> np.ndarray:
    """Put a black bar with white ``text`` above ``tile``."""
    width = tile.shape[1]
    height = height or max(14, min(24, width // 10))
    bar = np.zeros((height, width, 3), dtype=np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(min((height - 4) / 22.0, 0.6), 0.25)
    # shrink the font, then drop characters, until the text fits
    while scale > 0.25 and cv2.getTextSize(text, font, scale,
                                           1)[0][0] > width - 4:
        scale = max(scale - 0.05, 0.25)
    while len(text) > 1 and cv2.getTextSize(text, font, scale,
                                            1)[0][0] > width - 4:
        text = text[:-1]
    cv2.putText(bar, text, (2, height - 4), font, scale, (255, 255, 255), 1,
                cv2.LINE_AA)
    return np.concatenate([bar, tile], axis=0)


def draw_legend(task: str,
                meta: Optional[dict],
                width: int,
                class_ids: Optional[Sequence[int]] = None,
                row_height: int = 14) -> Optional[np.ndarray]:
    """Colour swatches with class names, ``width`` pixels wide.

    Args:
        task (str): A task whose kind ``has_classes`` (segmentation).
        meta (dict, optional): Dataset meta with classes and palettes.
        width (int): Width of the legend image.
        class_ids (sequence of int, optional): Classes to list (e.g. those
            present in the ground truth or prediction). All by default.
        row_height (int): Pixel height of one entry.

    Returns:
        ndarray or None: (N * row_height, width, 3) RGB, None when the task
        has no palette or no classes to list.
    """
    if not get_task_spec(task).task_kind.has_classes:
        return None
    classes = task_class_names(task, meta)
    if not classes:
        return None
    palette = task_palette(task, meta, len(classes))
    ids = range(len(classes)) if class_ids is None else sorted(
        {int(i)
         for i in class_ids if 0 <= int(i) < len(classes)})
    ids = list(ids)
    if not ids:
        return None
    legend = np.full((row_height * len(ids), width, 3), 255, dtype=np.uint8)
    sw = row_height - 4
    for row, cid in enumerate(ids):
        y = row * row_height
        legend[y + 2:y + 2 + sw, 2:2 + sw] = palette[cid]
        cv2.putText(legend, f'{cid}: {classes[cid]}',
                    (sw + 6, y + row_height - 3), cv2.FONT_HERSHEY_SIMPLEX,
                    0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return legend
