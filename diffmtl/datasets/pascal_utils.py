# Copyright (c) diffmtl contributors. All rights reserved.
"""Decoding of the raw PASCAL-Context multi-task annotations.

The ATRC/ASTMT ``PASCALContext`` tarball stores three of its five tasks in
forms that need work before training:

* human parts as PASCAL-Part MATLAB files (``human_parts/<id>.mat``, key
  ``anno``), mapped here onto 7 classes (background + 6 parts);
* boundaries, derived from the PASCAL-Context ``LabelMap``
  (``pascal-context/trainval/<id>.mat``): ``|Laplacian| > 0`` followed by
  morphological thinning;
* the validity mask of the distilled normals, also from ``LabelMap``.

:func:`thin` is the boundary metric's thinning
(:func:`diffmtl.evaluation.functional.binary_thin`), whose output equals the
``skimage.morphology.thin`` that the reference code uses.
"""
from typing import Dict, Optional, Tuple

import numpy as np

from diffmtl.evaluation.functional.boundary import binary_thin

__all__ = [
    'HUMAN_PART_MAPPING', 'NORMALS_VALID_CONTEXT_IDS', 'PERSON_CLASS_ID',
    'load_mat', 'decode_human_parts_mat', 'load_context_label_map',
    'label_map_boundaries', 'thin', 'normals_valid_mask'
]

#: PASCAL VOC class index of ``person`` in PASCAL-Part ``anno`` objects.
PERSON_CLASS_ID = 15

#: PASCAL-Part person part names -> 6-part ids (0 is background).
HUMAN_PART_MAPPING: Dict[str, int] = {
    **{n: 1 for n in ('hair', 'head', 'lear', 'rear', 'lebrow', 'rebrow',
                      'leye', 'reye', 'mouth', 'nose')},
    **{n: 2 for n in ('neck', 'torso')},
    **{n: 3 for n in ('luarm', 'ruarm')},
    **{n: 4 for n in ('lhand', 'rhand', 'llarm', 'rlarm')},
    **{n: 5 for n in ('luleg', 'ruleg')},
    **{n: 6 for n in ('lfoot', 'rfoot', 'llleg', 'rlleg')},
}

#: PASCAL-Context class ids (1..459) on which the distilled normals are
#: kept; every other pixel is invalid (classes shared with NYU, minus
#: ``unknown``, plus tvmonitor = 427).
NORMALS_VALID_CONTEXT_IDS: Tuple[int, ...] = (
    3, 4, 6, 9, 10, 11, 13, 15, 17, 18, 22, 23, 29, 30, 33, 34, 36, 37, 38,
    39, 41, 43, 46, 49, 50, 51, 53, 55, 56, 59, 61, 62, 65, 66, 68, 69, 72,
    73, 78, 83, 84, 85, 87, 88, 95, 96, 101, 104, 105, 107, 111, 113, 115,
    122, 124, 135, 141, 142, 143, 146, 150, 154, 157, 158, 159, 165, 172,
    174, 181, 183, 184, 191, 193, 195, 197, 199, 202, 213, 215, 216, 219,
    220, 223, 225, 228, 230, 232, 233, 238, 239, 242, 243, 246, 250, 251,
    252, 255, 260, 261, 263, 269, 272, 273, 275, 281, 283, 284, 285, 286,
    287, 288, 290, 291, 292, 293, 295, 304, 307, 309, 310, 314, 315, 319,
    323, 329, 330, 331, 336, 342, 345, 349, 350, 351, 352, 355, 357, 368,
    370, 371, 374, 379, 380, 383, 384, 397, 401, 403, 405, 407, 408, 411,
    412, 413, 414, 417, 419, 421, 423, 427, 429, 430, 432, 440, 441, 442,
    443, 444, 446, 454, 457)


def load_mat(path: str, key: str) -> np.ndarray:
    """``scipy.io.loadmat(path)[key]`` with an error naming file and key."""
    from scipy.io import loadmat
    try:
        mat = loadmat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f'MATLAB file not found: {path!r}') from None
    except Exception as e:
        raise ValueError(f'cannot read MATLAB file {path!r}: {e}') from None
    if key not in mat:
        keys = [k for k in mat if not k.startswith('__')]
        raise KeyError(f'{path!r} has no variable {key!r} (it has {keys})')
    return mat[key]


def _scalar_str(value) -> str:
    arr = np.asarray(value).ravel()
    return str(arr[0]) if arr.size else ''


def _scalar_int(value) -> Optional[int]:
    arr = np.asarray(value).ravel()
    return int(arr[0]) if arr.size else None


