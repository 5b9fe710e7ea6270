# Copyright (c) diffmtl contributors. All rights reserved.
"""Per-image sufficient statistics of the pixel-wise tasks and their maths.

Every ``*_stats`` function turns one image's prediction and ground truth into
a small dict of counts / sums (numpy arrays of fixed length). Summing these
dicts over any partition of the data set and passing the sum to the matching
``*_metrics`` function gives exactly the metrics of the whole set, so the
numbers do not depend on how images are split over processes.

Conventions (see ``docs/en/metrics.md``): all maps are 2-D numpy arrays
(H, W) except normals (3, H, W); all metrics are pooled over the pixels of
the whole set (not averaged per image).
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    'seg_stats', 'seg_metrics', 'SAL_THRESHOLDS', 'sal_stats', 'sal_metrics',
    'normals_stats', 'normals_metrics', 'depth_stats', 'depth_metrics',
    'sum_stats'
]

Stats = Dict[str, np.ndarray]

# ---------------------------------------------------------------------------
# Segmentation (semseg, human_parts)
# ---------------------------------------------------------------------------


def seg_stats(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> Stats:
    """Intersection / prediction / label pixel counts of one image.

    Valid pixels are those with ``0 <= gt < num_classes`` (this excludes the
    ignore label 255 and any negative label, as the reference evaluation).

    Args:
        pred (np.ndarray): (H, W) predicted class ids.
        gt (np.ndarray): (H, W) ground-truth class ids.
        num_classes (int): Number of classes ``n``.

    Returns:
        dict: ``intersect``, ``pred``, ``label``: int64 (n,) pixel counts
        and ``n_valid``: int64 () valid pixel count.
    """
    gt = np.asarray(gt).astype(np.int64, copy=False)
    pred = np.asarray(pred).astype(np.int64, copy=False)
    valid = (gt >= 0) & (gt < num_classes)
    g = gt[valid]
    p = pred[valid]
    hit = g[p == g]
    # predictions outside [0, n) can never be right; they count in no
    # class's predicted area (they only lower recall).
    p_in = p[(p >= 0) & (p < num_classes)]
    return dict(
        intersect=np.bincount(hit, minlength=num_classes).astype(np.int64),
        pred=np.bincount(p_in, minlength=num_classes).astype(np.int64),
        label=np.bincount(g, minlength=num_classes).astype(np.int64),
        n_valid=np.asarray(g.size, dtype=np.int64))


def seg_metrics(stats: Stats) -> Dict[str, np.ndarray]:
    """mIoU and friends from summed :func:`seg_stats`.

    ``IoU_c = I_c / max(P_c + L_c - I_c, 1e-8)``: a class absent from both
    ground truth and prediction has IoU 0 and still counts in the mean, as
    in the paper's evaluation.

    Returns:
        dict: ``IoU`` (n,) and ``Acc`` (n,) in [0, 1] per class (``Acc`` is
        NaN for classes absent from the ground truth), ``mIoU``, ``mAcc``
        (over classes present in the ground truth) and ``aAcc`` in [0, 100].
    """
    inter = stats['intersect'].astype(np.float64)
    union = stats['pred'] + stats['label'] - stats['intersect']
    iou = inter / np.maximum(union.astype(np.float64), 1e-8)
    label = stats['label'].astype(np.float64)
    with np.errstate(invalid='ignore', divide='ignore'):
        acc = np.where(label > 0, inter / np.maximum(label, 1), np.nan)
    n_valid = float(stats['n_valid'])
    present = label > 0
    return dict(
        IoU=iou,
        Acc=acc,
        mIoU=float(iou.mean() * 100) if iou.size else 0.0,
        mAcc=float(np.nanmean(acc[present]) * 100) if present.any() else 0.0,
        aAcc=float(inter.sum() / n_valid * 100) if n_valid > 0 else 0.0)


# ---------------------------------------------------------------------------
# Saliency
# ---------------------------------------------------------------------------

#: The reference thresholds 0.05:0.05:0.95 (19 values).
SAL_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def sal_stats(prob: np.ndarray,
              gt: np.ndarray,
              thresholds: Sequence[float] = SAL_THRESHOLDS,
              ignore_index: int = 255) -> Stats:
    """Per-threshold true / predicted positives of one saliency map.

    Two variants are counted at once:

    * ``paper``: the reference quirk, positive if ``sigmoid(prob) >= thr``
      (the official meter applies a sigmoid to an already normalised
      probability, so effectively every pixel is positive for thr <= 0.5
      and none for thr >= 0.75);
    * ``corrected``: positive if ``prob >= thr``.

    Args:
        prob (np.ndarray): (H, W) probability of the salient class.
        gt (np.ndarray): (H, W) 0 / 1 labels, ``ignore_index`` = unlabelled.
        thresholds (sequence of float): Thresholds ``K``.
        ignore_index (int): Label of unlabelled pixels.

    Returns:
        dict: ``tp_paper``, ``pp_paper``, ``tp_corrected``,
        ``pp_corrected``: int64 (K,); ``ap``: int64 () positives in the GT;
        ``n_valid``: int64 ().
    """
    gt = np.asarray(gt)
    valid = gt != ignore_index
    p = np.asarray(prob, dtype=np.float64)[valid]
    g = gt[valid] > 0
    thr = np.asarray(thresholds, dtype=np.float64)[:, None]
    out = dict(ap=np.asarray(g.sum(), dtype=np.int64),
               n_valid=np.asarray(g.size, dtype=np.int64))
    for name, score in (('paper', _sigmoid(p)), ('corrected', p)):
        pos = score[None, :] >= thr  # (K, N)
        out[f'tp_{name}'] = (pos & g[None, :]).sum(1).astype(np.int64)
        out[f'pp_{name}'] = pos.sum(1).astype(np.int64)
    return out


def sal_metrics(stats: Stats, beta2: float = 0.3) -> Dict[str, float]:
    """maxF of both variants from summed :func:`sal_stats`.

    ``P = TP / PP``, ``R = TP / AP``,
    ``F = (1 + beta2) P R / (beta2 P + R)`` per threshold with NaN -> 0,
    maxF = max over thresholds x 100.

    Returns:
        dict: ``maxF`` (paper-compatible), ``maxF_corrected``, and the
        arg-max thresholds' indices ``maxF_idx`` / ``maxF_corrected_idx``.
    """
    out = {}
    ap = float(stats['ap'])
    for name, key in (('paper', 'maxF'), ('corrected', 'maxF_corrected')):
        tp = stats[f'tp_{name}'].astype(np.float64)
        pp = stats[f'pp_{name}'].astype(np.float64)
        with np.errstate(invalid='ignore', divide='ignore'):
            prec = tp / pp
            rec = tp / ap
            f = (1 + beta2) * prec * rec / (beta2 * prec + rec)
        f = np.nan_to_num(f, nan=0.0, posinf=0.0, neginf=0.0)
        out[key] = float(f.max() * 100) if f.size else 0.0
        out[f'{key}_idx'] = int(f.argmax()) if f.size else -1
    return out


# ---------------------------------------------------------------------------
# Surface normals
# ---------------------------------------------------------------------------


def normals_stats(pred: np.ndarray,
                  gt: np.ndarray,
                  bin_width: float = 0.05,
                  thresholds: Sequence[float] = (11.25, 22.5, 30.0)) -> Stats:
    """Angular-error sums and histogram of one normal map.

    Both maps are L2-normalised first; pixels whose GT is the zero vector
    (or not finite) are invalid. The angle is
    ``2 atan2(|n - g|, |n + g|)`` in degrees (equal to
    ``arccos(n . g)`` but accurate near 0 and 180 degrees). A zero
    prediction vector counts as a 90 degree error.

    Args:
        pred (np.ndarray): (3, H, W) predicted normals (any length).
        gt (np.ndarray): (3, H, W) ground-truth normals.
        bin_width (float): Histogram bin width in degrees (the median is
            read from this histogram and is exact to ``bin_width / 2``).
        thresholds (sequence of float): Angles ``a`` for the ``% < a``
            ratios (counted exactly, not from the histogram).

    Returns:
        dict: ``n`` (valid pixels), ``sum``, ``sum_sq`` (degrees, float64),
        ``below`` int64 (len(thresholds),) and the sparse histogram
        ``hist_idx`` (int32 bin ids) / ``hist_cnt`` (int64 counts).
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.ndim != 3 or pred.shape[0] != 3 or pred.shape != gt.shape:
        raise ValueError('normals_stats expects pred and gt of shape '
                         f'(3, H, W); got {pred.shape} and {gt.shape}')
    gnorm = np.sqrt((gt**2).sum(0))
    valid = np.isfinite(gnorm) & (gnorm > 0)
    g = gt[:, valid] / gnorm[valid]
    p = pred[:, valid]
    pnorm = np.sqrt((p**2).sum(0))
    p = np.where(pnorm > 0, p / np.where(pnorm > 0, pnorm, 1), 0.0)
    ang = np.degrees(2 * np.arctan2(
        np.sqrt(((p - g)**2).sum(0)), np.sqrt(((p + g)**2).sum(0))))
    # zero prediction: |p-g| = |p+g| = 1 -> 90 degrees, as arccos(0).
    nbins = int(np.ceil(180.0 / bin_width))
    bins = np.minimum((ang / bin_width).astype(np.int64), nbins - 1)
    hist = np.bincount(bins, minlength=nbins)
    idx = np.flatnonzero(hist)
    cnt = hist[idx]
    return dict(
        n=np.asarray(ang.size, dtype=np.int64),
        sum=np.asarray(ang.sum(), dtype=np.float64),
        sum_sq=np.asarray((ang**2).sum(), dtype=np.float64),
        below=np.array([(ang < t).sum() for t in thresholds], dtype=np.int64),
        hist_idx=idx.astype(np.int32),
        hist_cnt=cnt.astype(np.int64))


