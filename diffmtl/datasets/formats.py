# Copyright (c) diffmtl contributors. All rights reserved.
"""Annotation file formats: one decoder per on-disk encoding.

Annotations are decoded by name (``results['ann_format'][task]``) with the
functions of :data:`ANN_DECODERS`; see :func:`register_ann_decoder` to add
one (a plugin kind registers its decoders there and names them in its
``TaskKind.formats``). Every decoder returns the contract of
:mod:`diffmtl.structures.task_spec`: ``uint8`` (H, W) for discrete tasks
with 255 = ignore, ``float32`` (H, W, 3) for normals with the zero vector
invalid, ``float32`` (H, W) for depth with 0 invalid.

Built-in decoders:

==========================  ===================================================
``label_png``               single-channel PNG of indices, 255 = ignore
                            (palette PNGs are read as indices, never RGB; a
                            16-bit PNG is accepted only when every value
                            fits 0..255, it is never wrapped).
``label_png_minus1``        as ``label_png`` minus 1 with 0 -> 255 (NYUD-v2
                            40-class ATRC PNGs).
``threshold_png``           8-bit grey PNG, 1 where v / 255 > 0.5 else 0
                            (PASCAL ``sal_distill``, ATRC NYUD ``edge``);
                            16-bit PNGs are refused.
``label_npy``               integer/float ``.npy`` (H, W) (or (1, H, W)),
                            -1 -> 255 (MTAN labels).
``normals_png``             8-bit RGB PNG, n = 2 v / 255 - 1 per channel,
                            (0, 0, 0) -> zero vector (invalid); greyscale,
                            palette, RGBA or 16-bit PNGs are refused.
``pascal_normals``          PASCAL ``normals_distill`` PNG (2 v / 255 - 1)
                            zeroed outside the valid PASCAL-Context classes of
                            ``results['context_label_path']`` (``LabelMap``).
``normals_npy``             float ``.npy`` (H, W, 3) or (3, H, W), zero vector
                            invalid.
``depth_png``               16-bit PNG, value / ``results['depth_scale']``
                            (default 1000, must be finite and > 0), 0 =
                            invalid; 8-bit PNGs are refused.
``depth_npy``               float ``.npy`` (H, W), (H, W, 1) or (1, H, W);
                            non-finite values -> 0 (invalid); integer
                            arrays (e.g. millimetres) are refused.
``pascal_parts_mat``        PASCAL-Part ``anno`` ``.mat`` -> 7 human-part
                            classes, all 255 without person parts.
``pascal_context_edge``     PASCAL-Context ``LabelMap`` ``.mat`` -> thinned
                            0/1 boundaries.
==========================  ===================================================

Every decoder raises a ``ValueError`` naming the file for input that would
otherwise be silently wrong, and so does
:class:`~diffmtl.datasets.transforms.LoadMultiTaskAnnotations` (which
calls them) for maps that do not fit the image or the task.

The file-reading helpers (:func:`read_bytes`, :func:`decode_bytes`,
:func:`read_npy`, ...) are shared with the image loader and the dataset
modules that register their own decoders.
"""
import io
import re
from typing import Callable, Dict, Optional

import mmcv
import mmengine.fileio as fileio
import numpy as np

from .pascal_utils import (decode_human_parts_mat, label_map_boundaries,
                           load_context_label_map, normals_valid_mask)

__all__ = [
    'ANN_DECODERS', 'register_ann_decoder', 'decode_annotation',
    'exif_orientation', 'error_text', 'read_bytes', 'decode_bytes',
    'read_npy', 'three_channel', 'show_values', 'open_pil', 'pil_mode_name',
    'png_to_normals'
]

#: Decoder name -> ``fn(path, results, backend_args) -> np.ndarray``.
ANN_DECODERS: Dict[str, Callable] = {}


def register_ann_decoder(name: str, force: bool = False) -> Callable:
    """Decorator adding an annotation decoder to :data:`ANN_DECODERS`."""

    def _register(fn: Callable) -> Callable:
        if name in ANN_DECODERS and not force:
            raise KeyError(f'annotation decoder {name!r} already exists')
        ANN_DECODERS[name] = fn
        return fn

    return _register


