# Copyright (c) diffmtl contributors. All rights reserved.
"""The data side of every registered task kind.

Each test is parametrised over :func:`diffmtl.structures.list_task_kinds`,
so a newly registered kind is tested for free: for each kind one
registered :class:`~diffmtl.structures.TaskSpec` of that kind is used (a
kind without any registered task fails, it is not skipped). Nothing here
knows a kind: maps are drawn from the spec's fields (discrete labels below
``num_labels`` with an ignore pixel, or floats from the kind's
``gt_value_range`` with one invalid pixel) and every expectation comes
from the kind's own methods.
"""
import copy
import json
import os.path as osp

import mmcv
import numpy as np
import pytest

from diffmtl.datasets.transforms import (LoadMultiTaskAnnotations,
                                         MultiTaskPad, MultiTaskRandomFlip,
                                         MultiTaskRandomResize,
                                         MultiTaskRandomScaleCrop,
                                         PackMultiTaskInputs,
                                         decode_annotation)
from diffmtl.registry import DATASETS
from diffmtl.structures import (FLIP_DIRECTIONS, TASK_SPECS, get_task_kind,
                                list_task_kinds)

KINDS = list_task_kinds()
H, W = 5, 7


def _spec_of(kind_name):
    """The first registered TaskSpec of ``kind_name``; fails without one."""
    specs = [s for s in TASK_SPECS.values() if s.kind == kind_name]
    assert specs, (f'task kind {kind_name!r} is registered but no TaskSpec '
                   'of that kind is: register one (register_task_spec) so '
                   'that its data side is tested')
    return specs[0]


def _num_labels(spec):
    n = spec.task_kind.num_labels(spec, None)
    n = 5 if n is None else int(n)
    return min(n, 255) if spec.ignore_index is not None else min(n, 256)


def _random_map(spec, shape_hw=(H, W), seed=0):
    """A valid (H, W[, C]) ground-truth map of ``spec`` in its dtype."""
    kind = spec.task_kind
    rng = np.random.default_rng(seed)
    h, w = shape_hw
    shape = (h, w) if spec.gt_channels == 1 else (h, w, spec.gt_channels)
    if spec.discrete:
        arr = rng.integers(0, _num_labels(spec), shape)
        if spec.ignore_index is not None:
            arr[0, 0] = spec.ignore_index
    else:
        low, high = spec.task_kind.gt_value_range
        arr = rng.uniform(low, high, shape)
        arr[0, 0] = spec.pad_value  # one pixel without a label
    return arr.astype(kind.gt_dtype(spec))


def _results(spec, arr):
    """A results dict as ``LoadMultiTaskAnnotations`` leaves it."""
    h, w = arr.shape[:2]
    rng = np.random.default_rng(1)
    return dict(
        img=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        img_path='img.png',
        img_shape=(h, w),
        ori_shape=(h, w),
        tasks=(spec.name, ),
        task_mask=(True, ),
        seg_fields=[spec.results_key],
        **{spec.results_key: arr})


def _assert_same(got, want):
    """Equal values, dtype and shape; float zeros keep their sign."""
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    if np.issubdtype(want.dtype, np.floating):
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def test_every_kind_has_a_registered_task():
    assert KINDS
    for kind_name in KINDS:
        assert _spec_of(kind_name).task_kind is get_task_kind(kind_name)


# ----------------------------------------------------------- encode/decode
@pytest.mark.parametrize('kind_name', KINDS)
def test_encode_then_decode_is_the_identity(kind_name, tmp_path):
    spec = _spec_of(kind_name)
    kind = spec.task_kind
    gt = _random_map(spec)
    path = kind.encode(spec, gt, str(tmp_path / 'gt'))
    suffix = osp.splitext(path)[1]
    assert suffix in kind.formats, (
        f'{kind_name}.encode wrote {path!r}, a suffix its formats '
        f'{kind.formats} do not decode')
    out = decode_annotation(kind.formats[suffix], path, {})
    _assert_same(np.asarray(out), gt)

    # and through the loader, with its shape / dtype / label checks
    res = _results(spec, gt)
    del res[spec.results_key]
    res.update(seg_fields=[], ann_paths={spec.name: path},
               ann_format={spec.name: kind.formats[suffix]})
    out = LoadMultiTaskAnnotations()(res)
    _assert_same(out[spec.results_key], gt)