def decode_human_parts_mat(path: str,
                           shape: Optional[Tuple[int, int]] = None,
                           ignore_index: int = 255) -> np.ndarray:
    """Decode a PASCAL-Part ``anno`` file into a 7-class human-parts map.

    Layout read (field positions, as in the published files):
    ``anno[0][0][1]`` is the array of objects; per object field 1 is the
    class index (15 = person), field 2 the instance mask and field 3 the
    array of parts (empty when the object has no part annotation); per part
    field 0 is the part name and field 1 its binary mask. Parts of every
    person are written in file order with :data:`HUMAN_PART_MAPPING` ids,
    later parts overwriting earlier ones.

    Args:
        path (str): ``human_parts/<id>.mat``.
        shape (tuple, optional): (H, W) used when the file holds no object
            mask to take the size from.
        ignore_index (int): Fill value of an image without any person part.

    Returns:
        np.ndarray: uint8 (H, W) map with 0 background and 1..6 parts; all
        ``ignore_index`` when the image has no person part.
    """
    anno = load_mat(path, 'anno')
    try:
        objects = np.asarray(anno[0][0][1]).ravel()
    except (IndexError, TypeError, ValueError):
        raise ValueError(f'{path!r}: unexpected `anno` layout (expected '
                         'anno[0][0][1] to be the object array)') from None
    out = None
    any_part = False
    for obj in objects:
        mask = np.asarray(obj[2])
        if out is None and mask.ndim == 2 and mask.size:
            out = np.zeros(mask.shape, dtype=np.uint8)
        if _scalar_int(obj[1]) != PERSON_CLASS_ID:
            continue
        for part in np.asarray(obj[3]).ravel():
            name = _scalar_str(part[0])
            if name not in HUMAN_PART_MAPPING:
                raise ValueError(f'{path!r}: unknown person part {name!r}; '
                                 f'known: {sorted(HUMAN_PART_MAPPING)}')
            pmask = np.asarray(part[1]).astype(bool)
            if out is None:
                out = np.zeros(pmask.shape, dtype=np.uint8)
            if pmask.shape != out.shape:
                raise ValueError(f'{path!r}: part {name!r} mask has shape '
                                 f'{pmask.shape}, expected {out.shape}')
            out[pmask] = HUMAN_PART_MAPPING[name]
            any_part = any_part or bool(pmask.any())
    if out is None:
        if shape is None:
            raise ValueError(f'{path!r} holds no object mask to take the '
                             'image size from; pass shape=(H, W)')
        out = np.zeros(shape, dtype=np.uint8)
    if not any_part:
        out[...] = ignore_index
    return out


def load_context_label_map(path: str) -> np.ndarray:
    """Read ``LabelMap`` (H, W) PASCAL-Context class ids as int32."""
    label = np.asarray(load_mat(path, 'LabelMap'))
    if label.ndim != 2:
        raise ValueError(f'{path!r}: LabelMap must be 2-D, got shape '
                         f'{label.shape}')
    return label.astype(np.int32)


def _laplacian(label: np.ndarray) -> np.ndarray:
    """4-neighbour Laplacian with reflect-101 borders (cv2 ``ksize=1``)."""
    lab = label.astype(np.float64)
    p = np.pad(lab, 1, mode='reflect') if min(lab.shape) > 1 else np.pad(
        lab, 1, mode='edge')
    return (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] -
            4 * lab)


def thin(mask: np.ndarray, max_iter: Optional[int] = None) -> np.ndarray:
    """Thin a binary mask to 1-pixel-wide curves: the package's one
    thinning, :func:`diffmtl.evaluation.functional.binary_thin` (equal to
    the ``skimage.morphology.thin`` the reference code uses).

    Raises:
        ValueError: If ``mask`` is not 2-D.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'thin expects a 2-D mask, got shape {mask.shape}')
    return binary_thin(mask, max_iter)


def label_map_boundaries(label: np.ndarray) -> np.ndarray:
    """Boundary GT of a PASCAL-Context ``LabelMap``.

    ``|Laplacian(label)| > 0`` (4-neighbour kernel, reflect-101 border, as
    OpenCV's default) thinned with :func:`thin`.

    Returns:
        np.ndarray: uint8 (H, W) map of 0/1.
    """
    edge = np.abs(_laplacian(np.asarray(label))) > 0
    return thin(edge).astype(np.uint8)


def normals_valid_mask(label: np.ndarray) -> np.ndarray:
    """bool (H, W): pixels whose ``LabelMap`` class keeps its normal."""
    return np.isin(np.asarray(label), NORMALS_VALID_CONTEXT_IDS)
