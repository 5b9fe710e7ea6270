# Copyright (c) diffmtl contributors. All rights reserved.
"""Tests of the multi-task geometric transforms, photometric distortion in a
multi-task pipeline, and PackMultiTaskInputs."""
import copy

import numpy as np
import pytest
import torch

from diffmtl.datasets.transforms import (MultiTaskPad, MultiTaskRandomCrop,
                                         MultiTaskRandomFlip,
                                         MultiTaskRandomResize,
                                         MultiTaskRandomScaleCrop,
                                         PackMultiTaskInputs)
from diffmtl.registry import TRANSFORMS
from diffmtl.structures import get_task_spec

ALL_TASKS = ('semseg', 'human_parts', 'sal', 'normals', 'edge', 'depth')


def make_results(h=6, w=8, tasks=ALL_TASKS, mask=None, seed=0):
    """A results dict as ``LoadMultiTaskAnnotations`` leaves it."""
    rng = np.random.default_rng(seed)
    mask = tuple(mask) if mask is not None else (True, ) * len(tasks)
    results = dict(img=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                   img_path=f'img_{seed}.png',
                   img_id=f'img_{seed}',
                   ori_shape=(h, w),
                   img_shape=(h, w),
                   tasks=tuple(tasks),
                   task_mask=mask,
                   seg_fields=[])
    for task, labelled in zip(tasks, mask):
        spec = get_task_spec(task)
        shape = (h, w) if spec.gt_channels == 1 else (h, w, 3)
        dtype = np.uint8 if spec.discrete else np.float32
        if not labelled:
            arr = np.full(shape, spec.pad_value, dtype=dtype)
        elif spec.kind == 'segmentation':
            arr = rng.integers(0, 5, shape).astype(np.uint8)
            arr[0, 0] = 255
        elif spec.discrete:  # saliency / boundary
            arr = rng.integers(0, 2, shape).astype(np.uint8)
            arr[-1, -1] = 255
        elif spec.kind == 'normals':
            arr = rng.uniform(-1, 1, shape).astype(np.float32)
            arr[0, 0] = 0  # invalid pixel
        else:  # depth
            arr = rng.uniform(0.5, 10, shape).astype(np.float32)
            arr[0, 0] = 0
        results[spec.results_key] = arr
        results['seg_fields'].append(spec.results_key)
    return results


def key(task):
    return get_task_spec(task).results_key


# ---------------------------------------------------------------- flip
def test_horizontal_flip_mirrors_everything_and_negates_normals_x():
    res = make_results()
    orig = copy.deepcopy(res)
    out = MultiTaskRandomFlip(prob=1.0)(res)
    assert out['flip'] is True and out['flip_direction'] == 'horizontal'
    np.testing.assert_array_equal(out['img'], orig['img'][:, ::-1])
    for task in ALL_TASKS:
        if task == 'normals':
            continue
        np.testing.assert_array_equal(out[key(task)], orig[key(task)][:, ::-1])
    n0, n1 = orig[key('normals')], out[key('normals')]
    np.testing.assert_array_equal(n1[..., 0], -n0[:, ::-1, 0])
    np.testing.assert_array_equal(n1[..., 1:], n0[:, ::-1, 1:])
    # the invalid (zero) vector moved to (0, W-1) and has no -0.0
    assert not np.signbit(n1[0, -1]).any() and (n1[0, -1] == 0).all()


def test_vertical_and_diagonal_flip_negate_y_and_both():
    res = make_results(seed=1)
    n0 = res[key('normals')].copy()
    seg0 = res[key('semseg')].copy()
    out = MultiTaskRandomFlip(prob=1.0, direction='vertical')(res)
    n1 = out[key('normals')]
    np.testing.assert_array_equal(n1[..., 0], n0[::-1, :, 0])
    np.testing.assert_array_equal(n1[..., 1], -n0[::-1, :, 1])
    np.testing.assert_array_equal(n1[..., 2], n0[::-1, :, 2])
    np.testing.assert_array_equal(out[key('semseg')], seg0[::-1])

    res = make_results(seed=1)
    out = MultiTaskRandomFlip(prob=1.0, direction='diagonal')(res)
    n1 = out[key('normals')]
    np.testing.assert_array_equal(n1[..., :2], -n0[::-1, ::-1, :2])
    np.testing.assert_array_equal(n1[..., 2], n0[::-1, ::-1, 2])


