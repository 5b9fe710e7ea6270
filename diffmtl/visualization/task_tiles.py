# Copyright (c) diffmtl contributors. All rights reserved.
"""Render one task map as an RGB picture (a *tile*).

Every colouring decision is read from the task's
:class:`~diffmtl.structures.TaskSpec` (``spec.cmap``, ``spec.ignore_index``,
``spec.discrete``), so a new task gets a picture without new code:

* ``cmap='palette'`` (segmentation, human parts): class ``k`` is drawn with
  ``meta['task_palettes'][task][k]`` (falling back to ``meta['palette']`` for
  ``semseg`` and to a fixed VOC-style palette otherwise).
* ``cmap='normals'``: the unit normal ``n`` is drawn as ``255 * (n + 1) / 2``
  per channel (x, y, z = R, G, B), the convention of the paper's figures.
* any other ``cmap`` is a matplotlib colour map applied to the value
  normalised by ``value_range``: ``(0, 1)`` for probabilities and 0/1 labels
  (saliency, boundaries), the valid min/max of the map for depth.

Pixels that carry no label (``ignore_index`` for discrete tasks, the zero
vector for normals, depth <= 0) are drawn in :data:`IGNORE_COLOR`. A task
that is not labelled at all for an image is drawn with
:func:`draw_unlabelled_tile` (grey with diagonal hatching and a caption).
All functions return ``uint8`` RGB arrays of shape (H, W, 3).
"""
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

from diffmtl.structures import get_task_spec

__all__ = [
    'IGNORE_COLOR', 'UNLABELLED_COLOR', 'HATCH_COLOR', 'draw_task_tile',
    'draw_unlabelled_tile', 'draw_caption', 'draw_legend', 'get_task_palette',
    'get_task_classes', 'to_numpy_map', 'fit_to_shape', 'resize_map',
    'depth_value_range', 'voc_palette'
]

#: Colour of pixels without a label (ignore index, zero normal, depth 0);
#: the PASCAL VOC "void" colour, which none of the colour maps produce.
IGNORE_COLOR: Tuple[int, int, int] = (224, 224, 192)
#: Background and hatching colours of an unlabelled task's tile.
UNLABELLED_COLOR: Tuple[int, int, int] = (128, 128, 128)
HATCH_COLOR: Tuple[int, int, int] = (96, 96, 96)

MapLike = Union[np.ndarray, torch.Tensor]


def voc_palette(num_classes: int) -> List[List[int]]:
    """The PASCAL VOC bit-interleaved palette for ``num_classes`` classes.

    Class 0 is black; used when the dataset meta has no palette for a task.
    """
    palette = []
    for label in range(num_classes):
        r = g = b = 0
        c = label
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette.append([r, g, b])
    return palette


def get_task_classes(task: str, meta: Optional[dict]) -> Optional[tuple]:
    """Class names of a segmentation-kind task from dataset meta.

    Looks at ``meta['task_classes'][task]``, then ``meta['classes']`` for
    ``semseg``, then the spec's ``default_classes``.
    """
    meta = meta or {}
    classes = (meta.get('task_classes') or {}).get(task)
    if classes is None and task == 'semseg':
        classes = meta.get('classes')
    if classes is None:
        classes = get_task_spec(task).default_classes
    return tuple(classes) if classes is not None else None


def get_task_palette(task: str,
                     meta: Optional[dict],
                     num_classes: Optional[int] = None) -> List[List[int]]:
    """Palette of a segmentation-kind task.

    Uses ``meta['task_palettes'][task]``, then ``meta['palette']`` for
    ``semseg``; otherwise (or when it is shorter than ``num_classes``) the
    VOC palette.
    """
    meta = meta or {}
    palette = (meta.get('task_palettes') or {}).get(task)
    if palette is None and task == 'semseg':
        palette = meta.get('palette')
    if num_classes is None:
        classes = get_task_classes(task, meta)
        num_classes = len(classes) if classes else 256
    if palette is None or len(palette) < num_classes:
        base = [list(map(int, c)) for c in (palette or [])]
        return base + voc_palette(num_classes)[len(base):]
    return [list(map(int, c)) for c in palette]


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
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    src = arr.astype(np.float32) if not nearest else arr
    if src.dtype in (np.int64, np.bool_):
        src = src.astype(np.int32)
    out = cv2.resize(src, (w, h), interpolation=interp)
    if out.ndim == 2 and arr.ndim == 3:
        out = out[..., None]
    return out.astype(arr.dtype) if nearest else out


