"""Inference copies: fold_batch_norm (BatchNormalization merged into the convolution in front of it) and
polyphase_dilated (dilated convolutions run undilated on polyphase components)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import cxrzoo
from cxrzoo.layers.common import FoldedBatchNormalization, PolyphaseMerge, PolyphaseSplit
from cxrzoo.models.inference import fold_batch_norm, polyphase_dilated


def _randomize_statistics(model, seed=0):
    # fresh BatchNormalization layers are identities; trained ones are not
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 2, gamma.shape),
                    rng.normal(0, 0.5, beta.shape),
                    rng.normal(0, 0.5, mean.shape),
                    rng.uniform(0.2, 3, var.shape),
                ]
            )


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
    out = keras.layers.Concatenate()(
        [
            keras.layers.Add()([keras.layers.BatchNormalization(name="bn_shared")(shared), shared]),
            keras.layers.BatchNormalization(name="bn_activated")(activated),
            keras.layers.BatchNormalization(name="bn_depthwise")(plain),
        ]
    )
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


# ------------------------------------------------------------------------------------------ polyphase_dilated


def _layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


@pytest.mark.parametrize("size", [(25, 30), (23, 31)])
def test_polyphase_res_cr_net_keeps_its_outputs(size):
    keras.utils.set_random_seed(2)
    model = cxrzoo.build_res_cr_net(input_shape=(*size, 1), filters=4, conv_blocks=2, dropout=0.0)
    _randomize_statistics(model, seed=6)
    fast = polyphase_dilated(model)
    x = np.random.default_rng(3).random((2, *size, 1)).astype("float32")
    np.testing.assert_allclose(fast(x, training=False), model(x, training=False), atol=2e-6)
    splits = _layers_of(fast, PolyphaseSplit)
    rates = sorted(layer.rate for layer in splits)
    blocks = 3  # stem + block1 + block2, each with a rate-3 and a rate-5 branch
    if size == (25, 30):
        # 25 and 30 are not both multiples of 3: the rate-3 convolutions are split one by one, while each rate-5
        # branch (two convolutions with a normalization and an activation between them) is split once
        assert rates == [3] * (2 * blocks) + [5] * blocks
    else:
        assert rates == [3] * (2 * blocks) + [5] * (2 * blocks)  # 23×31: no multiple of either, one by one
    assert len(_layers_of(fast, PolyphaseMerge)) == len(splits)
    assert all(layer.dilation_rate == (1, 1) for layer in _layers_of(fast, keras.layers.SeparableConv2D))


def test_polyphase_min_rate_and_folding_compose():
    keras.utils.set_random_seed(3)
    model = cxrzoo.build_res_cr_net(input_shape=(30, 35, 1), filters=3, conv_blocks=2, dropout=0.0)
    _randomize_statistics(model, seed=7)
    fast = fold_batch_norm(polyphase_dilated(model, min_rate=4))
    assert [layer.rate for layer in _layers_of(fast, PolyphaseSplit)] == [5, 5, 5]
    rate3 = [layer for layer in _layers_of(fast, keras.layers.SeparableConv2D) if layer.dilation_rate == (3, 3)]
    assert len(rate3) == 6  # left dilated
    x = np.random.default_rng(4).normal(size=(1, 30, 35, 1)).astype("float32")
    np.testing.assert_allclose(fast(x, training=False), model(x, training=False), atol=3e-6)


def test_polyphase_rewrites_plain_and_depthwise_convolutions_and_leaves_the_rest():
    inputs = keras.Input((20, 18, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", dilation_rate=2, name="dilated")(inputs)
    b = keras.layers.ReLU(name="relu")(a)
    b = keras.layers.DepthwiseConv2D(3, padding="same", dilation_rate=2, name="depthwise")(b)  # chained to `dilated`
    c = keras.layers.Conv2D(4, 3, padding="valid", dilation_rate=2, name="valid")(inputs)  # not 'same': left alone
    d = keras.layers.Conv2D(4, 4, padding="same", dilation_rate=2, name="even")(inputs)  # even kernel: left alone
    e = keras.layers.Conv2D(4, 3, padding="same", dilation_rate=2, name="read_twice")(inputs)
    out = keras.layers.Concatenate()([b, keras.layers.ZeroPadding2D(2)(c), d, e, keras.layers.Add()([e, d])])
    model = keras.Model(inputs, out)
    fast = polyphase_dilated(model)
    assert [(s.name, s.rate) for s in _layers_of(fast, PolyphaseSplit)] == [
        ("dilated_polyphase_split", 2),
        ("read_twice_polyphase_split", 2),
    ]
    assert {m.name for m in _layers_of(fast, PolyphaseMerge)} == {
        "depthwise_polyphase_merge",
        "read_twice_polyphase_merge",
    }
    # `read_twice` is read by the Concatenate and the Add, so it cannot start a chain: merged after itself
    assert fast.get_layer("dilated").dilation_rate == (1, 1) and fast.get_layer("depthwise").dilation_rate == (1, 1)
    assert fast.get_layer("valid").dilation_rate == (2, 2) and fast.get_layer("even").dilation_rate == (2, 2)
    x = np.random.default_rng(5).normal(size=(2, 20, 18, 3)).astype("float32")
    np.testing.assert_allclose(fast(x), model(x), atol=2e-6)


def test_polyphase_split_and_merge_are_inverse_and_serializable(tmp_path):
    x = np.random.default_rng(6).normal(size=(2, 7, 11, 3)).astype("float32")
    split = PolyphaseSplit(3)(x)
    assert tuple(split.shape) == (18, 3, 4, 3)
    # component (p, q) of image b is x[b, p::3, q::3], zero-padded to 3×4
    np.testing.assert_array_equal(split[(1 * 3 + 2) * 2 + 1, :2, :3], x[1, 1::3, 2::3])
    assert float(np.abs(split[(2 * 3 + 0) * 2 + 0, 2]).max()) == 0.0  # row 8 is padding
    np.testing.assert_array_equal(PolyphaseMerge(3, 7, 11)(split), x)
    inputs = keras.Input((7, 11, 3))
    model = keras.Model(inputs, PolyphaseMerge(3, 7, 11)(PolyphaseSplit(3)(inputs)))
    model.save(tmp_path / "phases.keras")
    np.testing.assert_array_equal(cxrzoo.models.load_model(tmp_path / "phases.keras")(x), x)


def test_polyphase_the_published_module1_keeps_its_masks(shared_weights, cxrnet_sample_image):
    model = cxrzoo.build_res_cr_net(weights="res_cr_net.v7_lungs")
    x = (np.asarray(cxrnet_sample_image, np.float32) / 255.0).reshape(1, 300, 340, 1)
    fast = fold_batch_norm(polyphase_dilated(model, min_rate=4))
    ours, theirs = fast(x, training=False).numpy(), model(x, training=False).numpy()
    assert np.abs(ours - theirs).max() < 1e-5
    np.testing.assert_array_equal(ours[..., 0] > 0.5, theirs[..., 0] > 0.5)


def test_polyphase_dilated_checks_its_arguments():
    with pytest.raises(TypeError, match="functional keras.Model"):
        polyphase_dilated(keras.layers.Dense(2))
    model = cxrzoo.build_res_cr_net(input_shape=(16, 16, 1), filters=2, conv_blocks=1)
    with pytest.raises(ValueError, match="min_rate"):
        polyphase_dilated(model, min_rate=1)
