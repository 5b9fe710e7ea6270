# Copyright (c) diffmtl contributors. All rights reserved.
"""projects/jtr configs: parameters and inference MACs against the
baselines they extend, the depth statistics they require, every config
takes a training step, the synthetic study configs differ from the study's
reference arm only by JTR (and hold the depth statistics of their labels),
and the tools and the study runner take the project's configs from the
repository root."""
import json
import os
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from diffmtl.models.utils.complexity import count_parameters
from diffmtl.registry import MODELS
from diffmtl.utils.study import format_options, load_study, plan_runs
# A missing project must fail these tests, not skip them.
from projects.jtr.jtr import JTRMultiTaskBaseline

sys.path.insert(
    0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                'test_models'))
from _mtl_model_utils import (build_on_meta, count_on_meta,  # noqa: E402
                             make_batch)
from tool_runner import run_script, train_and_test_config  # noqa: E402

torch.set_num_threads(1)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PROJECT = osp.join(REPO, 'projects', 'jtr', 'configs')
BASELINES = osp.join(REPO, 'configs', 'baselines')
# project config -> (its baseline, input size of the count, g's in_channels)
PAIRS = {
    'jtr_pascal_one_r18.py':
    ('mtl_baseline_pascal_one_r18.py', (512, 512), 33),
    'jtr_pascal_random_r18.py':
    ('mtl_baseline_pascal_random_r18.py', (512, 512), 33),
    'jtr_nyud_one_r18.py': ('mtl_baseline_nyud_one_r18.py', (288, 384), 17),
    'jtr_nyud_random_r18.py': ('mtl_baseline_nyud_random_r18.py', (288, 384),
                               17),
    'jtr_cityscapes_one_r18.py': ('mtl_baseline_cityscapes_one_r18.py',
                                  (128, 256), 8),
    'jtr_synthetic_one_r18_matched.py':
    ('mtl_baseline_synthetic_one_r18_matched.py', (96, 128), 19),
    'jtr_bilinear_synthetic_one_r18_matched.py':
    ('mtl_baseline_synthetic_one_r18_matched.py', (96, 128), 19),
    'jtr_synthetic_random_r18_matched.py':
    ('mtl_baseline_synthetic_random_r18_matched.py', (96, 128), 19),
}
#: configs whose depth statistics must come from the dataset (not here)
NEEDS_STATS = ('jtr_nyud_one_r18.py', 'jtr_nyud_random_r18.py',
               'jtr_cityscapes_one_r18.py')
#: stand-in statistics for building those configs in tests only
TEST_STATS = {
    'model.jtr_loss.encodings.depth.mean': 1.0,
    'model.jtr_loss.encodings.depth.std': 1.0,
}
#: depth statistics of the synthetic scenes' training labels
#: (projects/jtr/README.md; recomputed by the slow test below)
SYNTHETIC_STATS = {
    'one': (4.56661, 2.62989),
    'random': (4.69295, 2.65821),
}
JTR_MODEL_KEYS = {'type', 'jtr_loss', 'jtr_net', 'views', 'v2_no_grad'}
SMALL = {
    'model.backbone.stem_channels': 8,
    'model.backbone.base_channels': 8,
    'model.neck.in_channels': [8, 16, 32, 64],
    'model.neck.out_channels': 16,
    'model.channels': 16,
    'model.decoder.num_blocks': 1,
    'model.jtr_net.widths': [4, 4, 8, 8, 8],
}


def _config(name, stats=True):
    cfg = Config.fromfile(osp.join(PROJECT, name))
    if stats and name in NEEDS_STATS:
        cfg.merge_from_dict(TEST_STATS)
    return cfg


def test_every_project_config_is_listed():
    assert sorted(os.listdir(PROJECT)) == sorted(PAIRS)


@pytest.mark.parametrize('name', sorted(PAIRS))
def test_params_and_inference_macs_against_the_baseline(name):
    base_name, shape, in_channels = PAIRS[name]
    cfg = _config(name)
    assert 'projects.jtr.jtr' in cfg.custom_imports.imports
    assert 'diffmtl' in cfg.custom_imports.imports
    model, params, macs = count_on_meta(cfg, shape)
    assert isinstance(model, JTRMultiTaskBaseline)
    _, base_params, base_macs = count_on_meta(
        Config.fromfile(osp.join(BASELINES, base_name)), shape)
    assert macs == base_macs  # g never runs at inference
    g = count_parameters(model.jtr_net)
    assert params == base_params + g
    assert model.jtr_net.in_channels == in_channels
    # g's training-only parameters (projects/jtr/README.md)
    assert g == {
        33: 24_992_481,
        17: 24_982_225,
        8: 24_976_456,
        19: 1_566_467
    }[in_channels]
    if name.startswith('jtr_pascal'):
        assert base_params == 157_237_346
        assert macs == 607_486_214_144
        assert params == 182_229_827


