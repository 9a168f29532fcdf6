"""patient_kfold (stratified, patient-disjoint, seeded) and class_weights ('balanced')."""

from __future__ import annotations

import numpy as np
import pytest

from cxrzoo.data import class_weights, patient_kfold


def _cohort(seed=0, patients=120):
    rng = np.random.default_rng(seed)
    labels, groups = [], []
    for p in range(patients):
        label = int(rng.random() < 0.3)  # 30% of patients are positive, with 1 to 6 images each
        k = int(rng.integers(1, 7))
        labels += [label] * k
        groups += [f"patient{p}"] * k
    return np.array(labels), np.array(groups)


@pytest.mark.parametrize("n_splits", [2, 5, 6])
def test_folds_are_patient_disjoint_complete_and_stratified(n_splits):
    labels, groups = _cohort()
    folds = patient_kfold(labels, groups, n_splits=n_splits, seed=3)
    assert len(folds) == n_splits
    seen = np.concatenate([val for _, val in folds])
    assert sorted(seen.tolist()) == list(range(labels.size))  # every image validated exactly once
    overall = labels.mean()
    for train, val in folds:
        assert set(groups[train]).isdisjoint(groups[val])  # no patient on both sides
        assert np.intersect1d(train, val).size == 0 and train.size + val.size == labels.size
        assert abs(labels[val].mean() - overall) < 0.06
        assert abs(val.size - labels.size / n_splits) < 0.15 * labels.size / n_splits


def test_folds_are_seeded():
    labels, groups = _cohort(1)
    a = patient_kfold(labels, groups, 5, seed=0)
    b = patient_kfold(labels, groups, 5, seed=0)
    c = patient_kfold(labels, groups, 5, seed=1)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    assert any(not np.array_equal(x[1], y[1]) for x, y in zip(a, c))


def test_without_groups_and_with_one_hot_labels():
    labels = np.eye(3)[np.repeat([0, 1, 2], [30, 20, 10])]
    folds = patient_kfold(labels, None, n_splits=5, seed=0)
    for _, val in folds:
        assert np.bincount(labels[val].argmax(1), minlength=3).tolist() == [6, 4, 2]


def test_kfold_errors():
    with pytest.raises(ValueError, match="cannot fill"):
        patient_kfold([0, 1, 0], ["a", "a", "b"], n_splits=3)
    with pytest.raises(ValueError, match="n_splits"):
        patient_kfold([0, 1], None, n_splits=1)
    with pytest.raises(ValueError, match="one entry per label"):
        patient_kfold([0, 1, 1], ["a", "b"], n_splits=2)


def test_class_weights_balanced():
    y = np.repeat([0, 1, 2], [3674, 3500, 1326])  # COVID-CXNet's 3-class training set
    weights = class_weights(y)
    assert [round(weights[c], 4) for c in range(3)] == [0.7712, 0.8095, 2.1368]
    assert class_weights(np.eye(2)[[0, 0, 0, 1]]) == {0: 4 / 6, 1: 2.0}
    assert class_weights([0, 0, 2, 2]) == {0: 1.0, 2: 1.0}  # an absent class gets no entry
    with pytest.raises(ValueError, match="integer"):
        class_weights([0.5, 1.0])
    with pytest.raises(ValueError, match="no labels"):
        class_weights([])
