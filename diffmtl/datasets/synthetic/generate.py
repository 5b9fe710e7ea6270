# Copyright (c) diffmtl contributors. All rights reserved.
"""Write a synthetic multi-task dataset in the ``FolderMultiTaskDataset``
layout (see ``docs/en/design.md`` and ``docs/en/synthetic_scenes.md``).

Image ``i`` (global index over train then val) is rendered from
``numpy.random.default_rng([seed, i])``, so each file depends only on the
seed, its index, the image size and ``noise``; the number of worker
processes does not change any byte.
"""
import json
import multiprocessing
import os
import os.path as osp
import time
from typing import Dict, Optional, Sequence

import numpy as np

from diffmtl.structures.task_spec import HUMAN_PART_CLASSES
from ..label_mapping import dump_label_mapping, generate_label_mapping
from .png import write_png
from .render import render_scene
from .scene import PARTS_PALETTE, SEMSEG_CLASSES, SEMSEG_PALETTE, sample_scene

__all__ = [
    'SYNTHETIC_TASKS', 'GENERATOR_VERSION', 'encode_normals',
    'decode_normals', 'encode_depth', 'render_sample',
    'generate_synthetic_scenes'
]

#: All six tasks, in the dataset's task order.
SYNTHETIC_TASKS = ('semseg', 'human_parts', 'sal', 'normals', 'edge',
                   'depth')
#: Bumped whenever the same seed would produce different files.
GENERATOR_VERSION = '1.0'
DEPTH_SCALE = 1000


def encode_normals(normals: np.ndarray) -> np.ndarray:
    """(H, W, 3) unit normals -> uint8 RGB, ``v = round((n + 1) * 127.5)``.

    The zero vector (invalid) is written as (0, 0, 0); decode with
    ``n = 2 v / 255 - 1``.
    """
    v = np.clip(np.round((normals + 1.0) * 127.5), 0, 255).astype(np.uint8)
    invalid = ~np.any(normals != 0, axis=-1)
    v[invalid] = 0
    return v


