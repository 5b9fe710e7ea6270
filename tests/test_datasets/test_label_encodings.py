# Copyright (c) diffmtl contributors. All rights reserved.
"""Label encodings are checked against the task kind when a dataset is
built: 0/255 binary maps and negative depth are refused, non-unit normals
are reported with their measured lengths; valid data passes untouched."""
import json
import logging
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.logging import MMLogger
from mt_format_writers import write_npy, write_png

from diffmtl.datasets import FolderMultiTaskDataset
from diffmtl.structures import get_task_spec

H, W = 6, 8
IDS = ('a', 'b', 'c', 'd', 'e')
PIPELINE = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='LoadMultiTaskAnnotations')
]


def make_folder(root, task, maps, suffix='.png'):
    """A folder dataset with one task whose file ``i`` holds ``maps[i]``."""
    os.makedirs(osp.join(root, 'splits'), exist_ok=True)
    with open(osp.join(root, 'meta.json'), 'w') as f:
        json.dump(dict(tasks=[task], depth_scale=1000), f)
    ids = IDS[:len(maps)]
    for split in ('train', 'val'):
        with open(osp.join(root, 'splits', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(ids) + '\n')
    for k, (i, arr) in enumerate(zip(ids, maps)):
        img = np.random.default_rng(k).integers(0, 256, (H, W, 3),
                                                dtype=np.uint8)
        write_png(osp.join(root, 'images', i + '.png'), img)
        path = osp.join(root, task, i + suffix)
        if suffix == '.npy':
            write_npy(path, arr)
        else:
            write_png(path, arr)
    return root


def binary_maps(positive_value, with_ignore=True):
    maps = []
    for k in range(len(IDS)):
        arr = np.zeros((H, W), np.uint8)
        arr[k % H, :] = positive_value
        if with_ignore:
            arr[-1, -1] = 255
        maps.append(arr)
    return maps


@pytest.mark.parametrize('task', ['sal', 'edge'])
@pytest.mark.parametrize('test_mode', [False, True])
def test_binary_maps_in_0_255_are_refused(tmp_path, task, test_mode):
    root = make_folder(str(tmp_path), task, binary_maps(255, False))
    with pytest.raises(ValueError) as err:
        FolderMultiTaskDataset(
            root, split='val' if test_mode else 'train',
            test_mode=test_mode, pipeline=PIPELINE)
    msg = str(err.value)
    assert f"task '{task}'" in msg and '0/255' in msg
    assert osp.join(root, task) in msg  # names example files
    assert f"ann_formats={{'{task}': 'threshold_png'}}" in msg


def test_0_255_maps_read_with_the_documented_switch(tmp_path):
    maps = binary_maps(255, False)
    root = make_folder(str(tmp_path), 'sal', maps)
    ds = FolderMultiTaskDataset(
        root, split='train', pipeline=PIPELINE,
        ann_formats=dict(sal='threshold_png'))
    assert ds.get_data_info(0)['ann_format']['sal'] == 'threshold_png'
    got = ds[0]['gt_sal_map']
    np.testing.assert_array_equal(got, (maps[0] == 255).astype(np.uint8))


def test_ann_formats_names_known_tasks_and_decoders(tmp_path):
    root = make_folder(str(tmp_path), 'sal', binary_maps(1))
    with pytest.raises(KeyError, match="'edge'.*not loaded"):
        FolderMultiTaskDataset(root, pipeline=PIPELINE,
                               ann_formats=dict(edge='threshold_png'))
    with pytest.raises(KeyError, match="'nope' is not a registered"):
        FolderMultiTaskDataset(root, pipeline=PIPELINE,
                               ann_formats=dict(sal='nope'))


@pytest.mark.parametrize('task', ['sal', 'edge'])
def test_valid_binary_maps_pass(tmp_path, task):
    root = make_folder(str(tmp_path), task, binary_maps(1))
    ds = FolderMultiTaskDataset(root, split='train', pipeline=PIPELINE)
    assert len(ds) == len(IDS)
    # all-background maps with an ignore region and no 255-only file: fine
    root2 = make_folder(str(tmp_path / 'bg'), task,
                        [np.zeros((H, W), np.uint8)] * 3)
    FolderMultiTaskDataset(root2, split='train', pipeline=PIPELINE)


def test_the_check_samples_the_list_and_can_be_switched_off(tmp_path):
    # background-only maps, then one 0/255 map at the end of the list: the
    # evenly spread sample always includes the first and the last file
    maps = [np.zeros((H, W), np.uint8) for _ in IDS]
    maps[-1][2:4, 2:5] = 255
    root = make_folder(str(tmp_path), 'sal', maps)
    with pytest.raises(ValueError, match="e.png.*0/255|0/255.*e.png"):
        FolderMultiTaskDataset(root, pipeline=PIPELINE,
                               encoding_check_samples=2)
    FolderMultiTaskDataset(root, pipeline=PIPELINE, encoding_check_samples=0)


def test_negative_depth_npy_is_refused_at_construction(tmp_path):
    maps = [np.full((H, W), 2.0, np.float32) for _ in IDS]
    maps[2][1, 1] = -0.5
    root = make_folder(str(tmp_path), 'depth', maps, suffix='.npy')
    with pytest.raises(ValueError) as err:
        FolderMultiTaskDataset(root, split='train', pipeline=PIPELINE)
    msg = str(err.value)
    assert osp.join(root, 'depth', 'c.npy') in msg
    assert '1 negative depth values' in msg and '-0.5' in msg


def test_negative_depth_outside_the_sample_is_refused_when_loaded(tmp_path):
    maps = [np.full((H, W), 2.0, np.float32) for _ in IDS]
    maps[1][0, :] = -1.0
    root = make_folder(str(tmp_path), 'depth', maps, suffix='.npy')
    ds = FolderMultiTaskDataset(root, split='train', pipeline=PIPELINE,
                                encoding_check_samples=0)
    ds[0]
    with pytest.raises(ValueError, match='b.npy.*negative depth'):
        ds[1]


def _capture_warnings():
    logger = MMLogger.get_current_instance()
    records = []

    class _Handler(logging.Handler):

        def emit(self, record):
            records.append(record.getMessage())

    handler = _Handler(level=logging.WARNING)
    logger.addHandler(handler)
    return logger, handler, records


@pytest.mark.parametrize('scale,warned', [(1.0, False), (255.0, True),
                                          (0.5, True)])
def test_normals_far_from_unit_length_are_reported(tmp_path, scale,
                                                   warned):
    rng = np.random.default_rng(0)
    maps = []
    for _ in IDS:
        v = rng.normal(size=(H, W, 3)).astype(np.float32)
        v /= np.linalg.norm(v, axis=-1, keepdims=True)
        v[0, 0] = 0  # invalid
        maps.append((v * scale).astype(np.float32))
    root = make_folder(str(tmp_path), 'normals', maps, suffix='.npy')
    logger, handler, records = _capture_warnings()
    try:
        FolderMultiTaskDataset(root, split='train', pipeline=PIPELINE)
    finally:
        logger.removeHandler(handler)
    hits = [r for r in records if 'normal vectors' in r]
    assert bool(hits) == warned, records
    if warned:
        assert f'lengths {scale:.3g}..{scale:.3g}' in hits[0]
        assert 'FolderMultiTaskDataset' in hits[0]


def test_png_normals_of_the_synthetic_encoding_pass_silently(tmp_path):
    from diffmtl.datasets.synthetic.generate import encode_normals
    rng = np.random.default_rng(1)
    maps = []
    for _ in IDS:
        v = rng.normal(size=(H, W, 3))
        v /= np.linalg.norm(v, axis=-1, keepdims=True)
        v[0, 0] = 0
        maps.append(encode_normals(v))
    root = make_folder(str(tmp_path), 'normals', maps)
    logger, handler, records = _capture_warnings()
    try:
        FolderMultiTaskDataset(root, split='train', pipeline=PIPELINE)
    finally:
        logger.removeHandler(handler)
    assert not [r for r in records if 'normal vectors' in r]


def test_kind_checks_live_with_the_kinds():
    """Each built-in kind answers the checks itself (no table of kinds)."""
    sal, depth = get_task_spec('sal'), get_task_spec('depth')
    ok = np.array([[0, 1, 255]], np.uint8)
    assert sal.task_kind.check_encoding(sal, [ok], ['x.png']) == []
    with pytest.raises(ValueError, match='0/255'):
        sal.task_kind.check_encoding(sal, [ok * (ok != 1)], ['x.png'])
    depth.task_kind.check_map(depth, np.zeros((2, 2), np.float32), 'd')
    with pytest.raises(ValueError, match="'d'.*negative"):
        depth.task_kind.check_map(depth, -np.ones((2, 2), np.float32), 'd')