def test_flip_probability_zero_and_split():
    res = make_results()
    orig = copy.deepcopy(res)
    out = MultiTaskRandomFlip(prob=0.0)(res)
    assert out['flip'] is False and out['flip_direction'] is None
    np.testing.assert_array_equal(out['img'], orig['img'])
    np.testing.assert_array_equal(out[key('normals')], orig[key('normals')])
    np.random.seed(0)
    flip = MultiTaskRandomFlip(prob=0.5)
    n = sum(flip(make_results())['flip'] for _ in range(200))
    assert 70 < n < 130
    with pytest.raises(ValueError, match='direction'):
        MultiTaskRandomFlip(direction='sideways')
    with pytest.raises(ValueError, match='sum to'):
        MultiTaskRandomFlip(prob=[0.8, 0.5],
                            direction=['horizontal', 'vertical'])


# -------------------------------------------------------------- resize
def test_resize_ratio_divides_depth_and_keeps_labels_nearest():
    res = make_results(h=6, w=8)
    orig = copy.deepcopy(res)
    out = MultiTaskRandomResize(ratio_range=(2.0, 2.0))(res)
    assert out['img'].shape == (12, 16, 3)
    assert out['img_shape'] == (12, 16)
    assert out['scale_factor'] == (2.0, 2.0)
    # nearest x2 upsampling repeats each pixel twice per axis
    up = lambda a: a.repeat(2, axis=0).repeat(2, axis=1)  # noqa: E731
    np.testing.assert_array_equal(out[key('semseg')], up(orig[key('semseg')]))
    np.testing.assert_array_equal(out[key('edge')], up(orig[key('edge')]))
    # normals nearest, not renormalised
    np.testing.assert_array_equal(out[key('normals')],
                                  up(orig[key('normals')]))
    # depth: nearest, then divided by the scale; invalid zeros stay zero
    np.testing.assert_allclose(out[key('depth')],
                               up(orig[key('depth')]) / 2.0,
                               rtol=1e-6)
    assert out[key('depth')][0, 0] == 0
    assert out[key('depth')].dtype == np.float32
    assert out[key('semseg')].dtype == np.uint8


def test_resize_downscale_multiplies_depth_and_fixed_scale():
    res = make_results(h=8, w=8)
    res[key('depth')][:] = 3.0
    out = MultiTaskRandomResize(ratio_range=(0.5, 0.5))(res)
    assert out[key('depth')].shape == (4, 4)
    np.testing.assert_allclose(out[key('depth')], 6.0)

    # fixed (w, h) target without keeping the ratio: geometric-mean zoom
    res = make_results(h=8, w=8)
    res[key('depth')][:] = 4.0
    out = MultiTaskRandomResize(scale=(32, 8), keep_ratio=False)(res)
    assert out['img'].shape[:2] == (8, 32)
    assert out['scale_factor'] == (4.0, 1.0)
    np.testing.assert_allclose(out[key('depth')], 4.0 / 2.0)

    # keep_ratio fits inside the target
    res = make_results(h=8, w=16)
    out = MultiTaskRandomResize(scale=(64, 16), keep_ratio=True)(res)
    assert out['img'].shape[:2] == (16, 32)
    assert all(out[k].shape[:2] == (16, 32) for k in out['seg_fields'])

    # scale_depth=False leaves values alone
    res = make_results(h=8, w=8)
    res[key('depth')][:] = 4.0
    out = MultiTaskRandomResize(ratio_range=(2.0, 2.0), scale_depth=False)(res)
    np.testing.assert_allclose(out[key('depth')], 4.0)


def test_resize_random_ratio_and_choice():
    np.random.seed(3)
    t = MultiTaskRandomResize(ratio_range=(0.5, 2.0))
    sizes = set()
    for _ in range(10):
        res = make_results(h=20, w=30)
        res[key('depth')][:] = 6.0
        out = t(res)
        h, w = out['img'].shape[:2]
        sizes.add((h, w))
        assert 10 <= h <= 40 and 15 <= w <= 60
        # the depth factor is the sampled ratio s, with int(20 s) = h
        d = out[key('depth')]
        assert (d == d[0, 0]).all()
        assert 6.0 * 20 / (h + 1) - 1e-5 < d[0, 0] <= 6.0 * 20 / h + 1e-5
    assert len(sizes) > 5
    t = MultiTaskRandomResize(scale=[(8, 8), (16, 16)], keep_ratio=False)
    got = {t(make_results(h=4, w=4))['img'].shape[:2] for _ in range(20)}
    assert got == {(8, 8), (16, 16)}
    with pytest.raises(ValueError):
        MultiTaskRandomResize()


