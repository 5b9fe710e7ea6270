# Copyright (c) diffmtl contributors. All rights reserved.
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

import diffmtl  # noqa: F401
from diffmtl.datasets import dump_label_mapping
from diffmtl.registry import DATASETS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _cfg(name):
    return Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'datasets', name))


def _build(cfg, loader, root, **overrides):
    ds_cfg = cfg[loader].dataset.copy()
    ds_cfg.update(data_root=root, **overrides)
    return DATASETS.build(ds_cfg)


def test_pascal_config_pipelines(tmp_path):
    from test_pascal_context_mt import TRAIN, make_pascal
    root = str(tmp_path / 'PASCALContext')
    make_pascal(root)
    cfg = _cfg('pascal_context_mt.py')
    assert cfg.crop_size == (512, 512)
    assert cfg.val_evaluator == dict(type='MultiTaskMetric')
    one = str(tmp_path / 'one.json')
    rnd = str(tmp_path / 'rnd.json')
    tasks = cfg.tasks
    dump_label_mapping({i: (True, False, False, False, False)
                        for i in TRAIN}, tasks, one)
    dump_label_mapping({i: (False, True, True, False, False)
                        for i in TRAIN}, tasks, rnd)
    mapping = dict(one=one, random=rnd, full=None)
    # A child config switches the setting alone; the file follows it.
    ds = _build(cfg, 'train_dataloader', root, label_mapping=mapping,
                label_setting='random')
    mask = ds.get_data_info(0)['task_mask']
    assert mask == (False, True, True, False, False)
    ds = _build(cfg, 'train_dataloader', root, label_mapping=mapping)
    out = ds[0]
    sample = out['data_samples']
    assert tuple(out['inputs'].shape) == (3, 512, 512)
    assert sample.metainfo['task_mask'] == (True, False, False, False, False)
    assert sample.metainfo['tasks'] == tasks
    # Unlabelled human parts: all ignore after crop/flip/pad.
    assert (sample.gt_human_parts.data == 255).all()
    assert sample.gt_normals.data.shape == (3, 512, 512)
    val = _build(cfg, 'val_dataloader', root, split='val')
    vout = val[0]
    assert vout['data_samples'].metainfo['task_mask'] == (True, ) * 5
    assert tuple(vout['inputs'].shape) == (3, 512, 512)


@pytest.mark.parametrize('name,make_kw', [
    ('nyud_mt.py', dict()),
    ('cityscapes_mt.py', dict(label_dir='label_7', extra=('depth', ),
                              num_classes=7)),
])
def test_npy_configs(tmp_path, name, make_kw):
    from test_nyud_cityscapes_mt import make_mtan
    root = str(tmp_path / 'data')
    make_mtan(root, 'train', 3, **make_kw)
    make_mtan(root, 'val', 2, **make_kw)
    cfg = _cfg(name)
    tasks = cfg.tasks
    rows = torch.eye(len(tasks))[torch.arange(3) % len(tasks)]
    mpath = str(tmp_path / 'onelabel.pth')
    torch.save({'labels_weights': rows}, mpath)
    ds = _build(cfg, 'train_dataloader', root,
                label_mapping=dict(one=mpath, random=mpath, full=None))
    for i in range(3):
        out = ds[i]
        mask = tuple(bool(v) for v in rows[i])
        assert out['data_samples'].metainfo['task_mask'] == mask
        # The MTAN arrays are used at their own size (here 4x6).
        assert tuple(out['inputs'].shape) == (3, 4, 6)
    val = _build(cfg, 'val_dataloader', root)
    vout = val[1]
    assert vout['data_samples'].metainfo['task_mask'] == (True, ) * len(
        tasks)
    # Without augmentation the packed GT equals the file content.
    lab = np.load(osp.join(root, 'val', 'label_7' if 'city' in name else
                           'label', '1.npy'))
    lab = lab.astype(np.int64)
    lab[lab < 0] = 255
    np.testing.assert_array_equal(
        vout['data_samples'].gt_sem_seg.data[0].numpy(), lab)


