"""COVID-CXNet (paper 001): exact graphs and counts, CheXNet and U-Net loading by layer order, the published base
models, training on real images, and the hierarchical classifier."""

from __future__ import annotations

from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

import cxrzoo
from cxrzoo.models.covid_cxnet import (
    HierarchicalClassifier,
    build_covid_cxnet,
    build_covid_cxnet_base,
    build_covid_cxnet_lung_unet,
    load_chexnet_backbone,
)
from cxrzoo.weights import WeightsHashError, WeightsNotFoundError

QU_EX = ("data", "covid_qu_ex_sample")
# COVID-QU-Ex folders in COVID-CXNet's class order (0 normal, 1 CAP, 2 COVID-19); "Non-COVID" holds other pneumonias.
QU_EX_CLASSES = ("Normal", "Non-COVID", "COVID-19")


def write_keras2_h5(path: Path, layers: list[tuple[str, list[tuple[str, np.ndarray]]]], *, full_model=False):
    """A Keras 2 style HDF5 weights file: ``layer_names`` attribute, one group per layer (slashes nest groups, as
    h5py did for Keras-2-era DenseNet names), ``weight_names`` per group."""
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if full_model else f
        root.attrs["layer_names"] = [name.encode() for name, _ in layers]
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.1.6"
        for name, weights in layers:
            group = root.require_group(name)
            group.attrs["weight_names"] = [w.encode() for w, _ in weights]
            for wname, value in weights:
                group.create_dataset(wname, data=value)


def keras2_layers_of(model, *, perturb_seed: int, rename=lambda n: n.replace("_", "/", 1)):
    """The weighted layers of ``model`` as Keras-2-file entries, with perturbed values and Keras-2-era names."""
    rng = np.random.default_rng(perturb_seed)
    entries = [("input_1", [])]
    for layer in model.layers:
        if not layer.weights:
            continue
        name = rename(layer.name)
        values = [
            (
                f"{name}/{w.name}:0",
                (w.numpy() * (1 + 0.1 * rng.standard_normal(w.shape))).astype("float32")
                if "variance" not in w.name
                else w.numpy() + rng.uniform(0.1, 0.2, w.shape).astype("float32"),
            )
            for w in layer.weights
        ]
        entries.append((name, values))
    return entries


def qu_ex_images(shared, recipe_name: str, **options):
    from cxrzoo.data import read_covid_qu_ex

    samples = read_covid_qu_ex(shared(*QU_EX), classes=QU_EX_CLASSES, masks=())  # labels from the folder names
    prep = cxrzoo.preprocessing.recipe(recipe_name, **options)
    return np.stack([prep(path) for path in samples.images]), np.asarray(samples.labels)


@pytest.fixture(scope="module")
def binary():
    return build_covid_cxnet()


def test_exact_layer_and_parameter_counts(binary):
    assert len(binary.layers) == 431
    assert binary.count_params() == 7_047_765
    assert sum(int(np.prod(w.shape)) for w in binary.trainable_weights) == 6_964_117
    assert sum(int(np.prod(w.shape)) for w in binary.non_trainable_weights) == 83_648
    assert [layer.name for layer in binary.layers[-4:]] == ["pooling_layer", "fc", "dropout", "pred"]
    assert binary.get_layer("fc").units == 10 and binary.get_layer("dropout").rate == 0.2
    assert binary.get_layer("pred").activation.__name__ == "sigmoid"
    assert binary.get_layer("relu").output.shape == (None, 10, 10, 1024)  # the Grad-CAM target
    assert cxrzoo.model_info("covid_cxnet").cam_layer == "relu"


def test_gradcam_targets_the_final_densenet_activation(binary):
    from cxrzoo.explain import CAM, GradCAM, default_cam_layer

    assert default_cam_layer(binary) == "relu"
    x = np.random.default_rng(0).random((1, 320, 320, 3), dtype=np.float32)
    maps = GradCAM()(binary, x)
    assert maps.shape == (1, 320, 320) and maps.min() >= 0.0 and maps.max() <= 1.0
    with pytest.raises(ValueError, match="use GradCAM"):  # GAP → Dense(10) → Dense is not a CAM head
        CAM()(binary, x)


def test_three_class_head_count():
    # DenseNet parameters do not depend on the spatial size, so a small input checks the 3-class count cheaply.
    model = build_covid_cxnet(input_shape=(32, 32, 3), classes=3)
    assert len(model.layers) == 431 and model.count_params() == 7_047_787
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 6_964_139
    assert model.get_layer("pred").activation.__name__ == "softmax"


