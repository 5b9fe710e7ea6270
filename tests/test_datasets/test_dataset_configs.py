# Copyright (c) diffmtl contributors. All rights reserved.
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

import diffmtl  # noqa: F401
from diffmtl.datasets import dump_label_mapping
from diffmtl.registry import DATASETS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _cfg(name):
    return Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'datasets', name))


def _build(cfg, loader, root, **overrides):
    ds_cfg = cfg[loader].dataset.copy()
    ds_cfg.update(data_root=root, **overrides)
    return DATASETS.build(ds_cfg)


def test_pascal_config_pipelines(tmp_path):
    from test_pascal_context_mt import TRAIN, make_pascal
    root = str(tmp_path / 'PASCALContext')
    make_pascal(root)
    cfg = _cfg('pascal_context_mt.py')
    assert cfg.crop_size == (512, 512)
    assert cfg.val_evaluator == dict(type='MultiTaskMetric')
    one = str(tmp_path / 'one.json')
    rnd = str(tmp_path / 'rnd.json')
    tasks = cfg.tasks
    dump_label_mapping({i: (True, False, False, False, False)
                        for i in TRAIN}, tasks, one)
    dump_label_mapping({i: (False, True, True, False, False)
                        for i in TRAIN}, tasks, rnd)
    mapping = dict(one=one, random=rnd, full=None)
    # A child config switches the setting alone; the file follows it.
    ds = _build(cfg, 'train_dataloader', root, label_mapping=mapping,
                label_setting='random')
    mask = ds.get_data_info(0)['task_mask']
    assert mask == (False, True, True, False, False)
    ds = _build(cfg, 'train_dataloader', root, label_mapping=mapping)
    out = ds[0]
    sample = out['data_samples']
    assert tuple(out['inputs'].shape) == (3, 512, 512)
    assert sample.metainfo['task_mask'] == (True, False, False, False, False)
    assert sample.metainfo['tasks'] == tasks
    # Unlabelled human parts: all ignore after crop/flip/pad.
    assert (sample.gt_human_parts.data == 255).all()
    assert sample.gt_normals.data.shape == (3, 512, 512)
    val = _build(cfg, 'val_dataloader', root, split='val')
    vout = val[0]
    assert vout['data_samples'].metainfo['task_mask'] == (True, ) * 5
    assert tuple(vout['inputs'].shape) == (3, 512, 512)


@pytest.mark.parametrize('name,make_kw', [
    ('nyud_mt.py', dict()),
    ('cityscapes_mt.py', dict(label_dir='label_7', extra=('depth', ),
                              num_classes=7)),
])
def test_npy_configs(tmp_path, name, make_kw):
    from test_nyud_cityscapes_mt import make_mtan
    root = str(tmp_path / 'data')
    make_mtan(root, 'train', 3, **make_kw)
    make_mtan(root, 'val', 2, **make_kw)
    cfg = _cfg(name)
    tasks = cfg.tasks
    rows = torch.eye(len(tasks))[torch.arange(3) % len(tasks)]
    mpath = str(tmp_path / 'onelabel.pth')
    torch.save({'labels_weights': rows}, mpath)
    ds = _build(cfg, 'train_dataloader', root,
                label_mapping=dict(one=mpath, random=mpath, full=None))
    for i in range(3):
        out = ds[i]
        mask = tuple(bool(v) for v in rows[i])
        assert out['data_samples'].metainfo['task_mask'] == mask
        # The MTAN arrays are used at their own size (here 4x6).
        assert tuple(out['inputs'].shape) == (3, 4, 6)
    val = _build(cfg, 'val_dataloader', root)
    vout = val[1]
    assert vout['data_samples'].metainfo['task_mask'] == (True, ) * len(
        tasks)
    # Without augmentation the packed GT equals the file content.
    lab = np.load(osp.join(root, 'val', 'label_7' if 'city' in name else
                           'label', '1.npy'))
    lab = lab.astype(np.int64)
    lab[lab < 0] = 255
    np.testing.assert_array_equal(
        vout['data_samples'].gt_sem_seg.data[0].numpy(), lab)
