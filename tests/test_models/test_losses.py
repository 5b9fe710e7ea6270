# Copyright (c) diffmtl contributors. All rights reserved.
import math

import pytest
import torch

from diffmtl.models.losses import (BalancedCrossEntropyLoss, DepthL1Loss,
                                   MTCrossEntropyLoss, NormalsL1Loss,
                                   WeightedBCELoss)


def test_cross_entropy_per_image_with_ignore():
    # image 0: two valid pixels, one ignored; image 1: all ignored
    pred = torch.zeros(2, 3, 1, 3)
    pred[0, 1, 0, 0] = math.log(2.0)  # p(class 1) = 2 / 4
    target = torch.tensor([[[[1, 0, 255]]], [[[255, 255, 255]]]])
    loss = MTCrossEntropyLoss()(pred, target)
    expected0 = (-math.log(0.5) - math.log(1 / 3)) / 2
    assert loss.shape == (2, )
    assert loss[0].item() == pytest.approx(expected0, rel=1e-6)
    assert loss[1].item() == 0.0


def test_cross_entropy_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match='labels must lie'):
        MTCrossEntropyLoss()(torch.zeros(1, 2, 1, 1), torch.tensor([[[[3]]]]))


def test_balanced_cross_entropy_weights_and_normaliser():
    # 1 positive, 3 negatives, 1 ignored -> w_pos = 3 / 4
    pred = torch.zeros(1, 2, 1, 5)
    pred[0, 1, 0, 0] = 1.0
    target = torch.tensor([[[[1, 0, 0, 0, 255]]]])
    loss = BalancedCrossEntropyLoss()(pred, target)
    ce_pos = -math.log(math.e / (1 + math.e))
    ce_neg = math.log(2)
    expected = (0.75 * ce_pos + 3 * 0.25 * ce_neg) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match='0, 1'):
        BalancedCrossEntropyLoss()(pred, torch.tensor([[[[2, 0, 0, 0, 0]]]]))


def test_weighted_bce_matches_pos_weight_formulation():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 1, 4, 4, generator=g)
    target = torch.randint(0, 2, (2, 1, 4, 4), generator=g)
    target[0, 0, 0] = 255
    loss = WeightedBCELoss(pos_weight=0.95)(pred, target)
    for b in range(2):
        valid = target[b] != 255
        ref = torch.nn.functional.binary_cross_entropy_with_logits(
            pred[b][valid], target[b][valid].float(),
            pos_weight=torch.tensor(19.0)) / 20
        assert loss[b].item() == pytest.approx(ref.item(), rel=1e-5)


def test_normals_l1_sums_channels_over_valid_pixels():
    pred = torch.zeros(1, 3, 1, 2)
    pred[0, :, 0, 0] = torch.tensor([0., 0., 2.])  # -> (0, 0, 1)
    pred[0, :, 0, 1] = torch.tensor([5., 0., 0.])
    target = torch.zeros(1, 3, 1, 2)
    target[0, :, 0, 0] = torch.tensor([1., 0., 0.])  # valid
    # pixel 1 invalid (zero vector)
    loss = NormalsL1Loss()(pred, target)
    assert loss.item() == pytest.approx(2.0)  # |0-1| + 0 + |1-0|


def test_depth_l1_masks_invalid():
    pred = torch.tensor([[[[1.0, 2.0, 5.0]]]])
    target = torch.tensor([[[[1.5, 0.0, 4.0]]]])
    assert DepthL1Loss()(pred, target).item() == pytest.approx(0.75)


def test_shape_errors_name_the_loss():
    with pytest.raises(ValueError, match='DepthL1Loss'):
        DepthL1Loss()(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 3, 3))


def _half_case(kind, dtype, size=512):
    """(loss, pred in ``dtype``, target) of one loss at size x size, the
    GT partly invalid, as under mixed-precision training."""
    g = torch.Generator().manual_seed(1)
    shape = (2, 1, size, size)
    if kind == 'ce':
        pred = torch.randn(2, 21, size, size, generator=g) * 3
        target = torch.randint(0, 21, shape, generator=g)
        target[:, :, :40] = 255
        loss = MTCrossEntropyLoss()
    elif kind == 'balanced_ce':
        pred = torch.randn(2, 2, size, size, generator=g) * 3
        target = (torch.rand(shape, generator=g) < 0.3).long()
        target[:, :, :, :50] = 255
        loss = BalancedCrossEntropyLoss()
    elif kind == 'bce':
        pred = torch.randn(shape, generator=g) * 3
        target = (torch.rand(shape, generator=g) < 0.05).long()
        target[1, :, 100:] = 255
        loss = WeightedBCELoss()
    elif kind == 'normals':
        pred = torch.randn(2, 3, size, size, generator=g)
        target = torch.nn.functional.normalize(
            torch.randn(2, 3, size, size, generator=g), dim=1)
        target[:, :, :30] = 0
        loss = NormalsL1Loss()
    else:
        pred = torch.rand(shape, generator=g) * 10
        target = torch.rand(shape, generator=g) * 10 + 0.5
        target[:, :, :, :70] = 0
        loss = DepthL1Loss()
    return loss, pred.to(dtype), target


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('kind',
                         ['ce', 'balanced_ce', 'bce', 'normals', 'depth'])
def test_half_precision_losses_match_a_float64_reference(kind, dtype):
    """Pixel counts, normalisers and per-image sums of 512x512 images are
    float32 whatever the prediction's dtype: a float16 count of 262144
    pixels is inf (balanced CE gave NaN, depth L1 gave 0)."""
    loss, pred, target = _half_case(kind, dtype)
    got = loss(pred, target)
    # the same (rounded) prediction values, every step in float64
    ref = loss(pred.double(), target)
    assert got.dtype == torch.float32
    assert ref.dtype == torch.float64
    assert torch.isfinite(got).all() and (got > 0).all()
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=0)


def test_half_precision_loss_gradient_reaches_the_half_prediction():
    loss, pred, target = _half_case('balanced_ce', torch.float16, size=64)
    pred.requires_grad_(True)
    loss(pred, target).sum().backward()
    assert pred.grad.dtype == torch.float16
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_deferred_label_checks_raise_when_resolved():
    """Inside deferred_data_checks a loss records its label check (no host
    sync), computes with sanitised labels, and resolve_data_checks raises
    the loss's own message."""
    from diffmtl.models.losses._utils import (deferred_data_checks,
                                              resolve_data_checks)
    pred = torch.zeros(1, 2, 1, 2)
    with deferred_data_checks() as pending:
        out = MTCrossEntropyLoss()(pred, torch.tensor([[[[3, 1]]]]))
        sal = BalancedCrossEntropyLoss()(pred, torch.tensor([[[[2, 1]]]]))
    assert len(pending) == 2
    assert torch.isfinite(out).all() and torch.isfinite(sal).all()
    with pytest.raises(ValueError, match='labels must lie in'):
        resolve_data_checks(pending)
    with deferred_data_checks() as pending:
        MTCrossEntropyLoss()(pred, torch.tensor([[[[0, 255]]]]))
    flag = torch.tensor(True)
    assert resolve_data_checks(pending, [flag, ~flag]) == [True, False]
