# Copyright (c) diffmtl contributors. All rights reserved.
"""End to end through mmengine's Runner: one training iteration of a tiny
DiffusionMTL on generated synthetic scenes, then validation with
MultiTaskVisualizationHook (the ``tools/test.py --show-dir`` path) drawing with
MultiTaskLocalVisualizer and DenoisingProcessHook saving the process."""
import glob
import os.path as osp

import mmcv
import pytest
import torch
from mmengine.config import Config

from diffmtl.datasets import synthetic

pytestmark = pytest.mark.slow

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CFG = osp.join(REPO, 'configs', 'diffmtl', 'synthetic_one_r18_pred.py')


def test_runner_val_draws_grid_and_denoising_process(tmp_path):
    from mmengine.runner import Runner
    torch.set_num_threads(1)
    data_root = str(tmp_path / 'data')
    synthetic.generate_synthetic_scenes(data_root,
                                        num_train=2,
                                        num_val=2,
                                        num_test=0,
                                        seed=0,
                                        workers=1)
    cfg = Config.fromfile(CFG)
    width, channels = 8, 16
    cfg.merge_from_dict(
        dict(work_dir=str(tmp_path / 'work'),
             model=dict(backbone=dict(stem_channels=width,
                                      base_channels=width),
                        neck=dict(in_channels=[
                            width, width * 2, width * 4, width * 8
                        ],
                                  out_channels=channels),
                        channels=channels,
                        decoder=dict(num_blocks=1),
                        denoiser=dict(num_blocks=1,
                                      num_heads=1,
                                      step_freq_dim=16)),
             train_dataloader=dict(batch_size=2,
                                   num_workers=0,
                                   persistent_workers=False,
                                   dataset=dict(data_root=data_root)),
             val_dataloader=dict(batch_size=1,
                                 num_workers=0,
                                 persistent_workers=False,
                                 dataset=dict(data_root=data_root)),
             train_cfg=dict(max_iters=1, val_interval=1),
             param_scheduler=[],
             default_hooks=dict(logger=dict(interval=1),
                                checkpoint=dict(interval=100),
                                visualization=dict(
                                                   type='MultiTaskVisualizationHook',
                                                   draw=True,
                                                   interval=1)),
             visualizer=dict(save_dir=str(tmp_path / 'show')),
             custom_hooks=[
                 dict(type='DenoisingProcessHook',
                      image_indices=(1, ),
                      interval=1)
             ]))
    cfg.test_dataloader = cfg.val_dataloader
    runner = Runner.from_cfg(cfg)
    runner.train()

    from diffmtl.visualization import MultiTaskLocalVisualizer
    assert isinstance(runner.visualizer, MultiTaskLocalVisualizer)
    shown = sorted(
        glob.glob(
            str(tmp_path / 'show' / 'vis_data' / 'vis_image' /
                'val_*.png_1.png')))
    assert len(shown) == 2  # val_<image>.png_<iter>.png
    grid = mmcv.imread(shown[0])
    tasks = runner.val_dataloader.dataset.metainfo['tasks']
    # image + one column per task, GT and prediction rows (+ legends)
    assert grid.shape[1] >= (len(tasks) + 1) * 128
    assert grid.shape[0] >= 2 * 96

    val_id = runner.val_dataloader.dataset[1]['data_samples'].img_id
    out = osp.join(cfg.work_dir, 'denoising_process', 'val_iter_1')
    for task in tasks:
        assert osp.exists(osp.join(out, f'{val_id}_{task}.png')), task
    assert osp.exists(osp.join(out, f'{val_id}.png'))
    # the panel also went to the visualiser's backend
    assert osp.exists(tmp_path / 'show' / 'vis_data' / 'vis_image' /
                      f'val_denoising_{val_id}_1.png')
    mmcv.imwrite(grid, str(tmp_path / 'grid_copy.png'))
