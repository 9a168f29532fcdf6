"""ensemble(): one model, members as parallel paths, CXR-Net's feature-map averaging, weights never averaged."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import cxrzoo
from cxrzoo.training import ensemble

SHAPE = (12, 14, 50)  # the WST map of a 48×56 image: 49 scattering channels + the pooled lung mask


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _run(model, x):
    # eager calls: tracing a predict function per model would dominate these tests' time
    return np.asarray(model(x, training=False))


def _member(seed, **kwargs):
    keras.utils.set_random_seed(seed)
    model = cxrzoo.build_cxrnet_member(input_shape=SHAPE, filters=3, conv_blocks=1, **kwargs)
    # Larger final-block weights give logits far from 0, where the averaging rules differ visibly.
    for w in model.weights:
        if w.path.startswith("final_") and w.path.endswith("kernel"):
            w.assign(w.numpy() * 10.0)
    return model


@pytest.fixture(scope="module")
def members():
    return [_member(s) for s in (1, 2, 3)]


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, *SHAPE)).astype("float32")
    x[..., -1] = rng.random(SHAPE[:2]) > 0.3
    return x


def _masked_maps(models, x):
    maps = []
    for m in models:
        cut = keras.Model(m.input, m.get_layer("masked_map").output)
        maps.append(_run(cut, x))
    return np.stack(maps)


def test_feature_average_is_cxrnets_rule(members, features):
    model = ensemble(members, "feature_average")
    maps = _masked_maps(members, features)
    expected = _softmax(maps.mean(axis=0).mean(axis=(1, 2)))  # softmax(GAP(mean of the masked maps))
    np.testing.assert_allclose(_run(model, features), expected, atol=1e-5)
    # ... which is the softmax of the mean GAP logits, not the mean of the members' probabilities
    np.testing.assert_allclose(expected, _softmax(maps.mean(axis=(2, 3)).mean(axis=0)), atol=1e-6)
    mean_prob = np.mean([_run(m, features) for m in members], axis=0)
    assert np.abs(mean_prob - expected).max() > 1e-3
    assert [layer.name for layer in model.layers[-3:]] == ["feature_map", "gap", "predictions"]


def test_feature_average_matches_the_cxrnet_classifier_graph(members, features):
    """The same members inside build_cxrnet_classifier (the authors' ensemble graph) give the same output."""
    n = len(members)
    classifier = cxrzoo.build_cxrnet_classifier(members=n, input_shape=(48, 56, 1), filters=3, conv_blocks=1)
    for k, member in enumerate(members):
        source = keras.Model(member.input, member.get_layer("masked_map").output)
        classifier.get_layer(f"member{k}").set_weights(source.get_weights())
    front = keras.Model(classifier.inputs, classifier.get_layer("wst_features").output)
    joined = ensemble(members, "feature_average", front=front)
    rng = np.random.default_rng(1)
    image = rng.normal(size=(2, 48, 56, 1)).astype("float32")
    mask = (rng.random((2, 48, 56, 1)) > 0.4).astype("float32")
    np.testing.assert_allclose(_run(joined, [image, mask]), _run(classifier, [image, mask]), atol=1e-5)


def test_logit_and_probability_average(members, features):
    maps = _masked_maps(members, features)
    logits = _run(ensemble(members, "logit_average"), features)
    # for a GAP head, averaging logits equals averaging the maps before GAP
    np.testing.assert_allclose(logits, _softmax(maps.mean(axis=(2, 3)).mean(axis=0)), atol=1e-5)
    probs = _run(ensemble(members, "probability_average"), features)
    np.testing.assert_allclose(probs, np.mean([_run(m, features) for m in members], axis=0), atol=1e-6)


def test_logit_average_of_dense_softmax_heads():
    rng = np.random.default_rng(2)
    models = []
    for seed in (4, 5):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((6,))
        hidden = keras.layers.Dense(5, activation="relu")(inputs)
        models.append(keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="out")(hidden)))
    x = rng.normal(size=(7, 6)).astype("float32")

    def logits(m):
        hidden = _run(keras.Model(m.input, m.layers[-2].output), x)
        kernel, bias = m.get_layer("out").get_weights()
        return hidden @ kernel + bias

    expected = _softmax(np.mean([logits(m) for m in models], axis=0))
    np.testing.assert_allclose(_run(ensemble(models, "logit_average"), x), expected, atol=1e-5)
    with pytest.raises(ValueError, match="weight-free head"):
        ensemble(models, "feature_average", feature_layer=models[0].layers[1].name)


def test_weights_are_kept_per_member_never_averaged(members, tmp_path, features):
    model = ensemble(members, "feature_average")
    assert model.count_params() == sum(m.count_params() for m in members)
    for k, member in enumerate(members):
        path = model.get_layer(f"member{k}")
        for mine, theirs in zip(path.weights, member.weights):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    # frozen inside the ensemble (CXR-Net froze its members), the given models stay trainable
    assert model.trainable_weights == [] and all(m.trainable_weights for m in members)
    model.save(tmp_path / "ensemble.keras")
    reloaded = cxrzoo.models.load_model(tmp_path / "ensemble.keras")
    np.testing.assert_allclose(_run(reloaded, features), _run(model, features), atol=1e-6)


def test_ensemble_rejects_bad_members(members):
    with pytest.raises(ValueError, match="at least two"):
        ensemble(members[:1])
    with pytest.raises(ValueError, match="mode"):
        ensemble(members, "weight_average")
    other = cxrzoo.build_cxrnet_member(input_shape=(12, 14, 6), filters=3, conv_blocks=1)
    with pytest.raises(ValueError, match="takes inputs"):
        ensemble([members[0], other])
    with pytest.raises(ValueError, match="logits already"):
        ensemble([_member(7, classifier_activation=None), _member(8, classifier_activation=None)], "logit_average")
