"""A training loop of our own, for where Keras 3's ``Model.fit`` cannot go: ``MultiWorkerMirroredStrategy``.

Keras 3.x ``Model.fit`` fails under ``MultiWorkerMirroredStrategy`` before the first step (it reduces a peeked
input batch with ``strategy.reduce``, which the collective strategy rejects; keras-team/keras#20585), and
``train_on_batch`` fails too (it reduces scalar logs along an axis they do not have). The model's own
``train_step`` and ``test_step`` are fine, so :func:`custom_fit` drives those: it distributes the dataset with
``strategy.experimental_distribute_dataset``, runs one step per global batch with ``strategy.run`` inside a
``tf.function``, and reads the metrics in cross-replica context, where Keras' metric variables already hold the
sums over all replicas. Callbacks run through ``keras.callbacks.CallbackList`` with the same logs ``fit`` gives
them (``val_`` prefix, ``model.stop_training``), so early stopping, LR reduction, checkpoints and CSV history
behave as under ``fit``.

The fit functions use this loop under a multi-worker strategy (``loop="auto"``); ``loop="custom"`` forces it
anywhere, which is how the tests check it against ``Model.fit`` on one device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = ["custom_fit", "with_class_weights"]


def with_class_weights(dataset: tf.data.Dataset, class_weight: dict) -> tf.data.Dataset:
    """``dataset`` of ``(x, y[, sample_weight])`` batches with each sample's weight multiplied by the weight of its
    class, as ``Model.fit(class_weight=...)`` does: the class is ``argmax(y)`` for one-hot rows and ``round(y)`` for
    a single 0/1 column."""
    import tensorflow as tf

    if not class_weight:
        return dataset
    ids = sorted(int(k) for k in class_weight)
    if ids[0] < 0:
        raise ValueError(f"class_weight keys must be class ids >= 0, got {ids}")
    table = np.ones(ids[-1] + 1, np.float32)
    for k, v in class_weight.items():
        table[int(k)] = float(v)
    table = tf.constant(table)

    def weigh(*batch: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        if len(batch) not in (2, 3):
            raise ValueError("class weights need (x, y) or (x, y, sample_weight) batches")
        x, y = batch[0], batch[1]
        if isinstance(y, (dict, tuple, list)):
            raise ValueError("class_weight supports a single-output model only (as Model.fit does)")
        y = tf.convert_to_tensor(y)
        if y.shape.rank is not None and y.shape.rank >= 2 and y.shape[-1] not in (None, 1):
            cls = tf.argmax(y, axis=-1)
        else:
            cls = tf.cast(tf.round(tf.reshape(y, [tf.shape(y)[0], -1])[:, 0]), tf.int64)
        w = tf.gather(table, tf.clip_by_value(cls, 0, len(table) - 1))
        w = tf.reshape(w, [tf.shape(y)[0]])
        if len(batch) == 3:
            w = w * tf.cast(tf.reshape(batch[2], [tf.shape(y)[0]]), w.dtype)
        return x, y, w

    return dataset.map(weigh, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _build_state(model: keras.Model, element_spec: Any) -> None:
    """Creates the model's, the compiled loss' and metrics' and the optimizer's variables in cross-replica context
    (variables cannot be created inside ``strategy.run`` in a traced step): one eager pass on a one-sample zero batch
    under the strategy's scope, then the metrics are reset."""
    import tensorflow as tf

    def zeros(spec: tf.TensorSpec | None) -> tf.Tensor | None:
        if spec is None:
            return None
        shape = [1 if d is None else d for d in spec.shape]
        return tf.zeros(shape, spec.dtype)

    batch = tf.nest.map_structure(zeros, element_spec)
    x, y, sw = keras.utils.unpack_x_y_sample_weight(batch)
    y_pred = model(x, training=False)
    if y is not None:
        model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sw, training=False)
        model.compute_metrics(x, y, y_pred, sample_weight=sw)
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.reset_metrics()


def _logs(model: keras.Model) -> dict[str, float]:
    return {k: float(np.asarray(v)) for k, v in model.get_metrics_result().items()}


def custom_fit(
    model: keras.Model,
    train: tf.data.Dataset,
    validation: tf.data.Dataset | None = None,
    *,
    epochs: int = 1,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    strategy: tf.distribute.Strategy | None = None,
    class_weight: dict | None = None,
    steps_per_epoch: int | None = None,
    validation_steps: int | None = None,
    verbose: int | str = 1,
) -> keras.callbacks.History:
    """Trains a compiled ``model`` on ``train`` (a ``tf.data.Dataset`` of global batches) like ``Model.fit``.

    The model must have been built and compiled inside ``strategy.scope()``. Each global batch is split across the
    replicas (for several workers the dataset should carry the DATA auto-shard policy:
    :func:`cxrzoo.training.shard_dataset`). Returns the ``keras.callbacks.History`` (also ``model.history``).
    """
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    if model.optimizer is None:
        raise ValueError("compile the model (inside the strategy's scope) before custom_fit")
    if class_weight:
        train = with_class_weights(train, class_weight)
    with strategy.scope():
        _build_state(model, train.element_spec)
    dist_train = strategy.experimental_distribute_dataset(train)
    dist_val = None if validation is None else strategy.experimental_distribute_dataset(validation)

    @tf.function
    def train_step(batch: Any) -> None:
        strategy.run(model.train_step, args=(batch,))

    @tf.function
    def test_step(batch: Any) -> None:
        strategy.run(model.test_step, args=(batch,))

    history = keras.callbacks.History()
    progbar = verbose not in (0, "0")
    cbs = keras.callbacks.CallbackList(
        list(callbacks) + [history],
        add_history=False,
        add_progbar=progbar,
        model=model,
        verbose=1 if verbose == "auto" else verbose,
        epochs=epochs,
        steps=steps_per_epoch,
    )

    def run_pass(
        dataset: Iterable[Any],
        step_fn: Callable[[Any], None],
        limit: int | None,
        begin: Callable[[int], None],
        end: Callable[[int, dict[str, float] | None], None],
        with_logs: bool,
    ) -> int:
        """One pass over ``dataset`` (at most ``limit`` batches); returns the number of batches."""
        count = 0
        for batch in dataset:
            if limit is not None and count >= limit:
                break
            begin(count)
            step_fn(batch)
            end(count, _logs(model) if with_logs else None)
            count += 1
        return count

    model.stop_training = False
    cbs.on_train_begin()
    for epoch in range(epochs):
        model.reset_metrics()
        cbs.on_epoch_begin(epoch)
        if (
            run_pass(dist_train, train_step, steps_per_epoch, cbs.on_train_batch_begin, cbs.on_train_batch_end, progbar)
            == 0
        ):
            raise ValueError("the training dataset yielded no batch")
        logs = _logs(model)
        if dist_val is not None:
            model.reset_metrics()
            cbs.on_test_begin()
            run_pass(dist_val, test_step, validation_steps, cbs.on_test_batch_begin, cbs.on_test_batch_end, False)
            val_logs = _logs(model)
            cbs.on_test_end(val_logs)
            logs.update({f"val_{k}": v for k, v in val_logs.items()})
        cbs.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    cbs.on_train_end(logs)
    return history