@pytest.mark.parametrize('name', NEEDS_STATS)
def test_nyud_and_cityscapes_configs_require_their_depth_statistics(name):
    cfg = _config(name, stats=False)
    assert cfg.model.jtr_loss.encodings.depth.mean is None
    with pytest.raises(ValueError) as err:
        build_on_meta(cfg)
    msg = str(err.value)
    assert 'projects/jtr/tools/depth_stats.py' in msg
    assert 'model.jtr_loss.encodings.depth.mean' in msg
    assert 'model.jtr_loss.encodings.depth.std' in msg


def _flat(d, prefix=''):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f'{prefix}{k}.'))
        else:
            out[f'{prefix}{k}'] = v
    return out


@pytest.mark.parametrize('setting', ['one', 'random'])
def test_synthetic_configs_differ_from_the_reference_arm_only_by_jtr(setting):
    name = f'jtr_synthetic_{setting}_r18_matched.py'
    ours = _flat(_config(name).to_dict())
    base = _flat(
        Config.fromfile(osp.join(BASELINES, PAIRS[name][0])).to_dict())
    differ = {k for k in set(ours) | set(base) if ours.get(k) != base.get(k)}
    assert differ
    for k in differ:
        if k == 'custom_imports.imports':
            continue
        assert k.startswith('model.') and k.split('.')[1] in JTR_MODEL_KEYS, k
    assert ours['model.type'] == 'JTRMultiTaskBaseline'
    assert base['model.type'] == 'MultiTaskBaseline'
    assert ours['train_dataloader.dataset.label_setting'] == setting
    assert ours['model.decoder.num_blocks'] == 5  # the capacity-matched one
    assert ours['model.jtr_net.widths'] == (16, 32, 64, 128, 128)
    mean, std = SYNTHETIC_STATS[setting]
    assert ours['model.jtr_loss.encodings.depth.mean'] == mean
    assert ours['model.jtr_loss.encodings.depth.std'] == std


def test_synthetic_one_and_random_differ_by_labels_and_statistics_only():
    one = _config('jtr_synthetic_one_r18_matched.py')
    rnd = _config('jtr_synthetic_random_r18_matched.py')
    a, b = _flat(one.to_dict()), _flat(rnd.to_dict())
    differ = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
    assert differ == {
        'train_dataloader.dataset.label_setting',
        'model.jtr_loss.encodings.depth.mean',
        'model.jtr_loss.encodings.depth.std'
    }


def test_bilinear_config_differs_from_jtr_by_the_decoder_only():
    a = _flat(_config('jtr_synthetic_one_r18_matched.py').to_dict())
    b = _flat(_config('jtr_bilinear_synthetic_one_r18_matched.py').to_dict())
    differ = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
    assert differ == {'model.jtr_net.unpool'}
    assert b['model.jtr_net.unpool'] == 'bilinear'
    spec = load_study(osp.join(REPO, 'configs', 'studies',
                               'synthetic_one.py'))
    arms = {a['name']: a for a in spec['arms']}
    assert arms['jtr_bilinear']['config'] == (
        'projects/jtr/configs/jtr_bilinear_synthetic_one_r18_matched.py')
    assert not arms['jtr_bilinear'].get('cfg_options')
    assert ('jtr_bilinear', 'jtr') in spec['comparisons']


def _tiny(name):
    cfg = _config(name)
    cfg.merge_from_dict(SMALL)
    return cfg


def _one_label_batch(cfg, size):
    tasks = tuple(cfg.model.tasks)
    masks = [
        tuple(int(i == j % len(tasks)) for i in range(len(tasks)))
        for j in range(4)
    ]
    masks[-1] = tuple(int(i > 0) for i in range(len(tasks)))
    inputs, samples = make_batch(masks,
                                 tasks=tasks,
                                 size=size,
                                 num_classes=dict(cfg.model.num_classes))
    return dict(inputs=list((inputs * 40 + 120).clamp(0, 255)),
                data_samples=samples)