# ------------------------------------------------------------ padding
def _preprocessor(experiment):
    """The data preprocessor of an experiment config, built."""
    from diffmtl.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, 'configs', experiment))
    return MODELS.build(cfg.model.data_preprocessor), cfg


def _pad_region(sample, shape):
    """Boolean (H, W) mask of the padded pixels of a preprocessed input."""
    left, right, top, bottom = sample.metainfo['padding_size']
    h, w = shape
    mask = np.ones((h, w), bool)
    mask[top:h - bottom, left:w - right] = False
    return mask


def _check_reference_padding(pre, items, training):
    data = dict(inputs=[it['inputs'] for it in items],
                data_samples=[it['data_samples'] for it in items])
    out = pre(data, training=training)
    mean = pre.mean.view(-1).numpy()
    std = pre.std.view(-1).numpy()
    n_padded = 0
    for x, ds, it in zip(out['inputs'], out['data_samples'], items):
        x = x.numpy()
        pad = _pad_region(ds, x.shape[-2:])
        n_padded += int(pad.sum())
        # padded pixels are the reference's 0 (mean colour normalised) ...
        assert (x[:, pad] == 0).all(), x[:, pad].reshape(3, -1)[:, :3]
        # ... and the image itself is normalised with the config's mean/std
        left, right, top, bottom = ds.metainfo['padding_size']
        raw = it['inputs'].numpy().astype(np.float32)[::-1]  # BGR -> RGB
        l0, r0, t0, b0 = it['data_samples'].metainfo.get(
            'padding_size') or (0, ) * 4
        h, w = raw.shape[-2:]
        raw = raw[:, t0:h - b0, l0:w - r0]
        hh, ww = x.shape[-2:]
        np.testing.assert_allclose(
            x[:, top:hh - bottom, left:ww - right],
            (raw - mean[:, None, None]) / std[:, None, None], atol=1e-5)
    return n_padded


def test_pascal_configs_pad_like_the_reference(tmp_path):
    """A padded pixel is 0 after the preprocessor (the reference pads the
    normalised image with 0), in the train, test and TTA pipelines of the
    PASCAL configs and for each model family's preprocessor."""
    from test_pascal_context_mt import TRAIN, make_pascal
    root = str(tmp_path / 'PASCALContext')
    make_pascal(root)
    cfg = _cfg('pascal_context_mt.py')
    assert cfg.img_pad_val == [103.53, 116.28, 123.675]
    pads = [t for t in cfg.train_pipeline if t['type'] == 'MultiTaskPad']
    pads += [t for t in cfg.test_pipeline if t['type'] == 'MultiTaskPad']
    pads += [t for t in cfg.tta_pipeline[-1]['transforms'][1]]
    assert len(pads) == 3 and all(
        p['pad_val'] == cfg.img_pad_val for p in pads)
    one = str(tmp_path / 'one.json')
    dump_label_mapping({i: (True, False, False, False, False)
                        for i in TRAIN}, cfg.tasks, one)
    train = _build(cfg, 'train_dataloader', root,
                   label_mapping=dict(one=one, random=one, full=None))
    val = _build(cfg, 'val_dataloader', root, split='val')
    for experiment in ('diffmtl/pascal_one_r18.py',
                       'baselines/mtl_baseline_pascal_one_r18.py',
                       'diffmtl/pascal_one_mit-b0.py'):
        pre, exp_cfg = _preprocessor(experiment)
        # the pipeline's pad value is the preprocessor's mean, BGR
        assert list(exp_cfg.model.data_preprocessor.mean)[::-1] == \
            cfg.img_pad_val and exp_cfg.model.data_preprocessor.bgr_to_rgb
        np.random.seed(0)
        items = [train[i] for i in range(3)]
        assert items[0]['inputs'].dtype == torch.float32
        # 6x8 images in 512x512 crops: nearly everything is padding
        assert _check_reference_padding(pre, items, True) > 3 * 500 * 500
        assert _check_reference_padding(pre, [val[0]], False) > 500 * 500
    # the TTA views are padded the same way
    from mmengine.dataset import Compose
    tta = Compose(cfg.tta_pipeline)  # mmseg scope: conftest
    info = val.get_data_info(0)
    views = tta(info)
    items = [dict(inputs=x, data_samples=d)
             for x, d in zip(views['inputs'], views['data_samples'])]
    assert len(items) == 2
    assert _check_reference_padding(pre, items, False) > 2 * 500 * 500


