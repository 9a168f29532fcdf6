"""``fit_segmenter`` and ``fit_classifier``: one call trains a zoo model the way its paper did.

Both take a model (or a zero-argument builder, needed under a multi-replica strategy), training data and optional
validation data, and a training recipe (:mod:`cxrzoo.training.recipes`) whose values any argument overrides. Data is
a ``tf.data.Dataset`` of global batches, or arrays, which go through :func:`cxrzoo.data.make_dataset` with the
recipe's augmentation. They compile the model, add the callbacks the papers used (early stopping, LR reduction,
best-weights checkpoint, CSV history) and return a :class:`TrainingResult` with the model holding the best
validation weights.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import keras
import numpy as np

from cxrzoo.data.pipeline import make_dataset
from cxrzoo.data.splits import class_weights
from cxrzoo.nn.model import spec_of
from cxrzoo.spec import SPECS
from cxrzoo.training.distribute import (
    _is_multi_worker,
    build_in_scope,
    default_strategy,
    is_chief,
    num_replicas,
    shard_dataset,
    synchronized_batch_norm,
)
from cxrzoo.training.loop import custom_fit
from cxrzoo.training.recipes import TrainingRecipe, list_training_recipes, training_recipe

if TYPE_CHECKING:
    import numpy.typing as npt
    import tensorflow as tf

    from cxrzoo.data.augment import Augmentation

__all__ = ["TrainingResult", "as_dataset", "fit_classifier", "fit_segmenter", "prepare_labels"]

RECIPE = "recipe"  # sentinel: "use the recipe's value"

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass
class TrainingResult:
    """What a fit function returns.

    Attributes:
        model: the trained model (holding the best monitored weights when ``restore_best`` and a validation set).
        history: ``{metric: [value per epoch]}`` as Keras logs them (``val_`` prefix for validation).
        monitor: the monitored quantity; best_epoch: its best epoch (1-based), None without it.
        epoch_seconds: wall time of each epoch (training and validation).
        checkpoint, history_csv: the files written in ``output_dir`` (None without one).
        recipe: the recipe used, after overrides.
    """

    model: Any
    history: dict[str, list[float]]
    monitor: str
    best_epoch: int | None
    epoch_seconds: list[float]
    checkpoint: Path | None
    history_csv: Path | None
    recipe: TrainingRecipe
    class_weight: dict | None = None
    extra: dict = field(default_factory=dict)

    @property
    def best(self) -> dict[str, float]:
        """Every logged value at the best epoch (the last epoch when nothing was monitored)."""
        epoch = (self.best_epoch or len(next(iter(self.history.values()), []))) - 1
        return {k: float(v[epoch]) for k, v in self.history.items() if len(v) > epoch >= 0}


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)


class _KeepBest(keras.callbacks.Callback):
    """Keeps the weights of the best epoch in memory (lower is better for losses, higher for the rest) and puts
    them back at the end of training."""

    def __init__(self, monitor: str, restore: bool):
        super().__init__()
        self.monitor, self.restore = monitor, restore
        self.lower_is_better = "loss" in monitor
        self.best, self.best_epoch, self.weights = None, None, None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None or not np.isfinite(value):
            return
        better = self.best is None or (value < self.best if self.lower_is_better else value > self.best)
        if better:
            self.best, self.best_epoch = float(value), epoch + 1
            if self.restore:
                self.weights = self.model.get_weights()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.restore and self.weights is not None:
            self.model.set_weights(self.weights)


def prepare_labels(y: npt.ArrayLike, model: keras.Model) -> np.ndarray:
    """Labels in the form ``model``'s output needs: one-hot (N, C) for a C-way head from class ids (or one-hot),
    (N, 1) floats for a single sigmoid/logit output."""
    y = np.asarray(y)
    classes = model.output_shape[-1]
    if classes == 1:
        if y.ndim == 2 and y.shape[1] > 1:
            raise ValueError(f"a one-output model needs 0/1 labels, got shape {y.shape}")
        return y.reshape(-1, 1).astype(np.float32)
    if y.ndim == 2 and y.shape[1] == classes:
        return y.astype(np.float32)
    ids = y.reshape(-1)
    if not np.issubdtype(ids.dtype, np.integer):
        if not np.all(ids == np.round(ids)):
            raise ValueError("class labels must be integer ids or one-hot rows")
        ids = ids.astype(np.int64)
    if ids.min(initial=0) < 0 or ids.max(initial=0) >= classes:
        raise ValueError(
            f"class ids must be in 0..{classes - 1} for a {classes}-way model, found {ids.min()}..{ids.max()}"
        )
    return np.eye(classes, dtype=np.float32)[ids]


def _class_ids(y: npt.ArrayLike) -> np.ndarray:
    y = np.asarray(y)
    return y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1).astype(np.int64)


def as_dataset(
    data: tf.data.Dataset | Sequence[Any],
    *,
    task: str,
    model: keras.Model,
    batch_size: int,
    augment: str | Augmentation | None = None,
    shuffle: bool = False,
    seed: int | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of global batches from ``data``, sharded for ``strategy``.

    ``data`` is a ``tf.data.Dataset`` (used as it is: it must already be batched with the global batch size) or
    arrays ``(x, y)`` / ``(x, y, sample_weight)``, which :func:`cxrzoo.data.make_dataset` turns into a pipeline:
    ``x`` (N, H, W, C) or a pair ``(image, mask)`` for a two-input model such as CXR-Net Module 2 (or (N, F)
    feature vectors, batched as they are); ``y`` the masks (N, H, W, K) for segmentation, class ids or one-hot
    rows for classification.
    """
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        return shard_dataset(data, strategy)
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise TypeError("data must be a tf.data.Dataset or a tuple (x, y) or (x, y, sample_weight) of arrays")
    x, y, *w = data
    weights = w[0] if w else None
    two_inputs = isinstance(x, (tuple, list))
    if two_inputs and len(x) != 2:
        raise ValueError("array inputs are one array, or a pair (image, mask) for a two-input model")
    images, mask_inputs = (x[0], x[1]) if two_inputs else (x, None)
    if not two_inputs and np.ndim(images) == 2:  # feature vectors: nothing to load, resize or augment
        if augment is not None:
            raise ValueError("augmentation needs image arrays (N, H, W, C), got feature vectors")
        ds = tf.data.Dataset.from_tensor_slices(
            tuple(a for a in (np.asarray(images, np.float32), prepare_labels(y, model), weights) if a is not None)
        )
        if shuffle:
            ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        return shard_dataset(ds.batch(batch_size).prefetch(tf.data.AUTOTUNE), strategy)
    if task == "segmentation":
        if two_inputs:
            raise ValueError("a segmentation model takes a single image array")
        ds = make_dataset(
            np.asarray(images),
            masks=np.asarray(y),
            recipe=None,
            augment=augment,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            sample_weights=weights,
        )
    else:
        ds = make_dataset(
            np.asarray(images),
            masks=None if mask_inputs is None else np.asarray(mask_inputs),
            labels=prepare_labels(y, model),
            recipe=None,
            augment=augment,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            sample_weights=weights,
            mask_role="input" if two_inputs else "target",
        )
    return shard_dataset(ds, strategy)


