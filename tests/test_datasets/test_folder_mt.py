# Copyright (c) diffmtl contributors. All rights reserved.
import json
import os
import os.path as osp

import numpy as np
import pytest
from mt_format_writers import write_npy, write_png

from diffmtl.datasets import FolderMultiTaskDataset, dump_label_mapping

H, W = 5, 7
TASKS = ['semseg', 'human_parts', 'sal', 'normals', 'edge', 'depth']
PIPELINE = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='LoadMultiTaskAnnotations')
]


def make_folder(root, ids=('a', 'b', 'c', 'd'), depth_scale=256,
                npy_ids=('b', )):
    os.makedirs(osp.join(root, 'splits'), exist_ok=True)
    meta = dict(
        tasks=TASKS,
        task_classes=dict(semseg=['bg', 'box', 'ball'],
                          human_parts=['bg', 'head']),
        task_palettes=dict(semseg=[[0, 0, 0], [255, 0, 0], [0, 255, 0]]),
        depth_scale=depth_scale)
    with open(osp.join(root, 'meta.json'), 'w') as f:
        json.dump(meta, f)
    with open(osp.join(root, 'splits', 'train.txt'), 'w') as f:
        f.write('\n'.join(ids[:3]) + '\n')
    with open(osp.join(root, 'splits', 'val.txt'), 'w') as f:
        f.write('\n'.join(ids[3:]) + '\n')
    gts = {}
    for k, i in enumerate(ids):
        rng = np.random.default_rng(k)
        img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        seg = rng.choice([0, 1, 2, 255], (H, W)).astype(np.uint8)
        parts = rng.choice([0, 1, 255], (H, W)).astype(np.uint8)
        sal = rng.choice([0, 1, 255], (H, W)).astype(np.uint8)
        edge = rng.choice([0, 1], (H, W)).astype(np.uint8)
        rgb = rng.integers(1, 256, (H, W, 3), dtype=np.uint8)
        rgb[0, 0] = 0
        nrm = rgb.astype(np.float32) * 2 / 255 - 1
        nrm[0, 0] = 0
        d16 = rng.integers(0, 5000, (H, W)).astype(np.uint16)
        depth = d16.astype(np.float32) / depth_scale
        write_png(osp.join(root, 'images', i + '.png'), img)
        write_png(osp.join(root, 'semseg', i + '.png'), seg)
        write_png(osp.join(root, 'human_parts', i + '.png'), parts)
        write_png(osp.join(root, 'sal', i + '.png'), sal)
        write_png(osp.join(root, 'edge', i + '.png'), edge)
        if i in npy_ids:
            write_npy(osp.join(root, 'normals', i + '.npy'), nrm)
            write_npy(osp.join(root, 'depth', i + '.npy'), depth)
        else:
            write_png(osp.join(root, 'normals', i + '.png'), rgb)
            write_png(osp.join(root, 'depth', i + '.png'), d16)
        gts[i] = dict(img=img, gt_seg_map=seg, gt_parts_map=parts,
                      gt_sal_map=sal, gt_normal_map=nrm, gt_edge_map=edge,
                      gt_depth_map=depth)
    return gts


def test_folder_full_decoding(tmp_path):
    root = str(tmp_path / 'scenes')
    gts = make_folder(root)
    ds = FolderMultiTaskDataset(data_root=root, pipeline=PIPELINE)
    assert ds.metainfo['tasks'] == tuple(TASKS)
    assert ds.metainfo['classes'] == ('bg', 'box', 'ball')
    assert ds.metainfo['palette'] == [[0, 0, 0], [255, 0, 0], [0, 255, 0]]
    assert ds.metainfo['task_classes']['human_parts'] == ('bg', 'head')
    # No palette in meta.json: a deterministic one is generated.
    assert len(ds.metainfo['task_palettes']['human_parts']) == 2
    assert ds.get_data_info(1)['ann_format']['depth'] == 'depth_npy'
    assert ds.get_data_info(0)['ann_format']['depth'] == 'depth_png'
    assert ds.get_data_info(0)['depth_scale'] == 256.
    for k, i in enumerate(('a', 'b', 'c')):
        res = ds[k]
        g = gts[i]
        np.testing.assert_array_equal(res['img'], g['img'][..., ::-1])
        for key in res['seg_fields']:
            np.testing.assert_allclose(res[key], g[key], atol=1e-6,
                                       err_msg=f'{i}:{key}')
        assert res['task_mask'] == (True, ) * 6


def test_folder_mappings(tmp_path):
    root = str(tmp_path / 'scenes')
    make_folder(root)
    os.makedirs(osp.join(root, 'mappings'))
    m = {'a': (True, ) + (False, ) * 5, 'b': (False, ) * 5 + (True, ),
         'c': (False, True, True, False, False, False)}
    dump_label_mapping(m, TASKS, osp.join(root, 'mappings', 'onelabel.json'))
    ds = FolderMultiTaskDataset(data_root=root, label_setting='random',
                                label_mapping='mappings/onelabel.json',
                                pipeline=PIPELINE)
    assert [ds.get_data_info(k)['task_mask'] for k in range(3)] == [
        m['a'], m['b'], m['c']
    ]
    res = ds[1]
    assert (res['gt_seg_map'] == 255).all()
    assert res['gt_depth_map'].any()
    # Generated one-label mapping: one task per image, reproducible.
    g1 = FolderMultiTaskDataset(data_root=root, label_setting='one',
                                mapping_seed=5)
    g2 = FolderMultiTaskDataset(data_root=root, label_setting='one',
                                mapping_seed=5)
    masks = [g1.get_data_info(k)['task_mask'] for k in range(3)]
    assert masks == [g2.get_data_info(k)['task_mask'] for k in range(3)]
    assert all(sum(x) == 1 for x in masks)
    assert g1.label_stats()['labels_per_image'][1] == 3


def test_folder_errors(tmp_path):
    root = str(tmp_path / 'scenes')
    with pytest.raises(FileNotFoundError, match='data root not found'):
        FolderMultiTaskDataset(data_root=root)
    os.makedirs(root)
    with pytest.raises(FileNotFoundError, match='meta.json'):
        FolderMultiTaskDataset(data_root=root)
    make_folder(root)
    with pytest.raises(KeyError, match="unknown task 'segmentation'"):
        FolderMultiTaskDataset(data_root=root, tasks=['segmentation'])
    with pytest.raises(FileNotFoundError, match='split file not found'):
        FolderMultiTaskDataset(data_root=root, split='test')
    os.remove(osp.join(root, 'images', 'c.png'))
    with pytest.raises(FileNotFoundError, match=r'c \(image\)'):
        FolderMultiTaskDataset(data_root=root)
    # jpg images are accepted too.
    import shutil
    shutil.copy(osp.join(root, 'images', 'a.png'),
                osp.join(root, 'images', 'c.jpg'))
    ds = FolderMultiTaskDataset(data_root=root, tasks=['semseg'])
    assert ds.get_data_info(2)['img_path'].endswith('c.jpg')
    with pytest.raises(ValueError, match="label_setting='full'"):
        FolderMultiTaskDataset(data_root=root, label_mapping='x.json')
