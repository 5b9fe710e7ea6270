# Copyright (c) diffmtl contributors. All rights reserved.
"""diffmtl.structures.maps (un-padding, map resizing) and the generic
contract of every registered task kind (flip, TTA merge, colours)."""
import cv2
import numpy as np
import pytest
import torch

import diffmtl  # noqa: F401  (registers the built-in kinds and tasks)
from diffmtl.structures import (TASK_SPECS, TaskSpec, get_task_kind,
                                image_padding, list_task_kinds, resize_map,
                                unpad, unpad_window)
from diffmtl.structures.maps import CV2_INTERP


# ------------------------------------------------------------ un-padding
def test_unpad_window_either_key():
    # diffmtl's total padding (left, right, top, bottom)
    assert unpad_window(dict(padding_size=(2, 3, 1, 4)),
                        (20, 30)) == (1, 16, 2, 27)
    # mmseg's test-mode key alone
    assert unpad_window(dict(img_padding_size=[0, 5, 0, 6]),
                        (20, 30)) == (0, 14, 0, 25)
    # nothing recorded: the top-left img_shape block, else everything
    assert unpad_window(dict(img_shape=(10, 12)), (16, 16)) == (0, 10, 0, 12)
    assert unpad_window({}, (16, 16)) == (0, 16, 0, 16)
    assert image_padding({}) is None


def test_padding_keys_priority():
    # equal (MultiTaskDataPreProcessor writes the total into both): once
    both = dict(padding_size=(1, 2, 3, 4), img_padding_size=[1, 2, 3, 4])
    assert image_padding(both) == (1, 2, 3, 4)
    # different (mmseg's preprocessor padded an input whose earlier
    # padding is in padding_size): the image is inside both -> the sum
    mixed = dict(padding_size=(2, 2, 1, 1), img_padding_size=(0, 8, 0, 4))
    assert image_padding(mixed) == (2, 10, 1, 5)
    assert unpad_window(mixed, (20, 30)) == (1, 15, 2, 20)
    # a recorded key wins over img_shape
    assert unpad_window(dict(padding_size=(0, 0, 0, 0), img_shape=(5, 5)),
                        (8, 8)) == (0, 8, 0, 8)


def test_unpad_tensor_and_numpy_layouts():
    meta = dict(padding_size=(1, 2, 3, 4))
    t = torch.arange(2 * 3 * 10 * 12).reshape(2, 3, 10, 12)
    assert torch.equal(unpad(t, meta), t[..., 3:6, 1:10])
    a = np.arange(10 * 12 * 3).reshape(10, 12, 3)
    np.testing.assert_array_equal(unpad(a, meta), a[3:6, 1:10])
    np.testing.assert_array_equal(unpad(a[..., 0], meta), a[3:6, 1:10, 0])
    c = np.arange(3 * 10 * 12).reshape(3, 10, 12)
    np.testing.assert_array_equal(unpad(c, meta, spatial_dims=(1, 2)),
                                  c[:, 3:6, 1:10])


def _packed_centre_padded(h=20, w=30):
    """An image through ``MultiTaskPad(center=True, pad_gt=False)`` and
    ``PackMultiTaskInputs`` (the PASCAL test pipeline)."""
    from diffmtl.datasets.transforms import MultiTaskPad, PackMultiTaskInputs
    img = np.random.default_rng(0).integers(0, 256, (h, w, 3), np.uint8)
    res = dict(img=img, img_path='a.png', img_id='a', ori_shape=(h, w),
               img_shape=(h, w), tasks=('semseg', ), task_mask=(True, ),
               seg_fields=['gt_seg_map'],
               gt_seg_map=np.zeros((h, w), np.uint8))
    res = MultiTaskPad(size=(24, 36), center=True, pad_gt=False)(res)
    packed = PackMultiTaskInputs()(res)
    return img, packed


@pytest.mark.parametrize('which', ['mmseg', 'diffmtl'])
def test_unpad_after_pipeline_pad_and_preprocessor_pad(which):
    """A real case where the two keys differ: mmseg's SegDataPreProcessor
    (test_cfg) pads an input the pipeline already centre-padded. Only the
    sum finds the image; ``img_padding_size`` first (mmseg's and the old
    postprocess' rule) keeps the pipeline padding, ``padding_size`` first
    (the old visualiser's rule) keeps the preprocessor's."""
    from diffmtl.registry import MODELS
    img, packed = _packed_centre_padded()
    assert tuple(packed['data_samples'].padding_size) == (3, 3, 2, 2)
    pre = MODELS.build(
        dict(type='SegDataPreProcessor' if which == 'mmseg' else
             'MultiTaskDataPreProcessor', mean=[0., 0., 0.],
             std=[1., 1., 1.], test_cfg=dict(size_divisor=16)))
    out = pre(dict(inputs=[packed['inputs']],
                   data_samples=[packed['data_samples']]), False)
    x, meta = out['inputs'][0], out['data_samples'][0].metainfo
    assert tuple(x.shape[-2:]) == (32, 48)
    expected = torch.from_numpy(img).permute(2, 0, 1).float()
    assert torch.equal(unpad(x, meta), expected)
    if which == 'mmseg':
        old_mmseg = dict(img_padding_size=meta['img_padding_size'])
        old_vis = dict(padding_size=meta['padding_size'])
        assert unpad(x, old_mmseg).shape[-2:] == (24, 36)
        assert unpad(x, old_vis).shape[-2:] == (28, 42)
    else:  # diffmtl's preprocessor: both keys hold the total
        assert tuple(meta['padding_size']) == tuple(
            meta['img_padding_size']) == (3, 15, 2, 10)


