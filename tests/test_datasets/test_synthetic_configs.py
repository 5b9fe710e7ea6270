# Copyright (c) diffmtl contributors. All rights reserved.
"""The synthetic-scenes configs load, build the dataset from a generated
folder and build a model that trains on a packed batch."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from diffmtl.datasets.synthetic import (SEMSEG_CLASSES, SYNTHETIC_TASKS,
                                        generate_synthetic_scenes, read_png)

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
ONE = osp.join(REPO, 'configs', 'diffmtl', 'synthetic_one_r18.py')
RANDOM = osp.join(REPO, 'configs', 'diffmtl', 'synthetic_random_r18.py')
H, W = 96, 128


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synthetic_cfg'))
    generate_synthetic_scenes(root, num_train=6, num_val=2, num_test=2, seed=0,
                              workers=1)
    return root


def _dataset(cfg_path, split, data_root):
    import diffmtl  # noqa: F401  (registers everything)
    from mmengine.registry import init_default_scope

    from diffmtl.registry import DATASETS
    init_default_scope('mmseg')
    cfg = Config.fromfile(cfg_path)
    loader = cfg.train_dataloader if split == 'train' else cfg.val_dataloader
    ds_cfg = loader.dataset.copy()
    ds_cfg.data_root = data_root
    return DATASETS.build(ds_cfg), cfg


def test_config_values():
    cfg = Config.fromfile(ONE)
    assert tuple(cfg.model.tasks) == SYNTHETIC_TASKS
    assert cfg.model.num_classes == dict(
        semseg=len(SEMSEG_CLASSES), human_parts=7)
    assert tuple(cfg.train_dataloader.dataset.tasks) == SYNTHETIC_TASKS
    assert cfg.train_dataloader.dataset.label_setting == 'one'
    assert cfg.train_dataloader.dataset.label_mapping.one == \
        'mappings/onelabel.json'
    assert cfg.val_dataloader.dataset.split == 'val'
    assert cfg.val_evaluator.type == 'MultiTaskMetric'
    assert cfg.model.backbone.init_cfg is None  # nothing to download
    rnd = Config.fromfile(RANDOM)
    assert rnd.train_dataloader.dataset.label_setting == 'random'
    assert rnd.train_dataloader.dataset.label_mapping.random == \
        'mappings/randomlabels.json'
    assert rnd.train_dataloader.dataset.data_root == \
        cfg.train_dataloader.dataset.data_root


@pytest.mark.parametrize('cfg_path,per_image', [(ONE, {1}),
                                                (RANDOM, {1, 2, 3, 4, 5})])
def test_train_dataset_masks_follow_mapping(data_root, cfg_path, per_image):
    ds, _ = _dataset(cfg_path, 'train', data_root)
    assert len(ds) == 6
    assert tuple(ds.metainfo['tasks']) == SYNTHETIC_TASKS
    assert tuple(ds.metainfo['task_classes']['semseg']) == SEMSEG_CLASSES
    name = 'onelabel' if cfg_path == ONE else 'randomlabels'
    with open(osp.join(data_root, 'mappings', name + '.json')) as f:
        labels = json.load(f)['labels']
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        mask = tuple(info['task_mask'])
        assert sum(mask) in per_image
        assert [t for t, m in zip(SYNTHETIC_TASKS, mask) if m] == \
            labels[info['img_id']]


def test_train_pipeline_packs_every_task(data_root):
    ds, _ = _dataset(ONE, 'train', data_root)
    out = ds[0]
    sample = out['data_samples']
    assert tuple(out['inputs'].shape) == (3, H, W)
    from diffmtl.structures import get_task_spec
    for task in SYNTHETIC_TASKS:
        spec = get_task_spec(task)
        gt = sample.get(spec.gt_field).data
        assert tuple(gt.shape[-2:]) == (H, W)
        assert gt.shape[0] == spec.gt_channels


def test_val_pipeline_reads_exact_labels(data_root):
    ds, _ = _dataset(ONE, 'val', data_root)
    assert len(ds) == 2
    out = ds[1]
    sample = out['data_samples']
    img_id = sample.metainfo['img_id']
    assert all(sample.metainfo['task_mask'])
    sem = read_png(osp.join(data_root, 'semseg', img_id + '.png'))
    np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(), sem)
    depth = read_png(osp.join(data_root, 'depth', img_id + '.png'))
    np.testing.assert_allclose(sample.gt_depth.data[0].numpy(),
                               depth / 1000.0, rtol=1e-6)
    normals = read_png(osp.join(data_root, 'normals', img_id + '.png'))
    np.testing.assert_allclose(
        sample.gt_normals.data.permute(1, 2, 0).numpy(),
        normals * (2 / 255.0) - 1, atol=1e-6)


@pytest.mark.slow
def test_demo_model_trains_one_step(data_root):
    from diffmtl.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    ds, cfg = _dataset(ONE, 'train', data_root)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    batch = dict(
        inputs=[ds[i]['inputs'] for i in range(2)],
        data_samples=[ds[i]['data_samples'] for i in range(2)])
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    losses = model.train_step(batch, optim)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    assert total > 0
