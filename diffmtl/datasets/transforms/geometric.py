# Copyright (c) diffmtl contributors. All rights reserved.
"""Geometric transforms that keep every task's map aligned with the image.

Each transform walks ``results['seg_fields']`` (filled by
``LoadMultiTaskAnnotations``) and reads from the owning
:class:`~diffmtl.structures.TaskSpec` how a map is resized (``interp``) and
padded (``pad_value``), and asks the spec's
:class:`~diffmtl.structures.TaskKind` whether its values change with the
geometry: :meth:`~diffmtl.structures.TaskKind.zoom_map` on a zoom (depth is
divided by the zoom factor), :meth:`~diffmtl.structures.TaskKind.flip_map`
on a flip (the in-plane components of normal vectors change sign). Nothing
branches on a task name or a kind.

Size conventions follow mmseg: ``scale`` of resizes is ``(w, h)``;
``crop_size`` and pad ``size`` are ``(h, w)`` like mmseg's ``RandomCrop``
and ``SegDataPreProcessor``.
"""
import math
from numbers import Number
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from diffmtl.registry import TRANSFORMS
from diffmtl.structures import FLIP_DIRECTIONS
from .field_utils import (cast_like, check_interp, check_label_interp,
                          field_spec, iter_seg_fields, pad_map, resize_map,
                          resolve_interp)

__all__ = [
    'MultiTaskRandomResize', 'MultiTaskRandomCrop', 'MultiTaskPad',
    'MultiTaskRandomFlip', 'MultiTaskRandomScaleCrop'
]


