# Copyright (c) diffmtl contributors. All rights reserved.
"""Time ``MultiTaskMetric``'s per-image statistics, task by task.

Synthetic but realistic maps (a label map of random regions, its
boundaries, noisy predictions) of size ``--size`` are fed to the same
functions :class:`diffmtl.evaluation.MultiTaskMetric` calls in ``process``;
the script prints milliseconds per image for every task and the boundary
cost per threshold.

Example::

    python tools/analysis_tools/benchmark_metric.py --size 512 512 \
        --num-images 3 --edge-thresholds 25
"""
import argparse
import time

import numpy as np

from diffmtl.evaluation.functional import (boundary_metrics, boundary_stats,
                                           default_edge_thresholds,
                                           depth_stats, has_pyedgeeval,
                                           normals_stats, sal_stats,
                                           seg_stats)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--size', type=int, nargs=2, default=[512, 512])
    p.add_argument('--num-images', type=int, default=3)
    p.add_argument(
        '--edge-thresholds',
        type=int,
        nargs='+',
        default=[25],
        help='numbers of boundary thresholds to time')
    p.add_argument(
        '--edge-backend',
        nargs='+',
        default=['auto'],
        help="'auto', 'pyedgeeval' and/or 'numpy'")
    p.add_argument('--edge-max-dist', type=float, default=0.0075)
    p.add_argument('--edge-nms', action='store_true')
    p.add_argument('--seed', type=int, default=0)
    return p.parse_args()


def make_image(rng, h, w):
    """Random region map, its boundary and noisy predictions."""
    n_regions = 12
    cy = rng.integers(0, h, n_regions)
    cx = rng.integers(0, w, n_regions)
    yy, xx = np.mgrid[0:h, 0:w]
    d = (yy[None] - cy[:, None, None])**2 + (xx[None] - cx[:, None, None])**2
    label = d.argmin(0) % 21
    edge = np.zeros((h, w), np.int64)
    edge[:-1] |= label[:-1] != label[1:]
    edge[:, :-1] |= label[:, :-1] != label[:, 1:]
    pred_label = label.copy()
    flip = rng.random((h, w)) < 0.1
    pred_label[flip] = rng.integers(0, 21, flip.sum())
    # boundary prob: decays with the distance to the GT boundary shifted by
    # one pixel (like a trained network's soft output), plus weak noise
    from scipy.ndimage import distance_transform_edt
    dist = distance_transform_edt(np.roll(edge, 1, axis=0) == 0)
    edge_p = np.clip(
        0.95 * np.exp(-dist**2 / 2) + 0.02 * rng.random((h, w))**2, 0, 1)
    nrm = rng.normal(size=(3, h, w))
    depth = rng.random((h, w)) * 10
    return dict(
        label=label,
        pred_label=pred_label,
        sal=(label % 2).astype(np.int64),
        sal_p=rng.random((h, w)),
        nrm=nrm,
        nrm_p=nrm + rng.normal(scale=0.3, size=nrm.shape),
        depth=depth,
        depth_p=depth + rng.normal(size=depth.shape),
        edge=edge,
        edge_p=edge_p)


def timeit(fn, images):
    t0 = time.perf_counter()
    for im in images:
        fn(im)
    return (time.perf_counter() - t0) / len(images) * 1000


def main():
    args = parse_args()
    rng = np.random.default_rng(args.seed)
    h, w = args.size
    images = [make_image(rng, h, w) for _ in range(args.num_images)]
    print(f'{args.num_images} images of {h}x{w}; pyedgeeval installed: '
          f'{has_pyedgeeval()}')
    rows = [
        ('semseg (21 cl.)',
         lambda im: seg_stats(im['pred_label'], im['label'], 21)),
        ('sal (19 thr, both variants)',
         lambda im: sal_stats(im['sal_p'], im['sal'])),
        ('normals', lambda im: normals_stats(im['nrm_p'], im['nrm'])),
        ('depth', lambda im: depth_stats(im['depth_p'], im['depth'])),
    ]
    for name, fn in rows:
        print(f'{name:<40s} {timeit(fn, images):9.1f} ms/image')
    for backend in args.edge_backend:
        for k in args.edge_thresholds:
            thr = default_edge_thresholds(k)
            recs = []
            ms = timeit(
                lambda im: recs.append(
                    boundary_stats(
                        im['edge_p'], im['edge'], thr, args.edge_max_dist,
                        nms=args.edge_nms, backend=backend)), images)
            ods = boundary_metrics(
                {key: np.stack([r[key] for r in recs])
                 for key in recs[0]})['odsF']
            print(f'edge ({k} thr, {backend}, nms={args.edge_nms})'
                  f'{"":<10s} {ms:9.1f} ms/image  ({ms / k:.1f} ms/thr, '
                  f'odsF {ods:.3f})')


if __name__ == '__main__':
    main()
