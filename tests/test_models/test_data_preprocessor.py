# Copyright (c) diffmtl contributors. All rights reserved.
"""Tests of MultiTaskDataPreProcessor, alone and after a full pipeline."""
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import diffmtl.datasets.transforms  # noqa: F401  (registers transforms)
from diffmtl.models.data_preprocessor import MultiTaskDataPreProcessor
from diffmtl.registry import MODELS, TRANSFORMS
from diffmtl.structures import get_task_mask, get_task_spec, stack_task_gt

ALL_TASKS = ('semseg', 'human_parts', 'sal', 'normals', 'edge', 'depth')


def make_sample(h, w, tasks=ALL_TASKS, mask=None, seed=0, meta=None):
    """A packed sample: uint8 image and every task's GT (random values)."""
    g = torch.Generator().manual_seed(seed)
    mask = tuple(mask) if mask is not None else (True, ) * len(tasks)
    ds = SegDataSample()
    for task in tasks:
        spec = get_task_spec(task)
        if spec.discrete:
            data = torch.randint(0, 3, (1, h, w), generator=g)
        else:
            data = torch.rand((spec.gt_channels, h, w), generator=g) + 0.5
        ds.set_field(PixelData(data=data), spec.gt_field)
    ds.set_metainfo(dict(tasks=tuple(tasks), task_mask=mask, **(meta or {})))
    img = torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
    return img, ds


def test_normalise_and_channel_swap():
    pre = MultiTaskDataPreProcessor(mean=[10., 20., 30.],
                                    std=[2., 4., 5.],
                                    bgr_to_rgb=True)
    img = torch.stack(
        [torch.full((4, 5), v, dtype=torch.uint8) for v in (100, 60, 40)])
    _, ds = make_sample(4, 5)
    out = pre(dict(inputs=[img], data_samples=[ds]), training=True)
    x = out['inputs']
    assert x.shape == (1, 3, 4, 5) and x.dtype == torch.float32
    # channels swapped (40, 60, 100), then (x - mean) / std
    expect = [(40 - 10) / 2, (60 - 20) / 4, (100 - 30) / 5]
    for c, v in enumerate(expect):
        assert torch.allclose(x[0, c], torch.tensor(v))
    with pytest.raises(ValueError):
        MultiTaskDataPreProcessor(bgr_to_rgb=True, rgb_to_bgr=True)
    with pytest.raises(ValueError, match='std'):
        MultiTaskDataPreProcessor(mean=[0, 0, 0])


def test_training_pads_every_field_with_its_own_value():
    pre = MultiTaskDataPreProcessor(size_divisor=4, pad_val=-3)
    img_a, ds_a = make_sample(4, 5, seed=1)
    img_b, ds_b = make_sample(6, 3, seed=2)
    ref = {
        t: (ds_a.get(get_task_spec(t).gt_field).data.clone(),
            ds_b.get(get_task_spec(t).gt_field).data.clone())
        for t in ALL_TASKS
    }
    out = pre(dict(inputs=[img_a, img_b], data_samples=[ds_a, ds_b]),
              training=True)
    x, samples = out['inputs'], out['data_samples']
    assert x.shape == (2, 3, 8, 8)
    assert torch.equal(x[0, :, :4, :5], img_a.float())
    assert (x[0, :, 4:] == -3).all() and (x[0, :, :, 5:] == -3).all()
    assert (x[1, :, 6:] == -3).all() and (x[1, :, :, 3:] == -3).all()
    for task in ALL_TASKS:
        spec = get_task_spec(task)
        gt = stack_task_gt(samples, task)
        assert gt.shape == (2, spec.gt_channels, 8, 8)
        assert gt.dtype == (torch.int64 if spec.discrete else torch.float32)
        assert torch.equal(gt[0, :, :4, :5], ref[task][0])
        assert torch.equal(gt[1, :, :6, :3], ref[task][1])
        value = spec.pad_value
        assert (gt[0, :, 4:] == value).all() and (gt[0, :, :, 5:]
                                                  == value).all()
        assert (gt[1, :, 6:] == value).all() and (gt[1, :, :, 3:]
                                                  == value).all()
    assert stack_task_gt(samples, 'semseg')[0, 0, 7, 7] == 255
    assert stack_task_gt(samples, 'depth')[0, 0, 7, 7] == 0
    assert (stack_task_gt(samples, 'normals')[0, :, 7, 7] == 0).all()
    m = samples[0].metainfo
    assert m['img_shape'] == (4, 5) and m['pad_shape'] == (8, 8)
    assert m['padding_size'] == (0, 3, 0, 4)
    assert samples[1].metainfo['padding_size'] == (0, 5, 0, 2)
    assert 'img_padding_size' not in m


