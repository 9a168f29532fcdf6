"""Each paper's training protocol as data: optimizer, loss, metrics, batch size, epochs, callbacks.

:func:`cxrzoo.training.fit_segmenter` and :func:`cxrzoo.training.fit_classifier` take ``recipe=<name>`` and use
these values unless an argument overrides them. ``print(training_recipe("cxrnet_module1"))`` shows one; each field
says where it comes from (``source``), and ``unstated`` lists what the paper leaves open and what was chosen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras


@dataclass(frozen=True)
class TrainingRecipe:
    """One paper's training protocol.

    Attributes:
        name, task: catalogue name; "segmentation" or "classification".
        optimizer: Keras optimizer class name (``"Adam"``, ``"Adadelta"``) and ``optimizer_kwargs`` its arguments
            (``learning_rate`` included).
        loss: a callable ``loss(model, class_weight) -> keras.losses.Loss`` (it sees the model to tell logits
            from probabilities, and the class weights for losses that take them).
        metrics: a callable ``metrics(model) -> list`` of Keras metrics.
        batch_size, epochs: the paper's values (global batch size, over all replicas).
        monitor: the quantity early stopping, LR reduction, checkpointing and best-weight restoring watch.
        early_stopping: None or ``dict(patience=..., min_delta=...)``.
        reduce_lr: None or ``dict(factor=..., patience=...)`` (ReduceLROnPlateau).
        class_weight: "balanced" (weights ``n / (k · n_c)`` from the training labels, passed to the loss or to
            ``fit``) or None.
        class_weight_in_loss: the loss takes the class weights itself (seed 2's weighted BCE) instead of ``fit``.
        augment: the :mod:`cxrzoo.data` augmentation preset the paper used, or None.
        source: where the numbers come from; unstated: what the paper leaves open and the choice made here.
    """

    name: str
    task: str
    optimizer: str
    optimizer_kwargs: dict
    loss: Callable[[Any, Any], Any]
    metrics: Callable[[Any], list]
    batch_size: int
    epochs: int
    monitor: str = "val_loss"
    early_stopping: dict | None = None
    reduce_lr: dict | None = None
    class_weight: str | None = None
    class_weight_in_loss: bool = False
    augment: str | None = None
    source: str = ""
    unstated: tuple[str, ...] = field(default_factory=tuple)

    def make_optimizer(self, learning_rate=None):
        """A fresh optimizer (one per model: optimizers hold per-variable state)."""
        kwargs = dict(self.optimizer_kwargs)
        if learning_rate is not None:
            kwargs["learning_rate"] = learning_rate
        return getattr(keras.optimizers, self.optimizer)(**kwargs)

    def replace(self, **changes) -> TrainingRecipe:
        """A copy with some fields changed, e.g. ``training_recipe("cxrnet_module1").replace(epochs=5)``."""
        return dataclasses.replace(self, **changes)

    def __str__(self) -> str:
        lines = [
            f"TrainingRecipe {self.name!r} ({self.task})",
            f"  optimizer: {self.optimizer}({', '.join(f'{k}={v}' for k, v in self.optimizer_kwargs.items())})",
            f"  batch {self.batch_size}, {self.epochs} epochs, monitor {self.monitor}",
            f"  early stopping: {self.early_stopping}, reduce LR: {self.reduce_lr}",
            f"  class weights: {self.class_weight}{' (in the loss)' if self.class_weight_in_loss else ''}, "
            f"augmentation: {self.augment}",
            f"  source: {self.source}",
        ]
        lines += [f"  not stated: {u}" for u in self.unstated]
        return "\n".join(lines)


def _outputs_probabilities(model) -> bool:
    """True when the model's last layer applies softmax or sigmoid (so losses take probabilities)."""
    layer = model.layers[-1]
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", str(activation))
    return name in ("softmax", "sigmoid")


def _tanimoto(model, class_weight):
    from cxrzoo.losses import WeightedTanimotoLoss

    return WeightedTanimotoLoss()


def _dice(model, class_weight):
    from cxrzoo.losses import DiceLoss

    return DiceLoss()


def _crossentropy(model, class_weight):
    # SMP-style models emit logits (activation=None); a sigmoid/softmax head gives probabilities.
    logits = not _outputs_probabilities(model)
    if model.output_shape[-1] == 1:
        return keras.losses.BinaryCrossentropy(from_logits=logits)
    return keras.losses.CategoricalCrossentropy(from_logits=logits)


def _smoothed(model, class_weight):
    from cxrzoo.losses import LabelSmoothingCrossentropy

    return LabelSmoothingCrossentropy(0.1, from_logits=not _outputs_probabilities(model))


def _weighted_bce(model, class_weight):
    from cxrzoo.losses import WeightedBinaryCrossentropy

    return WeightedBinaryCrossentropy(class_weight, from_logits=not _outputs_probabilities(model))


def _segmentation_metrics(model):
    from cxrzoo.losses import DiceCoefficient, TanimotoCoefficient

    return [TanimotoCoefficient(), DiceCoefficient(class_id=0, threshold=0.5, name="dice")]


def _classification_metrics(model):
    logits = not _outputs_probabilities(model)
    if model.output_shape[-1] == 1:
        return [
            keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0 if logits else 0.5),
            keras.metrics.AUC(name="auc", from_logits=logits),
        ]
    return [keras.metrics.CategoricalAccuracy(name="accuracy")]


