"""CAM methods on a hand-built model whose evidence is known: it only sees the left half of the image; class 0 is
a bright spot in input channel 0, class 1 a bright spot in channel 1. Every method must put its map on the left
half and on the spot of the class asked for, and give the same maps every time."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from cxrzoo.explain import CAM, GradCAM, GradCAMPlusPlus, ScoreCAM, default_cam_layer, overlay, save_overlay
from cxrzoo.explain.cam import finish_maps, gap_dense_head

SIZE = 32
METHODS = [CAM, GradCAM, GradCAMPlusPlus, ScoreCAM]
SPOTS = [
    (slice(4, 10), slice(4, 10)),  # class 0 evidence (channel 0), top-left
    (slice(20, 26), slice(6, 12)),
]  # class 1 evidence (channel 1), bottom-left
DECOYS = [(slice(4, 10), slice(22, 28)), (slice(20, 26), slice(20, 26))]  # right half: ignored by the model


def evidence_model(classes: int = 2, activation: str | None = "softmax", name: str = "evidence"):
    """Input channels zeroed on the right half → 2×2 max-pool → identity 1×1 conv "target" (16×16) → GAP →
    Dense, with class 0 reading channel 0 (+40, channel 1 −40) and class 1 the reverse."""
    inputs = keras.Input((SIZE, SIZE, 2), name="image")
    left = np.zeros((1, SIZE, SIZE, 1), "float32")
    left[:, :, : SIZE // 2] = 1.0
    x = ops.multiply(inputs, left)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    target = keras.layers.Conv2D(2, 1, activation="relu", name="target")
    x = target(x)
    target.set_weights([np.eye(2, dtype="float32").reshape(1, 1, 2, 2), np.zeros(2, "float32")])
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    head = keras.layers.Dense(classes, activation=activation, name="pred")
    out = head(x)
    kernel = np.array([[40.0, -40.0], [-40.0, 40.0]], "float32")[:, :classes]
    head.set_weights([kernel, np.zeros(classes, "float32")])
    return keras.Model(inputs, out, name=name)


def images(n: int = 3, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(0.0, 0.1, (n, SIZE, SIZE, 2))
    for channel, (rows, cols) in enumerate(SPOTS):
        x[:, rows, cols, channel] = 1.0
    for rows, cols in DECOYS:
        x[:, rows, cols, :] = 1.0
    return x.astype("float32")


@pytest.fixture(scope="module")
def model():
    return evidence_model()


@pytest.fixture(scope="module")
def x():
    return images()


def _left_share(maps: np.ndarray) -> np.ndarray:
    return maps[:, :, : SIZE // 2].sum(axis=(1, 2)) / maps.sum(axis=(1, 2))


def _peak_in(maps: np.ndarray, region) -> bool:
    rows, cols = region
    for m in maps:
        r, c = np.unravel_index(np.argmax(m), m.shape)
        if not (rows.start - 1 <= r < rows.stop + 1 and cols.start - 1 <= c < cols.stop + 1):
            return False
    return True


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_maps_sit_on_the_evidence_half_and_follow_the_class(method, model, x):
    explainer = method(layer="target")
    first = explainer(model, x, class_index=0)
    second = explainer(model, x, class_index=1)
    for maps in (first, second):
        assert maps.shape == (3, SIZE, SIZE) and maps.dtype == np.float32
        assert maps.min() >= 0.0 and np.allclose(maps.max(axis=(1, 2)), 1.0)
        assert np.all(_left_share(maps) >= 0.9), _left_share(maps)
    # class_index changes the map, to that class's own evidence
    assert _peak_in(first, SPOTS[0]) and _peak_in(second, SPOTS[1])
    assert np.abs(first - second).max() > 0.5


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_deterministic_and_default_class_is_the_prediction(method, model, x):
    explainer = method(layer="target")
    first = explainer(model, x)
    np.testing.assert_array_equal(first, explainer(model, x))
    predicted = np.argmax(model.predict(x, verbose=0), axis=-1)
    np.testing.assert_array_equal(first, explainer(model, x, class_index=predicted))


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_one_unit_sigmoid_head(method, x):
    # the single unit is class 0's: channel 0 counts for it, channel 1 against it
    model = evidence_model(classes=1, activation="sigmoid", name="evidence_sigmoid")
    maps = method(layer="target")(model, x)
    assert np.all(_left_share(maps) >= 0.9) and _peak_in(maps, SPOTS[0])
    with pytest.raises(ValueError, match="out of range"):
        method(layer="target")(model, x, class_index=1)


def test_logit_output_head_gives_the_same_gradcam_as_softmax(model, x):
    linear = evidence_model(activation=None, name="evidence_logits")
    np.testing.assert_allclose(
        GradCAM(layer="target")(linear, x, class_index=1), GradCAM(layer="target")(model, x, class_index=1), atol=1e-5
    )


def test_lung_mask_restricts_the_map(model, x):
    mask = np.zeros((SIZE, SIZE), bool)
    mask[:16, :] = True  # top half only: class 0's spot survives, the rest is masked out
    maps = GradCAM(layer="target")(model, x, class_index=0, mask=mask)
    assert np.all(maps[:, 16:] == 0.0) and _peak_in(maps, SPOTS[0])
    per_image = np.repeat(mask[None], len(x), axis=0).astype("float32")
    np.testing.assert_array_equal(maps, GradCAM(layer="target")(model, x, class_index=0, mask=per_image))
    with pytest.raises(ValueError, match="mask"):
        GradCAM(layer="target")(model, x, mask=np.ones((8, 8), bool))


def test_single_image_and_bad_inputs(model, x):
    assert CAM(layer="target")(model, x[0]).shape == (1, SIZE, SIZE)
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GradCAM(layer="target")(model, bad)
    with pytest.raises(ValueError, match="class_index"):
        GradCAM(layer="target")(model, x, class_index=[0, 1])
    with pytest.raises(ValueError, match="no layer 'nope'"):
        GradCAM(layer="nope")(model, x)
    with pytest.raises(ValueError, match="max_n"):
        ScoreCAM(layer="target", max_n=0)


def test_faster_score_cam_keeps_the_strongest_channels(model, x):
    maps = ScoreCAM(layer="target", max_n=1)(model, x, class_index=0)
    assert np.all(_left_share(maps) >= 0.9)


def test_score_cam_clamps_max_n_to_the_layer_channels_with_a_warning(model, x):
    with pytest.warns(UserWarning, match=r"max_n=3 exceeds the 2 channels of target layer 'target'") as record:
        clamped = ScoreCAM(layer="target", max_n=3)(model, x, class_index=1)
    assert record[0].filename == __file__  # the warning points at the caller, not at cxrzoo
    np.testing.assert_array_equal(clamped, ScoreCAM(layer="target")(model, x, class_index=1))


@pytest.mark.parametrize("max_n", [None, 1])
@pytest.mark.parametrize("head", ["softmax", "sigmoid"])
def test_score_cam_equals_tf_keras_vis_scorecam(x, max_n, head):
    """The batched loop computes tf-keras-vis' Scorecam (the oracle), batch size 1 included."""
    from tf_keras_vis.scorecam import Scorecam

    from cxrzoo.explain.cam import _logits_model

    model = evidence_model(classes=2 if head == "softmax" else 1, activation=head, name=f"evidence_{head}")
    wrapper, _ = _logits_model(model)
    # one image at a time, as cxrzoo always ran it: tf-keras-vis' Faster Score-CAM over a batch keeps the union of
    # every image's top channels, not each image's own
    expected = [
        Scorecam(wrapper, clone=False)(
            lambda out: out[:, 1],  # class 1 of the softmax head; the sigmoid unit is column 1 of [0, z]
            x[i : i + 1],
            penultimate_layer="target",
            seek_penultimate_conv_layer=False,
            activation_modifier=None,
            expand_cam=False,
            normalize_cam=False,
            max_N=max_n,
        )
        for i in range(len(x))
    ]
    expected = np.concatenate(expected)
    target = model.get_layer("target")
    class_index = 1 if head == "softmax" else 0
    for batch_size in (1, 32):
        ours = ScoreCAM(layer="target", max_n=max_n, batch_size=batch_size).raw_maps(model, target, x, class_index)
        np.testing.assert_allclose(ours, np.asarray(expected), rtol=1e-5, atol=1e-6)


