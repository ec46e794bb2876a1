"""Metrics: top-k accuracy, precision, recall, F1, MAE, AUC; checked against scikit-learn
where it is installed (the comparisons skip without it)."""

from __future__ import annotations

import numpy as np
import pytest

import golgi as G
from golgi.metrics import resolve_metrics


def scores(n=200, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes)) + 1.5 * np.eye(classes)[labels]
    return logits, labels


def binary(n=200, seed=1, ties=False):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    s = rng.normal(size=n) + labels
    if ties:
        s = np.round(s, 1)  # many tied scores
    return s, labels


def test_metrics_by_name_and_their_history_names():
    got = resolve_metrics(["acc", "top_k_accuracy", "top3_accuracy", "precision", "recall",
                           "f1", "mae", "auc"])
    assert list(got) == ["accuracy", "top5_accuracy", "top3_accuracy", "precision", "recall",
                         "f1", "mae", "auc"]
    with pytest.raises(ValueError, match="unknown metric 'top_accuracy'"):
        resolve_metrics(["top_accuracy"])


def test_hand_checked_values():
    s = np.array([[0.1, 0.5, 0.4], [0.3, 0.3, 0.4], [0.8, 0.1, 0.1]])
    labels = np.array([2, 0, 0])
    assert G.TopKAccuracy(1)(s, labels) == pytest.approx(1 / 3)
    assert G.TopKAccuracy(2)(s, labels) == 1.0  # a tie with the 2nd score counts
    # binary: predicted 1 for 0.9, 0.8, 0.7; truly 1 for rows 0 and 3
    p, y = np.array([0.9, 0.8, 0.2, 0.7]), np.array([1, 0, 0, 1])
    assert G.Precision()(p, y) == pytest.approx(2 / 3)
    assert G.Recall()(p, y) == 1.0
    assert G.F1()(p, y) == pytest.approx(0.8)
    assert G.Precision(threshold=0.75)(p, y) == pytest.approx(0.5)
    assert G.AUC(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert G.AUC(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5  # a tie counts half
    assert np.isnan(G.AUC(np.array([0.1, 0.2]), np.array([1, 1])))
    assert G.MAE(np.array([1.0, -1.0]), np.array([[0.0], [1.0]])) == 1.5
    with pytest.raises(ValueError, match="average='binary' needs binary"):
        G.Precision(average="binary")(*scores())
    with pytest.raises(ValueError, match="2 predictions but 3 targets"):
        G.MAE(np.zeros(2), np.zeros(3))


@pytest.fixture(scope="module")
def skm():
    return pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_accuracy_matches_sklearn(skm, k):
    s, labels = scores()
    want = skm.top_k_accuracy_score(labels, s, k=k, labels=range(4))
    assert G.TopKAccuracy(k)(s, labels) == pytest.approx(want, abs=1e-12)
    assert G.TopKAccuracy(k)(s, np.eye(4)[labels]) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_precision_recall_f1_match_sklearn_for_classes(skm, average):
    s, labels = scores(classes=5)
    pred = s.argmax(1)
    for ours, theirs in ((G.Precision, skm.precision_score), (G.Recall, skm.recall_score),
                         (G.F1, skm.f1_score)):
        want = theirs(labels, pred, average=average, zero_division=0)
        assert ours(average=average)(s, labels) == pytest.approx(want, abs=1e-12), ours


def test_precision_recall_f1_match_sklearn_for_binary_scores(skm):
    s, labels = binary()
    pred = (s > 0.5).astype(int)
    for ours, theirs in ((G.Precision, skm.precision_score), (G.Recall, skm.recall_score),
                         (G.F1, skm.f1_score)):
        want = theirs(labels, pred, zero_division=0)
        assert ours()(s, labels) == pytest.approx(want, abs=1e-12)
        assert ours()(s[:, None], labels[:, None].astype(float)) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
def test_auc_matches_sklearn(skm, ties):
    s, labels = binary(ties=ties)
    assert G.AUC(s, labels) == pytest.approx(skm.roc_auc_score(labels, s), abs=1e-12)
    logits, lab = scores()
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    want = skm.roc_auc_score(lab, probs, multi_class="ovr", average="macro")
    assert G.AUC(probs, lab) == pytest.approx(want, abs=1e-12)


def test_mae_matches_sklearn(skm):
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    assert G.MAE(a, b) == pytest.approx(skm.mean_absolute_error(b, a), abs=1e-12)
