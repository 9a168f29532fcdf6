"""Data and model shared by the multi-device runs (_mirrored_fit.py, _multiworker_fit.py). Import after any
device or cluster setup: building the initial model initializes TensorFlow."""

from __future__ import annotations

import functools

import keras
import numpy as np

import cxrzoo


def data(n, seed):
    """Noisy images of a bright ellipse whose mask is the target (channels [object, background])."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:24, :28]
    x = rng.normal(0.3, 0.1, (n, 24, 28, 1)).astype("float32")
    y = np.zeros((n, 24, 28, 2), "float32")
    for i in range(n):
        cy, cx, ry, rx = rng.uniform(8, 16), rng.uniform(9, 19), rng.uniform(4, 7), rng.uniform(4, 8)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        x[i, inside, 0] += 0.5
        y[i, ..., 0] = inside
    y[..., 1] = 1 - y[..., 0]
    return x, y


def build():
    # dropout 0: random masks would differ between one device and two replicas
    return cxrzoo.build_res_cr_net(input_shape=(24, 28, 1), filters=4, conv_blocks=2, dropout=0.0)


@functools.lru_cache(maxsize=1)
def initial_weights():
    keras.utils.set_random_seed(3)
    return build().get_weights()


def builder():
    model = build()
    model.set_weights(initial_weights())
    return model


train, val = data(16, 0), data(8, 1)