def _resolve(value: Any, default: Any) -> Any:
    return default if isinstance(value, str) and value == RECIPE else value


def _class_weight(
    spec: str | dict[int, float] | None, train: tf.data.Dataset | Sequence[Any], model: keras.Model, task: str
) -> dict[int, float] | None:
    if spec is None or isinstance(spec, dict):
        return spec
    if spec != "balanced":
        raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {spec!r}")
    if task == "segmentation":
        raise ValueError("class_weight='balanced' applies to classification")
    import tensorflow as tf

    if isinstance(train, tf.data.Dataset):
        raise ValueError("class_weight='balanced' needs array labels to count classes; pass a dict for a Dataset")
    return class_weights(_class_ids(prepare_labels(train[1], model)))


def _check_task(rec: TrainingRecipe, task: str) -> TrainingRecipe:
    if rec.task != task:
        raise ValueError(f"recipe {rec.name!r} is a {rec.task} recipe; this function trains {task} models")
    return rec


def _recipe_of(model: keras.Model, task: str) -> str:
    """The training recipe named by the model's spec (or by the spec of the architecture it is named after)."""
    spec = spec_of(model)
    if spec is None and getattr(model, "name", None) in SPECS:
        spec = SPECS.get(model.name)
    if spec is None or spec.training_recipe is None:
        raise ValueError(
            f"model {getattr(model, 'name', model)!r} carries no spec naming its paper's training "
            f"protocol: pass recipe=, one of {list_training_recipes(task)}"
        )
    return spec.training_recipe