def read_bytes(path: str,
               backend_args: Optional[dict],
               what: str = 'annotation file') -> bytes:
    """The bytes of a file; a missing or empty file raises an error naming
    it as ``what``."""
    try:
        data = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError:
        raise FileNotFoundError(f'{what} not found: {path!r}') from None
    if not data:
        raise ValueError(
            f'{what} {path!r} is empty (0 bytes): it was not written '
            'completely (an interrupted copy, download or export?). '
            'Write or copy it again')
    return data


def error_text(err: BaseException) -> str:
    """``'Type: message'`` of a decoding error, without the in-memory
    buffer PIL names instead of the file."""
    text = re.sub(r'<_io\.BytesIO object at 0x[0-9a-fA-F]+>', 'the data',
                  str(err))
    return f'{type(err).__name__}: {text}'


def decode_bytes(data: bytes, path: str, what: str, **kwargs) -> np.ndarray:
    """:func:`mmcv.imfrombytes` with errors that name the file."""
    try:
        img = mmcv.imfrombytes(data, **kwargs)
    except Exception as err:  # noqa: BLE001  (cv2.error, PIL errors, ...)
        raise ValueError(f'cannot decode {what} {path!r} ({len(data)} '
                         f'bytes): {error_text(err)}. The file is damaged '
                         'or not an image; write or copy it again') from err
    if img is None:
        raise ValueError(f'cannot decode {what} {path!r} ({len(data)} '
                         'bytes): the file is damaged or not an image')
    return img


def exif_orientation(path: str,
                     backend_args: Optional[dict] = None) -> Optional[int]:
    """The EXIF orientation tag of an image file (None when absent or 1).

    diffmtl reads the stored pixel grid and ignores this tag, for images
    and annotations alike (see :class:`LoadMultiTaskImageFromFile`); it is
    read only to explain a size mismatch.
    """
    from PIL import Image
    try:
        data = fileio.get(path, backend_args=backend_args)
        with Image.open(io.BytesIO(data)) as img:
            value = img.getexif().get(0x0112)
    except Exception:  # noqa: BLE001  (no EXIF to report)
        return None
    return None if value in (None, 1) else int(value)


def _read_png(path: str, backend_args: Optional[dict], flag: str,
              backend: str, channel_order: str = 'bgr') -> np.ndarray:
    return decode_bytes(
        read_bytes(path, backend_args),
        path,
        'annotation file',
        flag=flag,
        backend=backend,
        channel_order=channel_order)


def open_pil(path: str, backend_args: Optional[dict]):
    """The PIL image of a PNG file (to check its mode / bit depth)."""
    from PIL import Image
    try:
        img = Image.open(io.BytesIO(read_bytes(path, backend_args)))
        img.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise ValueError(f'cannot decode image file {path!r}: '
                         f'{error_text(e)}') from None
    return img


#: PIL modes of PNGs by what they hold (for error messages).
_PIL_MODE_NAMES = {
    '1': '1-bit black-and-white',
    'L': '8-bit single-channel (greyscale)',
    'LA': '8-bit greyscale + alpha',
    'P': '8-bit palette',
    'PA': '8-bit palette + alpha',
    'I': '32-bit integer single-channel',
    'I;16': '16-bit single-channel',
    'I;16B': '16-bit single-channel',
    'F': '32-bit float single-channel',
    'RGB': '8-bit RGB',
    'RGBA': '8-bit RGBA (4 channels)',
}


def _article(words: str) -> str:
    """``'a 16-bit ...'`` / ``'an 8-bit ...'``."""
    return ('an ' if words[:1] in '8aeiou' and not words.startswith(
        ('1-', '16', '32')) else 'a ') + words


def pil_mode_name(mode: str) -> str:
    """``'an 8-bit RGB image, PIL mode 'RGB''`` (for error messages)."""
    return _article(f'{_PIL_MODE_NAMES.get(mode, "unusual")} image, PIL '
                    f'mode {mode!r}')


def show_values(values: np.ndarray, limit: int = 10) -> str:
    """``[258, 300, ...]`` of the first ``limit`` sorted unique values."""
    values = np.unique(values)
    shown = ', '.join(str(v) for v in values[:limit].tolist())
    more = f', ... ({values.size} distinct)' if values.size > limit else ''
    return f'[{shown}{more}]'


