"""custom_fit, the loop the fit functions use under MultiWorkerMirroredStrategy, against Keras' own Model.fit.

The multi-device comparisons run in fresh processes (test_distribute.py); these check, on one device, that the
custom loop sees the same logs, class weights and callbacks as ``Model.fit``."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf

from cxrzoo.training import fit_classifier, fit_segmenter, with_class_weights


def _classifier():
    keras.utils.set_random_seed(4)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(hidden))


def _three_classes():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(30, int), np.ones(12, int), np.full(6, 2)]
    return (rng.normal(size=(48, 4)) + y[:, None]).astype("float32"), y


def test_with_class_weights_weighs_each_sample_by_its_class():
    y = np.eye(3, dtype="float32")[[0, 2, 1, 2]]
    ds = tf.data.Dataset.from_tensors((np.zeros((4, 2), "float32"), y, np.array([1, 1, 2, 1], "float32")))
    _, _, w = next(iter(with_class_weights(ds, {0: 0.5, 1: 3.0, 2: 2.0})))
    np.testing.assert_allclose(w, [0.5, 2.0, 6.0, 2.0])
    binary = tf.data.Dataset.from_tensors((np.zeros((3, 2), "float32"), np.array([[1.0], [0.0], [1.0]], "float32")))
    _, _, w = next(iter(with_class_weights(binary, {0: 0.25, 1: 4.0})))
    np.testing.assert_allclose(w, [4.0, 0.25, 4.0])


def _run(loop, folder):
    # Unshuffled: a seeded reshuffling pipeline gives each loop another (equally valid) order of batches.
    x, y = _three_classes()
    train = tf.data.Dataset.from_tensor_slices((x, np.eye(3, dtype="float32")[y])).batch(16)
    return fit_classifier(
        _classifier(),
        train,
        train.take(1),
        recipe="covid_cxnet_multiclass",
        epochs=6,
        class_weight={0: 0.5, 1: 1.5, 2: 3.0},
        seed=0,
        verbose=0,
        early_stopping=dict(patience=1, min_delta=10.0),  # no epoch improves enough: stops at 2
        output_dir=folder,
        loop=loop,
    )


def test_the_custom_loop_gives_the_run_model_fit_gives(tmp_path):
    theirs, ours = _run("keras", tmp_path / "keras"), _run("custom", tmp_path / "custom")
    assert len(ours.history["loss"]) == len(theirs.history["loss"]) == 2  # early stopping acted in both
    assert set(ours.history) == set(theirs.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    for key, values in theirs.history.items():  # class weights, metrics and validation included
        assert ours.history[key] == pytest.approx(values, rel=1e-5), key
    assert ours.checkpoint is not None and ours.checkpoint.exists()
    with open(ours.history_csv) as f:
        assert [float(row["loss"]) for row in csv.DictReader(f)] == pytest.approx(ours.history["loss"], rel=1e-6)
    for a, b in zip(ours.model.get_weights(), theirs.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_custom_loop_honours_steps_and_refuses_unknown_loops():
    x = np.random.default_rng(0).random((12, 16, 16, 1)).astype("float32")
    y = np.concatenate([x > 0.5, x <= 0.5], axis=-1).astype("float32")
    seg = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(2, 3, padding="same", activation="softmax")])
    result = fit_segmenter(
        seg, (x, y), epochs=2, batch_size=4, augment=None, steps_per_epoch=1, verbose=0, loop="custom"
    )
    assert len(result.history["loss"]) == 2 and np.isfinite(result.history["loss"]).all()
    with pytest.raises(ValueError, match="loop must be"):
        fit_segmenter(seg, (x, y), epochs=1, batch_size=4, augment=None, loop="horovod")
