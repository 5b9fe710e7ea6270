# Copyright (c) diffmtl contributors. All rights reserved.
"""diffmtl.utils.cpu_norms: SyncBN configs become BN for CPU-only
multi-process jobs, with one warning."""
import logging

import pytest
import torch.nn as nn
from mmengine.config import Config

import diffmtl.utils.cpu_norms as cpu_norms
from diffmtl.utils import setup_launcher, sync_norms_to_bn
from tool_runner import REPO


@pytest.fixture
def warnings_logged(monkeypatch):
    logged = []
    monkeypatch.setattr(
        cpu_norms,
        'print_log',
        lambda msg, logger=None, level=logging.INFO: logged.append(
            (level, msg)))
    return logged


def _norm_types(node):
    """Every ``type`` value of a norm config under ``node``."""
    if isinstance(node, dict):
        found = [node['type']] if 'norm' in str(node.get('type')).lower() or \
            str(node.get('type')).endswith('BN') else []
        return found + [t for v in node.values() for t in _norm_types(v)]
    if isinstance(node, (list, tuple)):
        return [t for v in node for t in _norm_types(v)]
    return []


def _cfg():
    return Config(
        dict(sync_bn='torch',
             model=dict(backbone=dict(norm_cfg=dict(type='SyncBN', eps=1e-3)),
                        norm_cfg=dict(type='SyncBN', requires_grad=True),
                        mapper=dict(norm_cfg=dict(type='MMSyncBN')),
                        heads=[
                            dict(norm=dict(type=nn.SyncBatchNorm)),
                            dict(norm=dict(type='GN', num_groups=2))
                        ],
                        other=dict(norm_cfg=dict(type='BN')))))


def test_sync_norms_become_bn_with_one_warning(warnings_logged):
    cfg = _cfg()
    changed = sync_norms_to_bn(cfg)
    assert changed == [
        'model.backbone.norm_cfg', 'model.norm_cfg', 'model.mapper.norm_cfg',
        'model.heads[0].norm', 'sync_bn'
    ]
    assert cfg.model.backbone.norm_cfg == dict(type='BN', eps=1e-3)
    assert cfg.model.norm_cfg == dict(type='BN', requires_grad=True)
    assert cfg.model.mapper.norm_cfg.type == 'BN'
    assert cfg.model.heads[0].norm.type == 'BN'
    assert cfg.model.heads[1].norm.type == 'GN'
    assert cfg.model.other.norm_cfg.type == 'BN'
    assert 'sync_bn' not in cfg
    assert len(warnings_logged) == 1
    level, msg = warnings_logged[0]
    assert level == logging.WARNING
    assert 'SyncBatchNorm layers only work with GPU modules' in msg
    assert 'model.mapper.norm_cfg' in msg
    # nothing left to change: no second warning
    assert sync_norms_to_bn(cfg) == []
    assert len(warnings_logged) == 1


@pytest.mark.parametrize('config', [
    'configs/diffmtl/pascal_one_r18.py',
    'configs/baselines/mtl_baseline_pascal_one_r18.py',
    'projects/xtc/configs/xtc_pascal_one_r18.py',
])
def test_cpu_multi_process_launch_uses_bn(config, warnings_logged):
    cfg = Config.fromfile(str(REPO / config))
    assert 'SyncBN' in _norm_types(cfg.model)
    setup_launcher(cfg, 'pytorch', use_cuda=False)
    types = _norm_types(cfg.model)
    assert types and set(types) == {'BN'}
    assert len(warnings_logged) == 1
    # GPU hosts and single-process runs keep SyncBN
    for launcher, use_cuda in (('pytorch', True), ('none', False)):
        cfg = Config.fromfile(str(REPO / config))
        setup_launcher(cfg, launcher, use_cuda=use_cuda)
        assert cfg.model.decoder.norm_cfg.type == 'SyncBN'
    assert len(warnings_logged) == 1
