# Copyright (c) diffmtl contributors. All rights reserved.
"""Generic folder layout of docs/en/design.md (also used by synthetic
scenes)."""
import os.path as osp
from typing import List, Optional, Sequence

from diffmtl.registry import DATASETS
from diffmtl.structures import get_task_spec
from .label_mapping import read_json_file
from .multitask_partial import MultiTaskPartialDataset

__all__ = ['FolderMultiTaskDataset']


@DATASETS.register_module()
class FolderMultiTaskDataset(MultiTaskPartialDataset):
    """Multi-task dataset stored in the generic diffmtl folder layout::

        ROOT/
          meta.json          # {"tasks": [...], "task_classes": {...},
                             #  "task_palettes": {...}, "depth_scale": 1000}
          images/<id>.png|.jpg
          <task>/<id>.png    # or <id>.npy for normals / depth
          splits/train.txt, val.txt
          mappings/onelabel.json, randomlabels.json   # optional

    Encodings (decoder chosen by the file suffix from the task kind's
    ``TaskKind.formats``; a plugin kind brings its own):
    segmentation, saliency and boundary tasks are 8-bit single-channel PNGs
    (class ids or 0/1, 255 = ignore); normals are RGB PNGs with
    n = 2 v / 255 - 1 and (0, 0, 0) invalid, or float32 (H, W, 3) ``.npy``;
    depth is a 16-bit PNG in ``1 / depth_scale`` metres or float32 (H, W)
    ``.npy`` metres, 0 invalid.

    ``meta.json`` gives the task list (canonical order), the classes and
    palettes of segmentation-kind tasks and ``depth_scale`` (default 1000).
    A relative ``label_mapping`` is resolved under ``data_root``, e.g.
    ``label_mapping='mappings/onelabel.json'``.

    Args:
        data_root (str): ROOT.
        split (str): Name of ``splits/<split>.txt``.
        tasks (Sequence[str], optional): Subset of the ``meta.json`` tasks.
        **kwargs: See :class:`MultiTaskPartialDataset`.
    """

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 tasks: Optional[Sequence[str]] = None,
                 **kwargs) -> None:
        name = type(self).__name__
        if not osp.isdir(data_root):
            raise FileNotFoundError(f'{name}: data root not found: '
                                    f'{data_root!r}')
        meta_path = osp.join(data_root, 'meta.json')
        if not osp.isfile(meta_path):
            raise FileNotFoundError(f'{name}: {meta_path!r} not found (it '
                                    'lists the tasks of the folder layout)')
        try:
            meta = read_json_file(meta_path, 'dataset meta')
        except ValueError as e:
            raise ValueError(f'{name}: {e}') from None
        if not isinstance(meta, dict) or not meta.get('tasks'):
            raise ValueError(f'{name}: {meta_path!r} has no "tasks" list')
        self.split = split
        self.meta = meta
        self.ALL_TASKS = tuple(meta['tasks'])
        self.TASK_CLASSES = {
            t: tuple(c)
            for t, c in (meta.get('task_classes') or {}).items()
        }
        self.TASK_PALETTES = dict(meta.get('task_palettes') or {})
        kwargs.setdefault('depth_scale', float(meta.get('depth_scale', 1000)))
        super().__init__(data_root=data_root, tasks=tasks, **kwargs)

    def list_ids(self) -> List[str]:
        path = self.ann_file or osp.join(self.data_root, 'splits',
                                         f'{self.split}.txt')
        return self._read_split_file(path)

    def sample_info(self, img_id: str) -> dict:
        root = self.data_root
        img_path = osp.join(root, 'images', img_id + '.png')
        if not osp.isfile(img_path) and osp.isfile(
                osp.join(root, 'images', img_id + '.jpg')):
            img_path = osp.join(root, 'images', img_id + '.jpg')
        info = dict(img_path=img_path, ann_paths={}, ann_format={})
        for t in self.tasks:
            formats = get_task_spec(t).task_kind.formats
            # First existing suffix wins; the kind's first suffix is named
            # when none exists.
            path, fmt = None, None
            for suffix, cand_fmt in formats.items():
                cand = osp.join(root, t, img_id + suffix)
                if path is None or osp.isfile(cand):
                    path, fmt = cand, cand_fmt
                    if osp.isfile(cand):
                        break
            info['ann_paths'][t] = path
            info['ann_format'][t] = fmt
        return info
