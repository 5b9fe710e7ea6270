# Copyright (c) diffmtl contributors. All rights reserved.
"""``xavier_normal_init``: what it sets, in which order it draws, and what
it leaves alone. (That XTC's mapper and JTR's auto-encoder start from the
same values through it as before is pinned by the synthetic configs'
``values_sha256`` in ``tests/data/model_fingerprints.json``.)"""
import math

import torch
import torch.nn as nn

from diffmtl.models.utils import xavier_normal_init


def _net():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4),
        nn.Conv2d(4, 6, 1, bias=False), nn.InstanceNorm2d(6, affine=True),
        nn.InstanceNorm2d(6), nn.GroupNorm(2, 6), nn.Linear(6, 2))


def test_convs_xavier_normal_in_module_order_norms_one_zero():
    net = _net()
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(0.5)
    torch.manual_seed(3)
    xavier_normal_init(net)
    # reference: the same draws written out, std = sqrt(2 / (fan_in +
    # fan_out)) with fan = channels x kernel area, in module order
    torch.manual_seed(3)
    w1 = torch.randn(4, 3, 3, 3) * math.sqrt(2 / (3 * 9 + 4 * 9))
    w2 = torch.randn(6, 4, 1, 1) * math.sqrt(2 / (4 + 6))
    torch.testing.assert_close(net[0].weight, w1, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(net[2].weight, w2, rtol=1e-6, atol=1e-7)
    assert torch.equal(net[0].bias, torch.zeros(4))
    for norm in (net[1], net[3]):
        assert torch.equal(norm.weight, torch.ones_like(norm.weight))
        assert torch.equal(norm.bias, torch.zeros_like(norm.bias))
    # not a conv nor a batch / instance norm: untouched
    for p in list(net[5].parameters()) + list(net[6].parameters()):
        assert torch.equal(p, torch.full_like(p, 0.5))