def _pair(value: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    if isinstance(value, Number):
        return int(value), int(value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f'{name} must be an int or a pair, got {value}')
    return value


def _scale_values_flag(scale_depth: bool, scale_values: Optional[bool],
                       where: str) -> bool:
    """The effective value-scaling switch of a zooming transform.

    ``scale_values`` is the general name, ``scale_depth`` the historical
    one (depth was the only built-in kind whose values change on a zoom);
    both switch :meth:`~diffmtl.structures.TaskKind.zoom_map` for every
    kind. ``scale_values`` wins when given; contradicting an explicit
    ``scale_depth=False`` is an error.
    """
    if scale_values is None:
        return bool(scale_depth)
    if not scale_depth and scale_values:
        raise ValueError(f'{where}: scale_depth=False and scale_values=True '
                         'contradict each other (both switch the value '
                         'scaling of every kind on a zoom); give one')
    return bool(scale_values)


def _resample_seg_fields(results: dict, transform: str,
                         label_interp: Dict[str, str],
                         resample: Callable[[np.ndarray, str], np.ndarray],
                         zoom: Optional[float]) -> None:
    """Resample every task map of ``results`` in place.

    Each map gets its spec's interpolation (or the ``label_interp``
    override, validated) and is replaced by ``resample(map, interp)``;
    its values then go through the kind's
    :meth:`~diffmtl.structures.TaskKind.zoom_map` with ``zoom`` (depth is
    divided by it, kinds with ``zoom_exponent == 0`` are left alone)
    unless ``zoom`` is None.

    Args:
        results (dict): The transform's results, modified in place.
        transform (str): Name of the calling transform, used in errors.
        label_interp (dict): ``{task name or kind: interp}`` overrides.
        resample (callable): ``(map, interp) -> new map``.
        zoom (float, optional): Zoom factor of the image (> 1 zooms in);
            None leaves every map's values as resampled.
    """
    for key, spec in iter_seg_fields(results, transform):
        interp = check_interp(resolve_interp(spec, label_interp),
                              f'{transform} ({spec.name})')
        out = resample(results[key], interp)
        if zoom is not None:
            out = spec.task_kind.zoom_map(spec, out, zoom)
        results[key] = out


@TRANSFORMS.register_module()
class MultiTaskRandomResize(BaseTransform):
    """Resize the image and every task map by a random (or fixed) scale.

    Three ways to choose the output size:

    * ``scale=None, ratio_range=(lo, hi)``: the reference's
      ``RandomScaling``. ``s ~ U(lo, hi)`` and the output is
      ``(int(H * s), int(W * s))``.
    * ``scale=(w, h)``: a fixed target, optionally multiplied by
      ``s ~ U(ratio_range)`` (as mmseg's ``RandomResize``); with
      ``keep_ratio`` the image is rescaled to fit inside the target.
    * ``scale=[(w1, h1), (w2, h2), ...]``: one target chosen uniformly.

    The image is resized with ``interpolation``; every task map with its
    spec's ``interp`` (``'nearest'`` for all built-in tasks, as the
    reference, so normals are *not* renormalised) unless ``label_interp``
    overrides it by task name or kind. The values of every map then go
    through its kind's :meth:`~diffmtl.structures.TaskKind.zoom_map` with
    the zoom factor (the sampled ``s`` in the first mode, otherwise the
    geometric mean of the width and height factors): depth-kind maps are
    divided by it, as objects look ``s`` times closer after zooming in by
    ``s``; class ids, probabilities and normals are left alone.

    Required Keys:

    - img
    - seg_fields and the keys it lists

    Modified Keys:

    - img, img_shape
    - every key of seg_fields

    Added Keys:

    - scale (w, h), scale_factor (w_scale, h_scale), keep_ratio

    Args:
        scale (tuple | list[tuple], optional): Target ``(w, h)`` or choices
            of it. Defaults to None (relative to the image's own size).
        ratio_range (tuple[float, float], optional): Range of the random
            ratio. Defaults to None.
        keep_ratio (bool): Keep the aspect ratio when a target ``scale`` is
            given. Defaults to True.
        interpolation (str): Image interpolation. Defaults to 'bilinear'.
        label_interp (dict, optional): ``{task name or kind: interp}``
            overriding the specs' ``interp``. Defaults to None.
        scale_depth (bool): Scale the values of the maps with the zoom
            (each kind's ``zoom_map``: depth divided by the factor). The
            name is historical: it switches the value scaling of *every*
            kind, so ``scale_depth=False`` leaves all values as resampled.
            Defaults to True.
        scale_values (bool, optional): General name of ``scale_depth``;
            wins over it when given. Defaults to None.
    """

    def __init__(self,
                 scale: Optional[Union[Sequence[int],
                                       Sequence[Sequence[int]]]] = None,
                 ratio_range: Optional[Tuple[float, float]] = None,
                 keep_ratio: bool = True,
                 interpolation: str = 'bilinear',
                 label_interp: Optional[Dict[str, str]] = None,
                 scale_depth: bool = True,
                 scale_values: Optional[bool] = None) -> None:
        name = type(self).__name__
        if scale is None and ratio_range is None:
            raise ValueError(f'{name}: give scale, ratio_range or both')
        self.scales = None
        if scale is not None:
            if isinstance(scale[0], Number):
                self.scales = [_pair(scale, f'{name}.scale')]
            else:
                self.scales = [_pair(s, f'{name}.scale') for s in scale]
                if ratio_range is not None:
                    raise ValueError(f'{name}: a list of scales cannot be '
                                     'combined with ratio_range')
        if ratio_range is not None:
            lo, hi = (float(r) for r in ratio_range)
            if not 0 < lo <= hi:
                raise ValueError(f'{name}: ratio_range must satisfy 0 < lo '
                                 f'<= hi, got {ratio_range}')
            ratio_range = (lo, hi)
        self.ratio_range = ratio_range
        self.keep_ratio = keep_ratio
        self.interpolation = check_interp(interpolation, name)
        self.label_interp = check_label_interp(label_interp, name)
        self.scale_values = _scale_values_flag(scale_depth, scale_values,
                                               name)
        self.scale_depth = self.scale_values  # the historical name

    @cache_randomness
    def _sample(self) -> Tuple[Optional[Tuple[int, int]], Optional[float]]:
        """Pick the target scale (or None) and the ratio (or None)."""
        target = None
        if self.scales is not None:
            target = self.scales[np.random.randint(len(self.scales))]
        ratio = None
        if self.ratio_range is not None:
            ratio = float(np.random.uniform(*self.ratio_range))
        return target, ratio

    def _new_size(self, h: int, w: int, target, ratio) -> Tuple[int, int]:
        """Output (h, w) for an (h, w) input."""
        if target is None:
            return max(int(h * ratio), 1), max(int(w * ratio), 1)
        tw, th = target
        if ratio is not None:
            tw, th = int(tw * ratio), int(th * ratio)
        if self.keep_ratio:
            new_w, new_h = mmcv.rescale_size((w, h), (tw, th))
            return max(int(new_h), 1), max(int(new_w), 1)
        return max(th, 1), max(tw, 1)

    def transform(self, results: dict) -> dict:
        name = type(self).__name__
        img = results['img']
        h, w = img.shape[:2]
        target, ratio = self._sample()
        new_h, new_w = self._new_size(h, w, target, ratio)
        w_scale, h_scale = new_w / w, new_h / h
        zoom = ratio if target is None else math.sqrt(w_scale * h_scale)

        results['img'] = resize_map(img, (new_h, new_w), self.interpolation)
        _resample_seg_fields(
            results, name, self.label_interp,
            lambda arr, interp: resize_map(arr, (new_h, new_w), interp),
            zoom if self.scale_values else None)
        results['img_shape'] = (new_h, new_w)
        results['scale'] = (new_w, new_h)
        results['scale_factor'] = (w_scale, h_scale)
        results['keep_ratio'] = self.keep_ratio
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale={self.scales}, '
                f'ratio_range={self.ratio_range}, '
                f'keep_ratio={self.keep_ratio}, '
                f'interpolation={self.interpolation!r}, '
                f'label_interp={self.label_interp}, '
                f'scale_depth={self.scale_depth})')


