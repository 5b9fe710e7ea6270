# Copyright (c) diffmtl contributors. All rights reserved.
"""``MultiTaskMetric``: every task's metric plus Delta-m in one evaluator.

The evaluator knows nothing about what a task predicts: it builds one
:class:`~diffmtl.structures.TaskMetric` per task with the task kind's
:meth:`~diffmtl.structures.TaskKind.build_metric` (options from
``task_metrics``), hands it (C, H, W) numpy maps, and collects its
metrics, tables and exports. It reaches the kinds through the task specs
(:mod:`diffmtl.structures`) only, never importing ``diffmtl.tasks``
(``docs/en/design.md``, *Layers*).
"""
import glob
import functools
import inspect
import json
import logging
import os
import os.path as osp
from collections import OrderedDict
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple, Union)

import numpy as np
from mmengine.dist import is_main_process
from mmengine.evaluator import BaseMetric
from mmengine.logging import MessageHub, MMLogger, print_log

from diffmtl.registry import METRICS
from diffmtl.structures.task_kind import TaskMetric
from diffmtl.structures.task_spec import (TASK_SPECS, get_task_spec,
                                         stage_field)
from ..functional.delta_m import delta_m, resolve_reference

__all__ = [
    'MultiTaskMetric', 'TASK_OPTION_NAMES',
    'export_atomic', 'check_finite_prediction'
]

#: Names that are options of one task's metric, not arguments of
#: :class:`MultiTaskMetric`: name -> ``(task kind, option of that kind's
#: TaskMetric)``. Passing one raises a TypeError saying which
#: ``task_metrics`` entry to write instead (:func:`_refuse_task_options`);
#: ``num_classes`` is a ``{task: N}`` dict.
TASK_OPTION_NAMES: Dict[str, Tuple[str, str]] = {
    'num_classes': ('segmentation', 'num_classes'),
    'per_class_iou': ('segmentation', 'per_class_iou'),
    'sal_thresholds': ('saliency', 'thresholds'),
    'sal_beta2': ('saliency', 'beta2'),
    'normals_bin_width': ('normals', 'bin_width'),
    'normals_thresholds': ('normals', 'thresholds'),
    'depth_range': ('depth', 'depth_range'),
    'edge_thresholds': ('boundary', 'thresholds'),
    'edge_max_dist': ('boundary', 'max_dist'),
    'edge_nms': ('boundary', 'nms'),
    'edge_thin_gt': ('boundary', 'thin_gt'),
    'edge_backend': ('boundary', 'backend'),
    'edge_downsample': ('boundary', 'downsample'),
    'eval_edge': ('boundary', 'enabled'),
    'edge_eval_ids': ('boundary', 'eval_ids'),
}


def task_option_message(name: str, value: Any) -> str:
    """What to write instead of the argument ``name`` of
    :data:`TASK_OPTION_NAMES` given ``value``: the ``task_metrics`` entry
    of every registered task of its kind."""
    kind, option = TASK_OPTION_NAMES[name]
    if isinstance(value, Mapping):  # {task: value}
        per_task = {task: v for task, v in value.items()}
    else:
        per_task = {
            task: value
            for task, spec in TASK_SPECS.items() if spec.kind == kind
        }
    entries = ', '.join(f'{task}=dict({option}={v!r})'
                        for task, v in per_task.items())
    tasks = ', '.join(per_task) or f'no task of kind {kind!r} is registered'
    return (f'MultiTaskMetric: `{name}` moved to `task_metrics`; write '
            f'task_metrics=dict({entries}) (the {kind!r} metric option '
            f'{option!r} of each task: {tasks})')


def _refuse_task_options(init: Callable) -> Callable:
    """Wrap :meth:`MultiTaskMetric.__init__` so that a name of
    :data:`TASK_OPTION_NAMES` raises a TypeError naming its
    ``task_metrics`` entry (the signature stays the wrapped one's)."""

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        given = [name for name in TASK_OPTION_NAMES if name in kwargs]
        if given:
            raise TypeError('; '.join(
                task_option_message(name, kwargs[name]) for name in given))
        init(self, *args, **kwargs)

    return __init__


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _field(ds: dict, name: str):
    """``ds[name]['data']`` of a ``to_dict()``-ed sample (or a raw array)."""
    v = ds.get(name)
    if v is None:
        return None
    if isinstance(v, dict):
        v = v.get('data')
    elif hasattr(v, 'data') and not hasattr(v, 'shape'):
        v = v.data  # a PixelData passed without to_dict()
    return None if v is None else _to_numpy(v)


