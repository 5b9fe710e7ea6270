# Copyright (c) diffmtl contributors. All rights reserved.
"""Every model / baseline config parses and its model builds."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from diffmtl.registry import MODELS
from _mtl_model_utils import make_batch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', 'diffmtl', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'baselines', '*.py'))
    # the synthetic-scene configs are iteration-based CPU configs, tested
    # in tests/test_datasets and tests/test_integration
    if 'synthetic' not in osp.basename(p))


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_parses_and_builds(path):
    cfg = Config.fromfile(path)
    name = osp.basename(path)
    setting = 'random' if '_random_' in name else 'one'
    assert cfg.train_dataloader.dataset.label_setting == setting
    assert cfg.train_dataloader.sampler.type == 'DefaultSampler'
    assert cfg.train_cfg.type == 'EpochBasedTrainLoop'
    assert cfg.optim_wrapper.clip_grad.max_norm == 10
    assert cfg.model_wrapper_cfg.find_unused_parameters
    ds_tasks = tuple(cfg.train_dataloader.dataset.tasks)
    assert set(cfg.model.tasks) <= set(ds_tasks)
    crop = tuple(cfg.model.data_preprocessor.size)
    assert crop == tuple(cfg.crop_size)
    model_cfg = cfg.model.copy()
    model_cfg.backbone.init_cfg = None
    if 'mit' in name:  # builds on CPU only; trained (shrunk) below
        assert model_cfg.backbone.type == 'MixVisionTransformer'
        assert model_cfg.neck.in_channels == [32, 64, 160, 256]
        return
    init_default_scope('mmseg')  # the data preprocessor lives in mmseg
    with torch.device('meta'):
        model = MODELS.build(model_cfg)
    assert model.tasks == tuple(cfg.model.tasks)


def test_other_backbone_trains():
    """The MiT-B0 base config (SegFormer backbone) trains, shrunk."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'models',
                 'diffmtl_mit-b0.py')).model
    cfg.pop('data_preprocessor')
    tasks = ('semseg', 'sal')
    cfg.update(
        tasks=tasks,
        num_classes=dict(semseg=5),
        channels=16,
        decoder=dict(type='ResidualTaskDecoder', num_blocks=1,
                     norm_cfg=dict(type='BN')),
        denoiser=dict(num_blocks=1, num_heads=2, head_convs=1,
                      step_freq_dim=8, token_scale=0.5))
    cfg.backbone.update(embed_dims=8, num_heads=[1, 2, 4, 8],
                        num_layers=[1, 1, 1, 1])
    cfg.neck.update(in_channels=[8, 16, 32, 64], out_channels=16)
    model = MODELS.build(cfg)
    inputs, samples = make_batch([(1, 0), (0, 1)], tasks=tasks,
                                 size=(32, 32))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)

    def loss():
        torch.manual_seed(0)
        return sum(model.loss(inputs, samples).values())

    first = loss()
    for _ in range(5):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    assert loss().item() < first.item()


@pytest.mark.parametrize(
    'cfg_file',
    sorted(glob.glob(osp.join(REPO, 'configs', 'diffmtl', '*.py'))),
    ids=osp.basename)
def test_experiment_configs_seed_the_inference_noise(cfg_file):
    """Every DiffusionMTL experiment config evaluates with seeded,
    per-image noise, so its metrics are a function of the checkpoint."""
    cfg = Config.fromfile(cfg_file)
    assert cfg.model.inference_seed == 0
    assert cfg.model.inference_noise is True  # the official inference
