# Copyright (c) diffmtl contributors. All rights reserved.
import os
import os.path as osp
import pickle
import sys

import numpy as np
import pytest
from mt_format_writers import write_npy, write_png
from tool_runner import load_tool

from diffmtl.datasets import MultiTaskPartialDataset, dump_label_mapping
from diffmtl.registry import DATASETS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PIPELINE = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='LoadMultiTaskAnnotations')
]


def _make(root, ids=('p', 'q', 'r')):
    gts = {}
    for k, i in enumerate(ids):
        rng = np.random.default_rng(k)
        img = rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)
        seg = rng.integers(0, 3, (3, 4)).astype(np.uint8)
        depth = rng.uniform(0, 3, (3, 4)).astype(np.float32)
        write_png(osp.join(root, 'img', i + '.jpg'), img)
        write_png(osp.join(root, 'labels', i + '.png'), seg)
        write_npy(osp.join(root, 'dep', i + '.npy'), depth)
        gts[i] = dict(seg=seg, depth=depth)
    with open(osp.join(root, 'train.txt'), 'w') as f:
        f.write('\n'.join(ids) + '\n')
    return gts


def _generic(root, **kw):
    kw.setdefault('ann_file', 'train.txt')
    return MultiTaskPartialDataset(
        data_root=root,
        data_prefix=dict(img_path='img'),
        img_suffix='.jpg',
        ann_settings=dict(
            semseg=dict(prefix='labels'),
            depth=dict(prefix='dep', suffix='.npy')),
        task_classes=dict(semseg=['a', 'b', 'c']),
        pipeline=PIPELINE,
        **kw)


def test_generic_layout(tmp_path):
    root = str(tmp_path)
    gts = _make(root)
    ds = _generic(root)
    assert DATASETS.get('MultiTaskPartialDataset') is MultiTaskPartialDataset
    assert ds.metainfo['tasks'] == ('semseg', 'depth')
    assert ds.metainfo['classes'] == ('a', 'b', 'c')
    assert ds.metainfo['depth_unit'] == 'm'
    info = ds.get_data_info(2)
    assert info['ann_format'] == dict(semseg='label_png', depth='depth_npy')
    assert info['label_map'] is None and info['task_mask'] == (True, True)
    # Entries are small and picklable (shared by dataloader workers).
    assert len(pickle.dumps(info)) < 1000
    res = ds[2]
    np.testing.assert_array_equal(res['gt_seg_map'], gts['r']['seg'])
    np.testing.assert_array_equal(res['gt_depth_map'], gts['r']['depth'])
    # Without ann_file every image of the folder is used (sorted).
    ds = _generic(root, ann_file='')
    assert [ds.get_data_info(i)['img_id'] for i in range(3)] == [
        'p', 'q', 'r'
    ]


def test_lazy_init_indices_and_stats(tmp_path):
    root = str(tmp_path)
    _make(root)
    ds = _generic(root, lazy_init=True, label_setting='one')
    assert not ds._fully_initialized
    ds.full_init()
    assert len(ds) == 3
    assert ds.label_stats()['labels_per_image'] == {0: 0, 1: 3, 2: 0}
    sub = _generic(root, indices=[1])
    assert len(sub) == 1 and sub.get_data_info(0)['img_id'] == 'q'


def test_segmentation_task_needs_classes(tmp_path):
    root = str(tmp_path)
    _make(root)
    with pytest.raises(ValueError, match="task 'semseg' needs class names"):
        MultiTaskPartialDataset(
            data_root=root, ann_file='train.txt',
            ann_settings=dict(semseg=dict(prefix='labels')))
    with pytest.raises(ValueError, match='3 classes but 2 palette'):
        _generic(root, task_palettes=dict(semseg=[[0, 0, 0], [1, 1, 1]]))
    with pytest.raises(ValueError, match='duplicate tasks'):
        _generic(root, tasks=('semseg', 'semseg'))


def test_print_label_mapping_tool(tmp_path, capsys, monkeypatch):
    path = str(tmp_path / 'm.json')
    dump_label_mapping({'a': (True, False), 'b': (True, True)},
                       ('semseg', 'depth'), path)
    mod = load_tool('tools/analysis_tools/print_label_mapping.py')
    monkeypatch.setattr(sys, 'argv',
                        ['x', path, '--tasks', 'semseg', 'depth'])
    mod.main()
    out = capsys.readouterr().out.split('\n')
    assert out[0] == 'images: 2'
    assert out[1].split() == ['semseg', '2']
    assert out[2].split() == ['depth', '1']
    assert out[3] == 'labels per image -> images: 0: 0, 1: 1, 2: 1'
    assert not os.path.exists(str(tmp_path / 'other'))