def _labels_to_uint8(arr: np.ndarray, path: str) -> np.ndarray:
    """Cast integer labels to uint8, refusing values that would wrap."""
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f'{path!r}: label PNG of dtype {arr.dtype}; '
                         'expected integer class ids')
    bad = arr[(arr < 0) | (arr > 255)]
    if bad.size:
        raise ValueError(
            f'{path!r}: {8 * arr.dtype.itemsize}-bit label PNG holds values '
            f'{show_values(bad)} outside 0..255; diffmtl label maps are '
            'uint8 (class ids 0..254, 255 = ignore) and these would wrap '
            'around (e.g. 258 -> 2). Re-encode the classes (or remap them) '
            'to 0..254')
    return arr.astype(np.uint8)


def read_npy(path: str,
             backend_args: Optional[dict],
             what: str = 'annotation file') -> np.ndarray:
    """The array of a ``.npy`` file (no pickles); errors name the file."""
    data = read_bytes(path, backend_args, what)
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError) as e:
        raise ValueError(f'cannot read numeric .npy {path!r} ({len(data)} '
                         f'bytes): {e}') from None


def _single_channel(arr: np.ndarray, path: str) -> np.ndarray:
    if arr.ndim == 3 and 1 in (arr.shape[0], arr.shape[-1]):
        arr = arr.reshape(arr.shape[1:] if arr.shape[0] == 1 else
                          arr.shape[:2])
    if arr.ndim != 2:
        raise ValueError(f'{path!r}: expected a single-channel map, got '
                         f'shape {arr.shape}')
    return arr


def three_channel(arr: np.ndarray, path: str) -> np.ndarray:
    """An (H, W, 3) or (3, H, W) array as (H, W, 3); otherwise a
    ValueError naming ``path``."""
    if arr.ndim == 3 and arr.shape[-1] != 3 and arr.shape[0] == 3:
        arr = arr.transpose(1, 2, 0)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f'{path!r}: expected an (H, W, 3) or (3, H, W) '
                         f'array, got shape {arr.shape}')
    return arr


@register_ann_decoder('label_png')
def _decode_label_png(path, results, backend_args=None):
    arr = _read_png(path, backend_args, 'unchanged', 'pillow')
    return _labels_to_uint8(_single_channel(arr, path), path)


@register_ann_decoder('label_png_minus1')
def _decode_label_png_minus1(path, results, backend_args=None):
    arr = _decode_label_png(path, results, backend_args).astype(np.int16) - 1
    arr[arr < 0] = 255
    return arr.astype(np.uint8)


@register_ann_decoder('threshold_png')
def _decode_threshold_png(path, results, backend_args=None):
    mode = open_pil(path, backend_args).mode
    if mode in ('I', 'I;16', 'I;16B', 'F'):
        raise ValueError(f'{path!r}: threshold_png expects an 8-bit PNG '
                         f'(v / 255 > 0.5), got {pil_mode_name(mode)}')
    arr = _read_png(path, backend_args, 'grayscale_ignore_orientation',
                    'pillow')
    arr = _single_channel(arr, path)
    return (arr.astype(np.float32) / 255. > 0.5).astype(np.uint8)


@register_ann_decoder('label_npy')
def _decode_label_npy(path, results, backend_args=None):
    arr = _single_channel(read_npy(path, backend_args), path)
    arr = np.round(arr).astype(np.int64)
    if arr.size and (arr.min() < -1 or arr.max() > 255):
        raise ValueError(f'{path!r}: label values must be in -1..255, got '
                         f'{arr.min()}..{arr.max()}')
    arr[arr < 0] = 255
    return arr.astype(np.uint8)


def png_to_normals(rgb: np.ndarray, zero_invalid: bool) -> np.ndarray:
    """(H, W, 3) float32 unit-range normals ``2 v / 255 - 1`` of 8-bit RGB
    values; with ``zero_invalid`` the pixels (0, 0, 0) become the zero
    vector (invalid)."""
    normals = rgb.astype(np.float32) * (2. / 255.) - 1.
    if zero_invalid:
        normals[(rgb == 0).all(axis=-1)] = 0.
    return normals


