"""Encoders of the thesis' models: SMP taps, torchvision/Cadene graphs, PyTorch padding and BatchNorm settings.

The exact parameter count of every encoder is asserted in test_segmentation.py (encoder part of each of the 15
models) and test_infection_detector.py (the five classifiers), so each big backbone is built only where it is needed.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cxrzoo.models.encoders import (
    ENCODER_CHANNELS,
    ENCODER_TAPS,
    build_encoder,
    count_trainable,
    inception_v4_features,
    torch_conv,
    torch_max_pool,
)


def test_resnet18_encoder_taps_channels_and_strides():
    enc = build_encoder("resnet18", input_shape=(64, 96, 3))
    assert [tuple(t.shape[1:]) for t in enc.outputs] == [
        (32, 48, 64),
        (16, 24, 64),
        (8, 12, 128),
        (4, 6, 256),
        (2, 3, 512),
    ]
    for tensor, layer in zip(enc.outputs, ENCODER_TAPS["resnet18"]):
        assert tensor is enc.get_layer(layer).output
    assert count_trainable(enc) == 11_176_512


def test_resnets_are_bias_free_with_torch_batchnorm():
    enc = build_encoder("resnet18", input_shape=(64, 64, 1))
    convs = [layer for layer in enc.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 20 and not any(c.use_bias for c in convs)
    bns = [layer for layer in enc.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert all(bn.epsilon == 1e-5 and bn.momentum == 0.9 and bn.scale and bn.center for bn in bns)
    # a grayscale stem only changes the first kernel: 64·49·(3 - 1) fewer weights
    assert count_trainable(enc) == 11_176_512 - 2 * 64 * 49
    # the projection shortcut of a downsampling block is strided, the identity one absent
    assert enc.get_layer("conv3_block1_0_conv").strides == (2, 2)
    assert "conv2_block1_0_conv" not in {layer.name for layer in enc.layers}


def test_torch_padding_is_symmetric_for_strided_convolutions():
    # A 3×3/2 conv of ones on a 4×4 image of ones: PyTorch (padding 1 on all sides) sees 4 real pixels in the
    # top-left window and 9 in the bottom-right one; Keras' "same" would pad bottom/right only (9 and 4).
    inputs = keras.Input((4, 4, 1))
    conv_out = torch_conv(inputs, 1, 3, strides=2, padding=1, name="probe")
    model = keras.Model(inputs, conv_out)
    model.get_layer("probe").set_weights([np.ones((3, 3, 1, 1), "float32")])
    out = model.predict(np.ones((1, 4, 4, 1), "float32"), verbose=0)[0, ..., 0]
    np.testing.assert_array_equal(out, [[4, 6], [6, 9]])
    pool = keras.Model(inputs, torch_max_pool(inputs, 3, 2, 1, name="pool"))
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(pool.predict(x, verbose=0)[0, ..., 0], [[5, 7], [13, 15]])


def test_densenet121_matches_keras_applications_layer_for_layer():
    ref = keras.applications.DenseNet121(weights=None, include_top=False, input_shape=(64, 64, 3))
    mine = build_encoder("densenet121", input_shape=(64, 64, 3))
    assert [layer.name for layer in mine.layers if layer.weights] == [
        layer.name for layer in ref.layers if layer.weights
    ]
    rng = np.random.default_rng(0)
    values = [
        rng.uniform(0.5, 1.5, w.shape).astype("float32")
        if "variance" in w.path
        else rng.normal(0, 0.1, w.shape).astype("float32")
        for w in ref.weights
    ]
    ref.set_weights(values)
    mine.set_weights(values)  # same layers in the same order with the same shapes, or this raises
    x = rng.random((2, 64, 64, 3), dtype=np.float32)
    # SMP's taps: the stem ReLU, the transition ReLUs (before their conv and pool), and norm5 without ReLU
    expected = keras.Model(ref.input, [ref.get_layer(n).output for n in ENCODER_TAPS["densenet121"]])(x)
    got = mine(x)
    assert [g.shape[-1] for g in got] == list(ENCODER_CHANNELS["densenet121"])
    for e, g in zip(expected, got):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-4, atol=1e-5)
    assert count_trainable(mine) == count_trainable(ref) == 6_953_856


def test_unknown_encoder_and_bad_shapes_are_named():
    with pytest.raises(ValueError, match="valid encoders: resnet18"):
        build_encoder("resnet34")
    with pytest.raises(ValueError, match=r"input_shape must be \(H, W, C\)"):
        build_encoder("resnet18", input_shape=(64, 64))
    with pytest.raises(ValueError, match="padding must be 'smp' or 'original'"):
        inception_v4_features(keras.Input((64, 64, 3)), padding="valid")


def test_encoder_weights_round_trip_through_a_file(tmp_path):
    enc = build_encoder("resnet18", input_shape=(64, 64, 3))
    path = tmp_path / "resnet18.weights.h5"
    enc.save_weights(path)
    again = build_encoder("resnet18", input_shape=(64, 64, 3), weights=path)
    x = np.random.default_rng(1).random((1, 64, 64, 3), dtype=np.float32)
    for a, b in zip(enc(x), again(x)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(FileNotFoundError):
        build_encoder("resnet18", weights=tmp_path / "missing.weights.h5")
