# Copyright (c) diffmtl contributors. All rights reserved.
"""Generate the embedded synthetic multi-task scenes dataset.

Example::

    python tools/dataset_converters/make_synthetic_scenes.py \
        --out data/synthetic_scenes --num-train 2000 --num-val 500 --num-test 1000 \
        --height 96 --width 128 --seed 0

The same arguments always give byte-identical files; see
docs/en/synthetic_scenes.md for what is rendered and the label rules.
"""
import argparse
import os.path as osp
import sys

# Allow running from a source checkout without installing the package.
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from diffmtl.datasets.synthetic import (  # noqa: E402
    generate_synthetic_scenes, render_preview, write_png)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Ray-cast the synthetic multi-task room scenes (semseg, '
        'human_parts, sal, normals, edge, depth) into a '
        'FolderMultiTaskDataset folder.')
    parser.add_argument('--out', default='data/synthetic_scenes',
                        help='dataset root to write (default: %(default)s)')
    parser.add_argument('--num-train', type=int, default=2000)
    parser.add_argument('--num-val', type=int, default=500)
    parser.add_argument('--num-test', type=int, default=1000,
                        help='held-out test images (ids after val)')
    parser.add_argument('--height', type=int, default=96)
    parser.add_argument('--width', type=int, default=128)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--no-noise', action='store_true',
                        help='do not add sensor noise to the images')
    parser.add_argument('--workers', type=int, default=None,
                        help='processes (default: all CPU cores)')
    parser.add_argument('--preview', metavar='PNG', default=None,
                        help='only write a picture of samples and their '
                        'task maps to PNG (no dataset)')
    parser.add_argument('--preview-ids', type=int, nargs='+',
                        default=[3, 5, 7],
                        help='sample indices shown by --preview')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.preview:
        write_png(
            args.preview,
            render_preview(args.preview_ids, args.seed, args.height,
                           args.width))
        print(f'wrote {args.preview}')
        return
    summary = generate_synthetic_scenes(
        args.out,
        num_train=args.num_train,
        num_val=args.num_val,
        num_test=args.num_test,
        height=args.height,
        width=args.width,
        seed=args.seed,
        noise=not args.no_noise,
        workers=args.workers)
    print(f'wrote {summary["num_train"]} train + {summary["num_val"]} val '
          f'+ {summary["num_test"]} test images ({args.height}x{args.width}, seed {args.seed}) to '
          f'{args.out} in {summary["seconds"]} s; '
          f'{summary["images_with_figures"]} show figures, '
          f'{summary["images_with_invalid_depth"]} have invalid depth')


if __name__ == '__main__':
    main()
