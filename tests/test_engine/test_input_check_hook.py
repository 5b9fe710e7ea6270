# Copyright (c) diffmtl contributors. All rights reserved.
"""InputCheckHook and the dataset checks stop a run whose model and training
set do not match before the first iteration: nothing trains at loss 0 and
no checkpoint is written."""
import glob
import json
import os
import os.path as osp
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import ConcatDataset
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from PIL import Image

from diffmtl.datasets import FolderMultiTaskDataset, dump_label_mapping
from diffmtl.engine.hooks import InputCheckHook
from diffmtl.engine.hooks.input_check_hook import (check_model_dataset_tasks,
                                                   task_label_counts)
from diffmtl.registry import HOOKS
from diffmtl.utils.tool_cfg import add_input_check_hook

TASKS = ('semseg', 'depth')
IDS = ('a', 'b', 'c', 'd')
H = W = 32


def _write_folder(root):
    """A 4-image folder dataset with semseg (2 classes) and 16-bit depth."""
    os.makedirs(osp.join(root, 'splits'))
    with open(osp.join(root, 'meta.json'), 'w') as f:
        json.dump(dict(tasks=list(TASKS),
                       task_classes=dict(semseg=['bg', 'fg']),
                       depth_scale=1000), f)
    with open(osp.join(root, 'splits', 'train.txt'), 'w') as f:
        f.write('\n'.join(IDS) + '\n')
    rng = np.random.default_rng(0)
    for folder in ('images', 'semseg', 'depth'):
        os.makedirs(osp.join(root, folder))
    for i in IDS:
        img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        Image.fromarray(img).save(osp.join(root, 'images', i + '.png'))
        seg = (img[..., 0] > 127).astype(np.uint8)
        Image.fromarray(seg).save(osp.join(root, 'semseg', i + '.png'))
        depth = (1000 + 4 * img[..., 1].astype(np.uint16))
        cv2.imwrite(osp.join(root, 'depth', i + '.png'), depth)
    return root


@pytest.fixture
def folder(tmp_path):
    init_default_scope('mmseg')
    return _write_folder(str(tmp_path / 'data'))


def _runner_cfg(root, work_dir, model_tasks=TASKS, **dataset_kw):
    width = 8
    num_classes = dict(semseg=2) if 'semseg' in model_tasks else {}
    if 'human_parts' in model_tasks:
        num_classes['human_parts'] = 7
    return Config(
        dict(
            default_scope='mmseg',
            work_dir=work_dir,
            model=dict(
                type='MultiTaskBaseline',
                tasks=model_tasks,
                num_classes=num_classes,
                data_preprocessor=dict(
                    type='MultiTaskDataPreProcessor',
                    mean=[123.675, 116.28, 103.53],
                    std=[58.395, 57.12, 57.375],
                    bgr_to_rgb=True,
                    size_divisor=32),
                backbone=dict(
                    type='ResNet', depth=18, stem_channels=width,
                    base_channels=width, num_stages=4,
                    out_indices=(0, 1, 2, 3),
                    norm_cfg=dict(type='BN', requires_grad=True)),
                neck=dict(type='StageFusionNeck',
                          in_channels=[width, 2 * width, 4 * width,
                                       8 * width],
                          out_channels=16),
                channels=16,
                decoder=dict(num_blocks=1)),
            train_dataloader=dict(
                batch_size=2,
                num_workers=0,
                sampler=dict(type='InfiniteSampler', shuffle=False),
                collate_fn=dict(type='pseudo_collate'),
                dataset=dict(
                    type='FolderMultiTaskDataset',
                    data_root=root,
                    pipeline=[
                        dict(type='LoadMultiTaskImageFromFile'),
                        dict(type='LoadMultiTaskAnnotations'),
                        dict(type='PackMultiTaskInputs')
                    ],
                    **dataset_kw)),
            train_cfg=dict(type='IterBasedTrainLoop', max_iters=2),
            optim_wrapper=dict(
                type='OptimWrapper',
                optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
            default_hooks=dict(
                logger=dict(type='LoggerHook', interval=1),
                checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                interval=1)),
            log_processor=dict(by_epoch=False),
            env_cfg=dict(dist_cfg=dict(backend='gloo')),
            randomness=dict(seed=0)))


def _train(cfg):
    torch.set_num_threads(1)
    add_input_check_hook(cfg)
    runner = Runner.from_cfg(cfg)
    assert any(isinstance(h, InputCheckHook) for h in runner.hooks)
    runner.train()
    return runner


def _checkpoints(work_dir):
    return sorted(glob.glob(osp.join(work_dir, '**', '*.pth'),
                            recursive=True))