def _chw(arr: np.ndarray, channels: int = -1) -> np.ndarray:
    """An (..., H, W) array as (C, H, W)."""
    return arr.reshape(channels, *arr.shape[-2:])


def export_atomic(spec, pred: np.ndarray, path_stem: str) -> str:
    """Export a prediction with its kind's ``export`` without ever leaving
    a partial file under the final name.

    The kind writes to a hidden temporary name in the same folder
    (``.<name>.<pid>.diffmtl-tmp`` + the kind's suffix), which is renamed
    over ``path_stem + suffix`` once complete. On any ``OSError`` (a full
    disk, a missing permission) the temporary file is removed and an
    ``OSError`` naming the final path is raised.

    Returns:
        str: The written path.
    """
    folder, name = osp.split(path_stem)
    tmp_stem = osp.join(folder, f'.{name}.{os.getpid()}.diffmtl-tmp')
    final = path_stem + spec.task_kind.export_suffix
    try:
        tmp = spec.task_kind.export(spec, pred, tmp_stem)
        final = path_stem + tmp[len(tmp_stem):]
        if not osp.isfile(tmp) or osp.getsize(tmp) == 0:
            raise OSError('the export wrote nothing')
        os.replace(tmp, final)
    except BaseException as err:  # also a stop signal: leave no temp file
        for path in glob.glob(glob.escape(tmp_stem) + '*'):
            try:
                os.remove(path)
            except OSError:
                pass
        if not isinstance(err, OSError):
            raise
        new = OSError(f'cannot write the {spec.name!r} prediction '
                      f'{final!r}: {err}')
        new.errno = err.errno
        raise new from err
    return final


def check_finite_prediction(pred: np.ndarray, field: str, task: str,
                            img_id: str) -> None:
    """Raise if a prediction holds NaN or inf values.

    Raises:
        FloatingPointError: Naming the image, the task, the field, the
            count and where the weights come from (the message hub's
            ``diffmtl_weights_source``, set by ``FiniteCheckHook``).
    """
    if not np.issubdtype(pred.dtype, np.floating):
        return
    bad = int(np.count_nonzero(~np.isfinite(pred)))
    if not bad:
        return
    source = MessageHub.get_current_instance().get_info(
        'diffmtl_weights_source') or 'the model'
    raise FloatingPointError(
        f'MultiTaskMetric: the prediction {field!r} of task {task!r} for '
        f'image {img_id!r} holds {bad} NaN/inf value(s) of {pred.size} '
        f'(weights: {source}). Metrics of non-finite predictions are '
        'meaningless: nothing of this image is scored or exported. Check '
        'the weights and the input image')


def _metric_options(metric_cls: type) -> Optional[List[str]]:
    """Option names a :class:`TaskMetric` subclass accepts (after ``task``
    and ``spec``); None when it takes ``**kwargs``."""
    params = list(inspect.signature(metric_cls.__init__).parameters.values())
    if any(param.kind is param.VAR_KEYWORD for param in params):
        return None
    return [
        param.name for param in params[3:]
        if param.kind is param.POSITIONAL_OR_KEYWORD
        or param.kind is param.KEYWORD_ONLY
    ]


