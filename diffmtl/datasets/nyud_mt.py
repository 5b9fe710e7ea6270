# Copyright (c) diffmtl contributors. All rights reserved.
"""NYUD-v2 multi-task dataset (MTAN/MTPSL ``.npy`` or ATRC folders)."""
import os
import os.path as osp
from typing import List, Optional, Sequence

from diffmtl.registry import DATASETS
from .multitask_partial import MultiTaskPartialDataset

__all__ = ['NYUDMTDataset', 'NYU13_CLASSES', 'NYU40_CLASSES', 'list_npy_ids']

#: MTAN 13-class order (ankurhanda 13-class map minus 1).
NYU13_CLASSES = ('bed', 'books', 'ceiling', 'chair', 'floor', 'furniture',
                 'objects', 'picture', 'sofa', 'table', 'tv', 'wall',
                 'window')

#: NYUD-v2 40-class order of the ATRC/InvPT PNGs (stored as 1..40).
NYU40_CLASSES = ('wall', 'floor', 'cabinet', 'bed', 'chair', 'sofa', 'table',
                 'door', 'window', 'bookshelf', 'picture', 'counter',
                 'blinds', 'desk', 'shelves', 'curtain', 'dresser', 'pillow',
                 'mirror', 'floor mat', 'clothes', 'ceiling', 'books',
                 'refridgerator', 'television', 'paper', 'towel',
                 'shower curtain', 'box', 'whiteboard', 'person',
                 'night stand', 'toilet', 'sink', 'lamp', 'bathtub', 'bag',
                 'otherstructure', 'otherfurniture', 'otherprop')


def list_npy_ids(folder: str, owner: str = 'dataset') -> List[str]:
    """Stems of ``<i>.npy`` files in ``folder`` sorted by their integer."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'{owner}: folder not found: {folder!r}')
    stems = [f[:-4] for f in os.listdir(folder) if f.endswith('.npy')]
    bad = [s for s in stems if not s.isdigit()]
    if bad:
        raise ValueError(f'{owner}: {folder!r} holds .npy files not named '
                         f'by an integer index, e.g. {sorted(bad)[:5]}')
    if not stems:
        raise FileNotFoundError(f'{owner}: no <i>.npy files in {folder!r}')
    return sorted(stems, key=int)


#: Per layout: every task, the folders/suffixes/decoders of each task.
_LAYOUTS = dict(
    mtan=dict(
        tasks=('semseg', 'depth', 'normals'),
        image=('image', '.npy'),
        anns=dict(
            semseg=('label', '.npy', 'label_npy'),
            depth=('depth', '.npy', 'depth_npy'),
            normals=('normal', '.npy', 'normals_npy')),
        classes=NYU13_CLASSES),
    atrc=dict(
        tasks=('semseg', 'depth', 'normals', 'edge'),
        image=('images', '.png'),
        anns=dict(
            semseg=('segmentation', '.png', 'label_png_minus1'),
            depth=('depth', '.npy', 'depth_npy'),
            normals=('normals', '.png', 'normals_png'),
            edge=('edge', '.png', 'threshold_png')),
        classes=NYU40_CLASSES),
)


@DATASETS.register_module()
class NYUDMTDataset(MultiTaskPartialDataset):
    """NYUD-v2 with semantic segmentation, depth and surface normals.

    ``layout='mtan'`` (the paper's setting, 288x384, 13 classes)::

        <data_root>/{train,val}/image/<i>.npy   # (288,384,3) RGB in [0, 1]
        <data_root>/{train,val}/label/<i>.npy   # 0..12, -1 = ignore (->255)
        <data_root>/{train,val}/depth/<i>.npy   # metres, 0 = invalid
        <data_root>/{train,val}/normal/<i>.npy  # unit vectors, 0 = invalid

    The file index ``i`` (0..794 train, 0..653 val) is the image id and the
    row of the MTPSL mapping tensors. ``layout='atrc'`` reads the
    ``NYUDv2.tar.gz`` tree (``images/``, ``segmentation/`` 1..40 with 0
    unlabelled, ``depth/*.npy``, ``normals/`` PNG, ``edge/`` PNG,
    ``gt_sets/{train,val}.txt``) with 40 classes and an extra ``edge`` task.

    Args:
        split (str): ``'train'`` or ``'val'``.
        layout (str): ``'mtan'`` or ``'atrc'``.
        **kwargs: See :class:`MultiTaskPartialDataset`.
    """

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 tasks: Optional[Sequence[str]] = None,
                 layout: str = 'mtan',
                 **kwargs) -> None:
        if layout not in _LAYOUTS:
            raise ValueError(f'NYUDMTDataset: layout must be one of '
                             f'{sorted(_LAYOUTS)}, got {layout!r}')
        self.split = split
        self.layout = layout
        self._layout = _LAYOUTS[layout]
        self.ALL_TASKS = self._layout['tasks']
        self.TASK_CLASSES = dict(semseg=self._layout['classes'])
        kwargs.setdefault('label_mapping_tasks', ('semseg', 'depth',
                                                  'normals'))
        super().__init__(
            data_root=data_root, tasks=tasks, depth_unit='m', **kwargs)

    def _split_root(self) -> str:
        return osp.join(self.data_root, self.split) \
            if self.layout == 'mtan' else self.data_root

    def list_ids(self) -> List[str]:
        if self.layout == 'mtan':
            return list_npy_ids(
                osp.join(self._split_root(), self._layout['image'][0]),
                type(self).__name__)
        path = self.ann_file or osp.join(self.data_root, 'gt_sets',
                                         f'{self.split}.txt')
        return self._read_split_file(path)

    def sample_info(self, img_id: str) -> dict:
        root = self._split_root()
        folder, suffix = self._layout['image']
        info = dict(
            img_path=osp.join(root, folder, img_id + suffix),
            ann_paths={},
            ann_format={})
        for t in self.tasks:
            folder, suffix, fmt = self._layout['anns'][t]
            info['ann_paths'][t] = osp.join(root, folder, img_id + suffix)
            info['ann_format'][t] = fmt
        return info
