# Copyright (c) diffmtl contributors. All rights reserved.
"""Encode ground truth and predictions into the input of JTR's network g.

Every task is encoded to ``n_t`` channels at the network input size, and
the tasks are stacked along channels. One table, :data:`ENCODINGS`, maps a
task kind's name to its encoding class; a project that adds a kind adds
its encoding with :func:`register_encoding`.

An encoding works in two steps. A *value* is a map in label space: the
label with its invalid pixels set to 0 (:meth:`TaskEncoding.label_value`),
or the prediction brought to the label's form
(:meth:`TaskEncoding.prediction_value`). :meth:`TaskEncoding.encode_value`
then maps ``value * m`` to g's input, with ``m`` the image's joint validity
mask. An invalid label and a masked prediction are therefore both
``encode_value(0)``: Y and Y_hat agree wherever a labelled task is
invalid, for every kind by construction (JTR ``utils/process.py``).

Per kind (prediction value; label value; ``encode_value(v)`` and, in
brackets, the blank value ``encode_value(0)``):

* segmentation: a hard Gumbel-softmax sample with the straight-through
  gradient, tau 1 (v1's Y_hat slot, every unlabelled Y slot, every
  reconstruction target), or the softmax (v2's Y_hat slot); one-hot with
  255 -> the zero vector; ``v * m`` (0).
* saliency, boundary: the kind's own probability (softmax[1] of two
  logits, sigmoid of one), one channel; 0 / 1 with 255 -> 0; ``v * m``
  (0).
* normals: the L2-normalised output; the vector, invalid stays the zero
  vector; ``(v * m + 1) / 2`` (0.5).
* depth: the raw output; the depth, invalid 0 stays 0;
  ``Phi((v * m - mean) / std)`` (``Phi(-mean / std)``).

Segmentation reuses XTC's encodings (``projects/xtc/xtc/encodings.py``),
which are the same: the one-hot label with the zero vector at 255, and the
straight-through hard Gumbel-softmax or the softmax of the prediction.
"""
import math
from typing import ClassVar, Dict, Optional, Sequence, Tuple, Type

import torch
import torch.nn.functional as F
from torch import Tensor

from diffmtl.structures import TaskSpec, get_task_spec, task_out_channels
from projects.xtc.xtc.encodings import (encode_ground_truth, encode_prediction,
                                        valid_ground_truth)

__all__ = [
    'ENCODINGS', 'NORMALISERS', 'SEG_MODES', 'BINARY_MODES', 'TaskEncoding',
    'CategoricalEncoding', 'BinaryEncoding', 'NormalsEncoding',
    'DepthEncoding', 'register_encoding', 'build_encoding', 'encoding_channels'
]

#: Task-kind name -> encoding class (see :func:`register_encoding`).
ENCODINGS: Dict[str, Type['TaskEncoding']] = {}

#: Normalisers of the reconstruction terms: ``'mask'`` divides an image's
#: sum by its number of mask pixels, ``'nonzero'`` by the number of
#: nonzero elements of the target (the JTR code).
NORMALISERS = ('mask', 'nonzero')

#: Prediction encodings of the segmentation kind
#: (:class:`CategoricalEncoding`): ``'gumbel'`` (JTR) or ``'softmax'``
#: (deterministic: the softmax wherever JTR draws a hard sample).
SEG_MODES = ('gumbel', 'softmax')

#: Prediction encodings of the binary kinds (:class:`BinaryEncoding`).
BINARY_MODES = ('probability', 'gumbel')


def register_encoding(kind: str, force: bool = False):
    """Class decorator: the encoding of the task kind named ``kind``.

    Args:
        kind (str): A task kind's name (``TaskSpec.kind``).
        force (bool): Replace an encoding already registered for it.
    """

    def _register(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, TaskEncoding)):
            raise TypeError(f'{cls!r} is not a TaskEncoding subclass')
        if kind in ENCODINGS and not force:
            raise KeyError(f'JTR: task kind {kind!r} already has the '
                           f'encoding {ENCODINGS[kind].__name__}')
        ENCODINGS[kind] = cls
        return cls

    return _register


