# Copyright (c) diffmtl contributors. All rights reserved.
"""The paper-size PASCAL configs (133M / 157M parameters) take one real
training step: the config's own optimizer wrapper (Adam, grad clip 10) on a
tiny one-label batch, through ``train_step`` as the Runner calls it."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from diffmtl.registry import MODELS
from _mtl_model_utils import make_batch

pytestmark = pytest.mark.slow

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.parametrize('name', [
    'diffmtl/pascal_one_r18.py', 'diffmtl/pascal_one_r18_pred.py',
    'baselines/mtl_baseline_pascal_one_r18.py'
])
def test_paper_size_config_trains_one_step(name):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = Config.fromfile(osp.join(REPO, 'configs', name))
    init_default_scope('mmseg')
    model_cfg = cfg.model.copy()
    model_cfg.backbone.init_cfg = None  # no download in tests
    model_cfg.data_preprocessor.size = (64, 64)
    model = MODELS.build(model_cfg)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    tasks = model.tasks
    masks = [[i == j for j in range(len(tasks))] for i in (0, 3)]
    inputs, samples = make_batch(
        masks, tasks=tasks, size=(64, 64), num_classes=model_cfg.num_classes)
    data = dict(inputs=[(x * 50 + 120).clamp(0, 255) for x in inputs],
                data_samples=samples)
    before = {
        k: v.detach().clone()
        for k, v in model.named_parameters() if 'decoders.semseg' in k
    }
    model.train()
    log_vars = model.train_step(data, optim)
    assert torch.isfinite(log_vars['loss'])
    # one image labelled for semseg, one for normals
    assert set(log_vars) >= {'semseg.loss', 'normals.loss'}
    assert not any(k.startswith(('human_parts', 'sal', 'edge')) for k in log_vars)
    # the labelled tasks' branches were updated by Adam
    moved = [k for k, v in model.named_parameters()
             if k in before and not torch.equal(v, before[k])]
    assert moved
