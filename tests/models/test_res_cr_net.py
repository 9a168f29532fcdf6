"""Res-CR-Net (CXR-Net Module 1): exact graph, published weights, golden masks, real-image Dice, round trips."""

from __future__ import annotations

import numpy as np
import pytest

import cxrzoo
from cxrzoo.models.res_cr_net import build_res_cr_net, legacy_layer_names

SAMPLE = ("fixtures", "cxrnet", "sample")


def _png(path):
    from PIL import Image

    return np.asarray(Image.open(path))


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.fixture(scope="module")
def module1():
    return build_res_cr_net()


def test_parameter_counts_at_paper_configuration(module1):
    assert module1.count_params() == 59_941
    assert sum(int(np.prod(w.shape)) for w in module1.trainable_weights) == 58_309
    assert module1.output_shape == (None, 300, 340, 2)


def test_graph_follows_the_authors_block_structure(module1):
    names = [layer.name for layer in module1.layers]
    # stem → dropout, 4 × (residual → dropout), a fifth residual block without dropout, 1×1 head, LeakyReLU, softmax
    assert [n for n in names if n.endswith("_dropout")] == ["stem_dropout"] + [f"block{r}_dropout" for r in range(1, 5)]
    assert names[-3:] == ["head_conv", "head_act", "softmax"]
    head_act = module1.get_layer("head_act")
    assert np.isclose(head_act.negative_slope, 0.1)
    # shortcuts read the raw block input, not the pre-activated one
    shortcut = module1.get_layer("block2_shortcut_conv")
    assert shortcut.input.name == module1.get_layer("block1_dropout").output.name
    branch = module1.get_layer("block2_branch3_conv1")
    assert branch.kernel_size == (7, 7) and branch.dilation_rate == (5, 5)
    assert branch.input.name == module1.get_layer("block2_preact_act").output.name


def test_legacy_name_map_covers_every_weighted_layer(module1):
    mapping = legacy_layer_names()
    weighted = {layer.name for layer in module1.layers if layer.weights}
    assert set(mapping) == weighted
    assert len(set(mapping.values())) == len(mapping) == 72
    assert mapping["block5_preact_bn"] == "batch_normalization_24" and mapping["head_conv"] == "conv2d_6"


def test_fully_convolutional_any_size():
    model = build_res_cr_net(input_shape=(None, None, 1), filters=4, conv_blocks=2)
    out = model.predict(np.zeros((2, 37, 52, 1), "float32"), verbose=0)
    assert out.shape == (2, 37, 52, 2)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)


def test_full_res_cr_net_with_lstm_blocks_builds_trains_and_round_trips(tmp_path):
    with pytest.raises(ValueError, match="fixed input height and width"):
        build_res_cr_net(input_shape=(None, None, 1), lstm_blocks=1)
    model = build_res_cr_net(input_shape=(16, 24, 1), filters=4, conv_blocks=2, lstm_blocks=2, classes=3)
    assert sorted(l.name for l in model.layers if l.name.endswith("_lstm")) == [
        "lstm1_cols_lstm",
        "lstm1_rows_lstm",
        "lstm2_cols_lstm",
        "lstm2_rows_lstm",
    ]
    x = np.random.default_rng(0).random((2, 16, 24, 1), dtype=np.float32)
    y = np.eye(3, dtype="float32")[np.random.default_rng(1).integers(0, 3, (2, 16, 24))]
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    losses = model.fit(x, y, epochs=3, verbose=0).history["loss"]
    assert all(np.isfinite(losses))
    path = tmp_path / "full.keras"
    model.save(path)
    reloaded = cxrzoo.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_keras_round_trip_with_safe_mode(tmp_path, module1):
    x = np.random.default_rng(0).random((1, 300, 340, 1), dtype=np.float32)
    path = tmp_path / "res_cr_net.keras"
    module1.save(path)
    reloaded = cxrzoo.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), module1.predict(x, verbose=0), atol=1e-6)
    assert reloaded.count_params() == 59_941


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="conv_blocks"):
        build_res_cr_net(conv_blocks=0)
    with pytest.raises(ValueError, match="classifier_activation"):
        build_res_cr_net(classifier_activation="relu")


