# Copyright (c) diffmtl contributors. All rights reserved.
"""JTR's two extra views of a training image, made in the model.

JTR (``datasets/nyuv2.py``) cuts views ``v1`` and ``v2`` from the training
sample ``v0`` with independent random scale-crops, and gives each view its
own RandAugment on the image. Here the views are made from the
preprocessed ``v0`` batch inside the model, so that the data pipeline (and
with it the matching of the study arms) is unchanged. Everything is
batched over images: the random draws are made on the host, so the images
that take each operation are known without waiting for the device, and
every operation runs once per round on the images that drew it.

Scale-crop (JTR ``RandomScaleCrop``, diffmtl's ``MultiTaskRandomScaleCrop``):
``sc`` uniform over ``scales``, a window of ``(int(H / sc), int(W / sc))``
at a uniform integer offset, resized back to ``(H, W)`` with the
arithmetic of ``torch.nn.functional.interpolate``: the image bilinear
(``align_corners=True``), each task map with its spec's ``interp`` unless
``label_interp`` overrides it (normals bilinear, not renormalised); then
each map's values go through its encoding's
:meth:`~.encodings.TaskEncoding.zoom_label` (the kind's zoom rule: depth
divided by ``sc``).

Photometric augmentation (JTR ``datasets/randaugment.py``): ``num_ops``
operations, each drawn uniformly with replacement from
:data:`PHOTOMETRIC_OPS`, with a magnitude bin uniform below ``magnitude``
of ``num_bins`` and, for the four enhancements, a random sign. With JTR's
defaults the enhancement factor is ``1 +- {0, .03, .06, .09, .12, .15}``,
posterize keeps 8, 8, 8, 8, 7 or 7 bits and the solarize threshold runs
from 255 down to 212.5. The enhancements and autocontrast follow
torchvision's float-tensor functions; posterize, solarize and equalize
quantise to 8 bits first (torchvision's ``ToPILImage`` truncates) and follow
PIL's ``ImageOps``. The image is taken back to pixel values (``x * std +
mean``) for them and normalised again afterwards.
"""
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from diffmtl.datasets.transforms.field_utils import (check_label_interp,
                                                     resolve_interp)
from diffmtl.registry import MODELS
from .encodings import TaskEncoding

__all__ = [
    'PHOTOMETRIC_OPS', 'VIEW_INTERPS', 'ViewParams', 'JTRViews', 'crop_resize',
    'photometric_op', 'quantise'
]

#: JTR's RandAugment operations (the geometric ones are disabled in JTR).
PHOTOMETRIC_OPS = ('identity', 'brightness', 'color', 'contrast', 'sharpness',
                   'posterize', 'solarize', 'autocontrast', 'equalize')
#: Operations whose magnitude gets a random sign.
SIGNED_OPS = ('brightness', 'color', 'contrast', 'sharpness')
#: Interpolations the batched scale-crop implements.
VIEW_INTERPS = ('nearest', 'bilinear')
#: Luma weights of torchvision's ``rgb_to_grayscale``, in RGB order.
LUMA_RGB = (0.2989, 0.587, 0.114)
#: Tolerance of the 8-bit quantisation for the float error of undoing the
#: normalisation (an integer pixel value read back as 199.99998 stays 200).
QUANTISE_TOL = 1e-3


@dataclass
class ViewParams:
    """Random draws of ``N`` views, on the host.

    Attributes:
        scale (Tensor): (N,) float64 zoom factor ``sc``.
        box (Tensor): (N, 4) int64 window ``(y1, h, x1, w)``.
        ops (Tensor): (N, R) int64 index into :data:`PHOTOMETRIC_OPS` of
            each round, or (N, 0) without photometric augmentation.
        bins (Tensor): (N, R) int64 magnitude bin.
        signs (Tensor): (N, R) float64 sign (+-1) of the magnitude.
    """
    scale: Tensor
    box: Tensor
    ops: Tensor
    bins: Tensor
    signs: Tensor