_ADAM = dict(beta_1=0.9, beta_2=0.999, epsilon=1e-7)

RECIPES: dict[str, TrainingRecipe] = {
    r.name: r
    for r in (
        TrainingRecipe(
            "cxrnet_module1",
            "segmentation",
            "Adam",
            dict(learning_rate=1e-3, amsgrad=False, **_ADAM),
            _tanimoto,
            _segmentation_metrics,
            batch_size=12,
            epochs=100,
            early_stopping=dict(patience=200, min_delta=0.001),
            augment="cxrnet_module1",
            source="CXR-Net Module 1 (reference cxrnet.md §1.3, §5, §7): Adam() defaults, weighted Tanimoto loss with "
            "contour weights, metric tani_coeff, EarlyStopping(val_loss, patience 200, min_delta 0.001), "
            "ModelCheckpoint(best val_loss, weights only); V7 model batch 12, 100 epochs (JMS: batch 8, 300)",
        ),
        TrainingRecipe(
            "covid_cxnet_unet",
            "segmentation",
            "Adam",
            dict(learning_rate=2e-4, **_ADAM),
            _dice,
            _segmentation_metrics,
            batch_size=16,
            epochs=50,
            source="COVID-CXNet lung U-Net lineage (reference covid_cxnet_xnet.md §1.4): loss -Dice with smoothing 1, "
            "Adam 2e-4, batch 16, ModelCheckpoint on the best val_loss",
            unstated=("epochs (50 chosen)",),
        ),
        TrainingRecipe(
            "infection_detector_segmentation",
            "segmentation",
            "Adam",
            dict(learning_rate=1e-4, **_ADAM),
            _crossentropy,
            _segmentation_metrics,
            batch_size=4,
            epochs=40,
            early_stopping=dict(patience=8, min_delta=0.0),
            reduce_lr=dict(factor=0.2, patience=3),
            augment="tahir",
            source="Tahir thesis §3.2.2.1 and §4.1: cross-entropy, Adam 1e-4 (β 0.9/0.999), LR ÷5 after 3 epochs "
            "without val-loss improvement, early stopping after 8, batch 4, 40 epochs",
        ),
        TrainingRecipe(
            "cxrnet_module2",
            "classification",
            "Adam",
            dict(learning_rate=2e-3, amsgrad=True, **_ADAM),
            _crossentropy,
            _classification_metrics,
            batch_size=13,
            epochs=200,
            class_weight="balanced",
            augment="cxrnet_module2",
            source="CXR-Net Module 2 (reference cxrnet.md §5, §7): categorical cross-entropy with per-image class "
            "weights, Adam(lr 0.002, amsgrad), batch 13, 200 epochs per fold, 6 folds, best-val_loss "
            "checkpoint",
        ),
        TrainingRecipe(
            "covid_cxnet",
            "classification",
            "Adam",
            dict(learning_rate=1e-3, **_ADAM),
            _smoothed,
            _classification_metrics,
            batch_size=16,
            epochs=20,
            class_weight="balanced",
            augment="covid_cxnet",
            source="COVID-CXNet binary (reference covid_cxnet_xnet.md §1.5): BinaryCrossentropy(label_smoothing 0.1), "
            "Adam 1e-3, batch 16, 20 epochs, 'balanced' class weights, best-val_loss checkpoint",
        ),
        TrainingRecipe(
            "covid_cxnet_multiclass",
            "classification",
            "Adam",
            dict(learning_rate=2e-4, **_ADAM),
            _smoothed,
            _classification_metrics,
            batch_size=16,
            epochs=30,
            class_weight="balanced",
            augment="covid_cxnet_multiclass",
            source="COVID-CXNet 3-class (reference covid_cxnet_xnet.md §1.5): CategoricalCrossentropy(label_smoothing "
            "0.1), Adam 2e-4, batch 16, 30 epochs, 'balanced' class weights",
        ),
        TrainingRecipe(
            "covid_cxnet_base",
            "classification",
            "Adam",
            dict(learning_rate=1e-3, **_ADAM),
            _crossentropy,
            _classification_metrics,
            batch_size=32,
            epochs=150,
            early_stopping=dict(patience=10, min_delta=0.002),
            class_weight="balanced",
            augment="covid_cxnet_base",
            source="COVID-CXNet base CNN (reference covid_cxnet_xnet.md §1.5): BCE, Adam 1e-3, batch 32, 150 epochs, "
            "EarlyStopping(val_loss, patience 10, min_delta 0.002), 'balanced' class weights",
        ),
        TrainingRecipe(
            "covid_xnet",
            "classification",
            "Adadelta",
            dict(learning_rate=1.0, rho=0.95, epsilon=1e-7),
            _crossentropy,
            _classification_metrics,
            batch_size=32,
            epochs=100,
            class_weight="balanced",
            augment="covid_xnet",
            source="COVID-XNet §2.2.3: Adadelta, batch 32, Keras class_weight, stratified patient-disjoint 5-fold CV",
            unstated=(
                "learning rate (1.0: Adadelta as published by Zeiler and standalone Keras' default; tf.keras "
                "defaults to 0.001)",
                "epochs (100 chosen)",
                "loss (categorical cross-entropy for the softmax head)",
            ),
        ),
        TrainingRecipe(
            "screening",
            "classification",
            "Adam",
            dict(learning_rate=1e-3, **_ADAM),
            _weighted_bce,
            _classification_metrics,
            batch_size=32,
            epochs=100,
            early_stopping=dict(patience=20, min_delta=0.0),
            class_weight="balanced",
            class_weight_in_loss=True,
            augment="screening_baselines",
            source="Loconte & Colavito (seed 2): Adam defaults (lr 1e-4 for AlexNet and VGG16), weighted BCE with "
            "weights inversely proportional to the class frequencies, batch 32, at most 100 epochs, stop "
            "after 20 without val-loss improvement",
        ),
        TrainingRecipe(
            "infection_detector_classifier",
            "classification",
            "Adam",
            dict(learning_rate=1e-4, **_ADAM),
            _crossentropy,
            _classification_metrics,
            batch_size=4,
            epochs=40,
            early_stopping=dict(patience=8, min_delta=0.0),
            reduce_lr=dict(factor=0.2, patience=3),
            augment="tahir",
            source="Tahir thesis §3.2.3.1 and §4.1: cross-entropy, Adam 1e-4, LR ÷5 after 3 epochs without "
            "improvement, early stopping after 8, batch 4, 40 epochs",
        ),
    )
}


def list_training_recipes(task: str | None = None) -> list[str]:
    """Names of the training recipes, optionally only ``"segmentation"`` or ``"classification"`` ones."""
    return sorted(name for name, r in RECIPES.items() if task is None or r.task == task)


def training_recipe(name: str | TrainingRecipe) -> TrainingRecipe:
    """The :class:`TrainingRecipe` called ``name`` (a recipe passes through); ValueError listing the names."""
    if isinstance(name, TrainingRecipe):
        return name
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown training recipe {name!r}; choose one of {list_training_recipes()}") from None
