# Copyright (c) diffmtl contributors. All rights reserved.
import os
import os.path as osp
from types import SimpleNamespace

import mmcv
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from diffmtl.registry import HOOKS, VISUALIZERS
from diffmtl.visualization import (HATCH_COLOR, IGNORE_COLOR,
                                   MultiTaskLocalVisualizer, voc_palette)

H, W = 20, 30
META = dict(
    tasks=('semseg', 'sal', 'normals', 'depth'),
    classes=('bg', 'cat', 'dog'),
    palette=[[0, 0, 0], [200, 10, 20], [30, 220, 40]],
    task_classes=dict(semseg=('bg', 'cat', 'dog')),
    task_palettes=dict(semseg=[[0, 0, 0], [200, 10, 20], [30, 220, 40]]))


def _sample(normals_labelled=False, img_path=None):
    """Semseg GT: class 1 in the left half, 2 in the right half; prediction
    all 2. Normals unlabelled (unless asked), predicted (0, 0, 1)."""
    gt_seg = torch.ones(1, H, W, dtype=torch.long)
    gt_seg[:, :, W // 2:] = 2
    gt_depth = torch.linspace(1, 5, H * W).reshape(1, H, W)
    metainfo = dict(tasks=META['tasks'],
                    task_mask=(True, True, normals_labelled, True),
                    ori_shape=(H, W),
                    img_shape=(H, W))
    if img_path:
        metainfo['img_path'] = img_path
    s = SegDataSample(metainfo=metainfo)
    s.gt_sem_seg = PixelData(data=gt_seg)
    s.gt_sal = PixelData(data=torch.zeros(1, H, W, dtype=torch.long))
    s.gt_normals = PixelData(data=torch.zeros(3, H, W))
    s.gt_depth = PixelData(data=gt_depth)
    s.pred_sem_seg = PixelData(data=torch.full((1, H, W), 2))
    s.pred_sal = PixelData(data=torch.full((1, H, W), 1.0))
    n = torch.zeros(3, H, W)
    n[2] = 1
    s.pred_normals = PixelData(data=n)
    s.pred_depth = PixelData(data=gt_depth.clone())
    return s


def _image():
    rng = np.random.RandomState(0)
    return rng.randint(0, 255, (H, W, 3)).astype(np.uint8)


def _tile_pixel(vis, canvas, row, task, y, x):
    oy, ox = vis.last_layout[(row, task)]
    return canvas[oy + vis.last_caption_height + y, ox + x].tolist()


def test_built_from_registry_with_default_runtime_cfg(tmp_path):
    vis = VISUALIZERS.build(
        dict(type='MultiTaskLocalVisualizer',
             vis_backends=[dict(type='LocalVisBackend')],
             save_dir=str(tmp_path),
             name='vis_registry_test'))
    assert isinstance(vis, MultiTaskLocalVisualizer)


def test_grid_colours_at_known_pixels(tmp_path):
    vis = MultiTaskLocalVisualizer(name='vis_grid_test')
    vis.dataset_meta = META
    image = _image()
    out = osp.join(tmp_path, 'out.png')
    vis.add_datasample('x', image, _sample(), out_file=out)
    assert osp.exists(out)
    canvas = mmcv.imread(out, channel_order='rgb')
    np.testing.assert_array_equal(canvas, vis.get_image())
    # image tiles in both rows are the input
    oy, ox = vis.last_layout[('gt', 'image')]
    c = vis.last_caption_height
    np.testing.assert_array_equal(canvas[oy + c:oy + c + H, ox:ox + W], image)
    # GT above prediction, semseg GT class 1 left / 2 right, prediction 2
    assert vis.last_layout[('gt', 'semseg')][0] < \
        vis.last_layout[('pred', 'semseg')][0]
    assert _tile_pixel(vis, canvas, 'gt', 'semseg', 5, 2) == [200, 10, 20]
    assert _tile_pixel(vis, canvas, 'gt', 'semseg', 5, 25) == [30, 220, 40]
    assert _tile_pixel(vis, canvas, 'pred', 'semseg', 5, 2) == [30, 220, 40]
    # saliency GT 0 is black, prediction 1 is white
    assert _tile_pixel(vis, canvas, 'gt', 'sal', 3, 3) == [0, 0, 0]
    assert _tile_pixel(vis, canvas, 'pred', 'sal', 3, 3) == [255, 255, 255]
    # normals are unlabelled: hatched GT tile; prediction (0,0,1)
    assert _tile_pixel(vis, canvas, 'gt', 'normals', 0, 0) == \
        list(HATCH_COLOR)
    assert _tile_pixel(vis, canvas, 'gt', 'normals', 0, 8) == \
        list(HATCH_COLOR)
    assert _tile_pixel(vis, canvas, 'pred', 'normals', 4, 4) == \
        [128, 128, 255]
    # depth GT and prediction share one colour scale: identical tiles
    gy, gx = vis.last_layout[('gt', 'depth')]
    py, px = vis.last_layout[('pred', 'depth')]
    np.testing.assert_array_equal(canvas[gy + c:gy + c + H, gx:gx + W],
                                  canvas[py + c:py + c + H, px:px + W])
    # a legend row lists the semseg classes present (1 and 2)
    ly, lx = vis.last_layout[('legend', 'semseg')]
    assert canvas[ly + 6, lx + 5].tolist() == [200, 10, 20]
    assert canvas[ly + 14 + 6, lx + 5].tolist() == [30, 220, 40]


def test_labelled_normals_and_no_legend():
    vis = MultiTaskLocalVisualizer(name='vis_labelled_test')
    vis.dataset_meta = META
    s = _sample(normals_labelled=True)
    s.gt_normals.data[0] = 1.0  # (1, 0, 0)
    vis.add_datasample('x', _image(), s, out_file=None, with_labels=False)
    canvas = vis.get_image()
    assert _tile_pixel(vis, canvas, 'gt', 'normals', 2, 2) == [255, 128, 128]
    assert ('legend', 'semseg') not in vis.last_layout


def test_prediction_only_and_padded_gt(tmp_path):
    vis = MultiTaskLocalVisualizer(name='vis_pred_only_test')
    vis.dataset_meta = META
    s = _sample()
    padded = torch.full((1, H + 4, W + 6), 255, dtype=torch.long)
    padded[:, :H, :W] = s.gt_sem_seg.data
    s.gt_sem_seg = PixelData(data=padded)
    s.set_metainfo(dict(pad_shape=(H + 4, W + 6)))
    canvas = vis.draw_multitask(_image(), s, draw_gt=True, draw_pred=False)
    assert ('pred', 'semseg') not in vis.last_layout
    # padding is cropped away: the tile's last pixel is still class 2
    assert _tile_pixel(vis, canvas, 'gt', 'semseg', H - 1, W - 1) == \
        [30, 220, 40]
    assert IGNORE_COLOR not in [tuple(p) for p in canvas.reshape(-1, 3)]


def test_tasks_without_meta_use_sample_fields():
    vis = MultiTaskLocalVisualizer(name='vis_nometa_test')
    vis.dataset_meta = {}
    s = SegDataSample()
    s.pred_human_parts = PixelData(data=torch.full((1, H, W), 3))
    canvas = vis.draw_multitask(_image(), s)
    assert [k for k in vis.last_layout
            if k[0] == 'pred'] == [('pred', 'image'), ('pred', 'human_parts')]
    assert _tile_pixel(vis, canvas, 'pred', 'human_parts', 1, 1) == \
        voc_palette(7)[3]


@pytest.mark.parametrize('mode', ['val', 'test'])
def test_driven_by_visualization_hook(tmp_path, mode):
    """tools/test.py --show-dir path: MultiTaskVisualizationHook ->
    add_datasample -> LocalVisBackend file, for every sample of every
    ``interval``-th batch, named by the loop's mode and ``runner.iter``."""
    vis = MultiTaskLocalVisualizer(name=f'vis_hook_test_{mode}',
                                   vis_backends=[dict(type='LocalVisBackend')],
                                   save_dir=str(tmp_path))
    vis.dataset_meta = META
    paths = []
    for i in range(2):
        paths.append(osp.join(tmp_path, f'img_{i}.png'))
        mmcv.imwrite(mmcv.rgb2bgr(_image()), paths[-1])
    hook = HOOKS.build(dict(type='MultiTaskVisualizationHook', draw=True,
                            interval=2))
    hook._visualizer = vis
    after_iter = getattr(hook, f'after_{mode}_iter')
    runner = SimpleNamespace(iter=7)
    batch = [_sample(img_path=p) for p in paths]
    after_iter(runner, 0, {}, batch)
    after_iter(runner, 1, {}, batch)  # not an interval-th batch
    vis_dir = osp.join(tmp_path, 'vis_data', 'vis_image')
    assert sorted(os.listdir(vis_dir)) == [
        f'{mode}_img_0.png_7.png', f'{mode}_img_1.png_7.png'
    ]
    canvas = mmcv.imread(
        osp.join(vis_dir, f'{mode}_img_1.png_7.png'), channel_order='rgb')
    assert _tile_pixel(vis, canvas, 'pred', 'semseg', 0, 0) == [30, 220, 40]


def test_rescaled_gt_is_resized_not_cropped():
    """GT at twice the image size without padding metainfo (a test
    pipeline upscaled it): nearest resize keeps both halves."""
    vis = MultiTaskLocalVisualizer(name='vis_rescaled_test')
    vis.dataset_meta = META
    s = _sample()
    big = torch.ones(1, 2 * H, 2 * W, dtype=torch.long)
    big[:, :, W:] = 2  # right half (of the big map) class 2
    s.gt_sem_seg = PixelData(data=big)
    canvas = vis.draw_multitask(_image(), s, draw_pred=False)
    assert _tile_pixel(vis, canvas, 'gt', 'semseg', H - 1, 2) == \
        [200, 10, 20]
    assert _tile_pixel(vis, canvas, 'gt', 'semseg', H - 1, W - 2) == \
        [30, 220, 40]


def test_constructor_classes_and_palette_are_not_swapped():
    vis = MultiTaskLocalVisualizer(name='vis_ctor_meta',
                                   classes=('bg', 'cat', 'dog'),
                                   palette=[[0, 0, 0], [200, 10, 20],
                                            [30, 220, 40]])
    assert vis.dataset_meta['classes'] == ('bg', 'cat', 'dog')
    s = SegDataSample()
    s.pred_sem_seg = PixelData(data=torch.full((1, H, W), 1))
    canvas = vis.draw_multitask(_image(), s)
    assert _tile_pixel(vis, canvas, 'pred', 'semseg', 0, 0) == [200, 10, 20]