# ---------------------------------------------------------------------------
# scale-crop
# ---------------------------------------------------------------------------
def _source_index(start: Tensor, length: Tensor, out: int, mode: str,
                  align_corners: bool, dtype: torch.dtype):
    """Source indices (and weights) of ``interpolate`` along one axis.

    Args:
        start, length (Tensor): (N,) int64 window start and length.
        out (int): Output length.
        mode (str): One of :data:`VIEW_INTERPS`.
        align_corners (bool): Of the bilinear mode.
        dtype: Of the bilinear computation (``interpolate``'s
            accumulation type: float32 for float32 or lower inputs, float64
            for float64); nearest computes in float32, as ``interpolate``.

    Returns:
        tuple: nearest: ``(idx,)`` (N, out) int64; bilinear: ``(i0, i1,
        l0, l1)``, indices (N, out) int64 and weights (N, out) ``dtype``.
    """
    last = (length - 1)[:, None]
    if mode == 'nearest':
        # upsample_nearest, in float32 for every dtype:
        # min(floor(dst * (in / out)), in - 1)
        scale = length.to(torch.float32)[:, None] / out
        src = torch.floor(
            torch.arange(out, dtype=torch.float32)[None] * scale).long()
        return (torch.minimum(src, last) + start[:, None], )
    dst = torch.arange(out, dtype=dtype)[None]
    size = length.to(dtype)[:, None]
    if align_corners:
        scale = (size - 1) / (out - 1) if out > 1 else torch.zeros_like(size)
        src = scale * dst
    else:
        src = ((size / out) * (dst + 0.5) - 0.5).clamp(min=0)
    i0 = torch.minimum(src.long(), last)
    l1 = (src - i0.to(dtype)).clamp(0, 1)
    i1 = i0 + (i0 < last).long()
    return (i0 + start[:, None], i1 + start[:, None], 1 - l1, l1)


def _rows(x: Tensor, idx: Tensor) -> Tensor:
    n, c, _, w = x.shape
    return x.gather(2, idx[:, None, :, None].expand(n, c, idx.shape[1], w))


def _cols(x: Tensor, idx: Tensor) -> Tensor:
    n, c, h, _ = x.shape
    return x.gather(3, idx[:, None, None, :].expand(n, c, h, idx.shape[1]))


def crop_resize(x: Tensor,
                box: Tensor,
                mode: str,
                align_corners: bool = True) -> Tensor:
    """Crop a window of every image and resize it back to the full size.

    Per image ``n`` this equals ``F.interpolate(x[n:n+1, :, y1:y1+h,
    x1:x1+w], size=(H, W), mode=mode[, align_corners])``, computed for the
    whole batch with gathers along each axis.

    Args:
        x (Tensor): (N, C, H, W); any dtype for ``'nearest'``, floating
            point for ``'bilinear'``.
        box (Tensor): (N, 4) int64 windows ``(y1, h, x1, w)``, on the
            host (the indices are computed there).
        mode (str): One of :data:`VIEW_INTERPS`.
        align_corners (bool): Of the bilinear mode. Defaults to True.

    Returns:
        Tensor: (N, C, H, W), ``x``'s dtype.
    """
    if mode not in VIEW_INTERPS:
        raise ValueError(f'crop_resize: mode must be one of {VIEW_INTERPS}, '
                         f'got {mode!r}')
    if mode == 'bilinear' and not x.is_floating_point():
        raise ValueError(f'crop_resize: bilinear resampling of a {x.dtype} '
                         'map; use nearest for discrete maps')
    n, _, h, w = x.shape
    if box.shape != (n, 4):
        raise ValueError(f'crop_resize: box must be ({n}, 4), got '
                         f'{tuple(box.shape)}')
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    top, height, left, width = box.unbind(1)
    rows = _source_index(top, height, h, mode, align_corners, dtype)
    cols = _source_index(left, width, w, mode, align_corners, dtype)
    rows = [t.to(x.device, non_blocking=True) for t in rows]
    cols = [t.to(x.device, non_blocking=True) for t in cols]
    if mode == 'nearest':
        return _cols(_rows(x, rows[0]), cols[0])
    # weights (N, 1, 1, W) across, (N, 1, H, 1) down
    c0 = cols[2].to(x.dtype)[:, None, None]
    c1 = cols[3].to(x.dtype)[:, None, None]
    r0 = rows[2].to(x.dtype)[:, None, :, None]
    r1 = rows[3].to(x.dtype)[:, None, :, None]

    def across(y: Tensor) -> Tensor:
        return c0 * _cols(y, cols[0]) + c1 * _cols(y, cols[1])

    return r0 * across(_rows(x, rows[0])) + r1 * across(_rows(x, rows[1]))


