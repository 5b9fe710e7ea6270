# Copyright (c) diffmtl contributors. All rights reserved.
"""Boundary detection benchmark (BSDS / seism style) in Python.

For one image and every threshold ``theta`` the prediction (a boundary
probability map) is optionally suppressed by structured-edge NMS,
binarised with ``> theta``, thinned to one-pixel width and matched one to
one against the thinned ground-truth boundary pixels within
``max_dist * image diagonal`` pixels. The per-threshold counts

* ``cnt_r``: matched GT pixels, ``sum_r``: GT pixels,
* ``cnt_p``: matched predicted pixels, ``sum_p``: predicted pixels,

are the image's sufficient statistics; :func:`boundary_metrics` turns their
sums into ODS-F, OIS-F and AP.

Matching backends:

* ``'pyedgeeval'``: ``pyEdgeEval.correspond_pixels``, a wrapper of the
  BSDS ``correspondPixels`` C++ code that seism uses (min-cost assignment
  with outlier nodes). Its outlier connections are drawn from a random
  generator seeded with the time of day when the library loads, so its
  counts are not reproducible bit for bit;
* ``'numpy'``: an exact maximum-cardinality bipartite matching over all
  pixel pairs within the tolerance, solved as a unit-capacity maximum flow
  by ``scipy.sparse.csgraph.maximum_flow`` (Dinic's algorithm, compiled).
  Deterministic. It matches as many pixels as possible, which the BSDS
  assignment also aims at (outliers cost 100x the tolerance) but over a
  sparse candidate graph, so the BSDS code can match a few pixels fewer
  per image. (``scipy.sparse.csgraph.maximum_bipartite_matching`` is not
  used: its Hopcroft-Karp search never marks dead ends and takes
  exponential time on layered graphs, scipy issue #26147, open for
  scipy 1.17; thinned noisy boundary maps at a 5 px tolerance hit it.)

Thinning is a vectorised numpy Lam-Lee-Suen (``binary_thin``), equal to
``skimage.morphology.thin`` and 3-4x faster on boundary maps.
"""
import importlib
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.csgraph import maximum_flow

__all__ = [
    'binary_thin', 'match_boundaries', 'boundary_nms', 'boundary_stats',
    'boundary_metrics', 'has_pyedgeeval', 'default_edge_thresholds'
]


def has_pyedgeeval() -> bool:
    """Whether ``pyEdgeEval``'s compiled matcher can be imported."""
    try:
        importlib.import_module('pyEdgeEval._lib')
    except Exception:  # ImportError or a broken build
        return False
    return True


def default_edge_thresholds(num: int = 99) -> np.ndarray:
    """``num`` evenly spaced thresholds in [0.01, 0.99]."""
    if num == 1:
        return np.array([0.5])
    return np.linspace(0.01, 0.99, num)


# ---------------------------------------------------------------------------
# Thinning (MATLAB ``bwmorph(bw, 'thin', Inf)``)
# ---------------------------------------------------------------------------


def _neighbours(img: np.ndarray):
    """x1..x8 of every pixel: E, NE, N, NW, W, SW, S, SE (row 0 = north)."""
    p = np.pad(img, 1)
    h, w = img.shape

    def sh(dr, dc):
        return p[1 + dr:h + 1 + dr, 1 + dc:w + 1 + dc]

    return (sh(0, 1), sh(-1, 1), sh(-1, 0), sh(-1, -1), sh(0, -1), sh(1, -1),
            sh(1, 0), sh(1, 1))


