"""Small shape-manipulation layers that Keras 3 lacks and ``Lambda`` would make unsafe to deserialize."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="cxrzoo")
class ExpandDims(keras.layers.Layer):
    """Inserts a length-1 axis at ``axis`` (works with unknown spatial sizes, unlike ``Reshape``)."""

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs):
        return ops.expand_dims(inputs, self.axis)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        axis = self.axis if self.axis >= 0 else len(shape) + 1 + self.axis
        shape.insert(axis, 1)
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


@keras.saving.register_keras_serializable(package="cxrzoo")
class ReduceSum(keras.layers.Layer):
    """Sums over ``axis`` (dropping it)."""

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs):
        return ops.sum(inputs, axis=self.axis)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        del shape[self.axis]
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


@keras.saving.register_keras_serializable(package="cxrzoo")
class FoldedBatchNormalization(keras.layers.Layer):
    """Where a BatchNormalization was, after :func:`cxrzoo.models.inference.fold_batch_norm` merged it into the
    convolution before it: passes its input through (keeps the layer's name and call signature)."""

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape
