# Copyright (c) diffmtl contributors. All rights reserved.
"""One small table that describes every dense prediction task.

A :class:`TaskSpec` is a task's name, its kind and its per-task options.
Loaders, transforms, packing, the data preprocessor, losses, metrics and the
visualiser read the per-task facts from the spec and everything
kind-specific from the spec's :class:`~diffmtl.structures.TaskKind`
(``spec.task_kind``; built-in kinds in :mod:`diffmtl.tasks`), instead of
branching on task names or kinds. Adding a task of an existing kind means
registering one more spec (:func:`register_task_spec`); adding a kind, one
more :class:`~diffmtl.structures.TaskKind` subclass (``docs/en/add_task.md``).

Conventions shared by every component (the *data contract*):

* Pipeline ``results`` hold each task's map under ``spec.results_key`` as a
  numpy array: ``uint8`` (H, W) for discrete tasks with ``ignore_index``
  marking unlabelled pixels, ``float32`` (H, W, C) for ``gt_channels`` C > 1
  (normals: the zero vector marks invalid pixels) and ``float32`` (H, W)
  for depth (0 marks invalid pixels). A task that is not labelled for an image is materialised
  filled with ``spec.pad_value`` so that every field stays aligned.
* A packed :class:`mmseg.structures.SegDataSample` carries each task's ground
  truth as ``PixelData`` in ``spec.gt_field`` (``int64`` [1, H, W] for
  discrete tasks, ``float32`` [3, H, W] for normals, ``float32`` [1, H, W]
  for depth) and ``metainfo['tasks']`` / ``metainfo['task_mask']``: the task
  names in dataset order and a tuple of bools saying which are labelled.
* Predictions are written to ``spec.pred_field`` (class ids ``int64``
  [1, H, W] for segmentation, a probability ``float32`` [1, H, W] for
  saliency (of the salient class) and boundaries, unit vectors [3, H, W]
  for normals, metres / dataset units [1, H, W] for depth) and the raw
  network output to ``spec.logits_field``.
"""
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch

from .task_kind import TaskKind, get_task_kind

__all__ = [
    'TaskSpec', 'TASK_SPECS', 'register_task_spec', 'get_task_spec',
    'get_task_specs', 'task_out_channels', 'stack_task_gt',
    'get_task_mask', 'stage_field', 'task_class_names', 'HUMAN_PART_CLASSES'
]

#: Classes of the PASCAL-Context human-part task (and the synthetic one).
HUMAN_PART_CLASSES = ('background', 'head', 'torso', 'uarm', 'larm', 'uleg',
                      'lleg')

_KIND_FIELDS = ('discrete', 'gt_channels', 'ignore_index', 'pad_value',
                'interp', 'loss', 'primary_metric', 'higher_is_better',
                'cmap', 'out_channels')


