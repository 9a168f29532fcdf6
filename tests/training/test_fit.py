"""fit_segmenter / fit_classifier: recipes, callbacks, files, best weights, class weights, label handling."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest

import cxrzoo
from cxrzoo.losses import WeightedBinaryCrossentropy, WeightedTanimotoLoss
from cxrzoo.training import fit_classifier, fit_segmenter, list_training_recipes, prepare_labels, training_recipe


def _ellipses(n, seed, size=(24, 28)):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: size[0], : size[1]]
    x = rng.normal(0.3, 0.1, (n, *size, 1)).astype("float32")
    y = np.zeros((n, *size, 2), "float32")
    for i in range(n):
        cy, cx = rng.uniform(8, size[0] - 8), rng.uniform(9, size[1] - 9)
        inside = ((yy - cy) / rng.uniform(4, 7)) ** 2 + ((xx - cx) / rng.uniform(4, 8)) ** 2 <= 1
        x[i, inside, 0] += 0.5
        y[i, ..., 0] = inside
    y[..., 1] = 1 - y[..., 0]
    return x, y


def test_fit_segmenter_trains_keeps_the_best_weights_and_writes_its_files(tmp_path):
    keras.utils.set_random_seed(0)
    model = cxrzoo.build_res_cr_net(input_shape=(24, 28, 1), filters=4, conv_blocks=2)
    result = fit_segmenter(
        model,
        _ellipses(16, 0),
        _ellipses(8, 1),
        epochs=3,
        batch_size=8,
        learning_rate=1e-2,
        augment=None,
        output_dir=tmp_path,
        seed=1,
        verbose=0,
    )
    h = result.history
    assert {"loss", "val_loss", "tanimoto", "dice", "val_dice", "val_tanimoto"} <= set(h)
    assert h["loss"][-1] < h["loss"][0]
    assert isinstance(result.model.loss, WeightedTanimotoLoss)  # Module 1's protocol
    assert result.best_epoch == int(np.argmin(h["val_loss"])) + 1 and result.monitor == "val_loss"
    assert result.best["val_loss"] == min(h["val_loss"]) and len(result.epoch_seconds) == 3
    with open(result.history_csv) as f:
        rows = list(csv.DictReader(f))
    assert [float(r["loss"]) for r in rows] == pytest.approx(h["loss"], rel=1e-6)
    # the model ends with the best epoch's weights, which are also the checkpoint's
    best = cxrzoo.build_res_cr_net(input_shape=(24, 28, 1), filters=4, conv_blocks=2)
    best.load_weights(result.checkpoint)
    for a, b in zip(best.weights, result.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_recipes_carry_the_papers_numbers():
    m1 = training_recipe("cxrnet_module1")
    assert (m1.optimizer, m1.optimizer_kwargs["learning_rate"], m1.batch_size, m1.epochs) == ("Adam", 1e-3, 12, 100)
    assert m1.early_stopping == {"patience": 200, "min_delta": 0.001} and m1.augment == "cxrnet_module1"
    m2 = training_recipe("cxrnet_module2")
    assert m2.optimizer_kwargs["learning_rate"] == 2e-3 and m2.optimizer_kwargs["amsgrad"] is True
    assert (m2.batch_size, m2.epochs, m2.class_weight) == (13, 200, "balanced")
    assert training_recipe("covid_cxnet").batch_size == 16
    thesis = training_recipe("infection_detector_classifier")
    assert thesis.reduce_lr == {"factor": 0.2, "patience": 3} and thesis.early_stopping["patience"] == 8
    assert "cxrnet_module1" in list_training_recipes("segmentation")
    assert "screening" in list_training_recipes("classification")
    for name in list_training_recipes():
        rec = training_recipe(name)
        assert isinstance(rec.make_optimizer(), keras.optimizers.Optimizer) and rec.source
        assert name in str(rec)
    with pytest.raises(ValueError, match="unknown training recipe"):
        training_recipe("cxrnet")
    with pytest.raises(ValueError, match="classification recipe"):
        fit_segmenter(lambda: None, (None, None), recipe="covid_cxnet")


def _dense_classifier(classes, activation):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(classes, activation=activation)(hidden))


def test_fit_classifier_balanced_class_weights_and_recipes():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(30, int), np.ones(12, int), np.full(6, 2)]
    x = (rng.normal(size=(48, 4)) + y[:, None]).astype("float32")
    result = fit_classifier(
        _dense_classifier(3, "softmax"),
        (x, y),
        (x, y),
        recipe="covid_cxnet_multiclass",
        epochs=2,
        augment=None,
        verbose=0,
    )
    assert result.class_weight == pytest.approx({0: 48 / 90, 1: 48 / 36, 2: 48 / 18})
    assert set(result.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    # seed 2's weighted BCE takes the class weights inside the loss (and fit gets none)
    yb = (y > 0).astype(int)
    screened = fit_classifier(
        _dense_classifier(1, "sigmoid"), (x, yb), recipe="screening", epochs=1, augment=None, verbose=0
    )
    assert isinstance(screened.model.loss, WeightedBinaryCrossentropy)
    assert screened.model.loss.class_weight == pytest.approx([48 / 60, 48 / 36])
    assert screened.monitor == "loss"  # no validation data: the training loss is watched


def test_prepare_labels_matches_the_head():
    two = _dense_classifier(2, "softmax")
    np.testing.assert_array_equal(prepare_labels([1, 0, 1], two), [[0, 1], [1, 0], [0, 1]])
    np.testing.assert_array_equal(prepare_labels(np.eye(2)[[1, 0]], two), [[0, 1], [1, 0]])
    one = _dense_classifier(1, "sigmoid")
    assert prepare_labels([1, 0], one).shape == (2, 1)
    with pytest.raises(ValueError, match="0..1"):
        prepare_labels([0, 2], two)
    with pytest.raises(ValueError, match="0/1 labels"):
        prepare_labels(np.eye(2), one)


def test_fit_rejects_what_it_cannot_train():
    with pytest.raises(TypeError, match="zero-argument builder"):
        fit_classifier("model", (np.zeros((2, 4)), np.zeros(2)))
    with pytest.raises(TypeError, match="tf.data.Dataset or a tuple"):
        fit_classifier(_dense_classifier(2, "softmax"), np.zeros((2, 4)), epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        fit_classifier(_dense_classifier(2, "softmax"), (np.zeros((2, 4)), np.zeros(2)), epochs=0)
