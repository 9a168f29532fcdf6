"""CXR-Net heat maps: the authors' recipe (reference §6), its difference-map property, batches, determinism."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from cxrzoo.models.cxrnet import (
    build_cxrnet_classifier,
    cxrnet_figure,
    cxrnet_heatmaps,
    cxrnet_heatmaps_at_size,
    cxrnet_scores,
)

SAMPLE = ("fixtures", "cxrnet", "sample")


@pytest.fixture
def model(published_cxrnet, shared_weights):
    return published_cxrnet


@pytest.fixture
def images(cxrnet_sample_image):
    """The authors' equalized sample and its mirror image, (2, 300, 340) float32 in 0..255."""
    return np.stack([cxrnet_sample_image, cxrnet_sample_image[:, ::-1]])


def _authors_recipe(feature_map, probabilities, mask):
    """reference §6 with OpenCV: Grad-CAM weights ±p0·p1/(h·w), no ReLU, cv2.resize, min-max inside M > 0.3."""
    import cv2

    p0, p1 = probabilities
    h, w = feature_map.shape[:2]
    cam = (p0 * p1 / (h * w)) * (feature_map[..., 0] - feature_map[..., 1])
    up = cv2.resize(cam.astype(np.float32), (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_LINEAR)
    inside = mask > 0.3
    values = up[inside]
    return np.where(inside, (up - values.min()) / (values.max() - values.min()), 0.0), inside


def test_maps_follow_the_authors_recipe(model, images):
    maps = cxrnet_heatmaps(model, images[:1])
    assert {k: v.shape for k, v in maps.items()} == {
        "positive": (1, 300, 340),
        "negative": (1, 300, 340),
        "difference": (1, 300, 340),
        "mask": (1, 300, 340),
        "probabilities": (1, 2),
        "member_probabilities": (1, 6, 2),
        "class_maps": (1, 300, 340, 2),
        "lung_mask": (1, 300, 340),
    }
    out = {k: v.numpy() for k, v in model(images[:1, ..., None], training=False).items()}
    expected, inside = _authors_recipe(out["feature_map"][0], out["probabilities"][0], out["mask"][0, ..., 0])
    np.testing.assert_array_equal(maps["mask"][0], inside)
    np.testing.assert_allclose(maps["positive"][0], expected, atol=1e-5)
    np.testing.assert_allclose(maps["probabilities"], out["probabilities"], atol=1e-6)
    assert maps["positive"][0][inside].min() == 0.0 and maps["positive"][0][inside].max() == 1.0


def test_scores_without_maps_are_the_same_and_each_member_is_its_own_head(model, images):
    import keras

    maps = cxrnet_heatmaps(model, images)
    scores = cxrnet_scores(model, images)
    np.testing.assert_array_equal(scores["probabilities"], maps["probabilities"])
    np.testing.assert_array_equal(scores["member_probabilities"], maps["member_probabilities"])
    np.testing.assert_array_equal(scores["lung_mask"], maps["lung_mask"])
    assert scores["has_lungs"].tolist() == [True, True]
    # member k's probability is its own head, softmax(GAP(its masked map)), on the end-to-end model's features
    member = model.get_layer("member2")
    features = keras.Model(model.inputs[0], model.get_layer("wst_features").output)(images[..., None])
    masked = member(features, training=False).numpy()
    logits = masked.mean(axis=(1, 2))
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(scores["member_probabilities"][:, 2], expected, atol=1e-5)
    np.testing.assert_allclose(scores["member_probabilities"].sum(axis=-1), 1.0, atol=1e-5)


def test_maps_at_another_size_follow_the_same_definition(model, images):
    maps = cxrnet_heatmaps(model, images)
    same = cxrnet_heatmaps_at_size(maps, 1, (300, 340))
    for key in ("positive", "negative", "difference", "mask"):
        np.testing.assert_allclose(same[key][0], maps[key][1], atol=1e-6)
    big = cxrnet_heatmaps_at_size(maps, 0, (512, 431))
    inside = big["mask"][0]
    assert big["positive"].shape == (1, 512, 431) and abs(inside.mean() - maps["mask"][0].mean()) < 0.01
    np.testing.assert_allclose(big["difference"][0][inside], 2 * big["positive"][0][inside] - 1, atol=1e-5)
    assert not big["difference"][0][~inside].any()
    assert big["positive"][0][inside].min() == 0.0 and big["positive"][0][inside].max() == 1.0


def test_difference_is_twice_the_positive_map_minus_one_inside_the_mask(model, images):
    maps = cxrnet_heatmaps(model, images)
    for i in range(2):
        inside = maps["mask"][i]
        assert inside.sum() > 20_000
        np.testing.assert_allclose(maps["difference"][i][inside], 2 * maps["positive"][i][inside] - 1, atol=1e-5)
        np.testing.assert_allclose(maps["negative"][i][inside], 1 - maps["positive"][i][inside], atol=1e-5)
        for key in ("positive", "negative", "difference"):
            assert not maps[key][i][~inside].any()


def test_one_batch_equals_image_by_image_and_is_deterministic(model, images):
    batch = cxrnet_heatmaps(model, images)
    again = cxrnet_heatmaps(model, images)
    for key in ("positive", "negative", "difference", "mask", "probabilities"):
        np.testing.assert_array_equal(batch[key], again[key])
    single = cxrnet_heatmaps(model, images[1:, ..., None])
    np.testing.assert_allclose(batch["difference"][1], single["difference"][0], atol=1e-5)


# Module 2 with XLA (Module 1 on TF kernels); everything with XLA (a minute of compiling: slow tier)
@pytest.mark.parametrize("jit_compile", [True, pytest.param("all", marks=pytest.mark.slow)])
def test_xla_gives_the_same_maps_deterministically(model, images, jit_compile):
    # three images: padded to the batch size 4 that XLA compiles for
    batch = np.concatenate([images, images[:1]])
    compiled = cxrnet_heatmaps(model, batch, jit_compile=jit_compile)
    again = cxrnet_heatmaps(model, batch, jit_compile=jit_compile)
    reference = cxrnet_heatmaps(model, batch)
    assert compiled["difference"].shape == (3, 300, 340)
    for key in ("positive", "difference", "probabilities"):
        np.testing.assert_array_equal(compiled[key], again[key])
        np.testing.assert_allclose(compiled[key], reference[key], atol=1e-4)
    np.testing.assert_array_equal(compiled["mask"], reference["mask"])


# the copy is made by the same code in both modes; the XLA mode's maps are checked above (its run here: slow tier)
@pytest.mark.parametrize("jit_compile", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_the_inference_copy_of_module1_follows_its_weights(shared_weights, images, jit_compile):
    # Both modes run a folded, polyphase copy of Module 1: it must equal the model's own forward pass and be
    # rebuilt when Module 1's weights change (fine-tuning)
    from cxrzoo.models.cxrnet import build_cxrnet

    model = build_cxrnet()

    def own_forward():
        out = model(np.asarray(images, np.float32)[..., None], training=False)
        return out["lung_mask"].numpy()[..., 0], out["probabilities"].numpy()

    before = cxrnet_heatmaps(model, images, jit_compile=jit_compile)
    lungs, probabilities = own_forward()
    np.testing.assert_allclose(before["lung_mask"], lungs, atol=1e-5)
    np.testing.assert_allclose(before["probabilities"], probabilities, atol=1e-5)
    bn = model.get_layer("module1").get_layer("block1_branch2_bn")
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights([gamma, beta + 0.5, mean, var])
    after = cxrnet_heatmaps(model, images, jit_compile=jit_compile)
    lungs, probabilities = own_forward()
    assert np.abs(after["lung_mask"] - before["lung_mask"]).max() > 1e-3
    np.testing.assert_allclose(after["lung_mask"], lungs, atol=1e-4)
    np.testing.assert_allclose(after["probabilities"], probabilities, atol=1e-4)


def test_unknown_jit_modes_are_refused(model, images):
    with pytest.raises(ValueError, match="jit_compile must be"):
        cxrnet_heatmaps(model, images, jit_compile="module1")


def test_classifier_inputs_and_the_h5_mask(shared, shared_weights):
    with h5py.File(shared(*SAMPLE, "002130-004-1.h5"), "r") as h5:
        x, m = h5["X"][...][None].astype("float32"), h5["M"][...][None].astype("float32")
    classifier = build_cxrnet_classifier(weights="cxrnet_classifier.hfhs_ensemble6")
    maps = cxrnet_heatmaps(classifier, [x, m])
    assert int(maps["mask"][0].sum()) == 24_792  # pixels with M > 0.3 in the authors' file (reference §3)
    np.testing.assert_allclose(maps["probabilities"][0], [0.93871009, 0.06128994], atol=1e-5)
    inside = maps["mask"][0]
    np.testing.assert_allclose(maps["difference"][0][inside], 2 * maps["positive"][0][inside] - 1, atol=1e-5)


def test_empty_lungs_and_bad_input(model, images):
    black = np.zeros((1, 300, 340), "float32")  # the intensity gate removes every pixel
    with pytest.raises(ValueError, match=r"no lung found in image\(s\) \[1\]"):
        cxrnet_heatmaps(model, np.concatenate([images[:1], black]))
    maps = cxrnet_heatmaps(model, np.concatenate([images[:1], black]), empty="zeros")
    assert maps["mask"][0].any() and not maps["mask"][1].any() and not maps["difference"][1].any()
    with pytest.raises(ValueError, match="0..255"):
        cxrnet_heatmaps(model, images[:1] / 255.0 - 1.0)
    with pytest.raises(ValueError, match="300"):
        cxrnet_heatmaps(model, np.zeros((1, 64, 64), "float32"))
    with pytest.raises(ValueError, match="finite"):
        cxrnet_heatmaps(model, np.full((1, 300, 340), np.nan, "float32"))
    with pytest.raises(ValueError, match="empty"):
        cxrnet_heatmaps(model, images[:1], empty="skip")


def test_figure_has_the_authors_four_panels(model, images):
    maps = cxrnet_heatmaps(model, images[:1])
    figure = cxrnet_figure(images[0], maps, 0, title="002130-004-1")
    titles = [ax.get_title() for ax in figure.axes]
    p = maps["probabilities"][0]
    assert titles == ["002130-004-1", f"Positive score: {p[0]:.3f}", f"Negative score: {p[1]:.3f}", "DIFFERENCE MAP"]
    difference = figure.axes[3].images[1]
    assert difference.norm.vmin == -1.0 and difference.norm.vmax == 1.0
    assert difference.get_alpha() == pytest.approx(min(0.5, abs(p[0] - p[1])))
