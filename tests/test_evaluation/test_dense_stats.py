# Copyright (c) diffmtl contributors. All rights reserved.
"""Hand-derived cases for the per-pixel task statistics."""
import math

import numpy as np
import pytest

from diffmtl.evaluation.functional import (SAL_THRESHOLDS, depth_metrics,
                                           depth_stats, normals_metrics,
                                           normals_stats, sal_metrics,
                                           sal_stats, seg_metrics, seg_stats,
                                           sum_stats)


# --------------------------------------------------------------------------
# segmentation
# --------------------------------------------------------------------------
GT = np.array([[0, 0, 1], [1, 255, 0]])
PRED = np.array([[0, 1, 1], [2, 2, 0]])


def test_seg_counts_and_miou_by_hand():
    st = seg_stats(PRED, GT, 3)
    # class 0: I=2 P=2 L=3; class 1: I=1 P=2 L=2; class 2: I=0 P=1 L=0
    np.testing.assert_array_equal(st['intersect'], [2, 1, 0])
    np.testing.assert_array_equal(st['pred'], [2, 2, 1])
    np.testing.assert_array_equal(st['label'], [3, 2, 0])
    assert st['n_valid'] == 5
    m = seg_metrics(st)
    np.testing.assert_allclose(m['IoU'], [2 / 3, 1 / 3, 0])
    assert m['mIoU'] == pytest.approx(100 / 3)
    assert m['aAcc'] == pytest.approx(60.0)
    # mAcc only over classes present in the GT: (2/3 + 1/2) / 2
    assert m['mAcc'] == pytest.approx(100 * (2 / 3 + 1 / 2) / 2)


def test_seg_class_absent_from_gt_and_pred_counts_as_zero():
    m = seg_metrics(seg_stats(PRED, GT, 4))
    assert m['IoU'][3] == 0
    assert m['mIoU'] == pytest.approx(100 * (2 / 3 + 1 / 3) / 4)


def test_seg_perfect_inverted_and_all_ignore():
    gt = np.array([[0, 1], [1, 0]])
    assert seg_metrics(seg_stats(gt, gt, 2))['mIoU'] == pytest.approx(100)
    assert seg_metrics(seg_stats(1 - gt, gt, 2))['mIoU'] == 0
    st = seg_stats(gt, np.full((2, 2), 255), 2)
    assert st['n_valid'] == 0 and st['pred'].sum() == 0
    # negative labels are invalid too (0 <= gt < n)
    assert seg_stats(gt, np.array([[-1, 1], [1, 7]]), 2)['n_valid'] == 2


def test_seg_sum_over_images_equals_whole():
    a = seg_stats(PRED, GT, 3)
    b = seg_stats(GT.clip(0, 2), GT, 3)
    both = seg_stats(
        np.concatenate([PRED, GT.clip(0, 2)]), np.concatenate([GT, GT]), 3)
    s = sum_stats([a, b])
    for k in both:
        np.testing.assert_array_equal(s[k], both[k])


# --------------------------------------------------------------------------
# saliency
# --------------------------------------------------------------------------
def test_sal_sigmoid_quirk_vs_corrected_by_hand():
    prob = np.array([[0.32, 0.32, 0.38], [0.38, 0.99, 0.0]])
    gt = np.array([[0, 0, 1], [1, 255, 255]])
    st = sal_stats(prob, gt)
    assert st['ap'] == 2 and st['n_valid'] == 4
    # sigmoid(0.32)=0.579, sigmoid(0.38)=0.594: all positive for thr<=0.55,
    # none for thr>=0.60
    np.testing.assert_array_equal(st['pp_paper'], [4] * 11 + [0] * 8)
    np.testing.assert_array_equal(st['tp_paper'], [2] * 11 + [0] * 8)
    # corrected: 0.35 separates the classes
    assert st['pp_corrected'][6] == 2 and st['tp_corrected'][6] == 2
    m = sal_metrics(st)
    # P = 1/2, R = 1 -> F = 1.3 * 0.5 / (0.3 * 0.5 + 1)
    assert m['maxF'] == pytest.approx(100 * 1.3 * 0.5 / 1.15)
    assert m['maxF_corrected'] == pytest.approx(100.0)
    assert SAL_THRESHOLDS[m['maxF_corrected_idx']] in (0.35, )


