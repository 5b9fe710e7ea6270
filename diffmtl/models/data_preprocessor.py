# Copyright (c) diffmtl contributors. All rights reserved.
"""Batch collation for multi-task samples."""
from numbers import Number
from typing import (Any, Callable, Dict, List, Optional, Sequence, Tuple,
                    Union)

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor
from mmengine.structures import PixelData

from diffmtl.registry import MODELS
from diffmtl.structures import TASK_SPECS, TaskSpec, get_task_spec

__all__ = ['MultiTaskDataPreProcessor']

Padding = Tuple[int, int, int, int]


@MODELS.register_module()
class MultiTaskDataPreProcessor(BaseDataPreprocessor):
    """Normalise, pad and stack multi-task batches.

    A drop-in for mmseg's ``SegDataPreProcessor`` that knows about every
    task's ground truth:

    * moves the data to the device, optionally swaps BGR/RGB, casts the
      images to float and normalises them with ``mean`` / ``std``;
    * in training, pads each (normalised) image bottom/right with
      ``pad_val`` to ``size`` or to the batch's largest size rounded up to
      ``size_divisor`` (neither: the largest size), and pads **every**
      task's ground truth the same way with that task's own
      ``TaskSpec.pad_value`` (255 for discrete maps, 0 for normals and
      depth; ``gt_pad_val`` overrides per task). A sample lacking the
      ground truth of a task that other samples of the batch carry gets a
      map filled with the pad value (the task then counts as unlabelled for
      it, see :func:`diffmtl.structures.get_task_mask`), so the batch is
      uniform. ``batch_augments`` then run on ``(inputs, data_samples)``;
    * in testing, stacks the images, padding them (and only them: the
      ground truth stays at its size for the metrics) when ``test_cfg``
      gives ``size`` or ``size_divisor``. Ground truth that a test pipeline
      padded together with the image (``MultiTaskPad(pad_gt=True)``, i.e.
      a map of the image's size while ``padding_size`` is recorded) is
      cropped back to the unpadded region, the size the model restores its
      predictions to.

    Image padding happens **after** normalisation, so ``pad_val=0`` fills
    with the mean colour, as the reference (which normalises, then pads
    with 0). Padding done earlier by the pipeline (``MultiTaskPad``) is in
    pixel space and is normalised here with the image: such a pad matches
    the reference only with ``pad_val`` = the mean colour (in the
    pipeline's channel order), see :class:`MultiTaskPad` and
    ``docs/en/datasets.md`` (image padding).

    Each sample's metainfo gets ``img_shape`` (before this padding),
    ``pad_shape`` and ``padding_size`` ``(left, right, top, bottom)``: the
    total padding, i.e. this padding plus any recorded by a pipeline pad
    (``MultiTaskPad``), so that ``inputs[..., t:H - b, l:W - r]`` is the
    image. In test mode ``img_padding_size`` (mmseg's key) is set to the
    same value.

    Args:
        mean (sequence[float], optional): Per-channel mean. Defaults to
            None (no normalisation).
        std (sequence[float], optional): Per-channel std.
        size (tuple[int, int], optional): Fixed ``(h, w)`` of training
            batches.
        size_divisor (int, optional): Pad training batches to a multiple.
        pad_val (float): Image padding value, in normalised units (0 =
            the mean colour when ``mean`` is given). Defaults to 0.
        gt_pad_val (dict, optional): ``{task: value}`` overriding
            ``TaskSpec.pad_value``.
        seg_pad_val (float, optional): mmseg's argument, kept so that
            mmseg configs work: the pad value of every *discrete* task not
            named in ``gt_pad_val``. Defaults to None (the specs' values).
        bgr_to_rgb (bool): Swap channels 0 and 2 of 3-channel images.
        rgb_to_bgr (bool): Same swap (the two names are exclusive).
        batch_augments (list, optional): Callables (or ``MODELS`` configs
            of them) applied as ``inputs, data_samples = aug(inputs,
            data_samples)`` to training batches.
        test_cfg (dict, optional): ``dict(size=...)`` or
            ``dict(size_divisor=...)`` for test batches; defaults to no
            padding (then all test images of a batch must share a size).
        non_blocking (bool): Copy batches to the device with
            ``non_blocking=True`` (mmengine's option): with the
            dataloader's ``pin_memory=True`` the copy then overlaps the
            device's work. Defaults to False.
    """

    def __init__(self,
                 mean: Optional[Sequence[Number]] = None,
                 std: Optional[Sequence[Number]] = None,
                 size: Optional[Tuple[int, int]] = None,
                 size_divisor: Optional[int] = None,
                 pad_val: Number = 0,
                 gt_pad_val: Optional[Dict[str, Number]] = None,
                 seg_pad_val: Optional[Number] = None,
                 bgr_to_rgb: bool = False,
                 rgb_to_bgr: bool = False,
                 batch_augments: Optional[Sequence[Union[dict,
                                                         Callable]]] = None,
                 test_cfg: Optional[dict] = None,
                 non_blocking: bool = False) -> None:
        super().__init__(non_blocking=non_blocking)
        if bgr_to_rgb and rgb_to_bgr:
            raise ValueError('MultiTaskDataPreProcessor: bgr_to_rgb and '
                             'rgb_to_bgr cannot both be True')
        if size is not None and size_divisor is not None:
            raise ValueError('MultiTaskDataPreProcessor: give at most one of '
                             'size and size_divisor')
        self.channel_conversion = bgr_to_rgb or rgb_to_bgr
        self.size = None if size is None else tuple(size)
        self.size_divisor = size_divisor
        self.pad_val = pad_val
        self.gt_pad_val = dict(gt_pad_val or {})
        self.seg_pad_val = seg_pad_val
        for task in self.gt_pad_val:
            get_task_spec(task)  # fail early on unknown tasks
        if mean is not None:
            if std is None:
                raise ValueError('MultiTaskDataPreProcessor: mean is given '
                                 'but std is not')
            self._enable_normalize = True
            self.register_buffer('mean',
                                 torch.tensor(mean).view(-1, 1, 1), False)
            self.register_buffer('std',
                                 torch.tensor(std).view(-1, 1, 1), False)
        else:
            self._enable_normalize = False
        self.batch_augments = self._build_batch_augments(batch_augments)
        self.test_cfg = dict(test_cfg or {})
        unknown = set(self.test_cfg) - {'size', 'size_divisor'}
        if unknown:
            raise ValueError('MultiTaskDataPreProcessor: test_cfg only '
                             f'accepts size / size_divisor, got {unknown}')

    @staticmethod
    def _build_batch_augments(augments) -> Optional[List[Callable]]:
        if augments is None:
            return None
        if isinstance(augments, (dict, )) or callable(augments):
            augments = [augments]
        built = []
        for i, aug in enumerate(augments):
            if isinstance(aug, dict):
                aug = MODELS.build(aug)
            if not callable(aug):
                raise TypeError(f'MultiTaskDataPreProcessor: batch_augments'
                                f'[{i}] is not callable ({type(aug)})')
            built.append(aug)
        return built

    # ------------------------------------------------------------------
    @staticmethod
    def _target_size(shapes: List[Tuple[int,
                                        int]], size: Optional[Sequence[int]],
                     size_divisor: Optional[int]) -> Tuple[int, int]:
        max_h = max(s[0] for s in shapes)
        max_w = max(s[1] for s in shapes)
        if size is not None:
            return max(int(size[-2]), max_h), max(int(size[-1]), max_w)
        if size_divisor is not None and size_divisor > 1:
            d = int(size_divisor)
            return -(-max_h // d) * d, -(-max_w // d) * d
        return max_h, max_w

    @staticmethod
    def _batch_specs(data_samples: Sequence) -> List[TaskSpec]:
        """Specs of the tasks any sample of the batch carries a GT for."""
        names = []
        for ds in data_samples:
            for task in ds.metainfo.get('tasks', ()):
                if task not in names:
                    names.append(task)
        for spec in TASK_SPECS.values():
            if spec.name not in names and any(spec.gt_field in ds
                                              for ds in data_samples):
                names.append(spec.name)
        return [get_task_spec(n) for n in names]

    def _gt_pad_value(self, spec: TaskSpec) -> Number:
        if spec.name in self.gt_pad_val:
            return self.gt_pad_val[spec.name]
        if spec.discrete and self.seg_pad_val is not None:
            return self.seg_pad_val
        return spec.pad_value

    def _pad_gt(self, ds, specs: List[TaskSpec], img_hw: Tuple[int, int],
                padding: Padding, index: int) -> None:
        """Pad (or create) every task's GT of sample ``ds`` in place."""
        for spec in specs:
            value = self._gt_pad_value(spec)
            dtype = torch.int64 if spec.discrete else torch.float32
            if spec.gt_field in ds:
                gt = ds.get(spec.gt_field).data
                if tuple(gt.shape[-2:]) != tuple(img_hw):
                    raise ValueError(
                        f'MultiTaskDataPreProcessor: sample {index} '
                        f'({ds.metainfo.get("img_path", "")}) has '
                        f'{spec.gt_field} of size {tuple(gt.shape[-2:])} '
                        f'but its image is {tuple(img_hw)}')
            else:
                gt = torch.full((spec.gt_channels, ) + tuple(img_hw),
                                value,
                                dtype=dtype,
                                device=self.device)
            gt = F.pad(gt, padding, value=value)
            ds.set_field(PixelData(data=gt), spec.gt_field)

    @staticmethod
    def _record_padding(ds, img_hw, pad_hw, padding: Padding,
                        test: bool) -> None:
        old = ds.metainfo.get('padding_size') or (0, 0, 0, 0)
        total = tuple(int(a) + int(b) for a, b in zip(old, padding))
        meta = dict(img_shape=tuple(img_hw),
                    pad_shape=tuple(pad_hw),
                    padding_size=total)
        if test:
            meta['img_padding_size'] = total
        ds.set_metainfo(meta)

    def _pad_batch(self, inputs: List[torch.Tensor], data_samples, size,
                   size_divisor, pad_gt: bool):
        shapes = [tuple(x.shape[-2:]) for x in inputs]
        th, tw = self._target_size(shapes, size, size_divisor)
        specs = self._batch_specs(data_samples) if (
            pad_gt and data_samples is not None) else []
        padded = []
        for i, (x, (h, w)) in enumerate(zip(inputs, shapes)):
            padding = (0, tw - w, 0, th - h)
            padded.append(F.pad(x, padding, value=self.pad_val))
            if data_samples is None:
                continue
            ds = data_samples[i]
            if pad_gt:
                self._pad_gt(ds, specs, (h, w), padding, i)
            self._record_padding(ds, (h, w), (th, tw), padding, not pad_gt)
        return torch.stack(padded, dim=0), data_samples

    @staticmethod
    def _crop_test_gt(inputs: List[torch.Tensor], data_samples) -> None:
        """Crop pipeline padding off test GT of the padded image's size."""
        for x, ds in zip(inputs, data_samples):
            pad = ds.metainfo.get('padding_size')
            if not pad or not any(pad):
                continue
            left, right, top, bottom = (int(p) for p in pad)
            h, w = x.shape[-2:]
            for spec in TASK_SPECS.values():
                if spec.gt_field not in ds:
                    continue
                gt = ds.get(spec.gt_field).data
                if tuple(gt.shape[-2:]) == (h, w):
                    gt = gt[..., top:h - bottom, left:w - right]
                    ds.set_field(PixelData(data=gt), spec.gt_field)

    # ------------------------------------------------------------------
    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        """Preprocess one batch.

        Args:
            data (dict): ``inputs`` (list of (C, H, W) tensors, or a
                stacked (B, C, H, W) tensor) and ``data_samples``.
            training (bool): Training (pad GT too) or test mode.

        Returns:
            dict: ``inputs`` (B, C, H', W') float tensor and
            ``data_samples``.
        """
        data = self.cast_data(data)
        inputs = data['inputs']
        data_samples = data.get('data_samples', None)
        if isinstance(inputs, torch.Tensor):
            inputs = list(inputs) if inputs.dim() == 4 else [inputs]
        if self.channel_conversion:
            inputs = [
                x[[2, 1, 0], ...] if x.size(0) == 3 else x for x in inputs
            ]
        inputs = [x.float() for x in inputs]
        if self._enable_normalize:
            inputs = [(x - self.mean) / self.std for x in inputs]

        if training:
            if data_samples is None:
                raise ValueError('MultiTaskDataPreProcessor: training '
                                 'batches need data_samples')
            inputs, data_samples = self._pad_batch(inputs, data_samples,
                                                   self.size,
                                                   self.size_divisor, True)
            if self.batch_augments is not None:
                for aug in self.batch_augments:
                    inputs, data_samples = aug(inputs, data_samples)
            return dict(inputs=inputs, data_samples=data_samples)

        if data_samples is not None:
            self._crop_test_gt(inputs, data_samples)
        if self.test_cfg:
            inputs, data_samples = self._pad_batch(
                inputs, data_samples, self.test_cfg.get('size'),
                self.test_cfg.get('size_divisor'), False)
        else:
            shapes = {tuple(x.shape) for x in inputs}
            if len(shapes) > 1:
                raise ValueError(
                    'MultiTaskDataPreProcessor: test images of one batch '
                    f'differ in size {sorted(shapes)}; set test_cfg='
                    'dict(size_divisor=...) or dict(size=...), or use '
                    'batch_size=1')
            inputs = torch.stack(inputs, dim=0)
        return dict(inputs=inputs, data_samples=data_samples)
