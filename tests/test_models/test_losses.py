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