def test_chexnet_weights_load_by_order_into_a_grayscale_model(tmp_path, binary):
    # CheXNet's own head instead of COVID-CXNet's: drop fc/pred, add the 14-way "predictions" Dense.
    entries = [e for e in keras2_layers_of(binary, perturb_seed=0) if e[0] not in ("fc", "pred")]
    entries.append(("avg_pool", []))
    rng = np.random.default_rng(1)
    entries.append(
        (
            "predictions",
            [
                ("predictions/kernel:0", rng.standard_normal((1024, 14)).astype("float32")),
                ("predictions/bias:0", np.zeros(14, "float32")),
            ],
        )
    )
    path = tmp_path / "CheXNet_v0.3.0.h5"
    write_keras2_h5(path, entries)
    assert any("/" in name for name, _ in entries)  # names Keras 3 itself would refuse

    gray = build_covid_cxnet(input_shape=(32, 32, 1), backbone_weights=str(path))
    file_values = {name: [v for _, v in weights] for name, weights in entries}
    first = gray.get_layer("conv1_conv").kernel
    np.testing.assert_allclose(first.numpy(), file_values["conv1/conv"][0].sum(axis=2, keepdims=True), rtol=1e-6)
    for layer in gray.layers:
        if layer.weights and layer.name not in ("conv1_conv", "fc", "pred"):
            for got, want in zip(layer.get_weights(), file_values[layer.name.replace("_", "/", 1)]):
                np.testing.assert_array_equal(got, want)

    # a 3-channel model takes the kernel as is; an incompatible file is refused before anything is assigned
    small = build_covid_cxnet(input_shape=(32, 32, 3), fc_units=4)
    load_chexnet_backbone(small, path)
    np.testing.assert_array_equal(small.get_layer("conv1_conv").kernel.numpy(), file_values["conv1/conv"][0])
    # a full Keras 2 model file of the authors' whole graph (model_weights group) loads by order through weights=
    from cxrzoo.models.covid_cxnet import _load_covid_cxnet_weights

    whole = keras2_layers_of(small, perturb_seed=3)
    write_keras2_h5(tmp_path / "covid_cxnet_keras2.hdf5", whole, full_model=True)
    _load_covid_cxnet_weights(small, [tmp_path / "covid_cxnet_keras2.hdf5"], None)
    np.testing.assert_array_equal(small.get_layer("pred").get_weights()[0], dict(whole)["pred"][0][1])
    np.testing.assert_array_equal(
        small.get_layer("conv5_block16_2_conv").kernel.numpy(), dict(whole)["conv5/block16_2_conv"][0][1]
    )
    broken = tmp_path / "broken.h5"
    write_keras2_h5(broken, entries[:10] + entries[12:])  # two backbone layers missing
    before = small.get_layer("bn").get_weights()
    with pytest.raises(ValueError, match="weighted layers in the file"):
        load_chexnet_backbone(small, broken)
    np.testing.assert_array_equal(small.get_layer("bn").get_weights()[0], before[0])


def test_chexnet_tag_offline_miss_and_hash_check(tmp_path, monkeypatch):
    monkeypatch.delenv("CXRZOO_WEIGHTS_PATH", raising=False)
    with pytest.raises(WeightsNotFoundError, match="CheXNet_v0.3.0.h5") as info:
        build_covid_cxnet(backbone_weights="covid_cxnet.chexnet_init")
    assert "git blob SHA-1 4b43966d072ba751da5ba3921dd728ab4964a7bb" in str(info.value)
    assert "cxrzoo weights fetch covid_cxnet.chexnet_init" in str(info.value)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "CheXNet_v0.3.0.h5").write_bytes(b"not the published file")
    monkeypatch.setenv("CXRZOO_WEIGHTS_PATH", str(mirror))
    with pytest.raises(WeightsHashError, match="git-blob-sha1"):
        build_covid_cxnet(backbone_weights="covid_cxnet.chexnet_init")


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="dropout"):
        build_covid_cxnet(dropout=1.5)
    with pytest.raises(ValueError, match="classifier_activation"):
        build_covid_cxnet(classifier_activation="relu")
    with pytest.raises(ValueError, match="pooling"):
        build_covid_cxnet(pooling="avg")


def test_trains_on_real_images(shared):
    """A few steps on the COVID-QU-Ex sample (labels from its folder names) through the 'covid_cxnet' recipe."""
    x, y = qu_ex_images(shared, "covid_cxnet", size=(64, 64))
    assert x.shape == (12, 64, 64, 3) and set(y) == {0, 1, 2}
    keras.utils.set_random_seed(0)
    model = build_covid_cxnet(input_shape=(64, 64, 3), classes=3)
    # Eager steps: tracing DenseNet-121's training graph costs far more than a few eager steps on 2 CPU cores.
    model.compile(
        keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(label_smoothing=0.1), run_eagerly=True
    )
    losses = model.fit(x, np.eye(3, dtype="float32")[y], epochs=3, batch_size=12, verbose=0).history["loss"]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses


# ---------------------------------------------------------------------------------------------- base model


@pytest.mark.parametrize(
    "tag, shape, params, expected",
    [
        ("covid_cxnet_base.v1_0", (400, 400, 1), 76_675, 0.984397),
        ("covid_cxnet_base.v_free", (300, 300, 3), 60_035, 0.998036),
    ],
)
def test_published_base_models_reproduce_the_golden_outputs(shared_weights, tag, shape, params, expected):
    model = build_covid_cxnet_base(weights=tag)
    assert model.input_shape == (None, *shape) and model.count_params() == params
    p = model.predict(np.full((1, *shape), 0.5, "float32"), verbose=0)
    assert p.shape == (1, 1)
    assert abs(float(p[0, 0]) - expected) <= 1e-5
    again = cxrzoo.create_model("covid_cxnet_base", weights=tag)
    np.testing.assert_array_equal(again.predict(np.full((1, *shape), 0.5, "float32"), verbose=0), p)
    with pytest.raises(ValueError, match="input_shape"):
        build_covid_cxnet_base(weights=tag, input_shape=(320, 320, shape[-1]))


@pytest.mark.parametrize("tag", ["covid_cxnet_base.v1_0", "covid_cxnet_base.v_free"])
def test_published_base_models_run_on_the_fixture_images(shared, shared_weights, tag):
    model = build_covid_cxnet_base(weights=tag)
    prep = cxrzoo.preprocessing.recipe("covid_cxnet_base", input_shape=model.input_shape[1:])
    paths = sorted(shared("fixtures", "covid_cxnet", "images").glob("*.jpg"))
    assert len(paths) == 4
    x = np.stack([prep(p) for p in paths])
    p = model.predict(x, verbose=0)[:, 0]
    assert p.shape == (4,) and np.all((p >= 0) & (p <= 1))
    # the four inputs differ, and so do the scores (a model that ignored its input would not)
    assert np.ptp(p) > 1e-4
    # They are COVID-19 radiographs from the authors' own collection (probably seen in training): both models
    # call all four positive (measured: v1.0 0.996 0.998 0.981 0.898; v_free 1.000 0.725 0.965 0.994).
    assert np.all(p > 0.5), p


def test_base_model_graph_matches_the_authors_files():
    model = build_covid_cxnet_base()
    assert model.count_params() == 60_035 and model.input_shape == (None, 320, 320, 3)
    assert [layer.name for layer in model.layers] == [
        "input_layer",
        "conv_layer1",
        "conv_layer2",
        "conv_layer3",
        "conv_layer4",
        "conv_layer5",
        "flatten_layer",
        "fc_layer1",
        "fc_layer2",
        "output_layer",
    ]
    first, second = model.get_layer("conv_layer1"), model.get_layer("conv_layer2")
    assert first.kernel_size == (5, 5) and first.strides == (2, 2) and first.padding == "valid"
    assert second.kernel_size == (3, 3) and second.filters == 32
    assert build_covid_cxnet_base(input_shape=(400, 400, 3)).count_params() == 78_275


def test_base_model_round_trips_through_keras_files(tmp_path):
    model = build_covid_cxnet_base(input_shape=(96, 96, 1))
    x = np.random.default_rng(0).random((2, 96, 96, 1), dtype=np.float32)
    model.save(tmp_path / "base.keras")
    reloaded = cxrzoo.models.load_model(tmp_path / "base.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


# ---------------------------------------------------------------------------------------------- lung U-Net


def test_lung_unet_counts_and_order_loading(tmp_path, monkeypatch):
    unet = build_covid_cxnet_lung_unet()
    assert unet.count_params() == 7_759_521 and len(unet.layers) == 32
    assert sum(1 for layer in unet.layers if layer.weights) == 23
    assert unet.output_shape == (None, 320, 320, 1)
    # a Keras 2 weights-only file with auto-generated names (conv2d_1, ...) loads by order
    counters: dict[str, int] = {}

    def auto_name(name):
        base = "conv2d_transpose" if name.endswith("_up") else "conv2d"
        counters[base] = counters.get(base, 0) + 1
        return f"{base}_{counters[base]}"

    entries = keras2_layers_of(unet, perturb_seed=2, rename=auto_name)
    path = tmp_path / "cxr_reg_weights.hdf5"
    write_keras2_h5(path, entries)
    small = build_covid_cxnet_lung_unet(input_shape=(32, 32, 1), weights=str(path))
    for layer, (_, values) in zip([l for l in small.layers if l.weights], entries[1:]):
        for got, (_, want) in zip(layer.get_weights(), values):
            np.testing.assert_array_equal(got, want)
    out = small.predict(np.zeros((1, 32, 32, 1), "float32"), verbose=0)
    assert out.shape == (1, 32, 32, 1) and np.all((out >= 0) & (out <= 1))
    with pytest.raises(ValueError, match="divisible by 16"):
        build_covid_cxnet_lung_unet(input_shape=(40, 40, 1))
    monkeypatch.delenv("CXRZOO_WEIGHTS_PATH", raising=False)
    with pytest.raises(WeightsNotFoundError, match="cxr_reg_weights.hdf5"):
        build_covid_cxnet_lung_unet(weights="covid_cxnet_lung_unet.montgomery_shenzhen")


# ------------------------------------------------------------------------------------- hierarchical classifier


def tiny_level(name: str, seed: int):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x), name=name)