# ---------------------------------------------------------------------------
# photometric operations, on (n, 3, H, W) pixel values in [0, 255]
# ---------------------------------------------------------------------------
def quantise(x: Tensor) -> Tensor:
    """8-bit values (int64) of pixel values, by truncation (torchvision's
    ``ToPILImage`` of a float image), with :data:`QUANTISE_TOL`."""
    return torch.floor(x.clamp(0, 255) + QUANTISE_TOL).clamp(max=255).long()


def _blend(x: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    f = factor.view(-1, 1, 1, 1).to(x.dtype)
    return (f * x + (1 - f) * other).clamp(0, 255)


def _gray(x: Tensor, rgb: bool) -> Tensor:
    weights = LUMA_RGB if rgb else LUMA_RGB[::-1]
    return (weights[0] * x[:, 0:1] + weights[1] * x[:, 1:2] +
            weights[2] * x[:, 2:3])


def _sharpness(x: Tensor, factor: Tensor) -> Tensor:
    if x.shape[-1] <= 2 or x.shape[-2] <= 2:
        return x
    kernel = torch.ones((3, 3), dtype=x.dtype, device=x.device)
    kernel[1, 1] = 5.0
    kernel = (kernel / kernel.sum()).expand(x.shape[1], 1, 3, 3)
    blurred = x.clone()
    blurred[..., 1:-1, 1:-1] = F.conv2d(x, kernel, groups=x.shape[1])
    return _blend(x, blurred, factor)


def _autocontrast(x: Tensor) -> Tensor:
    low = x.amin(dim=(-2, -1), keepdim=True)
    high = x.amax(dim=(-2, -1), keepdim=True)
    flat = high == low
    scale = torch.where(flat, torch.ones_like(low), 255 / (high - low))
    low = torch.where(flat, torch.zeros_like(low), low)
    return ((x - low) * scale).clamp(0, 255)


def _lookup(q: Tensor, lut: Tensor) -> Tensor:
    """Apply per-(image, channel) tables ``lut`` (n * C, 256) to 8-bit
    values ``q`` (n, C, H, W)."""
    flat = q.reshape(lut.shape[0], -1)
    return lut.gather(1, flat).reshape(q.shape)


def _equalize(q: Tensor) -> Tensor:
    """PIL's ``ImageOps.equalize`` per channel, on 8-bit values."""
    flat = q.reshape(q.shape[0] * q.shape[1], -1)
    hist = torch.zeros((flat.shape[0], 256),
                       dtype=torch.int64,
                       device=q.device)
    hist.scatter_add_(1, flat, torch.ones_like(flat))
    present = hist > 0
    last = 255 - present.flip(1).long().argmax(1, keepdim=True)
    total = hist.sum(1, keepdim=True)
    step = (total - hist.gather(1, last)) // 255
    before = hist.cumsum(1) - hist
    lut = ((step // 2 + before) // step.clamp(min=1)).clamp(max=255)
    keep = (present.sum(1, keepdim=True) <= 1) | (step == 0)
    identity = torch.arange(256, device=q.device).expand_as(lut)
    return _lookup(q, torch.where(keep, identity, lut))


def photometric_op(name: str,
                   x: Tensor,
                   value: Tensor,
                   rgb: bool = True) -> Tensor:
    """One of :data:`PHOTOMETRIC_OPS` on a batch.

    Args:
        name (str): The operation.
        x (Tensor): (n, 3, H, W) pixel values in [0, 255], float.
        value (Tensor): (n,) the operation's magnitude per image: the
            enhancement factor (``brightness``, ``color``, ``contrast``,
            ``sharpness``), the bits kept (``posterize``) or the threshold
            (``solarize``); ignored by the others.
        rgb (bool): Channel order RGB (else BGR), for the grey level of
            ``color`` and ``contrast``. Defaults to True.

    Returns:
        Tensor: (n, 3, H, W) float pixel values in [0, 255].
    """
    if name == 'identity':
        return x
    if name == 'brightness':
        return _blend(x, torch.zeros_like(x), value)
    if name == 'color':
        return _blend(x, _gray(x, rgb), value)
    if name == 'contrast':
        mean = _gray(x, rgb).mean(dim=(-3, -2, -1), keepdim=True)
        return _blend(x, mean, value)
    if name == 'sharpness':
        return _sharpness(x, value)
    if name == 'autocontrast':
        return _autocontrast(x)
    if name == 'posterize':
        keep = 256 - 2**(8 - value.long())
        return (quantise(x) & keep.view(-1, 1, 1, 1)).to(x.dtype)
    if name == 'solarize':
        q = quantise(x)
        thr = value.view(-1, 1, 1, 1).to(x.dtype)
        return torch.where(q.to(x.dtype) < thr, q, 255 - q).to(x.dtype)
    if name == 'equalize':
        return _equalize(quantise(x)).to(x.dtype)
    raise ValueError(f'unknown photometric operation {name!r}; expected one '
                     f'of {PHOTOMETRIC_OPS}')


# ---------------------------------------------------------------------------
# the views
# ---------------------------------------------------------------------------
@MODELS.register_module()
class JTRViews(nn.Module):
    """Makes JTR's views ``v1``, ``v2`` from a preprocessed training batch.

    Each view of each image gets its own draw: a random scale-crop of the
    image and of every task map (depth divided by the zoom through the
    encodings' :meth:`~.encodings.TaskEncoding.zoom_label`), then, with
    ``photometric``, RandAugment on the image only. No flip (JTR on NYUv2).
    The views are made in float32 (float64 inputs in float64) with
    autocast off. No parameters.

    Args:
        scales (Sequence[float]): Zoom factors ``sc`` (>= 1). Defaults to
            JTR's ``(1.0, 1.2, 1.5)``.
        photometric (bool): Apply the photometric augmentation to the
            views' images (JTR: yes). The switch of the ablation without
            it. Defaults to True.
        num_ops (int): Operations per view. Defaults to 2 (JTR).
        magnitude (int): Exclusive bound of the magnitude bin. Defaults to
            6 (JTR).
        num_bins (int): Magnitude bins. Defaults to 31 (JTR).
        label_interp (dict, optional): ``{task name or kind: interp}``
            overriding the specs' interpolations, each one of
            :data:`VIEW_INTERPS`. Defaults to ``{'normals': 'bilinear'}``
            (JTR and ``MultiTaskRandomScaleCrop``).
        align_corners (bool): Of the bilinear resizes. Defaults to True
            (JTR).
        scale_values (bool): Apply the kinds' zoom rule to the maps'
            values (depth divided by ``sc``). Defaults to True (JTR).
    """

    def __init__(self,
                 *,
                 scales: Sequence[float] = (1.0, 1.2, 1.5),
                 photometric: bool = True,
                 num_ops: int = 2,
                 magnitude: int = 6,
                 num_bins: int = 31,
                 label_interp: Optional[Mapping[str, str]] = None,
                 align_corners: bool = True,
                 scale_values: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        self.scales = tuple(float(s) for s in scales)
        if not self.scales or min(self.scales) < 1:
            raise ValueError(f'{name}: scales must be non-empty and >= 1, '
                             f'got {scales}')
        if int(num_ops) < 0 or not 1 <= int(magnitude) <= int(num_bins):
            raise ValueError(f'{name}: need num_ops >= 0 and 1 <= magnitude '
                             f'<= num_bins, got num_ops={num_ops}, '
                             f'magnitude={magnitude}, num_bins={num_bins}')
        if label_interp is None:
            label_interp = dict(normals='bilinear')
        self.label_interp = check_label_interp(label_interp, name)
        bad = {
            k: v
            for k, v in self.label_interp.items() if v not in VIEW_INTERPS
        }
        if bad:
            raise ValueError(f'{name}: label_interp {bad}: the views resample '
                             f'with one of {VIEW_INTERPS}')
        self.photometric = bool(photometric)
        self.num_ops = int(num_ops)
        self.magnitude = int(magnitude)
        self.num_bins = int(num_bins)
        self.align_corners = bool(align_corners)
        self.scale_values = bool(scale_values)
        # magnitudes per bin, as JTR's ImgAugment (float32 linspace)
        bins = self.num_bins
        self._enhance = torch.linspace(0.0, 0.9, bins).double()
        self._bits = (8 - (torch.arange(bins) /
                           ((bins - 1) / 4)).round().int()).double()
        self._threshold = torch.linspace(255.0, 0.0, bins).double()

    def extra_repr(self) -> str:
        return (f'scales={self.scales}, photometric={self.photometric}, '
                f'num_ops={self.num_ops}, magnitude={self.magnitude}, '
                f'label_interp={self.label_interp}')

    def sample(self, num: int, size: Tuple[int, int]) -> ViewParams:
        """Draw the parameters of ``num`` views of (H, W) images with the
        global torch generator, on the host.

        Args:
            num (int): Number of views.
            size (tuple[int, int]): (H, W).

        Returns:
            ViewParams
        """
        h, w = (int(s) for s in size)
        pick = torch.randint(len(self.scales), (num, ))
        scale = torch.tensor(self.scales, dtype=torch.float64)[pick]
        ch = torch.floor(h / scale).long()
        cw = torch.floor(w / scale).long()
        y1 = torch.floor(torch.rand(num, dtype=torch.float64) *
                         (h - ch + 1)).long()
        x1 = torch.floor(torch.rand(num, dtype=torch.float64) *
                         (w - cw + 1)).long()
        rounds = self.num_ops if self.photometric else 0
        ops = torch.randint(len(PHOTOMETRIC_OPS), (num, rounds))
        bins = torch.randint(self.magnitude, (num, rounds))
        signs = torch.randint(2, (num, rounds)).double() * -2 + 1
        return ViewParams(scale=scale,
                          box=torch.stack([y1, ch, x1, cw], dim=1),
                          ops=ops,
                          bins=bins,
                          signs=signs)

    def op_values(self, name: str, bins: Tensor, signs: Tensor) -> Tensor:
        """(n,) float64 magnitudes of operation ``name`` from bins and
        signs (host)."""
        if name in SIGNED_OPS:
            return 1.0 + signs * self._enhance[bins]
        if name == 'posterize':
            return self._bits[bins]
        if name == 'solarize':
            return self._threshold[bins]
        return torch.zeros(bins.shape, dtype=torch.float64)

    def augment(self,
                pixels: Tensor,
                params: ViewParams,
                rgb: bool = True) -> Tensor:
        """Photometric augmentation of (N, 3, H, W) pixel values: per
        round, each operation runs once on the images that drew it."""
        name = type(self).__name__
        if params.ops.shape[1] and pixels.shape[1] != 3:
            raise ValueError(
                f'{name}: photometric augmentation needs 3-channel'
                f' images, got {tuple(pixels.shape)}')
        out = pixels
        for r in range(params.ops.shape[1]):
            for k, op in enumerate(PHOTOMETRIC_OPS):
                if op == 'identity':
                    continue
                sel = (params.ops[:, r] == k).nonzero(as_tuple=True)[0]
                if not sel.numel():
                    continue
                values = self.op_values(op, params.bins[sel, r],
                                        params.signs[sel, r])
                idx = sel.to(out.device, non_blocking=True)
                done = photometric_op(op, out.index_select(0, idx),
                                      values.to(out.device, out.dtype), rgb)
                out = out.index_copy(0, idx, done)
        return out

    def map_interp(self, encoder: TaskEncoding) -> str:
        """The interpolation of a task's maps (one of
        :data:`VIEW_INTERPS`)."""
        interp = resolve_interp(encoder.spec, self.label_interp)
        if interp not in VIEW_INTERPS:
            raise ValueError(
                f'{type(self).__name__}: task {encoder.spec.name!r} resizes '
                f'with {interp!r}; the views resample with one of '
                f'{VIEW_INTERPS} (set label_interp)')
        return interp

    def forward(
            self,
            inputs: Tensor,
            gts: Mapping[str, Tensor],
            encoders: Mapping[str, TaskEncoding],
            num_views: int = 2,
            mean: Optional[Tensor] = None,
            std: Optional[Tensor] = None,
            rgb: bool = True) -> Tuple[Tensor, Dict[str, Tensor], ViewParams]:
        """``num_views`` views of every image, view-major.

        Args:
            inputs (Tensor): (B, 3, H, W) preprocessed images (``v0``).
            gts (dict): ``{task: (B, gt_channels, H, W)}`` stacked GT.
            encoders (dict): ``{task: TaskEncoding}`` of the tasks of
                ``gts`` (the zoom rule of their values).
            num_views (int): Views per image. Defaults to 2.
            mean, std (Tensor, optional): (3, 1, 1) normalisation of
                ``inputs`` (pixels = ``inputs * std + mean``); None: the
                inputs are pixel values.
            rgb (bool): Channel order of the inputs. Defaults to True.

        Returns:
            tuple: images (V B, 3, H, W) and ``{task: (V B, gt_channels,
            H, W)}`` maps, row ``v * B + b`` view ``v`` of image ``b``; the
            :class:`ViewParams` of the rows.
        """
        batch = inputs.shape[0]
        params = self.sample(num_views * batch, inputs.shape[-2:])
        repeat = (num_views, ) + (1, ) * (inputs.dim() - 1)
        device_type = inputs.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            dtype = torch.promote_types(inputs.dtype, torch.float32)
            images = crop_resize(
                inputs.to(dtype).repeat(repeat), params.box, 'bilinear',
                self.align_corners)
            maps = {}
            scale = params.scale.to(inputs.device, non_blocking=True)
            for task, gt in gts.items():
                enc = encoders[task]
                out = crop_resize(gt.repeat(repeat), params.box,
                                  self.map_interp(enc), self.align_corners)
                maps[task] = enc.zoom_label(out, scale) \
                    if self.scale_values else out
            if params.ops.shape[1]:
                images = self.augment_normalised(images, params, mean, std,
                                                 rgb)
        return images.to(inputs.dtype), maps, params

    def augment_normalised(self, images: Tensor, params: ViewParams,
                           mean: Optional[Tensor], std: Optional[Tensor],
                           rgb: bool) -> Tensor:
        """:meth:`augment` of normalised images: back to pixel values and
        normalised again."""
        if mean is None:
            return self.augment(images, params, rgb)
        m = mean.to(images.device, images.dtype).view(1, -1, 1, 1)
        s = std.to(images.device, images.dtype).view(1, -1, 1, 1)
        return (self.augment(images * s + m, params, rgb) - m) / s