def test_resize_label_interp_override_by_kind():
    res = make_results(h=2, w=2)
    res[key('normals')][:] = 0
    res[key('normals')][:, 1, 0] = 1.0
    out = MultiTaskRandomResize(ratio_range=(2.0, 2.0),
                                label_interp=dict(normals='bilinear'))(res)
    row = out[key('normals')][0, :, 0]
    # bilinear produces values strictly between 0 and 1, nearest would not
    assert ((row > 0) & (row < 1)).any()
    with pytest.raises(ValueError, match='interpolation'):
        MultiTaskRandomResize(ratio_range=(1, 1), label_interp=dict(x='cubic'))


def test_unknown_seg_field_is_reported():
    res = make_results()
    res['gt_mystery_map'] = np.zeros((6, 8), np.uint8)
    res['seg_fields'].append('gt_mystery_map')
    with pytest.raises(KeyError, match='gt_mystery_map'):
        MultiTaskRandomFlip(prob=1.0)(res)
    res = make_results()
    res['seg_fields'].append('gt_missing_map')
    with pytest.raises(KeyError, match='gt_missing_map'):
        MultiTaskPad(size=10)(res)


# ---------------------------------------------------------------- crop
def _crop_results():
    """10x20: left half class 0; right half columns alternate 1 / 2."""
    res = make_results(h=10, w=20, seed=2)
    seg = np.zeros((10, 20), np.uint8)
    seg[:, 10::2] = 1
    seg[:, 11::2] = 2
    res[key('semseg')] = seg
    return res


def test_crop_cuts_every_field_at_the_same_window():
    np.random.seed(0)
    res = make_results(h=10, w=12, seed=4)
    orig = copy.deepcopy(res)
    out = MultiTaskRandomCrop(crop_size=(4, 5))(res)
    y1, y2, x1, x2 = out['crop_bbox']
    assert (y2 - y1, x2 - x1) == (4, 5)
    assert out['img_shape'] == (4, 5)
    np.testing.assert_array_equal(out['img'], orig['img'][y1:y2, x1:x2])
    for k in orig['seg_fields']:
        np.testing.assert_array_equal(out[k], orig[k][y1:y2, x1:x2])


def test_crop_cat_max_ratio_rejects_dominated_windows():
    t = MultiTaskRandomCrop(crop_size=(10, 10), cat_max_ratio=0.75)
    starts = []
    for seed in range(60):
        np.random.seed(seed)
        out = t(_crop_results())
        y1, y2, x1, x2 = out['crop_bbox']
        starts.append(x1)
        seg = out[key('semseg')]
        _, cnt = np.unique(seg[seg != 255], return_counts=True)
        assert len(cnt) > 1 and cnt.max() / cnt.sum() < 0.75
    # class 0 covers (10 - x1) / 10 of the window: only x1 >= 3 passes
    assert min(starts) >= 3
    # without the check windows dominated by class 0 do occur
    t = MultiTaskRandomCrop(crop_size=(10, 10))
    starts = []
    for seed in range(60):
        np.random.seed(seed)
        starts.append(t(_crop_results())['crop_bbox'][2])
    assert min(starts) < 3


class _CountingCrop(MultiTaskRandomCrop):

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0

    def _random_bbox(self, h, w):
        self.calls += 1
        return super()._random_bbox(h, w)


def test_crop_gives_up_after_max_tries_and_skips_unlabelled_maps():
    # one pixel of class 1 in a sea of class 0: no 4x4 window passes
    res = make_results(h=8, w=8)
    seg = np.zeros((8, 8), np.uint8)
    seg[7, 7] = 1
    res[key('semseg')] = seg
    t = _CountingCrop(crop_size=4, cat_max_ratio=0.75)
    t(res)
    assert t.calls == 11  # first window + 10 retries, last one unchecked
    # an all-ignore (unlabelled) semseg map cannot pass: no retries
    res = make_results(h=8, w=8, mask=(False, ) + (True, ) * 5)
    assert (res[key('semseg')] == 255).all()
    t = _CountingCrop(crop_size=4, cat_max_ratio=0.75)
    out = t(res)
    assert t.calls == 1 and out['img'].shape[:2] == (4, 4)


