# Copyright (c) diffmtl contributors. All rights reserved.
"""tools/analysis_tools/browse_dataset.py on a tiny folder dataset."""
import json
import os
import os.path as osp

import cv2
import numpy as np
from tool_runner import load_tool

from diffmtl.visualization import (IGNORE_COLOR, draw_caption,
                                   draw_unlabelled_tile)

TOOL = 'tools/analysis_tools/browse_dataset.py'
H, W = 5, 7
PALETTE = [[0, 0, 0], [255, 0, 0], [0, 255, 0]]


def make_dataset(root):
    for d in ('images', 'semseg', 'normals', 'depth', 'splits', 'mappings'):
        os.makedirs(osp.join(root, d), exist_ok=True)
    with open(osp.join(root, 'meta.json'), 'w') as f:
        json.dump(
            dict(tasks=['semseg', 'normals', 'depth'],
                 task_classes=dict(semseg=['bg', 'box', 'ball']),
                 task_palettes=dict(semseg=PALETTE),
                 depth_scale=100), f)
    with open(osp.join(root, 'splits', 'train.txt'), 'w') as f:
        f.write('a\nb\n')
    with open(osp.join(root, 'mappings', 'one.json'), 'w') as f:
        json.dump(
            dict(tasks=['semseg', 'normals', 'depth'],
                 labels=dict(a=['semseg'], b=['normals', 'depth'])), f)
    imgs = {}
    for k, i in enumerate('ab'):
        rng = np.random.default_rng(k)
        img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)  # RGB
        seg = np.ones((H, W), np.uint8)
        seg[0, 0] = 255
        seg[1, 1] = 2
        depth = np.full((H, W), 250, np.uint16)
        depth[2, 3] = 0
        nrm = np.full((H, W, 3), 128, np.uint8)
        cv2.imwrite(osp.join(root, 'images', i + '.png'), img[..., ::-1])
        cv2.imwrite(osp.join(root, 'semseg', i + '.png'), seg)
        cv2.imwrite(osp.join(root, 'depth', i + '.png'), depth)
        cv2.imwrite(osp.join(root, 'normals', i + '.png'), nrm)
        imgs[i] = img
    return imgs


def write_config(path, root):
    cfg = f"""
default_scope = 'mmseg'
custom_imports = dict(imports=['diffmtl'], allow_failed_imports=False)
train_dataloader = dict(dataset=dict(
    type='FolderMultiTaskDataset', data_root={root!r}, split='train',
    label_setting='one', label_mapping='mappings/one.json',
    pipeline=[
        dict(type='LoadMultiTaskImageFromFile'),
        dict(type='LoadMultiTaskAnnotations'),
        dict(type='MultiTaskPad', size=(8, 10)),
        dict(type='PackMultiTaskInputs'),
    ]))
"""
    with open(path, 'w') as f:
        f.write(cfg)


def test_browse_dataset_draws_every_task(tmp_path):
    root = str(tmp_path / 'data')
    imgs = make_dataset(root)
    cfg = str(tmp_path / 'cfg.py')
    write_config(cfg, root)
    out_dir = str(tmp_path / 'out')
    tool = load_tool(TOOL)
    assert tool.main([cfg, '--output-dir', out_dir, '--max', '0']) == 0
    files = sorted(os.listdir(out_dir))
    assert files == ['00000_a.png', '00001_b.png']

    cap = 14  # caption bar height for 10-pixel-wide tiles
    gap = 4
    x0 = [k * (10 + gap) for k in range(4)]  # image, semseg, normals, depth
    pic_a = cv2.imread(osp.join(out_dir, files[0]))[..., ::-1]
    pic_b = cv2.imread(osp.join(out_dir, files[1]))[..., ::-1]
    assert pic_a.shape == (cap + 8, 4 * 10 + 3 * gap, 3)
    # the image tile is the RGB image, padded (bottom/right) with 0
    tile = pic_a[cap:, x0[0]:x0[0] + 10]
    np.testing.assert_array_equal(tile[:H, :W], imgs['a'])
    assert (tile[H:] == 0).all() and (tile[:, W:] == 0).all()
    # semseg of 'a' with the dataset palette; ignore and padding marked
    tile = pic_a[cap:, x0[1]:x0[1] + 10]
    assert tuple(tile[2, 2]) == tuple(PALETTE[1])
    assert tuple(tile[1, 1]) == tuple(PALETTE[2])
    assert tuple(tile[0, 0]) == IGNORE_COLOR
    assert tuple(tile[7, 9]) == IGNORE_COLOR
    # normals and depth are unlabelled for 'a'
    for k, task in ((2, 'normals'), (3, 'depth')):
        expect = draw_caption(draw_unlabelled_tile(8, 10),
                              f'{task} (unlabelled)')
        np.testing.assert_array_equal(pic_a[:, x0[k]:x0[k] + 10], expect)
    # 'b': semseg unlabelled, depth drawn with invalid (0) pixels marked
    expect = draw_caption(draw_unlabelled_tile(8, 10), 'semseg (unlabelled)')
    np.testing.assert_array_equal(pic_b[:, x0[1]:x0[1] + 10], expect)
    depth = pic_b[cap:, x0[3]:x0[3] + 10]
    assert tuple(depth[2, 3]) == IGNORE_COLOR
    assert tuple(depth[0, 0]) != IGNORE_COLOR
    assert tuple(depth[7, 9]) == IGNORE_COLOR  # padded with 0
    # normals: PNG value 128 decodes to n = (1, 1, 1) / 255, drawn as the
    # unit vector's (n + 1) / 2; the zero-padded border is marked
    normals = pic_b[cap:, x0[2]:x0[2] + 10]
    unit = round((1 / np.sqrt(3) + 1) * 127.5)
    assert (normals[:H, :W] == unit).all()
    assert tuple(normals[7, 9]) == IGNORE_COLOR


def test_image_to_rgb_uint8():
    tool = load_tool(TOOL)
    bgr = np.zeros((3, 2, 2), np.uint8)
    bgr[0] = 10  # blue
    bgr[2] = 200  # red
    rgb = tool.image_to_rgb_uint8(bgr, 'bgr')
    assert rgb.shape == (2, 2, 3)
    assert (rgb[..., 0] == 200).all() and (rgb[..., 2] == 10).all()
    unit = np.full((3, 2, 2), 0.5, np.float32)
    assert (tool.image_to_rgb_uint8(unit, 'rgb') == 128).all()
    wide = np.stack([np.array([[-1., 1.], [0., 1.]], np.float32)] * 3)
    out = tool.image_to_rgb_uint8(wide, 'rgb')
    assert out[0, 0, 0] == 0 and out[0, 1, 0] == 255
