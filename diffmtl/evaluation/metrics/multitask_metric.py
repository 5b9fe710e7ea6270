# Copyright (c) diffmtl contributors. All rights reserved.
"""``MultiTaskMetric``: every task's metric plus Delta-m in one evaluator."""
import json
import logging
import os
import os.path as osp
import re
import warnings
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
from mmengine.dist import is_main_process
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from prettytable import PrettyTable

from diffmtl.registry import METRICS
from diffmtl.structures.task_spec import get_task_spec, stage_field
from ..functional.boundary import (boundary_metrics, boundary_stats,
                                   default_edge_thresholds, has_pyedgeeval)
from ..functional.delta_m import delta_m, resolve_reference
from ..functional.dense_stats import (SAL_THRESHOLDS, depth_metrics,
                                      depth_stats, normals_metrics,
                                      normals_stats, sal_metrics, sal_stats,
                                      seg_metrics, seg_stats, sum_stats)

__all__ = ['MultiTaskMetric', 'per_class_keys']


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


def per_class_keys(names: Sequence[str]) -> List[str]:
    """Metric-key suffixes of per-class values: ``'IoU.<class>'``.

    Slashes and whitespace in a class name become ``'_'`` (a ``'/'`` would
    read as another level of the ``<task>/<metric>`` key); a name that is
    then repeated gets ``'.<index>'`` appended.

    Args:
        names (sequence of str): Class names, in class-index order.

    Returns:
        list[str]: One suffix per class, e.g. ``'IoU.diningtable'``.
    """
    keys, seen = [], set()
    for i, name in enumerate(names):
        key = 'IoU.' + (re.sub(r'[/\s]+', '_', str(name)) or str(i))
        if key in seen:
            key = f'{key}.{i}'
        seen.add(key)
        keys.append(key)
    return keys


