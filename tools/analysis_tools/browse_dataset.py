# Copyright (c) diffmtl contributors. All rights reserved.
"""Draw a dataset's samples after its pipeline, one picture per sample.

Examples:
    python tools/analysis_tools/browse_dataset.py CFG --output-dir vis/
    python tools/analysis_tools/browse_dataset.py CFG --output-dir vis/ \\
        --phase val --max 50

Each picture is a row of tiles: the (augmented) image, then every task's
ground truth in dataset order, as the model receives it (after cropping,
flipping, padding, ...). Segmentation tasks use the dataset's
``task_palettes``; saliency and boundaries are grey ramps; normals are shown
as RGB ``(n + 1) / 2``; depth is colour-mapped over its valid range. Pixels
without a label (ignore index, zero normals, zero depth, padding) are drawn
in ``diffmtl.visualization.IGNORE_COLOR``, and a task that is not labelled
for the image is a hatched grey tile captioned ``unlabelled``. Tiles come
from :func:`diffmtl.visualization.draw_task_tile`.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Optional, Sequence

import numpy as np
from mmengine.config import Config, DictAction

# Run from an uninstalled checkout too: put the repository root on the path.
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def parse_args(argv: Optional[Sequence[str]] = None):
    parser = argparse.ArgumentParser(
        description='Draw samples of a multi-task dataset after its pipeline')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--output-dir',
                        required=True,
                        help='directory of the pictures')
    parser.add_argument(
        '--phase',
        default='train',
        choices=['train', 'val', 'test'],
        help='which dataloader\'s dataset (and pipeline) to browse')
    parser.add_argument('--max',
                        type=int,
                        default=20,
                        help='number of samples to draw (<= 0: all)')
    parser.add_argument(
        '--channel-order',
        default='bgr',
        choices=['bgr', 'rgb'],
        help='channel order of the pipeline\'s image (diffmtl\'s loader and '
        'mmcv give BGR)')
    parser.add_argument('--cfg-options',
                        nargs='+',
                        action=DictAction,
                        help='override config settings, as in tools/train.py')
    return parser.parse_args(argv)


def image_to_rgb_uint8(inputs, channel_order: str = 'bgr') -> np.ndarray:
    """(C, H, W) image tensor/array from the pipeline -> RGB uint8 (H, W, 3).

    ``uint8`` images are shown as they are; float images in [0, 1] are
    scaled by 255, other float images are min-max stretched.
    """
    if hasattr(inputs, 'detach'):
        inputs = inputs.detach().cpu().numpy()
    img = np.asarray(inputs)
    if img.ndim == 3:
        img = img.transpose(1, 2, 0)
    else:
        img = img[..., None]
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    img = img[..., :3]
    if img.dtype != np.uint8:
        img = img.astype(np.float64)
        lo, hi = float(img.min()), float(img.max())
        if lo >= 0 and hi <= 1:
            img = img * 255
        elif hi > 255 or lo < 0:
            img = (img - lo) / max(hi - lo, 1e-12) * 255
        img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    if channel_order == 'bgr':
        img = img[..., ::-1]
    return np.ascontiguousarray(img)


def render_sample(inputs,
                  data_sample,
                  meta: Optional[dict] = None,
                  channel_order: str = 'bgr',
                  gap: int = 4) -> np.ndarray:
    """One RGB picture: the image then one captioned tile per task.

    Args:
        inputs (Tensor): (C, H, W) image as packed by
            ``PackMultiTaskInputs``.
        data_sample (SegDataSample): The packed sample (``tasks``,
            ``task_mask`` and one GT field per task).
        meta (dict, optional): Dataset metainfo (palettes, classes).
        channel_order (str): Order of the image channels.
        gap (int): White pixels between tiles.

    Returns:
        np.ndarray: (H + caption, W * (1 + T) + gaps, 3) uint8 RGB.
    """
    from diffmtl.structures import get_task_spec
    from diffmtl.visualization import (draw_caption, draw_task_tile,
                                       draw_unlabelled_tile)

    img = image_to_rgb_uint8(inputs, channel_order)
    h, w = img.shape[:2]
    tiles = [draw_caption(img, 'image')]
    tasks = data_sample.metainfo.get('tasks', ())
    mask = data_sample.metainfo.get('task_mask', (True, ) * len(tasks))
    for task, labelled in zip(tasks, mask):
        spec = get_task_spec(task)
        gt = data_sample.get(spec.gt_field)
        if not labelled or gt is None:
            tile, caption = draw_unlabelled_tile(h, w), f'{task} (unlabelled)'
        else:
            tile, caption = draw_task_tile(task, gt.data, meta), task
        tiles.append(draw_caption(tile, caption))
    height = max(t.shape[0] for t in tiles)
    row = []
    for i, tile in enumerate(tiles):
        if tile.shape[0] < height:
            pad = np.full((height - tile.shape[0], ) + tile.shape[1:], 255,
                          np.uint8)
            tile = np.concatenate([tile, pad], axis=0)
        if i:
            row.append(np.full((height, gap, 3), 255, np.uint8))
        row.append(tile)
    return np.concatenate(row, axis=1)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    import mmcv
    from mmengine.registry import init_default_scope

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import diffmtl  # noqa: F401  (registers everything, even without
    #                             custom_imports in the config)
    from diffmtl.registry import DATASETS

    loader_key = f'{args.phase}_dataloader'
    if cfg.get(loader_key) is None:
        raise KeyError(f'{args.config} has no {loader_key}')
    dataset = DATASETS.build(cfg[loader_key]['dataset'])
    meta = dict(dataset.metainfo)
    total = len(dataset) if args.max <= 0 else min(args.max, len(dataset))
    os.makedirs(args.output_dir, exist_ok=True)
    for idx in range(total):
        item = dataset[idx]
        sample = item['data_samples']
        img_id = sample.metainfo.get('img_id') or osp.splitext(
            osp.basename(sample.metainfo.get('img_path', str(idx))))[0]
        picture = render_sample(item['inputs'], sample, meta,
                                args.channel_order)
        out = osp.join(args.output_dir, f'{idx:05d}_{img_id}.png')
        mmcv.imwrite(picture[..., ::-1], out)
    print(f'wrote {total} pictures to {args.output_dir}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