def decode_normals(rgb: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode_normals`: float32 (H, W, 3), 0 = invalid."""
    n = rgb.astype(np.float32) * (2.0 / 255.0) - 1.0
    n[~np.any(rgb != 0, axis=-1)] = 0
    return n


def encode_depth(depth: np.ndarray, depth_scale: int = DEPTH_SCALE):
    """Metres (0 = invalid) -> uint16 ``round(depth * depth_scale)``."""
    d = np.round(depth.astype(np.float64) * depth_scale)
    if d.max(initial=0) > 65535:
        raise ValueError(f'depth {depth.max():.2f} m does not fit a 16-bit '
                         f'PNG at depth_scale={depth_scale}')
    out = d.astype(np.uint16)
    out[(depth > 0) & (out == 0)] = 1  # valid depth never encodes to 0
    return out


def render_sample(index: int,
                  seed: int = 0,
                  height: int = 96,
                  width: int = 128,
                  noise: bool = True) -> Dict[str, np.ndarray]:
    """Render image ``index`` of the dataset with ``seed``.

    Returns:
        dict: The output of :func:`render_scene` plus ``num_figures``.
    """
    rng = np.random.default_rng([int(seed), int(index)])
    scene = sample_scene(rng, aspect=height / width, noise=noise)
    out = render_scene(scene, height, width)
    out['num_figures'] = scene.num_figures
    return out


def _write_one(args) -> dict:
    index, img_id, root, seed, height, width, noise = args
    s = render_sample(index, seed, height, width, noise)
    write_png(osp.join(root, 'images', img_id + '.png'), s['img'])
    for task in ('semseg', 'human_parts', 'sal', 'edge'):
        write_png(osp.join(root, task, img_id + '.png'), s[task])
    write_png(osp.join(root, 'normals', img_id + '.png'),
              encode_normals(s['normals']))
    write_png(osp.join(root, 'depth', img_id + '.png'),
              encode_depth(s['depth']))
    return dict(
        intrinsics={k: round(v, 6) for k, v in s['intrinsics'].items()},
        has_figure=bool(s['human_parts'][0, 0] != 255),
        invalid_depth=int((s['depth'] == 0).sum()))


def generate_synthetic_scenes(out_dir: str,
                              num_train: int = 2000,
                              num_val: int = 500,
                              num_test: int = 1000,
                              height: int = 96,
                              width: int = 128,
                              seed: int = 0,
                              noise: bool = True,
                              workers: Optional[int] = None,
                              mapping_settings: Sequence[str] = ('one',
                                                                 'random'),
                              verbose: bool = False) -> dict:
    """Render the synthetic scenes dataset into ``out_dir``.

    Writes ``images/``, one folder per task of :data:`SYNTHETIC_TASKS`,
    ``splits/train.txt`` / ``val.txt`` / ``test.txt``, ``meta.json``,
    ``cameras.json``
    (per-image intrinsics) and ``mappings/onelabel.json`` /
    ``randomlabels.json`` (train ids; drawn by
    :func:`diffmtl.datasets.generate_label_mapping` with ``seed``).
    Image ids are ``'%05d' % index``: train ``0 .. num_train-1``, then
    val, then test. The test split is held out: hyper-parameters are chosen
    on val, reported numbers come from test. Adding a test split leaves the
    train and val files byte-identical to a dataset generated without one.

    Args:
        out_dir (str): Dataset root (created).
        num_train (int): Training images.
        num_val (int): Validation images.
        num_test (int): Held-out test images (rendered after val).
        height (int): Image height in pixels.
        width (int): Image width in pixels.
        seed (int): Generator seed.
        noise (bool): Add random Gaussian sensor noise to the images.
        workers (int, optional): Processes; defaults to ``os.cpu_count()``.
        mapping_settings (Sequence[str]): Partial-label files to write
            (``'one'`` -> onelabel.json, ``'random'`` -> randomlabels.json).
        verbose (bool): Print progress.

    Returns:
        dict: Summary: ``num_train``, ``num_val``, ``num_test``,
        ``seconds``,
        ``images_with_figures``, ``images_with_invalid_depth``.
    """
    if min(num_train, num_val, num_test) < 0 or \
            num_train + num_val + num_test == 0:
        raise ValueError(f'generate_synthetic_scenes: need a positive number '
                         f'of images, got num_train={num_train}, '
                         f'num_val={num_val}, num_test={num_test}')
    if height < 8 or width < 8:
        raise ValueError(f'generate_synthetic_scenes: image size {height}x'
                         f'{width} is too small (min 8x8)')
    t0 = time.time()
    for sub in ('images', 'splits', 'mappings') + SYNTHETIC_TASKS:
        os.makedirs(osp.join(out_dir, sub), exist_ok=True)
    ids = ['%05d' % i for i in range(num_train + num_val + num_test)]
    jobs = [(i, img_id, out_dir, seed, height, width, noise)
            for i, img_id in enumerate(ids)]
    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(jobs) > 1:
        ctx = multiprocessing.get_context('fork')
        with ctx.Pool(min(workers, len(jobs))) as pool:
            infos = pool.map(_write_one, jobs, chunksize=16)
    else:
        infos = [_write_one(job) for job in jobs]

    train_ids = ids[:num_train]
    val_ids = ids[num_train:num_train + num_val]
    test_ids = ids[num_train + num_val:]
    for name, split in (('train', train_ids), ('val', val_ids),
                        ('test', test_ids)):
        with open(osp.join(out_dir, 'splits', name + '.txt'), 'w') as f:
            f.write(''.join(i + '\n' for i in split))
    files = dict(one='onelabel.json', random='randomlabels.json')
    for setting in mapping_settings:
        if setting not in files:
            raise ValueError(f'unknown mapping setting {setting!r}; '
                             f'expected some of {tuple(files)}')
        if train_ids:
            mapping = generate_label_mapping(train_ids, SYNTHETIC_TASKS,
                                             setting, seed)
            dump_label_mapping(mapping, SYNTHETIC_TASKS,
                               osp.join(out_dir, 'mappings', files[setting]))

    meta = dict(
        tasks=list(SYNTHETIC_TASKS),
        task_classes=dict(
            semseg=list(SEMSEG_CLASSES),
            human_parts=list(HUMAN_PART_CLASSES)),
        task_palettes=dict(semseg=SEMSEG_PALETTE, human_parts=PARTS_PALETTE),
        depth_scale=DEPTH_SCALE,
        depth_unit='m',
        generator=dict(
            name='diffmtl.datasets.synthetic',
            version=GENERATOR_VERSION,
            seed=int(seed),
            height=int(height),
            width=int(width),
            num_train=int(num_train),
            num_val=int(num_val),
            num_test=int(num_test),
            noise=bool(noise)))
    with open(osp.join(out_dir, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=1)
        f.write('\n')
    with open(osp.join(out_dir, 'cameras.json'), 'w') as f:
        json.dump({i: info['intrinsics']
                   for i, info in zip(ids, infos)}, f, indent=0)
        f.write('\n')
    summary = dict(
        num_train=num_train,
        num_val=num_val,
        num_test=num_test,
        seconds=round(time.time() - t0, 2),
        images_with_figures=sum(i['has_figure'] for i in infos),
        images_with_invalid_depth=sum(i['invalid_depth'] > 0 for i in infos))
    if verbose:
        print(f'synthetic scenes: wrote {len(ids)} images ({height}x{width})'
              f' to {out_dir} in {summary["seconds"]} s')
    return summary