@pytest.mark.parametrize('name', sorted(PAIRS))
def test_every_config_takes_a_training_step(name):
    torch.manual_seed(0)
    cfg = _tiny(name)
    size = (64, 64) if 'pascal' in name else (32, 64)
    cfg.model.data_preprocessor.size = size
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    in_optim = {
        id(p)
        for group in optim.optimizer.param_groups
        for p in group['params']
    }
    g_params = list(model.jtr_net.parameters())
    assert g_params and all(id(p) in in_optim for p in g_params)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    log_vars = model.train_step(_one_label_batch(cfg, size), optim)
    assert torch.isfinite(log_vars['loss'])
    assert log_vars['jtr.loss_dist'] > 0
    assert log_vars['jtr.loss_recon'] > 0
    moved = {
        n
        for n, p in model.named_parameters()
        if not torch.equal(p.detach(), before[n])
    }
    for prefix in ('backbone.', 'neck.', 'decoders.', 'jtr_net.encoder.',
                   'jtr_net.decoder.', 'jtr_net.head.'):
        assert any(n.startswith(prefix) for n in moved), prefix


@pytest.mark.parametrize('study', ['synthetic_one', 'synthetic_random'])
def test_the_studies_run_the_jtr_arm(study, tmp_path):
    spec = load_study(osp.join(REPO, 'configs', 'studies', f'{study}.py'))
    arms = {a['name']: a for a in spec['arms']}
    setting = study.split('_')[1]
    assert arms['jtr']['config'] == (
        f'projects/jtr/configs/jtr_synthetic_{setting}_r18_matched.py')
    assert not arms['jtr'].get('cfg_options')
    assert spec['reference'] == 'mtl_baseline_matched'
    assert ('feature', 'jtr') in spec['comparisons']
    assert ('jtr', 'xtc') in spec['comparisons']
    runs = [r for r in plan_runs(spec, str(tmp_path)) if r['arm'] == 'jtr']
    assert [r['seed'] for r in runs] == list(spec['seeds'])
    assert all(r['kind'] == 'train+test' for r in runs)


@pytest.mark.slow
def test_train_and_test_tools_run_the_project_config(tmp_path):
    config = 'projects/jtr/configs/jtr_synthetic_one_r18_matched.py'
    train, ckpt, _, root = train_and_test_config(config, SMALL, tmp_path)
    assert 'jtr.loss_dist' in train
    state = torch.load(str(ckpt), map_location='cpu', weights_only=False)
    assert any(k.startswith('jtr_net.') for k in state['state_dict'])
    # the depth statistics tool reads the project config too
    stats = run_script('projects/jtr/tools/depth_stats.py', config,
                       '--cfg-options',
                       f'train_dataloader.dataset.data_root={root}')
    assert stats.strip().splitlines()[-1].startswith(
        'encodings=dict(depth=dict(mean=')
    # and so does the latent-distance diagnostic, on the checkpoint
    out = tmp_path / 'latent.json'
    text = run_script(
        'projects/jtr/tools/latent_distance.py', config, ckpt, '--batches',
        2, '--out', out, '--cfg-options', *format_options({
            **SMALL, 'train_dataloader.dataset.data_root': str(root),
            'train_dataloader.batch_size': 2}))
    saved = json.loads(out.read_text())
    assert 'd1 with the trained g' in text and 'd1 with the initial g' in text
    assert saved['trained']['images'] == saved['initial']['images'] > 0
    assert saved['checkpoint'] == str(ckpt)
    assert saved['cfg_options']['train_dataloader.batch_size'] == 2
    assert 'dist_images' in saved['trained']


@pytest.mark.slow
@pytest.mark.parametrize('setting', ['one', 'random'])
def test_synthetic_depth_statistics_are_those_of_the_training_labels(setting):
    """The statistics in the synthetic configs are what depth_stats.py
    computes on data/synthetic_scenes (make_synthetic_scenes.py defaults,
    seed 0) for the config's label setting."""
    from projects.jtr.tools.depth_stats import label_statistics
    name = f'jtr_synthetic_{setting}_r18_matched.py'
    cfg = _config(name)
    root = cfg.train_dataloader.dataset.data_root
    if not osp.isabs(root):
        root = osp.join(REPO, root)
    if not osp.isdir(root):
        pytest.skip(f'{root} is not generated (tools/dataset_converters/'
                    'make_synthetic_scenes.py)')
    cfg.train_dataloader.dataset.data_root = root
    moments = label_statistics(cfg)
    stats = cfg.model.jtr_loss.encodings.depth
    assert round(moments['depth'].mean, 5) == stats.mean
    assert round(moments['depth'].std, 5) == stats.std
    assert moments['depth'].images == {'one': 333, 'random': 1000}[setting]