def test_fixed_size_and_gt_pad_override():
    pre = MultiTaskDataPreProcessor(size=(6, 7), gt_pad_val=dict(depth=-1))
    img, ds = make_sample(4, 5, tasks=('semseg', 'depth'))
    out = pre(dict(inputs=[img], data_samples=[ds]), training=True)
    assert out['inputs'].shape == (1, 3, 6, 7)
    depth = out['data_samples'][0].gt_depth.data
    assert (depth[:, 4:] == -1).all() and (depth[:, :4, :5] >= 0.5).all()
    # mmseg's seg_pad_val: discrete tasks only
    pre = MultiTaskDataPreProcessor(size=(6, 7), seg_pad_val=0)
    img, ds = make_sample(4, 5, tasks=('semseg', 'depth'), seed=4)
    ds.gt_sem_seg.data[:] = 2
    out = pre(dict(inputs=[img], data_samples=[ds]), training=True)
    sem = out['data_samples'][0].gt_sem_seg.data
    assert (sem[:, 4:] == 0).all() and (sem[:, :4, :5] == 2).all()
    assert (out['data_samples'][0].gt_depth.data[:, 4:] == 0).all()
    with pytest.raises(KeyError, match='colour'):
        MultiTaskDataPreProcessor(gt_pad_val=dict(colour=0))


def test_missing_task_is_created_as_padding_so_batch_is_uniform():
    pre = MultiTaskDataPreProcessor(size_divisor=1)
    img_a, ds_a = make_sample(4, 4, tasks=('semseg', 'depth'))
    img_b, ds_b = make_sample(4, 4, tasks=('semseg', ), seed=3)
    out = pre(dict(inputs=[img_a, img_b], data_samples=[ds_a, ds_b]),
              training=True)
    samples = out['data_samples']
    depth = stack_task_gt(samples, 'depth')
    assert depth.shape == (2, 1, 4, 4)
    assert (depth[1] == 0).all() and (depth[0] > 0).all()
    mask = get_task_mask(samples, ['semseg', 'depth'])
    assert mask.tolist() == [[True, True], [True, False]]


def test_gt_size_mismatch_is_reported():
    pre = MultiTaskDataPreProcessor(size_divisor=4)
    img, ds = make_sample(4, 4, tasks=('semseg', ))
    ds.gt_sem_seg = PixelData(data=torch.zeros(1, 5, 4, dtype=torch.long))
    with pytest.raises(ValueError, match='gt_sem_seg'):
        pre(dict(inputs=[img], data_samples=[ds]), training=True)


