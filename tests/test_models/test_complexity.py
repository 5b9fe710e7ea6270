# Copyright (c) diffmtl contributors. All rights reserved.
"""Parameter and MAC counts against the paper's and the reference code's
numbers (table in docs/en/models.md, Complexity)."""
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from tool_runner import load_tool

from diffmtl.models.diffusion import CrossAttentionBlock, MultiTaskDenoiser
from diffmtl.models.utils import count_macs, count_parameters
from diffmtl.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODEL_CFGS = osp.join(REPO, 'configs', '_base_', 'models')


def build_meta(cfg_file, **overrides):
    cfg = Config.fromfile(osp.join(MODEL_CFGS, cfg_file)).model
    cfg.pop('data_preprocessor')
    cfg.backbone.init_cfg = None
    cfg.update(overrides)
    with torch.device('meta'):
        return MODELS.build(cfg)


def macs_at(model, h, w):
    x = torch.empty(1, 3, h, w, device='meta')
    return count_macs(model, x, forward=model._forward)[0]


NYUD = dict(tasks=('semseg', 'depth', 'normals'), num_classes=dict(semseg=13))
CITY = dict(tasks=('semseg', 'depth'), num_classes=dict(semseg=7))


@pytest.mark.parametrize('cfg_file,overrides,params', [
    ('diffmtl_r18.py', {}, 132_913_284),
    ('diffmtl_r18_pred.py', {}, 133_072_516),
    ('mtl_baseline_r18.py', {}, 157_237_346),
    ('diffmtl_r18.py', NYUD, 94_531_170),
    ('diffmtl_r18.py', CITY, 75_337_296),
])
def test_parameter_counts(cfg_file, overrides, params):
    assert count_parameters(build_meta(cfg_file, **overrides)) == params


def test_single_task_baselines_total():
    total = sum(
        count_parameters(
            build_meta('mtl_baseline_r18.py', tasks=(t, )))
        for t in ('semseg', 'human_parts', 'sal', 'normals', 'edge'))
    assert total == pytest.approx(219.6e6, rel=1e-3)  # paper: 219M


@pytest.mark.parametrize('cfg_file,overrides,shape,gmacs', [
    ('diffmtl_r18.py', {}, (512, 512), 675.3),
    ('diffmtl_r18_pred.py', {}, (512, 512), 628.3),
    ('mtl_baseline_r18.py', {}, (512, 512), 607.5),
    ('diffmtl_r18.py', NYUD, (288, 384), 175.2),
    ('diffmtl_r18.py', CITY, (128, 256), 35.7),
    ('diffmtl_r18_pred.py', NYUD, (288, 384), 163.2),
])
def test_macs_within_one_percent(cfg_file, overrides, shape, gmacs):
    macs = macs_at(build_meta(cfg_file, **overrides), *shape)
    assert macs / 1e9 == pytest.approx(gmacs, rel=0.01)


def test_counter_rules_analytically():
    conv = nn.Conv2d(4, 6, 3, padding=1, groups=2)
    macs, _ = count_macs(conv, torch.zeros(1, 4, 5, 7))
    assert macs == 6 * 5 * 7 * (4 // 2) * 9
    lin = nn.Linear(8, 3)
    assert count_macs(lin, torch.zeros(2, 5, 8))[0] == 2 * 5 * 3 * 8

    blk = CrossAttentionBlock(dim=8, num_heads=2, mlp_ratio=2)
    q, kv = torch.zeros(1, 3, 8), torch.zeros(1, 5, 8)
    macs, _ = count_macs(blk, q, forward=lambda x: blk(x, kv))
    n_q, n_k, c, hid = 3, 5, 8, 16
    expected = (n_q * c * c            # q projection
                + n_k * 2 * c * c      # k/v projection
                + 2 * n_q * n_k * c    # q k^T and attn v
                + n_q * c * c          # output projection
                + 2 * n_q * c * hid    # query MLP
                + 2 * n_k * c * hid)   # key/value MLP
    assert macs == expected


def test_denoiser_macs_small_shape():
    den = MultiTaskDenoiser(('sal', ), in_channels=dict(sal=2), channels=8,
                            out_channels=dict(sal=2), num_blocks=1,
                            num_heads=2, token_scale=0.5, head_convs=1,
                            step_freq_dim=4)
    x = torch.zeros(1, 2, 4, 6)
    cond = torch.zeros(1, 8, 4, 6)
    macs, _ = count_macs(
        den, x, forward=lambda v: den('sal', v, torch.tensor([1]), cond))
    hw, c, lt = 24, 8, 6  # 4x6 map, 2x3 tokens
    expected = (hw * c * 2 * 9                 # pre-layer 3x3 (2 -> 8)
                + 4 * c + c * c                # step MLP
                + lt * c * c + lt * 2 * c * c  # q, kv projections
                + 2 * lt * lt * c + lt * c * c  # matmuls, out projection
                + 2 * (2 * lt * c * 4 * c)     # two MLPs
                + hw * c * c                   # head 1x1
                + hw * c * c * 9               # head 3x3
                + hw * 2 * c)                  # head 1x1 -> 2
    assert macs == expected


def test_get_flops_tool(capsys):
    tool = load_tool('tools/analysis_tools/get_flops.py')
    params, macs = tool.main([
        osp.join(REPO, 'configs', 'diffmtl', 'pascal_one_r18_pred.py'),
        '--shape', '512', '512', '--by-module'
    ])
    assert params == 133_072_516
    assert macs / 1e9 == pytest.approx(628.3, rel=0.01)
    out = capsys.readouterr().out
    assert 'Params: 133.07 M' in out and 'MACs: 628.3 G' in out
    assert 'conditioner' in out
