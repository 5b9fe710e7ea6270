# Copyright (c) diffmtl contributors. All rights reserved.
"""projects/xtc configs: parameters and inference MACs against the
baselines they extend, the synthetic study configs differ from the study's
reference arm only by XTC, a config takes a training step, and the tools
and the study runner take the project's configs from the repository
root."""
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
from diffmtl.utils.study import load_study, plan_runs
# A missing project must fail these tests, not skip them.
from projects.xtc.xtc import FiLM, XTCMultiTaskBaseline

sys.path.insert(
    0,
    osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'test_models'))
from _mtl_model_utils import (build_on_meta, count_on_meta,  # noqa: E402
                             make_batch)
from tool_runner import run_script, train_and_test_config  # noqa: E402

torch.set_num_threads(1)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PROJECT = osp.join(REPO, 'projects', 'xtc', 'configs')
BASELINES = osp.join(REPO, 'configs', 'baselines')
# project config -> (its baseline, input size of the count)
PAIRS = {
    'xtc_pascal_one_r18.py': ('mtl_baseline_pascal_one_r18.py', (512, 512)),
    'xtc_pascal_random_r18.py':
    ('mtl_baseline_pascal_random_r18.py', (512, 512)),
    'xtc_nyud_one_r18.py': ('mtl_baseline_nyud_one_r18.py', (288, 384)),
    'xtc_nyud_random_r18.py': ('mtl_baseline_nyud_random_r18.py', (288, 384)),
    'xtc_cityscapes_one_r18.py':
    ('mtl_baseline_cityscapes_one_r18.py', (128, 256)),
    'xtc_synthetic_one_r18_matched.py':
    ('mtl_baseline_synthetic_one_r18_matched.py', (96, 128)),
    'xtc_synthetic_random_r18_matched.py':
    ('mtl_baseline_synthetic_random_r18_matched.py', (96, 128)),
}
XTC_MODEL_KEYS = {
    'type', 'mapper', 'xtc_weight', 'reg_weight', 'pair_reduction',
    'ref_pairs', 'max_pairs', 'seg_encoding', 'gumbel_tau'
}
SMALL = {
    'model.backbone.stem_channels': 8,
    'model.backbone.base_channels': 8,
    'model.neck.in_channels': [8, 16, 32, 64],
    'model.neck.out_channels': 16,
    'model.channels': 16,
    'model.decoder.num_blocks': 1,
    'model.mapper.stem_channels': 8,
    'model.mapper.base_channels': 8,
    'model.mapper.out_channels': 16,
}


def test_every_project_config_is_listed():
    assert sorted(os.listdir(PROJECT)) == sorted(PAIRS)


@pytest.mark.parametrize('name', sorted(PAIRS))
def test_params_and_inference_macs_against_the_baseline(name):
    base_name, shape = PAIRS[name]
    cfg = Config.fromfile(osp.join(PROJECT, name))
    assert 'projects.xtc.xtc' in cfg.custom_imports.imports
    assert 'diffmtl' in cfg.custom_imports.imports
    model, params, macs = count_on_meta(cfg, shape)
    assert isinstance(model, XTCMultiTaskBaseline)
    _, base_params, base_macs = count_on_meta(
        Config.fromfile(osp.join(BASELINES, base_name)), shape)
    assert macs == base_macs  # the mapper never runs at inference
    assert params == base_params + count_parameters(model.mapper)
    # the mapper's output is F's shape (checked by the loss, too)
    assert model.mapper.out_channels == cfg.model.channels
    if name.startswith('xtc_pascal'):
        # paper: XTC* 173M parameters, 608 GMACs (MTL baseline 157M)
        assert params == 173_089_378
        assert base_params == 157_237_346
        assert macs == 607_486_214_144
        # FiLM over the 20 ordered pairs of the 5 PASCAL tasks
        film = sum(p.numel() for n, p in model.mapper.named_parameters()
                   if 'film' in n)
        assert film == 153_600


def _flat(d, prefix=''):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f'{prefix}{k}.'))
        else:
            out[f'{prefix}{k}'] = v
    return out


