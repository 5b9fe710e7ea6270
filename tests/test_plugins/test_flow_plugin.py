# Copyright (c) diffmtl contributors. All rights reserved.
"""A kind registered from outside the package goes the whole way:
load, augment, pack, train step, evaluate, draw; and the generic
kind-parametrised tests run on it unchanged (``pytest -p flow_plugin``).

The plugin is ``tests/test_plugins/flow_plugin.py``: a 2-channel flow kind
(dx negated on a horizontal flip, values scaled by a zoom, end-point-error
metric, colour wheel), its decoder, loss and task. No diffmtl file knows
about it.
"""
import importlib
import json
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from diffmtl.registry import DATASETS, MODELS, TASK_KINDS, VISUALIZERS

HERE = osp.dirname(osp.abspath(__file__))
H, W = 24, 32
CLASSES = ['bg', 'box', 'ball']


@pytest.fixture(scope='module')
def plugin():
    """Import the plugin (as ``custom_imports`` would) and unregister it
    afterwards so other test modules see only the built-in kinds."""
    sys.path.insert(0, HERE)
    try:
        cfg = Config(dict(custom_imports=dict(imports=['flow_plugin'])))
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
        mod = importlib.import_module('flow_plugin')
        yield mod
    finally:
        from diffmtl.datasets.formats import ANN_DECODERS
        from diffmtl.structures import TASK_SPECS
        TASK_SPECS.pop('flow', None)
        TASK_KINDS.module_dict.pop('flow', None)
        ANN_DECODERS.pop('flow_npy', None)
        MODELS.module_dict.pop('FlowEPELoss', None)
        sys.modules.pop('flow_plugin', None)
        sys.path.remove(HERE)


def _flow(k):
    yy, xx = np.mgrid[:H, :W].astype(np.float32)
    flow = np.stack([1.0 + xx / 8 + k, -0.5 + yy / 6], -1)
    flow[0, 0] = 0  # one unknown pixel
    return flow.astype(np.float32)


@pytest.fixture(scope='module')
def folder(plugin, tmp_path_factory):
    """A tiny folder dataset with a segmentation task and the flow task."""
    from diffmtl.structures import get_task_spec
    root = tmp_path_factory.mktemp('flow_folder')
    ids = ['a', 'b', 'c', 'd']
    (root / 'splits').mkdir()
    (root / 'splits' / 'train.txt').write_text('\n'.join(ids) + '\n')
    (root / 'splits' / 'val.txt').write_text('\n'.join(ids[:2]) + '\n')
    (root / 'meta.json').write_text(
        json.dumps(dict(tasks=['semseg', 'flow'],
                        task_classes=dict(semseg=CLASSES))))
    import mmcv
    gts = {}
    for k, i in enumerate(ids):
        rng = np.random.default_rng(k)
        img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        seg = rng.integers(0, 3, (H, W)).astype(np.uint8)
        mmcv.imwrite(img, str(root / 'images' / f'{i}.png'))
        mmcv.imwrite(seg, str(root / 'semseg' / f'{i}.png'))
        (root / 'flow').mkdir(exist_ok=True)
        spec = get_task_spec('flow')
        spec.task_kind.encode(spec, _flow(k), str(root / 'flow' / i))
        gts[i] = dict(seg=seg, flow=_flow(k))
    return str(root), gts


def _dataset(root, pipeline, **kw):
    init_default_scope('mmseg')
    return DATASETS.build(
        dict(type='FolderMultiTaskDataset', data_root=root, split='train',
             pipeline=pipeline, **kw))


LOAD = [dict(type='LoadMultiTaskImageFromFile'),
        dict(type='LoadMultiTaskAnnotations')]


def test_load_decodes_the_plugin_format(folder):
    root, gts = folder
    ds = _dataset(root, LOAD)
    assert ds.get_data_info(0)['ann_format']['flow'] == 'flow_npy'
    res = ds[0]
    np.testing.assert_array_equal(res['gt_flow_map'], gts['a']['flow'])
    assert 'gt_flow_map' in res['seg_fields']


def test_augment_flip_negates_dx_and_zoom_scales(folder):
    root, gts = folder
    flip = _dataset(root, LOAD + [
        dict(type='MultiTaskRandomFlip', prob=1.0, direction='horizontal')
    ])[1]['gt_flow_map']
    want = gts['b']['flow'][:, ::-1].copy()
    want[..., 0] = 0 - want[..., 0]
    np.testing.assert_array_equal(flip, want)
    vflip = _dataset(root, LOAD + [
        dict(type='MultiTaskRandomFlip', prob=1.0, direction='vertical')
    ])[1]['gt_flow_map']
    want = gts['b']['flow'][::-1].copy()
    want[..., 1] = 0 - want[..., 1]
    np.testing.assert_array_equal(vflip, want)
    zoom = _dataset(root, LOAD + [
        dict(type='MultiTaskRandomResize', ratio_range=(2.0, 2.0))
    ])[1]['gt_flow_map']
    assert zoom.shape == (2 * H, 2 * W, 2)
    # nearest neighbour: pixel (2y, 2x) comes from (y, x), values x2
    np.testing.assert_allclose(zoom[2::2, 2::2],
                               2 * gts['b']['flow'][1:, 1:], rtol=1e-6)


