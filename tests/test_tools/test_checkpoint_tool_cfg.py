# Copyright (c) diffmtl contributors. All rights reserved.
"""The tools switch to diffmtl's checkpoint hooks and flags by themselves."""
import argparse

from mmengine.config import Config
from tool_runner import TOY_CFG

from diffmtl.utils import add_common_args, build_runner, load_tool_config
from diffmtl.utils.tool_cfg import enable_safe_checkpoints


def _cfg(**hooks):
    return Config(
        dict(
            default_hooks=dict(
                checkpoint=dict(type='CheckpointHook', interval=5, **hooks)),
            custom_hooks=[dict(type='RankMarkerHook')]))


def test_checkpoint_hook_becomes_atomic_with_its_arguments():
    cfg = enable_safe_checkpoints(_cfg(max_keep_ckpts=2, by_epoch=False))
    assert cfg.default_hooks.checkpoint == dict(
        type='AtomicCheckpointHook',
        interval=5,
        max_keep_ckpts=2,
        by_epoch=False)
    assert cfg.custom_hooks == [
        dict(type='RankMarkerHook'),
        dict(type='CheckpointMatchHook')
    ]
    # idempotent
    enable_safe_checkpoints(cfg)
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
    types = [h['type'] for h in cfg.custom_hooks]
    assert types.count('CheckpointMatchHook') == 1


def test_other_checkpoint_hooks_are_kept():
    cfg = _cfg()
    cfg.default_hooks.checkpoint.type = 'MyCheckpointHook'
    enable_safe_checkpoints(cfg)
    assert cfg.default_hooks.checkpoint.type == 'MyCheckpointHook'
    cfg = Config(dict(default_hooks=dict(checkpoint=None)))
    enable_safe_checkpoints(cfg)
    assert cfg.default_hooks.checkpoint is None
    assert cfg.custom_hooks == [dict(type='CheckpointMatchHook')]


def test_allow_partial_checkpoint_flag(tmp_path, monkeypatch):
    # setenv first so that teardown also undoes what load_tool_config sets
    monkeypatch.setenv('LOCAL_RANK', '')
    monkeypatch.delenv('LOCAL_RANK')
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    parser.add_argument('--work-dir')
    add_common_args(parser)
    args = parser.parse_args([str(TOY_CFG)])
    assert args.allow_partial_checkpoint is False
    assert 'allow_partial_checkpoint' not in load_tool_config(args)
    args = parser.parse_args([str(TOY_CFG), '--allow-partial-checkpoint'])
    assert load_tool_config(args).allow_partial_checkpoint is True


def test_build_runner_uses_the_hooks_and_resolves_resume(tmp_path):
    from diffmtl.engine import AtomicCheckpointHook, CheckpointMatchHook
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    (work_dir / 'last_checkpoint').write_text('')  # nothing to resume
    cfg = Config.fromfile(str(TOY_CFG))
    cfg.work_dir = str(work_dir)
    cfg.resume = True
    cfg.experiment_name = 'tool_cfg_build_runner'
    runner = build_runner(cfg)
    types = [type(h) for h in runner.hooks]
    assert AtomicCheckpointHook in types
    assert CheckpointMatchHook in types
    assert cfg.resume is False  # an empty pointer and no checkpoint