def test_registered_and_added_once():
    assert HOOKS.get('InputCheckHook') is InputCheckHook
    cfg = Config(dict(custom_hooks=[dict(type='InputCheckHook',
                                         allow_unlabelled_tasks=True)]))
    add_input_check_hook(cfg)
    assert cfg.custom_hooks == [
        dict(type='InputCheckHook', allow_unlabelled_tasks=True)
    ]
    cfg = Config(dict())
    add_input_check_hook(add_input_check_hook(cfg))
    assert cfg.custom_hooks == [dict(type='InputCheckHook')]


def test_tools_runner_has_the_hook(folder, tmp_path):
    from diffmtl.utils import build_runner
    runner = build_runner(_runner_cfg(folder, str(tmp_path / 'tools')))
    assert sum(isinstance(h, InputCheckHook) for h in runner.hooks) == 1


@pytest.mark.slow
def test_matching_model_and_dataset_train_and_save(folder, tmp_path):
    work_dir = str(tmp_path / 'ok')
    runner = _train(_runner_cfg(folder, work_dir))
    assert runner.iter == 2
    assert [osp.basename(p) for p in _checkpoints(work_dir)] == [
        'iter_1.pth', 'iter_2.pth'
    ]


@pytest.mark.slow
def test_model_task_absent_from_dataset(folder, tmp_path):
    work_dir = str(tmp_path / 'absent')
    cfg = _runner_cfg(folder, work_dir,
                      model_tasks=('semseg', 'depth', 'normals',
                                   'human_parts'))
    with pytest.raises(ValueError) as err:
        _train(cfg)
    msg = str(err.value)
    assert "predicts the tasks ['normals', 'human_parts']" in msg
    assert 'FolderMultiTaskDataset' in msg and "['depth', 'semseg']" in msg
    assert _checkpoints(work_dir) == []


@pytest.mark.slow
def test_no_image_labelled_for_a_model_task(folder, tmp_path):
    mapping = osp.join(folder, 'semseg_only.json')
    dump_label_mapping({i: (True, False) for i in IDS}, TASKS, mapping)
    work_dir = str(tmp_path / 'unlabelled')
    cfg = _runner_cfg(folder, work_dir, label_setting='one',
                      label_mapping=mapping)
    with pytest.raises(ValueError) as err:
        _train(cfg)
    msg = str(err.value)
    assert "labelled for the model tasks ['depth']" in msg
    assert "{'semseg': 4, 'depth': 0}" in msg
    assert _checkpoints(work_dir) == []


@pytest.mark.slow
def test_mapping_labelling_no_task_stops_before_training(folder, tmp_path):
    mapping = osp.join(folder, 'nothing.json')
    dump_label_mapping({i: (False, False) for i in IDS}, TASKS, mapping)
    work_dir = str(tmp_path / 'nothing')
    cfg = _runner_cfg(folder, work_dir, label_setting='one',
                      label_mapping=mapping)
    with pytest.raises(ValueError) as err:
        _train(cfg)
    msg = str(err.value)
    assert 'none of the 4 training images is labelled' in msg
    assert 'nothing.json' in msg
    assert _checkpoints(work_dir) == []


def _fake_runner(model, dataset):
    return SimpleNamespace(model=model,
                           train_dataloader=SimpleNamespace(dataset=dataset))


def test_hook_unit_checks(folder):
    init_default_scope('mmseg')
    ds = FolderMultiTaskDataset(data_root=folder)
    hook = InputCheckHook()
    # tasks of the dataset, in another order, pass
    hook.before_train(_fake_runner(SimpleNamespace(tasks=('depth', )), ds))
    # a wrapped model (DDP-like) is unwrapped
    wrapped = torch.nn.parallel.DistributedDataParallel.__new__(
        torch.nn.parallel.DistributedDataParallel)
    torch.nn.Module.__init__(wrapped)
    wrapped.module = SimpleNamespace(tasks=('sal', ))
    with pytest.raises(ValueError, match=r"tasks \['sal'\]"):
        hook.before_train(_fake_runner(wrapped, ds))
    # models without tasks are not checked
    hook.before_train(_fake_runner(SimpleNamespace(), ds))
    # concatenated datasets add up
    counts, total = task_label_counts(ConcatDataset([ds, ds]))
    assert counts == dict(semseg=8, depth=8) and total == 8


def test_allow_unlabelled_tasks_only_warns(folder):
    mapping = osp.join(folder, 'semseg_only.json')
    dump_label_mapping({i: (True, False) for i in IDS}, TASKS, mapping)
    ds = FolderMultiTaskDataset(data_root=folder, label_setting='one',
                                label_mapping=mapping)
    with pytest.raises(ValueError, match=r"model tasks \['depth'\]"):
        check_model_dataset_tasks(TASKS, ds)
    check_model_dataset_tasks(TASKS, ds, allow_unlabelled_tasks=True)
    hook = HOOKS.build(dict(type='InputCheckHook',
                            allow_unlabelled_tasks=True))
    hook.before_train(_fake_runner(SimpleNamespace(tasks=TASKS), ds))
