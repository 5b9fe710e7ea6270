# Copyright (c) diffmtl contributors. All rights reserved.
import os.path as osp
from types import SimpleNamespace

import mmcv
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.structures import PixelData
from mmseg.models import SegDataPreProcessor
from mmseg.structures import SegDataSample

from diffmtl.apis import run_denoising_process
from diffmtl.registry import HOOKS
from diffmtl.visualization import (HATCH_COLOR, DenoisingProcessHook,
                                   MultiTaskLocalVisualizer)
from diffmtl.visualization.multitask_visualizer import GAP

H, W = 20, 30  # padded to 24 x 32 by the preprocessor (size_divisor 8)
PALETTE = [[10, 20, 30], [200, 10, 20], [30, 220, 40]]
META = dict(tasks=('semseg', 'normals'),
            task_classes=dict(semseg=('a', 'b', 'c')),
            task_palettes=dict(semseg=PALETTE))
STAGES = ('initial', 'noisy', 'step_1', 'final')


def _onehot(cls, shape, n=3):
    x = torch.zeros(shape[0], n, *shape[2:])
    x[:, cls] = 5.0
    return x


class FakeDiffusionModel(nn.Module):
    """Stages: semseg class 1 -> noise -> class 0 -> class 2; normals
    x -> noise -> y -> z."""

    def __init__(self):
        super().__init__()
        self.data_preprocessor = SegDataPreProcessor(
            mean=[0., 0., 0.], std=[1., 1., 1.], test_cfg=dict(size_divisor=8))
        self.seen_shapes = []
        self.was_eval = []

    def denoising_process(self, inputs):
        self.seen_shapes.append(tuple(inputs.shape))
        self.was_eval.append(not self.training)
        b, _, h, w = inputs.shape
        shape = (b, 3, h, w)

        def vec(i):
            v = torch.zeros(shape)
            v[:, i] = 1.0
            return v

        return dict(semseg=[('initial', _onehot(1, shape)),
                            ('noisy', torch.randn(shape)),
                            ('step_1', _onehot(0, shape)),
                            ('final', _onehot(2, shape))],
                    normals=[('initial', vec(0)),
                             ('noisy', torch.randn(shape)), ('step_1', vec(1)),
                             ('final', vec(2))])


