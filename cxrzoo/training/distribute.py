"""Training on several devices or machines with ``tf.distribute``, so that it equals training on one.

Three things can make multi-replica training differ from single-device training with the same global batch, and
cxrzoo handles all three:

- **Batch-global losses.** CXR-Net's Tanimoto and Dice losses are ratios of sums over the whole batch; each
  replica only sees its shard, so :mod:`cxrzoo.losses` all-reduces the sums (:func:`cxrzoo.losses.replica_sum`).
- **Batch normalization.** Each replica would normalize with its shard's statistics;
  :func:`synchronized_batch_norm` makes every ``BatchNormalization`` layer use the global batch's statistics
  while training (the fit functions do this automatically under a multi-replica strategy).
- **Input sharding.** :func:`shard_dataset` sets the ``tf.data`` auto-shard policy to DATA, so that every worker of
  a ``MultiWorkerMirroredStrategy`` reads the same pipeline and keeps its own share of each global batch (the
  in-memory and ``numpy_function`` pipelines of :mod:`cxrzoo.data` have no files to shard by).

Keras 3's ``Model.fit`` fails under ``MultiWorkerMirroredStrategy`` before the first step (keras-team/keras#20585),
so there the fit functions train with :func:`cxrzoo.training.custom_fit`, which runs the model's own ``train_step``
under ``strategy.run`` (``tests/training/test_distribute.py`` runs two worker processes on 127.0.0.1).

Models must be *created* inside ``strategy.scope()``: pass the fit functions a zero-argument builder (called in the
scope) or a model you built there.

Example (two logical devices on one CPU, as in the tests)::

    from cxrzoo.training import split_cpu, fit_segmenter
    split_cpu(2)                                  # before TensorFlow initializes its devices
    strategy = tf.distribute.MirroredStrategy()
    result = fit_segmenter(lambda: cxrzoo.build_res_cr_net(input_shape=(64, 64, 1)), (x, y),
                           strategy=strategy, batch_size=8)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

__all__ = [
    "build_in_scope",
    "default_strategy",
    "is_chief",
    "num_replicas",
    "shard_dataset",
    "split_cpu",
    "synchronized_batch_norm",
]


def split_cpu(n: int) -> list:
    """Splits the first physical CPU into ``n`` logical devices (to run ``MirroredStrategy`` without GPUs).

    Must run before TensorFlow initializes its devices (before the first op or ``list_logical_devices``); raises a
    RuntimeError saying so otherwise. Returns the logical CPU devices.
    """
    import tensorflow as tf

    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive int, got {n}")
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * int(n))
    except RuntimeError as err:
        current = len(tf.config.list_logical_devices("CPU"))
        if current == n:
            return tf.config.list_logical_devices("CPU")
        raise RuntimeError(
            f"cannot split the CPU into {n} devices after TensorFlow initialized its devices "
            f"(it has {current}); call split_cpu first, in a fresh process"
        ) from err
    return tf.config.list_logical_devices("CPU")


def default_strategy() -> tf.distribute.Strategy:
    """The strategy in scope (``tf.distribute.get_strategy()``: the no-op default strategy outside any scope)."""
    import tensorflow as tf

    return tf.distribute.get_strategy()


def num_replicas(strategy: tf.distribute.Strategy | None = None) -> int:
    """Replicas that share each global batch under ``strategy`` (default: the one in scope)."""
    return (strategy or default_strategy()).num_replicas_in_sync


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """True unless this process is a non-chief worker of a multi-worker strategy (only the chief writes files)."""
    strategy = strategy or default_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    )


def shard_dataset(dataset: tf.data.Dataset, strategy: tf.distribute.Strategy | None = None) -> tf.data.Dataset:
    """``dataset`` with the DATA auto-shard policy when ``strategy`` spans several workers (else unchanged).

    ``dataset`` must yield *global* batches; ``Model.fit`` splits each across the replicas.
    """
    import tensorflow as tf

    strategy = strategy or default_strategy()
    if not _is_multi_worker(strategy):
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


@contextlib.contextmanager
def synchronized_batch_norm(
    model: keras.Model, enabled: bool = True
) -> Iterator[list[keras.layers.BatchNormalization]]:
    """Within the block, every ``BatchNormalization`` layer of ``model`` (nested models included) normalizes
    with the statistics of the global batch across replicas; the layers' own setting is restored afterwards."""
    import keras

    layers = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [layer.synchronized for layer in layers]
    try:
        if enabled:
            for layer in layers:
                layer.synchronized = True
        yield layers
    finally:
        for layer, value in zip(layers, saved):
            layer.synchronized = value


def _all_layers(model: keras.Layer) -> Iterator[keras.Layer]:
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def build_in_scope(
    model_or_builder: keras.Model | Callable[[], keras.Model], strategy: tf.distribute.Strategy | None = None
) -> keras.Model:
    """The model to train: calls a builder inside ``strategy.scope()``, or checks that a given model's variables
    were created under ``strategy`` (a model built outside the scope cannot be trained by it)."""
    import keras

    strategy = strategy or default_strategy()
    if isinstance(model_or_builder, keras.Model):
        model = model_or_builder
        if num_replicas(strategy) > 1 or _is_multi_worker(strategy):
            stray = [v.path for v in model.weights if not strategy.extended.variable_created_in_scope(v.value)]
            if stray:
                raise ValueError(
                    f"the model was built outside the strategy's scope ({stray[0]} …); pass a "
                    "builder (a zero-argument callable) or build the model inside strategy.scope()"
                )
        return model
    if not callable(model_or_builder):
        raise TypeError(f"expected a keras.Model or a zero-argument builder, got {type(model_or_builder).__name__}")
    with strategy.scope():
        model = model_or_builder()
    if not isinstance(model, keras.Model):
        raise TypeError(f"the builder returned {type(model).__name__}, not a keras.Model")
    return model
