# Copyright (c) diffmtl contributors. All rights reserved.
"""Boundary thinning, matching and ODS/OIS/AP on hand-made maps."""
import numpy as np
import pytest

from diffmtl.evaluation.functional import (binary_thin, boundary_metrics,
                                           boundary_stats, match_boundaries)
from diffmtl.evaluation.functional.boundary import has_pyedgeeval

needs_pyedgeeval = pytest.mark.skipif(
    not has_pyedgeeval(), reason='pyedgeeval is not installed')


def test_thin_keeps_one_pixel_lines_and_thins_bars():
    line = np.zeros((7, 14), bool)
    line[3, 2:12] = True
    np.testing.assert_array_equal(binary_thin(line), line)
    bar = np.zeros((7, 14), bool)
    bar[2:5, 2:12] = True
    t = binary_thin(bar)
    rows, cols = np.nonzero(t)
    assert set(rows.tolist()) == {3}  # the middle row only
    assert cols.min() <= 3 and cols.max() >= 10
    np.testing.assert_array_equal(binary_thin(t), t)  # idempotent


def test_thin_iteration_cap_and_empty_maps():
    bar = np.zeros((9, 14), bool)
    bar[1:8, 2:12] = True
    # max_iter <= 0 leaves the map as it is (scikit-image reads 0 as "no cap")
    np.testing.assert_array_equal(binary_thin(bar, max_iter=0), bar)
    once = binary_thin(bar, max_iter=1)
    assert once.sum() < bar.sum() and not (once & ~bar).any()
    assert binary_thin(bar, max_iter=1).sum() > binary_thin(bar).sum()
    assert binary_thin(np.zeros((0, 4), bool)).shape == (0, 4)
    assert binary_thin(np.zeros((5, 4), np.uint8)).dtype == bool


def _line(row, c0=20, c1=80, shape=(100, 100)):
    m = np.zeros(shape, bool)
    m[row, c0:c1] = True
    return m


def test_match_within_and_beyond_tolerance(backend='numpy'):
    # diagonal 141.4 px, max_dist 0.0075 -> tolerance 1.06 px
    gt = _line(50)
    m1, m2 = match_boundaries(_line(51), gt, 0.0075, backend)
    assert m1.sum() == 60 and m2.sum() == 60
    m1, m2 = match_boundaries(_line(52), gt, 0.0075, backend)
    assert m1.sum() == 0 and m2.sum() == 0
    # a larger tolerance (0.02 -> 2.8 px) matches the 2 px shift
    m1, m2 = match_boundaries(_line(52), gt, 0.02, backend)
    assert m1.sum() == 60 and m2.sum() == 60
    # half the line predicted: one-to-one, so 30 and 30
    m1, m2 = match_boundaries(_line(51, 20, 50), gt, 0.0075, backend)
    assert m1.sum() == 30 and m2.sum() == 30


def test_boundary_stats_by_hand(backend='numpy'):
    gt = _line(50).astype(np.int64)
    prob = np.zeros((100, 100))
    prob[51, 20:80] = 0.5  # true boundary, 1 px off
    prob[80, 20:40] = 0.9  # 20 false positive pixels
    st = boundary_stats(prob, gt, [0.3, 0.7], backend=backend)
    np.testing.assert_array_equal(st['cnt_r'], [60, 0])
    np.testing.assert_array_equal(st['sum_r'], [60, 60])
    np.testing.assert_array_equal(st['cnt_p'], [60, 0])
    np.testing.assert_array_equal(st['sum_p'], [80, 20])
    m = boundary_metrics({k: v[None] for k, v in st.items()})
    assert m['odsF'] == pytest.approx(100 * 2 * 0.75 / 1.75)
    # ignored GT pixels remove the predictions on them (10 of the 20 FPs)
    gt[78:83, 30:40] = 255
    st = boundary_stats(prob, gt, [0.3, 0.7], backend=backend)
    np.testing.assert_array_equal(st['sum_p'], [70, 10])
    m = boundary_metrics({k: v[None] for k, v in st.items()})
    assert m['odsF'] == pytest.approx(100 * 12 / 13)


def test_thick_gt_is_thinned_and_threshold_is_strict():
    gt = np.zeros((100, 100), np.int64)
    gt[49:52, 20:80] = 1  # 3 px thick -> thinned to row 50
    prob = np.zeros((100, 100))
    prob[50, 20:80] = 0.5
    st = boundary_stats(prob, gt, [0.5, 0.49], backend='numpy')
    assert st['sum_p'][0] == 0  # seism binarises with prob > theta
    assert st['sum_r'][1] <= 60 and st['cnt_r'][1] == st['sum_r'][1]
    st = boundary_stats(prob, gt, [0.49], thin_gt=False, backend='numpy')
    assert st['sum_r'][0] == 180