def test_crop_keeps_short_sides_whole():
    res = make_results(h=5, w=30)
    out = MultiTaskRandomCrop(crop_size=(8, 8))(res)
    assert out['img'].shape[:2] == (5, 8)
    assert all(out[k].shape[:2] == (5, 8) for k in out['seg_fields'])


# ----------------------------------------------------------------- pad
def test_pad_uses_each_tasks_own_value_bottom_right():
    res = make_results(h=5, w=6)
    orig = copy.deepcopy(res)
    out = MultiTaskPad(size=(8, 10), pad_val=7)(res)
    assert out['padding_size'] == (0, 4, 0, 3)
    assert out['img_shape'] == (8, 10) and out['pad_shape'] == (8, 10)
    assert (out['img'][5:] == 7).all() and (out['img'][:, 6:] == 7).all()
    np.testing.assert_array_equal(out['img'][:5, :6], orig['img'])
    expected = dict(semseg=255,
                    human_parts=255,
                    sal=255,
                    edge=255,
                    normals=0.0,
                    depth=0.0)
    for task, value in expected.items():
        arr = out[key(task)]
        assert arr.shape[:2] == (8, 10)
        assert arr.dtype == orig[key(task)].dtype
        np.testing.assert_array_equal(arr[:5, :6], orig[key(task)])
        assert (arr[5:] == value).all() and (arr[:, 6:] == value).all()


def test_pad_centred_like_reference_and_overrides():
    res = make_results(h=5, w=6)
    orig = copy.deepcopy(res)
    out = MultiTaskPad(size=(8, 10), center=True,
                       seg_pad_val=dict(depth=-1.0))(res)
    # dh = 3 -> top 1, bottom 2; dw = 4 -> left 2, right 2
    assert out['padding_size'] == (2, 2, 1, 2)
    np.testing.assert_array_equal(out[key('semseg')][1:6, 2:8],
                                  orig[key('semseg')])
    assert (out[key('semseg')][0] == 255).all()
    assert (out[key('semseg')][:, :2] == 255).all()
    assert (out[key('depth')][0] == -1).all()
    np.testing.assert_array_equal(out[key('normals')][1:6, 2:8],
                                  orig[key('normals')])
    assert (out[key('normals')][:, -2:] == 0).all()
    # a second pad adds to the recorded padding; never crops
    out = MultiTaskPad(size_divisor=4)(out)
    assert out['img'].shape[:2] == (8, 12)
    assert out['padding_size'] == (2, 4, 1, 2)
    out = MultiTaskPad(size=(4, 4))(out)
    assert out['img'].shape[:2] == (8, 12)
    with pytest.raises(ValueError, match='exactly one'):
        MultiTaskPad()


# ---------------------------------------------------------- scale crop
def test_scale_crop_zooms_divides_depth_and_interpolates_normals():
    h, w = 9, 13
    res = make_results(h=h, w=w, seed=5)
    res[key('depth')][:] = 3.0
    cols = np.arange(w, dtype=np.float32)
    normals = np.zeros((h, w, 3), np.float32)
    normals[..., 0] = 0.1 * cols  # a linear ramp in x
    normals[..., 2] = -1.0
    res[key('normals')] = normals
    seg0 = res[key('semseg')].copy()
    np.random.seed(1)
    out = MultiTaskRandomScaleCrop(scales=(2.0, ))(res)
    assert out['scale_crop'] == 2.0
    y1, y2, x1, x2 = out['crop_bbox']
    assert (y2 - y1, x2 - x1) == (4, 6)
    assert out['img'].shape == (h, w, 3) and out['img'].dtype == np.uint8
    np.testing.assert_allclose(out[key('depth')], 1.5)
    # bilinear, align_corners: the ramp is resampled exactly
    expect = 0.1 * (x1 + np.arange(w) * (x2 - x1 - 1) / (w - 1))
    np.testing.assert_allclose(out[key('normals')][..., 0],
                               np.broadcast_to(expect, (h, w)),
                               atol=1e-5)
    np.testing.assert_allclose(out[key('normals')][..., 2], -1.0)
    # labels nearest: only values of the cropped window
    window = seg0[y1:y2, x1:x2]
    assert set(np.unique(out[key('semseg')])) <= set(np.unique(window))
    assert out[key('semseg')].dtype == np.uint8


