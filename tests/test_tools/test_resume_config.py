# Copyright (c) diffmtl contributors. All rights reserved.
"""--resume compares the config's model, optimiser and schedule with the
checkpoint's and refuses a changed one, listing the differences, unless
--allow-resume-changes."""
import pytest
from mmengine.config import Config
from tool_runner import TOY_CFG, run_tool

from diffmtl.engine import (ResumeConfigMismatchError, check_resume_config,
                            load_checkpoint_file, resolve_resume)
from diffmtl.engine.resume_config import config_differences


def test_config_differences_lists_dotted_keys():
    old = Config(dict(
        model=dict(type='M', loss_weights=dict(depth=1.0)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.02)),
        param_scheduler=[dict(type='LinearLR', end=2)],
        train_cfg=dict(max_iters=4)))
    new = Config(dict(
        model=dict(type='M', loss_weights=dict(depth=2.0)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05,
                                          weight_decay=1e-4)),
        param_scheduler=[dict(type='LinearLR', end=2)],
        train_cfg=dict(max_iters=6)))
    assert config_differences(new, old) == [
        ('model.loss_weights.depth', 1.0, 2.0),
        ('optim_wrapper.optimizer.lr', 0.02, 0.05),
        ('optim_wrapper.optimizer.weight_decay', '<not set>', 0.0001),
    ]
    # loop settings (train_cfg) are not compared; tuples equal lists
    same = Config(old.to_dict())
    same.param_scheduler = (dict(type='LinearLR', end=2), )
    assert config_differences(same, old) == []


def _check(proc):
    assert proc.returncode == 0, proc.stdout[-5000:]
    return proc.stdout


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp('resume_cfg')
    work_dir = root / 'work'
    _check(run_tool('train.py', [TOY_CFG, '--work-dir', work_dir], cwd=root))
    return root


def _copy_work_dir(trained, name):
    import shutil
    dst = trained / name
    shutil.copytree(trained / 'work', dst)
    # the pointer names the original folder: point it at the copy
    (dst / 'last_checkpoint').write_text(str(dst / 'iter_4.pth'))
    return dst


@pytest.mark.slow
def test_resume_with_a_changed_learning_rate_is_refused(trained):
    work_dir = _copy_work_dir(trained, 'lr')
    proc = run_tool('train.py', [
        TOY_CFG, '--work-dir', work_dir, '--resume', '--cfg-options',
        'optim_wrapper.optimizer.lr=0.05', 'train_cfg.max_iters=6',
        'param_scheduler.0.end=3'
    ], cwd=trained)
    assert proc.returncode != 0
    out = proc.stdout
    assert 'ResumeConfigMismatchError' in out
    assert "optim_wrapper.optimizer.lr: 0.02 (checkpoint) -> 0.05 (config)" \
        in out
    assert "param_scheduler[0].end: 2 (checkpoint) -> 3 (config)" in out
    assert '--allow-resume-changes' in out
    assert not (work_dir / 'iter_6.pth').exists()


@pytest.mark.slow
def test_allow_resume_changes_resumes_and_logs_them(trained):
    work_dir = _copy_work_dir(trained, 'allowed')
    out = _check(run_tool('train.py', [
        TOY_CFG, '--work-dir', work_dir, '--resume',
        '--allow-resume-changes', '--cfg-options',
        'optim_wrapper.optimizer.lr=0.05', 'train_cfg.max_iters=6',
        'train_cfg.val_interval=6'
    ], cwd=trained))
    assert 'resumed epoch: 0, iter: 4' in out
    assert "optim_wrapper.optimizer.lr: 0.02 (checkpoint) -> 0.05 (config)" \
        in out
    assert 'continue from iter_4.pth' in out
    assert (work_dir / 'iter_6.pth').is_file()


@pytest.mark.slow
def test_more_iterations_alone_resume_without_a_word(trained):
    work_dir = _copy_work_dir(trained, 'longer')
    out = _check(run_tool('train.py', [
        TOY_CFG, '--work-dir', work_dir, '--resume', '--cfg-options',
        'train_cfg.max_iters=6', 'train_cfg.val_interval=6'
    ], cwd=trained))
    assert 'resumed epoch: 0, iter: 4' in out
    assert '(checkpoint) ->' not in out


@pytest.mark.slow
def test_resume_from_an_explicit_load_from_is_checked_too(trained):
    ckpt = str(trained / 'work' / 'iter_4.pth')
    cfg = Config.fromfile(str(TOY_CFG))
    cfg.work_dir = str(trained / 'explicit')
    cfg.resume, cfg.load_from = True, ckpt
    resolve_resume(cfg)  # unchanged: accepted
    cfg.model.in_ch = 5
    with pytest.raises(ResumeConfigMismatchError,
                       match=r'model.in_ch: 4 \(checkpoint\) -> 5'):
        resolve_resume(cfg)
    cfg.allow_resume_changes = True
    resolve_resume(cfg)
    meta = load_checkpoint_file(ckpt)['meta']
    assert check_resume_config(cfg, meta, ckpt) == [('model.in_ch', 4, 5)]
