# Copyright (c) diffmtl contributors. All rights reserved.
"""Checkpoints of another architecture are errors naming the keys."""
import os
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseTTAModel
from mmengine.runner import Runner

from diffmtl.apis import init_model
from diffmtl.engine import (CheckpointMatchHook, CheckpointMismatchError,
                            CorruptCheckpointError, check_checkpoint_matches,
                            find_checkpoint_mismatch, load_model_checkpoint)
from diffmtl.registry import HOOKS

TOY_CFG = (
    Path(__file__).resolve().parents[1] / 'data' / 'configs' /
    'toy_regression.py')


class Net(torch.nn.Module):

    def __init__(self, width=4, extra=False):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, width, 3)
        self.bn = torch.nn.BatchNorm2d(width)
        if extra:
            self.head = torch.nn.Linear(width, 2)


def test_matching_checkpoint_passes():
    net = Net()
    sd = net.state_dict()
    check_checkpoint_matches(net, dict(state_dict=sd))
    check_checkpoint_matches(net, sd)  # plain state dict
    # DDP-style prefix and a missing num_batches_tracked are tolerated
    sd = OrderedDict((f'module.{k}', v) for k, v in sd.items()
                     if not k.endswith('num_batches_tracked'))
    check_checkpoint_matches(net, dict(state_dict=sd))


def test_mismatch_lists_first_keys_of_each_kind():
    net = Net(width=4)
    other = Net(width=8, extra=True).state_dict()
    del other['bn.running_var']
    missing, unexpected, mismatched = find_checkpoint_mismatch(
        net, dict(state_dict=other))
    assert missing == ['bn.running_var']
    assert unexpected == ['head.weight', 'head.bias']
    assert [m[0] for m in mismatched] == [
        'conv.weight', 'conv.bias', 'bn.weight', 'bn.bias', 'bn.running_mean'
    ]
    assert mismatched[0][1:] == ((8, 3, 3, 3), (4, 3, 3, 3))
    with pytest.raises(CheckpointMismatchError) as info:
        check_checkpoint_matches(
            net, dict(state_dict=other), filename='other.pth', limit=2)
    msg = str(info.value)
    assert 'Checkpoint other.pth does not match the model Net' in msg
    assert ('5 with a different shape: conv.weight (checkpoint [8, 3, 3, '
            '3], model [4, 3, 3, 3]), conv.bias (checkpoint [8], model '
            '[4]), ... (3 more)') in msg
    assert '1 missing from the checkpoint: bn.running_var' in msg
    assert '2 not in the model: head.weight, head.bias' in msg
    assert '--allow-partial-checkpoint' in msg
    assert info.value.filename == 'other.pth'
    assert info.value.unexpected == ['head.weight', 'head.bias']


def test_tta_wrapper_is_looked_through():
    from toy_components import ToyRegressor

    class TTA(BaseTTAModel):

        def merge_preds(self, data_samples_list):
            return data_samples_list

    net = ToyRegressor(in_ch=4)
    wrapped = TTA(module=net)
    check_checkpoint_matches(wrapped, dict(state_dict=net.state_dict()))
    with pytest.raises(CheckpointMismatchError, match='ToyRegressor'):
        check_checkpoint_matches(
            wrapped, dict(state_dict={'linear.weight': torch.ones(1, 3)}))


@pytest.fixture
def toy_ckpts(tmp_path):
    """A toy checkpoint (in_ch=4) with dataset meta, and a 3-channel one."""
    meta = dict(dataset_meta=dict(classes=('target', ), palette=[[1, 2, 3]]))
    good = tmp_path / 'toy4.pth'
    torch.save(
        dict(
            meta=meta,
            state_dict=OrderedDict(
                {'linear.weight': torch.tensor([[1., 2., 3., 4.]])})), good)
    bad = tmp_path / 'toy3.pth'
    torch.save(
        dict(
            meta=meta,
            state_dict=OrderedDict({
                'linear.weight': torch.ones(1, 3),
                'linear.bias': torch.zeros(1)
            })), bad)
    return good, bad


def test_load_model_checkpoint(toy_ckpts):
    from toy_components import ToyRegressor
    good, bad = toy_ckpts
    model = ToyRegressor(in_ch=4)
    load_model_checkpoint(model, str(good))
    assert model.linear.weight.tolist() == [[1., 2., 3., 4.]]
    model = ToyRegressor(in_ch=4)
    with pytest.raises(CheckpointMismatchError, match='linear.weight'):
        load_model_checkpoint(model, str(bad))
    assert model.linear.weight.abs().sum() == 0  # nothing was loaded
    load_model_checkpoint(model, str(bad), allow_partial=True)
    assert model.linear.weight.abs().sum() == 0  # mismatched: skipped


def test_init_model_refuses_mismatch_unless_allowed(toy_ckpts):
    good, bad = toy_ckpts
    model = init_model(str(TOY_CFG), str(good))
    assert model.linear.weight.tolist() == [[1., 2., 3., 4.]]
    with pytest.raises(CheckpointMismatchError) as info:
        init_model(str(TOY_CFG), str(bad))
    msg = str(info.value)
    assert str(bad) in msg
    assert 'linear.weight (checkpoint [1, 3], model [1, 4])' in msg
    assert 'not in the model: linear.bias' in msg
    model = init_model(
        str(TOY_CFG),
        str(bad),
        cfg_options=dict(allow_partial_checkpoint=True))
    assert model.linear.weight.abs().sum() == 0


@pytest.mark.parametrize('kind', ['truncated', 'random'])
def test_init_model_names_a_damaged_file(toy_ckpts, tmp_path, kind):
    good, _ = toy_ckpts
    data = good.read_bytes()
    path = tmp_path / f'{kind}.pth'
    if kind == 'truncated':
        path.write_bytes(data[:len(data) // 2])
    else:
        path.write_bytes(os.urandom(len(data)))
    with pytest.raises(CorruptCheckpointError, match=str(path)):
        init_model(str(TOY_CFG), str(path))


def _runner(tmp_path, load_from, **cfg_keys):
    cfg = Config.fromfile(str(TOY_CFG))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.load_from = str(load_from)
    cfg.train_cfg.max_iters = 1
    cfg.custom_hooks = [dict(type='CheckpointMatchHook')]
    cfg.experiment_name = f'match_{len(cfg_keys)}_{tmp_path.name}'
    cfg.merge_from_dict(cfg_keys)
    return Runner.from_cfg(cfg)


@pytest.mark.slow
def test_hook_stops_load_from_and_test(tmp_path, toy_ckpts):
    assert HOOKS.get('CheckpointMatchHook') is CheckpointMatchHook
    _, bad = toy_ckpts
    with pytest.raises(CheckpointMismatchError, match=str(bad)):
        _runner(tmp_path, bad).train()
    with pytest.raises(CheckpointMismatchError, match='linear.bias'):
        _runner(tmp_path, bad).test()
    runner = _runner(tmp_path, bad, allow_partial_checkpoint=True)
    runner.train()  # loads what matches (nothing) and trains
    assert runner.iter == 1
