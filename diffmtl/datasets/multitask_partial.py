# Copyright (c) diffmtl contributors. All rights reserved.
"""Base class of multi-task datasets with partially annotated images."""
import logging
import os.path as osp
from typing import (Any, Dict, List, Mapping, Optional, Sequence, Tuple,
                    Union)

import mmengine
import numpy as np
from mmengine.logging import print_log
from mmengine.registry import DefaultScope
from mmseg.datasets import BaseSegDataset

from diffmtl.registry import DATASETS
from diffmtl.structures import get_task_spec, task_class_names
from .data_checks import (check_all_files, check_label_encodings,
                          pipeline_loaders)
from .label_mapping import (LABEL_SETTINGS, check_mapping_matches_split,
                            generate_label_mapping, label_mapping_stats,
                            load_label_mapping)

__all__ = ['MultiTaskPartialDataset', 'default_palette']

def default_palette(num_classes: int, seed: int = 42) -> List[List[int]]:
    """Deterministic random palette (mmseg's recipe), one RGB per class."""
    rng = np.random.RandomState(seed)
    return rng.randint(0, 255, size=(num_classes, 3)).tolist()


@DATASETS.register_module()
class MultiTaskPartialDataset(BaseSegDataset):
    """Multi-task dense prediction dataset with partial annotations.

    Every sample has one image and one map per task of ``tasks``. Which
    tasks are *labelled* for a training image is given by ``label_setting``:

    * ``'full'``: all of them;
    * ``'one'`` / ``'random'``: by the mapping file ``label_mapping`` (any
      format of :func:`~diffmtl.datasets.load_label_mapping`; its ids must
      equal the split's) or, without a file, a mapping drawn with
      :func:`~diffmtl.datasets.generate_label_mapping` from
      ``mapping_seed``.

    In ``test_mode`` every task is labelled. The data-list entries are
    small picklable dicts: ``img_path``, ``img_id``, ``ann_paths``
    (``{task: path or None}``, ``None`` for unlabelled tasks),
    ``ann_format`` (``{task: decoder}``, see
    :mod:`diffmtl.datasets.formats`), ``tasks``, ``task_mask``,
    ``num_classes`` (``{task: n}`` of the segmentation-kind tasks, for the
    loader's label-range check), ``seg_fields=[]``,
    ``reduce_zero_label=False``, ``label_map`` plus decode options
    (``depth_scale``, ``context_label_path``, ``img_format``).

    An empty split and a training set in which no image is labelled for any
    task raise a ``ValueError`` when the data list is built (a task without
    any labelled image only logs a warning here; the runner's
    ``InputCheckHook`` refuses it when the model predicts that task).

    Checks when the data list is built: listed files that are empty (0
    bytes) are an error naming them; ``encoding_check_samples`` labelled
    files per task are decoded and checked by the task's kind
    (``TaskKind.check_encoding``: 0/255 binary maps, negative depth,
    non-unit normals, see ``docs/en/datasets.md``); with
    ``check_data=True`` every sample is loaded once (see
    :func:`~diffmtl.datasets.data_checks.check_all_files`).

    Used directly, it reads a generic layout: images
    ``data_root/<data_prefix['img_path']>/<id><img_suffix>``, the split file
    ``ann_file`` (one id per line; without it all images are used) and per
    task ``data_root/<prefix>/<id><suffix>`` from ``ann_settings``.
    Subclasses override :meth:`list_ids` and :meth:`sample_info` for their
    layouts.

    Args:
        tasks (Sequence[str], optional): Tasks to load, in the order used
            for ``task_mask``. Defaults to :attr:`ALL_TASKS` (or, for the
            base class, the keys of ``ann_settings``).
        label_setting (str): ``'full'``, ``'one'`` or ``'random'``.
        label_mapping (str | dict, optional): Mapping file, or
            ``{setting: file or None}`` so that a config can switch
            ``label_setting`` alone (``None`` = generate). A relative path is
            tried as given, then under ``data_root``.
        label_mapping_tasks (Sequence[str], optional): Column order of
            mapping formats that do not name their tasks (MTPSL ``.pth``).
            Defaults to :attr:`ALL_TASKS`.
        mapping_seed (int): Seed of a generated mapping.
        missing_ann (str): What a missing annotation file of a labelled
            task does: ``'error'`` (default) raises, ``'unlabelled'`` marks
            the task unlabelled for that image.
        ann_settings (dict, optional): Generic layout only:
            ``{task: dict(prefix=..., suffix='.png', format=None)}``;
            ``format`` defaults by the task kind and suffix
            (``TaskKind.formats``).
        ann_formats (dict, optional): ``{task: decoder name}`` replacing
            the layout's decoder of that task for every sample, e.g.
            ``dict(sal='threshold_png')`` reads 0/255 saliency PNGs as 0/1
            (v / 255 > 0.5). Names must be registered decoders
            (``ANN_DECODERS``).
        encoding_check_samples (int): Labelled files per task decoded and
            checked by the task kind when the data list is built (spread
            evenly over the list); 0 switches the check off. Defaults to
            8.
        check_data (bool): Load every sample's image and labelled
            annotations once when the data list is built, and raise
            naming every file that fails (slow: one pass over the data).
            Defaults to False.
        task_classes (dict, optional): ``{task: class names}`` of the
            tasks whose kind has classes (``TaskKind.has_classes``:
            segmentation), overriding the class defaults. The task with
            ``TaskSpec.mmseg_classes`` (``semseg``) also gives mmseg's
            ``metainfo['classes']`` / ``['palette']``.
        task_palettes (dict, optional): ``{task: [[r, g, b], ...]}``.
        depth_scale (float, optional): Divisor of 16-bit depth PNGs.
        depth_unit (str): Informational ``metainfo['depth_unit']``
            (recorded by the depth kind's ``dataset_meta`` when a
            depth-kind task is loaded; every task's kind adds its
            ``TaskKind.dataset_meta`` to the metainfo).
        **kwargs: :class:`mmseg.datasets.BaseSegDataset` arguments
            (``data_root``, ``ann_file``, ``data_prefix``, ``img_suffix``,
            ``pipeline``, ``test_mode``, ``indices``, ``lazy_init`` ...).
    """
    METAINFO: dict = dict()
    #: Every task the layout provides, in its canonical order.
    ALL_TASKS: Tuple[str, ...] = ()
    #: Default classes / palettes of the tasks whose kind has classes.
    TASK_CLASSES: Dict[str, Tuple[str, ...]] = {}
    TASK_PALETTES: Dict[str, List[List[int]]] = {}

    def __init__(self,
                 tasks: Optional[Sequence[str]] = None,
                 label_setting: str = 'full',
                 label_mapping: Union[str, Dict[str, Optional[str]],
                                      None] = None,
                 label_mapping_tasks: Optional[Sequence[str]] = None,
                 mapping_seed: int = 0,
                 missing_ann: str = 'error',
                 ann_settings: Optional[Dict[str, dict]] = None,
                 task_classes: Optional[Dict[str, Sequence[str]]] = None,
                 task_palettes: Optional[Dict[str, Sequence]] = None,
                 depth_scale: Optional[float] = None,
                 depth_unit: str = 'm',
                 metainfo: Optional[dict] = None,
                 ann_formats: Optional[Dict[str, str]] = None,
                 encoding_check_samples: int = 8,
                 check_data: bool = False,
                 **kwargs) -> None:
        name = type(self).__name__
        self.ann_settings = dict(ann_settings or {})
        self.ann_formats = dict(ann_formats or {})
        self.encoding_check_samples = int(encoding_check_samples)
        self.check_data = bool(check_data)
        all_tasks = tuple(self.ALL_TASKS) or tuple(self.ann_settings)
        if tasks is None:
            tasks = all_tasks
        if isinstance(tasks, str):
            tasks = (tasks, )
        tasks = tuple(tasks)
        if not tasks:
            raise ValueError(f'{name}: `tasks` is empty')
        if len(set(tasks)) != len(tasks):
            raise ValueError(f'{name}: duplicate tasks in {tasks}')
        for t in tasks:
            try:
                get_task_spec(t)
            except KeyError as e:
                raise KeyError(f'{name}: {e.args[0]}') from None
            if all_tasks and t not in all_tasks:
                raise KeyError(f'{name}: task {t!r} is not provided by this '
                               f'dataset; available tasks: {list(all_tasks)}')
        if label_setting not in LABEL_SETTINGS:
            raise ValueError(f'{name}: label_setting must be one of '
                             f'{LABEL_SETTINGS}, got {label_setting!r}')
        if label_setting == 'full' and isinstance(label_mapping, str):
            raise ValueError(f"{name}: label_mapping={label_mapping!r} is "
                             "given but label_setting='full'; use 'one' or "
                             "'random'")
        if missing_ann not in ('error', 'unlabelled'):
            raise ValueError(f"{name}: missing_ann must be 'error' or "
                             f"'unlabelled', got {missing_ann!r}")
        self._check_ann_formats(tasks)
        self.tasks = tasks
        self.all_tasks = all_tasks or tasks
        self.label_setting = label_setting
        self.label_mapping = label_mapping
        self.label_mapping_tasks = tuple(label_mapping_tasks or self.all_tasks)
        self.mapping_seed = mapping_seed
        self.missing_ann = missing_ann
        self.depth_scale = depth_scale
        self.depth_unit = depth_unit

        meta = self._build_task_meta(task_classes, task_palettes)
        meta.update(metainfo or {})
        # The transforms live in mmseg's registry: outside a Runner (no
        # default scope set) the pipeline is built in mmseg's scope.
        scope = None if DefaultScope.get_current_instance() else 'mmseg'
        with DefaultScope.overwrite_default_scope(scope):
            super().__init__(metainfo=meta, **kwargs)
        for t in self.tasks:  # kind-specific extras (depth: depth_unit)
            spec = get_task_spec(t)
            self._metainfo.update(spec.task_kind.dataset_meta(spec, self))
        self._metainfo['label_setting'] = label_setting

    def _check_ann_formats(self, tasks: Sequence[str]) -> None:
        """Refuse ``ann_formats`` entries for unknown tasks or decoders."""
        from .formats import ANN_DECODERS
        name = type(self).__name__
        for task, fmt in self.ann_formats.items():
            if task not in tasks:
                raise KeyError(f'{name}: ann_formats names the task {task!r}'
                               f', which is not loaded (tasks: '
                               f'{list(tasks)})')
            if fmt not in ANN_DECODERS:
                raise KeyError(f'{name}: ann_formats[{task!r}] = {fmt!r} is '
                               'not a registered annotation decoder; known: '
                               f'{sorted(ANN_DECODERS)}')

    def full_init(self) -> None:
        """mmengine's ``full_init``, then the ``check_data`` pass."""
        if self._fully_initialized:
            return
        super().full_init()
        if self.check_data:
            check_all_files(len(self), self.get_data_info, self.pipeline,
                            type(self).__name__)

    # ------------------------------------------------------------------
    # metainfo
    # ------------------------------------------------------------------
    def _build_task_meta(self, task_classes, task_palettes) -> dict:
        name = type(self).__name__
        classes = dict(self.TASK_CLASSES)
        classes.update(task_classes or {})
        palettes = dict(self.TASK_PALETTES)
        palettes.update(task_palettes or {})
        out_classes, out_palettes = {}, {}
        mmseg_task = None
        for t in self.tasks:
            spec = get_task_spec(t)
            if not spec.task_kind.has_classes:
                continue
            names = task_class_names(t, dict(task_classes=classes))
            if not names:
                raise ValueError(f'{name}: {spec.kind}-kind task {t!r} needs '
                                 'class names; pass task_classes={'
                                 f'{t!r}: [...]}}')
            if spec.mmseg_classes and mmseg_task is None:
                mmseg_task = t
            pal = palettes.get(t)
            if pal is None:
                pal = default_palette(len(names))
            pal = [list(map(int, c)) for c in pal]
            if len(pal) != len(names):
                raise ValueError(f'{name}: task {t!r} has {len(names)} '
                                 f'classes but {len(pal)} palette colours')
            out_classes[t] = names
            out_palettes[t] = pal
        meta = dict(
            tasks=self.tasks,
            task_classes=out_classes,
            task_palettes=out_palettes,
            classes=out_classes.get(mmseg_task, ()),
            palette=out_palettes.get(mmseg_task, []))
        return meta

    # ------------------------------------------------------------------
    # layout hooks
    # ------------------------------------------------------------------
    def list_ids(self) -> List[str]:
        """Image ids of the split, in dataset order."""
        if self.ann_file:
            return self._read_split_file(self.ann_file)
        img_dir = self.data_prefix.get('img_path', '')
        if not osp.isdir(img_dir):
            raise FileNotFoundError(f'{type(self).__name__}: image folder '
                                    f'not found: {img_dir!r}')
        return sorted(
            f[:-len(self.img_suffix)]
            for f in mmengine.list_dir_or_file(
                img_dir, list_dir=False, suffix=self.img_suffix))

    def sample_info(self, img_id: str) -> dict:
        """Paths of one sample: ``img_path``, ``ann_paths``, ``ann_format``
        (all tasks) plus optional decode options."""
        root = self.data_root or ''
        img_dir = self.data_prefix.get('img_path', '')
        info = dict(
            img_path=osp.join(img_dir, img_id + self.img_suffix),
            ann_paths={},
            ann_format={})
        for t in self.tasks:
            cfg = self.ann_settings.get(t)
            if cfg is None:
                raise KeyError(f'{type(self).__name__}: ann_settings has no '
                               f'entry for task {t!r}')
            suffix = cfg.get('suffix', '.png')
            fmt = cfg.get('format') or get_task_spec(
                t).task_kind.formats.get(suffix)
            if fmt is None:
                raise ValueError(f'{type(self).__name__}: no default decoder '
                                 f'for task {t!r} with suffix {suffix!r}; set '
                                 'ann_settings[task]["format"]')
            info['ann_paths'][t] = osp.join(root, cfg.get('prefix', t),
                                            img_id + suffix)
            info['ann_format'][t] = fmt
        return info

    # ------------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------------
    def _read_split_file(self, path: str) -> List[str]:
        if not osp.isfile(path):
            raise FileNotFoundError(f'{type(self).__name__}: split file not '
                                    f'found: {path!r}')
        with open(path, 'rb') as f:
            raw = f.read()
        try:
            # utf-8-sig: a byte-order mark (Windows editors) is not an id
            text = raw.decode('utf-8-sig')
        except UnicodeDecodeError as e:
            raise ValueError(f'{type(self).__name__}: split file {path!r} is '
                             f'not UTF-8 text ({e})') from None
        ids = [line.strip() for line in text.splitlines() if line.strip()]
        for no, line in enumerate(text.splitlines(), 1):
            if line.strip() and not line.strip().isprintable():
                raise ValueError(
                    f'{type(self).__name__}: split file {path!r}, line '
                    f'{no}: the id {line.strip()!r} holds invisible or '
                    'control characters (e.g. a byte-order mark inside the '
                    'file, a non-breaking space); write plain ids, one per '
                    'line')
        if not ids:
            raise ValueError(f'{type(self).__name__}: split file {path!r} '
                             'lists no image ids (it is empty); write one id '
                             'per line')
        dup = sorted({i for i in ids if ids.count(i) > 1}) if len(
            set(ids)) != len(ids) else []
        if dup:
            raise ValueError(f'{type(self).__name__}: split file {path!r} '
                             f'lists {len(dup)} ids twice, e.g. {dup[:5]}')
        return ids

    def _check_data_root(self) -> None:
        if self.data_root is None:
            raise ValueError(f'{type(self).__name__}: data_root is required')
        if not osp.isdir(self.data_root):
            raise FileNotFoundError(f'{type(self).__name__}: data root not '
                                    f'found: {self.data_root!r}')

    def _resolve_mapping_path(self, path: str) -> str:
        if osp.isabs(path) or osp.exists(path):
            return path
        if self.data_root:
            cand = osp.join(self.data_root, path)
            if osp.exists(cand):
                return cand
        raise FileNotFoundError(
            f'{type(self).__name__}: label mapping not found: {path!r} '
            f'(also tried under data_root {self.data_root!r})')

    def _task_mapping(self, ids: Sequence[str]) -> Dict[str, Tuple[bool]]:
        """Per-image flags (in ``self.tasks`` order) before file checks."""
        self._mapping_source = f'label_setting={self.label_setting!r}'
        if self.test_mode or self.label_setting == 'full':
            return {i: (True, ) * len(self.tasks) for i in ids}
        path = self.label_mapping
        if isinstance(path, Mapping):
            path = path.get(self.label_setting)
        if path is None:
            self._mapping_source += (' (mapping generated with mapping_seed='
                                     f'{self.mapping_seed})')
            return generate_label_mapping(ids, self.tasks, self.label_setting,
                                          self.mapping_seed)
        path = self._resolve_mapping_path(path)
        self._mapping_source += f' with label mapping {path!r}'
        mapping = load_label_mapping(
            path, self.tasks, file_tasks=self.label_mapping_tasks)
        check_mapping_matches_split(
            mapping, ids, source=f'{type(self).__name__}: label mapping '
            f'{path!r}')
        return mapping

    def load_data_list(self) -> List[dict]:
        """Build the data list; see the class docstring for its entries.

        Raises:
            FileNotFoundError: Missing data root, split file, image or
                annotation of a labelled task (``missing_ann='error'``),
                naming the paths.
            ValueError: An empty split, mapping ids that differ from the
                split ids, a training set in which no image is labelled
                for any task, empty (0-byte) files, or sampled annotations
                whose encoding the task kind refuses.
        """
        self._check_data_root()
        ids = [str(i) for i in self.list_ids()]
        if not ids:
            raise ValueError(
                f'{type(self).__name__}: the split has no images (data_root '
                f'{self.data_root!r}, ann_file {self.ann_file!r}, '
                f'data_prefix {self.data_prefix!r})')
        mapping = self._task_mapping(ids)
        num_classes = {
            t: len(c)
            for t, c in self._metainfo.get('task_classes', {}).items()
        }
        data_list, missing, empty = [], [], []
        for img_id in ids:
            info = self.sample_info(img_id)
            if not osp.isfile(info['img_path']):
                missing.append((img_id, 'image', info['img_path']))
                continue
            if osp.getsize(info['img_path']) == 0:
                empty.append((img_id, 'image', info['img_path']))
            flags = list(mapping[img_id])
            for k, t in enumerate(self.tasks):
                path = info['ann_paths'].get(t)
                if not flags[k]:
                    info['ann_paths'][t] = None
                elif path is None or not osp.isfile(path):
                    if self.missing_ann == 'unlabelled':
                        flags[k] = False
                        info['ann_paths'][t] = None
                    else:
                        missing.append((img_id, t, path))
                elif osp.getsize(path) == 0:
                    empty.append((img_id, t, path))
            info['ann_paths'] = {t: info['ann_paths'].get(t)
                                 for t in self.tasks}
            info['ann_format'] = {
                t: self.ann_formats.get(t, info['ann_format'].get(t))
                for t in self.tasks
            }
            if self.depth_scale is not None:
                info.setdefault('depth_scale', float(self.depth_scale))
            info.update(
                img_id=img_id,
                tasks=self.tasks,
                task_mask=tuple(flags),
                num_classes=num_classes,
                seg_fields=[],
                reduce_zero_label=False,
                label_map=self.label_map)
            data_list.append(info)
        if missing:
            shown = '; '.join(f'{i} ({t}): {p}' for i, t, p in missing[:5])
            hint = ('' if self.missing_ann == 'unlabelled' else
                    " (or set missing_ann='unlabelled' to treat missing "
                    'annotations as unlabelled)')
            raise FileNotFoundError(
                f'{type(self).__name__}: {len(missing)} file(s) of listed '
                f'samples are missing under {self.data_root!r}, e.g. '
                f'{shown}{hint}')
        if empty:
            shown = '; '.join(f'{i} ({t}): {p}' for i, t, p in empty[:5])
            raise ValueError(
                f'{type(self).__name__}: {len(empty)} file(s) of listed '
                f'samples are empty (0 bytes), e.g. {shown}. They were not '
                'written completely (an interrupted copy, download or '
                'export?); write or copy them again')
        if not self.test_mode:
            self._check_labelled(data_list)
        check_label_encodings(
            data_list, self.tasks, self.encoding_check_samples,
            type(self).__name__,
            pipeline_loaders(self.pipeline)[1].backend_args)
        return data_list

    def _check_labelled(self, data_list: Sequence[dict]) -> None:
        """Refuse a training set without labels; warn for unlabelled tasks.

        A model would train on it at loss 0 and save checkpoints.
        """
        counts = [0] * len(self.tasks)
        for info in data_list:
            for k, flag in enumerate(info['task_mask']):
                counts[k] += int(bool(flag))
        source = getattr(self, '_mapping_source', '')
        if not any(counts):
            raise ValueError(
                f'{type(self).__name__}: none of the {len(data_list)} '
                f'training images is labelled for any of the tasks '
                f'{list(self.tasks)} ({source}); check that the mapping '
                'names these tasks and that their files exist')
        empty = [t for t, c in zip(self.tasks, counts) if c == 0]
        if empty:
            print_log(
                f'{type(self).__name__}: no training image is labelled for '
                f'the tasks {empty} ({source}); a model predicting them '
                'cannot learn them', logger='current', level=logging.WARNING)

    def label_stats(self) -> Dict[str, Any]:
        """Labelled counts of this dataset (see ``label_mapping_stats``)."""
        return label_mapping_stats(self.get_task_mask(), self.tasks)

    def get_task_mask(self) -> Mapping[str, Tuple[bool, ...]]:
        """``{img_id: task_mask}`` of every sample."""
        out = {}
        for i in range(len(self)):
            info = self.get_data_info(i)
            out[info['img_id']] = info['task_mask']
        return out
