# Copyright (c) diffmtl contributors. All rights reserved.
"""diffmtl.utils.tool_cfg: config edits behind the tools' flags."""
import argparse
import os
import os.path as osp

import pytest
from mmengine.config import Config

from diffmtl.utils import (add_common_args, enable_amp, enable_tta,
                           enable_visualization, load_tool_config,
                           set_test_output, set_work_dir)


def test_add_common_args_and_load_tool_config(tmp_path, monkeypatch):
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    parser.add_argument('--work-dir')
    assert add_common_args(parser) is parser
    defaults = parser.parse_args(['x.py'])
    assert defaults.trust_checkpoint is False
    assert defaults.cfg_options is None
    assert defaults.launcher == 'none'
    assert defaults.local_rank == 0
    with pytest.raises(SystemExit):
        parser.parse_args(['x.py', '--launcher', 'bogus'])

    cfg_path = tmp_path / 'my_cfg.py'
    cfg_path.write_text('a = dict(b=1, c=2)\n')
    # setenv first so that teardown also undoes what load_tool_config sets
    for name in ('DIFFMTL_TRUSTED_CHECKPOINTS', 'LOCAL_RANK'):
        monkeypatch.setenv(name, '')
        monkeypatch.delenv(name)
    args = parser.parse_args([
        str(cfg_path), '--trust-checkpoint', '--local-rank', '3',
        '--cfg-options', 'a.b=5', 'd=[1,2]'
    ])
    cfg = load_tool_config(args)
    assert os.environ['DIFFMTL_TRUSTED_CHECKPOINTS'] == '1'
    assert os.environ['LOCAL_RANK'] == '3'
    assert cfg.a == dict(b=5, c=2) and cfg.d == [1, 2]
    assert cfg.launcher == 'none'
    assert cfg.work_dir == osp.join('./work_dirs', 'my_cfg')


def test_set_work_dir_priority():
    cfg = Config(dict(work_dir='from_cfg'))
    assert set_work_dir(cfg, 'cli', 'a/b/my_cfg.py').work_dir == 'cli'
    cfg = Config(dict(work_dir='from_cfg'))
    assert set_work_dir(cfg, None, 'a/b/my_cfg.py').work_dir == 'from_cfg'
    cfg = Config(dict())
    assert set_work_dir(cfg, None, 'a/b/my_cfg.py').work_dir == osp.join(
        './work_dirs', 'my_cfg')


def test_enable_amp():
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper', optimizer={})))
    with pytest.raises(ValueError, match='needs a CUDA device'):
        enable_amp(cfg, use_cuda=False)
    enable_amp(cfg, use_cuda=True)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    enable_amp(cfg, use_cuda=True)  # already AMP: unchanged
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    cfg = Config(dict(optim_wrapper=dict(type='MyWrapper')))
    with pytest.raises(ValueError, match='MyWrapper'):
        enable_amp(cfg, use_cuda=True)


def _vis_cfg():
    return Config(
        dict(
            default_hooks=dict(
                visualization=dict(type='MultiTaskVisualizationHook')),
            visualizer=dict(type='SegLocalVisualizer')))


def test_enable_visualization_show_dir_draws_every_image():
    cfg = enable_visualization(_vis_cfg(), show_dir='vis')
    hook = cfg.default_hooks.visualization
    assert hook.draw is True and hook.interval == 1
    assert 'show' not in hook
    assert cfg.visualizer.save_dir == 'vis'

    cfg = _vis_cfg()
    cfg.default_hooks.visualization.interval = 5
    enable_visualization(cfg, show=True, wait_time=0.5, interval=None)
    hook = cfg.default_hooks.visualization
    assert (hook.interval, hook.show, hook.wait_time) == (5, True, 0.5)
    assert 'save_dir' not in cfg.visualizer

    untouched = enable_visualization(_vis_cfg())
    assert 'draw' not in untouched.default_hooks.visualization

    with pytest.raises(RuntimeError, match='visualization'):
        enable_visualization(Config(dict(default_hooks={})), show_dir='v')


def test_set_test_output():
    cfg = Config(dict(test_evaluator=dict(type='IoUMetric')))
    set_test_output(cfg, 'out_dir')
    assert cfg.test_evaluator == dict(
        type='IoUMetric', output_dir='out_dir', keep_results=True)
    cfg = Config(dict(test_evaluator=[dict(type='A'), dict(type='B')]))
    with pytest.raises(ValueError, match='single metric dict'):
        set_test_output(cfg, 'out_dir')
    assert set_test_output(cfg, None) is cfg


def test_enable_tta():
    cfg = Config(
        dict(
            model=dict(type='M'),
            tta_model=dict(type='TTA'),
            tta_pipeline=[dict(type='T')],
            test_dataloader=dict(dataset=dict(pipeline=[]))))
    enable_tta(cfg)
    assert cfg.model == dict(type='TTA', module=dict(type='M'))
    assert cfg.test_dataloader.dataset.pipeline == [dict(type='T')]
    with pytest.raises(ValueError, match='tta_pipeline'):
        enable_tta(Config(dict(model=dict(type='M'))))
