# Copyright (c) diffmtl contributors. All rights reserved.
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mt_format_writers import write_npy, write_png

from diffmtl.datasets import CityscapesMTDataset, NYUDMTDataset

H, W = 4, 6
PIPELINE = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='LoadMultiTaskAnnotations')
]


def make_mtan(root, split, n, label_dir='label', extra=('depth', 'normal'),
              num_classes=13):
    gts = []
    for i in range(n):
        rng = np.random.default_rng(100 * len(split) + i)
        img = rng.random((H, W, 3)).astype(np.float64)
        lab = rng.integers(-1, num_classes, (H, W)).astype(np.float64)
        depth = rng.uniform(0.5, 9, (H, W, 1)).astype(np.float32)
        depth[0, 0] = 0
        nrm = rng.normal(size=(H, W, 3))
        nrm /= np.linalg.norm(nrm, axis=-1, keepdims=True)
        nrm[1, 1] = 0
        base = osp.join(root, split)
        write_npy(osp.join(base, 'image', f'{i}.npy'), img)
        write_npy(osp.join(base, label_dir, f'{i}.npy'), lab)
        if 'depth' in extra:
            write_npy(osp.join(base, 'depth', f'{i}.npy'), depth)
        if 'normal' in extra:
            write_npy(osp.join(base, 'normal', f'{i}.npy'),
                      nrm.astype(np.float32))
        lab_gt = lab.astype(np.int64)
        lab_gt[lab_gt < 0] = 255
        gts.append(dict(img=img, lab=lab_gt.astype(np.uint8),
                        depth=depth[..., 0], normals=nrm.astype(np.float32)))
    return gts


def _check(res, g, mask):
    np.testing.assert_allclose(res['img'], g['img'][..., ::-1] * 255,
                               atol=1e-3)
    exp = dict(gt_seg_map=g['lab'], gt_depth_map=g['depth'],
               gt_normal_map=g['normals'])
    fill = dict(gt_seg_map=255, gt_depth_map=0, gt_normal_map=0)
    for (key, e), m in zip(exp.items(), mask):
        if key not in res['seg_fields']:
            continue
        e = e if m else np.full(e.shape, fill[key], e.dtype)
        np.testing.assert_allclose(res[key], e, atol=1e-6, err_msg=key)


def test_nyud_mtan_with_mtpsl_mapping(tmp_path):
    root = str(tmp_path / 'nyuv2')
    gts = make_mtan(root, 'train', 12)  # 0..11: numeric, not lexical order
    make_mtan(root, 'val', 2)
    rows = torch.zeros(12, 3)
    rows[torch.arange(12), torch.arange(12) % 3] = 1
    rows[5] = torch.tensor([1., 1., 0.])
    mpath = str(tmp_path / 'onelabel.pth')
    torch.save({'labels_weights': rows}, mpath)
    ds = NYUDMTDataset(data_root=root, label_setting='one',
                       label_mapping=mpath, pipeline=PIPELINE)
    assert len(ds) == 12
    assert [ds.get_data_info(i)['img_id'] for i in range(12)] == [
        str(i) for i in range(12)
    ]
    assert ds.metainfo['tasks'] == ('semseg', 'depth', 'normals')
    assert len(ds.metainfo['classes']) == 13
    assert ds.metainfo['depth_unit'] == 'm'
    for i in (0, 5, 10, 11):
        mask = tuple(bool(v) for v in rows[i])
        assert ds.get_data_info(i)['task_mask'] == mask
        _check(ds[i], gts[i], mask)
    # Mapping with fewer rows than the split: error names the ids.
    torch.save({'labels_weights': rows[:10]}, mpath)
    with pytest.raises(ValueError, match=r"missing from the mapping, e.g. "
                       r"\['10', '11'\]"):
        NYUDMTDataset(data_root=root, label_setting='one',
                      label_mapping=mpath)
    val = NYUDMTDataset(data_root=root, split='val', test_mode=True,
                        pipeline=PIPELINE)
    assert val[1]['task_mask'] == (True, True, True)


def test_nyud_task_subset_uses_file_columns(tmp_path):
    root = str(tmp_path / 'nyuv2')
    make_mtan(root, 'train', 3)
    rows = torch.tensor([[1., 0., 0.], [0., 0., 1.], [0., 1., 0.]])
    mpath = str(tmp_path / 'm.pth')
    torch.save({'labels_weights': rows}, mpath)
    ds = NYUDMTDataset(data_root=root, tasks=('normals', 'semseg'),
                       label_setting='one', label_mapping=mpath)
    assert [ds.get_data_info(i)['task_mask'] for i in range(3)] == [
        (False, True), (True, False), (False, False)
    ]