def _maxpool(x: np.ndarray, k: int, fill: float = 0) -> np.ndarray:
    h, w = x.shape
    hh, ww = -(-h // k) * k, -(-w // k) * k
    p = np.full((hh, ww), fill, dtype=x.dtype)
    p[:h, :w] = x
    return p.reshape(hh // k, k, ww // k, k).max(axis=(1, 3))


@METRICS.register_module()
class MultiTaskMetric(BaseMetric):
    """Evaluate every task of a multi-task dense prediction model.

    For each sample, :meth:`process` turns each task's prediction and
    ground truth into a small record of sufficient statistics (pixel counts
    and sums, see ``diffmtl.evaluation.functional``); :meth:`compute_metrics`
    sums them over the whole set. Multi-process evaluation therefore gives
    exactly the single-process numbers.

    Tasks are those of ``dataset_meta['tasks']`` (or ``tasks``); which
    statistic is used comes from each task's ``TaskSpec.kind``. A task whose
    ground truth has no valid pixel in an image (or that the sample's
    ``task_mask`` marks unlabelled) is skipped for that image.

    Metric keys (all plain floats; percentages in [0, 100]):

    * segmentation: ``<task>/mIoU``, ``<task>/mAcc``, ``<task>/aAcc`` and,
      with ``per_class_iou``, one ``<task>/IoU.<class>`` per class (e.g.
      ``semseg/IoU.diningtable``; see :func:`per_class_keys`);
    * saliency: ``sal/maxF`` (paper-compatible, sigmoid quirk, beta^2 =
      0.3) and ``sal/maxF_corrected`` (no sigmoid);
    * normals: ``normals/mErr``, ``normals/medianErr``, ``normals/rmse``
      (degrees), ``normals/11.25``, ``normals/22.5``, ``normals/30`` (%);
    * boundary: ``edge/odsF``, ``edge/oisF``, ``edge/AP``;
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
    keeps the per-class IoUs under ``per_class`` as well.

    Args:
        tasks (sequence of str, optional): Tasks to evaluate; default
            ``dataset_meta['tasks']``.
        num_classes (dict, optional): ``{task: N}`` for segmentation tasks;
            default from ``dataset_meta['task_classes']`` (then ``classes``
            for ``semseg``, then the spec's ``default_classes``).
        sal_thresholds (sequence of float): Saliency thresholds
            (0.05:0.05:0.95).
        sal_beta2 (float): beta^2 of the saliency F-measure (0.3).
        normals_bin_width (float): Angle histogram bin width in degrees;
            the median is exact to half of it (default 0.05 -> 0.025 deg).
        normals_thresholds (sequence of float): ``% < t`` angles.
        depth_range (tuple, optional): ``(min, max)`` GT depth kept.
        edge_thresholds (int or sequence of float): Boundary thresholds
            (an int ``n`` means ``linspace(0.01, 0.99, n)``). The cost of
            boundary evaluation grows linearly with their number.
        edge_max_dist (float): Matching tolerance as a fraction of the
            image diagonal (0.0075 PASCAL-Context, 0.011 NYUD).
        edge_nms (bool): Apply seism's structured-edge NMS before
            thresholding (needs ``pyedgeeval``; the official wrapper does).
        edge_thin_gt (bool): Thin the GT boundaries (seism does).
        edge_backend (str): ``'numpy'`` (default: deterministic exact
            maximum matching), ``'pyedgeeval'`` (the BSDS
            ``correspondPixels`` code; its outlier graph is randomly seeded
            from the clock, so counts vary slightly from run to run and
            across processes) or ``'auto'`` (pyedgeeval when installed).
        edge_downsample (int): Max-pool prediction and GT by this factor
            before matching (1 = off); approximate, for fast monitoring.
        eval_edge (bool): Compute the Python boundary scores at all; when
            False boundaries are only exported.
        edge_eval_ids (str or sequence of str, optional): Score boundaries
            only on these image ids (a list, or a text file with one id per
            line), e.g. seism's PASCAL-Context ``test_new`` set; all images
            are still exported.
        delta_m_reference (str or dict, optional): Single-task reference:
            a preset name (``'pascal_one'``, ``'pascal_random'``,
            ``'pascal_full'``, ``'nyud_one'``, ``'nyud_random'``,
            ``'cityscapes_one'``), a dict of metric values or a path to a
            ``metrics.json`` written by this metric.
        output_dir (str, optional): Where to write predictions
            (``<dir>/<task>/<img_id>.png|.npy``) and ``metrics.json``.
        keep_results (bool): Write per-image predictions when
            ``output_dir`` is set (``tools/test.py --out`` sets it).
        format_only (bool): Only write predictions; no GT needed, no
            metrics.
        collect_device (str): ``'cpu'`` or ``'gpu'``.
        prefix (str, optional): Prefix of the metric keys.
        collect_dir (str, optional): Shared tmp dir for ``'cpu'`` collect.
        per_class_iou (bool): Return each segmentation class's IoU (%) as
            ``<task>/IoU.<class>`` (also for extra stages). Defaults to
            True.
        print_tables (bool, optional): Log the per-task tables and the
            summary line: True always (through the current logger, which
            outside a Runner is mmengine's console logger), False never,
            None (default) only through a logger someone created (the
            Runner's), i.e. silent in a bare ``evaluate()`` call.
    """
    # '' (not None): keys stay 'semseg/mIoU' and mmengine does not warn
    default_prefix: Optional[str] = ''

    def __init__(self,
                 tasks: Optional[Sequence[str]] = None,
                 num_classes: Optional[Dict[str, int]] = None,
                 sal_thresholds: Sequence[float] = SAL_THRESHOLDS,
                 sal_beta2: float = 0.3,
                 normals_bin_width: float = 0.05,
                 normals_thresholds: Sequence[float] = (11.25, 22.5, 30.0),
                 depth_range: Optional[Sequence[float]] = None,
                 edge_thresholds: Union[int, Sequence[float]] = 25,
                 edge_max_dist: float = 0.0075,
                 edge_nms: bool = False,
                 edge_thin_gt: bool = True,
                 edge_backend: str = 'numpy',
                 edge_downsample: int = 1,
                 eval_edge: bool = True,
                 edge_eval_ids: Union[str, Sequence[str], None] = None,
                 delta_m_reference: Union[str, Mapping[str, float],
                                          None] = None,
                 output_dir: Optional[str] = None,
                 keep_results: bool = True,
                 format_only: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None,
                 per_class_iou: bool = True,
                 print_tables: Optional[bool] = None,
                 **kwargs) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        if kwargs:
            warnings.warn(f'MultiTaskMetric: ignoring unknown arguments '
                          f'{sorted(kwargs)}')
        self.tasks = tuple(tasks) if tasks is not None else None
        self.num_classes = dict(num_classes or {})
        self.sal_thresholds = tuple(float(t) for t in sal_thresholds)
        self.sal_beta2 = float(sal_beta2)
        if normals_bin_width <= 0:
            raise ValueError('normals_bin_width must be > 0')
        self.normals_bin_width = float(normals_bin_width)
        self.normals_bins = int(np.ceil(180.0 / self.normals_bin_width))
        self.normals_thresholds = tuple(float(t) for t in normals_thresholds)
        self.depth_range = tuple(depth_range) if depth_range else None
        if isinstance(edge_thresholds, int):
            edge_thresholds = default_edge_thresholds(edge_thresholds)
        self.edge_thresholds = tuple(float(t) for t in edge_thresholds)
        self.edge_max_dist = float(edge_max_dist)
        self.edge_nms = bool(edge_nms)
        if self.edge_nms and eval_edge and not has_pyedgeeval():
            raise ImportError('MultiTaskMetric(edge_nms=True) needs the '
                              '`pyedgeeval` package: pip install pyedgeeval')
        self.edge_thin_gt = bool(edge_thin_gt)
        if edge_backend not in ('auto', 'pyedgeeval', 'numpy'):
            raise ValueError(f'edge_backend {edge_backend!r}: expected '
                             "'auto', 'pyedgeeval' or 'numpy'")
        if edge_backend == 'auto':
            edge_backend = 'pyedgeeval' if has_pyedgeeval() else 'numpy'
        self.edge_backend = edge_backend
        self.edge_downsample = max(int(edge_downsample), 1)
        self.eval_edge = bool(eval_edge)
        if isinstance(edge_eval_ids, str):
            with open(edge_eval_ids) as f:
                edge_eval_ids = [ln.strip() for ln in f if ln.strip()]
        self.edge_eval_ids = (
            None if edge_eval_ids is None else {str(i)
                                                for i in edge_eval_ids})
        self.delta_m_reference = resolve_reference(delta_m_reference)
        self.output_dir = output_dir
        self.keep_results = bool(keep_results)
        self.format_only = bool(format_only)
        if self.format_only and not self.output_dir:
            raise ValueError('MultiTaskMetric: format_only=True needs '
                             'output_dir')
        if self.output_dir and is_main_process():
            os.makedirs(self.output_dir, exist_ok=True)
        self.per_class_iou = bool(per_class_iou)
        if print_tables not in (None, True, False):
            raise ValueError('MultiTaskMetric: print_tables must be None, '
                             f'True or False, got {print_tables!r}')
        self.print_tables = print_tables
        self._warned = set()

    # ------------------------------------------------------------------
    # configuration helpers
    # ------------------------------------------------------------------
    def _tasks(self) -> tuple:
        if self.tasks is not None:
            return self.tasks
        meta = self.dataset_meta or {}
        if 'tasks' not in meta:
            raise KeyError('MultiTaskMetric needs `tasks=[...]` or a '
                           "dataset whose metainfo has 'tasks'")
        return tuple(meta['tasks'])

    def _class_names(self, task: str) -> List[str]:
        meta = self.dataset_meta or {}
        names = (meta.get('task_classes') or {}).get(task)
        if names is None and task == 'semseg':
            names = meta.get('classes')
        if names is None:
            names = get_task_spec(task).default_classes
        if names is None and task in self.num_classes:
            names = [str(i) for i in range(self.num_classes[task])]
        if names is None:
            raise KeyError(f'MultiTaskMetric: no classes for task {task!r}; '
                           "set dataset_meta['task_classes'] or "
                           f'num_classes={{{task!r}: N}}')
        return list(names)

    def _n_classes(self, task: str) -> int:
        if task in self.num_classes:
            return int(self.num_classes[task])
        return len(self._class_names(task))

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
        """
        tasks = self._tasks()
        for ds in data_samples:
            if not isinstance(ds, dict):
                ds = ds.to_dict()
            img_id = ds.get('img_id')
            if img_id is None:
                img_id = osp.splitext(osp.basename(ds.get('img_path',
                                                          '')))[0]
            img_id = str(img_id)
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
                    stats = self._task_stats(ds, task, img_id, stage)
                    if stats is not None:
                        record[self._record_key(task, stage)] = stats
            self.results.append(record)

    @staticmethod
    def _record_key(task: str, stage: str) -> str:
        return task if stage == 'final' else f'{stage}/{task}'

    def _task_stats(self, ds: dict, task: str, img_id: str,
                    stage: str = 'final') -> Optional[dict]:
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
        kind = spec.kind
        if kind == 'normals':
            pred = pred.reshape(3, *pred.shape[-2:])
            gt = gt.reshape(3, *gt.shape[-2:])
        else:
            pred = pred.reshape(pred.shape[-2:])
            gt = gt.reshape(gt.shape[-2:])
        if kind == 'segmentation':
            n = self._n_classes(task)
            st = seg_stats(pred, gt, n)
            return st if st['n_valid'] > 0 else None
        if kind == 'saliency':
            st = sal_stats(pred, gt, self.sal_thresholds, spec.ignore_index)
            return st if st['n_valid'] > 0 else None
        if kind == 'normals':
            st = normals_stats(pred, gt, self.normals_bin_width,
                               self.normals_thresholds)
            return st if st['n'] > 0 else None
        if kind == 'depth':
            st = depth_stats(pred, gt, self.depth_range)
            return st if st['n'] > 0 else None
        if kind == 'boundary':
            if not self.eval_edge or (self.edge_eval_ids is not None
                                      and img_id not in self.edge_eval_ids):
                return None
            valid = gt != spec.ignore_index
            if not valid.any():
                return None
            if self.edge_downsample > 1:
                k = self.edge_downsample
                gt = np.where(valid, gt, 0)
                gt = _maxpool((gt == 1).astype(np.uint8), k)
                pred = _maxpool(pred.astype(np.float32), k)
            return boundary_stats(
                pred, gt, self.edge_thresholds, self.edge_max_dist,
                spec.ignore_index, self.edge_nms, self.edge_thin_gt,
                self.edge_backend)
        raise NotImplementedError(f'no metric for task kind {kind!r}')

    def _export(self, ds: dict, tasks: Sequence[str], img_id: str) -> None:
        import mmcv
        for task in tasks:
            spec = get_task_spec(task)
            pred = _field(ds, spec.pred_field)
            if pred is None:
                continue
            folder = osp.join(self.output_dir, task)
            os.makedirs(folder, exist_ok=True)
            if spec.kind == 'segmentation':
                pred = pred.reshape(pred.shape[-2:])
                dtype = np.uint8 if pred.max(initial=0) < 256 else np.uint16
                mmcv.imwrite(pred.astype(dtype), osp.join(folder,
                                                          img_id + '.png'))
            elif spec.kind in ('saliency', 'boundary'):
                pred = pred.reshape(pred.shape[-2:]).astype(np.float64)
                # uint8(prob * 255) truncated, as the reference dump
                png = (np.clip(pred, 0, 1) * 255).astype(np.uint8)
                mmcv.imwrite(png, osp.join(folder, img_id + '.png'))
            elif spec.kind == 'normals':
                pred = pred.reshape(3, *pred.shape[-2:]).astype(np.float32)
                np.save(osp.join(folder, img_id + '.npy'),
                        pred.transpose(1, 2, 0))
            else:
                np.save(
                    osp.join(folder, img_id + '.npy'),
                    pred.reshape(pred.shape[-2:]).astype(np.float32))

    # ------------------------------------------------------------------
    # whole set
    # ------------------------------------------------------------------
    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Sum the records and compute every task's metrics.

        Returns:
            dict: Flat ``{key: float}`` (see the class docstring).
        """
        if self.format_only:
            print_log(f'predictions written to {self.output_dir}',
                      logger='current')
            return OrderedDict()
        tasks = self._tasks()
        extra = sorted({k.split('/')[0]
                        for r in results for k in r if '/' in k})
        metrics: Dict[str, float] = OrderedDict()
        per_class = {}
        summary = []
        for stage in ['final'] + extra:
            prefix = '' if stage == 'final' else f'{stage}/'
            stage_metrics: Dict[str, float] = OrderedDict()
            for task in tasks:
                key = self._record_key(task, stage)
                recs = [r[key] for r in results if key in r]
                if not recs:
                    if stage == 'final' and (get_task_spec(task).kind !=
                                             'boundary' or self.eval_edge):
                        self._warn_once(f'MultiTaskMetric: no valid ground '
                                        f'truth for task {task!r}')
                    continue
                res, table = self._task_metrics(task, recs)
                for k, v in res.items():
                    stage_metrics[f'{task}/{k}'] = v
                if 'per_class' in table:
                    per_class[prefix + task] = table['per_class']
                if self.per_class_iou:
                    for k, v in table.get('per_class_keys', {}).items():
                        stage_metrics[f'{task}/{k}'] = v
                self._log_table(f'\n{prefix}{task} ({len(recs)} images):'
                                f'\n{table["table"]}')
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
            dump['config'] = dict(
                edge_thresholds=list(self.edge_thresholds),
                edge_max_dist=self.edge_max_dist,
                edge_nms=self.edge_nms,
                edge_backend=self.edge_backend,
                edge_downsample=self.edge_downsample,
                normals_bin_width=self.normals_bin_width,
                sal_thresholds=list(self.sal_thresholds))
            with open(osp.join(self.output_dir, 'metrics.json'), 'w') as f:
                json.dump(dump, f, indent=2)
        return metrics

    def _task_metrics(self, task: str, recs: List[dict]):
        """Metrics of one task from its records, plus its printed table."""
        kind = get_task_spec(task).kind
        extra = {}
        if kind == 'segmentation':
            m = seg_metrics(sum_stats(recs))
            names = self._class_names(task)
            if len(names) != len(m['IoU']):
                names = [str(i) for i in range(len(m['IoU']))]
            per_class = PrettyTable(field_names=['Class', 'IoU', 'Acc'])
            for name, iou, acc in zip(names, m['IoU'], m['Acc']):
                per_class.add_row([
                    name, f'{iou * 100:.2f}',
                    '-' if np.isnan(acc) else f'{acc * 100:.2f}'
                ])
            extra['per_class'] = {
                n: float(i * 100)
                for n, i in zip(names, m['IoU'])
            }
            extra['per_class_keys'] = OrderedDict(
                (k, float(i * 100))
                for k, i in zip(per_class_keys(names), m['IoU']))
            res = OrderedDict(mIoU=m['mIoU'], mAcc=m['mAcc'], aAcc=m['aAcc'])
        elif kind == 'saliency':
            m = sal_metrics(sum_stats(recs), self.sal_beta2)
            res = OrderedDict(
                maxF=m['maxF'], maxF_corrected=m['maxF_corrected'])
        elif kind == 'normals':
            res = OrderedDict(
                normals_metrics(
                    sum_stats(recs, self.normals_bins),
                    self.normals_bin_width, self.normals_thresholds))
        elif kind == 'depth':
            res = OrderedDict(depth_metrics(sum_stats(recs)))
        elif kind == 'boundary':
            per_image = {
                k: np.stack([r[k] for r in recs])
                for k in ('cnt_r', 'sum_r', 'cnt_p', 'sum_p')
            }
            m = boundary_metrics(per_image)
            res = OrderedDict(odsF=m['odsF'], oisF=m['oisF'], AP=m['AP'])
            res['ods_threshold'] = float(
                self.edge_thresholds[m['ods_thr_idx']])
        else:
            raise NotImplementedError(
                f'no metric for task kind {kind!r} ({task!r})')
        summary = PrettyTable(field_names=list(res))
        summary.add_row([f'{v:.4f}' for v in res.values()])
        text = summary.get_string()
        if kind == 'segmentation':
            text = per_class.get_string() + '\n' + text
        extra['table'] = text
        return res, extra