def resize_map(arr: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """Resize a (H, W[, C]) map to ``shape`` with nearest neighbours."""
    h, w = int(shape[0]), int(shape[1])
    src = arr.astype(np.int32) if arr.dtype in (np.int64, np.bool_) else arr
    out = cv2.resize(src, (w, h), interpolation=cv2.INTER_NEAREST)
    if out.ndim == 2 and arr.ndim == 3:
        out = out[..., None]
    return out.astype(arr.dtype)


def _invalid_mask(task: str, arr: np.ndarray) -> np.ndarray:
    spec = get_task_spec(task)
    if spec.cmap == 'normals' or arr.ndim == 3:
        return ~np.isfinite(arr).all(-1) | (np.abs(arr).sum(-1) == 0)
    invalid = ~np.isfinite(arr)
    if spec.ignore_index is not None:
        invalid |= arr == spec.ignore_index
    elif not spec.discrete and spec.pad_value == 0:
        invalid |= arr <= 0
    return invalid


def depth_value_range(task: str,
                      task_map: MapLike,
                      valid_only: bool = True) -> Tuple[float, float]:
    """(min, max) over the valid pixels of a continuous map; (0, 1) if none.

    Pass the ground truth's range to :func:`draw_task_tile` for both the
    ground truth and the prediction so that colours are comparable. With
    ``valid_only=False`` (predictions) every finite value counts.
    """
    arr = to_numpy_map(task_map, 1).astype(np.float64)
    invalid = _invalid_mask(task, arr) if valid_only else ~np.isfinite(arr)
    valid = arr[~invalid]
    if valid.size == 0:
        return 0.0, 1.0
    lo, hi = float(valid.min()), float(valid.max())
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _apply_cmap(name: str, values: np.ndarray) -> np.ndarray:
    """Map ``values`` in [0, 1] to RGB uint8 with a matplotlib colour map."""
    values = np.clip(values, 0.0, 1.0)
    if name == 'gray':
        # exact grey ramp, independent of matplotlib's lookup table size
        v = np.round(values * 255).astype(np.uint8)
        return np.repeat(v[..., None], 3, axis=-1)
    import matplotlib
    cmap = matplotlib.colormaps[name]
    rgba = cmap(values, bytes=True)
    return np.ascontiguousarray(rgba[..., :3])


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
            segmentation colours; only used when ``alpha < 1``.
        alpha (float): Opacity of segmentation colours over ``image``.
        mark_invalid (bool): Draw pixels without a label (ignore index,
            zero normal, depth <= 0) in :data:`IGNORE_COLOR`. Pass False
            for predictions, whose values are never "missing" (an untrained
            depth head may predict negative values).

    Returns:
        ndarray: (H, W, 3) ``uint8`` RGB tile.
    """
    spec = get_task_spec(task)
    if spec.cmap == 'normals':
        arr = to_numpy_map(task_map, 3).astype(np.float32)
        invalid = _invalid_mask(task, arr)
        norm = np.linalg.norm(arr, axis=-1, keepdims=True)
        unit = arr / np.maximum(norm, 1e-12)
        tile = np.clip(np.round((unit + 1.0) * 127.5), 0, 255)
        tile = tile.astype(np.uint8)
    elif spec.cmap == 'palette':
        arr = to_numpy_map(task_map, 1)
        labels = np.round(arr.astype(np.float64)).astype(np.int64)
        classes = get_task_classes(task, meta)
        num_classes = len(classes) if classes else int(
            max(labels[labels != spec.ignore_index].max(initial=0) + 1, 1))
        palette = np.asarray(get_task_palette(task, meta, num_classes),
                             dtype=np.uint8)
        invalid = _invalid_mask(task, arr) | (labels < 0) | (labels
                                                             >= num_classes)
        tile = palette[np.clip(labels, 0, num_classes - 1)]
        if image is not None and alpha < 1:
            img = fit_to_shape(np.asarray(image), arr.shape, nearest=False)
            tile = (img.astype(np.float32) * (1 - alpha) +
                    tile.astype(np.float32) * alpha).astype(np.uint8)
    else:
        arr = to_numpy_map(task_map, 1).astype(np.float64)
        invalid = _invalid_mask(task, arr)
        if value_range is None:
            value_range = (0.0, 1.0) if spec.discrete else \
                depth_value_range(task, arr)
        lo, hi = float(value_range[0]), float(value_range[1])
        scaled = (np.nan_to_num(arr) - lo) / max(hi - lo, 1e-12)
        tile = _apply_cmap(spec.cmap, scaled)
    tile = np.ascontiguousarray(tile)
    if mark_invalid or spec.cmap == 'palette':
        # class ids outside the palette have no colour of their own
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
        task (str): A segmentation-kind (``cmap='palette'``) task.
        meta (dict, optional): Dataset meta with classes and palettes.
        width (int): Width of the legend image.
        class_ids (sequence of int, optional): Classes to list (e.g. those
            present in the ground truth or prediction). All by default.
        row_height (int): Pixel height of one entry.

    Returns:
        ndarray or None: (N * row_height, width, 3) RGB, None when the task
        has no palette or no classes to list.
    """
    if get_task_spec(task).cmap != 'palette':
        return None
    classes = get_task_classes(task, meta)
    if not classes:
        return None
    palette = get_task_palette(task, meta, len(classes))
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