def binary_thin(img: np.ndarray, max_iter: Optional[int] = None) -> np.ndarray:
    """Thin a binary map to one-pixel wide curves.

    The two-subiteration algorithm of Lam, Lee and Suen (1992) that
    MATLAB's ``bwmorph(bw, 'thin', Inf)`` documents (seism uses it): a
    pixel is removed when (G1) its crossing number ``X_H`` is 1, (G2)
    ``2 <= min(n1, n2) <= 3`` and (G3) ``(x2 | x3 | ~x8) & x1 == 0`` in the
    first subiteration, (G3') ``(x6 | x7 | ~x4) & x5 == 0`` in the second.

    Its output equals ``skimage.morphology.thin`` (same algorithm; checked
    on random and structured maps by ``tests/test_evaluation/
    test_boundary.py``), which is 3-4x slower on 512x512 boundary maps
    (it correlates the whole image every subiteration; measured with
    ``tools/analysis_tools/benchmark_metric.py``), so the vectorised numpy
    form is kept and scikit-image is its test oracle.

    Args:
        img (np.ndarray): (H, W) bool.
        max_iter (int, optional): Iteration cap (default: until stable);
            ``max_iter <= 0`` returns the map unchanged.

    Returns:
        np.ndarray: (H, W) bool thinned map.
    """
    out = np.asarray(img, dtype=bool).copy()
    if out.size == 0:
        return out
    it = 0
    while max_iter is None or it < max_iter:
        it += 1
        changed = False
        for sub in (0, 1):
            x = _neighbours(out)
            x1, x2, x3, x4, x5, x6, x7, x8 = x
            xs = x + (x1, )
            xh = sum(((~xs[2 * i]) & (xs[2 * i + 1] | xs[2 * i + 2])).astype(
                np.uint8) for i in range(4))
            n1 = sum((xs[2 * k] | xs[2 * k + 1]).astype(np.uint8)
                     for k in range(4))
            n2 = sum((xs[2 * k + 1] | xs[2 * k + 2]).astype(np.uint8)
                     for k in range(4))
            m = np.minimum(n1, n2)
            g12 = (xh == 1) & (m >= 2) & (m <= 3)
            if sub == 0:
                g3 = ~((x2 | x3 | ~x8) & x1)
            else:
                g3 = ~((x6 | x7 | ~x4) & x5)
            delete = out & g12 & g3
            if delete.any():
                out &= ~delete
                changed = True
        if not changed:
            break
    return out


# ---------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------


def _candidate_pairs(pr, pc, gt_id, radius):
    """(pred index, gt index) of the pairs within radius, sorted by both."""
    h, w = gt_id.shape
    r = int(np.floor(radius))
    rows, cols = [], []
    for dr in range(-r, r + 1):
        for dc in range(-r, r + 1):
            if dr * dr + dc * dc > radius * radius:
                continue
            qr, qc = pr + dr, pc + dc
            ok = (qr >= 0) & (qr < h) & (qc >= 0) & (qc < w)
            ids = np.full(pr.shape, -1, dtype=np.int64)
            ids[ok] = gt_id[qr[ok], qc[ok]]
            hit = np.nonzero(ids >= 0)[0]
            rows.append(hit)
            cols.append(ids[hit])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    # every (pred, offset) gives one gt pixel: the pairs are unique
    order = np.lexsort((cols, rows))
    return rows[order], cols[order]


def _max_matching(n_pred: int, n_gt: int, rows: np.ndarray,
                  cols: np.ndarray) -> np.ndarray:
    """Maximum-cardinality bipartite matching by maximum flow.

    Unit-capacity network source -> pred -> gt -> sink whose middle edges
    are the candidate pairs (``rows``, ``cols``, sorted, unique), solved by
    ``scipy.sparse.csgraph.maximum_flow(method='dinic')``; the saturated
    pred -> gt edges are the matching.

    Returns:
        np.ndarray: (n_pred,) matched gt index or -1.
    """
    # nodes: 0 source, 1..n_pred pred, then n_gt gt, then the sink (CSR
    # rows in that order; every pair is stored once, as maximum_flow needs)
    sink = n_pred + n_gt + 1
    n_edges = n_pred + rows.size
    indptr = np.concatenate([
        [0, n_pred], n_pred + np.cumsum(np.bincount(rows, minlength=n_pred)),
        n_edges + np.arange(1, n_gt + 1), [n_edges + n_gt]
    ]).astype(np.int32)
    indices = np.concatenate(
        [1 + np.arange(n_pred), 1 + n_pred + cols,
         np.full(n_gt, sink)]).astype(np.int32)
    net = csr_array((np.ones(indices.size, dtype=np.int32), indices, indptr),
                    shape=(sink + 1, sink + 1))
    flow = maximum_flow(net, 0, sink, method='dinic').flow
    used = flow[1:n_pred + 1, n_pred + 1:sink].tocoo()
    pos = used.data > 0
    match = np.full(n_pred, -1, dtype=np.int64)
    match[used.row[pos]] = used.col[pos]
    return match