@TRANSFORMS.register_module()
class MultiTaskRandomCrop(BaseTransform):
    """Crop the image and every task map at one random window.

    Offsets are uniform in ``[0, max(dim - crop, 0)]``; a side shorter
    than the crop is kept whole (so the output may be smaller than
    ``crop_size``: follow with :class:`MultiTaskPad`). With
    ``cat_max_ratio < 1`` and ``results[cat_key]`` present, a window is
    accepted only if its map holds more than one label other than
    ``ignore_index`` and the most frequent one covers less than
    ``cat_max_ratio`` of those pixels; up to ``max_tries`` windows are
    checked and the next one is then used unchecked (reference and mmseg
    behaviour). When the whole map has fewer than two labels no window can
    pass, so the check is skipped.

    Which labels the check reads (``cat_labels``):

    * ``'labelled'`` (default, diffmtl): the map in ``results[cat_key]``.
      For an image whose ``cat_key`` task is not labelled (``task_mask``)
      that map is all ``ignore_index`` (``LoadMultiTaskAnnotations`` fills
      it), so the check is skipped: the crop of such an image depends on no
      label it is not supposed to have.
    * ``'all'`` (the reference's behaviour): for such an image the task's
      real annotation is decoded from ``results['all_ann_paths'][task]``
      (with ``results['ann_format'][task]``; ``PascalContextMTDataset``
      records both for every task) and brought to the current image size
      with the spec's interpolation (nearest for semseg), i.e. the
      reference's label leak: its crop check reads the semantic labels of
      every training image, labelled for semseg or not. The decoded map is
      used for the check only; ``results[cat_key]`` stays all-ignore. It
      reproduces the reference pipeline (a resize, then this crop): resizes
      before the crop are replayed as one resize from the original size,
      and a crop or flip before it is refused. An image without such a
      file (no path, or a missing file) is cropped unchecked.

    Required Keys:

    - img
    - seg_fields and the keys it lists
    - tasks, task_mask, ann_format, all_ann_paths, label_map (optional;
      read only with ``cat_labels='all'``)

    Modified Keys:

    - img, img_shape
    - every key of seg_fields

    Added Keys:

    - crop_bbox (y1, y2, x1, x2)

    Args:
        crop_size (int | tuple[int, int]): ``(h, w)`` of the window.
        cat_max_ratio (float): Max share of one category. 1 disables the
            check. Defaults to 1.0.
        ignore_index (int): Label left out of the check. Defaults to 255.
        cat_key (str): Results key of the map checked. Defaults to
            'gt_seg_map' (semseg).
        max_tries (int): Windows checked before giving up. Defaults to 10.
        cat_labels (str): ``'labelled'`` or ``'all'``, see above. Defaults
            to 'labelled'.
        backend_args (dict, optional): mmengine file backend arguments of
            the annotation read with ``cat_labels='all'``. Defaults to None.
    """

    CAT_LABELS = ('labelled', 'all')

    def __init__(self,
                 crop_size: Union[int, Tuple[int, int]],
                 cat_max_ratio: float = 1.0,
                 ignore_index: int = 255,
                 cat_key: str = 'gt_seg_map',
                 max_tries: int = 10,
                 cat_labels: str = 'labelled',
                 backend_args: Optional[dict] = None) -> None:
        name = type(self).__name__
        self.crop_size = _pair(crop_size, f'{name}.crop_size')
        if min(self.crop_size) <= 0:
            raise ValueError(f'{name}: crop_size must be positive, got '
                             f'{self.crop_size}')
        if cat_labels not in self.CAT_LABELS:
            raise ValueError(f'{name}: cat_labels must be one of '
                             f'{self.CAT_LABELS}, got {cat_labels!r}')
        self.cat_max_ratio = cat_max_ratio
        self.ignore_index = ignore_index
        self.cat_key = cat_key
        self.max_tries = max_tries
        self.cat_labels = cat_labels
        self.backend_args = backend_args.copy() if backend_args else None

    @cache_randomness
    def _random_bbox(self, h: int, w: int) -> Tuple[int, int, int, int]:
        ch, cw = self.crop_size
        y1 = np.random.randint(0, max(h - ch, 0) + 1)
        x1 = np.random.randint(0, max(w - cw, 0) + 1)
        return y1, min(y1 + ch, h), x1, min(x1 + cw, w)

    def _counts(self, seg: np.ndarray) -> np.ndarray:
        """Pixel counts of the labels present, ``ignore_index`` left out."""
        if seg.dtype == np.uint8:  # the contract's dtype: fast path
            cnt = np.bincount(seg.ravel(), minlength=256)
            if 0 <= self.ignore_index < 256:
                cnt[self.ignore_index] = 0
            return cnt[cnt > 0]
        labels, cnt = np.unique(seg, return_counts=True)
        return cnt[labels != self.ignore_index]

    def _accept(self, seg: np.ndarray, bbox) -> bool:
        y1, y2, x1, x2 = bbox
        cnt = self._counts(seg[y1:y2, x1:x2])
        return len(cnt) > 1 and cnt.max() / cnt.sum() < self.cat_max_ratio

    def _unlabelled_cat_map(self, results: dict,
                            seg: np.ndarray) -> Optional[np.ndarray]:
        """The real annotation of an unlabelled ``cat_key`` task, at the
        current image size (``cat_labels='all'``), or None if it has no
        file."""
        name = type(self).__name__
        spec = field_spec(self.cat_key, name)
        if 'all_ann_paths' not in results:
            raise KeyError(
                f"{name}(cat_labels='all'): task {spec.name!r} is not "
                f'labelled for {results.get("img_path")!r} and results has '
                "no 'all_ann_paths' to read its labels from; use a dataset "
                "that records them (PascalContextMTDataset) or "
                "cat_labels='labelled'")
        path = (results['all_ann_paths'] or {}).get(spec.name)
        fmt = (results.get('ann_format') or {}).get(spec.name)
        if path is None or fmt is None:
            return None
        if results.get('crop_bbox') is not None or results.get('flip'):
            raise ValueError(
                f"{name}(cat_labels='all') must come before any crop or "
                'flip of the pipeline: it reads the unlabelled labels from '
                'the file and can only replay resizes')
        from ..formats import decode_annotation
        from .loading import apply_label_map
        try:
            arr = decode_annotation(fmt, path, results, self.backend_args)
        except FileNotFoundError:
            return None
        arr = np.asarray(arr)
        if spec.discrete:
            arr = arr.astype(np.uint8, copy=False)
        arr = apply_label_map(spec, arr, results)
        h, w = seg.shape[:2]
        if arr.shape[:2] != (h, w):
            arr = resize_map(arr, (h, w), check_interp(spec.interp, name))
        return arr

    def _cat_map(self, results: dict) -> Optional[np.ndarray]:
        """The map the category check reads (see ``cat_labels``)."""
        seg = results.get(self.cat_key)
        if self.cat_labels == 'labelled' or seg is None:
            return seg
        spec = field_spec(self.cat_key, type(self).__name__)
        labelled = dict(
            zip(results.get('tasks', ()), results.get('task_mask', ())))
        if labelled.get(spec.name, True):
            return seg
        return self._unlabelled_cat_map(results, seg)

    def _choose_bbox(self, results: dict) -> Tuple[int, int, int, int]:
        h, w = results['img'].shape[:2]
        bbox = self._random_bbox(h, w)
        if self.cat_max_ratio >= 1:
            return bbox
        seg = self._cat_map(results)
        if seg is None:
            return bbox
        if len(self._counts(seg)) < 2:
            return bbox
        for _ in range(self.max_tries):
            if self._accept(seg, bbox):
                break
            bbox = self._random_bbox(h, w)
        return bbox

    def transform(self, results: dict) -> dict:
        y1, y2, x1, x2 = self._choose_bbox(results)
        results['img'] = results['img'][y1:y2, x1:x2, ...]
        for key, _ in iter_seg_fields(results, type(self).__name__):
            results[key] = results[key][y1:y2, x1:x2, ...]
        results['img_shape'] = results['img'].shape[:2]
        results['crop_bbox'] = (y1, y2, x1, x2)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(crop_size={self.crop_size}, '
                f'cat_max_ratio={self.cat_max_ratio}, '
                f'ignore_index={self.ignore_index}, '
                f'cat_key={self.cat_key!r}, max_tries={self.max_tries}, '
                f'cat_labels={self.cat_labels!r})')


