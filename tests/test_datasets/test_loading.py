# Copyright (c) diffmtl contributors. All rights reserved.
import os.path as osp

import cv2
import numpy as np
import pytest
from mt_format_writers import (write_label_map_mat, write_npy, write_parts_mat,
                               write_png)

from diffmtl.datasets.pascal_utils import (NORMALS_VALID_CONTEXT_IDS,
                                           label_map_boundaries, thin)
from diffmtl.datasets.transforms.loading import (LoadMultiTaskAnnotations,
                                                 LoadMultiTaskImageFromFile,
                                                 decode_annotation)
from diffmtl.registry import TRANSFORMS


def test_registered():
    assert TRANSFORMS.get('LoadMultiTaskAnnotations') is \
        LoadMultiTaskAnnotations
    assert TRANSFORMS.get('LoadMultiTaskImageFromFile') is \
        LoadMultiTaskImageFromFile


# ----------------------------------------------------------------- decoders
def test_label_png_palette_indices(tmp_path):
    arr = np.array([[0, 1, 20], [255, 15, 3]], dtype=np.uint8)
    p = write_png(str(tmp_path / 's.png'), arr, palette=True)
    out = decode_annotation('label_png', p)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, arr)
    # NYUD-v2 40-class PNGs: 1..40 -> 0..39, 0 (unlabelled) -> 255.
    arr40 = np.array([[0, 1, 40]], dtype=np.uint8)
    p = write_png(str(tmp_path / 'n.png'), arr40)
    np.testing.assert_array_equal(
        decode_annotation('label_png_minus1', p), [[255, 0, 39]])


def test_threshold_png(tmp_path):
    p = write_png(str(tmp_path / 'sal.png'),
                  np.array([[0, 127, 128, 255]], dtype=np.uint8))
    np.testing.assert_array_equal(
        decode_annotation('threshold_png', p), [[0, 0, 1, 1]])


def test_normals_png(tmp_path):
    rgb = np.array([[[255, 128, 0], [0, 0, 0]], [[0, 255, 255],
                                                 [1, 0, 0]]],
                   dtype=np.uint8)
    p = write_png(str(tmp_path / 'n.png'), rgb)
    out = decode_annotation('normals_png', p)
    assert out.dtype == np.float32 and out.shape == (2, 2, 3)
    exp = rgb.astype(np.float32) * 2 / 255 - 1
    exp[0, 1] = 0  # (0, 0, 0) is invalid -> zero vector
    np.testing.assert_allclose(out, exp, atol=1e-6)
    # R, G, B are x, y, z (read as RGB, not cv2's BGR).
    np.testing.assert_allclose(out[0, 0], [1., 1 / 255., -1.], atol=1e-6)


def test_depth_png_and_npy(tmp_path):
    d16 = np.array([[0, 1500], [65535, 1]], dtype=np.uint16)
    p = write_png(str(tmp_path / 'd.png'), d16)
    np.testing.assert_allclose(
        decode_annotation('depth_png', p, dict(depth_scale=1000.)),
        [[0., 1.5], [65.535, 0.001]], rtol=1e-6)
    np.testing.assert_allclose(
        decode_annotation('depth_png', p, dict(depth_scale=256.)),
        d16 / 256., rtol=1e-6)
    arr = np.array([[[0.], [2.5]], [[np.nan], [1.]]], dtype=np.float32)
    p = write_npy(str(tmp_path / 'd.npy'), arr)
    out = decode_annotation('depth_npy', p)
    assert out.shape == (2, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0., 2.5], [0., 1.]])


