# Copyright (c) diffmtl contributors. All rights reserved.
"""PASCAL-Context multi-task dataset (ATRC/ASTMT ``PASCALContext`` tree)."""
import os.path as osp
from typing import List, Optional, Sequence, Union

import numpy as np
from mmengine.logging import print_log

from diffmtl.registry import DATASETS
from diffmtl.structures import get_task_spec
from diffmtl.structures.task_spec import HUMAN_PART_CLASSES
from .multitask_partial import MultiTaskPartialDataset
from .formats import (open_pil, pil_mode_name, png_to_normals,
                      register_ann_decoder)

__all__ = [
    'PascalContextMTDataset', 'VOC_CLASSES', 'voc_palette',
    'CONVERTED_FORMATS'
]

VOC_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat',
               'bottle', 'bus', 'car', 'cat', 'chair', 'cow', 'diningtable',
               'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep',
               'sofa', 'train', 'tvmonitor')

#: Tasks whose raw annotation can be replaced by a converter PNG.
CONVERTIBLE_TASKS = ('human_parts', 'normals', 'edge')

#: Decoders of the converter's PNGs that differ from the task kind's
#: ``.png`` default (``TaskKind.formats``): normals are RGBA, alpha =
#: validity. A dataset fact, per task of this layout.
CONVERTED_FORMATS = dict(normals='normals_rgba_png')

#: Folder of the PASCAL-Context ``LabelMap`` files under ``data_root``.
CONTEXT_LABEL_DIR = ('pascal-context', 'trainval')

#: Raw files of each task: candidate folders (first existing file wins),
#: suffix and decoder; ``needs_label_map`` adds ``context_label_path``.
RAW_LAYOUT = dict(
    semseg=dict(
        dirs=[('semseg', 'VOC12'), ('semseg', 'pascal-context')],
        suffix='.png',
        format='label_png'),
    human_parts=dict(
        dirs=[('human_parts', )], suffix='.mat', format='pascal_parts_mat'),
    sal=dict(dirs=[('sal_distill', )], suffix='.png', format='threshold_png'),
    normals=dict(
        dirs=[('normals_distill', )],
        suffix='.png',
        format='pascal_normals',
        needs_label_map=True),
    edge=dict(
        dirs=[CONTEXT_LABEL_DIR], suffix='.mat',
        format='pascal_context_edge'),
)


_LEGACY_WARNED = set()


@register_ann_decoder('normals_rgba_png')
def _decode_normals_rgba_png(path, results, backend_args=None):
    """Normals PNG with validity in alpha (the PASCAL converter's output).

    ``n = 2 v / 255 - 1`` from R, G, B (x, y, z) for every pixel, exactly
    as the raw ``pascal_normals`` decoder, then the zero vector where
    alpha is 0, so a valid pixel stored as (0, 0, 0) stays (-1, -1, -1).
    An RGB file without alpha ((0, 0, 0) = invalid) is read with that
    convention and a warning: re-run the converter with ``--overwrite`` to
    get arrays identical to the raw files.
    """
    img = open_pil(path, backend_args)
    if img.mode == 'RGB':
        folder = osp.dirname(path)
        if folder not in _LEGACY_WARNED:
            _LEGACY_WARNED.add(folder)
            print_log(
                f'{path!r} is an RGB normals PNG of an earlier PASCAL '
                'converter: (0, 0, 0) is read as invalid, so a valid '
                '(0, 0, 0) pixel is lost; re-run tools/dataset_converters/'
                'pascal_context_mt.py with --overwrite (RGBA, alpha = '
                'validity)',
                logger='current',
                level=30)
        rgb = np.asarray(img)
        return png_to_normals(rgb, zero_invalid=True)
    if img.mode != 'RGBA':
        raise ValueError(
            f'{path!r}: a converted normals PNG must be 8-bit RGBA (R, G, '
            f'B = x, y, z; alpha 0 = invalid), got '
            f'{pil_mode_name(img.mode)}')
    rgba = np.asarray(img)
    normals = png_to_normals(rgba[..., :3], zero_invalid=False)
    normals[rgba[..., 3] == 0] = 0.
    return normals


def voc_palette(num_classes: int) -> List[List[int]]:
    """The PASCAL VOC colour map (bit-interleaved class index)."""
    palette = []
    for idx in range(num_classes):
        r = g = b = 0
        c = idx
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= (c >> 1 & 1) << shift
            b |= (c >> 2 & 1) << shift
            c >>= 3
        palette.append([r, g, b])
    return palette


