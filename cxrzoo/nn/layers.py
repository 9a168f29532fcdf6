"""Small layers that Keras 3 lacks and ``Lambda`` would make unsafe to deserialize: shape manipulation, and the
pieces of the inference rewrites in :mod:`cxrzoo.nn.rewrite`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
from keras import ops

if TYPE_CHECKING:
    import tensorflow as tf


@keras.saving.register_keras_serializable(package="cxrzoo")
class ExpandDims(keras.layers.Layer):
    """Inserts a length-1 axis at ``axis`` (works with unknown spatial sizes, unlike ``Reshape``)."""

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return ops.expand_dims(inputs, self.axis)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        shape = list(input_shape)
        axis = self.axis if self.axis >= 0 else len(shape) + 1 + self.axis
        shape.insert(axis, 1)
        return tuple(shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


@keras.saving.register_keras_serializable(package="cxrzoo")
class ReduceSum(keras.layers.Layer):
    """Sums over ``axis`` (dropping it)."""

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return ops.sum(inputs, axis=self.axis)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        shape = list(input_shape)
        del shape[self.axis]
        return tuple(shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


@keras.saving.register_keras_serializable(package="cxrzoo")
class FoldedBatchNormalization(keras.layers.Layer):
    """Where a BatchNormalization was, after :func:`cxrzoo.nn.rewrite.fold_batch_norm` merged it into the
    convolution before it: passes its input through (keeps the layer's name and call signature)."""

    def call(self, inputs: tf.Tensor, training: bool | None = None, mask: tf.Tensor | None = None) -> tf.Tensor:
        return inputs

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape


@keras.saving.register_keras_serializable(package="cxrzoo")
class PolyphaseSplit(keras.layers.Layer):
    """(B, H, W, C) → (rate²·B, ⌈H/rate⌉, ⌈W/rate⌉, C): the rate×rate polyphase components as a batch.

    Component (p, q) of image b is ``x[b, p::rate, q::rate]`` and lands at batch index ``(p·rate + q)·B + b``; the
    input is first zero-padded at the bottom and right to multiples of ``rate``. A convolution dilated by ``rate``
    with 'same' zero padding and an odd kernel is the undilated convolution of each component, which is how
    :func:`cxrzoo.nn.rewrite.polyphase_dilated` runs dilated branches; :class:`PolyphaseMerge` inverts it.
    """

    def __init__(self, rate: int, **kwargs):
        super().__init__(**kwargs)
        if int(rate) < 1:
            raise ValueError(f"rate must be >= 1, got {rate}")
        self.rate = int(rate)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        r = self.rate
        height, width, channels = inputs.shape[1], inputs.shape[2], inputs.shape[3]
        if height is None or width is None or channels is None:
            raise ValueError(f"PolyphaseSplit needs static height, width and channels, got {inputs.shape}")
        rows, cols = -(-height // r), -(-width // r)
        if (rows * r, cols * r) != (height, width):
            inputs = ops.pad(inputs, [[0, 0], [0, rows * r - height], [0, cols * r - width], [0, 0]])
        x = ops.reshape(inputs, (-1, rows, r, cols, r, channels))
        x = ops.transpose(x, (2, 4, 0, 1, 3, 5))
        return ops.reshape(x, (-1, rows, cols, channels))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        batch, height, width, channels = input_shape
        r = self.rate
        return (None if batch is None else batch * r * r, -(-height // r), -(-width // r), channels)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate}


@keras.saving.register_keras_serializable(package="cxrzoo")
class PolyphaseMerge(keras.layers.Layer):
    """The inverse of :class:`PolyphaseSplit`: interleaves the components back and crops to ``height`` × ``width``."""

    def __init__(self, rate: int, height: int, width: int, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.height, self.width = int(rate), int(height), int(width)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        r = self.rate
        rows, cols, channels = inputs.shape[1], inputs.shape[2], inputs.shape[3]
        x = ops.reshape(inputs, (r, r, -1, rows, cols, channels))
        x = ops.transpose(x, (2, 3, 0, 4, 1, 5))
        x = ops.reshape(x, (-1, rows * r, cols * r, channels))
        if (rows * r, cols * r) != (self.height, self.width):
            x = x[:, : self.height, : self.width, :]
        return x

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        batch = input_shape[0]
        r = self.rate
        return (None if batch is None else batch // (r * r), self.height, self.width, input_shape[3])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "height": self.height, "width": self.width}