def _match_numpy(pred: np.ndarray, gt: np.ndarray,
                 radius: float) -> Tuple[np.ndarray, np.ndarray]:
    pr, pc = np.nonzero(pred)
    gr, gc = np.nonzero(gt)
    m1 = np.zeros(pred.shape, dtype=bool)
    m2 = np.zeros(gt.shape, dtype=bool)
    if pr.size == 0 or gr.size == 0:
        return m1, m2
    gt_id = -np.ones(gt.shape, dtype=np.int64)
    gt_id[gr, gc] = np.arange(gr.size)
    rows, cols = _candidate_pairs(pr, pc, gt_id, radius)
    if rows.size == 0:
        return m1, m2
    match = _max_matching(pr.size, gr.size, rows, cols)
    matched = match >= 0
    m1[pr[matched], pc[matched]] = True
    m2[gr[match[matched]], gc[match[matched]]] = True
    return m1, m2


def match_boundaries(pred: np.ndarray,
                     gt: np.ndarray,
                     max_dist: float = 0.0075,
                     backend: str = 'numpy') -> Tuple[np.ndarray, np.ndarray]:
    """One-to-one match of boundary pixels within a distance tolerance.

    Args:
        pred (np.ndarray): (H, W) bool predicted boundary pixels.
        gt (np.ndarray): (H, W) bool ground-truth boundary pixels.
        max_dist (float): Tolerance as a fraction of the image diagonal.
        backend (str): ``'numpy'`` (default), ``'pyedgeeval'`` or
            ``'auto'`` (pyedgeeval when installed).

    Returns:
        tuple: ``(matched_pred, matched_gt)``, (H, W) bool maps.
    """
    pred = np.asarray(pred, dtype=bool)
    gt = np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f'match_boundaries: pred {pred.shape} and gt '
                         f'{gt.shape} differ in shape')
    if backend == 'auto':
        backend = 'pyedgeeval' if has_pyedgeeval() else 'numpy'
    if not pred.any() or not gt.any():
        z = np.zeros(pred.shape, dtype=bool)
        return z, z.copy()
    if backend == 'pyedgeeval':
        from pyEdgeEval._lib import correspond_pixels
        m1, m2, _, _ = correspond_pixels(pred, gt, max_dist=max_dist)
        return m1 > 0, m2 > 0
    if backend == 'numpy':
        radius = max_dist * float(np.hypot(*pred.shape))
        return _match_numpy(pred, gt, radius)
    raise ValueError(f"unknown boundary matching backend {backend!r}; use "
                     "'pyedgeeval', 'numpy' or 'auto'")


def boundary_nms(prob: np.ndarray) -> np.ndarray:
    """Structured-edge NMS of seism's IO function (needs ``pyEdgeEval``).

    Triangle blur (radius 4) for orientation, then ``edgesNms`` with
    ``r=1, s=5, m=1.01``.
    """
    try:
        from pyEdgeEval.preprocess import fast_nms
    except Exception as e:  # pragma: no cover - depends on the install
        raise ImportError('boundary NMS (edge_nms=True) needs the '
                          '`pyedgeeval` package (and opencv): '
                          f'pip install pyedgeeval ({e})') from e
    return fast_nms(np.asarray(prob, dtype=np.float64), r=1, s=5, m=1.01)


# ---------------------------------------------------------------------------
# Statistics and metrics
# ---------------------------------------------------------------------------


