"""fold_batch_norm: an inference copy with BatchNormalization merged into the convolution in front of it."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import cxrzoo
from cxrzoo.layers.common import FoldedBatchNormalization
from cxrzoo.models.inference import fold_batch_norm


def _randomize_statistics(model, seed=0):
    # fresh BatchNormalization layers are identities; trained ones are not
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.5, beta.shape),
                               rng.normal(0, 0.5, mean.shape), rng.uniform(0.2, 3, var.shape)])


def _count(model, kind):
    return sum(isinstance(layer, kind) for layer in model.layers)


def test_folding_res_cr_net_keeps_its_outputs():
    keras.utils.set_random_seed(0)
    model = cxrzoo.build_res_cr_net(input_shape=(24, 28, 1), filters=4, conv_blocks=2, dropout=0.0)
    _randomize_statistics(model)
    before = [w.copy() for w in model.get_weights()]
    folded = fold_batch_norm(model)
    x = np.random.default_rng(1).random((3, 24, 28, 1)).astype("float32")
    np.testing.assert_allclose(folded(x, training=False), model(x, training=False), atol=2e-6)
    # every branch and shortcut normalization follows a convolution; the pre-activations follow an Add
    bns = _count(model, keras.layers.BatchNormalization)
    assert _count(folded, FoldedBatchNormalization) == bns - 2 and _count(folded, keras.layers.BatchNormalization) == 2
    assert [layer.name for layer in folded.layers] == [layer.name for layer in model.layers]
    for a, b in zip(before, model.get_weights()):  # the original is untouched
        np.testing.assert_array_equal(a, b)


def test_only_a_convolution_read_by_the_normalization_alone_is_folded():
    inputs = keras.Input((8, 8, 2))
    shared = keras.layers.Conv2D(3, 3, padding="same", name="shared")(inputs)  # also read by the Add
    activated = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="activated")(inputs)
    plain = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="depthwise")(inputs)
    out = keras.layers.Concatenate()([
        keras.layers.Add()([keras.layers.BatchNormalization(name="bn_shared")(shared), shared]),
        keras.layers.BatchNormalization(name="bn_activated")(activated),
        keras.layers.BatchNormalization(name="bn_depthwise")(plain)])
    model = keras.Model(inputs, out)
    _randomize_statistics(model, seed=3)
    folded = fold_batch_norm(model)
    assert isinstance(folded.get_layer("bn_depthwise"), FoldedBatchNormalization)
    assert isinstance(folded.get_layer("bn_shared"), keras.layers.BatchNormalization)
    assert isinstance(folded.get_layer("bn_activated"), keras.layers.BatchNormalization)
    x = np.random.default_rng(2).normal(size=(2, 8, 8, 2)).astype("float32")
    np.testing.assert_allclose(folded(x, training=False), model(x, training=False), atol=2e-6)


def test_a_folded_model_round_trips_through_keras_files(tmp_path):
    keras.utils.set_random_seed(1)
    model = cxrzoo.build_res_cr_net(input_shape=(16, 16, 1), filters=2, conv_blocks=1, dropout=0.0)
    _randomize_statistics(model, seed=4)
    folded = fold_batch_norm(model)
    folded.save(tmp_path / "folded.keras")
    again = cxrzoo.models.load_model(tmp_path / "folded.keras")
    x = np.random.default_rng(5).random((1, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(again(x, training=False), folded(x, training=False), atol=1e-7)


def test_folding_the_published_module1_keeps_its_masks(shared_weights, cxrnet_sample_image):
    model = cxrzoo.build_res_cr_net(weights="res_cr_net.v7_lungs")
    x = (np.asarray(cxrnet_sample_image, np.float32) / 255.0).reshape(1, 300, 340, 1)
    ours, theirs = fold_batch_norm(model)(x, training=False).numpy(), model(x, training=False).numpy()
    assert np.abs(ours - theirs).max() < 1e-5
    np.testing.assert_array_equal(ours[..., 0] > 0.5, theirs[..., 0] > 0.5)


def test_fold_batch_norm_refuses_what_is_not_a_model():
    with pytest.raises(TypeError, match="functional keras.Model"):
        fold_batch_norm(keras.layers.Dense(2))
