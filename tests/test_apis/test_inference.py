# Copyright (c) diffmtl contributors. All rights reserved.
"""Inference API and tools/image_demo.py with a tiny fake model.

The fake multi-task segmentor below predicts every task as a fixed function
of the input pixel, so results can be checked pixel by pixel. It returns its
maps at the *padded* size (the API must remove the padding)."""
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.models import BaseSegmentor
from tool_runner import load_tool

from diffmtl.apis import (build_inference_pipeline,
                          inference_denoising_process, inference_multitask,
                          init_model)
from diffmtl.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TASKS = ('semseg', 'sal', 'normals', 'depth')
H, W = 37, 50  # non-square, not a multiple of 32
PALETTE = [[0, 0, 0], [250, 0, 0], [0, 250, 0], [0, 0, 250]]
META = dict(tasks=TASKS,
            classes=('c0', 'c1', 'c2', 'c3'),
            palette=PALETTE,
            task_classes=dict(semseg=('c0', 'c1', 'c2', 'c3')),
            task_palettes=dict(semseg=PALETTE))


@MODELS.register_module(force=True)
class TinyFakeMultiTaskSegmentor(BaseSegmentor):
    """semseg = B // 64, sal = G / 255, depth = R / 255 * scale + 1,
    normals = unit(B - 127.5, 50, 100) (BGR input, no normalisation)."""

    def __init__(self,
                 tasks=TASKS,
                 num_classes=None,
                 data_preprocessor=None,
                 init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.tasks = tuple(tasks)
        self.num_classes = dict(num_classes or dict(semseg=4))
        self.scale = nn.Parameter(torch.ones(1))
        self.seen_shapes = []

    def _logits(self, x):
        b, g, r = x[:, 0:1], x[:, 1:2], x[:, 2:3]
        seg = F.one_hot((b // 64).long().clamp(0, 3)[:, 0], 4)
        sal = torch.cat([
            torch.zeros_like(g),
            torch.logit((g / 255).clamp(1e-4, 1 - 1e-4))
        ], 1)
        normals = torch.cat(
            [b - 127.5,
             torch.full_like(b, 50.),
             torch.full_like(b, 100.)], 1)
        return dict(semseg=seg.permute(0, 3, 1, 2).float() * 10,
                    sal=sal,
                    normals=normals,
                    depth=r / 255 * self.scale + 1)

    def predict(self, inputs, data_samples=None):
        self.seen_shapes.append(tuple(inputs.shape))
        logits = self._logits(inputs)
        for i, sample in enumerate(data_samples):
            sample.pred_sem_seg = PixelData(
                data=logits['semseg'][i].argmax(0, keepdim=True))
            sample.pred_sal = PixelData(data=logits['sal'][i].softmax(0)[1:2])
            sample.pred_normals = PixelData(
                data=F.normalize(logits['normals'][i], dim=0))
            sample.pred_depth = PixelData(data=logits['depth'][i])
        return data_samples

    def denoising_process(self, inputs):
        logits = self._logits(inputs)
        return {
            t: [('initial', torch.zeros_like(v) + 0.5),
                ('noisy', torch.randn_like(v)), ('step_1', v * 0.5),
                ('final', v)]
            for t, v in logits.items()
        }

    def extract_feat(self, inputs):
        return inputs

    def encode_decode(self, inputs, batch_data_samples):
        return self._logits(inputs)['semseg']

    def loss(self, inputs, data_samples):
        return dict(loss=self.scale.sum())

    def _forward(self, inputs, data_samples=None):
        return self._logits(inputs)


def _expected(bgr, scale=2.0):
    b, g, r = [bgr[..., i].astype(np.float32) for i in range(3)]
    normals = np.stack(
        [b - 127.5, np.full_like(b, 50),
         np.full_like(b, 100)], -1)
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    return dict(semseg=np.clip(b // 64, 0, 3).astype(np.int64),
                sal=np.clip(g / 255, 1e-4, 1 - 1e-4),
                normals=normals,
                depth=r / 255 * scale + 1)


def _write_config(tmp_path):
    cfg = f"""
default_scope = 'mmseg'
model = dict(
    type='TinyFakeMultiTaskSegmentor',
    tasks={list(TASKS)},
    num_classes=dict(semseg=4),
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[0., 0., 0.], std=[1., 1., 1.],
        size_divisor=32, test_cfg=dict(size_divisor=32)),
    init_cfg=dict(type='Pretrained', checkpoint='/nonexistent.pth'))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='PackSegInputs',
         meta_keys=('img_path', 'img_id', 'ori_shape', 'img_shape',
                    'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                    'tasks', 'task_mask')),
]
"""
    path = osp.join(tmp_path, 'tiny_cfg.py')
    with open(path, 'w') as f:
        f.write(cfg)
    return path


@pytest.fixture
def setup(tmp_path):
    torch.set_num_threads(1)
    cfg = _write_config(tmp_path)
    ckpt = osp.join(tmp_path, 'tiny.pth')
    torch.save(
        dict(state_dict=dict(scale=torch.tensor([2.0])),
             meta=dict(dataset_meta=META)), ckpt)
    rng = np.random.RandomState(0)
    img_dir = osp.join(tmp_path, 'imgs')
    images = {}
    for name in ('a', 'b'):
        bgr = rng.randint(0, 256, (H, W, 3)).astype(np.uint8)
        path = osp.join(img_dir, f'{name}.png')
        mmcv.imwrite(bgr, path)
        images[path] = bgr
    return cfg, ckpt, images


def test_init_model_loads_weights_and_meta(setup):
    cfg, ckpt, _ = setup
    model = init_model(cfg, ckpt, device='cpu')
    assert not model.training
    assert model.scale.item() == 2.0
    assert model.dataset_meta['task_palettes']['semseg'] == PALETTE
    assert isinstance(model.cfg, Config)
    # the Pretrained init_cfg was dropped: nothing tried to load it
    assert model.cfg.model.init_cfg is None
    # without a checkpoint: initial weights and meta from tasks/classes
    bare = init_model(cfg,
                      None,
                      cfg_options=dict(model=dict(num_classes=dict(semseg=3))))
    assert bare.scale.item() == 1.0
    assert bare.dataset_meta['tasks'] == TASKS
    assert bare.dataset_meta['task_classes']['semseg'] == ('0', '1', '2')


def test_inference_returns_maps_at_original_size(setup):
    cfg, ckpt, images = setup
    model = init_model(cfg, ckpt)
    path, bgr = next(iter(images.items()))
    maps = inference_multitask(model, path)
    assert model.seen_shapes == [(1, 3, 64, 64)]  # padded to 32 multiples
    assert set(maps) == set(TASKS)
    exp = _expected(bgr)
    assert maps['semseg'].shape == (H, W)
    np.testing.assert_array_equal(maps['semseg'], exp['semseg'])
    np.testing.assert_allclose(maps['sal'], exp['sal'], atol=1e-5)
    assert maps['normals'].shape == (H, W, 3)
    np.testing.assert_allclose(maps['normals'], exp['normals'], atol=1e-5)
    np.testing.assert_allclose(maps['depth'], exp['depth'], atol=1e-5)
    # in-memory BGR arrays and batches give the same maps
    from_array = inference_multitask(model, bgr)
    np.testing.assert_array_equal(from_array['semseg'], exp['semseg'])
    batch = inference_multitask(model, list(images))
    assert isinstance(batch, list) and len(batch) == 2
    for (p, img), out in zip(images.items(), batch):
        np.testing.assert_array_equal(out['semseg'], _expected(img)['semseg'])
    samples = inference_multitask(model, [bgr], return_datasamples=True)
    assert samples[0].ori_shape == (H, W)


def test_pipeline_drops_annotations_and_rejects_bad_input(setup):
    cfg, ckpt, _ = setup
    model = init_model(cfg, ckpt)
    pipe = build_inference_pipeline(model.cfg, from_array=True)
    names = [type(t).__name__ for t in pipe.transforms]
    assert names == ['LoadImageFromNDArray', 'PackSegInputs']
    # the model's config is untouched
    assert model.cfg.test_pipeline[1]['type'] == 'LoadMultiTaskAnnotations'
    with pytest.raises(ValueError, match='BGR'):
        inference_multitask(model, np.zeros((4, 4), np.uint8))


def test_denoising_process_api(setup):
    cfg, ckpt, images = setup
    model = init_model(cfg, ckpt)
    path, bgr = next(iter(images.items()))
    process = inference_denoising_process(model, path, seed=3)
    assert [s for s, _ in process['semseg']
            ] == ['initial', 'noisy', 'step_1', 'final']
    final = dict(process['semseg'])['final']
    np.testing.assert_array_equal(final, _expected(bgr)['semseg'])
    assert dict(process['normals'])['noisy'].shape == (H, W, 3)
    again = inference_denoising_process(model, path, seed=3)
    np.testing.assert_array_equal(
        dict(process['depth'])['noisy'],
        dict(again['depth'])['noisy'])


def _load_demo():
    return load_tool('tools/image_demo.py')


def test_image_demo_writes_files_for_a_folder(setup, tmp_path):
    cfg, ckpt, images = setup
    demo = _load_demo()
    out = osp.join(tmp_path, 'out')
    img_dir = osp.dirname(next(iter(images)))
    written = demo.main(
        [img_dir, cfg, ckpt, '--out-dir', out, '--device', 'cpu', '--process'])
    expected = []
    for stem in ('a', 'b'):
        expected += [osp.join(out, stem, f'{t}.png') for t in TASKS]
        expected.append(osp.join(out, stem, 'panel.png'))
        expected += [osp.join(out, stem, f'process_{t}.png') for t in TASKS]
        expected.append(osp.join(out, stem, 'process.png'))
    assert sorted(written) == sorted(expected)
    assert all(osp.exists(p) for p in expected)
    bgr = images[osp.join(img_dir, 'a.png')]
    seg = mmcv.imread(osp.join(out, 'a', 'semseg.png'), channel_order='rgb')
    assert seg.shape == (H, W, 3)
    cls = _expected(bgr)['semseg']
    np.testing.assert_array_equal(seg, np.asarray(PALETTE, np.uint8)[cls])
    nrm = mmcv.imread(osp.join(out, 'a', 'normals.png'), channel_order='rgb')
    exp_n = np.round((_expected(bgr)['normals'] + 1) * 127.5)
    assert np.abs(nrm.astype(int) - exp_n).max() <= 1
    panel = mmcv.imread(osp.join(out, 'a', 'panel.png'))
    assert panel.shape[1] >= 5 * W


def test_image_demo_single_file_without_process(setup, tmp_path):
    cfg, ckpt, images = setup
    demo = _load_demo()
    out = osp.join(tmp_path, 'out1')
    path = next(iter(images))
    written = demo.main([path, cfg, ckpt, '--out-dir', out])
    assert len(written) == len(TASKS) + 1
    assert not any('process' in p for p in written)
    with pytest.raises(FileNotFoundError):
        demo.list_images(osp.join(tmp_path, 'missing'))


def test_centre_padding_pipeline_and_multitask_preprocessor(setup, tmp_path):
    """PASCAL-style test pipeline (MultiTaskPad centred, diffmtl's
    preprocessor): the fake model returns maps of the padded input, which
    must be cut at the recorded window, not at the top-left corner."""
    _, ckpt, images = setup
    cfg = Config.fromfile(_write_config(tmp_path))
    cfg.model.data_preprocessor = dict(type='MultiTaskDataPreProcessor',
                                       mean=[0., 0., 0.],
                                       std=[1., 1., 1.],
                                       test_cfg=dict(size_divisor=32))
    cfg.test_pipeline = [
        dict(type='LoadMultiTaskImageFromFile'),
        dict(type='LoadMultiTaskAnnotations'),
        dict(type='MultiTaskPad', size=(48, 80), center=True, pad_gt=False),
        dict(type='PackMultiTaskInputs'),
    ]
    model = init_model(cfg, ckpt)
    path, bgr = next(iter(images.items()))
    maps = inference_multitask(model, path)
    assert model.seen_shapes == [(1, 3, 64, 96)]
    exp = _expected(bgr)
    np.testing.assert_array_equal(maps['semseg'], exp['semseg'])
    np.testing.assert_allclose(maps['depth'], exp['depth'], atol=1e-5)
    process = inference_denoising_process(model, bgr)
    np.testing.assert_array_equal(
        dict(process['semseg'])['final'], exp['semseg'])
    np.testing.assert_allclose(dict(process['normals'])['final'],
                               exp['normals'],
                               atol=1e-5)
