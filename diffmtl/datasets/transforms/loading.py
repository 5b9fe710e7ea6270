# Copyright (c) diffmtl contributors. All rights reserved.
"""Loading of the image and of every task's annotation of a sample.

Image channel order: like mmcv's ``LoadImageFromFile``, ``results['img']``
is **BGR** (H, W, 3). PNG/JPEG files give ``uint8`` (``float32`` with
``to_float32=True``); MTAN ``.npy`` images (RGB floats in [0, 1]) give
``float32`` BGR scaled to 0..255, so every image enters the pipeline in the
same range and order and the data preprocessor's ``bgr_to_rgb=True`` turns
it into RGB for the network.

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

Every decoder and :class:`LoadMultiTaskAnnotations` raise a ``ValueError``
naming the file (and the task) for input that would otherwise be silently
wrong: see :class:`LoadMultiTaskAnnotations` for the checks.
"""
import io
import os.path as osp
import re
from typing import Callable, Dict, Optional

import cv2
import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import BaseTransform

from diffmtl.registry import TRANSFORMS
from diffmtl.structures import get_task_spec
from ..pascal_utils import (decode_human_parts_mat, label_map_boundaries,
                            load_context_label_map, normals_valid_mask)

__all__ = [
    'LoadMultiTaskImageFromFile', 'LoadMultiTaskAnnotations', 'ANN_DECODERS',
    'register_ann_decoder', 'decode_annotation', 'apply_label_map',
    'exif_orientation', 'error_text'
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


def _read_bytes(path: str,
                backend_args: Optional[dict],
                what: str = 'annotation file') -> bytes:
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


def _decode_bytes(data: bytes, path: str, what: str, **kwargs) -> np.ndarray:
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
    return _decode_bytes(
        _read_bytes(path, backend_args),
        path,
        'annotation file',
        flag=flag,
        backend=backend,
        channel_order=channel_order)


def _open_pil(path: str, backend_args: Optional[dict]):
    """The PIL image of a PNG file (to check its mode / bit depth)."""
    from PIL import Image
    try:
        img = Image.open(io.BytesIO(_read_bytes(path, backend_args)))
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


def _mode_name(mode: str) -> str:
    return _article(f'{_PIL_MODE_NAMES.get(mode, "unusual")} image, PIL '
                    f'mode {mode!r}')


def _show_values(values: np.ndarray, limit: int = 10) -> str:
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
            f'{_show_values(bad)} outside 0..255; diffmtl label maps are '
            'uint8 (class ids 0..254, 255 = ignore) and these would wrap '
            'around (e.g. 258 -> 2). Re-encode the classes (or remap them) '
            'to 0..254')
    return arr.astype(np.uint8)


def _read_npy(path: str,
              backend_args: Optional[dict],
              what: str = 'annotation file') -> np.ndarray:
    data = _read_bytes(path, backend_args, what)
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


def _three_channel(arr: np.ndarray, path: str) -> np.ndarray:
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
    mode = _open_pil(path, backend_args).mode
    if mode in ('I', 'I;16', 'I;16B', 'F'):
        raise ValueError(f'{path!r}: threshold_png expects an 8-bit PNG '
                         f'(v / 255 > 0.5), got {_mode_name(mode)}')
    arr = _read_png(path, backend_args, 'grayscale_ignore_orientation',
                    'pillow')
    arr = _single_channel(arr, path)
    return (arr.astype(np.float32) / 255. > 0.5).astype(np.uint8)


@register_ann_decoder('label_npy')
def _decode_label_npy(path, results, backend_args=None):
    arr = _single_channel(_read_npy(path, backend_args), path)
    arr = np.round(arr).astype(np.int64)
    if arr.size and (arr.min() < -1 or arr.max() > 255):
        raise ValueError(f'{path!r}: label values must be in -1..255, got '
                         f'{arr.min()}..{arr.max()}')
    arr[arr < 0] = 255
    return arr.astype(np.uint8)


def _png_to_normals(rgb: np.ndarray, zero_invalid: bool) -> np.ndarray:
    normals = rgb.astype(np.float32) * (2. / 255.) - 1.
    if zero_invalid:
        normals[(rgb == 0).all(axis=-1)] = 0.
    return normals


