"""ranking.metrics: hand-computed cases and agreement with scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import log_loss, ndcg_score, roc_auc_score

from ranking import metrics


def test_auc_hand_computed_with_ties() -> None:
    # given 2 positives and 2 negatives; pairs (pos>neg): (0.8>0.1), (0.8>0.4), (0.4=0.4 → ½), (0.4>0.1)
    y = [1, 0, 1, 0]
    s = [0.8, 0.4, 0.4, 0.1]
    # then AUC = 3.5 / 4
    assert metrics.auc(y, s) == pytest.approx(0.875)


def test_auc_single_class_is_nan() -> None:
    assert math.isnan(metrics.auc([1, 1], [0.2, 0.3]))


def test_auc_matches_sklearn_on_random_data() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    s = np.round(rng.random(5000) + 0.3 * y, 2)  # rounded: many ties
    assert metrics.auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_gauc_weights_groups_by_size_and_skips_single_class_groups() -> None:
    # group a: perfect (auc 1, 4 examples); group b: inverted (auc 0, 2 examples); c: one class
    y = [1, 0, 1, 0, 1, 0, 1]
    s = [0.9, 0.1, 0.8, 0.2, 0.1, 0.9, 0.5]
    g = ["a", "a", "a", "a", "b", "b", "c"]
    assert metrics.gauc(y, s, g) == pytest.approx((1.0 * 4 + 0.0 * 2) / 6)


def test_logloss_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 1000)
    p = rng.random(1000) * 0.98 + 0.01
    assert metrics.logloss(y, p) == pytest.approx(log_loss(y, p), rel=1e-9)


def test_logloss_hand_computed() -> None:
    assert metrics.logloss([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))


def test_calibration_error_zero_when_bins_match_and_exact_otherwise() -> None:
    # given two bins of two: p=0.25 with 1 of 4... use exact bins: [0.0, 0.0 | 1.0, 1.0]
    assert metrics.calibration_error([0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0], n_bins=2) == pytest.approx(0.0)
    # when every prediction is 0.5 and half are clicks in each bin → 0; all clicks → 0.5
    assert metrics.calibration_error([1, 1, 1, 1], [0.5, 0.5, 0.5, 0.5], n_bins=2) == pytest.approx(0.5)


def test_recall_and_ndcg_hand_computed() -> None:
    ranked = ["a", "b", "c", "d"]
    assert metrics.recall_at_k(["b", "d", "z"], ranked, 2) == pytest.approx(1 / 3)
    # relevant at rank 2 only: dcg = 1/log2(3); ideal (1 relevant) = 1
    assert metrics.ndcg_at_k(["b"], ranked, 3) == pytest.approx(1 / math.log2(3))
    assert math.isnan(metrics.recall_at_k([], ranked, 2))


def test_ndcg_matches_sklearn_binary() -> None:
    items = list(range(20))
    rng = np.random.default_rng(2)
    scores = rng.random(20)
    relevant = [1, 5, 7, 12]
    ranked = [items[i] for i in np.argsort(-scores)]
    truth = np.isin(items, relevant).astype(float)
    assert metrics.ndcg_at_k(relevant, ranked, 10) == pytest.approx(ndcg_score([truth], [scores], k=10))