def test_test_mode_stacks_or_pads_image_only():
    img_a, ds_a = make_sample(4, 4, seed=1)
    img_b, ds_b = make_sample(4, 4, seed=2)
    pre = MultiTaskDataPreProcessor()
    out = pre(dict(inputs=[img_a, img_b], data_samples=[ds_a, ds_b]))
    assert out['inputs'].shape == (2, 3, 4, 4)
    img_c, ds_c = make_sample(5, 4, seed=3)
    with pytest.raises(ValueError, match='test_cfg'):
        pre(dict(inputs=[img_a, img_c], data_samples=[ds_a, ds_c]))

    # padding by test_cfg adds to the padding recorded by the pipeline
    pre = MultiTaskDataPreProcessor(size=(32, 32),
                                    test_cfg=dict(size_divisor=8))
    img, ds = make_sample(5, 6, meta=dict(padding_size=(1, 0, 2, 0)))
    gt_depth = ds.gt_depth.data.clone()
    out = pre(dict(inputs=[img], data_samples=[ds]), training=False)
    assert out['inputs'].shape == (1, 3, 8, 8)
    m = out['data_samples'][0].metainfo
    assert m['padding_size'] == (1, 2, 2, 3)
    assert m['img_padding_size'] == (1, 2, 2, 3)
    assert m['img_shape'] == (5, 6) and m['pad_shape'] == (8, 8)
    # GT of the pipeline-padded image's size loses the pipeline padding
    # (not the preprocessor's): the size predictions are restored to
    assert out['data_samples'][0].gt_sem_seg.shape == (3, 5)
    assert torch.equal(out['data_samples'][0].gt_depth.data, gt_depth[:, 2:,
                                                                      1:])
    with pytest.raises(ValueError, match='test_cfg'):
        MultiTaskDataPreProcessor(test_cfg=dict(mode='slide'))


class _AddOne:

    def __call__(self, inputs, data_samples):
        for ds in data_samples:
            ds.set_metainfo(dict(augmented=True))
        return inputs + 1, data_samples


def test_batch_augments_built_and_applied():
    MODELS.register_module(name='_TestAddOneAugment',
                           module=_AddOne,
                           force=True)
    pre = MultiTaskDataPreProcessor(
        batch_augments=[dict(type='_TestAddOneAugment'),
                        _AddOne()])
    img, ds = make_sample(2, 2)
    out = pre(dict(inputs=[img], data_samples=[ds]), training=True)
    assert torch.equal(out['inputs'][0], img.float() + 2)
    assert out['data_samples'][0].metainfo['augmented'] is True
    # not applied at test time
    out = pre(dict(inputs=[img], data_samples=[ds]), training=False)
    assert torch.equal(out['inputs'][0], img.float())
    with pytest.raises(TypeError, match='batch_augments'):
        MultiTaskDataPreProcessor(batch_augments=[3])


