# Copyright (c) diffmtl contributors. All rights reserved.
"""The base of a *task kind*: everything that depends on what a task
predicts (class ids, a probability, a vector, a distance), in one class.

A :class:`TaskKind` says how a map of its kind is decoded from a file, padded,
flipped and zoomed, which loss it trains with, how raw network outputs become
predictions, how test-time-augmented views merge, how it is scored
(:class:`TaskMetric`), exported and coloured. The built-in kinds live in
:mod:`diffmtl.tasks` (one module each); a project adds a kind with
``@register_task_kind`` on a subclass and a task of that kind with
:func:`~diffmtl.structures.register_task_spec` (see ``docs/en/add_task.md``).

Array conventions used by every method (the *data contract* of
:mod:`diffmtl.structures.task_spec`):

* ground-truth maps in pipelines: numpy (H, W) for 1-channel kinds, (H, W, C)
  otherwise;
* packed ground truth, logits and predictions: tensors (C, H, W) or
  (N, C, H, W), the channel dim is ``-3``;
* predictions handed to metrics / exports: numpy (C, H, W).
"""
from typing import (ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple,
                    Type, Union)

import mmcv
import numpy as np
import torch
from torch import Tensor

from diffmtl.registry import TASK_KINDS
from .maps import resize_map

__all__ = [
    'TaskKind', 'TaskMetric', 'get_task_kind', 'list_task_kinds',
    'register_task_kind', 'FLIP_DIRECTIONS', 'apply_cmap'
]

#: Flip directions understood by the transforms and the test-time un-flip.
FLIP_DIRECTIONS = ('horizontal', 'vertical', 'diagonal')


def apply_cmap(name: str, values: np.ndarray) -> np.ndarray:
    """Map ``values`` in [0, 1] to RGB uint8 with a matplotlib colour map
    (``'gray'`` is an exact 0..255 ramp)."""
    values = np.clip(values, 0.0, 1.0)
    if name == 'gray':
        v = np.round(values * 255).astype(np.uint8)
        return np.repeat(v[..., None], 3, axis=-1)
    import matplotlib
    rgba = matplotlib.colormaps[name](values, bytes=True)
    return np.ascontiguousarray(rgba[..., :3])


class TaskMetric:
    """Per-task metric: per-image statistics and their reduction.

    :class:`~diffmtl.evaluation.MultiTaskMetric` builds one per task with
    :meth:`TaskKind.build_metric` (options from its ``task_metrics``), sets
    :attr:`dataset_meta`, and calls :meth:`process` on every labelled image
    and :meth:`compute` once on all records. Records must be sums (or
    per-image arrays) that can be reduced over any split of the data, so that
    multi-process evaluation equals single-process evaluation.

    Args:
        task (str): Task name.
        spec: The task's :class:`~diffmtl.structures.TaskSpec`.
    """

    def __init__(self, task: str, spec) -> None:
        self.task = task
        self.spec = spec
        self.dataset_meta: dict = {}

    @property
    def scored(self) -> bool:
        """False when the options switch scoring off (no warning then)."""
        return True

    def process(self, pred: np.ndarray, gt: np.ndarray,
                img_id: str) -> Optional[dict]:
        """Statistics of one image.

        Args:
            pred (ndarray): (C, H, W) prediction (``pred_field`` layout).
            gt (ndarray): (C, H, W) ground truth (``gt_field`` layout).
            img_id (str): The image's id.

        Returns:
            dict or None: The record; None when the image has nothing to
            score for this task (no valid pixel).
        """
        raise NotImplementedError

    def compute(self, records: List[dict]) -> Tuple[Dict[str, float], dict]:
        """Metrics of the task over ``records``.

        Returns:
            tuple: ``(metrics, extra)``: ``metrics`` an ordered
            ``{name: float}``; ``extra`` may hold ``'table'`` (str printed
            to the log), ``'per_class'`` (``{class: value}`` for
            ``metrics.json``) and ``'per_class_keys'`` (``{key suffix:
            value}`` added as ``<task>/<suffix>``).
        """
        raise NotImplementedError

    def config(self) -> dict:
        """Options worth recording in ``metrics.json``."""
        return {}

    # helpers shared by the built-in metrics
    @staticmethod
    def summary_table(res: Mapping[str, float]) -> str:
        from prettytable import PrettyTable
        table = PrettyTable(field_names=list(res))
        table.add_row([f'{v:.4f}' for v in res.values()])
        return table.get_string()


