# Copyright (c) diffmtl contributors. All rights reserved.
"""Predict every task of a diffmtl model for an image or a folder of images.

Writes, for each image ``<stem>``::

    OUT_DIR/<stem>/<task>.png         coloured prediction of each task
    OUT_DIR/<stem>/panel.png          image + all tasks, with class legends
    OUT_DIR/<stem>/process_<task>.png with --process: initial | noisy |
    OUT_DIR/<stem>/process.png          step_1 .. | final per task / all tasks

Example::

    python tools/image_demo.py demo/ CFG CKPT --out-dir outputs/demo \
        --device cpu --process
"""
import argparse
import os
import os.path as osp
import sys

import mmcv
import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.structures import PixelData
from mmengine.utils import ProgressBar
from mmseg.structures import SegDataSample

# run from a checkout without installing the package
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from diffmtl.apis import (
    inference_denoising_process,  # noqa: E402
    inference_multitask,
    init_model)
from diffmtl.structures import get_task_spec  # noqa: E402
from diffmtl.visualization import (
    MultiTaskLocalVisualizer,  # noqa: E402
    draw_denoising_process,
    draw_process_panel,
    draw_task_tile)

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Run a diffmtl model on images and save its predictions')
    parser.add_argument('img', help='image file or folder of images')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out-dir',
                        required=True,
                        help='folder of the output pictures')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument(
        '--process',
        action='store_true',
        help='also draw the denoising process (initial, noisy, steps, '
        'final) of every task')
    parser.add_argument('--seed',
                        type=int,
                        default=0,
                        help='seed of the diffusion noise')
    parser.add_argument('--no-legend',
                        action='store_true',
                        help='omit class legends')
    parser.add_argument('--cfg-options',
                        nargs='+',
                        action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def list_images(path: str) -> list:
    """The image itself, or the images of a folder (sorted, recursive)."""
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path} is neither a file nor a folder')
    files = []
    for root, _, names in os.walk(path):
        files += [
            osp.join(root, n) for n in names
            if n.lower().endswith(IMG_EXTENSIONS)
        ]
    if not files:
        raise FileNotFoundError(f'no images ({", ".join(IMG_EXTENSIONS)}) '
                                f'under {path}')
    return sorted(files)


def _as_sample(maps: dict) -> SegDataSample:
    """Per-task maps (H, W) / (H, W, 3) -> SegDataSample with pred fields."""
    sample = SegDataSample(metainfo=dict(tasks=tuple(maps)))
    for task, arr in maps.items():
        data = arr.transpose(2, 0, 1) if arr.ndim == 3 else arr[None]
        sample.set_field(
            PixelData(data=torch.from_numpy(np.ascontiguousarray(data))),
            get_task_spec(task).pred_field)
    return sample


def run_demo(args) -> list:
    """Run the demo; returns the written file paths."""
    model = init_model(args.config, args.checkpoint, args.device,
                       args.cfg_options)
    meta = model.dataset_meta
    visualizer = MultiTaskLocalVisualizer(name=f'image_demo_{id(model)}')
    visualizer.dataset_meta = meta
    files = list_images(args.img)
    root = args.img if osp.isdir(args.img) else osp.dirname(args.img)
    written = []
    progress = ProgressBar(len(files))
    for path in files:
        rel = osp.splitext(osp.relpath(path, root))[0]
        out = osp.join(args.out_dir, rel)
        image = mmcv.imread(path, channel_order='rgb')
        maps = inference_multitask(model, path)
        for task, arr in maps.items():
            file = osp.join(out, f'{task}.png')
            mmcv.imwrite(mmcv.rgb2bgr(draw_task_tile(task, arr, meta)), file)
            written.append(file)
        panel = visualizer.draw_multitask(image,
                                          _as_sample(maps),
                                          draw_gt=False,
                                          with_labels=not args.no_legend)
        file = osp.join(out, 'panel.png')
        mmcv.imwrite(mmcv.rgb2bgr(panel), file)
        written.append(file)
        if args.process:
            process = inference_denoising_process(model, path, args.seed)
            for task, stages in process.items():
                strip = draw_denoising_process(task, stages, meta, image=image)
                file = osp.join(out, f'process_{task}.png')
                mmcv.imwrite(mmcv.rgb2bgr(strip), file)
                written.append(file)
            file = osp.join(out, 'process.png')
            mmcv.imwrite(
                mmcv.rgb2bgr(draw_process_panel(image, process, meta)), file)
            written.append(file)
        progress.update()
    print(f'\nwrote {len(written)} files to {args.out_dir}')
    return written


def main(argv=None):
    return run_demo(parse_args(argv))


if __name__ == '__main__':
    main()