# -------------------------------------------------------------- resizing
@pytest.mark.parametrize('interp', sorted(CV2_INTERP))
@pytest.mark.parametrize('dtype', [np.uint8, np.float32, np.int64, np.int32,
                                   np.bool_])
@pytest.mark.parametrize('shape', [(6, 8), (6, 8, 1), (6, 8, 3)])
def test_resize_map_keeps_dtype_and_dims(interp, dtype, shape):
    rng = np.random.default_rng(0)
    arr = (rng.integers(0, 2, shape) if dtype == np.bool_ else
           rng.integers(0, 200, shape)).astype(dtype)
    out = resize_map(arr, (9, 5), interp)
    assert out.dtype == arr.dtype
    assert out.shape == (9, 5) + shape[2:]
    if interp == 'nearest':  # values are picked, never made up
        assert set(np.unique(out)) <= set(np.unique(arr))
    if dtype in (np.uint8, np.float32):  # what cv2 gives directly
        ref = cv2.resize(arr, (5, 9), interpolation=CV2_INTERP[interp])
        np.testing.assert_array_equal(out.reshape(ref.shape), ref)


def test_resize_map_import_paths_and_errors():
    from diffmtl.datasets.transforms import field_utils
    from diffmtl.visualization import resize_map as vis_resize_map
    assert field_utils.resize_map is resize_map
    assert field_utils.CV2_INTERP is CV2_INTERP
    assert vis_resize_map is resize_map
    labels = np.array([[0, 1], [2, 3]], np.int64)
    np.testing.assert_array_equal(resize_map(labels, (4, 4)),
                                  labels.repeat(2, 0).repeat(2, 1))
    with pytest.raises(ValueError, match='unknown interpolation'):
        resize_map(labels, (4, 4), 'lanczos')


# ------------------------------------------------- every task kind
def _kind_spec(name, monkeypatch):
    """A registered task of kind ``name``, else an ad-hoc one."""
    for spec in TASK_SPECS.values():
        if spec.kind == name:
            return spec
    spec = TaskSpec(name=f'_test_{name}', kind=name, results_key='_k',
                    gt_field='_gt', pred_field='_pred', logits_field='_lg')
    monkeypatch.setitem(TASK_SPECS, spec.name, spec)
    return spec


def _logits(spec, n=2, h=5, w=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = spec.out_channels or 4  # a task's classes when None
    return torch.randn(n, c, h, w, generator=g)


@pytest.mark.parametrize('kind_name', list_task_kinds())
@pytest.mark.parametrize('direction', ['horizontal', 'vertical'])
def test_kind_flip_tensor_twice_is_identity(kind_name, direction,
                                            monkeypatch):
    spec = _kind_spec(kind_name, monkeypatch)
    kind = get_task_kind(kind_name)
    x = _logits(spec)
    once = kind.flip_tensor(spec, x, direction)
    assert once.shape == x.shape and not torch.equal(once, x)
    assert torch.equal(kind.flip_tensor(spec, once, direction), x)
    assert torch.equal(kind.flip_tensor(spec, x[0], direction), once[0])


@pytest.mark.parametrize('kind_name', list_task_kinds())
def test_kind_merge_of_one_view_predicts_that_view(kind_name, monkeypatch):
    spec = _kind_spec(kind_name, monkeypatch)
    kind = get_task_kind(kind_name)
    view = _logits(spec, n=1)[0]
    merged = kind.merge_logits(view[None])
    assert merged.shape == view.shape
    pred, ref = kind.logits_to_pred(merged), kind.logits_to_pred(view)
    assert pred.dtype == ref.dtype and pred.shape == ref.shape
    if ref.is_floating_point():
        assert torch.allclose(pred, ref, atol=1e-5)
    else:
        assert torch.equal(pred, ref)


@pytest.mark.parametrize('kind_name', list_task_kinds())
def test_kind_colorize_gives_rgb_uint8(kind_name, monkeypatch):
    spec = _kind_spec(kind_name, monkeypatch)
    kind = get_task_kind(kind_name)
    pred = kind.logits_to_pred(_logits(spec, n=1)[0]).numpy()
    assert pred.shape[0] == spec.gt_channels
    arr = pred[0] if spec.gt_channels == 1 else pred.transpose(1, 2, 0)
    if not spec.discrete and spec.gt_channels == 1:
        arr = np.abs(arr) + 0.1  # e.g. depth: > 0 is valid
    tile, invalid = kind.colorize(spec, arr, None)
    assert tile.shape == (5, 7, 3) and tile.dtype == np.uint8
    assert invalid.shape == (5, 7) and not invalid.any()