@DATASETS.register_module()
class PascalContextMTDataset(MultiTaskPartialDataset):
    """PASCAL-Context with semseg, human parts, saliency, normals, edges.

    Layout (``data_root`` = the extracted ``PASCALContext`` folder)::

        JPEGImages/<id>.jpg
        ImageSets/Context/{train,val}.txt          # 4998 / 5105 ids
        semseg/VOC12/<id>.png (else semseg/pascal-context/<id>.png)
        human_parts/<id>.mat                       # PASCAL-Part `anno`
        normals_distill/<id>.png                   # n = 2 v / 255 - 1
        sal_distill/<id>.png                       # salient: v / 255 > 0.5
        pascal-context/trainval/<id>.mat           # `LabelMap` (1..459)
        converted/{human_parts,edge,normals}/<id>.png   # optional, written
                                                   # by the converter
                                                   # (normals: RGBA,
                                                   # alpha = validity)

    Decoding: semseg 21 VOC classes (255 void); human parts 7 classes from
    the PASCAL-Part masks (all 255 when the image has no person part);
    saliency 0/1; normals zeroed outside the 170 valid PASCAL-Context
    classes; edges = thinned ``|Laplacian(LabelMap)| > 0``. The ``.mat``
    files are decoded at load time unless the one-time converter
    (``tools/dataset_converters/pascal_context_mt.py``) wrote PNGs under
    ``converted/``; converted and raw files give identical arrays.

    Each data info also carries ``all_ann_paths`` (every task's file, also
    where the task is unlabelled and ``ann_paths`` holds None), read only by
    ``MultiTaskRandomCrop(cat_labels='all')``.

    Args:
        split (str): ``'train'`` or ``'val'`` (``ImageSets/Context/<split>
            .txt``); ignored when ``ann_file`` is given.
        use_converted (bool | str): ``'auto'`` reads
            ``converted/<task>/<id>.png`` where that file exists and the raw
            files otherwise; True requires the converted files; False always
            reads the raw ``.mat`` files.
        converted_dir (str): Folder of the converted PNGs under
            ``data_root``.
        **kwargs: See :class:`MultiTaskPartialDataset`.
    """
    ALL_TASKS = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
    TASK_CLASSES = dict(semseg=VOC_CLASSES, human_parts=HUMAN_PART_CLASSES)
    TASK_PALETTES = dict(
        semseg=voc_palette(21),
        human_parts=[[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0],
                     [0, 0, 128], [128, 0, 128], [0, 128, 128]])

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 tasks: Optional[Sequence[str]] = None,
                 use_converted: Union[bool, str] = 'auto',
                 converted_dir: str = 'converted',
                 img_suffix: str = '.jpg',
                 **kwargs) -> None:
        if use_converted not in (True, False, 'auto'):
            raise ValueError("use_converted must be True, False or 'auto', "
                             f'got {use_converted!r}')
        self.split = split
        self.use_converted = use_converted
        self.converted_dir = converted_dir
        self._converted = {}
        super().__init__(
            data_root=data_root,
            tasks=tasks,
            img_suffix=img_suffix,
            **kwargs)

    def list_ids(self) -> List[str]:
        path = self.ann_file or osp.join(self.data_root, 'ImageSets',
                                         'Context', f'{self.split}.txt')
        for t in CONVERTIBLE_TASKS:
            folder = osp.join(self.data_root, self.converted_dir, t)
            if self.use_converted is True and t in self.tasks and \
                    not osp.isdir(folder):
                raise FileNotFoundError(
                    f'{type(self).__name__}: use_converted=True but '
                    f'{folder!r} does not exist; run tools/dataset_converters'
                    '/pascal_context_mt.py first')
            self._converted[t] = (self.use_converted is not False
                                  and osp.isdir(folder))
        return self._read_split_file(path)

    def sample_info(self, img_id: str) -> dict:
        root = self.data_root
        context_mat = osp.join(root, *CONTEXT_LABEL_DIR, img_id + '.mat')
        info = dict(
            img_path=osp.join(root, 'JPEGImages', img_id + self.img_suffix),
            ann_paths={},
            ann_format={})
        for t in self.tasks:
            conv = osp.join(root, self.converted_dir, t, img_id + '.png')
            if self._converted.get(t) and (self.use_converted is True
                                           or osp.isfile(conv)):
                path = conv
                fmt = CONVERTED_FORMATS.get(
                    t, get_task_spec(t).task_kind.formats['.png'])
            else:
                layout = RAW_LAYOUT[t]
                # The first existing candidate folder wins (semseg: VOC12).
                cands = [
                    osp.join(root, *d, img_id + layout['suffix'])
                    for d in layout['dirs']
                ]
                path = next((c for c in cands if osp.isfile(c)), cands[-1])
                fmt = layout['format']
                if layout.get('needs_label_map'):
                    info['context_label_path'] = context_mat
                    if not osp.isfile(context_mat):
                        path = context_mat  # reported as the missing file
            info['ann_paths'][t] = path
            info['ann_format'][t] = fmt
        # Every task's file, kept also where the task is unlabelled (the
        # loader never reads it): MultiTaskRandomCrop(cat_labels='all')
        # reproduces the reference's crop check on unlabelled semseg.
        info['all_ann_paths'] = dict(info['ann_paths'])
        return info
