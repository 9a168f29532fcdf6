"""The bone-suppression autoencoder (COVID-XNet preprocessing): tied weights, the author's checkpoint converted on
load, its published output reproduced, round trips."""

from __future__ import annotations

import shutil

import keras
import numpy as np
import pytest

import cxrzoo
from cxrzoo.models.bone_suppression import TiedConvAutoencoder, build_bone_suppression

TAG = "bone_suppression.jsrt_v2"
FIXTURE = ("fixtures", "bone_suppression")


def untied_twin(kernels, shape):
    """The same network written with stock Keras layers and separate (copied) decoder kernels."""
    inputs = keras.Input(shape)
    x = inputs
    layers = []
    for kernel in kernels:
        layers.append(
            (keras.layers.Conv2D(kernel.shape[-1], 5, padding="same", use_bias=False, activation="relu"), kernel)
        )
        x = layers[-1][0](x)
        x = keras.layers.MaxPooling2D(2, padding="same")(x)
    for kernel in reversed(kernels):
        layers.append(
            (
                keras.layers.Conv2DTranspose(
                    kernel.shape[2], 5, strides=2, padding="same", use_bias=False, activation="relu"
                ),
                kernel,
            )
        )
        x = layers[-1][0](x)
    for layer, kernel in layers:
        layer.set_weights([kernel])
    return keras.Model(inputs, x)


def _png(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path))


def test_tied_parameters_and_structure():
    model = build_bone_suppression()
    assert model.count_params() == 64_400
    assert [tuple(w.shape) for w in model.trainable_weights] == [(5, 5, 1, 16), (5, 5, 16, 32), (5, 5, 32, 64)]
    assert model.input_shape == (None, None, None, 1) and cxrzoo.model_info("bone_suppression").task == "image"


def test_decoder_reuses_the_encoder_kernels_during_training():
    keras.utils.set_random_seed(0)
    model = build_bone_suppression(input_shape=(32, 32, 1))
    x = np.random.default_rng(0).random((4, 32, 32, 1), dtype=np.float32)
    twin = untied_twin([k.numpy() for k in model.get_layer("autoencoder").kernels], (32, 32, 1))
    np.testing.assert_allclose(model.predict(x, verbose=0), twin.predict(x, verbose=0), atol=1e-5)
    before = [k.numpy().copy() for k in model.trainable_weights]
    model.compile(keras.optimizers.Adam(1e-3), "mse")  # the author's learning rate
    losses = model.fit(x, x, epochs=5, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    after = [k.numpy() for k in model.trainable_weights]
    assert len(after) == 3 and all(np.abs(a - b).max() > 0 for a, b in zip(after, before))
    # still exactly the untied network built from the *updated* three kernels: the decoder followed the encoder
    np.testing.assert_allclose(
        model.predict(x, verbose=0), untied_twin(after, (32, 32, 1)).predict(x, verbose=0), atol=1e-5
    )


def test_any_size_keeps_its_shape():
    model = build_bone_suppression(filters=(2, 3, 4))
    for h, w in [(37, 45), (8, 8), (1, 3)]:
        assert model.predict(np.zeros((1, h, w, 1), "float32"), verbose=0).shape == (1, h, w, 1)


def test_published_checkpoint_reproduces_the_authors_raw_output(shared, shared_weights):
    paths = cxrzoo.weights.get_weights_files(TAG)
    assert [p.name for p in paths] == ["model.index", "model.data-00000-of-00001"]
    model = cxrzoo.create_model("bone_suppression", weights=TAG)
    x = _png(shared(*FIXTURE, "test.png")).astype(np.float32)[None, ..., None] / 255.0
    y = model.predict(x, verbose=0)[0, ..., 0]
    # raw ReLU output of the port on test.png (reference covid_cxnet_xnet.md §2.2): 0 .. 1.1540, mean 0.26659
    assert y.min() == 0.0 and abs(float(y.max()) - 1.1540) < 5e-4 and abs(float(y.mean()) - 0.26659) < 5e-5
    # the author's tool: min-max to 0..255, rounded (scipy.misc.imsave / bytescale)
    out = np.floor((y - y.min()) * (255.0 / (y.max() - y.min())) + 0.5).astype(np.uint8)
    diff = np.abs(out.astype(int) - _png(shared(*FIXTURE, "published_output.png")))
    assert diff.max() <= 1 and (diff == 0).mean() >= 0.9999


def test_checkpoint_files_in_different_folders_and_bad_files(shared_weights, tmp_path):
    index_dir, data_dir = tmp_path / "a", tmp_path / "b"
    index_dir.mkdir()
    data_dir.mkdir()
    shutil.copy(shared_weights / "model.index", index_dir / "model.index")
    shutil.copy(shared_weights / "model.data-00000-of-00001", data_dir / "model.data-00000-of-00001")
    from cxrzoo.models.bone_suppression import _load_checkpoint

    model = build_bone_suppression()
    _load_checkpoint(model, [index_dir / "model.index", data_dir / "model.data-00000-of-00001"], None)
    reference = build_bone_suppression(weights=TAG)
    for got, want in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert not list(tmp_path.glob("cxrzoo_ckpt_*"))
    # a path to the index works as weights=, with the data file beside it
    shutil.copy(shared_weights / "model.data-00000-of-00001", index_dir / "model.data-00000-of-00001")
    by_path = build_bone_suppression(weights=str(index_dir / "model.index"))
    np.testing.assert_array_equal(by_path.get_weights()[2], reference.get_weights()[2])
    with pytest.raises(ValueError, match="encoder/layer/2/W"):
        build_bone_suppression(weights=str(index_dir / "model.index"), filters=(16, 32, 65))
    truncated = tmp_path / "c"
    truncated.mkdir()
    shutil.copy(shared_weights / "model.index", truncated / "model.index")
    (truncated / "model.data-00000-of-00001").write_bytes(b"\0" * 100)
    with pytest.raises(ValueError, match="checkpoint"):
        build_bone_suppression(weights=str(truncated / "model.index"))


def test_keras_round_trip_with_safe_mode(tmp_path):
    model = build_bone_suppression(input_shape=(16, 16, 1), filters=(4, 8, 8))
    x = np.random.default_rng(0).random((2, 16, 16, 1), dtype=np.float32)
    model.save(tmp_path / "bones.keras")
    reloaded = cxrzoo.models.load_model(tmp_path / "bones.keras", safe_mode=True)
    assert isinstance(reloaded.get_layer("autoencoder"), TiedConvAutoencoder)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="filters"):
        TiedConvAutoencoder(filters=())
    with pytest.raises(ValueError, match="input_shape"):
        build_bone_suppression(input_shape=(16, 16))
