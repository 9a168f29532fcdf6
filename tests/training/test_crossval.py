"""cross_validate: patient-disjoint folds by construction, out-of-fold predictions, fresh model per fold."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cxrzoo.training import cross_validate


def _builder():
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))


@pytest.fixture(scope="module")
def cv():
    rng = np.random.default_rng(0)
    # 24 patients with 1-4 images each, ids shuffled so that neighbouring cases belong to different patients
    counts = rng.integers(1, 5, 24)
    groups = rng.permutation(np.repeat(np.arange(24) * 7 + 100, counts))
    patient_label = {g: int(g % 2) for g in np.unique(groups)}
    y = np.array([patient_label[g] for g in groups])
    x = (rng.normal(size=(len(y), 3)) + y[:, None]).astype("float32")
    result = cross_validate(
        _builder,
        (x, y),
        n_splits=4,
        groups=groups,
        recipe="cxrnet_module2",
        epochs=1,
        batch_size=16,
        augment=None,
        seed=3,
    )
    return result, x, y, groups


def test_folds_are_patient_disjoint_and_cover_every_case_once(cv):
    result, _, y, groups = cv
    assert len(result.folds) == len(result.models) == len(result.histories) == 4
    seen = np.zeros(len(y), int)
    for train, val in result.folds:
        assert not set(groups[train]) & set(groups[val])
        assert np.union1d(train, val).size == len(y) and np.intersect1d(train, val).size == 0
        seen[val] += 1
    assert (seen == 1).all()
    np.testing.assert_array_equal(result.fold_of_sample[result.folds[2][1]], 2)


def test_out_of_fold_predictions_come_from_the_model_that_never_saw_the_case(cv):
    result, x, y, _ = cv
    assert result.oof_predictions.shape == (len(y), 2)
    for k, (_, val) in enumerate(result.folds):
        np.testing.assert_allclose(result.oof_predictions[val], np.asarray(result.models[k](x[val])), atol=1e-6)
    # each fold starts from its own initialization
    first = [m.layers[-1].get_weights()[0] for m in result.models]
    assert not np.allclose(first[0], first[1])


def test_cross_validate_rejects_a_model_instead_of_a_builder():
    with pytest.raises(TypeError, match="zero-argument callable"):
        cross_validate(_builder(), (np.zeros((8, 3)), np.zeros(8)), n_splits=2)
    with pytest.raises(ValueError, match="one entry per case"):
        cross_validate(_builder, (np.zeros((8, 3)), np.zeros(7)), n_splits=2)
