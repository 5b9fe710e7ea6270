# Copyright (c) diffmtl contributors. All rights reserved.
"""A few training iterations on real synthetic scenes lower the loss, for
both diffusion modes, the ablations and the baselines.

The batch comes from the ``make demo`` config's own dataset and pipeline
(one-label setting, so every image supervises a single task) through the
``MultiTaskDataPreProcessor``; models are narrow versions of the configured
ones.
"""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from diffmtl.datasets.synthetic import generate_synthetic_scenes
from diffmtl.registry import DATASETS, MODELS

REPO = Path(__file__).resolve().parents[2]
CFG = REPO / 'configs' / 'diffmtl' / 'synthetic_one_r18.py'
WIDTH = 16


@pytest.fixture(scope='module')
def cfg(tmp_path_factory):
    root = tmp_path_factory.mktemp('scenes') / 'synthetic_scenes'
    generate_synthetic_scenes(
        str(root), num_train=8, num_val=2, num_test=0, seed=5, workers=1)
    cfg = Config.fromfile(str(CFG))
    cfg.train_dataloader.dataset.data_root = str(root)
    init_default_scope('mmseg')
    return cfg


@pytest.fixture(scope='module')
def batch(cfg):
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    torch.manual_seed(0)
    return pseudo_collate([dataset[i] for i in range(8)])


def _narrow(model_cfg):
    model_cfg.backbone.update(stem_channels=WIDTH, base_channels=WIDTH)
    model_cfg.neck.update(
        in_channels=[WIDTH, WIDTH * 2, WIDTH * 4, WIDTH * 8],
        out_channels=32)
    model_cfg.channels = 32
    return model_cfg


def _variants(cfg):
    base = _narrow(copy.deepcopy(cfg.model))
    feature = copy.deepcopy(base)
    prediction = copy.deepcopy(base)
    prediction.mode = 'prediction'
    wo_diffusion = copy.deepcopy(prediction)
    wo_diffusion.use_diffusion = False
    wo_mt_cond = copy.deepcopy(prediction)
    wo_mt_cond.multi_task_condition = False
    keep = ('data_preprocessor', 'tasks', 'num_classes', 'backbone', 'neck',
            'channels', 'loss_weights')
    mtl = Config(
        dict(type='MultiTaskBaseline',
             decoder=dict(type='ResidualTaskDecoder', num_blocks=2,
                          norm_cfg=copy.deepcopy(base.decoder.norm_cfg)),
             **{k: copy.deepcopy(base[k])
                for k in keep}))
    single = copy.deepcopy(mtl)
    single.tasks = ('normals', )
    single.loss_weights = dict(normals=1.0)
    single.num_classes = None
    return dict(
        feature=feature,
        prediction=prediction,
        wo_diffusion=wo_diffusion,
        wo_mt_cond=wo_mt_cond,
        mtl_baseline=mtl,
        single_task=single)


@pytest.mark.parametrize('name', [
    'feature', 'prediction', 'wo_diffusion', 'wo_mt_cond', 'mtl_baseline',
    'single_task'
])
@pytest.mark.slow
def test_training_on_synthetic_scenes_lowers_the_loss(cfg, batch, name):
    torch.manual_seed(0)
    model = MODELS.build(_variants(cfg)[name])
    data = model.data_preprocessor(copy.deepcopy(batch), training=True)
    inputs, samples = data['inputs'], data['data_samples']
    # one-label batch: every image carries exactly one labelled task
    assert all(sum(s.metainfo['task_mask']) == 1 for s in samples)
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def total_loss():
        torch.manual_seed(1)  # the same diffusion noise at every step
        losses = model.loss(inputs, samples)
        assert losses, f'{name}: no loss terms'
        return sum(losses.values())

    first = total_loss()
    for _ in range(8):
        optim.zero_grad()
        loss = total_loss()
        loss.backward()
        optim.step()
    last = total_loss()
    assert torch.isfinite(first) and torch.isfinite(last)
    assert last.item() < 0.8 * first.item(), (name, first.item(),
                                               last.item())


def test_mtl_baseline_benchmark_config_matches_the_demo():
    """The CPU benchmark's baseline differs from the demo model only in the
    decoder: same data, backbone, fusion, tasks, weights and schedule."""
    demo = Config.fromfile(str(CFG))
    base = Config.fromfile(
        str(REPO / 'configs' / 'baselines' /
            'mtl_baseline_synthetic_one_r18.py'))
    assert base.model.type == 'MultiTaskBaseline'
    for key in ('tasks', 'num_classes', 'loss_weights', 'channels'):
        assert base.model[key] == demo.model[key], key
    for key in ('stem_channels', 'base_channels', 'depth', 'norm_cfg'):
        assert base.model.backbone[key] == demo.model.backbone[key], key
    assert base.model.neck == demo.model.neck
    assert base.model.data_preprocessor == demo.model.data_preprocessor
    for key in ('train_dataloader', 'val_dataloader', 'val_evaluator',
                'optim_wrapper', 'param_scheduler', 'train_cfg',
                'randomness'):
        assert base[key] == demo[key], key
    init_default_scope('mmseg')
    with torch.device('meta'):
        model = MODELS.build(base.model)
    assert model.tasks == tuple(demo.model.tasks)
    assert all(len(model.decoders[t].blocks) == 6 for t in model.tasks)