@dataclass(frozen=True)
class TaskSpec:
    """Static description of one dense prediction task: its name, its kind
    and its per-task options.

    Everything a task shares with the other tasks of its kind (decoders,
    geometry, loss, prediction, metric, colours) lives in the kind, a
    :class:`~diffmtl.structures.TaskKind` registered under ``kind``. The
    data-level fields below default to the kind's values (``None`` means
    "the kind's"), so a spec only states what differs for this task.

    Args:
        name (str): Task name used in configs (``'semseg'``, ``'normals'``).
        kind (str): A registered task kind (``'segmentation'``,
            ``'saliency'``, ``'normals'``, ``'boundary'``, ``'depth'`` or a
            plugin's); see :func:`~diffmtl.structures.list_task_kinds`.
        results_key (str): Key of the map in a transform's ``results``.
        gt_field (str): ``SegDataSample`` field of the ground truth.
        pred_field (str): ``SegDataSample`` field of the prediction.
        logits_field (str): ``SegDataSample`` field of the raw output.
        out_channels (int, optional): Channels the network predicts. ``None``
            takes the kind's; for segmentation-kind tasks that is their
            number of classes (see :func:`task_out_channels`).
        gt_channels (int, optional): Channels of the ground-truth map.
        discrete (bool, optional): Whether the ground truth holds integer
            labels.
        ignore_index (int, optional): Label value excluded from losses and
            metrics for discrete tasks; continuous kinds have none (their
            invalid pixels are zero).
        pad_value (float, optional): Value used to pad the ground truth and
            to fill the map of an unlabelled task.
        interp (str, optional): Interpolation used to resize the ground
            truth (``'nearest'`` for every built-in task, as the reference).
        loss (dict, optional): Default loss config, a loss in ``MODELS``.
        primary_metric (str, optional): Metric key used for delta-m.
        higher_is_better (bool, optional): Direction of ``primary_metric``.
        cmap (str, optional): Colour map the kind's ``colorize`` uses.
        default_classes (tuple, optional): Class names for segmentation-kind
            tasks whose classes do not come from a dataset.
        mmseg_classes (bool): This task is what MMSegmentation calls *the*
            segmentation: its classes and palette are also the dataset's
            ``metainfo['classes']`` / ``['palette']``, and mmseg's
            ``label_map`` (``classes=`` subsets) applies to it. True for
            ``semseg`` only.
    """
    name: str
    kind: str
    results_key: str
    gt_field: str
    pred_field: str
    logits_field: str
    out_channels: Optional[int] = None
    gt_channels: Optional[int] = None
    discrete: Optional[bool] = None
    ignore_index: Optional[int] = None
    pad_value: Optional[float] = None
    interp: Optional[str] = None
    loss: Optional[dict] = None
    primary_metric: Optional[str] = None
    higher_is_better: Optional[bool] = None
    cmap: Optional[str] = None
    default_classes: Optional[Tuple[str, ...]] = None
    mmseg_classes: bool = False

    def __post_init__(self):
        try:
            kind = get_task_kind(self.kind)
        except KeyError as e:
            raise ValueError(f'TaskSpec {self.name!r}: {e.args[0]}') from None
        for f in _KIND_FIELDS:
            if getattr(self, f) is None:
                value = getattr(kind, f)
                if f == 'ignore_index' and self.discrete is False:
                    value = None  # a continuous task has no ignore label
                object.__setattr__(self, f,
                                   dict(value) if f == 'loss' else value)
        if not isinstance(self.gt_channels, int) or self.gt_channels < 1:
            raise ValueError(f'TaskSpec {self.name!r}: gt_channels must be '
                             f'a positive int, got {self.gt_channels!r}')

    @property
    def task_kind(self) -> TaskKind:
        """The registered :class:`~diffmtl.structures.TaskKind` of
        ``kind``."""
        return get_task_kind(self.kind)


TASK_SPECS: Dict[str, TaskSpec] = {}


def register_task_spec(spec: TaskSpec, force: bool = False) -> TaskSpec:
    """Add ``spec`` to :data:`TASK_SPECS`.

    Raises:
        KeyError: If a spec of that name exists and ``force`` is False.
    """
    if spec.name in TASK_SPECS and not force:
        raise KeyError(f'task {spec.name!r} is already registered; pass '
                       'force=True to replace it')
    TASK_SPECS[spec.name] = spec
    return spec


def get_task_spec(name: str) -> TaskSpec:
    """Return the spec of task ``name``.

    Raises:
        KeyError: Naming the unknown task and the known ones.
    """
    try:
        return TASK_SPECS[name]
    except KeyError:
        raise KeyError(f'unknown task {name!r}; known tasks are '
                       f'{sorted(TASK_SPECS)} (register new ones with '
                       'diffmtl.structures.register_task_spec)') from None


def get_task_specs(names: Iterable[str]) -> List[TaskSpec]:
    """Specs of ``names`` in the given order; rejects duplicates."""
    names = list(names)
    if len(set(names)) != len(names):
        raise ValueError(f'duplicate task names in {names}')
    return [get_task_spec(n) for n in names]


def task_out_channels(name: str,
                      num_classes: Optional[Dict[str, int]] = None) -> int:
    """Number of channels the network predicts for task ``name``.

    Args:
        name (str): Task name.
        num_classes (dict, optional): Classes of segmentation-kind tasks,
            e.g. ``dict(semseg=21, human_parts=7)``; falls back to the
            spec's ``default_classes``.
    """
    spec = get_task_spec(name)
    if spec.out_channels is not None:
        return spec.out_channels
    if num_classes and name in num_classes:
        return int(num_classes[name])
    if spec.default_classes:
        return len(spec.default_classes)
    raise KeyError(f'task {name!r} needs its number of classes: pass '
                   f'num_classes={{{name!r}: N}}')


def stack_task_gt(data_samples: Sequence, name: str) -> torch.Tensor:
    """Stack the ground truth of task ``name`` over a batch.

    Args:
        data_samples (list[SegDataSample]): Packed samples.
        name (str): Task name.

    Returns:
        Tensor: (B, gt_channels, H, W), ``int64`` for discrete tasks and
        ``float32`` otherwise.
    """
    spec = get_task_spec(name)
    maps = []
    for i, ds in enumerate(data_samples):
        if spec.gt_field not in ds:
            raise KeyError(f'data sample {i} has no field {spec.gt_field!r} '
                           f'for task {name!r}')
        maps.append(ds.get(spec.gt_field).data)
    gt = torch.stack(maps)
    return gt.long() if spec.discrete else gt.float()


def stage_field(name: str, stage: str = 'final') -> str:
    """Name of a prediction field at a stage of the model.

    ``'final'`` (the model's output) keeps ``name``; another stage, such as
    DiffusionMTL's ``'initial'`` predictions, is ``'<stage>_<name>'``
    (``'initial_pred_sem_seg'``).
    """
    return name if stage == 'final' else f'{stage}_{name}'


def task_class_names(name: str,
                     meta: Optional[dict] = None,
                     num_classes: Optional[int] = None
                     ) -> Optional[Tuple[str, ...]]:
    """Class names of a segmentation-kind task: the one place that decides.

    Looks at ``meta['task_classes'][name]``, then (for the task with
    ``mmseg_classes``) mmseg's ``meta['classes']``, then the spec's
    ``default_classes``; with none of them but ``num_classes``, the names
    ``'0' .. 'n-1'``. A list of the wrong length for ``num_classes`` is
    replaced by the numbered names.

    Returns:
        tuple of str or None: None when nothing gives the classes.
    """
    spec = get_task_spec(name)
    meta = meta or {}
    names = (meta.get('task_classes') or {}).get(name)
    if not names and spec.mmseg_classes:
        names = meta.get('classes') or None
    if not names:
        names = spec.default_classes
    if names is not None and num_classes is not None and len(
            names) != int(num_classes):
        names = None
    if names is None and num_classes is not None:
        names = [str(i) for i in range(int(num_classes))]
    return None if names is None else tuple(str(n) for n in names)


def get_task_mask(data_samples: Sequence,
                  tasks: Sequence[str]) -> torch.Tensor:
    """Which of ``tasks`` are labelled for each sample.

    Reads ``metainfo['tasks']`` and ``metainfo['task_mask']`` of every
    sample; a task the sample's dataset does not have counts as unlabelled.
    A sample without ``task_mask`` is treated as fully labelled.

    Returns:
        Tensor: (B, T) bool, in the order of ``tasks``.
    """
    rows = []
    for ds in data_samples:
        meta = ds.metainfo
        mask = meta.get('task_mask')
        if mask is None:
            rows.append([True] * len(tasks))
            continue
        names = meta.get('tasks', tasks)
        if len(names) != len(mask):
            raise ValueError(f'metainfo tasks {names} and task_mask {mask} '
                             'have different lengths')
        flags = dict(zip(names, mask))
        rows.append([bool(flags.get(t, False)) for t in tasks])
    return torch.tensor(rows, dtype=torch.bool).reshape(len(rows), len(tasks))
