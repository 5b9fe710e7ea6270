# Copyright (c) diffmtl contributors. All rights reserved.
"""diffmtl.models.utils.sync_norm in one process (the two-process replay
is tests/test_models/test_collective_safety.py)."""
import os
import sys

import torch
import torch.distributed as dist
import torch.nn as nn

from diffmtl.models.utils.sync_norm import (norms_synchronise,
                                            sync_norm_layers, zero_term)
from diffmtl.registry import MODELS

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _mtl_model_utils import make_batch, tiny_baseline_cfg  # noqa: E402


def test_zero_term_is_zero_and_sends_zero_gradients_everywhere():
    a = torch.tensor([1.0, float('inf')], requires_grad=True)
    b = torch.full((2, 3), float('nan'), requires_grad=True)
    c = torch.ones(0, 4, requires_grad=True)  # empty tensors take part too
    bn = nn.BatchNorm1d(3)
    calls = []
    bn.register_full_backward_hook(lambda *args: calls.append('bn'))
    x = torch.randn(4, 3, requires_grad=True)
    y = bn(x)
    z = zero_term([a * 2, b + 1, c, y])
    assert z.item() == 0.0 and z.dim() == 0
    z.backward()
    for t in (a, b, c, x):
        assert t.grad is not None and not bool(t.grad.any())
    assert calls == ['bn']  # backward reached the norm
    assert not bool(bn.weight.grad.any())


def test_norms_do_not_synchronise_in_one_process(tmp_path):
    model = MODELS.build(
        tiny_baseline_cfg(decoder=dict(
            num_blocks=2, norm_cfg=dict(type='SyncBN', requires_grad=True))))
    layers = sync_norm_layers(model)
    assert layers and all(isinstance(m, nn.SyncBatchNorm) for m in layers)
    model.train()
    if not dist.is_initialized():
        assert not norms_synchronise(model)  # no process group
        dist.init_process_group('gloo',
                                init_method=f'file://{tmp_path / "store"}',
                                rank=0,
                                world_size=1)
        try:
            assert not norms_synchronise(model)  # a group of one
        finally:
            dist.destroy_process_group()
    else:
        assert dist.get_world_size() == 1
        assert not norms_synchronise(model)
    # without synchronisation the losses are returned untouched
    inputs, samples = make_batch([(1, 0, 0, 0, 0), (0, 0, 1, 0, 0)])
    losses = model.loss(inputs, samples)
    same = dict(losses)
    assert model.keep_branches_in_graph(losses, [inputs]) is losses
    assert all(losses[k] is same[k] for k in same)
    assert not norms_synchronise(nn.BatchNorm2d(3))