def test_scale_crop_identity_at_scale_one():
    res = make_results(h=7, w=9)
    orig = copy.deepcopy(res)
    out = MultiTaskRandomScaleCrop(scales=(1.0, ))(res)
    np.testing.assert_array_equal(out['img'], orig['img'])
    for k in orig['seg_fields']:
        np.testing.assert_allclose(out[k], orig[k], atol=1e-6)
    with pytest.raises(ValueError):
        MultiTaskRandomScaleCrop(scales=(0.5, ))


# -------------------------------------------------------- photometric
def test_photometric_distortion_only_touches_the_image():
    np.random.seed(0)
    res = make_results(h=12, w=16)
    orig = copy.deepcopy(res)
    out = TRANSFORMS.build(dict(type='PhotoMetricDistortion'))(res)
    assert out['img'].dtype == np.uint8
    assert not np.array_equal(out['img'], orig['img'])
    for k in orig['seg_fields']:
        np.testing.assert_array_equal(out[k], orig[k])


# ---------------------------------------------------------------- pack
def test_pack_dtypes_values_and_meta():
    res = make_results(h=5, w=7)
    res['flip'] = False
    res['flip_direction'] = None
    res['scale_factor'] = (1.0, 1.0)
    orig = copy.deepcopy(res)
    packed = PackMultiTaskInputs()(res)
    inputs, ds = packed['inputs'], packed['data_samples']
    assert inputs.shape == (3, 5, 7) and inputs.dtype == torch.uint8
    np.testing.assert_array_equal(inputs.numpy(),
                                  orig['img'].transpose(2, 0, 1))
    for task in ALL_TASKS:
        spec = get_task_spec(task)
        data = ds.get(spec.gt_field).data
        assert data.shape == (spec.gt_channels, 5, 7)
        assert data.dtype == (torch.int64 if spec.discrete else torch.float32)
        arr = orig[spec.results_key]
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        np.testing.assert_array_equal(data.numpy(), arr)
    assert ds.gt_sem_seg.data.dtype == torch.int64
    meta = ds.metainfo
    assert meta['tasks'] == ALL_TASKS
    assert meta['task_mask'] == (True, ) * 6
    assert meta['img_path'] == 'img_0.png' and meta['img_id'] == 'img_0'
    assert meta['ori_shape'] == (5, 7) and meta['flip'] is False
    assert 'padding_size' not in meta and 'pad_shape' not in meta
    packed = PackMultiTaskInputs(meta_keys=('img_id', ))(make_results())
    assert set(packed['data_samples'].metainfo) == {'img_id'}


def test_pack_fills_missing_unlabelled_tasks_and_rejects_labelled():
    res = make_results(h=4,
                       w=5,
                       tasks=('semseg', 'depth', 'normals'),
                       mask=(True, False, False))
    del res[key('depth')], res[key('normals')]
    res['seg_fields'] = [key('semseg')]
    res['task_mask'] = np.array([1, 0, 0])
    ds = PackMultiTaskInputs()(res)['data_samples']
    assert ds.metainfo['task_mask'] == (True, False, False)
    assert (ds.gt_depth.data
            == 0).all() and ds.gt_depth.data.shape == (1, 4, 5)
    assert ds.gt_normals.data.shape == (3, 4, 5)
    res = make_results(h=4, w=5, tasks=('semseg', 'depth'))
    del res[key('depth')]
    with pytest.raises(KeyError, match='depth'):
        PackMultiTaskInputs()(res)


def test_pack_checks_shapes():
    res = make_results(h=4, w=5)
    res[key('sal')] = np.zeros((4, 6), np.uint8)
    with pytest.raises(ValueError, match='gt_sal_map'):
        PackMultiTaskInputs()(res)