def test_full_pipeline_to_uniform_batch():
    """Two images of different sizes and labelled tasks, as the loader
    leaves them, through the training pipeline, packing and the
    preprocessor."""
    torch.manual_seed(0)
    np.random.seed(0)
    rng = np.random.default_rng(0)

    def loaded(h, w, mask, seed):
        res = dict(img=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                   img_path=f'{seed}.png',
                   img_id=str(seed),
                   ori_shape=(h, w),
                   img_shape=(h, w),
                   tasks=ALL_TASKS,
                   task_mask=mask,
                   seg_fields=[])
        for task, labelled in zip(ALL_TASKS, mask):
            spec = get_task_spec(task)
            shape = (h, w) if spec.gt_channels == 1 else (h, w, 3)
            dtype = np.uint8 if spec.discrete else np.float32
            arr = np.full(shape, spec.pad_value, dtype=dtype)
            if labelled:
                arr = (rng.integers(0, 2, shape) if spec.discrete else
                       rng.uniform(0.5, 1, shape)).astype(dtype)
            res[spec.results_key] = arr
            res['seg_fields'].append(spec.results_key)
        return res

    pipeline = Compose([
        TRANSFORMS.build(cfg) for cfg in [
            dict(type='MultiTaskRandomResize', ratio_range=(0.5, 2.0)),
            dict(type='MultiTaskRandomCrop',
                 crop_size=(16, 16),
                 cat_max_ratio=0.75),
            dict(type='MultiTaskRandomFlip', prob=0.5),
            dict(type='PhotoMetricDistortion'),
            dict(type='MultiTaskPad', size=(16, 16), center=True),
            dict(type='PackMultiTaskInputs'),
        ]
    ])
    a = pipeline(loaded(12, 20, (True, False, False, True, False, False), 0))
    b = pipeline(loaded(20, 10, (False, True, True, False, True, True), 1))
    pre = MODELS.build(
        dict(type='MultiTaskDataPreProcessor',
             mean=[128] * 3,
             std=[64] * 3,
             size=(16, 16)))
    out = pre(dict(inputs=[a['inputs'], b['inputs']],
                   data_samples=[a['data_samples'], b['data_samples']]),
              training=True)
    x, samples = out['inputs'], out['data_samples']
    assert x.shape == (2, 3, 16, 16) and x.dtype == torch.float32
    assert float(x.abs().max()) <= 2.0 + 1e-6
    mask = get_task_mask(samples, ALL_TASKS)
    assert mask.tolist() == [[True, False, False, True, False, False],
                             [False, True, True, False, True, True]]
    for task in ALL_TASKS:
        spec = get_task_spec(task)
        gt = stack_task_gt(samples, task)
        assert gt.shape == (2, spec.gt_channels, 16, 16)
        for i in range(2):
            labelled = bool(mask[i, ALL_TASKS.index(task)])
            if not labelled:
                # unlabelled tasks stay entirely pad/ignore
                assert (gt[i] == spec.pad_value).all()
    # labelled maps: label values inside the padded frame, pad outside
    for i, (task, values) in enumerate([('semseg', {0, 1}), ('edge', {0, 1})]):
        left, right, top, bottom = samples[i].metainfo['padding_size']
        inside = torch.zeros(16, 16, dtype=torch.bool)
        inside[top:16 - bottom, left:16 - right] = True
        gt = stack_task_gt(samples, task)[i, 0]
        assert set(gt[inside].unique().tolist()) == values
        assert (gt[~inside] == 255).all()
    inside0 = torch.zeros(16, 16, dtype=torch.bool)
    l0, r0, t0, b0 = samples[0].metainfo['padding_size']
    inside0[t0:16 - b0, l0:16 - r0] = True
    normals = stack_task_gt(samples, 'normals')[0]
    assert (normals[:, ~inside0] == 0).all()
    assert (normals[:, inside0].abs() >= 0.5 - 1e-6).all()


def test_test_mode_crops_gt_padded_by_the_pipeline():
    """PASCAL-style test pipeline: centred pad of image and GT to a fixed
    size; the preprocessor gives the GT back at the original size."""
    rng = np.random.default_rng(0)
    seg = rng.integers(0, 3, (5, 6)).astype(np.uint8)
    nrm = rng.uniform(-1, 1, (5, 6, 3)).astype(np.float32)
    results = dict(img=rng.integers(0, 256, (5, 6, 3), dtype=np.uint8),
                   ori_shape=(5, 6),
                   tasks=('semseg', 'normals'),
                   task_mask=(True, True),
                   gt_seg_map=seg,
                   gt_normal_map=nrm,
                   seg_fields=['gt_seg_map', 'gt_normal_map'])
    pipeline = Compose([
        TRANSFORMS.build(dict(type='MultiTaskPad', size=(8, 8), center=True)),
        TRANSFORMS.build(dict(type='PackMultiTaskInputs'))
    ])
    packed = pipeline(results)
    assert packed['data_samples'].gt_sem_seg.shape == (8, 8)
    pre = MultiTaskDataPreProcessor()
    out = pre(
        dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]))
    assert out['inputs'].shape == (1, 3, 8, 8)
    ds = out['data_samples'][0]
    assert ds.metainfo['padding_size'] == (1, 1, 1, 2)
    np.testing.assert_array_equal(ds.gt_sem_seg.data[0].numpy(), seg)
    np.testing.assert_array_equal(ds.gt_normals.data.numpy(),
                                  nrm.transpose(2, 0, 1))
    # a second call (GT already at the original size) changes nothing
    out = pre(dict(inputs=[packed['inputs']], data_samples=[ds]))
    assert out['data_samples'][0].gt_sem_seg.shape == (5, 6)
