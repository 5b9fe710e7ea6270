# Copyright (c) diffmtl contributors. All rights reserved.
"""Draw validation and test predictions, the same way on either stack.

MMSegmentation's ``SegVisualizationHook`` differs between the upstream
release (1.2.2: every sample of every ``interval``-th batch, step =
``runner.iter``) and the OneDL release (validation: only the first sample
of a batch; test: a running image count as the step), so the files that
``tools/test.py --show-dir`` writes would depend on the installed stack.
:class:`MultiTaskVisualizationHook` is diffmtl's one behaviour, and the
default of every diffmtl config.
"""
import os.path as osp
import warnings
from typing import Optional, Sequence

import mmcv
from mmengine import fileio
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmengine.visualization import Visualizer

from diffmtl.registry import HOOKS

__all__ = ['MultiTaskVisualizationHook']


@HOOKS.register_module()
class MultiTaskVisualizationHook(Hook):
    """Hand every sample of every ``interval``-th val/test batch to the
    current visualiser.

    For each drawn sample the visualiser's ``add_datasample`` gets the
    window name ``'<mode>_<image file name>'`` (mode ``val`` or ``test``),
    the RGB image read from ``img_path`` and ``step=runner.iter``, so a
    ``LocalVisBackend`` writes
    ``<save_dir>/vis_data/vis_image/<mode>_<name>_<iter>.png``. Batches are
    counted within each loop from 0 (batch 0 is drawn). Nothing happens
    unless ``draw`` is True (``tools/test.py --show/--show-dir`` sets it).

    Args:
        draw (bool): Draw at all. Defaults to False.
        interval (int): Draw every ``interval``-th batch. Defaults to 50.
        show (bool): Display each drawing in a window instead of saving it
            (the visualiser's storage backends are dropped). Defaults to
            False.
        wait_time (float): Seconds a displayed drawing stays up.
            Defaults to 0.
        backend_args (dict, optional): mmengine file-backend arguments to
            read the images with. Defaults to None.
    """

    priority = 'NORMAL'

    def __init__(self,
                 draw: bool = False,
                 interval: int = 50,
                 show: bool = False,
                 wait_time: float = 0.,
                 backend_args: Optional[dict] = None):
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'MultiTaskVisualizationHook: interval must be '
                             f'a positive int, got {interval!r}')
        self._visualizer: Visualizer = Visualizer.get_current_instance()
        self.draw = draw
        self.interval = interval
        self.show = show
        self.wait_time = wait_time
        self.backend_args = backend_args.copy() if backend_args else None
        if show:
            # displayed, not stored
            self._visualizer._vis_backends = {}
            warnings.warn('MultiTaskVisualizationHook: show=True displays '
                          'the drawings and stores none')

    def _draw(self, runner: Runner, batch_idx: int,
              outputs: Sequence, mode: str) -> None:
        if not self.draw or batch_idx % self.interval != 0:
            return
        for sample in outputs:
            img_path = sample.img_path
            img = mmcv.imfrombytes(
                fileio.get(img_path, backend_args=self.backend_args),
                channel_order='rgb')
            self._visualizer.add_datasample(
                f'{mode}_{osp.basename(img_path)}',
                img,
                data_sample=sample,
                show=self.show,
                wait_time=self.wait_time,
                step=runner.iter)

    def after_val_iter(self, runner: Runner, batch_idx: int,
                       data_batch: dict, outputs: Sequence) -> None:
        """Draw the samples of a validation batch (see class doc)."""
        self._draw(runner, batch_idx, outputs, 'val')

    def after_test_iter(self, runner: Runner, batch_idx: int,
                        data_batch: dict, outputs: Sequence) -> None:
        """Draw the samples of a test batch (see class doc)."""
        self._draw(runner, batch_idx, outputs, 'test')
