# Copyright (c) diffmtl contributors. All rights reserved.
"""A model with another number of classes than the data (``meta.json``)
stops training, validation and testing before the first batch."""
import copy
import glob
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from test_input_check_hook import _runner_cfg, folder  # noqa: F401

from diffmtl.datasets import FolderMultiTaskDataset
from diffmtl.engine.hooks.input_check_hook import check_model_dataset_classes
from diffmtl.utils import build_runner, drop_training


def _dataset(root, **kw):
    return FolderMultiTaskDataset(root, split='train', pipeline=[], **kw)


def _model(**num_classes):
    tasks = tuple(num_classes) + ('depth', )
    return SimpleNamespace(tasks=tasks, num_classes=num_classes,
                           out_channels=dict(num_classes, depth=1))


def test_the_check_compares_out_channels_with_the_classes(folder):  # noqa
    ds = _dataset(folder)  # semseg: ['bg', 'fg']
    check_model_dataset_classes(_model(semseg=2), ds)
    with pytest.raises(ValueError) as err:
        check_model_dataset_classes(_model(semseg=5), ds, 'test')
    msg = str(err.value)
    assert "predicts 5 classes for task 'semseg'" in msg
    assert "test dataset FolderMultiTaskDataset has 2 (['bg', 'fg']" in msg
    assert "model.num_classes={'semseg': 2}" in msg
    with pytest.raises(ValueError, match='predicts 1 classes'):
        check_model_dataset_classes(_model(semseg=1), ds)
    # wrappers (DDP's .module, the TTA model's .module) are looked through
    wrapped = SimpleNamespace(module=_model(semseg=5))
    with pytest.raises(ValueError, match='predicts 5 classes'):
        check_model_dataset_classes(wrapped, ds)


def _checkpoints(work_dir):
    return glob.glob(osp.join(work_dir, '**', '*.pth'), recursive=True)


@pytest.mark.slow
def test_training_stops_before_the_first_iteration(folder, tmp_path):  # noqa
    work_dir = str(tmp_path / 'train')
    cfg = _runner_cfg(folder, work_dir)
    cfg.model.num_classes = dict(semseg=5)
    torch.set_num_threads(1)
    runner = build_runner(cfg)
    with pytest.raises(ValueError, match="predicts 5 classes for task "
                       "'semseg'.*training dataset"):
        runner.train()
    assert runner.iter == 0
    assert _checkpoints(work_dir) == []


def _test_cfg(root, work_dir, semseg_classes):
    cfg = _runner_cfg(root, work_dir)
    cfg.model.num_classes = dict(semseg=semseg_classes)
    dataset = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset.test_mode = True
    cfg.test_dataloader = dict(
        batch_size=1, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='pseudo_collate'), dataset=dataset)
    cfg.test_cfg = dict(type='TestLoop')
    cfg.test_evaluator = dict(type='MultiTaskMetric')
    drop_training(cfg)
    return cfg


@pytest.mark.slow
def test_testing_stops_before_the_first_batch(folder, tmp_path):  # noqa
    torch.set_num_threads(1)
    ok = build_runner(_test_cfg(folder, str(tmp_path / 'ok'), 2)).test()
    assert 'semseg/mIoU' in ok
    runner = build_runner(_test_cfg(folder, str(tmp_path / 'bad'), 3))
    with pytest.raises(ValueError, match="predicts 3 classes for task "
                       "'semseg'.*test dataset"):
        runner.test()