def _fit(
    task: str,
    model: keras.Model | Callable[[], keras.Model],
    train: tf.data.Dataset | Sequence[Any],
    validation: tf.data.Dataset | Sequence[Any] | None,
    *,
    recipe: str | TrainingRecipe | None,
    epochs: int | str,
    batch_size: int | str,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule | None,
    optimizer: keras.optimizers.Optimizer | Callable[[], keras.optimizers.Optimizer] | None,
    loss: Any,
    metrics: Any,
    augment: str | Augmentation | None,
    class_weight: str | dict[int, float] | None,
    early_stopping: dict[str, Any] | str | None,
    reduce_lr: dict[str, Any] | str | None,
    monitor: str,
    output_dir: str | os.PathLike | None,
    restore_best: bool,
    callbacks: Sequence[keras.callbacks.Callback],
    strategy: tf.distribute.Strategy | None,
    sync_batchnorm: bool,
    seed: int | None,
    steps_per_epoch: int | None,
    validation_steps: int | None,
    verbose: int | str,
    loop: str,
) -> TrainingResult:
    if loop not in ("auto", "keras", "custom"):
        raise ValueError(f"loop must be 'auto', 'keras' or 'custom', got {loop!r}")
    if recipe is not None:  # a wrong recipe is reported before any model is built
        _check_task(training_recipe(recipe), task)
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    strategy = strategy or default_strategy()
    model = build_in_scope(model, strategy)
    rec = _check_task(training_recipe(_recipe_of(model, task) if recipe is None else recipe), task)
    rec = rec.replace(
        epochs=int(_resolve(epochs, rec.epochs)),
        batch_size=int(_resolve(batch_size, rec.batch_size)),
        early_stopping=_resolve(early_stopping, rec.early_stopping),
        reduce_lr=_resolve(reduce_lr, rec.reduce_lr),
        augment=_resolve(augment, rec.augment),
        class_weight=_resolve(class_weight, rec.class_weight),
        monitor=_resolve(monitor, rec.monitor),
    )
    if rec.epochs < 1 or rec.batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {rec.epochs} and {rec.batch_size}")
    monitor_name = rec.monitor if validation is not None else rec.monitor.removeprefix("val_")

    weights = _class_weight(rec.class_weight, train, model, task)
    fit_class_weight = None if rec.class_weight_in_loss else weights
    with strategy.scope():
        if optimizer is None:
            opt = rec.make_optimizer(learning_rate)
        else:  # a factory is called here, in the strategy's scope, where optimizer variables must be created
            opt = optimizer() if callable(optimizer) else optimizer
        model.compile(
            optimizer=opt,
            loss=loss if loss is not None else rec.loss(model, weights),
            metrics=metrics if metrics is not None else rec.metrics(model),
        )
    train_ds = as_dataset(
        train,
        task=task,
        model=model,
        batch_size=rec.batch_size,
        augment=rec.augment,
        shuffle=True,
        seed=seed,
        strategy=strategy,
    )
    val_ds = (
        None
        if validation is None
        else as_dataset(validation, task=task, model=model, batch_size=rec.batch_size, shuffle=False, strategy=strategy)
    )

    timer, keep = _EpochTimer(), _KeepBest(monitor_name, restore_best)
    cbs = [timer, keep]
    if rec.early_stopping:
        cbs.append(keras.callbacks.EarlyStopping(monitor=monitor_name, mode="auto", **rec.early_stopping))
    if rec.reduce_lr:
        cbs.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor_name, **rec.reduce_lr))
    checkpoint = csv = None
    if output_dir is not None:
        folder = Path(output_dir) if is_chief(strategy) else Path(tempfile.mkdtemp(prefix="cxrzoo_worker_"))
        folder.mkdir(parents=True, exist_ok=True)
        checkpoint, csv = folder / "best.weights.h5", folder / "history.csv"
        cbs.append(
            keras.callbacks.ModelCheckpoint(
                os.fspath(checkpoint), monitor=monitor_name, save_best_only=True, save_weights_only=True
            )
        )
        cbs.append(keras.callbacks.CSVLogger(os.fspath(csv)))
    cbs.extend(callbacks or ())

    with synchronized_batch_norm(model, enabled=sync_batchnorm and num_replicas(strategy) > 1):
        if loop == "custom" or (loop == "auto" and _is_multi_worker(strategy)):
            if not is_chief(strategy):  # one progress bar per cluster
                verbose = 0
            history = custom_fit(
                model,
                train_ds,
                val_ds,
                epochs=rec.epochs,
                callbacks=cbs,
                strategy=strategy,
                class_weight=fit_class_weight,
                steps_per_epoch=steps_per_epoch,
                validation_steps=validation_steps,
                verbose=verbose,
            )
        else:
            history = model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=rec.epochs,
                callbacks=cbs,
                class_weight=fit_class_weight,
                steps_per_epoch=steps_per_epoch,
                validation_steps=validation_steps,
                verbose=verbose,
                shuffle=False,
            )  # the pipeline shuffles already (Keras would only warn)
    return TrainingResult(
        model=model,
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        monitor=monitor_name,
        best_epoch=keep.best_epoch,
        epoch_seconds=timer.seconds,
        checkpoint=checkpoint if checkpoint is not None and checkpoint.exists() else None,
        history_csv=csv,
        recipe=rec,
        class_weight=weights,
    )


