"""One worker of a two-process MultiWorkerMirroredStrategy run on 127.0.0.1 (started by test_distribute.py).

argv: worker index, the two ports, epochs. TF_CONFIG must be set before TensorFlow starts. Each worker prints its
loss trajectory as JSON.
"""

from __future__ import annotations

import json
import os
import sys

index, port0, port1, epochs = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
os.environ["TF_CONFIG"] = json.dumps(
    {"cluster": {"worker": [f"127.0.0.1:{port0}", f"127.0.0.1:{port1}"]}, "task": {"type": "worker", "index": index}}
)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

strategy = tf.distribute.MultiWorkerMirroredStrategy()

from _distributed_common import builder, train, val  # noqa: E402  (same data, model and initial weights)

from cxrzoo.data import make_dataset  # noqa: E402
from cxrzoo.training import fit_segmenter, is_chief  # noqa: E402

batches = [make_dataset(x, y, recipe=None, batch_size=8, shuffle=False) for x, y in (train, val)]
result = fit_segmenter(builder, *batches, epochs=epochs, learning_rate=1e-2, strategy=strategy, seed=5, verbose=0)
print(
    json.dumps(
        {
            "loss": result.history["loss"],
            "val_loss": result.history["val_loss"],
            "val_dice": result.history["val_dice"],
            "chief": is_chief(strategy),
            "replicas": strategy.num_replicas_in_sync,
        }
    )
)