def _model(tasks=('semseg', 'flow')):
    init_default_scope('mmseg')
    return MODELS.build(
        dict(
            type='MultiTaskBaseline',
            tasks=tasks,
            num_classes=dict(semseg=len(CLASSES)),
            data_preprocessor=dict(
                type='MultiTaskDataPreProcessor', mean=[0, 0, 0],
                std=[255, 255, 255], size_divisor=8),
            backbone=dict(
                type='ResNet', depth=18, stem_channels=8, base_channels=8,
                num_stages=4, out_indices=(0, 1, 2, 3),
                norm_cfg=dict(type='BN', requires_grad=True), init_cfg=None),
            neck=dict(type='StageFusionNeck', in_channels=[8, 16, 32, 64],
                      out_channels=16),
            channels=16,
            decoder=dict(num_blocks=1)))


PIPE = LOAD + [
    dict(type='MultiTaskRandomFlip', prob=0.5),
    dict(type='PackMultiTaskInputs')
]


def test_pack_train_step_evaluate_and_draw(folder, tmp_path):
    root, gts = folder
    ds = _dataset(root, PIPE)
    batch = [ds[i] for i in range(4)]
    sample = batch[0]['data_samples']
    assert tuple(sample.gt_flow.data.shape) == (2, H, W)
    assert sample.gt_flow.data.dtype == torch.float32

    torch.manual_seed(0)
    model = _model()
    assert model.out_channels['flow'] == 2
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    data = dict(inputs=[b['inputs'] for b in batch],
                data_samples=[b['data_samples'] for b in batch])
    logs = model.train_step(data, optim)
    flow_keys = [k for k in logs if 'flow' in k]
    assert flow_keys, f'no flow loss in {sorted(logs)}'
    assert all(torch.isfinite(logs[k]).all() for k in flow_keys)

    # evaluate: a perfect prediction scores EPE 0, the model a finite EPE
    from diffmtl.evaluation import MultiTaskMetric
    metric = MultiTaskMetric()
    metric.dataset_meta = ds.metainfo
    model.eval()
    with torch.no_grad():
        preds = model.test_step(
            dict(inputs=[b['inputs'] for b in batch],
                 data_samples=[b['data_samples'] for b in batch]))
    metric.process(None, [p.to_dict() for p in preds])
    res = metric.evaluate(len(preds))
    assert np.isfinite(res['flow/EPE']) and res['flow/EPE'] > 0
    assert 0 <= res['flow/outliers'] <= 100
    assert 'semseg/mIoU' in res
    perfect = []
    for b in batch:
        s = b['data_samples'].clone()
        s.set_data(dict(pred_flow=s.gt_flow.clone(),
                        pred_sem_seg=s.gt_sem_seg.clone()))
        perfect.append(s.to_dict())
    metric = MultiTaskMetric()
    metric.dataset_meta = ds.metainfo
    metric.process(None, perfect)
    res = metric.evaluate(len(perfect))
    assert res['flow/EPE'] == 0.0 and res['flow/outliers'] == 0.0
    assert res['semseg/mIoU'] == 100.0

    # draw: the visualiser colours flow with the plugin's wheel
    vis = VISUALIZERS.build(
        dict(type='MultiTaskLocalVisualizer', name=f'flow_vis_{id(ds)}',
             save_dir=str(tmp_path)))
    vis.dataset_meta = ds.metainfo
    img = np.zeros((H, W, 3), dtype=np.uint8)
    canvas = vis.draw_multitask(img, preds[0])
    assert canvas.dtype == np.uint8 and canvas.ndim == 3
    from diffmtl.visualization import draw_task_tile
    tile = draw_task_tile('flow', sample.gt_flow.data)
    assert tile.shape == (H, W, 3)
    # the unknown pixel (moved by the flip, if any) gets the ignore colour;
    # the known ones are wheel colours
    from diffmtl.visualization import IGNORE_COLOR
    x0 = W - 1 if sample.metainfo['flip'] else 0
    assert tuple(tile[0, x0]) == tuple(IGNORE_COLOR)
    assert len({tuple(c) for c in tile[1:].reshape(-1, 3)}) > 10


#: The kind-parametrised tests that docs/en/add_task.md offers to plugins.
GENERIC = ('tests/test_datasets/test_task_kinds_data.py',
           'tests/test_structures/test_maps.py',
           'tests/test_evaluation/test_task_metrics_options.py',
           'tests/test_tasks')


@pytest.mark.slow
def test_the_generic_kind_tests_run_on_the_plugin():
    """``pytest -p flow_plugin`` with the plugin's folder on PYTHONPATH:
    the generic tests take the plugin's kind from the registry and pass,
    with nothing of the package edited (as add_task.md says)."""
    repo = osp.dirname(osp.dirname(HERE))
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [HERE, repo] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    proc = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-p', 'flow_plugin', '-p',
         'no:cacheprovider', '-k', 'flow', *GENERIC],
        cwd=repo, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    passed = re.search(r'(\d+) passed', proc.stdout)
    assert passed and int(passed.group(1)) >= 15, proc.stdout[-3000:]
