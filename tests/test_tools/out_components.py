# Copyright (c) diffmtl contributors. All rights reserved.
"""A tiny multi-task folder dataset, config and checkpoint for the
``tools/test.py --out`` and non-finite-weight tests, and two test hooks.

Imported by the written configs (``custom_imports``) with this directory
on ``PYTHONPATH`` (``tool_runner.tool_env`` puts it there).
"""
import json
import os
import os.path as osp
import time

import numpy as np
import torch
from mmengine.hooks import Hook
from PIL import Image

from diffmtl.registry import HOOKS

TASKS = ('semseg', 'depth', 'normals')
SIZE = 32


@HOOKS.register_module()
class SlowTestHook(Hook):
    """Sleep after every test iteration (a long test run to interrupt)."""

    def __init__(self, seconds: float = 0.5) -> None:
        self.seconds = seconds

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None) -> None:
        time.sleep(self.seconds)


@HOOKS.register_module()
class PoisonWeightsHook(Hook):
    """Write NaN into the first parameter after training iteration ``at``
    (weights that diverged without a non-finite loss)."""

    def __init__(self, at: int = 1) -> None:
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if runner.iter + 1 == self.at:
            model = runner.model.module if hasattr(
                runner.model, 'module') else runner.model
            with torch.no_grad():
                next(model.parameters()).view(-1)[0] = float('nan')


def write_folder(root: str, num: int = 6) -> str:
    """A folder dataset with semseg (2 classes), 16-bit depth and RGB
    normals PNGs; every image is in ``splits/test.txt``."""
    os.makedirs(osp.join(root, 'splits'), exist_ok=True)
    ids = [f'{i:03d}' for i in range(num)]
    with open(osp.join(root, 'meta.json'), 'w') as f:
        json.dump(dict(tasks=list(TASKS),
                       task_classes=dict(semseg=['bg', 'fg']),
                       depth_scale=1000), f)
    for split in ('train', 'test'):
        with open(osp.join(root, 'splits', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(ids) + '\n')
    rng = np.random.default_rng(0)
    for name in ('images', ) + TASKS:
        os.makedirs(osp.join(root, name), exist_ok=True)
    for i in ids:
        img = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        Image.fromarray(img).save(osp.join(root, 'images', i + '.png'))
        Image.fromarray((img[..., 0] > 127).astype(np.uint8)).save(
            osp.join(root, 'semseg', i + '.png'))
        depth = (1000 + 4 * img[..., 1].astype(np.uint16))
        Image.fromarray(depth).save(osp.join(root, 'depth', i + '.png'))
        normal = rng.normal(size=(SIZE, SIZE, 3))
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
        rgb = np.round((normal + 1) * 127.5).astype(np.uint8)
        Image.fromarray(rgb).save(osp.join(root, 'normals', i + '.png'))
    return root


def config_text(root: str, extra: str = '') -> str:
    """A tools/test.py config of a tiny MultiTaskBaseline on ``root``."""
    width = 8
    return f"""default_scope = 'mmseg'
custom_imports = dict(imports=['diffmtl', 'out_components'],
                      allow_failed_imports=False)
model = dict(
    type='MultiTaskBaseline', tasks={TASKS!r}, num_classes=dict(semseg=2),
    data_preprocessor=dict(
        type='MultiTaskDataPreProcessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, size_divisor=32),
    backbone=dict(
        type='ResNet', depth=18, stem_channels={width},
        base_channels={width}, num_stages=4, out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='BN', requires_grad=True)),
    neck=dict(type='StageFusionNeck',
              in_channels=[{width}, {2 * width}, {4 * width}, {8 * width}],
              out_channels=16),
    channels=16, decoder=dict(num_blocks=1))
test_dataloader = dict(
    batch_size=1, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='FolderMultiTaskDataset', data_root={root!r}, split='test',
        test_mode=True,
        pipeline=[dict(type='LoadMultiTaskImageFromFile'),
                  dict(type='LoadMultiTaskAnnotations'),
                  dict(type='PackMultiTaskInputs')]))
test_cfg = dict(type='TestLoop')
test_evaluator = dict(type='MultiTaskMetric')
default_hooks = dict(logger=dict(type='LoggerHook', interval=1))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
{extra}
"""


def write_checkpoint(cfg_path: str, path: str, nan_param: str = None) -> str:
    """Save the initial weights of the config's model (with
    ``nan_param`` set to NaN) as a checkpoint."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import diffmtl  # noqa: F401
    from diffmtl.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile(cfg_path, import_custom_modules=False)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    state = model.state_dict()
    if nan_param is not None:
        state[nan_param] = state[nan_param].clone()
        state[nan_param].view(-1)[:3] = float('nan')
    torch.save(dict(meta=dict(iter=1), state_dict=state), path)
    return path
