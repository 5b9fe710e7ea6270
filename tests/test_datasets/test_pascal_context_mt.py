# Copyright (c) diffmtl contributors. All rights reserved.
import json
import os
import os.path as osp

import numpy as np
import pytest
from mt_format_writers import write_label_map_mat, write_parts_mat, write_png
from tool_runner import load_tool

from diffmtl.datasets import PascalContextMTDataset, dump_label_mapping
from diffmtl.datasets.pascal_utils import label_map_boundaries
from diffmtl.registry import DATASETS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TASKS = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
H, W = 6, 8
PIPELINE = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='LoadMultiTaskAnnotations')
]
TRAIN = ['2008_000001', '2008_000002', '2008_000003']
VAL = ['2009_000001', '2009_000002']


def _expected(idx):
    """Per-image ground truth written to disk and expected after decoding."""
    rng = np.random.default_rng(idx)
    img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    seg = rng.integers(0, 21, (H, W)).astype(np.uint8)
    seg[0, 0] = 255
    label = np.full((H, W), 3, dtype=np.int32)  # 3 keeps normals
    label[:, W // 2:] = 1  # 1 invalidates normals
    label[H // 2:, :2] = 427
    rgb = rng.integers(1, 256, (H, W, 3), dtype=np.uint8)
    rgb[0, 0] = 0  # a *valid* pixel stored as (0, 0, 0): n = (-1, -1, -1)
    normals = rgb.astype(np.float32) * 2 / 255 - 1
    normals[label == 1] = 0
    sal = rng.integers(0, 256, (H, W), dtype=np.uint8)
    return dict(img=img, seg=seg, label=label, rgb=rgb, normals=normals,
                sal=sal, sal_gt=(sal > 127).astype(np.uint8),
                edge=label_map_boundaries(label))


def make_pascal(root, with_person=(True, False, True, True, False)):
    os.makedirs(osp.join(root, 'ImageSets', 'Context'), exist_ok=True)
    with open(osp.join(root, 'ImageSets', 'Context', 'train.txt'), 'w') as f:
        f.write('\n'.join(TRAIN) + '\n')
    with open(osp.join(root, 'ImageSets', 'Context', 'val.txt'), 'w') as f:
        f.write('\n'.join(VAL) + '\n')
    gts = {}
    for k, img_id in enumerate(TRAIN + VAL):
        e = _expected(k)
        from PIL import Image
        os.makedirs(osp.join(root, 'JPEGImages'), exist_ok=True)
        # JPEG is lossy: keep what the decoder will see as the reference.
        Image.fromarray(e['img']).save(
            osp.join(root, 'JPEGImages', img_id + '.jpg'), quality=100)
        # Odd images only in semseg/pascal-context (fallback folder).
        sub = 'VOC12' if k % 2 == 0 else 'pascal-context'
        write_png(osp.join(root, 'semseg', sub, img_id + '.png'), e['seg'],
                  palette=True)
        write_label_map_mat(
            osp.join(root, 'pascal-context', 'trainval', img_id + '.mat'),
            e['label'])
        write_png(osp.join(root, 'normals_distill', img_id + '.png'),
                  e['rgb'])
        write_png(osp.join(root, 'sal_distill', img_id + '.png'), e['sal'])
        person = np.zeros((H, W), bool)
        person[:3, :3] = True
        head = np.zeros((H, W), bool)
        head[0, :2] = True
        lleg = np.zeros((H, W), bool)
        lleg[2, 2] = True
        parts = []
        if with_person[k]:
            parts = [(15, person, [('head', head), ('llleg', lleg)])]
            e['parts'] = np.zeros((H, W), np.uint8)
            e['parts'][head] = 1
            e['parts'][lleg] = 6
        else:
            parts = [(8, person, [])]
            e['parts'] = np.full((H, W), 255, np.uint8)
        write_parts_mat(osp.join(root, 'human_parts', img_id + '.mat'),
                        parts, name=img_id)
        gts[img_id] = e
    return gts


@pytest.fixture
def pascal(tmp_path):
    root = str(tmp_path / 'PASCALContext')
    return root, make_pascal(root)


def _check_sample(res, e, mask=(True, ) * 5):
    import cv2
    assert res['tasks'] == TASKS and res['task_mask'] == tuple(mask)
    jpg = cv2.imread(res['img_path'])
    np.testing.assert_array_equal(res['img'], jpg)
    fields = dict(
        gt_seg_map=e['seg'], gt_parts_map=e['parts'], gt_sal_map=e['sal_gt'],
        gt_normal_map=e['normals'], gt_edge_map=e['edge'])
    fill = dict(gt_seg_map=255, gt_parts_map=255, gt_sal_map=255,
                gt_normal_map=0, gt_edge_map=255)
    for (key, exp), labelled in zip(fields.items(), mask):
        if not labelled:
            exp = np.full(exp.shape, fill[key], dtype=exp.dtype)
        np.testing.assert_allclose(res[key], exp, atol=1e-6, err_msg=key)
    assert res['seg_fields'] == list(fields)


def test_full_decoding_pixel_by_pixel(pascal):
    root, gts = pascal
    ds = PascalContextMTDataset(
        data_root=root, split='train', pipeline=PIPELINE)
    assert len(ds) == 3
    assert ds.metainfo['tasks'] == TASKS
    assert ds.metainfo['classes'][15] == 'person'
    assert len(ds.metainfo['palette']) == 21
    assert ds.metainfo['task_classes']['human_parts'] == (
        'background', 'head', 'torso', 'uarm', 'larm', 'uleg', 'lleg')
    assert len(ds.metainfo['task_palettes']['human_parts']) == 7
    info = ds.get_data_info(1)
    assert info['img_id'] == TRAIN[1]
    assert info['ann_paths']['semseg'].endswith(
        osp.join('semseg', 'pascal-context', TRAIN[1] + '.png'))
    assert ds.get_data_info(0)['ann_paths']['semseg'].endswith(
        osp.join('VOC12', TRAIN[0] + '.png'))
    assert info['ann_format']['edge'] == 'pascal_context_edge'
    assert info['seg_fields'] == [] and info['reduce_zero_label'] is False
    for i, img_id in enumerate(TRAIN):
        _check_sample(ds[i], gts[img_id])
    # The second image has no person parts: the whole map is ignored.
    assert (ds[1]['gt_parts_map'] == 255).all()
    assert ds[0]['gt_edge_map'].sum() > 0


def test_partial_labels_from_json_and_test_mode(pascal, tmp_path):
    root, gts = pascal
    mapping = {
        TRAIN[0]: (True, False, False, False, False),
        TRAIN[1]: (False, False, True, True, False),
        TRAIN[2]: (False, True, False, False, True),
    }
    path = str(tmp_path / 'one.json')
    dump_label_mapping(mapping, TASKS, path)
    ds = DATASETS.build(
        dict(type='PascalContextMTDataset', data_root=root,
             label_setting='one', label_mapping=path, pipeline=PIPELINE))
    for i, img_id in enumerate(TRAIN):
        info = ds.get_data_info(i)
        assert info['task_mask'] == mapping[img_id]
        # Unlabelled tasks are not read at all.
        assert [p is not None for p in info['ann_paths'].values()] == list(
            mapping[img_id])
        _check_sample(ds[i], gts[img_id], mapping[img_id])
    assert ds.label_stats()['per_task'] == dict(
        semseg=1, human_parts=1, sal=1, normals=1, edge=1)
    # test mode labels every task, whatever the setting.
    val = PascalContextMTDataset(data_root=root, split='val',
                                 test_mode=True, pipeline=PIPELINE)
    assert [val.get_data_info(i)['task_mask'] for i in range(2)] == [
        (True, ) * 5
    ] * 2
    _check_sample(val[1], gts[VAL[1]])


def test_generated_mapping_and_task_subset(pascal):
    root, _ = pascal
    ds = PascalContextMTDataset(
        data_root=root, tasks=('normals', 'semseg'), label_setting='one',
        mapping_seed=1, pipeline=PIPELINE)
    masks = [ds.get_data_info(i)['task_mask'] for i in range(3)]
    assert all(sum(m) == 1 for m in masks)
    assert sorted(sum(m[k] for m in masks) for k in (0, 1)) == [1, 2]
    assert ds.metainfo['tasks'] == ('normals', 'semseg')
    assert set(ds.metainfo['task_classes']) == {'semseg'}
    res = ds[0]
    assert set(res['seg_fields']) == {'gt_normal_map', 'gt_seg_map'}


@pytest.mark.slow
def test_converter_gives_identical_maps(pascal):
    root, gts = pascal
    conv = _converter()
    raw = PascalContextMTDataset(data_root=root, use_converted=False,
                                 pipeline=PIPELINE)
    assert conv.convert_pascal_context(root, splits=('train', )) == 3
    ds = PascalContextMTDataset(data_root=root, pipeline=PIPELINE)
    info = ds.get_data_info(0)
    assert info['ann_format'] == dict(
        semseg='label_png', human_parts='label_png', sal='threshold_png',
        normals='normals_rgba_png', edge='label_png')
    assert 'converted' in info['ann_paths']['edge']
    for i in range(3):
        a, b = raw[i], ds[i]
        for key in a['seg_fields']:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        # the valid (0, 0, 0) pixel survives the conversion
        assert b['gt_normal_map'][0, 0].tolist() == [-1., -1., -1.]
    # The val split was not converted: 'auto' falls back to the raw files,
    # use_converted=True reports the 2 x 3 missing PNGs.
    val = PascalContextMTDataset(data_root=root, split='val', test_mode=True)
    assert val.get_data_info(0)['ann_format']['edge'] == 'pascal_context_edge'
    with pytest.raises(FileNotFoundError, match='6 file'):
        PascalContextMTDataset(data_root=root, split='val',
                               use_converted=True, test_mode=True)
    import shutil
    shutil.rmtree(osp.join(root, 'converted', 'edge'))
    with pytest.raises(FileNotFoundError, match='use_converted=True'):
        PascalContextMTDataset(data_root=root, use_converted=True)
    # 'auto' falls back to the raw LabelMap for edges only.
    ds = PascalContextMTDataset(data_root=root)
    assert ds.get_data_info(0)['ann_format']['edge'] == 'pascal_context_edge'
    assert ds.get_data_info(0)['ann_format']['normals'] == 'normals_rgba_png'


def _converter():
    return load_tool('tools/dataset_converters/pascal_context_mt.py',
                     'pascal_conv')


def test_converter_normals_round_trip_every_value(tmp_path):
    """Every 8-bit value in every channel, (0, 0, 0) on valid and invalid
    pixels: converted and raw decoding give identical arrays."""
    from diffmtl.datasets.transforms import decode_annotation
    root, img_id = str(tmp_path / 'P'), '2008_000001'
    h, w = 16, 32  # 512 pixels
    i = np.arange(h * w)
    rgb = np.stack([i % 256, (i * 7 + 3) % 256, (i * 13 + 5) % 256],
                   axis=-1).reshape(h, w, 3).astype(np.uint8)
    for c in range(3):
        assert set(np.unique(rgb[..., c])) == set(range(256))
    label = np.full((h, w), 3, np.int32)  # valid class
    label[:, w // 2:] = 1  # invalid class
    rgb[0, 0] = rgb[0, -1] = 0  # (0, 0, 0): valid / invalid pixel
    src = write_png(osp.join(root, 'normals_distill', img_id + '.png'), rgb)
    mat = write_label_map_mat(
        osp.join(root, 'pascal-context', 'trainval', img_id + '.mat'), label)
    out = str(tmp_path / 'conv')
    os.makedirs(osp.join(out, 'normals'))
    conv = _converter()
    conv.convert_one((root, out, img_id, ('normals', ), False))
    dst = osp.join(out, 'normals', img_id + '.png')
    from PIL import Image
    with Image.open(dst) as im:
        assert im.mode == 'RGBA'
    raw = decode_annotation('pascal_normals', src,
                            dict(context_label_path=mat))
    got = decode_annotation('normals_rgba_png', dst)
    assert got.dtype == raw.dtype == np.float32
    np.testing.assert_array_equal(got, raw)
    assert got[0, 0].tolist() == [-1., -1., -1.]  # valid, kept
    assert got[0, -1].tolist() == [0., 0., 0.]  # invalid
    np.testing.assert_array_equal(got[:, :w // 2],
                                  rgb[:, :w // 2] * np.float32(2 / 255) - 1)
    # An RGB PNG without alpha ((0, 0, 0) = invalid) decodes with that
    # convention; other modes are refused.
    legacy = rgb.copy()
    legacy[label == 1] = 0
    old = write_png(str(tmp_path / 'legacy' / 'a.png'), legacy)
    dec = decode_annotation('normals_rgba_png', old)
    assert dec[0, 0].tolist() == [0., 0., 0.]
    np.testing.assert_array_equal(dec[1:, :w // 2], raw[1:, :w // 2])
    grey = write_png(str(tmp_path / 'legacy' / 'g.png'), legacy[..., 0])
    with pytest.raises(ValueError, match='RGBA'):
        decode_annotation('normals_rgba_png', grey)


def test_clear_errors(pascal, tmp_path):
    root, _ = pascal
    with pytest.raises(FileNotFoundError, match='data root not found'):
        PascalContextMTDataset(data_root=str(tmp_path / 'nope'))
    with pytest.raises(KeyError, match="unknown task 'segm'"):
        PascalContextMTDataset(data_root=root, tasks=('segm', ))
    with pytest.raises(KeyError, match="task 'depth' is not provided"):
        PascalContextMTDataset(data_root=root, tasks=('semseg', 'depth'))
    with pytest.raises(ValueError, match='label_setting must be one of'):
        PascalContextMTDataset(data_root=root, label_setting='two')
    os.remove(osp.join(root, 'sal_distill', TRAIN[2] + '.png'))
    with pytest.raises(FileNotFoundError) as e:
        PascalContextMTDataset(data_root=root)
    assert TRAIN[2] in str(e.value) and 'sal_distill' in str(e.value)
    assert '1 file(s)' in str(e.value)
    # ... or treat it as unlabelled when asked to.
    ds = PascalContextMTDataset(data_root=root, missing_ann='unlabelled')
    assert ds.get_data_info(2)['task_mask'] == (True, True, False, True,
                                                True)
    # Mapping that does not match the split.
    bad = str(tmp_path / 'bad.json')
    with open(bad, 'w') as f:
        json.dump({'tasks': list(TASKS),
                   'labels': {TRAIN[0]: ['semseg'], '2010_999999': ['sal']}},
                  f)
    with pytest.raises(ValueError) as e:
        PascalContextMTDataset(data_root=root, label_setting='one',
                               label_mapping=bad, missing_ann='unlabelled')
    msg = str(e.value)
    assert "'2010_999999'" in msg and TRAIN[1] in msg
    assert '2 mapping ids, 3 split ids' in msg
    with pytest.raises(FileNotFoundError, match='label mapping not found'):
        PascalContextMTDataset(data_root=root, label_setting='one',
                               label_mapping='missing.json')
