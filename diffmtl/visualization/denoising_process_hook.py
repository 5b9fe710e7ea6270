# Copyright (c) diffmtl contributors. All rights reserved.
"""Hook that pictures the denoising process of fixed validation images."""
import os.path as osp
from typing import Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.logging import print_log

from diffmtl.apis.denoising import run_denoising_process
from diffmtl.registry import HOOKS
from diffmtl.structures import get_task_spec
from .denoising_process import draw_denoising_process, draw_process_panel

__all__ = ['DenoisingProcessHook']


@HOOKS.register_module()
class DenoisingProcessHook(Hook):
    """Save the denoising process of a few fixed images after validation.

    For every image of ``image_indices`` in the validation (and optionally
    test) dataset and every task, the hook draws ``image | initial | noisy |
    step_1 .. | final | GT`` (the paper's Figures 5 and 9; an unlabelled
    task's GT tile is hatched) with the model's
    ``denoising_process(inputs)``. The noise is drawn from a fixed ``seed``
    so that successive pictures differ only because the model changed.

    Files: ``<work_dir>/<out_dir>/<mode>_iter_<iter>/<img_id>_<task>.png``
    (one strip per task) and ``<img_id>.png`` (all tasks). The full panel is
    also sent to the runner's visualiser backends (``LocalVisBackend``,
    ``TensorboardVisBackend``, ...) as ``<mode>_denoising_<img_id>`` with
    the current iteration as step.

    Example:
        >>> custom_hooks = [
        ...     dict(type='DenoisingProcessHook', image_indices=(0, 1),
        ...          interval=1)]

    Args:
        image_indices (sequence of int): Dataset indices of the images.
            Out-of-range indices are skipped with a warning.
        interval (int): Draw after every ``interval``-th validation run.
        out_dir (str): Sub-directory of the work dir. Defaults to
            'denoising_process'.
        seed (int, optional): Seed of the diffusion noise; None leaves the
            global RNG running.
        tasks (sequence of str, optional): Tasks to draw (default: all the
            model returns).
        draw_on (sequence of str): Loops after which to draw, among 'val'
            and 'test'. Defaults to ('val', ).
        image_channel_order (str): Channel order of the packed ``inputs``
            ('bgr' as ``LoadImageFromFile`` gives, or 'rgb').
        enabled (bool): Switch the hook off without removing it.
    """

    priority = 'LOW'

    def __init__(self,
                 image_indices: Sequence[int] = (0, 1),
                 interval: int = 1,
                 out_dir: str = 'denoising_process',
                 seed: Optional[int] = 0,
                 tasks: Optional[Sequence[str]] = None,
                 draw_on: Sequence[str] = ('val', ),
                 image_channel_order: str = 'bgr',
                 enabled: bool = True) -> None:
        if interval < 1:
            raise ValueError(f'DenoisingProcessHook: interval must be >= 1, '
                             f'got {interval}')
        bad = set(draw_on) - {'val', 'test'}
        if bad:
            raise ValueError(f'DenoisingProcessHook: draw_on accepts "val" '
                             f'and "test", got {sorted(bad)}')
        if image_channel_order not in ('bgr', 'rgb'):
            raise ValueError('DenoisingProcessHook: image_channel_order must '
                             f'be "bgr" or "rgb", got {image_channel_order!r}')
        self.image_indices = tuple(int(i) for i in image_indices)
        self.interval = int(interval)
        self.out_dir = out_dir
        self.seed = seed
        self.tasks = tuple(tasks) if tasks is not None else None
        self.draw_on = tuple(draw_on)
        self.image_channel_order = image_channel_order
        self.enabled = enabled
        self._val_count = 0
        #: Paths written by the last drawing (for logs and tests).
        self.last_files = []

    def after_val_epoch(self, runner, metrics=None) -> None:
        """Draw after every ``interval``-th validation epoch."""
        self._val_count += 1
        if 'val' in self.draw_on and self._val_count % self.interval == 0:
            self._draw(runner, runner.val_loop.dataloader.dataset, 'val')

    def after_test_epoch(self, runner, metrics=None) -> None:
        """Draw after testing when ``'test'`` is in ``draw_on``."""
        if 'test' in self.draw_on:
            self._draw(runner, runner.test_loop.dataloader.dataset, 'test')

    @staticmethod
    def _current_iter(runner) -> int:
        """``runner.iter`` without building a train loop that a test run
        does not have (reading ``runner.iter`` would build it, and its
        dataset)."""
        loop = getattr(runner, '_train_loop', None)
        if isinstance(loop, dict) or (loop is None
                                      and hasattr(runner, '_train_loop')):
            return 0
        return runner.iter

    def _image_id(self, sample, index: int) -> str:
        meta = sample.metainfo
        if meta.get('img_id') is not None:
            return str(meta['img_id'])
        if meta.get('img_path'):
            return osp.splitext(osp.basename(meta['img_path']))[0]
        return f'index{index}'

    @master_only
    def _draw(self, runner, dataset, mode: str) -> None:
        if not self.enabled:
            return
        model = runner.model
        inner = getattr(model, 'module', model)
        if not hasattr(inner, 'denoising_process'):
            print_log(
                f'DenoisingProcessHook: {type(inner).__name__} has no '
                'denoising_process(); the hook is switched off.',
                logger='current',
                level=30)
            self.enabled = False
            return
        meta = getattr(dataset, 'metainfo', None) or {}
        step = self._current_iter(runner)
        out_dir = osp.join(runner.work_dir, self.out_dir,
                           f'{mode}_iter_{step}')
        self.last_files = []
        for index in self.image_indices:
            if not -len(dataset) <= index < len(dataset):
                print_log(
                    f'DenoisingProcessHook: image index {index} is out of '
                    f'range for a {mode} set of {len(dataset)} images; '
                    'skipped.',
                    logger='current',
                    level=30)
                continue
            item = dataset[index]
            data = dict(inputs=[item['inputs']],
                        data_samples=[item['data_samples']])
            result = run_denoising_process(model, data, self.seed,
                                           self.tasks)[0]
            sample = result.pop('data_sample')
            image = self._display_image(item['inputs'], result.pop('window'))
            gts, mask = self._ground_truth(sample, result)
            img_id = self._image_id(sample, index)
            for task, stages in result.items():
                strip = draw_denoising_process(task, stages, meta,
                                               gts.get(task), mask[task],
                                               image)
                path = osp.join(out_dir, f'{img_id}_{task}.png')
                mmcv.imwrite(mmcv.rgb2bgr(strip), path)
                self.last_files.append(path)
            panel = draw_process_panel(image, result, meta, gts, mask)
            path = osp.join(out_dir, f'{img_id}.png')
            mmcv.imwrite(mmcv.rgb2bgr(panel), path)
            self.last_files.append(path)
            runner.visualizer.add_image(f'{mode}_denoising_{img_id}', panel,
                                        step)

    def _display_image(self, inputs, window) -> np.ndarray:
        """(3, H, W) packed input -> (h, w, 3) RGB ``uint8`` (unpadded).

        The data preprocessor pads at the bottom/right only, so the image's
        window in the padded input is also its window in ``inputs``.
        """
        img = inputs.detach().cpu().numpy().transpose(1, 2, 0)
        top, bottom, left, right = window
        img = img[top:bottom, left:right]
        if self.image_channel_order == 'bgr':
            img = img[..., ::-1]
        return np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))

    @staticmethod
    def _ground_truth(sample, result) -> Tuple[dict, dict]:
        meta = sample.metainfo
        names = meta.get('tasks', tuple(result))
        flags = meta.get('task_mask', (True, ) * len(names))
        labelled = dict(zip(names, map(bool, flags)))
        gts, mask = {}, {}
        for task in result:
            spec = get_task_spec(task)
            mask[task] = labelled.get(task, False)
            if spec.gt_field in sample:
                # test-mode GT is unpadded (the preprocessor pads only the
                # image and crops pipeline padding off the GT)
                gts[task] = sample.get(spec.gt_field).data
        return gts, mask
