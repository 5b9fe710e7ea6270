# Copyright (c) diffmtl contributors. All rights reserved.
"""Low-level geometry of dense maps: where the image lies inside a padded
network input, and resizing a map. The one implementation of each, used by
the models' post-processing, the visualiser, the inference API and the
transforms.

Padding metainfo
----------------
Two keys record padding, both ``(left, right, top, bottom)`` pixels:

``padding_size``
    diffmtl's key: the padding added to the image so far. ``MultiTaskPad``
    (pipeline) adds its padding to it; ``MultiTaskDataPreProcessor`` adds
    its own, so after it ``padding_size`` is the *total* padding of the
    network input (training and test mode); the inference API adds the
    padding of images below the models' minimum size. mmseg's
    ``stack_batch`` writes it in training mode (its own padding only).
``img_padding_size``
    mmseg's test-mode key: ``SegDataPreProcessor`` (with a ``test_cfg``)
    records there only the padding **it** adds, on top of the input it
    received (which a pipeline may already have padded, recorded in
    ``padding_size``). ``MultiTaskDataPreProcessor`` writes the total there
    too, the same value as ``padding_size``.

So neither key always wins (:func:`image_padding`): when both are present
and equal (diffmtl's preprocessor) that is the total; when they differ
(mmseg's preprocessor padding an input whose earlier padding is in
``padding_size``) the image lies inside both paddings and the total is
their sum; a single key is the total. Reading ``img_padding_size`` first
(mmseg's ``postprocess_result``) loses the pipeline's padding, reading
``padding_size`` first loses mmseg's test padding. The one case the keys
cannot tell apart is mmseg's preprocessor adding exactly the padding
recorded before it (read as diffmtl's total, so half of it stays); diffmtl's
own preprocessor never produces it.
"""
from typing import Dict, Mapping, Optional, Sequence, Tuple, TypeVar

import cv2
import numpy as np
import torch

__all__ = [
    'CV2_INTERP', 'image_padding', 'unpad_window', 'unpad', 'resize_map',
    'cast_like'
]

Padding = Tuple[int, int, int, int]
MapT = TypeVar('MapT', np.ndarray, torch.Tensor)

#: cv2 flags of the interpolation names accepted by :func:`resize_map` and
#: the transforms.
CV2_INTERP: Dict[str, int] = {
    'nearest': cv2.INTER_NEAREST,
    'bilinear': cv2.INTER_LINEAR,
    'bicubic': cv2.INTER_CUBIC,
    'area': cv2.INTER_AREA,
}

#: dtypes cv2 interpolates (other than nearest) natively.
_CV2_DTYPES = tuple(
    np.dtype(t) for t in (np.uint8, np.uint16, np.int16, np.float32,
                          np.float64))


def _padding4(value) -> Optional[Padding]:
    if value is None:
        return None
    pad = tuple(int(p) for p in value)
    if len(pad) != 4:
        return None
    return pad  # type: ignore[return-value]


def image_padding(meta: Mapping) -> Optional[Padding]:
    """Total ``(left, right, top, bottom)`` padding of the network input.

    Reads ``padding_size`` and ``img_padding_size`` as the module docstring
    explains: equal or only one present -> that value; both present and
    different -> their sum (mmseg's ``SegDataPreProcessor`` padded an input
    whose earlier padding is in ``padding_size``).

    Returns:
        tuple or None: None when neither key is recorded.
    """
    total = _padding4(meta.get('padding_size'))
    test = _padding4(meta.get('img_padding_size'))
    if test is None:
        return total
    if total is None or total == test:
        return test
    return tuple(a + b for a, b in zip(total, test))  # type: ignore


def unpad_window(meta: Mapping,
                 padded_hw: Sequence[int]) -> Tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` slice bounds of the image inside its
    padded input of size ``padded_hw``.

    Uses :func:`image_padding`; without any padding recorded, the image is
    the top-left ``img_shape`` block (preprocessors pad bottom/right), the
    whole input without ``img_shape``.
    """
    h, w = int(padded_hw[0]), int(padded_hw[1])
    pad = image_padding(meta)
    if pad is not None:
        left, right, top, bottom = pad
        return top, h - bottom, left, w - right
    ih, iw = meta.get('img_shape', (h, w))[:2]
    return 0, min(int(ih), h), 0, min(int(iw), w)


def unpad(x: MapT, meta: Mapping,
          spatial_dims: Optional[Tuple[int, int]] = None) -> MapT:
    """Cut the image window (:func:`unpad_window`) out of a padded map.

    Args:
        x (ndarray | Tensor): The map at padded-input size.
        meta (Mapping): The sample's metainfo.
        spatial_dims (tuple[int, int], optional): The (H, W) dims. Default
            by the data contract: ``(-2, -1)`` for tensors ((C, H, W) /
            (N, C, H, W)), ``(0, 1)`` for numpy ((H, W[, C])).

    Returns:
        The cropped view (not a copy).
    """
    if spatial_dims is None:
        spatial_dims = (-2, -1) if isinstance(x, torch.Tensor) else (0, 1)
    dh, dw = (d % x.ndim for d in spatial_dims)
    top, bottom, left, right = unpad_window(meta, (x.shape[dh], x.shape[dw]))
    index = [slice(None)] * x.ndim
    index[dh] = slice(top, bottom)
    index[dw] = slice(left, right)
    return x[tuple(index)]


def cast_like(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast ``arr`` to ``dtype``, rounding and clipping for integer types."""
    if arr.dtype == dtype:
        return arr
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        arr = np.clip(np.rint(arr), info.min, info.max)
    return arr.astype(dtype)


def resize_map(arr: np.ndarray,
               size_hw: Sequence[int],
               interp: str = 'nearest') -> np.ndarray:
    """Resize an (H, W) or (H, W, C) map with cv2.

    Args:
        arr (np.ndarray): The map.
        size_hw (Sequence[int]): Target (height, width).
        interp (str): A key of :data:`CV2_INTERP`. Defaults to
            ``'nearest'``.

    Returns:
        np.ndarray: The resized map, same dtype and number of dims. dtypes
        cv2 cannot resize are computed in ``int32`` (nearest: ``int64``,
        ``bool``) or ``float64`` (other interpolations; integers rounded
        and clipped back).
    """
    if interp not in CV2_INTERP:
        raise ValueError(f'resize_map: unknown interpolation {interp!r}; '
                         f'expected one of {sorted(CV2_INTERP)}')
    h, w = int(size_hw[0]), int(size_hw[1])
    src = arr
    if interp == 'nearest':
        if arr.dtype in (np.int64, np.bool_):
            src = arr.astype(np.int32)
    elif arr.dtype not in _CV2_DTYPES:
        src = arr.astype(np.float64)
    out = cv2.resize(src, (w, h), interpolation=CV2_INTERP[interp])
    if arr.ndim == 3 and out.ndim == 2:  # cv2 drops a single channel
        out = out[..., None]
    if interp == 'nearest':
        return out.astype(arr.dtype, copy=False)
    return cast_like(out, arr.dtype)