class TaskEncoding:
    """What JTR does with the maps of one task.

    Tensors are (N, C, H, W). ``mask`` is the joint validity mask (N, 1,
    H, W), float 0 / 1, or None for no masking.

    Attributes:
        draws_noise (bool): Whether :meth:`prediction_value` with
            ``stochastic=True`` draws noise, so that two encodings of the
            same logits differ.
        statistics (tuple[str]): Options computed from the training labels
            (the pooled mean and std of the valid values) by
            ``projects/jtr/tools/depth_stats.py``.

    Args:
        spec (TaskSpec): The task.
        out_channels (int): Channels the network predicts for it.
    """
    draws_noise: ClassVar[bool] = False
    statistics: ClassVar[Tuple[str, ...]] = ()

    def __init__(self, spec: TaskSpec, out_channels: int) -> None:
        self.spec = spec
        self.out_channels = int(out_channels)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(task={self.spec.name!r}, '
                f'channels={self.channels})')

    @classmethod
    def encoded_channels(cls, out_channels: int) -> int:
        """``n_t`` of a task whose network predicts ``out_channels``."""
        return int(out_channels)

    @property
    def channels(self) -> int:
        """``n_t``: channels of the encoded map."""
        return self.encoded_channels(self.out_channels)

    def valid(self, gt: Tensor) -> Tensor:
        """(N, 1, H, W) bool: the labelled pixels of a stacked GT map
        (``diffmtl.structures.stack_task_gt`` layout)."""
        return valid_ground_truth(self.spec, gt)[:, None]

    def zoom_label(self, gt: Tensor, factor: Tensor) -> Tensor:
        """A stacked GT map after zooming its image in by ``factor``.

        The kind's rule (``TaskKind.zoom_exponent``, the rule of
        ``TaskKind.zoom_map``) on tensors: valid values are multiplied by
        ``factor ** zoom_exponent`` (depth, exponent -1: divided by the
        factor, as JTR's ``depth / sc``); invalid pixels keep their value;
        a kind with exponent 0 is returned as it is.

        Args:
            gt (Tensor): (N, gt_channels, H, W) stacked GT.
            factor (Tensor): (N,) zoom factor of each image (>= 1 zooms
                in).

        Returns:
            Tensor: (N, gt_channels, H, W), ``gt``'s dtype (computed in it,
            as the pipeline's zoom of a float32 map).
        """
        e = float(self.spec.task_kind.zoom_exponent)
        if e == 0:
            return gt
        dtype = gt.dtype if gt.is_floating_point() else torch.float64
        f = factor.to(device=gt.device, dtype=dtype)
        f = f.view((-1, ) + (1, ) * (gt.dim() - 1))
        value = gt.to(dtype)
        value = value / f**(-e) if e < 0 else value * f**e
        return torch.where(self.valid(gt), value.to(gt.dtype), gt)

    def label_value(self, gt: Tensor) -> Tensor:
        """(N, n_t, H, W) float32: the label, invalid pixels 0."""
        raise NotImplementedError

    def prediction_value(self, logits: Tensor, stochastic: bool) -> Tensor:
        """(N, n_t, H, W): the prediction in the label's form.

        Args:
            logits (Tensor): (N, out_channels, H, W) network output.
            stochastic (bool): Draw a hard sample (kinds with
                :attr:`draws_noise`); ignored by the others.
        """
        raise NotImplementedError

    def encode_value(self,
                     value: Tensor,
                     mask: Optional[Tensor] = None) -> Tensor:
        """g's input for ``value * mask`` (N, n_t, H, W)."""
        raise NotImplementedError

    def encode_label(self, gt: Tensor) -> Tensor:
        """``e(y)`` (N, n_t, H, W); invalid pixels get the blank value.
        The label is not multiplied by the joint mask (JTR)."""
        return self.encode_value(self.label_value(gt))

    def encode_prediction(self, logits: Tensor, mask: Optional[Tensor],
                          stochastic: bool) -> Tensor:
        """``e(y_hat)`` (N, n_t, H, W); masked pixels get the blank value.
        Differentiable w.r.t. ``logits``."""
        return self.encode_value(self.prediction_value(logits, stochastic),
                                 mask)

    def blank(self, dtype=torch.float32, device=None) -> Tensor:
        """(n_t,) the value of an invalid label and of a masked
        prediction: ``encode_value(0)``."""
        zero = torch.zeros((1, self.channels, 1, 1),
                           dtype=dtype,
                           device=device)
        return self.encode_value(zero).flatten()

    def prediction_target(self, logits: Tensor, mask: Tensor) -> Tensor:
        """(N, n_t, H, W) reconstruction target taken from a prediction
        (label space; a fresh sample for kinds with :attr:`draws_noise`).

        Default: the prediction value, not masked (JTR's raw depth and
        normals predictions).
        """
        return self.prediction_value(logits, stochastic=True)

    def recon_loss(self,
                   recon: Tensor,
                   target: Tensor,
                   mask: Tensor,
                   normaliser: str = 'mask') -> Tensor:
        """Per-image reconstruction loss of g's output slot.

        Args:
            recon (Tensor): (N, n_t, H, W) g's output for this task.
            target (Tensor): (N, n_t, H, W) label-space target, detached
                here.
            mask (Tensor): (N, 1, H, W) joint mask.
            normaliser (str): One of :data:`NORMALISERS`.

        Returns:
            Tensor: (N,).
        """
        raise NotImplementedError

    @staticmethod
    def normaliser(target: Tensor, mask: Tensor, mode: str) -> Tensor:
        """(N,) divisor of a reconstruction sum, at least 1.

        ``'mask'``: the image's mask pixels; ``'nonzero'``: the nonzero
        elements of its target (JTR's ``_get_detached_and_size``).
        """
        if mode == 'mask':
            count = mask.flatten(1).sum(1)
        elif mode == 'nonzero':
            count = (target != 0).flatten(1).sum(1).to(mask.dtype)
        else:
            raise ValueError(f'normaliser must be one of {NORMALISERS}, got '
                             f'{mode!r}')
        return count.clamp(min=1)