class TaskKind:
    """What every task of one kind shares. Subclass and register.

    Class attributes are the kind's defaults; a
    :class:`~diffmtl.structures.TaskSpec` may override the data-level ones
    (``discrete``, ``gt_channels``, ``ignore_index``, ``pad_value``,
    ``interp``, ``loss``, ``primary_metric``, ``higher_is_better``,
    ``cmap``, ``out_channels``) per task.

    Attributes:
        name (str): Registry name, the value of ``TaskSpec.kind``.
        discrete (bool): Ground truth holds integer labels (``uint8``).
        gt_channels (int): Channels of the ground-truth map.
        out_channels (int, optional): Channels the network predicts; None
            means "the task's number of classes".
        ignore_index (int, optional): Label excluded from losses and
            metrics (discrete kinds); None for continuous kinds, whose
            invalid pixels are zero.
        pad_value (float): Fill of padding and of unlabelled tasks' maps.
        interp (str): Interpolation of ground-truth resizes.
        loss (dict): Default loss config (a ``MODELS`` loss).
        primary_metric (str): Metric key used by delta-m.
        higher_is_better (bool): Direction of ``primary_metric``.
        cmap (str): Colour map name used by :meth:`colorize`.
        formats (dict): Annotation-file suffix -> decoder name registered
            with :func:`~diffmtl.datasets.transforms.register_ann_decoder`.
        flip_negate (dict): Flip direction -> channels whose sign flips
            with the image (vector fields in the image frame).
        flip_swap (dict): Flip direction -> pairs of channels that trade
            places with the image (left/right keypoint heatmaps:
            ``{'horizontal': ((0, 1), (2, 3))}``). Applied before
            ``flip_negate``, which names channels of the flipped map.
        zoom_exponent (float): On a zoom by ``s`` values are multiplied by
            ``s ** zoom_exponent`` (-1 for depth: zooming in by ``s`` brings
            things ``s`` times closer; +1 for pixel displacements).
        export_suffix (str): Suffix of :meth:`export`'s files.
        encode_suffix (str, optional): Suffix (a key of ``formats``) of
            :meth:`encode`'s lossless ground-truth files; default the first
            of ``formats``.
        metric (type): The :class:`TaskMetric` subclass.
        gt_value_range (tuple): ``(low, high)`` of the values of valid
            continuous ground truth, per channel; the generic kind tests
            draw their maps from it (discrete kinds draw labels below
            :meth:`num_labels` instead). Default ``(0.25, 4.0)``: positive
            values such as depth in metres.
    """
    name: ClassVar[str] = ''
    discrete: ClassVar[bool] = True
    gt_channels: ClassVar[int] = 1
    out_channels: ClassVar[Optional[int]] = None
    ignore_index: ClassVar[Optional[int]] = 255
    pad_value: ClassVar[float] = 255
    interp: ClassVar[str] = 'nearest'
    loss: ClassVar[dict] = {}
    primary_metric: ClassVar[str] = ''
    higher_is_better: ClassVar[bool] = True
    cmap: ClassVar[str] = 'gray'
    formats: ClassVar[Dict[str, str]] = {'.png': 'label_png'}
    flip_negate: ClassVar[Dict[str, Tuple[int, ...]]] = {}
    flip_swap: ClassVar[Dict[str, Tuple[Tuple[int, int], ...]]] = {}
    zoom_exponent: ClassVar[float] = 0.0
    export_suffix: ClassVar[str] = '.npy'
    encode_suffix: ClassVar[Optional[str]] = None
    metric: ClassVar[Optional[Type[TaskMetric]]] = None
    gt_value_range: ClassVar[Tuple[float, float]] = (0.25, 4.0)

    #: Tasks of this kind have named classes (dataset ``task_classes`` /
    #: ``task_palettes``, per-class metrics).
    has_classes: ClassVar[bool] = False

    # ------------------------------------------------------------------
    # data
    # ------------------------------------------------------------------
    def dataset_meta(self, spec, dataset) -> dict:
        """Extra ``metainfo`` a dataset with a task of this kind records
        (read from the dataset's attributes); default none."""
        return {}

    def num_labels(self, spec, num_classes: Optional[int]) -> Optional[int]:
        """Number of valid label values of a discrete task (for the
        load-time range check); None: no check.

        ``num_classes`` is the task's number of classes when the dataset
        knows it (``results['num_classes']``, recorded for kinds with
        :attr:`has_classes`); the default uses it and otherwise does not
        check.
        """
        return None if num_classes is None else int(num_classes)

    def check_map(self, spec, arr: np.ndarray, path: str) -> None:
        """Refuse one decoded ground-truth map whose values this kind cannot
        hold (e.g. negative depth).

        ``LoadMultiTaskAnnotations`` calls it for every labelled file right
        after decoding, so it must be cheap (one pass over the map). The
        default checks nothing.

        Args:
            spec: The task's :class:`~diffmtl.structures.TaskSpec`.
            arr (ndarray): The decoded (H, W[, C]) map (``gt_dtype``).
            path (str): The file it was decoded from (for the message).

        Raises:
            ValueError: Naming the task, the file and the fix.
        """

    def check_encoding(self, spec, maps: Sequence[np.ndarray],
                       paths: Sequence[str]) -> List[str]:
        """Check the encoding of a sample of one task's decoded maps.

        Datasets call it once, when their data list is first read, with a
        few labelled files of the task (see ``MultiTaskPartialDataset``'s
        ``encoding_check_samples``). It catches encodings that decode
        without error but mean something else (0/255 binary maps read as
        0 / ignore, normals that are not unit vectors). The default runs
        :meth:`check_map` on each map.

        Args:
            spec: The task's :class:`~diffmtl.structures.TaskSpec`.
            maps (list[ndarray]): Decoded (H, W[, C]) maps.
            paths (list[str]): Their files, in the same order.

        Returns:
            list[str]: Warnings for the dataset to log (suspicious but
            possibly intended values).

        Raises:
            ValueError: For an encoding that would be silently misread,
                naming the task, example files and the fix.
        """
        for arr, path in zip(maps, paths):
            self.check_map(spec, arr, path)
        return []

    def gt_dtype(self, spec) -> np.dtype:
        """numpy dtype of pipeline ground-truth maps."""
        return np.dtype(np.uint8 if spec.discrete else np.float32)

    def fill_map(self, spec, shape_hw: Sequence[int]) -> np.ndarray:
        """The map of an unlabelled task: ``pad_value`` everywhere."""
        h, w = int(shape_hw[0]), int(shape_hw[1])
        shape = (h, w) if spec.gt_channels == 1 else (h, w, spec.gt_channels)
        return np.full(shape, spec.pad_value, dtype=self.gt_dtype(spec))

    @staticmethod
    def _check_direction(direction: str) -> None:
        if direction not in FLIP_DIRECTIONS:
            raise ValueError(f'unknown flip direction {direction!r}; '
                             f'expected one of {FLIP_DIRECTIONS}')

    def _swap_source(self, direction: str, c: int) -> int:
        """The input channel that output channel ``c`` comes from on a
        ``'horizontal'`` or ``'vertical'`` flip (``flip_swap``)."""
        for a, b in self.flip_swap.get(direction, ()):
            if c == a:
                return b
            if c == b:
                return a
        return c

    def negated_channels(self, direction: str) -> Tuple[int, ...]:
        """Channels of the flipped map that change sign on a flip in
        ``direction``.

        ``'diagonal'`` is the horizontal flip followed by the vertical one:
        a channel is negated when exactly one of the two negates it, after
        the vertical flip's swaps moved the horizontal flip's negations.
        """
        self._check_direction(direction)
        if direction == 'diagonal':
            neg_h = set(self.flip_negate.get('horizontal', ()))
            moved = {
                c for c in self._swapped_channels('vertical') | neg_h
                if self._swap_source('vertical', c) in neg_h
            }
            chans = moved ^ set(self.flip_negate.get('vertical', ()))
            return tuple(sorted(chans))
        return tuple(self.flip_negate.get(direction, ()))

    def _swapped_channels(self, direction: str) -> set:
        return {c for pair in self.flip_swap.get(direction, ()) for c in pair}

    @staticmethod
    def _flip_steps(direction: str) -> Tuple[str, ...]:
        """A flip as single-axis flips: the diagonal is horizontal, then
        vertical."""
        return (('horizontal', 'vertical')
                if direction == 'diagonal' else (direction, ))

    def channel_order(self, direction: str,
                      num_channels: int) -> Optional[List[int]]:
        """Input channel of each output channel after a flip in
        ``direction`` (``flip_swap``); None when no channel moves.

        ``'diagonal'`` composes the horizontal and the vertical swaps.
        """
        self._check_direction(direction)
        steps = self._flip_steps(direction)
        if not any(self.flip_swap.get(d) for d in steps):
            return None
        order = list(range(num_channels))
        for d in steps:  # out[c] = prev[src(c)] = x[order[src(c)]]
            order = [order[self._swap_source(d, c)]
                     for c in range(num_channels)]
        return order

    def _check_flip_channels(self, spec, shape, direction: str) -> None:
        used = set(self.negated_channels(direction))
        steps = self._flip_steps(direction)
        for d in steps:
            used |= self._swapped_channels(d)
        if not used:
            return
        channels = shape[-1] if len(shape) == 3 else None
        if channels is None or channels <= max(used):
            raise ValueError(
                f'task {spec.name!r} ({self.name}): a {direction} flip '
                f'negates channels {self.negated_channels(direction)} and '
                f'swaps {[self.flip_swap.get(d, ()) for d in steps]} but '
                f'the map has shape {tuple(shape)}')

    def flip_map(self, spec, arr: np.ndarray, direction: str) -> np.ndarray:
        """Flip an (H, W[, C]) ground-truth map with the image.

        Mirrors the pixels, reorders the channels that ``flip_swap`` pairs
        and negates :meth:`negated_channels` (as ``0 - x`` so invalid
        zeros stay ``+0.0``). Returns a new array.
        """
        self._check_flip_channels(spec, arr.shape, direction)
        arr = mmcv.imflip(arr, direction)  # a view; copied below
        order = self.channel_order(direction, arr.shape[-1]) \
            if arr.ndim == 3 else None
        arr = arr[..., order] if order is not None else arr.copy()
        for c in self.negated_channels(direction):
            arr[..., c] = 0 - arr[..., c]
        return arr

    def flip_tensor(self, spec, t: Tensor, direction: str) -> Tensor:
        """Flip (..., C, H, W) logits or predictions (undo a test flip).

        Only ``'horizontal'`` and ``'vertical'``; reorders and negates the
        same channels as :meth:`flip_map` (logits of vector kinds are the
        vectors, those of heatmap kinds the heatmaps).
        """
        if direction == 'horizontal':
            dim = -1
        elif direction == 'vertical':
            dim = -2
        else:
            raise ValueError(f'flip of task {spec.name!r}: unsupported flip '
                             f'direction {direction!r} (expected horizontal '
                             'or vertical)')
        out = t.flip(dims=(dim, ))
        order = self.channel_order(direction, out.shape[-3])
        if order is not None:
            out = out[..., order, :, :]
        neg = self.negated_channels(direction)
        if neg:
            sign = torch.ones(out.shape[-3], dtype=out.dtype,
                              device=out.device)
            sign[list(neg)] = -1
            out = out * sign.view(-1, 1, 1)
        return out

    def zoom_map(self, spec, arr: np.ndarray, factor: float) -> np.ndarray:
        """Values of a map after zooming the image by ``factor``.

        Multiplies by ``factor ** zoom_exponent``; a negative exponent is
        applied as a division by ``factor ** -zoom_exponent`` (for depth
        exactly ``arr / factor``, the reference's arithmetic). The map
        keeps its dtype; with ``zoom_exponent == 0`` it is returned as it
        is.
        """
        e = self.zoom_exponent
        if e == 0:
            return arr
        out = arr / factor**(-e) if e < 0 else arr * factor**e
        return out.astype(arr.dtype)

    # ------------------------------------------------------------------
    # model outputs
    # ------------------------------------------------------------------
    def head_bias(self, spec, out_channels: int
                  ) -> Optional[Union[float, Sequence[float]]]:
        """Initial bias of the convolution that predicts a task of this
        kind (the models' output heads): one value for every channel, or
        one value per channel. None (the default) keeps PyTorch's
        initialisation.

        For example a kind trained with a focal loss starts its logits at a
        prior ``p``: ``return -math.log((1 - p) / p)``. Setting a bias
        draws no random numbers, so the other weights of a seeded model do
        not change.
        """
        return None

    def logits_to_pred(self, logits: Tensor) -> Tensor:
        """Raw output (..., C, H, W) -> prediction (..., C', H, W)."""
        return logits

    def merge_logits(self, stack: Tensor) -> Tensor:
        """Merge the (V, C, H, W) logits of V augmented views into logits
        whose prediction is the merged prediction (default: the mean)."""
        return stack.mean(0)

    def resize_pred(self, arr: np.ndarray,
                    shape_hw: Sequence[int]) -> np.ndarray:
        """Resize an (H, W[, C]) prediction to ``shape_hw`` (bilinear, in
        ``float32``)."""
        return resize_map(arr.astype(np.float32), shape_hw, 'bilinear')

    # ------------------------------------------------------------------
    # evaluation and export
    # ------------------------------------------------------------------
    def perfect_scores(self, spec) -> Dict[str, float]:
        """The metrics (``{name: value}``, the metric's own units) that a
        prediction equal to its ground truth gets with the default metric
        options; the generic metric test checks them. Default: the
        primary metric at 100 when higher is better, else 0. A kind whose
        metric returns more values lists them."""
        return {
            spec.primary_metric: 100.0 if spec.higher_is_better else 0.0
        }

    def build_metric(self, spec, **options) -> TaskMetric:
        """The task's :class:`TaskMetric` with per-task ``options``."""
        if self.metric is None:
            raise NotImplementedError(f'task kind {self.name!r} has no '
                                      'metric')
        return self.metric(spec.name, spec, **options)

    def export(self, spec, pred: np.ndarray, path_stem: str) -> str:
        """Write a (C, H, W) prediction to ``path_stem + export_suffix``
        (default: float32 ``.npy``, (H, W) or (H, W, C)); returns the path.
        """
        path = path_stem + self.export_suffix
        arr = pred.astype(np.float32)
        arr = arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)
        np.save(path, arr)
        return path

    def encode(self, spec, gt: np.ndarray, path_stem: str) -> str:
        """Write an (H, W[, C]) ground-truth map so that decoding the file
        (with ``formats[encode_suffix]``) gives ``gt`` back; returns the
        path. ``.npy`` files hold ``gt_dtype``, other suffixes 8-bit
        images."""
        suffix = self.encode_suffix or next(iter(self.formats))
        path = path_stem + suffix
        if suffix == '.npy':
            np.save(path, np.asarray(gt, dtype=self.gt_dtype(spec)))
        else:
            mmcv.imwrite(np.asarray(gt, dtype=np.uint8), path)
        return path

    # ------------------------------------------------------------------
    # pictures
    # ------------------------------------------------------------------
    def invalid_mask(self, spec, arr: np.ndarray) -> np.ndarray:
        """Pixels without a label in an (H, W[, C]) map."""
        if arr.ndim == 3:
            return ~np.isfinite(arr).all(-1) | (np.abs(arr).sum(-1) == 0)
        invalid = ~np.isfinite(arr)
        if spec.ignore_index is not None:
            invalid |= arr == spec.ignore_index
        elif not spec.discrete and spec.pad_value == 0:
            invalid |= arr <= 0
        return invalid

    def valid_value_range(self, spec, arr: np.ndarray,
                          valid_only: bool = True) -> Tuple[float, float]:
        """(min, max) of an (H, W[, C]) map over its valid pixels (not
        :meth:`invalid_mask`), or with ``valid_only=False`` over all its
        finite values; (0, 1) when there is none, ``(v, v + 1)`` for a
        constant map."""
        arr = np.asarray(arr, dtype=np.float64)
        invalid = self.invalid_mask(spec, arr) if valid_only else \
            ~np.isfinite(arr)
        valid = arr[~invalid]
        valid = valid[np.isfinite(valid)]
        if valid.size == 0:
            return 0.0, 1.0
        lo, hi = float(valid.min()), float(valid.max())
        return (lo, hi) if hi > lo else (lo, lo + 1.0)

    def default_value_range(self, spec, arr: np.ndarray
                            ) -> Tuple[float, float]:
        """Value range mapped to the colour map's ends when none is given:
        (0, 1) for discrete kinds, the map's valid min/max otherwise."""
        if spec.discrete:
            return 0.0, 1.0
        return self.valid_value_range(spec, arr)

    def shared_value_range(self, spec, gt: Optional[np.ndarray] = None,
                           pred: Optional[np.ndarray] = None
                           ) -> Optional[Tuple[float, float]]:
        """The ``value_range`` the ground-truth and prediction tiles of one
        image share, so that their colours compare: the valid range of a
        1-channel ``gt``, else the finite range of ``pred`` (an untrained
        head may predict values a ground truth marks invalid). None (each
        tile's :meth:`colorize` chooses) for discrete maps, whose colours
        are fixed, for multi-channel maps (normals: the vector is the
        colour; a vector kind that wants a shared scale overrides this) and
        when neither map is given."""
        if spec.discrete or spec.gt_channels != 1:
            return None
        if gt is not None:
            return self.valid_value_range(spec, gt)
        if pred is not None:
            return self.valid_value_range(spec, pred, valid_only=False)
        return None

    def colorize(self, spec, arr: np.ndarray, meta: Optional[dict] = None,
                 value_range: Optional[Tuple[float, float]] = None,
                 image: Optional[np.ndarray] = None,
                 alpha: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
        """Colour a map: (H, W[, C]) numpy -> ((H, W, 3) uint8, (H, W)
        invalid mask). Default: ``spec.cmap`` over ``value_range`` of a
        1-channel map."""
        arr = np.asarray(arr, dtype=np.float64)
        if arr.ndim == 3:
            arr = arr[..., 0]
        invalid = self.invalid_mask(spec, arr)
        if value_range is None:
            value_range = self.default_value_range(spec, arr)
        lo, hi = float(value_range[0]), float(value_range[1])
        scaled = (np.nan_to_num(arr) - lo) / max(hi - lo, 1e-12)
        return apply_cmap(spec.cmap, scaled), invalid

    #: Whether :meth:`colorize` always marks invalid pixels (class ids
    #: outside a palette have no colour of their own).
    always_mark_invalid: ClassVar[bool] = False


_KIND_INSTANCES: Dict[str, TaskKind] = {}


def register_task_kind(cls: Optional[type] = None, force: bool = False):
    """Class decorator registering a :class:`TaskKind` subclass in
    :data:`~diffmtl.registry.TASK_KINDS` under its ``name`` attribute.

    Usable as ``@register_task_kind`` or ``@register_task_kind(force=True)``.
    """

    def _register(kind_cls: type) -> type:
        if not (isinstance(kind_cls, type) and issubclass(kind_cls, TaskKind)):
            raise TypeError(f'{kind_cls!r} is not a TaskKind subclass')
        if not kind_cls.name:
            raise ValueError(f'{kind_cls.__name__} has no `name`')
        TASK_KINDS.register_module(
            name=kind_cls.name, module=kind_cls, force=force)
        _KIND_INSTANCES.pop(kind_cls.name, None)
        return kind_cls

    return _register if cls is None else _register(cls)


def get_task_kind(name: str) -> TaskKind:
    """The registered kind ``name`` (one shared instance).

    Raises:
        KeyError: Naming the unknown kind and the known ones.
    """
    cls = TASK_KINDS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise KeyError(f'unknown task kind {name!r}; registered kinds are '
                       f'{list_task_kinds()} (add one with '
                       'diffmtl.structures.register_task_kind)')
    inst = _KIND_INSTANCES.get(name)
    if inst is None or type(inst) is not cls:
        inst = _KIND_INSTANCES[name] = cls()
    return inst


def list_task_kinds() -> List[str]:
    """Names of the registered task kinds, sorted."""
    return sorted(TASK_KINDS.module_dict)