@pytest.mark.parametrize('kind_name', KINDS)
def test_folder_dataset_decodes_by_the_kinds_formats(kind_name, tmp_path):
    """The generic layouts pick the decoder from ``TaskKind.formats``; the
    kind's ``dataset_meta`` lands in the metainfo."""
    spec = _spec_of(kind_name)
    kind = spec.task_kind
    root = tmp_path / 'data'
    (root / 'splits').mkdir(parents=True)
    (root / 'splits' / 'train.txt').write_text('a\nb\n')
    meta = dict(tasks=[spec.name])
    if kind.has_classes:
        meta['task_classes'] = {
            spec.name: [f'c{i}' for i in range(_num_labels(spec))]
        }
    (root / 'meta.json').write_text(json.dumps(meta))
    (root / spec.name).mkdir()
    gts = {}
    for k, img_id in enumerate(('a', 'b')):
        mmcv.imwrite(np.full((H, W, 3), 40 * k, np.uint8),
                     str(root / 'images' / f'{img_id}.png'))
        gts[img_id] = _random_map(spec, seed=k)
        path = kind.encode(spec, gts[img_id], str(root / spec.name / img_id))
    suffix = osp.splitext(path)[1]
    ds = DATASETS.build(
        dict(type='FolderMultiTaskDataset', data_root=str(root),
             split='train', pipeline=[
                 dict(type='LoadMultiTaskImageFromFile'),
                 dict(type='LoadMultiTaskAnnotations')
             ]))
    assert ds.get_data_info(0)['ann_format'][spec.name] == \
        kind.formats[suffix]
    for key, value in kind.dataset_meta(spec, ds).items():
        assert ds.metainfo[key] == value
    if kind.has_classes:
        assert ds.metainfo['task_classes'][spec.name] == tuple(
            meta['task_classes'][spec.name])
    for i, img_id in enumerate(('a', 'b')):
        _assert_same(ds[i][spec.results_key], gts[img_id])


# -------------------------------------------------------------------- flip
@pytest.mark.parametrize('direction', FLIP_DIRECTIONS)
@pytest.mark.parametrize('kind_name', KINDS)
def test_flip_twice_is_the_identity(kind_name, direction):
    spec = _spec_of(kind_name)
    kind = spec.task_kind
    gt = _random_map(spec)
    res = _results(spec, gt.copy())
    img = res['img'].copy()
    flip = MultiTaskRandomFlip(prob=1.0, direction=direction)
    once = flip(res)
    assert once['flip'] is True and once['flip_direction'] == direction
    _assert_same(once[spec.results_key], kind.flip_map(spec, gt, direction))
    assert once[spec.results_key].shape == gt.shape
    if direction in ('horizontal', 'diagonal'):
        assert not np.array_equal(once['img'], img)
    twice = flip(once)
    _assert_same(twice[spec.results_key], gt)
    np.testing.assert_array_equal(twice['img'], img)


@pytest.mark.parametrize('kind_name', KINDS)
def test_flip_of_a_map_without_the_negated_channels_is_refused(kind_name):
    spec = _spec_of(kind_name)
    kind = spec.task_kind
    for direction in FLIP_DIRECTIONS:
        neg = kind.negated_channels(direction)
        if not neg:
            continue
        res = _results(spec, np.zeros((H, W), kind.gt_dtype(spec)))
        with pytest.raises(ValueError) as err:
            MultiTaskRandomFlip(prob=1.0, direction=direction)(res)
        msg = str(err.value)
        assert spec.results_key in msg and repr(spec.name) in msg
        assert f'(H, W, {spec.gt_channels})' in msg and '(5, 7)' in msg


