"""Offline evaluation metrics: pure functions over numpy arrays, no Django, no torch.

Shared by training (registry metrics), `evaluate`, the benchmarks and the simulator, so a
figure means the same thing everywhere."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

_EPS = 1e-7
ArrayLike = Sequence[float] | np.ndarray


def _as_arrays(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    s = np.asarray(y_score, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} values, y_score {s.size}")
    return y, s


def _average_ranks(s: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank (as the Mann-Whitney statistic needs)."""
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    # boundaries of runs of equal scores
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], s.size]
    mean_rank = (starts + ends + 1) / 2.0  # mean of (start+1 .. end)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def auc(y_true: Sequence[float] | np.ndarray, y_score: Sequence[float] | np.ndarray) -> float:
    """ROC AUC (probability a random positive outranks a random negative; ties count ½).
    NaN when only one class is present."""
    y, s = _as_arrays(y_true, y_score)
    pos = y > 0.5
    n_pos = int(pos.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(s)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def gauc(
    y_true: Sequence[float] | np.ndarray,
    y_score: Sequence[float] | np.ndarray,
    groups: Sequence[Hashable] | np.ndarray,
) -> float:
    """Group AUC: per-group AUC weighted by the group's number of examples, over groups
    that hold both classes (the usual per-user AUC of the CTR literature). NaN if none."""
    y, s = _as_arrays(y_true, y_score)
    g = np.asarray(groups)
    if g.shape[0] != y.size:
        raise ValueError("groups must have one entry per example")
    _, inverse = np.unique(g, return_inverse=True)
    order = np.argsort(inverse, kind="mergesort")
    bounds = np.flatnonzero(np.r_[True, inverse[order][1:] != inverse[order][:-1], True])
    total = 0.0
    weight = 0
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        idx = order[a:b]
        yy = y[idx]
        if yy.min() == yy.max():
            continue
        total += auc(yy, s[idx]) * idx.size
        weight += idx.size
    return total / weight if weight else float("nan")


def logloss(y_true: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray) -> float:
    """Mean binary cross-entropy, probabilities clipped to [1e-7, 1 - 1e-7]."""
    y, q = _as_arrays(y_true, p)
    if y.size == 0:
        return float("nan")
    q = np.clip(q, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def calibration_error(y_true: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error: |mean(p) − mean(y)| per equal-count bin of p, weighted by
    bin size. Equal-count bins because CTRs crowd near zero, where equal-width bins are empty."""
    y, q = _as_arrays(y_true, p)
    if y.size == 0:
        return float("nan")
    order = np.argsort(q, kind="mergesort")
    err = 0.0
    for idx in np.array_split(order, min(n_bins, y.size)):
        if idx.size:
            err += abs(q[idx].mean() - y[idx].mean()) * idx.size
    return float(err / y.size)


def recall_at_k(relevant: Sequence[Hashable], ranked: Sequence[Hashable], k: int) -> float:
    """Share of the relevant items found in the top k of `ranked` (NaN without relevant items)."""
    rel = set(relevant)
    if not rel:
        return float("nan")
    return len(rel.intersection(ranked[:k])) / len(rel)


def ndcg_at_k(relevant: Sequence[Hashable], ranked: Sequence[Hashable], k: int) -> float:
    """NDCG@k with binary relevance (gain 1, discount 1/log2(rank + 1))."""
    rel = set(relevant)
    if not rel:
        return float("nan")
    dcg = sum(1.0 / np.log2(i + 2) for i, item in enumerate(ranked[:k]) if item in rel)
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(len(rel), k)))
    return float(dcg / ideal)


def mean_ignoring_nan(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else float("nan")
