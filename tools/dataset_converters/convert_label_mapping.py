# Copyright (c) diffmtl contributors. All rights reserved.
"""Convert a published partial-label mapping into diffmtl JSON.

The DiffusionMTL PASCAL ``new_onelabel.pth`` / ``new_randomlabels.pth``
files are full Python pickles (``{numpy.str_ id: [5 ints]}`` holding numpy
scalars) that ``torch.load(weights_only=True)`` refuses. **This script is
the only place where diffmtl unpickles such a file** (``torch.load(...,
weights_only=False)``), which can execute arbitrary code: run it only on
files you trust, once, and train from the JSON it writes.

``.npy`` (``{task: [ids]}``) and MTPSL ``{'labels_weights': Tensor}``
``.pth`` files are read with the package's safe loaders, so converting them
is optional.

Example::

    python tools/dataset_converters/convert_label_mapping.py \\
        data/ssl_mapping/pascal/new_onelabel.pth \\
        --out data/ssl_mapping/pascal/onelabel.json --stats
"""
import argparse
import json
import os.path as osp
from typing import Optional, Sequence

from diffmtl.datasets.label_mapping import (dump_label_mapping,
                                            label_mapping_stats,
                                            load_label_mapping,
                                            parse_label_mapping)

#: Column order of formats without task names, by number of columns.
DEFAULT_FILE_TASKS = {
    5: ('semseg', 'human_parts', 'sal', 'normals', 'edge'),  # PASCAL
    3: ('semseg', 'depth', 'normals'),  # NYUD (MTPSL)
    2: ('semseg', 'depth'),  # Cityscapes (MTPSL)
}


def _load_trusted(path: str):
    suffix = osp.splitext(path)[1].lower()
    if suffix in ('.pth', '.pt'):
        import torch

        # Deliberately unsafe: the published PASCAL pickles need it.
        return torch.load(path, map_location='cpu', weights_only=False)
    return None


def _width(obj) -> Optional[int]:
    if isinstance(obj, dict) and 'labels_weights' in obj:
        return int(obj['labels_weights'].shape[1])
    if isinstance(obj, dict) and obj:
        first = next(iter(obj.values()))
        if not isinstance(first, (list, tuple)) or not first or \
                not isinstance(first[0], str):
            return len(first)
    return None


def convert_label_mapping(src: str,
                          out: str,
                          file_tasks: Optional[Sequence[str]] = None,
                          tasks: Optional[Sequence[str]] = None) -> dict:
    """Read ``src`` (any published format) and write diffmtl JSON ``out``.

    Args:
        src (str): ``.pth`` / ``.npy`` / ``.json`` mapping.
        out (str): JSON file to write.
        file_tasks (Sequence[str], optional): Column order of unnamed
            formats; defaults by the number of columns (5 PASCAL, 3 NYUD,
            2 Cityscapes).
        tasks (Sequence[str], optional): Tasks (and order) of the output;
            defaults to ``file_tasks`` or the file's named tasks.

    Returns:
        tuple: ``({image_id: tuple of bools in tasks order}, tasks)``.
    """
    obj = _load_trusted(src)
    if obj is None:  # .npy / .json: safe loaders suffice
        if tasks is None and src.lower().endswith('.json'):
            with open(src) as f:
                tasks = json.load(f)['tasks']
        if tasks is None:
            tasks = file_tasks or DEFAULT_FILE_TASKS[5]
        tasks = tuple(tasks)
        mapping = load_label_mapping(src, tasks, file_tasks=file_tasks)
    else:
        width = _width(obj)
        if file_tasks is None:
            if width not in DEFAULT_FILE_TASKS:
                raise ValueError(f'{src!r}: cannot guess the task order of '
                                 f'{width} columns; pass --file-tasks')
            file_tasks = DEFAULT_FILE_TASKS[width]
        tasks = tuple(tasks or file_tasks)
        mapping = parse_label_mapping(obj, tasks, file_tasks, source=src)
    dump_label_mapping(mapping, tasks, out)
    return mapping, tuple(tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='.pth / .npy / .json mapping file')
    parser.add_argument('--out', required=True, help='output JSON file')
    parser.add_argument(
        '--file-tasks',
        nargs='+',
        help='column order of .pth files without task names')
    parser.add_argument('--tasks', nargs='+', help='tasks of the output')
    parser.add_argument(
        '--stats', action='store_true', help='print per-task counts')
    args = parser.parse_args()
    mapping, tasks = convert_label_mapping(args.src, args.out,
                                           args.file_tasks, args.tasks)
    print(f'wrote {len(mapping)} images x {len(tasks)} tasks to {args.out}')
    if args.stats:
        stats = label_mapping_stats(mapping, tasks)
        for t, n in stats['per_task'].items():
            print(f'  {t:12s} {n}')
        print(f'  labels per image: {stats["labels_per_image"]}')


if __name__ == '__main__':
    main()
