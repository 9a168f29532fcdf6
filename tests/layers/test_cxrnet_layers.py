"""The small CXR-Net layers: attention equals Keras MultiHeadAttention as the reference says, masks, round trips."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import cxrzoo
from cxrzoo.layers import AxisAttention, LungMaskGate, MinMaxRescale, SelectChannel, Threshold


@pytest.mark.parametrize("axis", [1, 2])
def test_axis_attention_equals_keras_multi_head_attention(axis):
    rng = np.random.default_rng(axis)
    q, k, v = (rng.standard_normal((2, 7, 9, 1)).astype("float32") for _ in range(3))
    ours = AxisAttention(num_heads=2, head_size=64, axis=axis)
    ours([q, k, v])
    ours.output_bias.assign([0.25])
    mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=64, value_dim=64, attention_axes=(2,))
    # attention_axes=(2,) attends along W; columns are the same after swapping H and W
    swap = (lambda t: np.transpose(t, (0, 2, 1, 3))) if axis == 1 else (lambda t: t)
    mha(swap(q), swap(v), key=swap(k))
    kernels = {
        "query": ours.query_kernel,
        "key": ours.key_kernel,
        "value": ours.value_kernel,
        "attention_output": ours.output_kernel,
    }
    values = []
    for weight in mha.weights:
        sub = weight.path.split("/")[-2]
        if weight.name == "kernel":
            values.append(kernels[sub].numpy())
        elif sub == "attention_output":
            values.append(ours.output_bias.numpy())
        else:
            values.append(np.zeros(weight.shape, "float32"))  # the authors' layer has no q/k/v biases
    mha.set_weights(values)
    expected = swap(mha(swap(q), swap(v), key=swap(k)).numpy())
    np.testing.assert_allclose(ours([q, k, v]).numpy(), expected, atol=1e-5)


def _plain_attention(layer, query, key, value):
    """The attention formula as written (project to head_size, softmax over the full logits), in TensorFlow."""
    import tensorflow as tf

    if layer.axis == 1:
        query, key, value = (tf.transpose(t, (0, 2, 1, 3)) for t in (query, key, value))
    q = tf.einsum("bxnc,chd->bxhnd", query, layer.query_kernel.value) / np.sqrt(layer.head_size)
    k = tf.einsum("bxmc,chd->bxhmd", key, layer.key_kernel.value)
    v = tf.einsum("bxmc,chd->bxhmd", value, layer.value_kernel.value)
    weights = tf.nn.softmax(tf.einsum("bxhnd,bxhmd->bxhnm", q, k), axis=-1)
    out = tf.einsum("bxhnd,hdo->bxno", tf.einsum("bxhnm,bxhmd->bxhnd", weights, v), layer.output_kernel.value)
    out = out + layer.output_bias.value
    return tf.transpose(out, (0, 2, 1, 3)) if layer.axis == 1 else out


@pytest.mark.parametrize("key_kind", ["binary", "all_zero", "all_one", "float", "two_channels"])
@pytest.mark.parametrize("axis", [1, 2])
def test_axis_attention_shortcuts_equal_the_plain_formula_with_gradients(key_kind, axis):
    # The layer computes q·kᵀ through the (C_q, C_k) bilinear form, the values in the output space, and, for a
    # 0/1 key, each row's softmax from two group sums; all must be the formula, values and gradients alike.
    import tensorflow as tf

    rng = np.random.default_rng(11)
    shape = (2, 6, 9, 1)
    keys = {
        "binary": rng.random(shape) > 0.5,
        "all_zero": np.zeros(shape),
        "all_one": np.ones(shape),
        "float": rng.random(shape),
        "two_channels": rng.random((2, 6, 9, 2)) > 0.5,
    }
    key = tf.constant(keys[key_kind].astype("float32"))
    query = tf.constant(rng.standard_normal(shape).astype("float32") * 20)  # large logits: the shift matters
    value = tf.constant(rng.random(shape).astype("float32"))
    layer = AxisAttention(num_heads=2, head_size=64, axis=axis)
    layer([query, key, value])
    layer.output_bias.assign([0.3])
    variables = [w.value for w in layer.trainable_weights]
    results = []
    for fn in (lambda q, k, v: layer([q, k, v]), lambda q, k, v: _plain_attention(layer, q, k, v)):
        with tf.GradientTape() as tape:
            tape.watch([query, value])
            loss = tf.reduce_sum(fn(query, key, value) ** 2)
        results.append([loss, *tape.gradient(loss, [query, value, *variables])])
    for ours, plain in zip(*results):
        assert np.all(np.isfinite(ours.numpy()))
        np.testing.assert_allclose(ours.numpy(), plain.numpy(), rtol=2e-4, atol=2e-4)
    compiled = tf.function(lambda q, k, v: layer([q, k, v]), jit_compile=True)
    np.testing.assert_allclose(
        compiled(query, key, value), _plain_attention(layer, query, key, value), rtol=1e-5, atol=1e-5
    )


def test_axis_attention_wide_heads_take_the_plain_path():
    rng = np.random.default_rng(12)
    x = [rng.standard_normal((1, 4, 5, 6)).astype("float32") for _ in range(3)]
    layer = AxisAttention(num_heads=2, head_size=4, axis=2, output_size=8)  # 6 key channels, 8 outputs > 4
    np.testing.assert_allclose(layer(x), _plain_attention(layer, *x), rtol=1e-5, atol=1e-5)


def test_axis_attention_parameter_count_is_the_authors():
    layer = AxisAttention(num_heads=2, head_size=64)
    layer([np.zeros((1, 3, 4, 1), "float32")] * 3)
    assert layer.count_params() == 513  # 3 × (1·2·64) + 2·64·1 + 1
    assert [w.name for w in layer.weights] == [
        "query_kernel",
        "key_kernel",
        "value_kernel",
        "output_kernel",
        "output_bias",
    ]
    with pytest.raises(ValueError, match="axis"):
        AxisAttention(axis=3)


def test_rows_and_columns_differ():
    rng = np.random.default_rng(5)
    x = [rng.standard_normal((1, 6, 8, 1)).astype("float32") for _ in range(3)]
    rows, cols = AxisAttention(axis=2), AxisAttention(axis=1)
    rows(x), cols(x)
    cols.set_weights(rows.get_weights())
    assert not np.allclose(rows(x).numpy(), cols(x).numpy())


def test_select_channel_and_threshold():
    x = np.arange(2 * 3 * 4 * 5, dtype="float32").reshape(2, 3, 4, 5) / 100
    np.testing.assert_array_equal(SelectChannel(0)(x).numpy(), x[..., :1])
    np.testing.assert_array_equal(SelectChannel(-1)(x).numpy(), x[..., 4:])
    np.testing.assert_array_equal(Threshold(0.3)(x).numpy(), (x > 0.3).astype("float32"))
    assert Threshold(0.3)(np.full((1, 1), 0.3, "float32")).numpy()[0, 0] == 0.0  # strictly above


def test_min_max_rescale_per_sample():
    x = np.stack([np.linspace(-2, 6, 12), np.full(12, 3.0)]).reshape(2, 3, 4, 1).astype("float32")
    out = MinMaxRescale()(x).numpy()
    assert out[0].min() == 0.0 and out[0].max() == 1.0
    np.testing.assert_array_equal(out[1], 0.0)  # a constant sample has no range


def test_lung_mask_gate_is_the_authors_formula():
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (2, 30, 34, 1)).astype("float32")
    p = rng.random((2, 30, 34, 1)).astype("float32")
    gate = (image >= 6) & (image <= 225)
    expected = np.where(gate, np.round(p.astype(np.float64) * 255) / 255, 0.0)
    np.testing.assert_allclose(LungMaskGate()([image, p]).numpy(), expected, atol=1e-7)
    np.testing.assert_allclose(LungMaskGate(levels=None)([image, p]).numpy(), np.where(gate, p, 0.0), atol=0)


def test_layers_round_trip_in_a_keras_file(tmp_path):
    image = keras.Input((6, 8, 1), name="image")
    p = keras.Input((6, 8, 1), name="p")
    mask = LungMaskGate(10, 200, levels=15, name="gate")([image, p])
    binary = Threshold(0.4, name="binary")(mask)
    att = AxisAttention(2, 4, axis=1, name="cols")([SelectChannel(0)(image), binary, mask])
    out = keras.layers.Concatenate()([att, MinMaxRescale()(image)])
    model = keras.Model([image, p], out)
    path = tmp_path / "layers.keras"
    model.save(path)
    reloaded = cxrzoo.models.load_model(path, safe_mode=True)
    rng = np.random.default_rng(8)
    x = [rng.integers(0, 256, (2, 6, 8, 1)).astype("float32"), rng.random((2, 6, 8, 1)).astype("float32")]
    np.testing.assert_allclose(reloaded(x).numpy(), model(x).numpy(), atol=1e-6)
    config = reloaded.get_layer("gate").get_config()
    assert (config["low"], config["high"], config["levels"]) == (10.0, 200.0, 15)


@pytest.mark.parametrize("kernel, dilation", [(3, 1), (5, 3), (7, 5), (3, 2)])
def test_separable_conv_is_keras_and_its_xla_form_computes_the_same(kernel, dilation):
    import tensorflow as tf

    from cxrzoo.layers import SeparableConv2D, xla_depthwise

    rng = np.random.default_rng(kernel * 10 + dilation)
    x = rng.standard_normal((2, 23, 29, 5)).astype("float32")
    ours = SeparableConv2D(4, kernel, dilation_rate=dilation, padding="same")
    reference = keras.layers.SeparableConv2D(4, kernel, dilation_rate=dilation, padding="same")
    ours(x), reference(x)
    ours.set_weights([w + 0.1 for w in reference.get_weights()])  # nonzero bias
    reference.set_weights(ours.get_weights())
    expected = reference(x).numpy()
    np.testing.assert_array_equal(ours(x).numpy(), expected)  # outside xla_depthwise: Keras' own computation

    def op_types(fn):
        return {op.type for op in fn.get_concrete_function(tf.TensorSpec(x.shape)).graph.get_operations()}

    assert "DepthwiseConv2dNative" in op_types(tf.function(lambda t: ours(t)))
    compiled = tf.function(lambda t: ours(t), jit_compile=True)
    with xla_depthwise():
        assert "DepthwiseConv2dNative" not in op_types(compiled)  # traced here: the shifted-product form
        shifted = compiled(x).numpy()
    np.testing.assert_allclose(shifted, expected, atol=1e-4)
    graph = ours(x).numpy()
    np.testing.assert_array_equal(graph, expected)  # the flag is reset after the block
    assert ours.get_config() == {**reference.get_config(), "name": ours.name}