def test_score_cam_progress_bar_only_for_long_work(model, x, capsys):
    ScoreCAM(layer="target", progress_min=2)(model, x)  # 3 images × 2 channels = 6 masks > 2
    assert "Score-CAM" in capsys.readouterr().err
    ScoreCAM(layer="target", progress=False, progress_min=0)(model, x)
    ScoreCAM(layer="target")(model, x)  # 6 masks: under the default threshold
    assert "Score-CAM" not in capsys.readouterr().err


def test_cam_refuses_a_head_that_is_not_gap_dense():
    inputs = keras.Input((SIZE, SIZE, 2))
    features = keras.layers.Conv2D(4, 3, name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(features)
    x = keras.layers.Dense(5, activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    with pytest.raises(ValueError, match="use GradCAM"):
        CAM()(model, images(1))
    assert GradCAM()(model, images(1)).shape == (1, SIZE, SIZE)


def test_default_layer_from_registry_and_fallback(model):
    from cxrzoo.models.covid_xnet import build_covid_xnet

    assert default_cam_layer(build_covid_xnet(input_shape=(32, 32, 1))) == "conv5_act"
    assert default_cam_layer(model) == "target"  # unregistered name: last 4-D output
    assert gap_dense_head(model, model.get_layer("target")).name == "pred"


def test_finish_maps_normalization():
    raw = np.array([[[-1.0, 0.0], [1.0, 3.0]], [[0.0, 0.0], [0.0, 0.0]]], "float32")
    out = finish_maps(raw, (2, 2))
    np.testing.assert_allclose(out[0], [[0.0, 0.0], [1 / 3, 1.0]], atol=1e-6)
    assert np.all(out[1] == 0.0)  # an all-zero map stays zero, no division by zero
    assert finish_maps(raw, (4, 6)).shape == (2, 4, 6)


def test_overlay_and_png_figure(tmp_path, x):
    heat = np.zeros((SIZE, SIZE), "float32")
    heat[4:10, 4:10] = 1.0
    gray = (x[0, ..., 0] * 255).astype(np.uint8)
    gray[20, 20] = 101
    rgb = overlay(gray, heat, alpha=0.5)
    assert rgb.shape == (SIZE, SIZE, 3) and rgb.dtype == np.uint8
    from matplotlib import colormaps

    cold = np.asarray(colormaps["jet"](0.0)[:3])
    expected = np.floor((0.5 * gray[20, 20] / 255.0 + 0.5 * cold) * 255.0 + 0.5)
    np.testing.assert_array_equal(rgb[20, 20], expected)  # an alpha blend with the colour of 0
    hidden = overlay(gray, heat, alpha=0.5, threshold=0.5)
    assert np.array_equal(hidden[20, 20], [gray[20, 20]] * 3)  # below threshold: the image itself
    assert not np.array_equal(hidden[6, 6], [gray[6, 6]] * 3)
    path = save_overlay(tmp_path / "fig" / "cam.png", gray, {"Grad-CAM": heat, "CAM": heat[::2, ::2]}, title="test")
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["cam.png"]  # no temporary file left
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        overlay(gray, heat * 2)
    with pytest.raises(ValueError, match="PNG"):
        save_overlay(tmp_path / "cam.jpg", gray, heat)