def test_nyud_atrc_layout(tmp_path):
    root = str(tmp_path / 'NYUDv2')
    os.makedirs(osp.join(root, 'gt_sets'))
    with open(osp.join(root, 'gt_sets', 'train.txt'), 'w') as f:
        f.write('img_0001\nimg_0002\n')
    rng = np.random.default_rng(0)
    gts = {}
    for img_id in ('img_0001', 'img_0002'):
        img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        seg = rng.integers(0, 41, (H, W)).astype(np.uint8)
        depth = rng.uniform(0, 5, (H, W)).astype(np.float32)
        nrm = rng.integers(1, 256, (H, W, 3), dtype=np.uint8)
        edge = (rng.random((H, W)) > 0.5).astype(np.uint8) * 255
        write_png(osp.join(root, 'images', img_id + '.png'), img)
        write_png(osp.join(root, 'segmentation', img_id + '.png'), seg)
        write_npy(osp.join(root, 'depth', img_id + '.npy'), depth)
        write_png(osp.join(root, 'normals', img_id + '.png'), nrm)
        write_png(osp.join(root, 'edge', img_id + '.png'), edge)
        seg_gt = seg.astype(np.int64) - 1
        seg_gt[seg_gt < 0] = 255
        gts[img_id] = dict(img=img, seg=seg_gt, depth=depth,
                           normals=nrm.astype(np.float32) * 2 / 255 - 1,
                           edge=edge // 255)
    ds = NYUDMTDataset(data_root=root, layout='atrc', pipeline=PIPELINE)
    assert ds.metainfo['tasks'] == ('semseg', 'depth', 'normals', 'edge')
    assert len(ds.metainfo['classes']) == 40
    res = ds[1]
    g = gts['img_0002']
    np.testing.assert_array_equal(res['img'], g['img'][..., ::-1])
    np.testing.assert_array_equal(res['gt_seg_map'], g['seg'])
    np.testing.assert_array_equal(res['gt_depth_map'], g['depth'])
    np.testing.assert_allclose(res['gt_normal_map'], g['normals'], atol=1e-6)
    np.testing.assert_array_equal(res['gt_edge_map'], g['edge'])
    with pytest.raises(ValueError, match="layout must be one of"):
        NYUDMTDataset(data_root=root, layout='tar')


def test_nyud_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='data root not found'):
        NYUDMTDataset(data_root=str(tmp_path / 'none'))
    root = str(tmp_path / 'nyuv2')
    make_mtan(root, 'train', 3)
    os.remove(osp.join(root, 'train', 'normal', '2.npy'))
    with pytest.raises(FileNotFoundError, match=r"2 \(normals\)"):
        NYUDMTDataset(data_root=root)
    with pytest.raises(FileNotFoundError, match='folder not found'):
        NYUDMTDataset(data_root=root, split='val')
    with pytest.raises(KeyError, match="task 'sal' is not provided"):
        NYUDMTDataset(data_root=root, tasks=('sal', ))


def test_cityscapes(tmp_path):
    root = str(tmp_path / 'cityscapes2')
    gts = make_mtan(root, 'train', 4, label_dir='label_7',
                    extra=('depth', ), num_classes=7)
    rows = torch.tensor([[1., 0.], [0., 1.], [0., 1.], [1., 0.]])
    mpath = str(tmp_path / 'onelabel.pth')
    torch.save({'labels_weights': rows}, mpath)
    ds = CityscapesMTDataset(data_root=root, label_setting='one',
                             label_mapping=mpath, pipeline=PIPELINE)
    assert ds.metainfo['tasks'] == ('semseg', 'depth')
    assert ds.metainfo['classes'] == ('flat', 'construction', 'object',
                                      'nature', 'sky', 'human', 'vehicle')
    assert ds.metainfo['depth_unit'] == 'inverse depth'
    for i in range(4):
        mask = tuple(bool(v) for v in rows[i])
        res = ds[i]
        assert res['task_mask'] == mask
        _check(res, gts[i], mask)
    # Random labels for 2 tasks = one label per image (never both).
    ds = CityscapesMTDataset(data_root=root, label_setting='random')
    assert all(sum(ds.get_data_info(i)['task_mask']) == 1 for i in range(4))
    with pytest.raises(FileNotFoundError, match='label_19'):
        CityscapesMTDataset(data_root=root, num_classes=19)