def _masked(value: Tensor, mask: Optional[Tensor]) -> Tensor:
    return value if mask is None else value * mask


@register_encoding('segmentation')
class CategoricalEncoding(TaskEncoding):
    """Class ids (JTR's semantic task).

    Label: one-hot, 255 -> the zero vector. Prediction: a hard
    Gumbel-softmax sample with the straight-through gradient of the soft
    sample (``stochastic=True``; JTR's v1 slots, every unlabelled Y slot and
    every reconstruction target) or the softmax (JTR's v2 Y_hat slot).
    ``encode_value(v) = v * m``. Reconstruction: binary cross-entropy with
    logits summed over classes and mask pixels. Both reuse XTC's
    encodings.

    Args:
        mode (str): One of :attr:`MODES`: ``'gumbel'`` (JTR) or
            ``'softmax'``, the softmax in every slot and target, so that
            nothing draws noise (not JTR; open question 3 of the JTR
            spec). Defaults to ``'gumbel'``.
        tau (float): Gumbel-softmax temperature. Defaults to 1 (JTR).
    """
    #: The accepted ``mode`` values; the first is the default.
    MODES: ClassVar[Tuple[str, ...]] = SEG_MODES

    def __init__(self,
                 spec: TaskSpec,
                 out_channels: int,
                 mode: Optional[str] = None,
                 tau: float = 1.0) -> None:
        super().__init__(spec, out_channels)
        mode = self.MODES[0] if mode is None else mode
        if mode not in self.MODES:
            raise ValueError(f'JTR encoding of task {spec.name!r}: mode must '
                             f'be one of {self.MODES}, got {mode!r}')
        if not float(tau) > 0:
            raise ValueError(f'JTR encoding of task {spec.name!r}: tau must '
                             f'be > 0, got {tau}')
        self.mode = mode
        self.tau = float(tau)
        self.draws_noise = mode == 'gumbel'

    def label_value(self, gt):
        return encode_ground_truth(self.spec, gt, self.out_channels)

    def prediction_value(self, logits, stochastic):
        return encode_prediction(
            self.spec, logits,
            'gumbel' if stochastic and self.draws_noise else 'softmax',
            self.tau)

    def encode_value(self, value, mask=None):
        return _masked(value, mask)

    def prediction_target(self, logits, mask):
        # JTR: a fresh hard sample, times the mask
        return self.encode_prediction(logits, mask, stochastic=True)

    def recon_loss(self, recon, target, mask, normaliser='mask'):
        target = target.detach()
        loss = F.binary_cross_entropy_with_logits(
            recon, target.to(recon.dtype), reduction='none') * mask
        return loss.flatten(1).sum(1) / self.normaliser(
            target, mask, normaliser)


