"""Run by test_distribute.py in a fresh process: the CPU must be split into logical devices before TensorFlow
initializes, which a pytest process that already imported TensorFlow cannot do. Prints one JSON object."""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from cxrzoo.training import split_cpu

split_cpu(2)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _distributed_common import build, builder, train, val  # noqa: E402

from cxrzoo.data import make_dataset  # noqa: E402
from cxrzoo.losses import WeightedTanimotoLoss  # noqa: E402
from cxrzoo.training import fit_segmenter  # noqa: E402

mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def run(strategy, sync, epochs, loop="keras"):
    # Unshuffled: under a strategy Keras peeks one batch before training, so a reshuffling pipeline would start
    # from its second permutation and the two runs would see the batches in different orders.
    batches = [make_dataset(x, y, recipe=None, batch_size=8, shuffle=False) for x, y in (train, val)]
    result = fit_segmenter(
        builder,
        *batches,
        epochs=epochs,
        learning_rate=1e-2,
        strategy=strategy,
        sync_batchnorm=sync,
        seed=5,
        verbose=0,
        loop=loop,
    )
    return {k: result.history[k] for k in ("loss", "val_loss", "val_dice")}


def main(epochs):
    # The loss of a global batch equals the sum of what the replicas return for their shards (each returns L / R).
    x, y = train[1][:8], np.clip(train[1][:8] + 0.2 * np.random.default_rng(2).random((8, 24, 28, 2)), 0, 1)
    loss = WeightedTanimotoLoss()
    global_value = float(loss(train[1][:8], y))
    shards = mirrored.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices((x, y)).batch(8))
    per_replica = mirrored.run(lambda a, b: loss(a, b), args=next(iter(shards)))
    replica_sum = float(mirrored.reduce("SUM", per_replica, axis=None))

    outside = build()
    try:
        fit_segmenter(outside, train, epochs=1, batch_size=8, augment=None, strategy=mirrored, verbose=0)
        outside_error = None
    except ValueError as err:
        outside_error = str(err)

    print(
        json.dumps(
            {
                "replicas": mirrored.num_replicas_in_sync,
                "one_device": run(tf.distribute.get_strategy(), True, epochs),
                "mirrored": run(mirrored, True, epochs),
                "mirrored_unsynced_bn": run(mirrored, False, epochs),
                "one_device_custom_loop": run(tf.distribute.get_strategy(), True, epochs, loop="custom"),
                "mirrored_custom_loop": run(mirrored, True, epochs, loop="custom"),
                "loss_global": global_value,
                "loss_replica_sum": replica_sum,
                "outside_scope_error": outside_error,
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
