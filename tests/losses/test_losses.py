"""Losses against values computed by hand on tiny tensors, edge cases, gradients and serialization."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from cxrzoo import losses as L


def _t(values, shape):
    return np.asarray(values, dtype="float32").reshape(shape)


# y = [1, 0], p = [0.8, 0.4] as a (1, 1, 2, 1) "image":
#   direct:     Σyp = 0.8, Σ(y² + p² − yp) = 0.84 + 0.16 = 1.0                → (0.8 + 1)/(1.0 + 1) = 0.9
#   complement: y' = [0, 1], p' = [0.2, 0.6]: Σ = 0.6, Σ(...) = 0.04 + 0.76 = 0.8 → 1.6/1.8
Y2, P2 = _t([1, 0], (1, 1, 2, 1)), _t([0.8, 0.4], (1, 1, 2, 1))
TANIMOTO_BY_HAND = 0.5 * (0.9 + 1.6 / 1.8)


def test_tanimoto_with_complement_by_hand():
    assert float(L.tanimoto_coefficient(Y2, P2)) == pytest.approx(TANIMOTO_BY_HAND, abs=1e-6)
    assert float(L.tanimoto_coefficient(Y2, P2, complement=False)) == pytest.approx(0.9, abs=1e-6)
    # without smoothing: 0.8/1.0 and 0.6/0.8
    assert float(L.tanimoto_coefficient(Y2, P2, smooth=0.0)) == pytest.approx(0.5 * (0.8 + 0.75), abs=1e-6)


def test_dice_by_hand():
    # (2·0.8 + 1) / (1 + 1.2 + 1)
    assert float(L.dice_coefficient(Y2, P2)) == pytest.approx(2.6 / 3.2, abs=1e-6)
    assert float(L.DiceLoss()(Y2, P2)) == pytest.approx(1 - 2.6 / 3.2, abs=1e-6)
    # a weight map goes inside every sum: w = [3, 1] → (2·3·0.8 + 1)/(3 + 3·0.8 + 0.4 + 1)
    w = _t([3, 1], (1, 1, 2, 1))
    assert float(L.dice_coefficient(Y2, P2, w)) == pytest.approx(5.8 / 6.8, abs=1e-6)


def test_overlap_coefficients_are_symmetric_when_unweighted():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 6, 7, 2), dtype=np.float32), rng.random((2, 6, 7, 2), dtype=np.float32)
    for fn in (L.tanimoto_coefficient, L.dice_coefficient):
        assert float(fn(a, b)) == pytest.approx(float(fn(b, a)), rel=1e-6)


def test_contour_weights_by_hand():
    # One foreground pixel in the middle of a 5×5 image, 3×3 window: its 3×3 neighbourhood (9 pixels) has
    # pooled values 1/9 → border, weight 3; the 16 others pool to 0 → weight 1. Σ = 43, N = 25.
    y = np.zeros((1, 5, 5, 1), "float32")
    y[0, 2, 2, 0] = 1
    w = np.asarray(L.contour_weights(y, window=3))[0, ..., 0]
    expected = np.full((5, 5), (25 / 43) ** 2)
    expected[1:4, 1:4] = (3 * 25 / 43) ** 2
    np.testing.assert_allclose(w, expected, rtol=1e-6)
    assert np.sqrt(w).mean() == pytest.approx(1.0, rel=1e-6)


def _reference_contour_weights(y, window):
    """Independent loop implementation: the mean of the in-image part of each window, border band, mean 1, square."""
    b, h, wd, c = y.shape
    r = window // 2
    pooled = np.zeros_like(y)
    for i in range(h):
        for j in range(wd):
            pooled[:, i, j, :] = y[:, max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1, :].mean(axis=(1, 2))
    weight = 1 + 2 * ((pooled > 0.005) & (pooled < 0.995))
    return (weight / weight.mean()) ** 2


def test_contour_weights_match_an_independent_reference_and_ignore_padding():
    rng = np.random.default_rng(1)
    y = np.zeros((2, 12, 15, 2), "float32")
    y[0, 3:9, 2:10, 0] = 1
    y[1, 5:12, 6:15, 0] = rng.random((7, 9)) > 0.2
    y[..., 1] = 1 - y[..., 0]
    np.testing.assert_allclose(np.asarray(L.contour_weights(y, window=5)), _reference_contour_weights(y, 5), rtol=1e-5)
    # an all-ones or all-zeros mask has no border anywhere, in particular not along the image edges
    for const in (0.0, 1.0):
        np.testing.assert_allclose(np.asarray(L.contour_weights(np.full((1, 9, 9, 1), const, "float32"))), 1.0)


@pytest.mark.parametrize("side,window", [(150, 11), (151, 21), (300, 21), (301, 31), (600, 31), (601, 41)])
def test_contour_window_follows_the_authors_thresholds(side, window):
    assert L.contour_window(side, side + 40) == window
    assert L.contour_window(side + 40, side) == window


def test_weighted_tanimoto_matches_the_formula_with_reference_weights():
    rng = np.random.default_rng(2)
    y = np.zeros((2, 12, 15, 2), "float32")
    y[:, 3:9, 4:12, 0] = 1
    y[..., 1] = 1 - y[..., 0]
    p = np.clip(y + rng.normal(0, 0.3, y.shape), 0, 1).astype("float32")
    w = _reference_contour_weights(y, L.contour_window(12, 15))

    def t(y_, p_):
        return ((w * y_ * p_).sum() + 1) / ((w * (y_**2 + p_**2 - y_ * p_)).sum() + 1)

    expected = 1 - 0.5 * (t(y, p) + t(1 - y, 1 - p))
    assert float(L.weighted_tanimoto(y, p)) == pytest.approx(expected, rel=1e-5)
    assert float(L.WeightedTanimotoLoss()(y, p)) == pytest.approx(expected, rel=1e-5)
    # unweighted variant = 1 − tani_coeff
    assert float(L.WeightedTanimotoLoss(weighting=None)(y, p)) == pytest.approx(
        1 - float(L.tanimoto_coefficient(y, p)), rel=1e-6
    )


def test_sample_weight_scales_each_images_pixels():
    y = np.zeros((2, 8, 8, 1), "float32")
    y[0, 2:6, 2:6] = 1
    p = np.full_like(y, 0.3)
    # zero weight on image 1 = evaluating image 0 alone, with image 0's own contour normalization rescaled away
    only_first = float(L.WeightedTanimotoLoss(weighting=None)(y, p, sample_weight=np.array([1.0, 0.0])))
    assert only_first == pytest.approx(float(L.WeightedTanimotoLoss(weighting=None)(y[:1], p[:1])), rel=1e-6)


@pytest.mark.parametrize("loss", [L.WeightedTanimotoLoss(), L.DiceLoss(), L.DiceLoss(weighting="contour")])
def test_perfect_predictions_and_empty_masks(loss):
    y = np.zeros((2, 10, 10, 2), "float32")
    y[0, 2:7, 3:8, 0] = 1
    y[..., 1] = 1 - y[..., 0]
    assert float(loss(y, y)) == pytest.approx(0.0, abs=1e-6)
    empty = np.zeros((1, 10, 10, 1), "float32")
    assert float(loss(empty, empty)) == pytest.approx(0.0, abs=1e-6)  # smoothing: nothing to find, nothing found
    assert float(loss(empty, np.ones_like(empty))) > 0.9  # everything found where nothing is


def test_tanimoto_of_an_empty_truth_against_a_full_prediction_by_hand():
    # 100 pixels, y = 0, p = 1: direct (0 + 1)/(100 + 1); complement y' = 1, p' = 0: (0 + 1)/(100 + 1)
    empty = np.zeros((1, 10, 10, 1), "float32")
    assert float(L.tanimoto_coefficient(empty, np.ones_like(empty))) == pytest.approx(1 / 101, rel=1e-6)


@pytest.mark.parametrize("loss", [L.WeightedTanimotoLoss(), L.DiceLoss(), L.DiceLoss(weighting="contour")])
def test_gradients_are_finite_at_the_extremes(loss):
    y = np.zeros((2, 10, 10, 1), "float32")
    y[0, 2:7, 3:8] = 1  # image 1 stays all-zero
    for p0 in (np.zeros_like(y), np.ones_like(y), y.copy()):
        p = tf.Variable(p0)
        with tf.GradientTape() as tape:
            value = loss(tf.constant(y), p)
        grad = tape.gradient(value, p).numpy()
        assert np.isfinite(grad).all() and np.isfinite(float(value))


def test_segmentation_losses_reject_bad_shapes():
    with pytest.raises(ValueError, match="B, H, W, C"):
        L.WeightedTanimotoLoss()(np.zeros((4, 4), "float32"), np.zeros((4, 4), "float32"))
    with pytest.raises(ValueError, match="shapes differ"):
        L.DiceLoss()(np.zeros((1, 4, 4, 1), "float32"), np.zeros((1, 4, 5, 1), "float32"))
    with pytest.raises(ValueError, match="weighting"):
        L.WeightedTanimotoLoss(weighting="volume")


def test_weighted_binary_crossentropy_by_hand():
    y = np.array([[1.0], [0.0]], "float32")
    p = np.array([[0.8], [0.4]], "float32")
    loss = L.WeightedBinaryCrossentropy({0: 0.5, 1: 2.0})
    expected = (-2.0 * math.log(0.8) - 0.5 * math.log(0.6)) / 2
    assert float(loss(y, p)) == pytest.approx(expected, rel=1e-5)
    logits = np.log(p / (1 - p))
    assert float(L.WeightedBinaryCrossentropy([0.5, 2.0], from_logits=True)(y, logits)) == pytest.approx(
        expected, rel=1e-5
    )
    # labels (B,) work too; per-sample values with reduction=None
    per_sample = L.WeightedBinaryCrossentropy({0: 0.5, 1: 2.0}, reduction=None)(y[:, 0], p)
    np.testing.assert_allclose(np.asarray(per_sample), [-2 * math.log(0.8), -0.5 * math.log(0.6)], rtol=1e-5)
    with pytest.raises(ValueError, match="one output"):
        loss(np.eye(2, dtype="float32"), np.full((2, 2), 0.5, "float32"))
    with pytest.raises(ValueError, match="positive"):
        L.WeightedBinaryCrossentropy({0: 0.0, 1: 1.0})


def test_label_smoothing_crossentropy_by_hand_and_against_keras():
    # 3 classes, ε = 0.1: targets [0.1/3, 0.9 + 0.1/3, 0.1/3]
    y = np.array([[0.0, 1.0, 0.0]], "float32")
    p = np.array([[0.2, 0.7, 0.1]], "float32")
    eps = 0.1 / 3
    expected = -(eps * math.log(0.2) + (0.9 + eps) * math.log(0.7) + eps * math.log(0.1))
    assert float(L.LabelSmoothingCrossentropy(0.1)(y, p)) == pytest.approx(expected, rel=1e-5)
    rng = np.random.default_rng(3)
    pc = rng.dirichlet(np.ones(3), 8).astype("float32")
    yc = np.eye(3, dtype="float32")[rng.integers(0, 3, 8)]
    assert float(L.LabelSmoothingCrossentropy(0.1)(yc, pc)) == pytest.approx(
        float(keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(yc, pc)), rel=1e-5
    )
    pb = rng.random((8, 1)).astype("float32")
    yb = (rng.random((8, 1)) > 0.5).astype("float32")
    assert float(L.LabelSmoothingCrossentropy(0.1)(yb, pb)) == pytest.approx(
        float(keras.losses.BinaryCrossentropy(label_smoothing=0.1)(yb, pb)), rel=1e-5
    )
    # class weights pick the weight of each sample's true class
    cw = [0.7712, 0.8095, 2.1368]
    per_sample = np.asarray(L.LabelSmoothingCrossentropy(0.1, reduction=None)(yc, pc))
    weighted = float(L.LabelSmoothingCrossentropy(0.1, class_weight=cw)(yc, pc))
    assert weighted == pytest.approx(np.mean(per_sample * np.asarray(cw)[yc.argmax(1)]), rel=1e-5)
    with pytest.raises(ValueError, match="entries for 3 classes"):
        L.LabelSmoothingCrossentropy(0.1, class_weight=[1.0, 2.0])(yc, pc)


def test_pooled_metrics_equal_the_batch_formula_on_the_concatenation():
    rng = np.random.default_rng(4)
    y = (rng.random((4, 8, 9, 2)) > 0.5).astype("float32")
    p = rng.random((4, 8, 9, 2)).astype("float32")
    tani, dice = L.TanimotoCoefficient(), L.DiceCoefficient()
    for m in (tani, dice):
        m.update_state(y[:1], p[:1])
        m.update_state(y[1:], p[1:])
    assert float(tani.result()) == pytest.approx(float(L.tanimoto_coefficient(y, p)), rel=1e-5)
    assert float(dice.result()) == pytest.approx(float(L.dice_coefficient(y, p)), rel=1e-5)
    hard = L.DiceCoefficient(threshold=0.5, class_id=0, smooth=0.0)
    hard.update_state(y, p)
    yb, pb = y[..., 0], (p[..., 0] > 0.5)
    assert float(hard.result()) == pytest.approx(2 * (yb * pb).sum() / (yb.sum() + pb.sum()), rel=1e-5)
    tani.reset_state()
    tani.update_state(y, y)
    assert float(tani.result()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "obj",
    [
        L.WeightedTanimotoLoss(window=7),
        L.DiceLoss(weighting="contour", smooth=0.5),
        L.WeightedBinaryCrossentropy({0: 0.25, 1: 3.0}, from_logits=True),
        L.LabelSmoothingCrossentropy(0.2, class_weight=[1.0, 2.0, 3.0]),
    ],
)
def test_losses_round_trip_through_keras_serialization(obj):
    restored = keras.losses.deserialize(keras.losses.serialize(obj))
    assert type(restored) is type(obj) and restored.get_config() == obj.get_config()


def test_a_compiled_model_with_cxrzoo_loss_and_metrics_reloads_safely(tmp_path):
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Conv2D(2, 3, padding="same", activation="softmax")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer="adam",
        loss=L.WeightedTanimotoLoss(),
        metrics=[L.TanimotoCoefficient(), L.DiceCoefficient(class_id=0, threshold=0.5)],
    )
    y = np.zeros((2, 8, 8, 2), "float32")
    y[:, 2:6, 2:6, 0] = 1
    y[..., 1] = 1 - y[..., 0]
    model.fit(np.random.default_rng(0).random((2, 8, 8, 1)), y, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras", compile=True, safe_mode=True)
    assert isinstance(reloaded.loss, L.WeightedTanimotoLoss)
    result = reloaded.evaluate(np.zeros((2, 8, 8, 1)), y, verbose=0, return_dict=True)
    assert set(result) >= {"loss", "tanimoto", "dice"}