def _read_normals_rgb(path: str, backend_args: Optional[dict]) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a normals PNG; anything but 8-bit RGB is
    refused (a greyscale map would become x = y = z)."""
    img = open_pil(path, backend_args)
    if img.mode != 'RGB':
        raise ValueError(
            f'{path!r}: a normals PNG must be 8-bit RGB with 3 channels '
            f'(R, G, B = x, y, z), got {pil_mode_name(img.mode)}')
    return np.asarray(img)


@register_ann_decoder('normals_png')
def _decode_normals_png(path, results, backend_args=None):
    rgb = _read_normals_rgb(path, backend_args)
    return png_to_normals(rgb, zero_invalid=True)


@register_ann_decoder('pascal_normals')
def _decode_pascal_normals(path, results, backend_args=None):
    rgb = _read_normals_rgb(path, backend_args)
    normals = png_to_normals(rgb, zero_invalid=False)
    label_path = results.get('context_label_path')
    if label_path is None:
        raise KeyError(f'decoding {path!r} with pascal_normals needs '
                       'results["context_label_path"] (the LabelMap .mat)')
    valid = normals_valid_mask(load_context_label_map(label_path))
    if valid.shape != normals.shape[:2]:
        raise ValueError(f'{path!r} has size {normals.shape[:2]} but its '
                         f'LabelMap {label_path!r} has size {valid.shape}')
    normals[~valid] = 0.
    return normals


@register_ann_decoder('normals_npy')
def _decode_normals_npy(path, results, backend_args=None):
    arr = three_channel(read_npy(path, backend_args), path)
    arr = arr.astype(np.float32)
    arr[~np.isfinite(arr).all(axis=-1)] = 0.
    return arr


@register_ann_decoder('depth_png')
def _decode_depth_png(path, results, backend_args=None):
    raw = results.get('depth_scale', 1000.)
    try:
        scale = float(raw)
    except (TypeError, ValueError):
        scale = float('nan')
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f'{path!r}: depth_scale must be a finite number > '
                         f'0 (depth = value / depth_scale), got {raw!r}')
    arr = _single_channel(
        _read_png(path, backend_args, 'unchanged', 'cv2'), path)
    if arr.dtype != np.uint16:
        bits = 8 * arr.dtype.itemsize
        raise ValueError(
            f'{path!r}: depth_png expects a 16-bit single-channel PNG (value '
            f'/ depth_scale={scale:g}), got '
            f'{_article(f"{bits}-bit {arr.dtype}")} PNG; an '
            f'8-bit PNG holds at most {255 / scale:g} units and is usually '
            'a visualisation, not depth. Convert it to 16 bits or to .npy')
    return arr.astype(np.float32) / scale


@register_ann_decoder('depth_npy')
def _decode_depth_npy(path, results, backend_args=None):
    arr = _single_channel(read_npy(path, backend_args), path)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(
            f'{path!r}: depth_npy expects a floating-point array in '
            f'metres / dataset units, got dtype {arr.dtype} (integer depth '
            'is usually millimetres): convert it to float, or store it as '
            'a 16-bit PNG read by depth_png with its depth_scale')
    arr = arr.astype(np.float32)
    arr[~np.isfinite(arr)] = 0.
    return arr


@register_ann_decoder('pascal_parts_mat')
def _decode_pascal_parts(path, results, backend_args=None):
    shape = results.get('img_shape')
    return decode_human_parts_mat(path, shape=shape[:2] if shape else None)


@register_ann_decoder('pascal_context_edge')
def _decode_pascal_edge(path, results, backend_args=None):
    return label_map_boundaries(load_context_label_map(path))


def decode_annotation(fmt: str,
                      path: str,
                      results: Optional[dict] = None,
                      backend_args: Optional[dict] = None) -> np.ndarray:
    """Decode one annotation file with the decoder named ``fmt``."""
    if fmt not in ANN_DECODERS:
        raise KeyError(f'unknown annotation format {fmt!r} for {path!r}; '
                       f'known: {sorted(ANN_DECODERS)}')
    return ANN_DECODERS[fmt](path, results or {}, backend_args)