@pytest.mark.parametrize('name,experiment,make_kw', [
    ('nyud_mt.py', 'diffmtl/nyud_one_r18.py', dict()),
    ('cityscapes_mt.py', 'diffmtl/cityscapes_one_r18.py',
     dict(label_dir='label_7', extra=('depth', ), num_classes=7)),
])
def test_npy_configs_pad_like_the_reference(tmp_path, name, experiment,
                                            make_kw):
    """NYUD / Cityscapes pipelines do not pad; the preprocessor pads
    (smaller arrays, here 4x6) after normalisation with 0."""
    from test_nyud_cityscapes_mt import make_mtan
    root = str(tmp_path / 'data')
    make_mtan(root, 'train', 3, **make_kw)
    cfg = _cfg(name)
    assert not [t for t in cfg.train_pipeline + cfg.test_pipeline
                if 'Pad' in t['type']]
    rows = torch.eye(len(cfg.tasks))[torch.arange(3) % len(cfg.tasks)]
    mpath = str(tmp_path / 'onelabel.pth')
    torch.save({'labels_weights': rows}, mpath)
    ds = _build(cfg, 'train_dataloader', root,
                label_mapping=dict(one=mpath, random=mpath, full=None))
    pre, _ = _preprocessor(experiment)
    assert pre.pad_val == 0 and pre.size == tuple(cfg.crop_size)
    np.random.seed(0)
    items = [ds[i] for i in range(3)]
    h, w = cfg.crop_size
    assert _check_reference_padding(pre, items, True) == 3 * (h * w - 24)


def test_synthetic_config_still_pads_black_in_pixel_space():
    """The synthetic scenes follow no reference: pad_val stays 0 (pixel
    space), as the running studies were trained with."""
    cfg = _cfg('synthetic_scenes.py')
    pads = [t for t in cfg.train_pipeline if t['type'] == 'MultiTaskPad']
    assert len(pads) == 1 and pads[0].get('pad_val', 0) == 0


# ------------------------------------------- no init_default_scope needed
FRESH_PROCESS = r'''
import sys
sys.path.insert(0, {tests!r})
from mmengine.registry import DefaultScope
import diffmtl  # noqa: F401
from diffmtl.datasets import PascalContextMTDataset
from diffmtl.registry import DATASETS
from mmengine.config import Config
assert DefaultScope.get_current_instance() is None
cfg = Config.fromfile({cfg!r})
ds_cfg = cfg.val_dataloader.dataset.copy()
ds_cfg.update(data_root={root!r}, split='val')
ds = DATASETS.build(ds_cfg)
out = ds[0]
assert tuple(out['inputs'].shape) == (3, 512, 512), out['inputs'].shape
train = PascalContextMTDataset(
    data_root={root!r}, pipeline=cfg.train_pipeline, label_setting='full')
assert tuple(train[0]['inputs'].shape) == (3, 512, 512)
# the scope is not left set behind
assert DefaultScope.get_current_instance() is None
print('OK')
'''


@pytest.mark.slow
def test_datasets_build_without_init_default_scope(tmp_path):
    import subprocess
    import sys
    from test_pascal_context_mt import make_pascal
    root = str(tmp_path / 'PASCALContext')
    make_pascal(root)
    code = FRESH_PROCESS.format(
        tests=osp.dirname(osp.abspath(__file__)),
        cfg=osp.join(REPO, 'configs', '_base_', 'datasets',
                     'pascal_context_mt.py'),
        root=root)
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith('OK')