_ARGS_DOC = """Args:
        model: a ``keras.Model``, or a zero-argument builder (``lambda: cxrzoo.build_res_cr_net(...)``), which is
            called inside ``strategy.scope()``; a multi-replica strategy needs a builder or a model built in its
            scope.
        train: a ``tf.data.Dataset`` of *global* batches, or arrays ``(x, y)`` / ``(x, y, sample_weight)`` (see
            :func:`cxrzoo.training.as_dataset`).
        validation: the same, or None (then nothing is monitored on held-out data and ``monitor`` drops ``val_``).
        recipe: a training recipe name (:func:`cxrzoo.training.list_training_recipes`) or a
            :class:`~cxrzoo.training.TrainingRecipe`; every argument left at ``"recipe"`` / None takes its value.
        epochs, batch_size: override the recipe's (``batch_size`` is global, over all replicas; it is ignored for
            a Dataset, which is batched already).
        learning_rate: overrides the recipe optimizer's rate (a float or a Keras schedule).
        optimizer: replaces the recipe's optimizer: an instance, or a zero-argument factory (needed with a
            multi-replica strategy unless the instance was created inside its scope).
        loss, metrics: replace the recipe's loss and metrics.
        augment: an augmentation preset name, an :class:`cxrzoo.data.Augmentation` or None (array data only).
        class_weight: "balanced", a ``{class: weight}`` dict or None.
        early_stopping: None or ``dict(patience=..., min_delta=...)``; reduce_lr: None or ``dict(factor=...,
            patience=...)``; monitor: the logged quantity they, the checkpoint and ``restore_best`` watch.
        output_dir: folder for ``best.weights.h5`` (the best monitored epoch) and ``history.csv``.
        restore_best: end with the weights of the best monitored epoch (kept in memory) instead of the last.
        callbacks: more Keras callbacks.
        strategy: a ``tf.distribute`` strategy (default: the one in scope); see :mod:`cxrzoo.training.distribute`.
        sync_batchnorm: with several replicas, normalize with global-batch statistics (so the run equals a
            single-device run with the same global batch).
        seed: seeds Keras, NumPy and Python (dropout, shuffling, augmentation).
        steps_per_epoch, validation_steps, verbose: passed to ``Model.fit``.
        loop: ``"auto"`` trains with ``Model.fit``, except under ``MultiWorkerMirroredStrategy``, where Keras 3's
            ``fit`` fails (keras-team/keras#20585) and :func:`cxrzoo.training.custom_fit` runs the model's own
            ``train_step`` instead; ``"keras"`` or ``"custom"`` force one or the other.

    Returns:
        A :class:`TrainingResult`."""


def _document(fn: _F) -> _F:
    fn.__doc__ = fn.__doc__.replace("{args}", _ARGS_DOC)
    return fn


