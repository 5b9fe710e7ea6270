# Copyright (c) diffmtl contributors. All rights reserved.
"""One small table that describes every dense prediction task.

Loaders, transforms, packing, the data preprocessor, losses, metrics and the
visualiser all read the per-task facts they need from a :class:`TaskSpec`
instead of branching on task names. Adding a task means registering one
more spec (see :func:`register_task_spec`) plus, where it needs new maths, a
loss and a metric statistic.

Conventions shared by every component (the *data contract*):

* Pipeline ``results`` hold each task's map under ``spec.results_key`` as a
  numpy array: ``uint8`` (H, W) for discrete tasks with ``ignore_index``
  marking unlabelled pixels, ``float32`` (H, W, 3) for normals (the zero
  vector marks invalid pixels) and ``float32`` (H, W) for depth (0 marks
  invalid pixels). A task that is not labelled for an image is materialised
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
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch

__all__ = [
    'TaskSpec', 'TASK_SPECS', 'register_task_spec', 'get_task_spec',
    'get_task_specs', 'task_out_channels', 'stack_task_gt',
    'get_task_mask', 'stage_field'
]

#: The kinds of task diffmtl knows how to learn and evaluate.
TASK_KINDS = ('segmentation', 'saliency', 'normals', 'boundary', 'depth')


@dataclass(frozen=True)
class TaskSpec:
    """Static description of one dense prediction task.

    Args:
        name (str): Task name used in configs (``'semseg'``, ``'normals'``).
        kind (str): One of ``TASK_KINDS``; selects loss/metric/visual maths.
        results_key (str): Key of the map in a transform's ``results``.
        gt_field (str): ``SegDataSample`` field of the ground truth.
        pred_field (str): ``SegDataSample`` field of the prediction.
        logits_field (str): ``SegDataSample`` field of the raw output.
        out_channels (int, optional): Channels the network predicts. ``None``
            for segmentation-kind tasks, whose channels are their number of
            classes (see :func:`task_out_channels`).
        gt_channels (int): Channels of the ground-truth map (1 or 3).
        discrete (bool): Whether the ground truth holds integer labels.
        ignore_index (int, optional): Label value excluded from losses and
            metrics for discrete tasks. ``None`` for continuous tasks, whose
            invalid pixels are zero (normals: zero vector, depth: 0).
        pad_value (float): Value used to pad the ground truth and to fill
            the map of an unlabelled task.
        interp (str): Interpolation used to resize the ground truth
            (``'nearest'`` for everything by default, as the reference).
        loss (dict): Default loss config, a registered loss in ``MODELS``.
        primary_metric (str): Metric key used for delta-m.
        higher_is_better (bool): Direction of ``primary_metric``.
        cmap (str): How the visualiser colours the task (``'palette'``,
            ``'normals'`` or a matplotlib colour-map name).
        default_classes (tuple, optional): Class names for segmentation-kind
            tasks whose classes do not come from a dataset.
    """
    name: str
    kind: str
    results_key: str
    gt_field: str
    pred_field: str
    logits_field: str
    out_channels: Optional[int]
    gt_channels: int = 1
    discrete: bool = True
    ignore_index: Optional[int] = 255
    pad_value: float = 255
    interp: str = 'nearest'
    loss: dict = field(default_factory=dict)
    primary_metric: str = ''
    higher_is_better: bool = True
    cmap: str = 'palette'
    default_classes: Optional[Tuple[str, ...]] = None

    def __post_init__(self):
        if self.kind not in TASK_KINDS:
            raise ValueError(f'TaskSpec {self.name!r}: unknown kind '
                             f'{self.kind!r}; expected one of {TASK_KINDS}')
        if self.gt_channels not in (1, 3):
            raise ValueError(f'TaskSpec {self.name!r}: gt_channels must be 1 '
                             f'or 3, got {self.gt_channels}')


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


# ---------------------------------------------------------------------------
# Built-in tasks: the six of the paper. Loss configs name losses registered
# by ``diffmtl.models.losses``.
# ---------------------------------------------------------------------------
HUMAN_PART_CLASSES = ('background', 'head', 'torso', 'uarm', 'larm', 'uleg',
                      'lleg')

register_task_spec(
    TaskSpec(
        name='semseg',
        kind='segmentation',
        results_key='gt_seg_map',
        gt_field='gt_sem_seg',
        pred_field='pred_sem_seg',
        logits_field='seg_logits',
        out_channels=None,
        loss=dict(type='MTCrossEntropyLoss'),
        primary_metric='mIoU',
        higher_is_better=True))
register_task_spec(
    TaskSpec(
        name='human_parts',
        kind='segmentation',
        results_key='gt_parts_map',
        gt_field='gt_human_parts',
        pred_field='pred_human_parts',
        logits_field='logits_human_parts',
        out_channels=None,
        loss=dict(type='MTCrossEntropyLoss'),
        primary_metric='mIoU',
        higher_is_better=True,
        default_classes=HUMAN_PART_CLASSES))
register_task_spec(
    TaskSpec(
        name='sal',
        kind='saliency',
        results_key='gt_sal_map',
        gt_field='gt_sal',
        pred_field='pred_sal',
        logits_field='logits_sal',
        out_channels=2,
        loss=dict(type='BalancedCrossEntropyLoss'),
        primary_metric='maxF',
        higher_is_better=True,
        cmap='gray'))
register_task_spec(
    TaskSpec(
        name='normals',
        kind='normals',
        results_key='gt_normal_map',
        gt_field='gt_normals',
        pred_field='pred_normals',
        logits_field='logits_normals',
        out_channels=3,
        gt_channels=3,
        discrete=False,
        ignore_index=None,
        pad_value=0.0,
        loss=dict(type='NormalsL1Loss'),
        primary_metric='mErr',
        higher_is_better=False,
        cmap='normals'))
register_task_spec(
    TaskSpec(
        name='edge',
        kind='boundary',
        results_key='gt_edge_map',
        gt_field='gt_edge',
        pred_field='pred_edge',
        logits_field='logits_edge',
        out_channels=1,
        loss=dict(type='WeightedBCELoss', pos_weight=0.95),
        primary_metric='odsF',
        higher_is_better=True,
        cmap='gray'))
register_task_spec(
    TaskSpec(
        name='depth',
        kind='depth',
        results_key='gt_depth_map',
        gt_field='gt_depth',
        pred_field='pred_depth',
        logits_field='logits_depth',
        out_channels=1,
        discrete=False,
        ignore_index=None,
        pad_value=0.0,
        loss=dict(type='DepthL1Loss'),
        primary_metric='absErr',
        higher_is_better=False,
        cmap='magma'))