@register_encoding('boundary')
@register_encoding('saliency')
class BinaryEncoding(CategoricalEncoding):
    """0 / 1 labels (255 = unlabelled), one channel (not in JTR; inferred).

    Label: the 0 / 1 map, 255 -> 0. Prediction: the kind's own probability
    (``logits_to_pred``: softmax[1] of saliency's two logits, sigmoid of
    boundary's one), in both views (``mode='probability'``); or with
    ``mode='gumbel'`` a hard binary-concrete sample with the
    straight-through gradient wherever JTR draws a hard semantic sample.
    ``encode_value(v) = v * m``; reconstruction: binary cross-entropy with
    logits, as segmentation.

    Args:
        mode (str): One of :data:`BINARY_MODES`. Defaults to
            ``'probability'``.
        tau (float): Binary-concrete temperature (``'gumbel'``). Defaults
            to 1.
    """
    MODES = BINARY_MODES

    def __init__(self,
                 spec: TaskSpec,
                 out_channels: int,
                 mode: Optional[str] = None,
                 tau: float = 1.0) -> None:
        super().__init__(spec, out_channels, mode=mode, tau=tau)
        if self.out_channels not in (1, 2):
            raise ValueError(
                f'JTR encoding of task {spec.name!r}: a binary task has '
                f'one logit or two class logits, got {self.out_channels}')

    @classmethod
    def encoded_channels(cls, out_channels: int) -> int:
        return 1

    def label_value(self, gt):
        valid = self.valid(gt)
        return torch.where(valid, gt[:, :1],
                           torch.zeros_like(gt[:, :1])).to(torch.float32)

    def binary_logit(self, logits: Tensor) -> Tensor:
        """(N, 1, H, W) log-odds of the positive class: ``l1 - l0`` of two
        class logits, the logit itself of one."""
        if logits.shape[1] == 2:
            return logits[:, 1:] - logits[:, :1]
        return logits

    def prediction_value(self, logits, stochastic):
        if self.mode == 'gumbel' and stochastic:
            logit = self.binary_logit(logits)
            u = torch.rand_like(logit).clamp(1e-10, 1 - 1e-7)
            soft = torch.sigmoid(
                (logit + torch.log(u) - torch.log1p(-u)) / self.tau)
            hard = (soft > 0.5).to(soft.dtype)
            return hard - soft.detach() + soft
        return self.spec.task_kind.logits_to_pred(logits)


@register_encoding('normals')
class NormalsEncoding(TaskEncoding):
    """Unit vectors, the zero vector invalid.

    Label value: the vector (invalid stays the zero vector). Prediction
    value: the kind's prediction, the L2-normalised output (JTR's network
    normalises inside; the baseline outputs unnormalised vectors).
    ``encode_value(v) = (v * m + 1) / 2``, so invalid and masked pixels
    are 0.5. Reconstruction: ``1 - sum(r / |r| . t * m) / N`` with a unit
    target ``t`` (JTR: the same with an eps-free norm).
    """

    def __init__(self,
                 spec: TaskSpec,
                 out_channels: int,
                 eps: float = 1e-12) -> None:
        super().__init__(spec, out_channels)
        self.eps = float(eps)

    def label_value(self, gt):
        return gt.to(torch.float32) * self.valid(gt).to(torch.float32)

    def prediction_value(self, logits, stochastic):
        return self.spec.task_kind.logits_to_pred(logits)

    def encode_value(self, value, mask=None):
        return (_masked(value, mask) + 1) / 2

    def recon_loss(self, recon, target, mask, normaliser='mask'):
        target = target.detach()
        unit = F.normalize(recon, p=2, dim=1, eps=self.eps)
        dot = (unit * target.to(recon.dtype) * mask).flatten(1).sum(1)
        return 1 - dot / self.normaliser(target, mask, normaliser)