# --------------------------------------------------------------------- pad
@pytest.mark.parametrize('center', [False, True])
@pytest.mark.parametrize('kind_name', KINDS)
def test_pad_then_crop_back_is_the_identity(kind_name, center):
    spec = _spec_of(kind_name)
    gt = _random_map(spec)
    out = MultiTaskPad(size=(H + 3, W + 4), center=center)(
        _results(spec, gt.copy()))
    arr = out[spec.results_key]
    assert arr.shape[:2] == (H + 3, W + 4) and arr.dtype == gt.dtype
    left, right, top, bottom = out['padding_size']
    assert (left + right, top + bottom) == (4, 3)
    _assert_same(arr[top:top + H, left:left + W], gt)
    padded = np.ones(arr.shape[:2], bool)
    padded[top:top + H, left:left + W] = False
    assert (arr[padded] == spec.pad_value).all()


# -------------------------------------------------------------------- fill
@pytest.mark.parametrize('kind_name', KINDS)
def test_fill_map_has_the_specs_dtype_channels_and_pad_value(kind_name):
    spec = _spec_of(kind_name)
    kind = spec.task_kind
    fill = kind.fill_map(spec, (H, W))
    assert fill.dtype == kind.gt_dtype(spec) == np.dtype(
        np.uint8 if spec.discrete else np.float32)
    assert fill.shape == ((H, W) if spec.gt_channels == 1 else
                          (H, W, spec.gt_channels))
    assert (fill == spec.pad_value).all()

    # the loader fills an unlabelled task with it ...
    res = LoadMultiTaskAnnotations()(
        dict(img_shape=(H, W), tasks=(spec.name, ), task_mask=(False, ),
             ann_paths={spec.name: None}, ann_format={}))
    _assert_same(res[spec.results_key], fill)
    # ... and so does the packer for a missing map of an unlabelled task
    res = _results(spec, fill)
    res['task_mask'] = (False, )
    del res[spec.results_key]
    res['seg_fields'] = []
    packed = PackMultiTaskInputs()(res)['data_samples']
    data = packed.get(spec.gt_field).data.numpy()
    assert data.shape == (spec.gt_channels, H, W)
    np.testing.assert_array_equal(data, np.full(data.shape, spec.pad_value))


# -------------------------------------------------------------------- zoom
@pytest.mark.parametrize('kind_name', KINDS)
def test_zoom_scales_values_by_the_kinds_zoom_map(kind_name):
    spec = _spec_of(kind_name)
    kind = spec.task_kind
    gt = _random_map(spec)
    up = gt.repeat(2, axis=0).repeat(2, axis=1)  # nearest x2
    out = MultiTaskRandomResize(ratio_range=(2.0, 2.0),
                                label_interp={spec.name: 'nearest'})(
                                    _results(spec, gt.copy()))
    _assert_same(out[spec.results_key], kind.zoom_map(spec, up, 2.0))
    # scale_depth=False / scale_values=False: no kind's values change
    for flag in (dict(scale_depth=False), dict(scale_values=False)):
        out = MultiTaskRandomResize(ratio_range=(2.0, 2.0),
                                    label_interp={spec.name: 'nearest'},
                                    **flag)(_results(spec, gt.copy()))
        _assert_same(out[spec.results_key], up)
    np.random.seed(0)
    out = MultiTaskRandomScaleCrop(scales=(1.0, ),
                                   label_interp={spec.name: 'nearest'})(
                                       _results(spec, gt.copy()))
    _assert_same(out[spec.results_key], kind.zoom_map(spec, gt, 1.0))


def test_scale_values_and_scale_depth_must_agree():
    with pytest.raises(ValueError, match='contradict'):
        MultiTaskRandomResize(ratio_range=(1, 1), scale_depth=False,
                              scale_values=True)
    with pytest.raises(ValueError, match='contradict'):
        MultiTaskRandomScaleCrop(scale_depth=False, scale_values=True)
    t = MultiTaskRandomScaleCrop(scale_values=False)
    assert t.scale_values is False and t.scale_depth is False
    assert 'scale_depth=False' in repr(t)


def test_results_are_not_shared_with_the_input():
    """The flip returns new arrays (never views of the input maps)."""
    spec = _spec_of(KINDS[0])
    gt = _random_map(spec)
    res = _results(spec, gt)
    before = copy.deepcopy(gt)
    MultiTaskRandomFlip(prob=1.0)(res)
    _assert_same(gt, before)