@TRANSFORMS.register_module()
class MultiTaskPad(BaseTransform):
    """Pad the image and every task map, each with its own value.

    The image is padded with ``pad_val``; a task map with its spec's
    ``pad_value`` (255 for discrete tasks, the zero vector for normals, 0
    for depth) unless ``seg_pad_val`` names the task.

    The image is padded in pixel space (the data preprocessor normalises it
    later), in the pipeline's channel order (BGR for diffmtl's loaders).
    The reference normalises first and pads with 0, i.e. with the mean
    colour: give the preprocessor's ``mean`` in BGR order
    (``pad_val=[103.53, 116.28, 123.675]`` for the ImageNet mean and
    ``bgr_to_rgb=True``) and the padded pixels normalise to exactly 0. A
    value the image's dtype cannot hold exactly (such as 123.675 for a
    ``uint8`` image) turns the image into ``float32`` (lossless, and
    also when nothing needs padding, so that every sample has one dtype;
    the preprocessor casts to float anyway). ``pad_val=0`` pads black,
    about (-2.1, -2.0, -1.8) after ImageNet normalisation.

    The padding is placed at the bottom/right (mmseg) or split around the
    image (``center=True``: the image starts at ``(dh // 2, dw // 2)``, as
    the reference's ``PadImage``). It is recorded in ``padding_size`` so
    that predictions can be cropped back; pads already recorded there by an
    earlier pad are added to it. Maps are never cropped: a side longer than
    ``size`` stays as it is.

    In test pipelines use ``pad_gt=False``: only the image is padded and
    the ground truth keeps the original size, which is the size the model
    restores its predictions to (it crops ``padding_size`` off) and so the
    size the metrics compare at.

    Required Keys:

    - img
    - seg_fields and the keys it lists

    Modified Keys:

    - img (``float32`` when ``pad_val`` does not fit its dtype), img_shape
      (the padded shape, as mmcv's ``Pad``)
    - every key of seg_fields (unless ``pad_gt=False``)

    Added Keys:

    - pad_shape, padding_size (left, right, top, bottom),
      pad_fixed_size, pad_size_divisor

    Args:
        size (int | tuple[int, int], optional): Target ``(h, w)``.
        size_divisor (int, optional): Pad each side to a multiple of it.
            Exactly one of ``size`` and ``size_divisor`` must be given.
        pad_val (float | sequence): Image fill value in pixel space (per
            channel, in the image's channel order, if a sequence). Defaults
            to 0.
        seg_pad_val (dict, optional): ``{task name: value}`` overriding the
            specs' ``pad_value``. Defaults to None.
        center (bool): Centre the image instead of padding bottom/right.
            Defaults to False.
        pad_gt (bool): Pad the task maps too. Defaults to True.
    """

    def __init__(self,
                 size: Optional[Union[int, Tuple[int, int]]] = None,
                 size_divisor: Optional[int] = None,
                 pad_val: Union[float, Sequence[float]] = 0,
                 seg_pad_val: Optional[Dict[str, float]] = None,
                 center: bool = False,
                 pad_gt: bool = True) -> None:
        name = type(self).__name__
        if (size is None) == (size_divisor is None):
            raise ValueError(f'{name}: give exactly one of size and '
                             f'size_divisor (got size={size}, '
                             f'size_divisor={size_divisor})')
        self.size = None if size is None else _pair(size, f'{name}.size')
        if size_divisor is not None and size_divisor <= 0:
            raise ValueError(f'{name}: size_divisor must be positive')
        self.size_divisor = size_divisor
        self.pad_val = pad_val
        self.seg_pad_val = dict(seg_pad_val or {})
        self.center = center
        self.pad_gt = pad_gt

    def _padding(self, h: int, w: int) -> Tuple[int, int, int, int]:
        if self.size is not None:
            th, tw = max(self.size[0], h), max(self.size[1], w)
        else:
            d = self.size_divisor
            th, tw = -(-h // d) * d, -(-w // d) * d
        dh, dw = th - h, tw - w
        if self.center:
            top, left = dh // 2, dw // 2
        else:
            top, left = 0, 0
        return left, dw - left, top, dh - top

    def _image_for_pad(self, img: np.ndarray) -> np.ndarray:
        """``img``, as ``float32`` if its dtype cannot hold ``pad_val``."""
        if not np.issubdtype(img.dtype, np.integer):
            return img
        value = np.asarray(self.pad_val, dtype=np.float64)
        info = np.iinfo(img.dtype)
        if (np.all(value == np.round(value)) and value.min() >= info.min
                and value.max() <= info.max):
            return img
        return img.astype(np.float32)

    def transform(self, results: dict) -> dict:
        h, w = results['img'].shape[:2]
        padding = self._padding(h, w)
        # cast even when nothing is padded: one dtype for every sample
        img = self._image_for_pad(results['img'])
        results['img'] = pad_map(img, padding, self.pad_val)
        for key, spec in iter_seg_fields(results, type(self).__name__):
            if not self.pad_gt:
                continue
            value = self.seg_pad_val.get(spec.name, spec.pad_value)
            results[key] = pad_map(results[key], padding, value)
        old = results.get('padding_size') or (0, 0, 0, 0)
        results['padding_size'] = tuple(
            int(a) + int(b) for a, b in zip(old, padding))
        results['img_shape'] = results['img'].shape[:2]
        results['pad_shape'] = results['img'].shape[:2]
        results['pad_fixed_size'] = self.size
        results['pad_size_divisor'] = self.size_divisor
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(size={self.size}, '
                f'size_divisor={self.size_divisor}, pad_val={self.pad_val}, '
                f'seg_pad_val={self.seg_pad_val}, center={self.center}, '
                f'pad_gt={self.pad_gt})')


@TRANSFORMS.register_module()
class MultiTaskRandomFlip(BaseTransform):
    """Flip the image and every task map, fixing vector-valued maps.

    Every map is flipped by its kind's
    :meth:`~diffmtl.structures.TaskKind.flip_map`: mirrored, and the
    channels the kind lists for the direction (``flip_negate``) change
    sign. For normals-kind tasks (maps of (x, y, z) vectors in the camera
    frame, x right, y down) a horizontal flip negates x (channel 0), as the
    reference does, and a vertical flip negates y (channel 1);
    ``'diagonal'`` (both flips) negates both. The reference only flips
    horizontally; vertical flips are offered for completeness and follow
    from the same geometry. Zero (invalid) vectors stay zero.

    Required Keys:

    - img
    - seg_fields and the keys it lists

    Modified Keys:

    - img
    - every key of seg_fields

    Added Keys:

    - flip (bool), flip_direction (str or None)

    Args:
        prob (float | list[float]): Flip probability; a list gives one per
            direction in ``direction``. Defaults to 0.5.
        direction (str | list[str]): ``'horizontal'``, ``'vertical'`` or
            ``'diagonal'``, or a list of them; with a single ``prob`` the
            probability is split evenly. Defaults to 'horizontal'.
    """

    DIRECTIONS = FLIP_DIRECTIONS

    def __init__(self,
                 prob: Union[float, Sequence[float]] = 0.5,
                 direction: Union[str, Sequence[str]] = 'horizontal') -> None:
        name = type(self).__name__
        directions = [direction] if isinstance(direction,
                                               str) else list(direction)
        for d in directions:
            if d not in self.DIRECTIONS:
                raise ValueError(f'{name}: unknown direction {d!r}; expected '
                                 f'one of {self.DIRECTIONS}')
        if isinstance(prob, Number):
            probs = [float(prob) / len(directions)] * len(directions)
        else:
            probs = [float(p) for p in prob]
            if len(probs) != len(directions):
                raise ValueError(f'{name}: got {len(probs)} probabilities '
                                 f'for {len(directions)} directions')
        if min(probs) < 0 or sum(probs) > 1 + 1e-9:
            raise ValueError(f'{name}: probabilities must be >= 0 and sum to '
                             f'at most 1, got {probs}')
        self.prob = prob
        self.direction = direction
        self._directions = directions
        self._probs = probs

    @cache_randomness
    def _choose_direction(self) -> Optional[str]:
        options = self._directions + [None]
        probs = self._probs + [max(1.0 - sum(self._probs), 0.0)]
        return options[np.random.choice(len(options), p=probs)]

    def _flip(self, results: dict, direction: str) -> None:
        name = type(self).__name__
        # contiguous and never a view of the input
        results['img'] = mmcv.imflip(results['img'], direction).copy()
        for key, spec in iter_seg_fields(results, name):
            kind = spec.task_kind
            arr = results[key]
            neg = kind.negated_channels(direction)
            if neg and (arr.ndim != 3 or arr.shape[2] <= max(neg)):
                raise ValueError(
                    f'{name}: {key!r} of task {spec.name!r} ({spec.kind} '
                    f'kind) must be (H, W, {spec.gt_channels}), got '
                    f'{arr.shape}: a {direction} flip negates its '
                    f'channel(s) {neg}')
            # mirrored, then negated as 0 - x: invalid zeros stay +0.0
            results[key] = kind.flip_map(spec, arr, direction)

    def transform(self, results: dict) -> dict:
        direction = self._choose_direction()
        if direction is not None:
            self._flip(results, direction)
        results['flip'] = direction is not None
        results['flip_direction'] = direction
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(prob={self.prob}, '
                f'direction={self.direction!r})')


@TRANSFORMS.register_module()
class MultiTaskRandomScaleCrop(BaseTransform):
    """Zoom in by cropping a random window and resizing it back (MTPSL).

    Picks ``sc`` uniformly from ``scales``, crops a random window of
    ``(int(H / sc), int(W / sc))`` and resizes it back to ``(H, W)`` with
    ``torch.nn.functional.interpolate``: the image bilinearly with
    ``align_corners``; each task map with its spec's ``interp`` unless
    ``label_interp`` overrides it (the default reproduces the reference:
    normals bilinear with ``align_corners``, not renormalised; everything
    else nearest). The values then go through each kind's
    :meth:`~diffmtl.structures.TaskKind.zoom_map` with ``sc`` (depth-kind
    maps are divided by ``sc``). This is the NYUD / Cityscapes augmentation
    of MTPSL, used by DiffusionMTL.

    Required Keys:

    - img
    - seg_fields and the keys it lists

    Modified Keys:

    - img
    - every key of seg_fields

    Added Keys:

    - scale_crop (the ``sc`` used), crop_bbox (y1, y2, x1, x2)

    Args:
        scales (sequence[float]): Zoom factors (>= 1). Defaults to
            (1.0, 1.2, 1.5).
        label_interp (dict, optional): ``{task name or kind: interp}``
            (``'nearest'``, ``'bilinear'``, ``'bicubic'`` or ``'area'``).
            Defaults to ``{'normals': 'bilinear'}``.
        align_corners (bool): ``align_corners`` of the bilinear/bicubic
            resizes. Defaults to True.
        scale_depth (bool): Scale the values of the maps with ``sc`` (each
            kind's ``zoom_map``: depth divided by ``sc``). The name is
            historical: it switches the value scaling of *every* kind, so
            ``scale_depth=False`` leaves all values as resampled. Defaults
            to True.
        scale_values (bool, optional): General name of ``scale_depth``;
            wins over it when given. Defaults to None.
    """

    def __init__(self,
                 scales: Sequence[float] = (1.0, 1.2, 1.5),
                 label_interp: Optional[Dict[str, str]] = None,
                 align_corners: bool = True,
                 scale_depth: bool = True,
                 scale_values: Optional[bool] = None) -> None:
        name = type(self).__name__
        self.scales = tuple(float(s) for s in scales)
        if not self.scales or min(self.scales) < 1:
            raise ValueError(f'{name}: scales must be non-empty and >= 1, '
                             f'got {scales}')
        if label_interp is None:
            label_interp = dict(normals='bilinear')
        self.label_interp = check_label_interp(label_interp, name)
        self.align_corners = align_corners
        self.scale_values = _scale_values_flag(scale_depth, scale_values,
                                               name)
        self.scale_depth = self.scale_values  # the historical name

    @cache_randomness
    def _sample(self, h: int, w: int) -> Tuple[float, int, int]:
        sc = self.scales[np.random.randint(len(self.scales))]
        ch, cw = int(h / sc), int(w / sc)
        y1 = np.random.randint(0, h - ch + 1)
        x1 = np.random.randint(0, w - cw + 1)
        return sc, y1, x1

    def _resize(self, arr: np.ndarray, size_hw: Tuple[int, int],
                interp: str) -> np.ndarray:
        """Resize an (h, w[, c]) array with torch, keeping its dtype."""
        squeeze = arr.ndim == 2
        t = torch.from_numpy(
            np.ascontiguousarray(arr[..., None] if squeeze else arr))
        t = t.permute(2, 0, 1)[None].to(torch.float64)
        kwargs = {}
        if interp in ('bilinear', 'bicubic'):
            kwargs['align_corners'] = self.align_corners
        t = F.interpolate(t, size=size_hw, mode=interp, **kwargs)
        out = t[0].permute(1, 2, 0).numpy()
        out = out[..., 0] if squeeze else out
        return cast_like(out, arr.dtype)

    def transform(self, results: dict) -> dict:
        name = type(self).__name__
        h, w = results['img'].shape[:2]
        sc, y1, x1 = self._sample(h, w)
        y2, x2 = y1 + int(h / sc), x1 + int(w / sc)
        results['img'] = self._resize(results['img'][y1:y2, x1:x2], (h, w),
                                      'bilinear')
        _resample_seg_fields(
            results, name, self.label_interp,
            lambda arr, interp: self._resize(arr[y1:y2, x1:x2], (h, w),
                                             interp),
            sc if self.scale_values else None)
        results['scale_crop'] = sc
        results['crop_bbox'] = (y1, y2, x1, x2)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scales={self.scales}, '
                f'label_interp={self.label_interp}, '
                f'align_corners={self.align_corners}, '
                f'scale_depth={self.scale_depth})')