def boundary_stats(prob: np.ndarray,
                   gt: np.ndarray,
                   thresholds: Sequence[float],
                   max_dist: float = 0.0075,
                   ignore_index: int = 255,
                   nms: bool = False,
                   thin_gt: bool = True,
                   backend: str = 'numpy') -> Dict[str, np.ndarray]:
    """Per-threshold BSDS counts of one boundary map.

    Pixels whose GT equals ``ignore_index`` are removed from both the
    prediction and the GT (they are padding in the reference data).

    Args:
        prob (np.ndarray): (H, W) boundary probability in [0, 1].
        gt (np.ndarray): (H, W) 0 / 1 boundary labels.
        thresholds (sequence of float): Thresholds; predicted boundary =
            ``prob > theta`` (seism's convention).
        max_dist (float): Matching tolerance, fraction of the diagonal
            (0.0075 PASCAL-Context, 0.011 NYUD in seism).
        ignore_index (int): GT label of unlabelled pixels.
        nms (bool): Apply seism's NMS to ``prob`` first.
        thin_gt (bool): Thin the GT boundary first (seism thins its GT).
        backend (str): Matching backend, see :func:`match_boundaries`.

    Returns:
        dict: ``cnt_r``, ``sum_r``, ``cnt_p``, ``sum_p``: int64 (K,).
    """
    prob = np.asarray(prob, dtype=np.float64)
    gt = np.asarray(gt)
    if prob.shape != gt.shape:
        raise ValueError(f'boundary_stats: prob {prob.shape} and gt '
                         f'{gt.shape} differ in shape')
    valid = gt != ignore_index
    g = (gt == 1) & valid
    if thin_gt:
        g = binary_thin(g)
    if nms:
        prob = boundary_nms(prob)
    prob = np.where(valid, prob, 0.0)
    k = len(thresholds)
    out = {key: np.zeros(k, dtype=np.int64)
           for key in ('cnt_r', 'sum_r', 'cnt_p', 'sum_p')}
    n_gt = int(g.sum())
    for i, theta in enumerate(thresholds):
        p = binary_thin(prob > theta)
        m1, m2 = match_boundaries(p, g, max_dist, backend)
        out['cnt_r'][i] = m2.sum()
        out['sum_r'][i] = n_gt
        out['cnt_p'][i] = m1.sum()
        out['sum_p'][i] = p.sum()
    return out


def _f(p, r):
    with np.errstate(invalid='ignore', divide='ignore'):
        f = 2 * p * r / (p + r)
    return np.nan_to_num(f, nan=0.0)


def _ratio(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return a / np.where(b > 0, b, 1)


def boundary_metrics(per_image: Dict[str, np.ndarray]) -> Dict[str, float]:
    """ODS-F, OIS-F and AP from per-image counts.

    Args:
        per_image (dict): ``cnt_r``, ``sum_r``, ``cnt_p``, ``sum_p`` as
            int arrays (N, K) stacked over images.

    ODS: ``R = sum cnt_r / sum sum_r``, ``P = sum cnt_p / sum sum_p`` per
    threshold over the whole set, ``F = 2PR / (P + R)``, odsF = max over
    thresholds (no interpolation between thresholds). OIS: every image uses
    its own best threshold and the chosen counts are summed. AP: area under
    the set-level precision-recall curve (thresholds sorted by recall,
    trapezoids, precision extended flat to recall 0).

    Returns:
        dict: ``odsF``, ``oisF``, ``AP`` x 100 and ``ods_thr_idx``.
    """
    cnt_r, sum_r = per_image['cnt_r'], per_image['sum_r']
    cnt_p, sum_p = per_image['cnt_p'], per_image['sum_p']
    if cnt_r.size == 0:
        return {}
    r = _ratio(cnt_r.sum(0), sum_r.sum(0))
    p = _ratio(cnt_p.sum(0), sum_p.sum(0))
    # seism: precision of an empty prediction set is 1
    p = np.where(sum_p.sum(0) > 0, p, 1.0)
    f = _f(p, r)
    best = int(f.argmax())
    # OIS
    ri = _ratio(cnt_r, sum_r)
    pi = np.where(sum_p > 0, _ratio(cnt_p, sum_p), 1.0)
    fi = _f(pi, ri)
    bi = fi.argmax(1)
    rows = np.arange(cnt_r.shape[0])
    r_o = _ratio(cnt_r[rows, bi].sum(), sum_r[rows, bi].sum())
    p_o = _ratio(cnt_p[rows, bi].sum(), sum_p[rows, bi].sum())
    p_o = p_o if sum_p[rows, bi].sum() > 0 else 1.0
    ois = float(_f(np.float64(p_o), np.float64(r_o)))
    # AP
    order = np.argsort(r, kind='stable')
    rs = np.concatenate([[0.0], r[order]])
    ps = np.concatenate([[p[order][0]], p[order]])
    ap = float(np.sum((rs[1:] - rs[:-1]) * (ps[1:] + ps[:-1]) / 2))
    return dict(odsF=float(f[best] * 100), oisF=ois * 100, AP=ap * 100,
                ods_thr_idx=best)