def _read_normals_rgb(path: str, backend_args: Optional[dict]) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a normals PNG; anything but 8-bit RGB is
    refused (a greyscale map would become x = y = z)."""
    img = _open_pil(path, backend_args)
    if img.mode != 'RGB':
        raise ValueError(
            f'{path!r}: a normals PNG must be 8-bit RGB with 3 channels '
            f'(R, G, B = x, y, z), got {_mode_name(img.mode)}')
    return np.asarray(img)


@register_ann_decoder('normals_png')
def _decode_normals_png(path, results, backend_args=None):
    rgb = _read_normals_rgb(path, backend_args)
    return _png_to_normals(rgb, zero_invalid=True)


@register_ann_decoder('pascal_normals')
def _decode_pascal_normals(path, results, backend_args=None):
    rgb = _read_normals_rgb(path, backend_args)
    normals = _png_to_normals(rgb, zero_invalid=False)
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
    arr = _three_channel(_read_npy(path, backend_args), path)
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
    arr = _single_channel(_read_npy(path, backend_args), path)
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


def apply_label_map(spec, arr: np.ndarray, results: dict) -> np.ndarray:
    """mmseg's ``results['label_map']`` applied to the map of ``spec``.

    Only the task with ``spec.mmseg_classes`` (the task whose classes are
    mmseg's ``metainfo['classes']``) is remapped; any other map, or a
    missing / empty ``label_map``, is returned as it is.
    """
    label_map = results.get('label_map')
    if not (spec.mmseg_classes and label_map):
        return arr
    remapped = arr.copy()
    for old, new in label_map.items():
        remapped[arr == old] = new
    return remapped


@TRANSFORMS.register_module()
class LoadMultiTaskImageFromFile(BaseTransform):
    """Load the image of a multi-task sample (file or MTAN ``.npy``).

    Required Keys:

    - img_path
    - img_format (optional): ``'file'`` (PNG/JPEG via mmcv) or ``'npy'``
      (RGB float array in [0, 1], (H, W, 3) or (3, H, W)); defaults by the
      suffix of ``img_path``.

    Added Keys:

    - img: (H, W, 3) **BGR**; uint8 from files (float32 with
      ``to_float32``), float32 in 0..255 from ``.npy``.
    - img_shape: (H, W)
    - ori_shape: (H, W)

    EXIF orientation: the image is read as stored, its EXIF orientation
    tag is **ignored** (``color_type='color_ignore_orientation'``), like
    every annotation decoder does, so a JPEG with a rotation tag stays
    aligned with maps annotated on its stored pixel grid. A map annotated
    on the rotated view has the transposed size and is refused with a
    message naming the tag.

    A file that is empty (0 bytes) or cannot be decoded raises a
    ``ValueError`` naming it.

    Args:
        to_float32 (bool): Cast file images to float32. Defaults to False.
        color_type (str): ``flag`` of :func:`mmcv.imfrombytes`. Defaults
            to ``'color_ignore_orientation'``; ``'color'`` applies the
            EXIF rotation (then the annotations must follow the rotated
            view).
        imdecode_backend (str): Backend of :func:`mmcv.imfrombytes`.
        npy_scale (float): Factor applied to ``.npy`` images (255 for MTAN
            [0, 1] images; 1 for arrays already in 0..255).
        backend_args (dict, optional): mmengine file backend arguments.
    """

    def __init__(self,
                 to_float32: bool = False,
                 color_type: str = 'color_ignore_orientation',
                 imdecode_backend: str = 'cv2',
                 npy_scale: float = 255.,
                 backend_args: Optional[dict] = None) -> None:
        self.to_float32 = to_float32
        self.color_type = color_type
        self.imdecode_backend = imdecode_backend
        self.npy_scale = float(npy_scale)
        self.backend_args = backend_args.copy() if backend_args else None

    def _load_npy(self, path: str) -> np.ndarray:
        arr = _three_channel(
            _read_npy(path, self.backend_args, 'image file'), path)
        arr = arr.astype(np.float32)
        if self.npy_scale == 255. and arr.size and (arr.min() < -1e-3
                                                    or arr.max() > 1.001):
            raise ValueError(
                f'{path!r}: .npy image values {arr.min():.3f}..'
                f'{arr.max():.3f} are not in [0, 1]; set npy_scale=1.0 if '
                'they are already 0..255')
        return np.ascontiguousarray(arr[..., ::-1] * self.npy_scale)

    def transform(self, results: dict) -> dict:
        path = results['img_path']
        fmt = results.get('img_format') or (
            'npy' if osp.splitext(path)[1].lower() == '.npy' else 'file')
        if fmt == 'npy':
            img = self._load_npy(path)
        elif fmt == 'file':
            img = _decode_bytes(
                _read_bytes(path, self.backend_args, 'image file'),
                path,
                'image file',
                flag=self.color_type,
                backend=self.imdecode_backend)
            if self.to_float32:
                img = img.astype(np.float32)
        else:
            raise ValueError(f'unknown img_format {fmt!r} for {path!r}; '
                             "expected 'file' or 'npy'")
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(to_float32={self.to_float32}, '
                f"color_type='{self.color_type}', "
                f"imdecode_backend='{self.imdecode_backend}', "
                f'npy_scale={self.npy_scale}, '
                f'backend_args={self.backend_args})')


@TRANSFORMS.register_module()
class LoadMultiTaskAnnotations(BaseTransform):
    """Decode every task's map; fill unlabelled tasks with their pad value.

    For each task of ``results['tasks']`` the map is decoded from
    ``results['ann_paths'][task]`` with the decoder
    ``results['ann_format'][task]`` when ``task_mask`` marks the task as
    labelled, and otherwise materialised at image size by the kind's
    :meth:`~diffmtl.structures.TaskKind.fill_map` (the spec's
    ``pad_value``: 255 for discrete tasks, zeros for normals and depth), so
    all fields stay aligned through the geometric transforms.

    Checks (each a ``ValueError`` naming the task and the file):

    * the map has the image's size. With ``resize_mismatched=True`` a map
      of another size is resized to it instead (nearest; bicubic for
      multi-channel maps such as normals, as the reference loaders do); a
      map of exactly the
      transposed size (W, H) is refused either way, as it is almost
      certainly rotated, not rescaled;
    * the kind's :meth:`~diffmtl.structures.TaskKind.check_map` accepts
      the decoded map (depth: no negative value);
    * discrete tasks hold only values in ``[0, n_classes)`` or the ignore
      value (255); the offending values are listed. ``n_classes`` is
      the kind's :meth:`~diffmtl.structures.TaskKind.num_labels` of
      ``results['num_classes'][task]`` (set by the diffmtl datasets from
      their classes): that number for segmentation-kind tasks (else the
      spec's default classes), 2 for saliency and boundary tasks; the
      check runs after ``label_map``.

    The decoders check the encodings themselves (16-bit label PNGs that
    would wrap, greyscale normals, 8-bit depth PNGs, ...), see the module
    docstring.

    Required Keys:

    - img_shape
    - tasks (tuple[str])
    - task_mask (tuple[bool])
    - ann_paths (dict[str, str | None])
    - ann_format (dict[str, str])
    - label_map (optional): mmseg class remapping, applied to the task with
      ``mmseg_classes`` (``semseg``).
    - num_classes (optional): ``{task: n}`` of segmentation-kind tasks.
    - depth_scale, context_label_path (optional decode options)

    Modified Keys:

    - seg_fields: every task's ``spec.results_key`` is appended.
    - tasks, task_mask: normalised to tuples.

    Added Keys:

    - ``spec.results_key`` of every task (``gt_seg_map``, ``gt_parts_map``,
      ``gt_sal_map``, ``gt_normal_map``, ``gt_edge_map``, ``gt_depth_map``).

    Args:
        resize_mismatched (bool): Resize an annotation whose size differs
            from the image's instead of raising. Defaults to False: none of
            the reference layouts needs it, and a silently rescaled map is
            usually the wrong file.
        backend_args (dict, optional): mmengine file backend arguments.
    """

    def __init__(self,
                 resize_mismatched: bool = False,
                 backend_args: Optional[dict] = None) -> None:
        self.resize_mismatched = bool(resize_mismatched)
        self.backend_args = backend_args.copy() if backend_args else None

    def _check(self, spec, arr: np.ndarray, path: str, shape,
               img_path=None) -> np.ndarray:
        multi = spec.gt_channels > 1
        if arr.ndim != (3 if multi else 2) or (
                multi and arr.shape[-1] != spec.gt_channels):
            raise ValueError(f'task {spec.name!r}: decoding {path!r} gave '
                             f'shape {arr.shape}, expected '
                             f'{spec.gt_channels} channel(s)')
        arr = arr.astype(spec.task_kind.gt_dtype(spec), copy=False)
        h, w = shape[:2]
        got = tuple(arr.shape[:2])
        if got != (h, w):
            where = (f'task {spec.name!r}: annotation {path!r} is '
                     f'{got[0]}x{got[1]} (HxW) but its image '
                     f'{img_path!r} is {h}x{w}')
            orientation = (exif_orientation(img_path, self.backend_args)
                           if img_path else None)
            if got == (w, h) and orientation is not None:
                raise ValueError(
                    f'{where} (as stored). The image has the EXIF '
                    f'orientation tag {orientation} (a rotated view), '
                    'which diffmtl ignores for images and annotations '
                    'alike; the annotation seems to follow the rotated '
                    'view. Rotate the image pixels and drop the tag (e.g. '
                    'PIL.ImageOps.exif_transpose, then save), or rotate '
                    'the annotation to the stored image')
            if got == (w, h):
                raise ValueError(
                    f'{where}: the annotation is transposed (rotated by 90 '
                    'degrees?); it is never resized. Fix the file')
            if not self.resize_mismatched:
                raise ValueError(
                    f'{where}. Fix the file, or set LoadMultiTaskAnnotations'
                    '(resize_mismatched=True) to resize such maps to the '
                    'image (nearest; bicubic for multi-channel maps such as '
                    'normals)')
            interp = cv2.INTER_CUBIC if multi else cv2.INTER_NEAREST
            arr = cv2.resize(arr, (w, h), interpolation=interp)
        return arr

    @staticmethod
    def _num_classes(spec, results: dict) -> Optional[int]:
        n = (results.get('num_classes') or {}).get(spec.name)
        return spec.task_kind.num_labels(spec,
                                         None if n is None else int(n))

    def _check_labels(self, spec, arr: np.ndarray, path: str,
                      results: dict) -> None:
        n = self._num_classes(spec, results)
        if n is None:
            return
        ignore = spec.ignore_index
        bad = arr[(arr >= n) & (arr != ignore)] if ignore is not None \
            else arr[arr >= n]
        if bad.size:
            raise ValueError(
                f'task {spec.name!r}: {path!r} holds label values '
                f'{_show_values(bad)} outside [0, {n}) that are not the '
                f'ignore value {ignore} (image '
                f'{results.get("img_path")!r}). Fix the annotation, or the '
                f'number of classes of {spec.name!r} (task_classes) if it '
                'is wrong')

    def transform(self, results: dict) -> dict:
        tasks = tuple(results['tasks'])
        mask = tuple(bool(m) for m in results['task_mask'])
        if len(tasks) != len(mask):
            raise ValueError(f'{results.get("img_path")!r}: tasks {tasks} '
                             f'and task_mask {mask} differ in length')
        shape = results['img_shape']
        ann_paths = results.get('ann_paths', {})
        ann_format = results.get('ann_format', {})
        seg_fields = results.setdefault('seg_fields', [])
        for task, labelled in zip(tasks, mask):
            spec = get_task_spec(task)
            if labelled:
                path = ann_paths.get(task)
                fmt = ann_format.get(task)
                if path is None or fmt is None:
                    raise KeyError(
                        f'{results.get("img_path")!r}: task {task!r} is '
                        'labelled but ann_paths/ann_format have no entry '
                        'for it')
                arr = decode_annotation(fmt, path, results,
                                        self.backend_args)
                arr = self._check(spec, arr, path, shape,
                                  results.get('img_path'))
                arr = apply_label_map(spec, arr, results)
                if spec.discrete:
                    self._check_labels(spec, arr, path, results)
                spec.task_kind.check_map(spec, arr, path)
            else:
                arr = spec.task_kind.fill_map(spec, shape[:2])
            results[spec.results_key] = arr
            if spec.results_key not in seg_fields:
                seg_fields.append(spec.results_key)
        results['tasks'] = tasks
        results['task_mask'] = mask
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'resize_mismatched={self.resize_mismatched}, '
                f'backend_args={self.backend_args})')
