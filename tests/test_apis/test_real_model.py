# Copyright (c) diffmtl contributors. All rights reserved.
"""The inference API, demo and denoising hook with the real DiffusionMTL
(a tiny, randomly initialised configuration) and diffmtl's own data
pipeline and preprocessor."""
import os.path as osp
from types import SimpleNamespace

import mmcv
import numpy as np
import pytest
import torch
from tool_runner import load_tool

from diffmtl.registry import TRANSFORMS
from _tiny_real_config import CONFIG, TASKS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
H, W = 37, 50  # non-square, not a multiple of 32


@pytest.fixture(scope='module')
def real(tmp_path_factory):
    torch.set_num_threads(1)
    from diffmtl.apis import init_model
    root = tmp_path_factory.mktemp('real')
    cfg = osp.join(root, 'cfg.py')
    with open(cfg, 'w') as f:
        f.write(CONFIG)
    torch.manual_seed(0)
    model = init_model(cfg)
    ckpt = osp.join(root, 'model.pth')
    torch.save(
        dict(state_dict=model.state_dict(),
             meta=dict(dataset_meta=model.dataset_meta)), ckpt)
    img = np.random.RandomState(0).randint(0, 256, (H, W, 3)).astype(np.uint8)
    img_path = osp.join(root, 'imgs', 'scene.png')
    mmcv.imwrite(img, img_path)
    return SimpleNamespace(root=root,
                           cfg=cfg,
                           ckpt=ckpt,
                           img=img,
                           img_path=img_path)


def test_inference_matches_model_at_original_size(real):
    from diffmtl.apis import inference_multitask, init_model
    model = init_model(real.cfg, real.ckpt)
    maps = inference_multitask(model, real.img_path)
    assert set(maps) == set(TASKS)
    for task, arr in maps.items():
        assert arr.shape[:2] == (H, W), task
    assert maps['normals'].shape == (H, W, 3)
    np.testing.assert_allclose(np.linalg.norm(maps['normals'], axis=-1),
                               1.0,
                               atol=1e-4)
    assert maps['semseg'].min() >= 0 and maps['semseg'].max() < 6
    assert ((maps['sal'] >= 0) & (maps['sal'] <= 1)).all()
    # same weights and seed of the diffusion noise -> same maps from an
    # in-memory array, loaded through LoadImageFromNDArray
    torch.manual_seed(1)
    a = inference_multitask(model, real.img_path)
    torch.manual_seed(1)
    b = inference_multitask(model, real.img.copy())
    for task in TASKS:
        np.testing.assert_allclose(a[task], b[task], atol=1e-5)


def test_demo_with_process_on_real_model(real):
    demo = load_tool('tools/image_demo.py', 'image_demo_real')
    out = osp.join(real.root, 'out')
    written = demo.main([
        osp.dirname(real.img_path), real.cfg, real.ckpt, '--out-dir', out,
        '--process'
    ])
    names = sorted(osp.relpath(p, out) for p in written)
    expected = sorted([f'scene/{t}.png' for t in TASKS] +
                      [f'scene/process_{t}.png' for t in TASKS] +
                      ['scene/panel.png', 'scene/process.png'])
    assert names == expected
    for task in TASKS:
        tile = mmcv.imread(osp.join(out, 'scene', f'{task}.png'))
        assert tile.shape == (H, W, 3)


def test_hook_with_real_model_and_pipeline(real, tmp_path):
    from diffmtl.apis import init_model
    from diffmtl.visualization import (HATCH_COLOR, DenoisingProcessHook,
                                       MultiTaskLocalVisualizer)
    model = init_model(real.cfg, real.ckpt)
    pack = TRANSFORMS.build(dict(type='PackMultiTaskInputs'))
    gt_seg = np.zeros((H, W), np.uint8)
    gt_seg[:, W // 2:] = 3
    results = dict(img=real.img,
                   img_path=real.img_path,
                   img_id='scene',
                   ori_shape=(H, W),
                   img_shape=(H, W),
                   tasks=TASKS,
                   task_mask=(True, ) + (False, ) * 5,
                   gt_seg_map=gt_seg)
    item = pack(results)

    class OneImage:
        metainfo = model.dataset_meta

        def __len__(self):
            return 1

        def __getitem__(self, i):
            return pack(dict(results))

    vis = MultiTaskLocalVisualizer(name='vis_real_hook')
    runner = SimpleNamespace(
        model=model,
        work_dir=str(tmp_path),
        iter=3,
        visualizer=vis,
        val_loop=SimpleNamespace(dataloader=SimpleNamespace(
            dataset=OneImage())))
    hook = DenoisingProcessHook(image_indices=(0, ))
    hook.after_val_epoch(runner)
    assert len(hook.last_files) == len(TASKS) + 1
    strip = mmcv.imread(osp.join(tmp_path, 'denoising_process', 'val_iter_3',
                                 'scene_semseg.png'),
                        channel_order='rgb')
    cap = strip.shape[0] - H
    # last tile = GT: left half class 0, right half class 3
    palette = model.dataset_meta['task_palettes']['semseg']
    gt_tile = strip[cap:, -W:]
    assert gt_tile[5, 2].tolist() == list(palette[0])
    assert gt_tile[5, W - 3].tolist() == list(palette[3])
    # first tile = the input image in RGB
    np.testing.assert_array_equal(strip[cap:, :W], real.img[..., ::-1])
    depth = mmcv.imread(osp.join(tmp_path, 'denoising_process', 'val_iter_3',
                                 'scene_depth.png'),
                        channel_order='rgb')
    assert depth[cap, -W:].tolist()[0] == list(HATCH_COLOR)  # unlabelled
    assert item['data_samples'].metainfo['task_mask'][0]