def test_label_and_normals_npy(tmp_path):
    lab = np.array([[-1, 0], [12, 5]], dtype=np.float32)
    p = write_npy(str(tmp_path / 'l.npy'), lab)
    np.testing.assert_array_equal(
        decode_annotation('label_npy', p), [[255, 0], [12, 5]])
    p = write_npy(str(tmp_path / 'bad.npy'), np.array([[-3, 0]]))
    with pytest.raises(ValueError, match='-1..255'):
        decode_annotation('label_npy', p)
    n = np.zeros((2, 4, 3), dtype=np.float32)  # W != 3: unambiguous
    n[0, 0] = [0.6, 0.0, -0.8]
    # channel-first copy (Hugging Face mirror layout) decodes identically
    p1 = write_npy(str(tmp_path / 'n.npy'), n)
    p2 = write_npy(str(tmp_path / 'nc.npy'), n.transpose(2, 0, 1))
    np.testing.assert_array_equal(decode_annotation('normals_npy', p1), n)
    np.testing.assert_array_equal(decode_annotation('normals_npy', p2), n)


def test_pascal_parts_mat(tmp_path):
    h, w = 4, 5
    person = np.zeros((h, w), bool)
    person[:, :3] = True
    head = np.zeros((h, w), bool)
    head[0, :3] = True
    hair = np.zeros((h, w), bool)
    hair[0, 0] = True
    luarm = np.zeros((h, w), bool)
    luarm[1, 0] = True
    rlarm = np.zeros((h, w), bool)
    rlarm[2, 0] = True
    torso = np.zeros((h, w), bool)
    torso[1:3, 1:3] = True
    lfoot = np.zeros((h, w), bool)
    lfoot[3, 2] = True
    ruleg = np.zeros((h, w), bool)
    ruleg[3, 1] = True
    dog = np.zeros((h, w), bool)
    dog[:, 4] = True
    dog_part = np.zeros((h, w), bool)
    dog_part[0, 4] = True
    p = write_parts_mat(
        str(tmp_path / 'parts.mat'),
        [(12, dog, [('head', dog_part)]),  # not a person: ignored
         (15, person, [('head', head), ('hair', hair), ('luarm', luarm),
                       ('rlarm', rlarm), ('torso', torso), ('lfoot', lfoot),
                       ('ruleg', ruleg)])])
    out = decode_annotation('pascal_parts_mat', p)
    exp = np.array([[1, 1, 1, 0, 0],
                    [3, 2, 2, 0, 0],
                    [4, 2, 2, 0, 0],
                    [0, 5, 6, 0, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(out, exp)
    # Later parts overwrite earlier ones.
    p = write_parts_mat(str(tmp_path / 'over.mat'),
                        [(15, person, [('torso', person), ('neck', head),
                                       ('nose', hair)])])
    out = decode_annotation('pascal_parts_mat', p)
    assert out[0, 0] == 1 and out[0, 1] == 2 and out[1, 1] == 2
    assert out[0, 4] == 0


def test_pascal_parts_without_person_parts_is_ignored(tmp_path):
    person = np.ones((3, 4), bool)
    p = write_parts_mat(str(tmp_path / 'a.mat'), [(15, person, [])])
    np.testing.assert_array_equal(
        decode_annotation('pascal_parts_mat', p), np.full((3, 4), 255))
    p = write_parts_mat(str(tmp_path / 'b.mat'), [(7, person, [])])
    np.testing.assert_array_equal(
        decode_annotation('pascal_parts_mat', p), np.full((3, 4), 255))
    p = write_parts_mat(str(tmp_path / 'c.mat'),
                        [(15, person, [('tail', person)])])
    with pytest.raises(ValueError, match="unknown person part 'tail'"):
        decode_annotation('pascal_parts_mat', p)


def _vertical_split(h=7, w=8, col=4, left=3, right=5):
    lab = np.full((h, w), left, dtype=np.int32)
    lab[:, col:] = right
    return lab


def test_pascal_context_edge(tmp_path):
    lab = _vertical_split()
    p = write_label_map_mat(str(tmp_path / 'ctx.mat'), lab)
    out = decode_annotation('pascal_context_edge', p)
    lap = cv2.Laplacian(lab.astype(np.float64), cv2.CV_64F)
    band = np.abs(lap) > 0
    # The raw band is the two columns either side of the class change ...
    assert set(np.nonzero(band.any(0))[0]) == {3, 4}
    assert out.dtype == np.uint8 and set(np.unique(out)) <= {0, 1}
    # ... thinning keeps a subset, one pixel wide on every inner row (the
    # two-pixel band's end on the border row may be eroded).
    assert not (out.astype(bool) & ~band).any()
    np.testing.assert_array_equal(out[1:-1].sum(1), np.ones(lab.shape[0] - 2))
    assert out[[0, -1]].sum() <= 2
    # A constant map has no boundary.
    p = write_label_map_mat(str(tmp_path / 'flat.mat'), np.full((4, 4), 9))
    assert decode_annotation('pascal_context_edge', p).sum() == 0


def test_thin_keeps_lines_and_shrinks_blocks():
    line = np.zeros((5, 7), bool)
    line[2, 1:6] = True
    np.testing.assert_array_equal(thin(line), line)  # already thin
    dot = np.zeros((5, 5), bool)
    dot[2, 2] = True
    np.testing.assert_array_equal(thin(dot), dot)
    block = np.zeros((7, 7), bool)
    block[1:6, 1:6] = True
    out = thin(block)
    assert 1 <= out.sum() <= 2 and not (out & ~block).any()
    bar = np.zeros((6, 12), bool)
    bar[1:5, 1:11] = True  # a 4-pixel-thick bar thins to one line
    out = thin(bar)
    assert out[:, 3:9].sum(0).tolist() == [1] * 6


def test_thin_matches_skimage_if_available():
    import skimage.morphology as skm
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = rng.random((20, 23)) < rng.uniform(0.3, 0.9)
        np.testing.assert_array_equal(thin(m), skm.thin(m))
    lab = np.kron(rng.integers(0, 4, (5, 6)), np.ones((4, 4), int))
    band = np.abs(cv2.Laplacian(lab.astype(np.float64), cv2.CV_64F)) > 0
    np.testing.assert_array_equal(
        label_map_boundaries(lab).astype(bool), skm.thin(band))


def test_laplacian_matches_cv2():
    rng = np.random.default_rng(1)
    lab = rng.integers(0, 400, (9, 11)).astype(np.uint16)
    from diffmtl.datasets.pascal_utils import _laplacian
    np.testing.assert_array_equal(
        _laplacian(lab), cv2.Laplacian(lab, cv2.CV_64F))


def test_pascal_normals_validity(tmp_path):
    valid_id, invalid_id = NORMALS_VALID_CONTEXT_IDS[0], 1
    assert invalid_id not in NORMALS_VALID_CONTEXT_IDS
    lab = np.array([[valid_id, invalid_id], [427, 458]])  # tvmonitor valid
    ctx = write_label_map_mat(str(tmp_path / 'ctx.mat'), lab)
    rgb = np.array([[[10, 20, 30], [40, 50, 60]],
                    [[255, 0, 128], [70, 80, 90]]], dtype=np.uint8)
    p = write_png(str(tmp_path / 'n.png'), rgb)
    out = decode_annotation('pascal_normals', p,
                            dict(context_label_path=ctx))
    exp = rgb.astype(np.float32) * 2 / 255 - 1
    exp[0, 1] = 0
    exp[1, 1] = 0
    np.testing.assert_allclose(out, exp, atol=1e-6)


def test_unknown_decoder():
    with pytest.raises(KeyError, match="unknown annotation format 'nope'"):
        decode_annotation('nope', 'x.png')


# --------------------------------------------------------------- transforms
def test_load_image_png_bgr_and_npy(tmp_path):
    rgb = np.zeros((3, 4, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # red
    rgb[1, 2] = [1, 2, 3]
    p = write_png(str(tmp_path / 'i.png'), rgb)
    res = LoadMultiTaskImageFromFile()(dict(img_path=p))
    assert res['img'].dtype == np.uint8
    np.testing.assert_array_equal(res['img'], rgb[..., ::-1])  # BGR
    assert res['img_shape'] == (3, 4) and res['ori_shape'] == (3, 4)
    img01 = rgb.astype(np.float32) / 255.
    p = write_npy(str(tmp_path / 'i.npy'), img01)
    res = LoadMultiTaskImageFromFile()(dict(img_path=p))
    assert res['img'].dtype == np.float32
    np.testing.assert_allclose(res['img'], rgb[..., ::-1], atol=1e-4)
    p = write_npy(str(tmp_path / 'c.npy'), img01.transpose(2, 0, 1))
    res = LoadMultiTaskImageFromFile()(dict(img_path=p))
    np.testing.assert_allclose(res['img'], rgb[..., ::-1], atol=1e-4)
    p = write_npy(str(tmp_path / 'big.npy'), rgb.astype(np.float32))
    with pytest.raises(ValueError, match='npy_scale=1.0'):
        LoadMultiTaskImageFromFile()(dict(img_path=p))
    res = LoadMultiTaskImageFromFile(npy_scale=1.)(dict(img_path=p))
    np.testing.assert_array_equal(res['img'], rgb[..., ::-1])
    with pytest.raises(FileNotFoundError, match='missing.png'):
        LoadMultiTaskImageFromFile()(
            dict(img_path=str(tmp_path / 'missing.png')))


def test_load_annotations_fills_unlabelled(tmp_path):
    seg = np.array([[1, 2, 3], [4, 5, 255]], dtype=np.uint8)
    ps = write_png(str(tmp_path / 'seg.png'), seg)
    depth = np.array([[1., 0., 2.], [3., 4., 5.]], dtype=np.float32)
    pd = write_npy(str(tmp_path / 'd.npy'), depth)
    results = dict(
        img_path='x',
        img_shape=(2, 3),
        tasks=('semseg', 'normals', 'depth', 'edge'),
        task_mask=[True, False, True, False],
        ann_paths=dict(semseg=ps, normals=None, depth=pd, edge=None),
        ann_format=dict(
            semseg='label_png', normals=None, depth='depth_npy', edge=None),
        seg_fields=[])
    out = LoadMultiTaskAnnotations()(results)
    np.testing.assert_array_equal(out['gt_seg_map'], seg)
    np.testing.assert_array_equal(out['gt_depth_map'], depth)
    assert out['gt_normal_map'].shape == (2, 3, 3)
    assert out['gt_normal_map'].dtype == np.float32
    assert not out['gt_normal_map'].any()
    assert out['gt_edge_map'].dtype == np.uint8
    assert (out['gt_edge_map'] == 255).all()
    assert out['seg_fields'] == [
        'gt_seg_map', 'gt_normal_map', 'gt_depth_map', 'gt_edge_map'
    ]
    assert out['task_mask'] == (True, False, True, False)
    assert out['tasks'] == ('semseg', 'normals', 'depth', 'edge')


def test_load_annotations_resizes_and_remaps(tmp_path):
    seg = np.array([[1, 2], [3, 0]], dtype=np.uint8)
    ps = write_png(str(tmp_path / 'seg.png'), seg)
    res = LoadMultiTaskAnnotations(resize_mismatched=True)(
        dict(
            img_shape=(4, 4),
            tasks=('semseg', ),
            task_mask=(True, ),
            ann_paths=dict(semseg=ps),
            ann_format=dict(semseg='label_png'),
            label_map={1: 0, 2: 255}))
    exp = np.kron(np.array([[0, 255], [3, 0]]), np.ones((2, 2)))
    np.testing.assert_array_equal(res['gt_seg_map'], exp)


def test_load_annotations_errors(tmp_path):
    with pytest.raises(KeyError, match="task 'sal' is labelled"):
        LoadMultiTaskAnnotations()(
            dict(img_path='a.jpg', img_shape=(2, 2), tasks=('sal', ),
                 task_mask=(True, ), ann_paths=dict(sal=None),
                 ann_format=dict(sal='label_png')))
    with pytest.raises(FileNotFoundError, match='nofile.png'):
        LoadMultiTaskAnnotations()(
            dict(img_path='a.jpg', img_shape=(2, 2), tasks=('sal', ),
                 task_mask=(True, ),
                 ann_paths=dict(sal=osp.join(str(tmp_path), 'nofile.png')),
                 ann_format=dict(sal='label_png')))


# ------------------------------------------------------------ bad inputs
def _one_task_results(task, path, fmt, shape, **extra):
    return dict(img_path='scene.png', img_shape=shape, tasks=(task, ),
                task_mask=(True, ), ann_paths={task: path},
                ann_format={task: fmt}, seg_fields=[], **extra)


def test_uint16_label_png_is_not_wrapped(tmp_path):
    lab = np.array([[258, 1], [2, 255]], dtype=np.uint16)
    p = write_png(str(tmp_path / 'seg16.png'), lab)
    with pytest.raises(ValueError) as err:
        decode_annotation('label_png', p)
    msg = str(err.value)
    assert 'seg16.png' in msg and '[258]' in msg and '16-bit' in msg
    with pytest.raises(ValueError, match=r'seg16\.png.*\[258\]'):
        decode_annotation('label_png_minus1', p)
    # a 16-bit PNG whose values all fit 0..255 is read exactly
    ok = np.array([[0, 1], [2, 255]], dtype=np.uint16)
    p = write_png(str(tmp_path / 'ok16.png'), ok)
    out = decode_annotation('label_png', p)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, ok)


def test_label_values_outside_classes_name_file_and_values(tmp_path):
    seg = np.array([[0, 5, 255], [7, 1, 5]], dtype=np.uint8)
    p = write_png(str(tmp_path / 'seg.png'), seg)
    load = LoadMultiTaskAnnotations()
    with pytest.raises(ValueError) as err:
        load(_one_task_results('semseg', p, 'label_png', (2, 3),
                               num_classes=dict(semseg=5)))
    msg = str(err.value)
    assert "task 'semseg'" in msg and 'seg.png' in msg
    assert '[5, 7]' in msg and '[0, 5)' in msg and 'scene.png' in msg
    # 255 (ignore) and in-range values pass
    out = load(_one_task_results('semseg', p, 'label_png', (2, 3),
                                 num_classes=dict(semseg=8)))
    np.testing.assert_array_equal(out['gt_seg_map'], seg)
    # saliency / boundary maps are 0/1 (+ 255)
    sal = np.array([[0, 1, 2]], dtype=np.uint8)
    p = write_png(str(tmp_path / 'sal.png'), sal)
    with pytest.raises(ValueError, match=r"'sal'.*sal\.png.*\[2\]"):
        load(_one_task_results('sal', p, 'label_png', (1, 3)))
    # human parts use the spec's 7 default classes without num_classes
    parts = np.array([[0, 6, 7]], dtype=np.uint8)
    p = write_png(str(tmp_path / 'parts.png'), parts)
    with pytest.raises(ValueError, match=r'parts\.png.*\[7\].*\[0, 7\)'):
        load(_one_task_results('human_parts', p, 'label_png', (1, 3)))
    # the check runs after label_map (mmseg class subsets)
    p = write_png(str(tmp_path / 'm.png'), np.array([[0, 9]], np.uint8))
    out = load(_one_task_results('semseg', p, 'label_png', (1, 2),
                                 num_classes=dict(semseg=2),
                                 label_map={9: 1}))
    np.testing.assert_array_equal(out['gt_seg_map'], [[0, 1]])


def test_greyscale_normals_png_is_refused(tmp_path):
    grey = np.array([[0, 128], [255, 7]], dtype=np.uint8)
    p = write_png(str(tmp_path / 'n_grey.png'), grey)
    for fmt, results in (('normals_png', {}),
                         ('pascal_normals',
                          dict(context_label_path='unused.mat'))):
        with pytest.raises(ValueError) as err:
            decode_annotation(fmt, p, results)
        msg = str(err.value)
        assert 'n_grey.png' in msg and '3 channels' in msg
        assert "mode 'L'" in msg
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    p = write_png(str(tmp_path / 'n_rgba.png'), rgba)
    with pytest.raises(ValueError, match=r"n_rgba\.png.*mode 'RGBA'"):
        decode_annotation('normals_png', p)


def test_depth_png_bit_depth_and_scale(tmp_path):
    d8 = np.array([[0, 200], [255, 1]], dtype=np.uint8)
    p = write_png(str(tmp_path / 'd8.png'), d8)
    with pytest.raises(ValueError) as err:
        decode_annotation('depth_png', p, dict(depth_scale=1000.))
    msg = str(err.value)
    assert 'd8.png' in msg and '16-bit' in msg and '8-bit uint8' in msg
    d16 = np.array([[0, 1500]], dtype=np.uint16)
    p = write_png(str(tmp_path / 'd16.png'), d16)
    for bad in (0, -1., float('nan'), 'm'):
        with pytest.raises(ValueError, match=r'd16\.png.*depth_scale'):
            decode_annotation('depth_png', p, dict(depth_scale=bad))
    np.testing.assert_allclose(
        decode_annotation('depth_png', p, dict(depth_scale=1000.)),
        [[0., 1.5]])
    # integer depth .npy (millimetres?) is refused, float is read
    p = write_npy(str(tmp_path / 'd_mm.npy'), d16.astype(np.int32))
    with pytest.raises(ValueError, match=r'd_mm\.npy.*dtype int32'):
        decode_annotation('depth_npy', p)


def test_16bit_threshold_png_is_refused(tmp_path):
    p = write_png(str(tmp_path / 'sal16.png'),
                  np.array([[0, 40000]], dtype=np.uint16))
    with pytest.raises(ValueError, match=r'sal16\.png.*8-bit.*16-bit'):
        decode_annotation('threshold_png', p)


@pytest.mark.parametrize('ann_shape', [(3, 4), (2, 5)])
def test_size_mismatch_is_an_error_unless_resizing_is_allowed(
        tmp_path, ann_shape):
    seg = np.zeros(ann_shape, dtype=np.uint8)
    seg[:, 1:] = 1
    p = write_png(str(tmp_path / 'seg.png'), seg)
    results = _one_task_results('semseg', p, 'label_png', (4, 6),
                                num_classes=dict(semseg=2))
    with pytest.raises(ValueError) as err:
        LoadMultiTaskAnnotations()(dict(results))
    msg = str(err.value)
    assert 'seg.png' in msg and 'scene.png' in msg
    assert f'{ann_shape[0]}x{ann_shape[1]} (HxW)' in msg and '4x6' in msg
    assert 'resize_mismatched=True' in msg
    out = LoadMultiTaskAnnotations(resize_mismatched=True)(dict(results))
    assert out['gt_seg_map'].shape == (4, 6)
    assert set(np.unique(out['gt_seg_map'])) == {0, 1}
    # normals are resized bicubically to the image as well
    n = np.zeros(ann_shape + (3, ), np.float32)
    n[..., 2] = 1.
    pn = write_npy(str(tmp_path / 'n.npy'), n)
    out = LoadMultiTaskAnnotations(resize_mismatched=True)(
        _one_task_results('normals', pn, 'normals_npy', (4, 6)))
    assert out['gt_normal_map'].shape == (4, 6, 3)
    np.testing.assert_allclose(out['gt_normal_map'][..., 2], 1., atol=1e-5)
    assert 'resize_mismatched=True' in repr(
        LoadMultiTaskAnnotations(resize_mismatched=True))


def test_transposed_annotation_is_never_resized(tmp_path):
    depth = np.ones((6, 4), dtype=np.float32)
    p = write_npy(str(tmp_path / 'depth_t.npy'), depth)
    results = _one_task_results('depth', p, 'depth_npy', (4, 6))
    for load in (LoadMultiTaskAnnotations(),
                 LoadMultiTaskAnnotations(resize_mismatched=True)):
        with pytest.raises(ValueError) as err:
            load(dict(results))
        msg = str(err.value)
        assert 'depth_t.npy' in msg and 'transposed' in msg
        assert '6x4 (HxW)' in msg and '4x6' in msg