@pytest.mark.parametrize('setting', ['one', 'random'])
def test_synthetic_configs_differ_from_the_reference_arm_only_by_xtc(setting):
    name = f'xtc_synthetic_{setting}_r18_matched.py'
    ours = _flat(Config.fromfile(osp.join(PROJECT, name)).to_dict())
    base = _flat(
        Config.fromfile(osp.join(BASELINES, PAIRS[name][0])).to_dict())
    differ = {k for k in set(ours) | set(base) if ours.get(k) != base.get(k)}
    allowed = {'custom_imports.imports'}
    for k in differ:
        if k in allowed or k.startswith('optim_wrapper.paramwise_cfg.'):
            continue
        assert k.startswith('model.') and k.split('.')[1] in XTC_MODEL_KEYS, k
    assert ours['model.type'] == 'XTCMultiTaskBaseline'
    assert base['model.type'] == 'MultiTaskBaseline'
    assert ours['train_dataloader.dataset.label_setting'] == setting
    assert ours['model.decoder.num_blocks'] == 5  # the capacity-matched one


def test_synthetic_one_and_random_share_the_xtc_settings():
    one = Config.fromfile(
        osp.join(PROJECT, 'xtc_synthetic_one_r18_matched.py'))
    rnd = Config.fromfile(
        osp.join(PROJECT, 'xtc_synthetic_random_r18_matched.py'))
    assert one.model.to_dict() == rnd.model.to_dict()
    assert one.optim_wrapper.to_dict() == rnd.optim_wrapper.to_dict()
    assert one.train_dataloader.dataset.label_setting == 'one'
    assert rnd.train_dataloader.dataset.label_setting == 'random'


def test_synthetic_config_builds_and_takes_a_training_step():
    torch.manual_seed(0)
    cfg = Config.fromfile(
        osp.join(PROJECT, 'xtc_synthetic_one_r18_matched.py'))
    cfg.merge_from_dict(SMALL)
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    base_lr = cfg.optim_wrapper.optimizer.lr
    film_ids = {
        id(p)
        for m in model.modules() if isinstance(m, FiLM)
        for p in m.parameters()
    }
    assert film_ids
    for group in optim.optimizer.param_groups:
        is_film = all(id(p) in film_ids for p in group['params'])
        assert group['lr'] == pytest.approx(base_lr * (10 if is_film else 1))
        if is_film:
            assert group['weight_decay'] == 0
    tasks = tuple(cfg.model.tasks)
    masks = [tuple(int(i == j) for j in range(6)) for i in (0, 2, 3, 5)]
    inputs, samples = make_batch(
        masks,
        tasks=tasks,
        size=(96, 128),
        num_classes=dict(cfg.model.num_classes))
    inputs = (inputs * 40 + 120).clamp(0, 255)
    data = dict(inputs=list(inputs), data_samples=samples)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    log_vars = model.train_step(data, optim)
    assert log_vars['xtc.num_pairs'].item() == 4 * 5
    assert torch.isfinite(log_vars['loss'])
    assert log_vars['xtc.loss_con'].item() > 0
    moved = {
        n
        for n, p in model.named_parameters()
        if not torch.equal(p.detach(), before[n])
    }
    for prefix in ('backbone.', 'neck.', 'decoders.', 'mapper.stems.',
                   'mapper.stages.', 'mapper.fusion.'):
        assert any(n.startswith(prefix) for n in moved), prefix
    assert any('film' in n for n in moved)


@pytest.mark.parametrize('study', ['synthetic_one', 'synthetic_random'])
def test_the_studies_run_the_xtc_arm(study, tmp_path):
    spec = load_study(osp.join(REPO, 'configs', 'studies', f'{study}.py'))
    arms = {a['name']: a for a in spec['arms']}
    setting = study.split('_')[1]
    assert arms['xtc']['config'] == (
        f'projects/xtc/configs/xtc_synthetic_{setting}_r18_matched.py')
    assert spec['arms'][1]['name'] == 'mtl_baseline_matched'
    runs = [r for r in plan_runs(spec, str(tmp_path)) if r['arm'] == 'xtc']
    assert [r['seed'] for r in runs] == list(spec['seeds'])
    assert all(r['kind'] == 'train+test' for r in runs)


@pytest.mark.slow
def test_train_and_test_tools_run_the_project_config(tmp_path):
    config = 'projects/xtc/configs/xtc_synthetic_one_r18_matched.py'
    train, ckpt, _, root = train_and_test_config(config, SMALL, tmp_path)
    assert 'xtc.loss_con' in train
    state = torch.load(str(ckpt), map_location='cpu', weights_only=False)
    assert any(k.startswith('mapper.') for k in state['state_dict'])