def _hist_median(hist: np.ndarray, bin_width: float) -> float:
    """Median of the values binned in ``hist`` (bin midpoints).

    Uses the two middle order statistics like ``np.median``; each is
    replaced by the midpoint of its bin, so the error is at most
    ``bin_width / 2``.
    """
    n = int(hist.sum())
    if n == 0:
        return float('nan')
    cum = np.cumsum(hist)
    lo = int(np.searchsorted(cum, (n - 1) // 2 + 1))
    hi = int(np.searchsorted(cum, n // 2 + 1))
    return float((lo + hi + 1) * bin_width / 2)


def normals_metrics(stats: Stats,
                    bin_width: float = 0.05,
                    thresholds: Sequence[float] = (11.25, 22.5, 30.0)
                    ) -> Dict[str, float]:
    """Angular-error metrics from summed :func:`normals_stats`.

    ``stats['hist']`` must hold the dense histogram (see
    :func:`sum_stats`).

    Returns:
        dict: ``mErr`` (mean), ``medianErr``, ``rmse`` in degrees and
        ``<t>`` (e.g. ``'11.25'``) = % of pixels with angle < t.
    """
    n = float(stats['n'])
    if n == 0:
        return {}
    out = dict(
        mErr=float(stats['sum'] / n),
        medianErr=_hist_median(stats['hist'], bin_width),
        rmse=float(np.sqrt(stats['sum_sq'] / n)))
    for t, c in zip(thresholds, stats['below']):
        out[f'{t:g}'] = float(c / n * 100)
    return out


# ---------------------------------------------------------------------------
# Depth
# ---------------------------------------------------------------------------


def depth_stats(pred: np.ndarray,
                gt: np.ndarray,
                depth_range: Optional[Tuple[float, float]] = None,
                min_pred: float = 1e-9) -> Stats:
    """Error sums of one depth map over its valid pixels.

    Valid pixels have a finite GT > 0 (and inside ``depth_range`` when
    given). Predictions ``<= 0`` are set to ``min_pred`` first, as the
    reference meter does (this only matters for the log and relative
    errors).

    Returns:
        dict: ``n`` and float64 sums ``abs`` |g-p|, ``sq`` (g-p)^2,
        ``abs_rel`` |g-p|/g, ``sq_rel`` (g-p)^2/g, ``log_sq``
        (ln g - ln p)^2.
    """
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f'depth_stats: pred {pred.shape} and gt {gt.shape} '
                         'differ in shape')
    valid = np.isfinite(gt) & (gt > 0)
    if depth_range is not None:
        valid &= (gt >= depth_range[0]) & (gt <= depth_range[1])
    g = gt[valid]
    p = pred[valid]
    p = np.where(np.isfinite(p) & (p > 0), p, min_pred)
    d = g - p
    return dict(
        n=np.asarray(g.size, dtype=np.int64),
        abs=np.asarray(np.abs(d).sum()),
        sq=np.asarray((d**2).sum()),
        abs_rel=np.asarray((np.abs(d) / g).sum()),
        sq_rel=np.asarray((d**2 / g).sum()),
        log_sq=np.asarray(((np.log(g) - np.log(p))**2).sum()))


def depth_metrics(stats: Stats) -> Dict[str, float]:
    """Pixel-pooled depth errors from summed :func:`depth_stats`.

    Returns:
        dict: ``absErr``, ``rmse``, ``absRel``, ``sqRel``, ``logRMSE``.
    """
    n = float(stats['n'])
    if n == 0:
        return {}
    return dict(
        absErr=float(stats['abs'] / n),
        rmse=float(np.sqrt(stats['sq'] / n)),
        absRel=float(stats['abs_rel'] / n),
        sqRel=float(stats['sq_rel'] / n),
        logRMSE=float(np.sqrt(stats['log_sq'] / n)))


# ---------------------------------------------------------------------------
# Summation
# ---------------------------------------------------------------------------


def sum_stats(records: Sequence[Stats],
              hist_bins: Optional[int] = None) -> Stats:
    """Sum per-image statistics key by key.

    Sparse histograms (``hist_idx`` / ``hist_cnt``) are accumulated into a
    dense ``hist`` of ``hist_bins`` bins. Keys listed in ``per_image``
    style (2-D stacking) are not handled here.

    Args:
        records (sequence of dict): Outputs of one ``*_stats`` function.
        hist_bins (int, optional): Dense histogram length.

    Returns:
        dict: Summed statistics (empty if ``records`` is empty).
    """
    out: Stats = {}
    hist = np.zeros(hist_bins, dtype=np.int64) if hist_bins else None
    for rec in records:
        for k, v in rec.items():
            if k in ('hist_idx', 'hist_cnt'):
                continue
            out[k] = out[k] + v if k in out else np.array(v, copy=True)
        if hist is not None and 'hist_idx' in rec:
            np.add.at(hist, rec['hist_idx'].astype(np.int64), rec['hist_cnt'])
    if hist is not None:
        out['hist'] = hist
    return out
