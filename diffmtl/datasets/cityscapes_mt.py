# Copyright (c) diffmtl contributors. All rights reserved.
"""Cityscapes multi-task dataset (MTAN/MTPSL ``cityscapes2`` ``.npy``)."""
import os.path as osp
from typing import List, Optional, Sequence

from diffmtl.registry import DATASETS
from .multitask_partial import MultiTaskPartialDataset
from .nyud_mt import list_npy_ids

__all__ = [
    'CityscapesMTDataset', 'CITYSCAPES7_CLASSES', 'CITYSCAPES19_CLASSES'
]

CITYSCAPES7_CLASSES = ('flat', 'construction', 'object', 'nature', 'sky',
                       'human', 'vehicle')
CITYSCAPES19_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence',
                        'pole', 'traffic light', 'traffic sign',
                        'vegetation', 'terrain', 'sky', 'person', 'rider',
                        'car', 'truck', 'bus', 'train', 'motorcycle',
                        'bicycle')
_PALETTE7 = [[128, 64, 128], [70, 70, 70], [153, 153, 153], [107, 142, 35],
             [70, 130, 180], [220, 20, 60], [0, 0, 142]]
_PALETTE19 = [[128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156],
              [190, 153, 153], [153, 153, 153], [250, 170, 30],
              [220, 220, 0], [107, 142, 35], [152, 251, 152], [70, 130, 180],
              [220, 20, 60], [255, 0, 0], [0, 0, 142], [0, 0, 70],
              [0, 60, 100], [0, 80, 100], [0, 0, 230], [119, 11, 32]]


@DATASETS.register_module()
class CityscapesMTDataset(MultiTaskPartialDataset):
    """Cityscapes with semantic segmentation and (inverse) depth.

    Layout (MTAN preprocessing, 128x256)::

        <data_root>/{train,val}/image/<i>.npy     # (128,256,3) RGB in [0, 1]
        <data_root>/{train,val}/label_7/<i>.npy   # 0..6, -1 = void (->255)
        <data_root>/{train,val}/label_19/<i>.npy  # 0..18, -1 = void
        <data_root>/{train,val}/depth/<i>.npy     # inverse depth, 0 invalid

    The index ``i`` (0..2974 train, 0..499 val) is the image id and the row
    of the MTPSL mapping tensor. ``metainfo['depth_unit']`` is
    ``'inverse depth'``.

    Args:
        split (str): ``'train'`` or ``'val'``.
        num_classes (int): 7 (``label_7``, the paper's setting) or 19
            (``label_19``).
        **kwargs: See :class:`MultiTaskPartialDataset`.
    """
    ALL_TASKS = ('semseg', 'depth')

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 tasks: Optional[Sequence[str]] = None,
                 num_classes: int = 7,
                 **kwargs) -> None:
        if num_classes not in (7, 19):
            raise ValueError('CityscapesMTDataset: num_classes must be 7 or '
                             f'19, got {num_classes!r}')
        self.split = split
        self.num_classes = num_classes
        self.TASK_CLASSES = dict(
            semseg=CITYSCAPES7_CLASSES
            if num_classes == 7 else CITYSCAPES19_CLASSES)
        self.TASK_PALETTES = dict(
            semseg=_PALETTE7 if num_classes == 7 else _PALETTE19)
        super().__init__(
            data_root=data_root,
            tasks=tasks,
            depth_unit='inverse depth',
            **kwargs)

    def list_ids(self) -> List[str]:
        return list_npy_ids(
            osp.join(self.data_root, self.split, 'image'),
            type(self).__name__)

    def sample_info(self, img_id: str) -> dict:
        root = osp.join(self.data_root, self.split)
        folders = dict(
            semseg=(f'label_{self.num_classes}', 'label_npy'),
            depth=('depth', 'depth_npy'))
        info = dict(
            img_path=osp.join(root, 'image', img_id + '.npy'),
            ann_paths={},
            ann_format={})
        for t in self.tasks:
            folder, fmt = folders[t]
            info['ann_paths'][t] = osp.join(root, folder, img_id + '.npy')
            info['ann_format'][t] = fmt
        return info
