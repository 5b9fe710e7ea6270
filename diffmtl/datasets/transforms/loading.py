# Copyright (c) diffmtl contributors. All rights reserved.
"""Loading of the image and of every task's annotation of a sample.

Image channel order: like mmcv's ``LoadImageFromFile``, ``results['img']``
is **BGR** (H, W, 3). PNG/JPEG files give ``uint8`` (``float32`` with
``to_float32=True``); MTAN ``.npy`` images (RGB floats in [0, 1]) give
``float32`` BGR scaled to 0..255, so every image enters the pipeline in the
same range and order and the data preprocessor's ``bgr_to_rgb=True`` turns
it into RGB for the network.

Annotations are decoded by name (``results['ann_format'][task]``) with the
decoders of :mod:`diffmtl.datasets.formats` (:data:`ANN_DECODERS`, see
:func:`register_ann_decoder` to add one); :class:`LoadMultiTaskAnnotations`
then checks each map against the image and the task.
"""
import os.path as osp
from typing import Optional

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from diffmtl.registry import TRANSFORMS
from diffmtl.structures import get_task_spec
from ..formats import (ANN_DECODERS, decode_annotation, decode_bytes,
                       error_text, exif_orientation, read_bytes, read_npy,
                       register_ann_decoder, show_values, three_channel)

__all__ = [
    'LoadMultiTaskImageFromFile', 'LoadMultiTaskAnnotations', 'ANN_DECODERS',
    'register_ann_decoder', 'decode_annotation', 'apply_label_map',
    'exif_orientation', 'error_text'
]


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
        arr = three_channel(
            read_npy(path, self.backend_args, 'image file'), path)
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
            img = decode_bytes(
                read_bytes(path, self.backend_args, 'image file'),
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
    would wrap, greyscale normals, 8-bit depth PNGs, ...), see
    :mod:`diffmtl.datasets.formats`.

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
                f'{show_values(bad)} outside [0, {n}) that are not the '
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