def test_weights_of_another_arch_are_refused(shared_weights):
    with pytest.raises(ValueError, match="cxrnet_member"):
        build_res_cr_net(weights="cxrnet_member.hfhs_fold0")


def test_weights_refuse_a_different_head(shared_weights):
    with pytest.raises(ValueError, match="classes=2"):
        build_res_cr_net(weights="res_cr_net.v7_lungs", classes=3)


def test_registry_builds_it():
    assert "res_cr_net" in cxrzoo.list_models()
    assert cxrzoo.model_info("res_cr_net").weights == ["res_cr_net.jms_lungs", "res_cr_net.v7_lungs"]


@pytest.mark.parametrize("tag, suffix", [("res_cr_net.v7_lungs", "v7"), ("res_cr_net.jms_lungs", "jms")])
def test_published_weights_reproduce_the_authors_masks(shared, shared_weights, monkeypatch, tag, suffix):
    monkeypatch.setenv("CXRZOO_OFFLINE", "1")
    model = cxrzoo.create_model("res_cr_net", weights=tag)
    image = _png(shared(*SAMPLE, "002130-004-1_image_equalized.png"))
    p_lung = model.predict(image[None, ..., None].astype("float32") / 255.0, verbose=0)[0, ..., 0]
    golden_float = _png(shared(*SAMPLE, f"002130-004-1_mask_float_{suffix}.png"))
    golden_binary = _png(shared(*SAMPLE, f"002130-004-1_mask_binary_{suffix}.png")) > 127
    quantized = np.clip(np.round(p_lung * 255.0), 0, 255).astype(np.uint8)
    agreement = float(np.mean(quantized == golden_float))
    dice = _dice(p_lung > 0.5, golden_binary)
    print(f"{tag}: 8-bit agreement {agreement:.6f}, Dice vs published binary mask {dice:.6f}")
    assert agreement >= 0.999
    assert dice >= 0.999


def test_loading_from_an_explicit_path_equals_loading_by_tag(shared_weights):
    by_tag = build_res_cr_net(weights="res_cr_net.jms_lungs", input_shape=(64, 64, 1))
    by_path = build_res_cr_net(weights=cxrzoo.get_weights_file("res_cr_net.jms_lungs"), input_shape=(64, 64, 1))
    for a, b in zip(by_tag.weights, by_path.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# Measured on the landed code (docs/models/res_cr_net.md): mean Dice 0.885 over the 60 validation images.
V7_VAL_MEAN_DICE_FLOOR = 0.88


def test_v7_weights_on_real_validation_images(shared, shared_weights):
    from cxrzoo.preprocessing import read_image, resize

    folder = shared("data", "v7_covid_lungs", "val")
    images = sorted((folder / "images").glob("*.png"))
    assert len(images) == 60
    model = build_res_cr_net(weights="res_cr_net.v7_lungs")
    batch = np.stack([cxrzoo.prepare_cxrnet_input(read_image(p)) for p in images])
    probs = model.predict(batch[..., None].astype("float32") / 255.0, batch_size=6, verbose=0)[..., 0]
    dices = []
    for path, p_lung in zip(images, probs):
        truth = resize(read_image(folder / "lungs" / path.name), (300, 340), method="nearest") > 127
        dices.append(_dice(p_lung > 0.5, truth))
    mean = float(np.mean(dices))
    print(
        f"V7 weights on v7_covid_lungs/val: mean Dice {mean:.4f}, median {np.median(dices):.4f}, "
        f"min {np.min(dices):.4f}"
    )
    assert mean >= V7_VAL_MEAN_DICE_FLOOR
