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

from cxrzoo import losses
from cxrzoo.catalog import Catalog


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
        class_weight_in_loss: the loss takes the class weights itself (the screening baselines' weighted BCE) instead
            of ``fit``.
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

    def make_optimizer(
        self, learning_rate: float | keras.optimizers.schedules.LearningRateSchedule | None = None
    ) -> keras.optimizers.Optimizer:
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


def _outputs_probabilities(model: keras.Model) -> bool:
    """True when the model's last layer applies softmax or sigmoid (so losses take probabilities)."""
    layer = model.layers[-1]
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", str(activation))
    return name in ("softmax", "sigmoid")


def tanimoto_loss(model: keras.Model, class_weight: dict[int, float] | None) -> keras.losses.Loss:
    return losses.WeightedTanimotoLoss()


def dice_loss(model: keras.Model, class_weight: dict[int, float] | None) -> keras.losses.Loss:
    return losses.DiceLoss()


def crossentropy_loss(model: keras.Model, class_weight: dict[int, float] | None) -> keras.losses.Loss:
    # SMP-style models emit logits (activation=None); a sigmoid/softmax head gives probabilities.
    logits = not _outputs_probabilities(model)
    if model.output_shape[-1] == 1:
        return keras.losses.BinaryCrossentropy(from_logits=logits)
    return keras.losses.CategoricalCrossentropy(from_logits=logits)


def smoothed_crossentropy_loss(model: keras.Model, class_weight: dict[int, float] | None) -> keras.losses.Loss:
    return losses.LabelSmoothingCrossentropy(0.1, from_logits=not _outputs_probabilities(model))


def weighted_bce_loss(model: keras.Model, class_weight: dict[int, float] | None) -> keras.losses.Loss:
    return losses.WeightedBinaryCrossentropy(class_weight, from_logits=not _outputs_probabilities(model))


def segmentation_metrics(model: keras.Model) -> list[keras.metrics.Metric]:
    return [losses.TanimotoCoefficient(), losses.DiceCoefficient(class_id=0, threshold=0.5, name="dice")]


def classification_metrics(model: keras.Model) -> list[keras.metrics.Metric]:
    logits = not _outputs_probabilities(model)
    if model.output_shape[-1] == 1:
        return [
            keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0 if logits else 0.5),
            keras.metrics.AUC(name="auc", from_logits=logits),
        ]
    return [keras.metrics.CategoricalAccuracy(name="accuracy")]


#: Adam's Keras defaults, which the papers' "Adam()" calls used.
ADAM = dict(beta_1=0.9, beta_2=0.999, epsilon=1e-7)

RECIPES: Catalog[TrainingRecipe] = Catalog("training recipe")


def register_training_recipe(recipe: TrainingRecipe, *, aliases: tuple[str, ...] = ()) -> TrainingRecipe:
    """Registers a paper's training protocol under its name (each paper's folder does this)."""
    return RECIPES.register(recipe.name, recipe, aliases=aliases)


def list_training_recipes(task: str | None = None) -> list[str]:
    """Names of the training recipes, optionally only ``"segmentation"`` or ``"classification"`` ones."""
    return [name for name, r in RECIPES.items() if task is None or r.task == task]


def training_recipe(name: str | TrainingRecipe) -> TrainingRecipe:
    """The :class:`TrainingRecipe` called ``name`` (a recipe passes through); ValueError listing the names."""
    if isinstance(name, TrainingRecipe):
        return name
    return RECIPES.get(name)