def test_hierarchical_probabilities_and_targets():
    clf = HierarchicalClassifier(tiny_level("l1", 0), tiny_level("l2", 1))
    x = np.random.default_rng(0).random((5, 16, 16, 3), dtype=np.float32)
    p1 = clf.level1.predict(x, verbose=0)[:, 0]
    p2 = clf.level2.predict(x, verbose=0)[:, 0]
    probs = clf.predict(x)
    np.testing.assert_allclose(probs, np.stack([1 - p1, p1 * (1 - p2), p1 * p2], axis=1), atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert clf.labels == ("normal", "cap", "covid")

    y = np.array([0, 1, 2, 2, 0])
    keep, t1 = clf.level_targets(y, 1)
    assert keep.all() and t1.tolist() == [0, 1, 1, 1, 0]
    keep, t2 = clf.level_targets(np.eye(3)[y], 2)  # one-hot works too
    assert keep.tolist() == [False, True, True, True, False] and t2.tolist() == [0, 1, 1]
    notebook = HierarchicalClassifier(clf.level1, clf.level2, level2_on="all")
    keep, t2 = notebook.level_targets(y, 2)
    assert keep.all() and t2.tolist() == [0, 0, 1, 1, 0]
    with pytest.raises(ValueError, match="labels"):
        clf.level_targets([0, 3], 1)
    with pytest.raises(ValueError, match="level2_on"):
        HierarchicalClassifier(clf.level1, clf.level2, level2_on="covid")
    two_units = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="one probability"):
        HierarchicalClassifier(clf.level1, two_units)


def test_hierarchical_fit_trains_each_level_on_its_own_targets(tmp_path):
    clf = HierarchicalClassifier(tiny_level("l1", 0), tiny_level("l2", 1))
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 8)
    x = rng.random((24, 16, 16, 3), dtype=np.float32) * 0.2
    x[y == 1, :8] += 0.8  # pneumonia: bright upper half; COVID-19 additionally bright lower half
    x[y == 2] += 0.8
    seen = {}

    def trainer(model, xs, ys, *, validation_data=None, **kwargs):
        seen[model.name] = (len(xs), ys.copy(), validation_data is not None, kwargs)
        model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy")
        return model.fit(xs, ys, verbose=0, **kwargs)

    histories = clf.fit(x, y, validation_data=(x, y), trainer=trainer, epochs=10, batch_size=8)
    assert seen["l1"][0] == 24 and seen["l2"][0] == 16 and seen["l2"][1].tolist() == [0] * 8 + [1] * 8
    assert seen["l1"][2] and seen["l1"][3] == {"epochs": 10, "batch_size": 8}
    for name in ("level1", "level2"):
        loss = histories[name].history["loss"]
        assert loss[-1] < loss[0]
    assert (clf.predict(x).argmax(axis=1) == y).mean() > 0.6
    # default: cxrzoo.training.fit_classifier with the authors' hierarchical setting (Adam 1e-4, smoothed BCE)
    default = clf.fit(x, y, validation_data=(x, y), epochs=2, batch_size=8)
    assert set(default) == {"level1", "level2"}
    assert default["level2"].recipe.name == "covid_cxnet" and len(default["level2"].history["loss"]) == 2
    path = tmp_path / "hierarchical.keras"
    clf.model.save(path)
    reloaded = cxrzoo.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), clf.predict(x), atol=1e-6)


@pytest.mark.slow
def test_hierarchical_default_levels_are_binary_covid_cxnets():
    clf = HierarchicalClassifier(input_shape=(32, 32, 3))
    assert clf.level1.count_params() == clf.level2.count_params() == 7_047_765
    assert clf.predict(np.zeros((2, 32, 32, 3), "float32")).shape == (2, 3)