@register_encoding('depth')
class DepthEncoding(TaskEncoding):
    """Distances, 0 invalid.

    Label value: the depth (0 stays 0); prediction value: the raw output.
    ``encode_value(v) = Phi((v * m - mean) / std)``, the Normal CDF of the
    standardised depth, so invalid and masked pixels are
    ``Phi(-mean / std)``. Reconstruction: L1 between
    ``(sigmoid(r) - 0.5)(1 - 1e-5) + 0.5`` and ``Phi((t - mean) / std)``
    over the mask.

    ``mean`` and ``std`` are the pooled mean and std of the valid training
    depth of the setting, in the dataset's units; print them with
    ``projects/jtr/tools/depth_stats.py`` (JTR hard-codes 2.3618 and
    1.5876 for NYUv2 and reuses them on Cityscapes).

    Args:
        mean (float): Required.
        std (float): Required, > 0.
    """
    statistics = ('mean', 'std')

    def __init__(self,
                 spec: TaskSpec,
                 out_channels: int,
                 mean: Optional[float] = None,
                 std: Optional[float] = None) -> None:
        super().__init__(spec, out_channels)
        where = f'encodings[{spec.name!r}]'
        missing = [k for k, v in (('mean', mean), ('std', std)) if v is None]
        if missing:
            raise ValueError(
                f'JTR encoding of task {spec.name!r} ({spec.kind}) needs '
                f'{where} to set {missing}: the mean and std of the valid '
                'training depth of the setting (print them with python '
                'projects/jtr/tools/depth_stats.py CONFIG)')
        if not (math.isfinite(float(mean)) and math.isfinite(float(std))
                and float(std) > 0):
            raise ValueError(f'JTR: {where} needs a finite mean and std > 0, '
                             f'got mean={mean}, std={std}')
        self.mean = float(mean)
        self.std = float(std)

    def label_value(self, gt):
        return gt.to(torch.float32) * self.valid(gt).to(torch.float32)

    def prediction_value(self, logits, stochastic):
        return self.spec.task_kind.logits_to_pred(logits)

    def cdf(self, depth: Tensor) -> Tensor:
        """``Phi((depth - mean) / std)``, elementwise."""
        return torch.special.ndtr((depth - self.mean) / self.std)

    def encode_value(self, value, mask=None):
        return self.cdf(_masked(value, mask))

    def recon_loss(self, recon, target, mask, normaliser='mask'):
        target = target.detach()
        p = (torch.sigmoid(recon) - 0.5) * (1 - 1e-5) + 0.5
        loss = (p - self.cdf(target.to(recon.dtype))).abs() * mask
        return loss.flatten(1).sum(1) / self.normaliser(
            target, mask, normaliser)


def build_encoding(spec: TaskSpec,
                   out_channels: int,
                   options: Optional[dict] = None) -> TaskEncoding:
    """The encoding of one task, from its kind's entry of
    :data:`ENCODINGS`.

    Args:
        spec (TaskSpec): The task.
        out_channels (int): Channels the network predicts for it.
        options (dict, optional): The task's ``encodings`` options.

    Raises:
        KeyError: The kind has no encoding.
        ValueError: An unknown or invalid option, naming the task.
    """
    cls = ENCODINGS.get(spec.kind)
    if cls is None:
        raise KeyError(f'JTR has no encoding for task kind {spec.kind!r} '
                       f'(task {spec.name!r}); encodings exist for '
                       f'{sorted(ENCODINGS)} (add one with '
                       'projects.jtr.jtr.register_encoding)')
    options = dict(options or {})
    try:
        return cls(spec, out_channels, **options)
    except TypeError as err:
        raise ValueError(f'JTR: encodings[{spec.name!r}] = {options} does '
                         f'not fit {cls.__name__} ({err})') from None


def encoding_channels(
        tasks: Sequence[str],
        num_classes: Optional[Dict[str, int]] = None) -> Dict[str, int]:
    """``{task: n_t}``: encoded channels of each task (their sum is g's
    ``in_channels``).

    Args:
        tasks (Sequence[str]): Task names.
        num_classes (dict, optional): Classes of the segmentation tasks.
    """
    out = {}
    for task in tasks:
        spec = get_task_spec(task)
        n = task_out_channels(task, num_classes)
        cls = ENCODINGS.get(spec.kind)
        if cls is None:
            build_encoding(spec, n)  # raises, naming the kind
        out[task] = cls.encoded_channels(n)
    return out
