# Copyright (c) diffmtl contributors. All rights reserved.
"""One-time conversion of the PASCAL-Context MATLAB annotations to PNGs.

Writes, for every id of the given splits, under ``<root>/converted/``:

* ``human_parts/<id>.png``: 7-class human parts (0 background, 1..6 parts,
  all 255 when the image has no person part) from ``human_parts/<id>.mat``;
* ``edge/<id>.png``: 0/1 boundaries (thinned ``|Laplacian(LabelMap)| > 0``)
  from ``pascal-context/trainval/<id>.mat``;
* ``normals/<id>.png``: RGBA; R, G, B = ``normals_distill/<id>.png``
  unchanged (0 on invalid pixels), alpha = 255 on the 170 valid
  PASCAL-Context classes and 0 elsewhere (= invalid). Validity lives in
  alpha, so a valid pixel stored as (0, 0, 0) stays valid: the converted
  and the raw files decode to identical arrays (decoder
  ``normals_rgba_png``). RGB normals PNGs without alpha ((0, 0, 0) =
  invalid) are read too, with a warning; ``--overwrite`` rewrites them.

``PascalContextMTDataset(use_converted='auto')`` then reads these PNGs
instead of decoding ``.mat`` files in the data loader. Example::

    python tools/dataset_converters/pascal_context_mt.py data/PASCALContext \\
        --splits train val --nproc 4
"""
import argparse
import os
import os.path as osp
from multiprocessing import Pool
from typing import Sequence, Tuple

import numpy as np
from PIL import Image

from diffmtl.datasets.pascal_utils import (decode_human_parts_mat,
                                           label_map_boundaries,
                                           load_context_label_map,
                                           normals_valid_mask)

TASKS = ('human_parts', 'edge', 'normals')


def _convert_human_parts(root: str, img_id: str, context_label, dst: str):
    arr = decode_human_parts_mat(
        osp.join(root, 'human_parts', img_id + '.mat'),
        shape=context_label().shape)
    Image.fromarray(arr.astype(np.uint8)).save(dst)


def _convert_edge(root: str, img_id: str, context_label, dst: str):
    arr = label_map_boundaries(context_label())
    Image.fromarray(arr.astype(np.uint8)).save(dst)


def _convert_normals(root: str, img_id: str, context_label, dst: str):
    src = osp.join(root, 'normals_distill', img_id + '.png')
    rgb = np.array(Image.open(src).convert('RGB'))
    valid = normals_valid_mask(context_label())
    if valid.shape != rgb.shape[:2]:
        raise ValueError(f'{src!r} has size {rgb.shape[:2]} but its '
                         f'LabelMap has size {valid.shape}')
    rgba = np.zeros(rgb.shape[:2] + (4, ), np.uint8)
    rgba[valid, :3] = rgb[valid]
    rgba[valid, 3] = 255
    Image.fromarray(rgba).save(dst)  # (H, W, 4) uint8: RGBA


#: Converter of each task of the PASCAL-Context layout (a dataset fact:
#: which raw file of this layout becomes which PNG), ``fn(root, img_id,
#: context_label, dst)``; ``context_label()`` loads the image's LabelMap
#: once.
CONVERTERS = dict(
    human_parts=_convert_human_parts,
    edge=_convert_edge,
    normals=_convert_normals)


def convert_one(args: Tuple[str, str, str, Sequence[str], bool]) -> str:
    """Convert the annotations of one image id; returns the id."""
    root, out_dir, img_id, tasks, overwrite = args
    label = None

    def context_label():
        nonlocal label
        if label is None:
            label = load_context_label_map(
                osp.join(root, 'pascal-context', 'trainval',
                         img_id + '.mat'))
        return label

    for task in tasks:
        dst = osp.join(out_dir, task, img_id + '.png')
        if osp.isfile(dst) and not overwrite:
            continue
        convert = CONVERTERS.get(task)
        if convert is None:
            raise ValueError(f'unknown task {task!r}; choose from {TASKS}')
        convert(root, img_id, context_label, dst)
    return img_id


def convert_pascal_context(root: str,
                           splits: Sequence[str] = ('train', 'val'),
                           tasks: Sequence[str] = TASKS,
                           out_dir: str = None,
                           nproc: int = 1,
                           overwrite: bool = False) -> int:
    """Convert every id of ``splits``; returns the number of ids."""
    if not osp.isdir(root):
        raise FileNotFoundError(f'PASCAL-Context root not found: {root!r}')
    out_dir = out_dir or osp.join(root, 'converted')
    ids = []
    for split in splits:
        path = osp.join(root, 'ImageSets', 'Context', f'{split}.txt')
        if not osp.isfile(path):
            raise FileNotFoundError(f'split file not found: {path!r}')
        with open(path) as f:
            ids += [line.strip() for line in f if line.strip()]
    ids = sorted(set(ids))
    for task in tasks:
        os.makedirs(osp.join(out_dir, task), exist_ok=True)
    jobs = [(root, out_dir, i, tuple(tasks), overwrite) for i in ids]
    if nproc > 1:
        with Pool(nproc) as pool:
            for _ in pool.imap_unordered(convert_one, jobs, chunksize=16):
                pass
    else:
        for job in jobs:
            convert_one(job)
    return len(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', help='PASCALContext folder')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'])
    parser.add_argument('--tasks', nargs='+', default=list(TASKS),
                        choices=TASKS)
    parser.add_argument('--out-dir', help='default: <root>/converted')
    parser.add_argument('--nproc', type=int, default=1)
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args()
    n = convert_pascal_context(args.root, args.splits, args.tasks,
                               args.out_dir, args.nproc, args.overwrite)
    print(f'converted {n} images ({", ".join(args.tasks)})')


if __name__ == '__main__':
    main()