def test_ods_ois_ap_from_counts_by_hand():
    per_image = dict(
        cnt_r=np.array([[8, 4], [6, 5]]),
        sum_r=np.array([[10, 10], [10, 10]]),
        cnt_p=np.array([[8, 4], [6, 5]]),
        sum_p=np.array([[16, 4], [20, 5]]))
    m = boundary_metrics(per_image)
    # set level: thr0 R=.7 P=14/36 F=.5; thr1 R=.45 P=1 F=.9/1.45
    assert m['odsF'] == pytest.approx(100 * 0.9 / 1.45)
    assert m['ods_thr_idx'] == 1
    # image 1 best at thr0, image 2 at thr1: R=13/20, P=13/21
    r, p = 13 / 20, 13 / 21
    assert m['oisF'] == pytest.approx(100 * 2 * p * r / (p + r))
    # PR points (0, 1), (.45, 1), (.7, 14/36) -> trapezoids
    assert m['AP'] == pytest.approx(100 * (0.45 + 0.25 * (1 + 14 / 36) / 2))


@needs_pyedgeeval
def test_pyedgeeval_bsds_matcher_close_to_exact_maximum():
    """The BSDS matcher (randomised outlier graph) may miss a few pixels."""
    gt = _line(50)
    for pred, tol, expected in ((_line(51), 0.0075, 60),
                                (_line(52), 0.0075, 0),
                                (_line(52), 0.02, 60),
                                (_line(51, 20, 50), 0.0075, 30)):
        m1, m2 = match_boundaries(pred, gt, tol, 'pyedgeeval')
        assert m1.sum() == m2.sum()  # one to one
        assert expected - 2 <= m1.sum() <= expected
    rng = np.random.default_rng(0)
    a = rng.random((60, 80)) > 0.9
    b = rng.random((60, 80)) > 0.9
    exact = match_boundaries(a, b, 0.03, 'numpy')[0].sum()
    bsds = match_boundaries(a, b, 0.03, 'pyedgeeval')[0].sum()
    assert 0.97 * exact <= bsds <= exact


@needs_pyedgeeval
def test_nms_reduces_a_blurred_band_to_its_crest():
    pytest.importorskip('cv2')
    rows = np.arange(100)[:, None]
    prob = np.exp(-(rows - 50.0)**2 / 8) * np.ones((1, 100))  # 5 px band
    gt = _line(50, 0, 100).astype(np.int64)
    plain = boundary_stats(prob, gt, [0.1], thin_gt=False)
    nms = boundary_stats(prob, gt, [0.1], nms=True, thin_gt=False)
    # without NMS the band thins to one line anyway (thinning), with NMS
    # the crest row survives: every GT pixel away from the image border is
    # recovered and nothing far from it is predicted
    assert nms['cnt_r'][0] >= 90 and nms['sum_p'][0] <= 100
    assert nms['cnt_p'][0] == nms['sum_p'][0]
    assert plain['cnt_r'][0] >= 90


def test_numpy_matcher_reaches_maximum_cardinality():
    import networkx as nx
    rng = np.random.default_rng(3)
    for _ in range(10):
        a = rng.random((30, 40)) > rng.uniform(0.6, 0.95)
        b = rng.random((30, 40)) > rng.uniform(0.6, 0.95)
        tol = 0.05  # 2.5 px
        m1, m2 = match_boundaries(a, b, tol, 'numpy')
        assert m1.sum() == m2.sum()
        pa, pb = np.argwhere(a), np.argwhere(b)
        g = nx.Graph()
        g.add_nodes_from(range(len(pa)))
        radius = tol * np.hypot(30, 40)
        for i, p in enumerate(pa):
            d = np.hypot(*(pb - p).T)
            g.add_edges_from((i, len(pa) + j)
                             for j in np.nonzero(d <= radius)[0])
        best = nx.bipartite.maximum_matching(g, top_nodes=range(len(pa)))
        assert m1.sum() == len(best) // 2


def test_numpy_matcher_on_a_graph_where_hopcroft_karp_stalls():
    """Thinned noise at a 5.4 px tolerance: a layered candidate graph (2627
    x 2618 pixels, 44k pairs) on which scipy's ``maximum_bipartite_matching``
    does not return (scipy issue #26147); the max-flow matcher does, with
    the maximum found by networkx and by a Kuhn matcher."""
    rng = np.random.default_rng(1)
    a = binary_thin(rng.random((120, 120)) < 0.2)
    b = binary_thin(rng.random((120, 120)) < 0.2)
    m1, m2 = match_boundaries(a, b, 0.0318, 'numpy')
    assert a.sum() == 2627 and b.sum() == 2618
    assert m1.sum() == m2.sum() == 2615
    assert not (m1 & ~a).any() and not (m2 & ~b).any()