class FakeDataset:
    metainfo = META

    def __init__(self, n=2):
        rng = np.random.RandomState(1)
        self.images = [
            rng.randint(0, 255, (H, W, 3)).astype(np.uint8) for _ in range(n)
        ]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        bgr = self.images[i]
        gt = torch.zeros(1, H, W, dtype=torch.long)
        gt[:, H // 2:] = 1
        s = SegDataSample(metainfo=dict(img_id=f'im{i}',
                                        tasks=META['tasks'],
                                        task_mask=(True, False),
                                        img_shape=(H, W),
                                        ori_shape=(H, W)))
        s.gt_sem_seg = PixelData(data=gt)
        s.gt_normals = PixelData(data=torch.zeros(3, H, W))
        inputs = torch.from_numpy(bgr.transpose(2, 0, 1).copy())
        return dict(inputs=inputs, data_samples=s)


def _runner(tmp_path, model, name):
    vis = MultiTaskLocalVisualizer(name=name,
                                   vis_backends=[dict(type='LocalVisBackend')],
                                   save_dir=str(tmp_path))
    ds = FakeDataset()
    return SimpleNamespace(
        model=model,
        work_dir=str(tmp_path),
        iter=5,
        visualizer=vis,
        val_loop=SimpleNamespace(dataloader=SimpleNamespace(dataset=ds)),
        test_loop=SimpleNamespace(dataloader=SimpleNamespace(dataset=ds)))


def _tile(strip, j):
    cap = strip.shape[0] - H
    x = j * (W + GAP)
    return strip[cap:cap + H, x:x + W]


def test_hook_writes_strips_panel_and_backend_image(tmp_path):
    model = FakeDiffusionModel().train()
    runner = _runner(tmp_path, model, 'vis_dph_1')
    hook = HOOKS.build(
        dict(type='DenoisingProcessHook', image_indices=(1, ), interval=1))
    rng_before = torch.get_rng_state()
    hook.after_val_epoch(runner)
    assert torch.equal(rng_before, torch.get_rng_state())
    assert model.training and model.was_eval == [True]
    assert model.seen_shapes == [(1, 3, 24, 32)]

    out = osp.join(tmp_path, 'denoising_process', 'val_iter_5')
    for name in ('im1_semseg.png', 'im1_normals.png', 'im1.png'):
        assert osp.join(out, name) in hook.last_files
        assert osp.exists(osp.join(out, name))
    assert osp.exists(
        osp.join(tmp_path, 'vis_data', 'vis_image', 'val_denoising_im1_5.png'))

    strip = mmcv.imread(osp.join(out, 'im1_semseg.png'), channel_order='rgb')
    # image | initial | noisy | step_1 | final | GT, padding removed
    assert strip.shape[1] == 6 * W + 5 * GAP
    bgr = runner.val_loop.dataloader.dataset.images[1]
    np.testing.assert_array_equal(_tile(strip, 0), bgr[..., ::-1])
    assert (_tile(strip, 1) == PALETTE[1]).all()
    assert (_tile(strip, 3) == PALETTE[0]).all()
    assert (_tile(strip, 4) == PALETTE[2]).all()
    gt_tile = _tile(strip, 5)
    assert (gt_tile[:H // 2] == PALETTE[0]).all()
    assert (gt_tile[H // 2:] == PALETTE[1]).all()

    normals = mmcv.imread(osp.join(out, 'im1_normals.png'),
                          channel_order='rgb')
    assert (_tile(normals, 1) == [255, 128, 128]).all()
    assert (_tile(normals, 3) == [128, 255, 128]).all()
    assert (_tile(normals, 4) == [128, 128, 255]).all()
    # normals are unlabelled for this image: hatched GT tile
    assert _tile(normals, 5)[0, 0].tolist() == list(HATCH_COLOR)

    panel = mmcv.imread(osp.join(out, 'im1.png'), channel_order='rgb')
    assert panel.shape[0] == 2 * strip.shape[0] + GAP


def test_noise_is_seeded_and_interval_counts_validations(tmp_path):
    model = FakeDiffusionModel()
    runner = _runner(tmp_path, model, 'vis_dph_2')
    hook = DenoisingProcessHook(image_indices=(0, ), interval=2)
    hook.after_val_epoch(runner)
    assert hook.last_files == [] and model.seen_shapes == []
    hook.after_val_epoch(runner)
    first = mmcv.imread(hook.last_files[0])
    runner.iter = 6
    hook.after_val_epoch(runner)
    hook.after_val_epoch(runner)
    second = mmcv.imread(hook.last_files[0])
    assert hook.last_files[0].endswith(osp.join('val_iter_6',
                                                'im0_semseg.png'))
    np.testing.assert_array_equal(first, second)  # same seeded noise

    other = DenoisingProcessHook(image_indices=(0, ), seed=1)
    runner.iter = 7
    other.after_val_epoch(runner)
    third = mmcv.imread(other.last_files[0])
    assert not np.array_equal(_tile(first, 2), _tile(third, 2))
    np.testing.assert_array_equal(_tile(first, 4), _tile(third, 4))


def test_test_loop_out_of_range_and_models_without_process(tmp_path):
    model = FakeDiffusionModel()
    runner = _runner(tmp_path, model, 'vis_dph_3')
    hook = DenoisingProcessHook(image_indices=(0, 9), draw_on=('test', ))
    hook.after_val_epoch(runner)
    assert model.seen_shapes == []
    hook.after_test_epoch(runner)
    assert len(model.seen_shapes) == 1  # index 9 skipped
    assert all('test_iter_5' in f for f in hook.last_files)

    runner.model = nn.Linear(1, 1)
    hook = DenoisingProcessHook()
    hook.after_val_epoch(runner)
    assert not hook.enabled and hook.last_files == []
    with pytest.raises(AttributeError, match='denoising_process'):
        run_denoising_process(nn.Linear(1, 1), dict(inputs=[],
                                                    data_samples=[]))


def test_invalid_arguments():
    with pytest.raises(ValueError, match='interval'):
        DenoisingProcessHook(interval=0)
    with pytest.raises(ValueError, match='draw_on'):
        DenoisingProcessHook(draw_on=('train', ))


def test_unpad_window_reads_padding_metainfo():
    from diffmtl.visualization import unpad_window
    # diffmtl's total padding (left, right, top, bottom)
    assert unpad_window(dict(padding_size=(2, 3, 1, 4), img_shape=(9, 9)),
                        (20, 30)) == (1, 16, 2, 27)
    # mmseg's test-mode key
    assert unpad_window(dict(img_padding_size=[0, 5, 0, 6]),
                        (20, 30)) == (0, 14, 0, 25)
    # only the pre-padding shape
    assert unpad_window(dict(img_shape=(10, 12)), (16, 16)) == (0, 10, 0, 12)
    assert unpad_window({}, (16, 16)) == (0, 16, 0, 16)


def test_stages_cropped_with_top_left_padding(tmp_path):
    """A preprocessor that pads on all sides: stages and the displayed
    image are cut to the image window."""
    model = FakeDiffusionModel()

    class AllSidesPad(nn.Module):

        def forward(self, data, training=False):
            x = data['inputs'][0].float()[None]
            x = torch.nn.functional.pad(x, (1, 3, 2, 2))  # l, r, t, b
            s = data['data_samples'][0]
            s.set_metainfo(dict(padding_size=(1, 3, 2, 2)))
            return dict(inputs=x, data_samples=[s])

    model.data_preprocessor = AllSidesPad()
    item = FakeDataset()[0]
    res = run_denoising_process(
        model,
        dict(inputs=[item['inputs']], data_samples=[item['data_samples']]))[0]
    assert model.seen_shapes == [(1, 3, H + 4, W + 4)]
    assert res['window'] == (2, H + 2, 1, W + 1)
    assert tuple(res['semseg'][0][1].shape) == (1, H, W)
    assert tuple(res['normals'][-1][1].shape) == (3, H, W)


@pytest.mark.slow
def test_test_run_does_not_build_a_train_loop(tmp_path):
    """In tools/test.py the train loop is still a config dict; reading
    runner.iter would build it (and its dataset). The hook uses step 0."""
    model = FakeDiffusionModel()
    base = _runner(tmp_path, model, 'vis_dph_4')

    class TestRunner:
        _train_loop = dict(type='IterBasedTrainLoop', max_iters=10)

        def __getattr__(self, name):
            return getattr(base, name)

        @property
        def iter(self):
            raise AssertionError('train loop built')

    hook = DenoisingProcessHook(image_indices=(0, ), draw_on=('test', ))
    hook.after_test_epoch(TestRunner())
    assert hook.last_files and all(
        osp.join('test_iter_0', '') in f for f in hook.last_files)


def test_hook_with_centre_padding_pipeline(tmp_path):
    """PASCAL-style test data: MultiTaskPad(center=True) then diffmtl's
    preprocessor; the strip shows the unpadded image and GT."""
    from diffmtl.registry import MODELS, TRANSFORMS
    pad = TRANSFORMS.build(
        dict(type='MultiTaskPad', size=(32, 40), center=True, pad_gt=False))
    pack = TRANSFORMS.build(dict(type='PackMultiTaskInputs'))
    bgr = FakeDataset().images[0]
    gt = np.zeros((H, W), np.uint8)
    gt[H // 2:] = 1

    class PaddedDataset(FakeDataset):

        def __getitem__(self, i):
            results = dict(img=bgr.copy(),
                           img_shape=(H, W),
                           ori_shape=(H, W),
                           img_id='pad',
                           tasks=('semseg', ),
                           task_mask=(True, ),
                           gt_seg_map=gt.copy(),
                           seg_fields=['gt_seg_map'])
            return pack(pad(results))

    model = FakeDiffusionModel()
    model.data_preprocessor = MODELS.build(
        dict(type='MultiTaskDataPreProcessor',
             mean=[0., 0., 0.],
             std=[1., 1., 1.],
             test_cfg=dict(size_divisor=8)))
    runner = _runner(tmp_path, model, 'vis_dph_5')
    runner.val_loop.dataloader.dataset = PaddedDataset()
    hook = DenoisingProcessHook(image_indices=(0, ), tasks=('semseg', ))
    hook.after_val_epoch(runner)
    assert model.seen_shapes == [(1, 3, 32, 40)]
    strip = mmcv.imread(hook.last_files[0], channel_order='rgb')
    assert hook.last_files[0].endswith('pad_semseg.png')
    assert strip.shape[1] == 6 * W + 5 * GAP
    np.testing.assert_array_equal(_tile(strip, 0), bgr[..., ::-1])
    assert (_tile(strip, 4) == PALETTE[2]).all()
    gt_tile = _tile(strip, 5)
    assert (gt_tile[:H // 2] == PALETTE[0]).all()
    assert (gt_tile[H // 2:] == PALETTE[1]).all()