@METRICS.register_module()
class MultiTaskMetric(BaseMetric):
    """Evaluate every task of a multi-task dense prediction model.

    One :class:`~diffmtl.structures.TaskMetric` per task, built by the
    task's kind (``get_task_spec(task).task_kind.build_metric``), does the
    work: for each sample, :meth:`process` hands it each task's prediction
    and ground truth as (C, H, W) numpy arrays and stores the small record
    of sufficient statistics it returns (pixel counts and sums, see
    ``diffmtl.evaluation.functional``); :meth:`compute_metrics` gives each
    task metric all its records. Multi-process evaluation therefore gives
    exactly the single-process numbers.

    Tasks are those of ``dataset_meta['tasks']`` (or ``tasks``); the task
    metrics are built once the tasks are known. A task whose ground truth
    has no valid pixel in an image (or that the sample's ``task_mask`` marks
    unlabelled) is skipped for that image.

    Metric keys of the built-in kinds (all plain floats; percentages in
    [0, 100]):

    * segmentation: ``<task>/mIoU``, ``<task>/mAcc``, ``<task>/aAcc`` and,
      with ``per_class_iou``, one ``<task>/IoU.<class>`` per class (e.g.
      ``semseg/IoU.diningtable``; see
      :func:`~diffmtl.tasks.segmentation.per_class_keys`);
    * saliency: ``sal/maxF`` (paper-compatible, sigmoid quirk, beta^2 =
      0.3) and ``sal/maxF_corrected`` (no sigmoid);
    * normals: ``normals/mErr``, ``normals/medianErr``, ``normals/rmse``
      (degrees), ``normals/11.25``, ``normals/22.5``, ``normals/30`` (%);
    * boundary: ``edge/odsF``, ``edge/oisF``, ``edge/AP``,
      ``edge/ods_threshold``;
    * depth: ``depth/absErr``, ``depth/rmse``, ``depth/absRel``,
      ``depth/sqRel``, ``depth/logRMSE``;
    * ``delta_m`` when a reference is set;
    * for each extra prediction stage ``s`` a model wrote (its samples'
      ``pred_stages``, from ``model.test_cfg.eval_stages``, e.g.
      DiffusionMTL's ``'initial'``): the same keys prefixed ``'<s>/'``
      (``initial/semseg/mIoU``, ``initial/semseg/IoU.<class>``,
      ``initial/delta_m``), computed from the ``stage_field(pred_field,
      s)`` predictions of the same images.

    The per-task tables (segmentation: per-class IoU / Acc) and the
    one-line summary are logged at INFO through the runner's logger, i.e.
    inside a Runner (``tools/test.py``, validation during training) they
    land in its log; a plain ``evaluate()`` call outside one prints nothing
    unless ``print_tables=True``. ``metrics.json`` (with ``output_dir``)
    keeps the per-class IoUs under ``per_class`` and each task metric's
    options under ``config`` (``{task: options}``).

    Args:
        tasks (sequence of str, optional): Tasks to evaluate; default
            ``dataset_meta['tasks']``.
        task_metrics (dict, optional): Options of each task's metric,
            ``{task: dict(option=value)}``, e.g.
            ``dict(edge=dict(max_dist=0.011, thresholds=99))``; the option
            names are the arguments of the task kind's ``TaskMetric``
            (``docs/en/metrics.md``, "Options per task"). Every key must be
            a registered task; entries of tasks that are not evaluated are
            ignored with a warning.
        delta_m_reference (str or dict, optional): Single-task reference:
            a preset name (``'pascal_one'``, ``'pascal_random'``,
            ``'pascal_full'``, ``'nyud_one'``, ``'nyud_random'``,
            ``'cityscapes_one'``), a dict of metric values or a path to a
            ``metrics.json`` written by this metric.
        output_dir (str, optional): Where to write predictions
            (``<dir>/<task>/<img_id>`` + the kind's ``export_suffix``) and
            ``metrics.json``. Every file is written under a temporary name
            and renamed when complete (:func:`export_atomic`); an I/O
            error names the file.
        keep_results (bool): Write per-image predictions when
            ``output_dir`` is set (``tools/test.py --out`` sets it).
        format_only (bool): Only write predictions; no GT needed, no
            metrics.
        collect_device (str): ``'cpu'`` or ``'gpu'``.
        prefix (str, optional): Prefix of the metric keys.
        collect_dir (str, optional): Shared tmp dir for ``'cpu'`` collect.
        print_tables (bool, optional): Log the per-task tables and the
            summary line: True always (through the current logger, which
            outside a Runner is mmengine's console logger), False never,
            None (default) only through a logger someone created (the
            Runner's), i.e. silent in a bare ``evaluate()`` call.

    Every argument is keyword-only. A task's metric options are set in
    ``task_metrics`` only: the names of :data:`TASK_OPTION_NAMES`
    (``edge_max_dist``, ``num_classes``, ...) raise a TypeError that names
    the ``task_metrics`` entry to write instead.
    """
    # '' (not None): keys stay 'semseg/mIoU' and mmengine does not warn
    default_prefix: Optional[str] = ''

    @_refuse_task_options
    def __init__(self,
                 *,
                 tasks: Optional[Sequence[str]] = None,
                 task_metrics: Optional[Mapping[str, Mapping[str,
                                                             Any]]] = None,
                 delta_m_reference: Union[str, Mapping[str, float],
                                          None] = None,
                 output_dir: Optional[str] = None,
                 keep_results: bool = True,
                 format_only: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None,
                 print_tables: Optional[bool] = None) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        self.tasks = tuple(tasks) if tasks is not None else None
        self.task_metrics = self._check_task_metrics(task_metrics)
        self.delta_m_reference = resolve_reference(delta_m_reference)
        self.output_dir = output_dir
        self.keep_results = bool(keep_results)
        self.format_only = bool(format_only)
        if self.format_only and not self.output_dir:
            raise ValueError('MultiTaskMetric: format_only=True needs '
                             'output_dir')
        if self.output_dir and is_main_process():
            os.makedirs(self.output_dir, exist_ok=True)
        if print_tables not in (None, True, False):
            raise ValueError('MultiTaskMetric: print_tables must be None, '
                             f'True or False, got {print_tables!r}')
        self.print_tables = print_tables
        self._warned = set()
        self._metrics: Dict[str, TaskMetric] = {}
        # options are checked (and e.g. eval_ids files read) up front for
        # the tasks known now; the others when dataset_meta names them
        if self.tasks is not None:
            self._task_metric_map(self.tasks)
        else:
            for task in self.task_metrics:
                self._task_metric(task)

    # ------------------------------------------------------------------
    # configuration helpers
    # ------------------------------------------------------------------
    @staticmethod
    def _check_task_metrics(task_metrics) -> Dict[str, Dict[str, Any]]:
        out = {}
        for task, options in dict(task_metrics or {}).items():
            try:
                get_task_spec(task)
            except KeyError as e:
                raise ValueError(f'MultiTaskMetric: task_metrics has options '
                                 f'for task {task!r}: {e.args[0]}') from None
            if not isinstance(options, Mapping):
                raise TypeError(f'MultiTaskMetric: task_metrics[{task!r}] '
                                'must be a dict of metric options, got '
                                f'{options!r}')
            out[task] = dict(options)
        return out

    @property
    def dataset_meta(self) -> Optional[dict]:
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict) -> None:
        self._dataset_meta = dataset_meta
        for metric in getattr(self, '_metrics', {}).values():
            metric.dataset_meta = dataset_meta or {}
        if getattr(self, '_metrics', None) is not None and (
                self.tasks is not None or 'tasks' in (dataset_meta or {})):
            self._task_metric_map(self._tasks())

    def task_options(self, task: str) -> Dict[str, Any]:
        """The options ``task``'s metric is built with: its
        ``task_metrics`` entry."""
        return dict(self.task_metrics.get(task, {}))

    def _task_metric(self, task: str) -> TaskMetric:
        """The :class:`TaskMetric` of ``task`` (built on first use)."""
        metric = self._metrics.get(task)
        if metric is not None:
            return metric
        spec = get_task_spec(task)
        kind = spec.task_kind
        options = self.task_options(task)
        accepted = None if kind.metric is None else _metric_options(
            kind.metric)
        if accepted is not None:
            unknown = sorted(set(options) - set(accepted))
            if unknown:
                raise TypeError(
                    f'MultiTaskMetric: task {task!r} (kind {spec.kind!r}): '
                    f'unknown metric option(s) {unknown}; '
                    f'{kind.metric.__name__} accepts {accepted}')
        try:
            metric = kind.build_metric(spec, **options)
        except TypeError as e:
            raise TypeError(f'MultiTaskMetric: task {task!r} (kind '
                            f'{spec.kind!r}), options {options}: {e}') from e
        metric.dataset_meta = self.dataset_meta or {}
        self._metrics[task] = metric
        return metric

    def _task_metric_map(self,
                         tasks: Sequence[str]) -> Dict[str, TaskMetric]:
        """``{task: TaskMetric}`` of ``tasks``.

        ``task_metrics`` entries of registered tasks that are not evaluated
        (a config written for more tasks than this dataset has) are ignored
        with one warning; their options are still checked.
        """
        extra = sorted(set(self.task_metrics) - set(tasks))
        if extra:
            self._warn_once(f'MultiTaskMetric: task_metrics has options for '
                            f'{extra}, which are not evaluated (tasks: '
                            f'{list(tasks)}); they are ignored')
            for task in extra:
                self._task_metric(task)
        return {task: self._task_metric(task) for task in tasks}

    def _tasks(self) -> tuple:
        if self.tasks is not None:
            return self.tasks
        meta = self.dataset_meta or {}
        if 'tasks' not in meta:
            raise KeyError('MultiTaskMetric needs `tasks=[...]` or a '
                           "dataset whose metainfo has 'tasks'")
        return tuple(meta['tasks'])

    def _log_table(self, msg: str) -> None:
        """Log a table / the summary line as ``print_tables`` says."""
        if self.print_tables is False:
            return
        if self.print_tables is None and (
                MMLogger.get_current_instance().instance_name == 'mmengine'):
            return  # only mmengine's fallback logger: no Runner
        print_log(msg, logger='current', level=logging.INFO)

    def _warn_once(self, msg: str) -> None:
        if msg not in self._warned:
            self._warned.add(msg)
            print_log(msg, logger='current', level=30)

    # ------------------------------------------------------------------
    # per sample
    # ------------------------------------------------------------------
    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Append one statistics record per sample (and export).

        Args:
            data_batch: Unused.
            data_samples (list[dict]): ``SegDataSample.to_dict()`` outputs
                with each task's ``pred_field`` (and ``gt_field``).

        Raises:
            FloatingPointError: A prediction (of any stage) holds NaN or
                inf (:func:`check_finite_prediction`); checked before
                anything of the sample is exported or scored.
        """
        tasks = self._tasks()
        metrics = self._task_metric_map(tasks)
        for ds in data_samples:
            if not isinstance(ds, dict):
                ds = ds.to_dict()
            img_id = ds.get('img_id')
            if img_id is None:
                img_id = osp.splitext(osp.basename(ds.get('img_path',
                                                          '')))[0]
            img_id = str(img_id)
            for task in tasks:
                pred_field = get_task_spec(task).pred_field
                for stage in ('final', ) + tuple(ds.get('pred_stages') or ()):
                    field = stage_field(pred_field, stage)
                    pred = _field(ds, field)
                    if pred is not None:
                        check_finite_prediction(pred, field, task, img_id)
            if self.output_dir and (self.keep_results or self.format_only):
                self._export(ds, tasks, img_id)
            if self.format_only:
                continue
            labelled = dict(zip(ds.get('tasks', tasks),
                                ds.get('task_mask', [True] * len(tasks))))
            stages = ('final', ) + tuple(ds.get('pred_stages') or ())
            record = {}
            for task in tasks:
                if not labelled.get(task, True):
                    continue
                for stage in stages:
                    pair = self._pred_and_gt(ds, task, img_id, stage)
                    if pair is None:
                        continue
                    stats = metrics[task].process(*pair, img_id)
                    if stats is not None:
                        record[self._record_key(task, stage)] = stats
            self.results.append(record)

    @staticmethod
    def _record_key(task: str, stage: str) -> str:
        return task if stage == 'final' else f'{stage}/{task}'

    def _pred_and_gt(self, ds: dict, task: str, img_id: str,
                     stage: str = 'final'
                     ) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """(C, H, W) prediction and ground truth of ``task`` at ``stage``;
        None (warned once) when the samples carry no ground truth."""
        spec = get_task_spec(task)
        gt = _field(ds, spec.gt_field)
        if gt is None:
            self._warn_once(f'MultiTaskMetric: samples have no '
                            f'{spec.gt_field!r}; task {task!r} not scored')
            return None
        pred_field = stage_field(spec.pred_field, stage)
        pred = _field(ds, pred_field)
        if pred is None:
            raise KeyError(f'MultiTaskMetric: sample {img_id!r} has no '
                           f'prediction field {pred_field!r} for task '
                           f'{task!r}')
        if pred.shape[-2:] != gt.shape[-2:]:
            raise ValueError(f'MultiTaskMetric: task {task!r}, sample '
                             f'{img_id!r}: prediction {pred_field} has '
                             f'shape {tuple(pred.shape)} but ground truth '
                             f'{spec.gt_field} has {tuple(gt.shape)}')
        return _chw(pred), _chw(gt, spec.gt_channels)

    def _export(self, ds: dict, tasks: Sequence[str], img_id: str) -> None:
        for task in tasks:
            spec = get_task_spec(task)
            pred = _field(ds, spec.pred_field)
            if pred is None:
                continue
            folder = osp.join(self.output_dir, task)
            os.makedirs(folder, exist_ok=True)
            export_atomic(spec, _chw(pred), osp.join(folder, img_id))

    # ------------------------------------------------------------------
    # whole set
    # ------------------------------------------------------------------
    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Give each task metric its records and collect the metrics.

        Returns:
            dict: Flat ``{key: float}`` (see the class docstring).
        """
        if self.format_only:
            print_log(f'predictions written to {self.output_dir}',
                      logger='current')
            return OrderedDict()
        tasks = self._tasks()
        task_metrics = self._task_metric_map(tasks)
        extra_stages = sorted({k.split('/')[0]
                               for r in results for k in r if '/' in k})
        metrics: Dict[str, float] = OrderedDict()
        per_class = {}
        summary = []
        for stage in ['final'] + extra_stages:
            prefix = '' if stage == 'final' else f'{stage}/'
            stage_metrics: Dict[str, float] = OrderedDict()
            for task in tasks:
                metric = task_metrics[task]
                key = self._record_key(task, stage)
                recs = [r[key] for r in results if key in r]
                if not recs:
                    if stage == 'final' and metric.scored:
                        self._warn_once(f'MultiTaskMetric: no valid ground '
                                        f'truth for task {task!r}')
                    continue
                res, extra = metric.compute(recs)
                for k, v in res.items():
                    stage_metrics[f'{task}/{k}'] = v
                if 'per_class' in extra:
                    per_class[prefix + task] = extra['per_class']
                for k, v in extra.get('per_class_keys', {}).items():
                    stage_metrics[f'{task}/{k}'] = v
                table = extra.get('table') or TaskMetric.summary_table(res)
                self._log_table(f'\n{prefix}{task} ({len(recs)} images):'
                                f'\n{table}')
                primary = get_task_spec(task).primary_metric
                if primary in res:
                    summary.append(f'{prefix}{task}/{primary}: '
                                   f'{res[primary]:.4f}')
            if self.delta_m_reference is not None:
                dm = delta_m(stage_metrics, self.delta_m_reference)
                if dm is not None:
                    stage_metrics['delta_m'] = dm
                    summary.append(f'{prefix}delta_m: {dm:.4f}')
            for k, v in stage_metrics.items():
                metrics[prefix + k] = v
        self._log_table('Multi-task summary: ' + ', '.join(summary))
        if self.output_dir and is_main_process():
            dump = dict(metrics)
            dump['per_class'] = per_class
            dump['config'] = {
                task: metric.config()
                for task, metric in task_metrics.items()
            }
            from diffmtl.engine.fileio import atomic_write_bytes
            path = osp.join(self.output_dir, 'metrics.json')
            try:
                atomic_write_bytes(
                    json.dumps(dump, indent=2).encode('utf-8'), path)
            except OSError as err:
                new = OSError(f'cannot write {path!r}: {err}')
                new.errno = err.errno
                raise new from err
        return metrics