def test_pad_image_only_for_test_pipelines_then_pack():
    res = make_results(h=5, w=6)
    orig = copy.deepcopy(res)
    out = MultiTaskPad(size=(8, 8), center=True, pad_gt=False)(res)
    assert out['img'].shape[:2] == (8, 8)
    assert out['padding_size'] == (1, 1, 1, 2)
    for k in orig['seg_fields']:
        np.testing.assert_array_equal(out[k], orig[k])
    del out[key('depth')]
    out['task_mask'] = (True, ) * 5 + (False, )
    ds = PackMultiTaskInputs()(out)['data_samples']
    assert ds.gt_sem_seg.shape == (5, 6)
    # the placeholder of an unlabelled task matches the other maps
    assert ds.gt_depth.shape == (5, 6) and (ds.gt_depth.data == 0).all()
    assert ds.metainfo['padding_size'] == (1, 1, 1, 2)
    # any other size is an error
    res = make_results(h=5, w=6)
    out = MultiTaskPad(size=(8, 8), pad_gt=False)(res)
    out[key('sal')] = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match='gt_sal_map'):
        PackMultiTaskInputs()(out)


def test_crop_check_same_for_uint8_and_wider_label_maps():
    t = MultiTaskRandomCrop(crop_size=(10, 10), cat_max_ratio=0.75)
    for seed in range(20):
        res8, res64 = _crop_results(), _crop_results()
        res64[key('semseg')] = res64[key('semseg')].astype(np.int64)
        np.random.seed(seed)
        box8 = t(res8)['crop_bbox']
        np.random.seed(seed)
        box64 = t(res64)['crop_bbox']
        assert box8 == box64 and box8[2] >= 3


def _unlabelled_crop_results(tmp_path, write=True):
    """``_crop_results`` with semseg unlabelled (all 255 in results) but
    its labels on disk, as ``PascalContextMTDataset`` records them."""
    import os.path as osp

    from PIL import Image
    seg = _crop_results()[key('semseg')]
    res = make_results(h=10, w=20, seed=2, mask=(False, ) + (True, ) * 5)
    assert (res[key('semseg')] == 255).all()
    path = str(tmp_path / 'seg.png')
    if write:
        Image.fromarray(seg).save(path)
    res['all_ann_paths'] = {t: None for t in ALL_TASKS}
    res['all_ann_paths']['semseg'] = path
    res['ann_paths'] = {t: None for t in ALL_TASKS}
    res['ann_format'] = {t: 'label_png' for t in ALL_TASKS}
    assert osp.isfile(path) == write
    return res, seg


def _passes(seg, bbox, ratio=0.75):
    y1, y2, x1, x2 = bbox
    win = seg[y1:y2, x1:x2]
    _, cnt = np.unique(win[win != 255], return_counts=True)
    return len(cnt) > 1 and cnt.max() / cnt.sum() < ratio


def test_crop_cat_labels_default_skips_unlabelled_reference_reads_them(
        tmp_path):
    # default ('labelled', diffmtl): the unlabelled map is all 255, so no
    # window is checked and dominated windows occur
    t = _CountingCrop(crop_size=(10, 10), cat_max_ratio=0.75)
    assert t.cat_labels == 'labelled'
    starts = []
    for seed in range(60):
        np.random.seed(seed)
        t.calls = 0
        res, _ = _unlabelled_crop_results(tmp_path)
        out = t(res)
        assert t.calls == 1
        starts.append(out['crop_bbox'][2])
        assert (out[key('semseg')] == 255).all()
    assert min(starts) < 3
    # 'all' (reference): the labels on disk are checked, as for a
    # labelled map, and the results map stays all-ignore
    t = MultiTaskRandomCrop(crop_size=(10, 10), cat_max_ratio=0.75,
                            cat_labels='all')
    labelled = MultiTaskRandomCrop(crop_size=(10, 10), cat_max_ratio=0.75)
    for seed in range(60):
        res, seg = _unlabelled_crop_results(tmp_path)
        np.random.seed(seed)
        out = t(res)
        assert _passes(seg, out['crop_bbox']) and out['crop_bbox'][2] >= 3
        assert (out[key('semseg')] == 255).all()
        # the same windows as the check on a labelled map
        np.random.seed(seed)
        assert labelled(_crop_results())['crop_bbox'] == out['crop_bbox']
    # a labelled image reads its own map in both modes
    for seed in range(10):
        np.random.seed(seed)
        a = t(_crop_results())['crop_bbox']
        np.random.seed(seed)
        assert labelled(_crop_results())['crop_bbox'] == a
    assert "cat_labels='all'" in repr(t)
    with pytest.raises(ValueError, match='cat_labels'):
        MultiTaskRandomCrop(crop_size=4, cat_labels='some')


