# Copyright (c) diffmtl contributors. All rights reserved.
"""tools/test.py and load_from refuse checkpoints of another architecture.

Before, a checkpoint of another model logged size-mismatch warnings and
tools/test.py reported the metrics of a half-random model with exit code
0. Now it fails naming the file and the first mismatched keys, unless
``--allow-partial-checkpoint``; damaged files fail naming the file.
"""
import os
from collections import OrderedDict

import pytest
import torch
from resume_utils import load
from tool_runner import TOY_CFG, logged_metric, run_tool

pytestmark = pytest.mark.slow

THREE_CHANNELS = [
    '--cfg-options', 'model.in_ch=3', 'val_dataloader.dataset.in_ch=3',
    'test_dataloader.dataset.in_ch=3', 'train_dataloader.dataset.in_ch=3'
]


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """A toy checkpoint (in_ch=4) trained by tools/train.py."""
    work_dir = tmp_path_factory.mktemp('mismatch') / 'work'
    proc = run_tool(
        'train.py', [
            TOY_CFG, '--work-dir', work_dir, '--cfg-options',
            'train_cfg.max_iters=2', 'train_cfg.val_interval=2'
        ],
        cwd=work_dir.parent)
    assert proc.returncode == 0, proc.stdout[-5000:]
    return work_dir / 'iter_2.pth'


def _test(ckpt, tmp_path, *args):
    return run_tool(
        'test.py', [TOY_CFG, ckpt, '--work-dir', tmp_path / 'test', *args],
        cwd=tmp_path)


def test_matching_checkpoint_still_tests(checkpoint, tmp_path):
    proc = _test(checkpoint, tmp_path)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert logged_metric(proc.stdout, 'toy/num_samples') == 8


def test_other_architecture_is_an_error_naming_keys(checkpoint, tmp_path):
    proc = _test(checkpoint, tmp_path, *THREE_CHANNELS)
    assert proc.returncode != 0
    out = proc.stdout
    assert 'CheckpointMismatchError' in out
    assert (f'Checkpoint {checkpoint} does not match the model '
            'ToyRegressor') in out
    assert ('1 with a different shape: linear.weight (checkpoint [1, 4], '
            'model [1, 3])') in out
    assert '--allow-partial-checkpoint' in out
    assert 'toy/mse' not in out  # no metrics of a half-random model


def test_allow_partial_checkpoint_flag_loads_the_rest(checkpoint, tmp_path):
    proc = _test(checkpoint, tmp_path, '--allow-partial-checkpoint',
                 *THREE_CHANNELS)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert 'size mismatch for linear.weight' in proc.stdout  # mmengine's
    assert logged_metric(proc.stdout, 'toy/num_samples') == 8


def test_unexpected_and_missing_keys_are_named(checkpoint, tmp_path):
    ckpt = load(checkpoint)
    ckpt['state_dict'] = OrderedDict(
        {'head.weight': ckpt['state_dict']['linear.weight']})
    renamed = tmp_path / 'renamed.pth'
    torch.save(ckpt, renamed)
    proc = _test(renamed, tmp_path)
    assert proc.returncode != 0
    assert '1 missing from the checkpoint: linear.weight' in proc.stdout
    assert '1 not in the model: head.weight' in proc.stdout
    assert str(renamed) in proc.stdout


def test_load_from_of_other_architecture(checkpoint, tmp_path):
    args = [
        TOY_CFG, '--work-dir', tmp_path / 'ft', '--cfg-options',
        f'load_from={checkpoint}', 'train_cfg.max_iters=1',
        'train_cfg.val_interval=1', *THREE_CHANNELS[1:]
    ]
    proc = run_tool('train.py', args, cwd=tmp_path)
    assert proc.returncode != 0
    assert 'linear.weight (checkpoint [1, 4], model [1, 3])' in proc.stdout
    assert not (tmp_path / 'ft' / 'iter_1.pth').exists()
    proc = run_tool(
        'train.py', ['--allow-partial-checkpoint'] + args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert (tmp_path / 'ft' / 'iter_1.pth').is_file()


@pytest.mark.parametrize('kind', ['truncated', 'random'])
def test_damaged_checkpoint_is_an_error_naming_it(checkpoint, tmp_path, kind):
    data = checkpoint.read_bytes()
    path = tmp_path / f'{kind}.pth'
    if kind == 'truncated':
        path.write_bytes(data[:len(data) // 3])
    else:
        path.write_bytes(os.urandom(4096))
    proc = _test(path, tmp_path)
    assert proc.returncode != 0
    assert 'CorruptCheckpointError' in proc.stdout
    assert f'Checkpoint {path} is unreadable' in proc.stdout
    reason = 'truncated' if kind == 'truncated' else 'not a PyTorch'
    assert reason in proc.stdout