def test_sal_no_positive_prediction_gives_zero_not_nan():
    st = sal_stats(np.zeros((2, 2)), np.array([[1, 1], [0, 0]]),
                   thresholds=(0.5, ))
    m = sal_metrics(st)
    assert m['maxF_corrected'] == 0.0
    # the quirk: sigmoid(0) = 0.5 >= 0.5, every pixel positive
    assert m['maxF'] == pytest.approx(100 * 1.3 * 0.5 / 1.15)


# --------------------------------------------------------------------------
# normals
# --------------------------------------------------------------------------
def _normals_case():
    gt = np.array([[0, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 0]],
                  dtype=np.float64).T.reshape(3, 1, 5)
    pred = np.array([[0, 0, 2], [0, 0, -1], [1, 0, 0], [0, 1, 1], [1, 0, 0]],
                    dtype=np.float64).T.reshape(3, 1, 5)
    return pred, gt  # angles 0, 180 (antipodal), 90, 45, invalid


def test_normals_angles_by_hand():
    pred, gt = _normals_case()
    st = normals_stats(pred, gt)
    assert st['n'] == 4
    assert st['sum'] == pytest.approx(315.0)
    assert st['sum_sq'] == pytest.approx(0 + 180**2 + 90**2 + 45**2)
    np.testing.assert_array_equal(st['below'], [1, 1, 1])
    m = normals_metrics(sum_stats([st], 3600))
    assert m['mErr'] == pytest.approx(78.75)
    assert m['rmse'] == pytest.approx(math.sqrt(42525 / 4))
    assert m['medianErr'] == pytest.approx(67.5, abs=0.025 + 1e-9)
    assert m['11.25'] == pytest.approx(25.0)
    assert m['30'] == pytest.approx(25.0)


def test_normals_median_within_half_bin_of_numpy():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(3, 20, 30))
    pred = gt + rng.normal(scale=0.5, size=gt.shape)
    for w in (0.05, 1.0):
        st = normals_stats(pred, gt, bin_width=w)
        m = normals_metrics(sum_stats([st], int(np.ceil(180 / w))), w)
        g = gt / np.linalg.norm(gt, axis=0)
        p = pred / np.linalg.norm(pred, axis=0)
        ang = np.degrees(np.arccos(np.clip((g * p).sum(0), -1, 1)))
        assert abs(m['medianErr'] - np.median(ang)) <= w / 2 + 1e-9
        assert m['mErr'] == pytest.approx(ang.mean(), abs=1e-6)


# --------------------------------------------------------------------------
# depth
# --------------------------------------------------------------------------
def test_depth_invalid_pixels_and_clamp_by_hand():
    gt = np.array([[2.0, 0.0, 4.0, 1.0]])
    pred = np.array([[1.0, 5.0, 4.0, -1.0]])  # -1 -> 1e-9
    m = depth_metrics(depth_stats(pred, gt))
    assert m['absErr'] == pytest.approx(2 / 3)
    assert m['rmse'] == pytest.approx(math.sqrt(2 / 3))
    assert m['absRel'] == pytest.approx((0.5 + 0 + 1) / 3)
    assert m['sqRel'] == pytest.approx((0.5 + 0 + 1) / 3)
    assert m['logRMSE'] == pytest.approx(
        math.sqrt((math.log(2)**2 + math.log(1e-9)**2) / 3))


def test_depth_pixel_pooled_not_image_averaged():
    a = depth_stats(np.array([[1.0]]), np.array([[2.0]]))  # 1 px, err 1
    b = depth_stats(np.full((1, 3), 2.0), np.full((1, 3), 2.0))  # 3 px, 0
    m = depth_metrics(sum_stats([a, b]))
    assert m['absErr'] == pytest.approx(0.25)  # not (1 + 0) / 2
    assert depth_stats(np.ones((2, 2)), np.zeros((2, 2)))['n'] == 0
    assert depth_metrics(depth_stats(np.ones(2), np.zeros(2))) == {}