def test_crop_cat_labels_all_replays_resize_and_refuses_bad_input(
        tmp_path):
    from diffmtl.datasets.transforms.field_utils import resize_map
    t = MultiTaskRandomCrop(crop_size=(10, 10), cat_max_ratio=0.75,
                            cat_labels='all')
    resize = MultiTaskRandomResize(ratio_range=(1.5, 1.5))
    for seed in range(20):
        res, seg = _unlabelled_crop_results(tmp_path)
        np.random.seed(seed)
        res = resize(res)
        assert res['img'].shape[:2] == (15, 30)
        out = t(res)
        big = resize_map(seg, (15, 30), 'nearest')
        assert _passes(big, out['crop_bbox'])
    # no file for this image: cropped unchecked, like the default
    counting = _CountingCrop(crop_size=(10, 10), cat_max_ratio=0.75,
                             cat_labels='all')
    res, _ = _unlabelled_crop_results(tmp_path / 'x', write=False)
    counting(res)
    assert counting.calls == 1
    res, _ = _unlabelled_crop_results(tmp_path)
    res['all_ann_paths']['semseg'] = None
    counting.calls = 0
    counting(res)
    assert counting.calls == 1
    # a dataset that does not record the paths, or a flip before the crop
    res, _ = _unlabelled_crop_results(tmp_path)
    del res['all_ann_paths']
    with pytest.raises(KeyError, match='all_ann_paths'):
        t(res)
    res, _ = _unlabelled_crop_results(tmp_path)
    res = MultiTaskRandomFlip(prob=1.0)(res)
    with pytest.raises(ValueError, match='before any crop or flip'):
        t(res)


def test_pad_with_the_mean_colour_makes_a_float_image():
    mean_bgr = [103.53, 116.28, 123.675]
    res = make_results(h=5, w=6)
    orig = copy.deepcopy(res)
    out = MultiTaskPad(size=(8, 10), center=True, pad_val=mean_bgr)(res)
    img = out['img']
    assert img.dtype == np.float32 and img.shape == (8, 10, 3)
    np.testing.assert_array_equal(img[1:6, 2:8], orig['img'])
    expected = np.asarray(mean_bgr, np.float32)
    assert (img[0] == expected).all() and (img[:, :2] == expected).all()
    # the preprocessor's float32 mean equals the padded value exactly
    mean = torch.tensor(mean_bgr[::-1])
    rgb = torch.from_numpy(img[..., ::-1].copy())
    assert ((rgb[0] - mean) == 0).all()
    # one dtype for every sample, padded or not; integer values keep uint8
    same = MultiTaskPad(size=(5, 6), pad_val=mean_bgr)(make_results(h=5, w=6))
    assert same['img'].dtype == np.float32
    assert MultiTaskPad(size=(8, 8), pad_val=(1, 2, 3))(
        make_results(h=5, w=6))['img'].dtype == np.uint8
    assert MultiTaskPad(size=(8, 8), pad_val=300)(
        make_results(h=5, w=6))['img'].dtype == np.float32


# -------------------------------------------------------------- ignore
def test_ignore_empty_maps_per_crop():
    from diffmtl.datasets.transforms import MultiTaskIgnoreEmptyMaps
    t = MultiTaskIgnoreEmptyMaps()
    res = make_results(h=4, w=4)
    parts = np.zeros((4, 4), np.uint8)
    parts[0, 0] = 255
    res[key('human_parts')] = parts
    seg0 = res[key('semseg')].copy()
    out = t(res)
    assert (out[key('human_parts')] == 255).all()
    assert out[key('human_parts')].dtype == np.uint8
    np.testing.assert_array_equal(out[key('semseg')], seg0)
    assert out['task_mask'] == (True, ) * 6
    # one part pixel keeps the map
    res = make_results(h=4, w=4)
    parts[2, 2] = 3
    res[key('human_parts')] = parts.copy()
    np.testing.assert_array_equal(t(res)[key('human_parts')], parts)
    # absent task: nothing to do; continuous tasks are refused
    res = make_results(h=4, w=4, tasks=('semseg', ))
    assert t(res)[key('semseg')].shape == (4, 4)
    with pytest.raises(ValueError, match='depth'):
        MultiTaskIgnoreEmptyMaps(tasks=('depth', ))
