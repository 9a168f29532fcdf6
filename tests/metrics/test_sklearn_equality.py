"""cxrzoo's classification metrics against scikit-learn's, on random data with many ties.

These tests were written against cxrzoo's own implementations before they were swapped for scikit-learn's calls
(docs/dependencies.md): they pin the conventions cxrzoo documents — ROC thresholds decreasing, the first ``inf``,
every distinct score kept, a case positive when ``score >= threshold``; AUC counting a tie as 1/2; F1 ``nan`` when
there is nothing to count — so that the swap cannot change a number.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.utils.class_weight import compute_class_weight

from cxrzoo import metrics as M
from cxrzoo.data import class_weights

SEEDS = range(12)


def _scores(seed: int, n: int = 60, levels: int = 7):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    if y.all() or not y.any():
        y[0] = 1 - y[0]
    s = np.round(rng.uniform(0, 1, n) * levels) / levels + 0.2 * y  # few distinct values: many ties
    return y, s


@pytest.mark.parametrize("seed", SEEDS)
def test_roc_curve_is_sklearns_without_dropped_points(seed):
    y, s = _scores(seed)
    fpr, tpr, thr = M.roc_curve(y, s)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_array_equal(thr, sk_thr)
    np.testing.assert_allclose(fpr, sk_fpr, rtol=0, atol=1e-15)
    np.testing.assert_allclose(tpr, sk_tpr, rtol=0, atol=1e-15)
    assert thr[0] == np.inf and np.all(np.diff(thr) < 0)


@pytest.mark.parametrize("seed", SEEDS)
def test_roc_auc_is_sklearns_with_ties_as_half(seed):
    y, s = _scores(seed)
    assert M.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert M.roc_auc(y, np.zeros_like(s)) == pytest.approx(0.5) == skm.roc_auc_score(y, np.zeros_like(s))


def test_roc_positive_label_other_than_one():
    y, s = _scores(3)
    labels = np.where(y == 1, 2, 0)
    assert M.roc_auc(labels, s, positive=2) == pytest.approx(skm.roc_auc_score(labels == 2, s), abs=1e-12)
    np.testing.assert_allclose(M.roc_curve(labels, s, positive=2)[1], skm.roc_curve(labels, s, pos_label=2)[1])


@pytest.mark.parametrize("seed", SEEDS)
def test_confusion_matrix_and_f1_are_sklearns(seed):
    rng = np.random.default_rng(seed)
    t, p = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    np.testing.assert_array_equal(M.confusion_matrix(t, p), skm.confusion_matrix(t, p, labels=range(4)))
    np.testing.assert_array_equal(M.confusion_matrix(t, p, n_classes=6), skm.confusion_matrix(t, p, labels=range(6)))
    for positive in range(4):
        expected = skm.f1_score(t, p, labels=[positive], average=None, zero_division=np.nan)[0]
        assert M.f1_score(t, p, positive=positive) == pytest.approx(expected, abs=1e-15)


def test_f1_undefined_is_nan_as_sklearns_zero_division_nan():
    t, p = np.zeros(5, int), np.zeros(5, int)
    assert np.isnan(M.f1_score(t, p, positive=1))
    assert np.isnan(skm.f1_score(t, p, pos_label=1, zero_division=np.nan))


@pytest.mark.parametrize("seed", SEEDS)
def test_class_weights_are_sklearns_balanced(seed):
    y = np.random.default_rng(seed).integers(0, 5, 40)
    y[y == 3] = 4  # a class that never occurs gets no entry
    present = np.unique(y)
    expected = compute_class_weight("balanced", classes=present, y=y)
    got = class_weights(y)
    assert sorted(got) == present.tolist()
    np.testing.assert_allclose([got[c] for c in present], expected, rtol=1e-15)
