# Copyright (c) diffmtl contributors. All rights reserved.
"""Print per-task labelled counts of a partial-label mapping.

Either a mapping file (any format of ``diffmtl.datasets.load_label_mapping``;
PASCAL ``new_*.pth`` pickles must first go through
``tools/dataset_converters/convert_label_mapping.py``) or the train dataset
of a config (``--config``), which shows the counts the training will use::

    python tools/analysis_tools/print_label_mapping.py \\
        data/ssl_mapping/pascal/onelabel.npy \\
        --tasks semseg human_parts sal normals edge
    python tools/analysis_tools/print_label_mapping.py \\
        --config configs/diffusionmtl/xxx.py
"""
import argparse

from diffmtl.datasets.label_mapping import (label_mapping_stats,
                                            load_label_mapping)


def format_stats(stats: dict) -> str:
    lines = [f'images: {stats["num_images"]}']
    for task, n in stats['per_task'].items():
        lines.append(f'  {task:12s} {n:6d}')
    hist = ', '.join(f'{k}: {v}' for k, v in stats['labels_per_image'].items())
    lines.append(f'labels per image -> images: {hist}')
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('mapping', nargs='?', help='mapping file')
    parser.add_argument('--tasks', nargs='+', help='task order of the file')
    parser.add_argument('--config', help='use train_dataloader.dataset')
    args = parser.parse_args()
    if args.config:
        from mmengine.config import Config

        import diffmtl  # noqa: F401  (registers the datasets)
        from diffmtl.registry import DATASETS
        cfg = Config.fromfile(args.config)
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        stats = dataset.label_stats()
    else:
        if not args.mapping or not args.tasks:
            parser.error('give a mapping file and --tasks, or --config')
        stats = label_mapping_stats(
            load_label_mapping(args.mapping, args.tasks), args.tasks)
    print(format_stats(stats))


if __name__ == '__main__':
    main()