@_document
def fit_segmenter(
    model: keras.Model | Callable[[], keras.Model],
    train: tf.data.Dataset | Sequence[Any],
    validation: tf.data.Dataset | Sequence[Any] | None = None,
    *,
    recipe: str | TrainingRecipe | None = None,
    epochs: int | str = RECIPE,
    batch_size: int | str = RECIPE,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule | None = None,
    optimizer: keras.optimizers.Optimizer | Callable[[], keras.optimizers.Optimizer] | None = None,
    loss: Any = None,
    metrics: Any = None,
    augment: str | Augmentation | None = RECIPE,
    class_weight: str | dict[int, float] | None = None,
    early_stopping: dict[str, Any] | str | None = RECIPE,
    reduce_lr: dict[str, Any] | str | None = RECIPE,
    monitor: str = RECIPE,
    output_dir: str | os.PathLike | None = None,
    restore_best: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    strategy: tf.distribute.Strategy | None = None,
    sync_batchnorm: bool = True,
    seed: int | None = None,
    steps_per_epoch: int | None = None,
    validation_steps: int | None = None,
    verbose: int | str = "auto",
    loop: str = "auto",
) -> TrainingResult:
    """Trains a segmentation model with its paper's protocol: ``recipe`` (default: the one the model's spec names,
    e.g. ``"cxrnet_module1"`` for Res-CR-Net) fills every argument left at its default.

    CXR-Net Module 1's recipe: Adam (lr 1e-3), the contour-weighted Tanimoto loss
    (:class:`cxrzoo.losses.WeightedTanimotoLoss`), Tanimoto and lung Dice metrics, batch 12, 100 epochs, early
    stopping on val_loss (patience 200, min_delta 0.001), best-val_loss checkpoint, the authors' augmentation. Masks
    ``y`` are (N, H, W, K) with one channel per class, as the model outputs them (Res-CR-Net: ``[lungs, non_lungs]``).

    {args}

    Example:
        >>> result = fit_segmenter(cxrzoo.build_res_cr_net(input_shape=(150, 170, 1)), (x, y), (xv, yv),
        ...                        epochs=10, batch_size=4, learning_rate=2e-3, output_dir="runs/module1")
        >>> result.best["val_dice"], result.epoch_seconds
    """
    return _fit("segmentation", **locals())  # locals() holds exactly the arguments here


@_document
def fit_classifier(
    model: keras.Model | Callable[[], keras.Model],
    train: tf.data.Dataset | Sequence[Any],
    validation: tf.data.Dataset | Sequence[Any] | None = None,
    *,
    recipe: str | TrainingRecipe | None = None,
    epochs: int | str = RECIPE,
    batch_size: int | str = RECIPE,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule | None = None,
    optimizer: keras.optimizers.Optimizer | Callable[[], keras.optimizers.Optimizer] | None = None,
    loss: Any = None,
    metrics: Any = None,
    augment: str | Augmentation | None = RECIPE,
    class_weight: str | dict[int, float] | None = RECIPE,
    early_stopping: dict[str, Any] | str | None = RECIPE,
    reduce_lr: dict[str, Any] | str | None = RECIPE,
    monitor: str = RECIPE,
    output_dir: str | os.PathLike | None = None,
    restore_best: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    strategy: tf.distribute.Strategy | None = None,
    sync_batchnorm: bool = True,
    seed: int | None = None,
    steps_per_epoch: int | None = None,
    validation_steps: int | None = None,
    verbose: int | str = "auto",
    loop: str = "auto",
) -> TrainingResult:
    """Trains a classifier with its paper's protocol: ``recipe`` (default: the one the model's spec names, e.g.
    ``"cxrnet_module2"`` for a CXR-Net member) fills every argument left at its default.

    Module 2: Adam (lr 0.002, AMSGrad), categorical cross-entropy with 'balanced' class weights, batch 13,
    200 epochs, the authors' augmentation. Other papers: ``recipe="covid_cxnet"`` (label smoothing 0.1, Adam 1e-3,
    batch 16, 20 epochs), ``"covid_cxnet_multiclass"``, ``"covid_cxnet_base"``, ``"covid_xnet"`` (Adadelta),
    ``"screening"`` (the screening baselines: class-weighted BCE, early stopping after 20),
    ``"infection_detector_classifier"``.
    Labels are class ids (N,) or one-hot rows; they are converted to what the model's head needs.

    {args}

    Example:
        >>> member = lambda: cxrzoo.build_cxrnet_member(input_shape=(75, 85, 50))
        >>> result = fit_classifier(member, (features, labels), (val_features, val_labels), epochs=20,
        ...                         augment=None)
    """
    return _fit("classification", **locals())
