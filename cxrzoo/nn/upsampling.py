"""Upsampling with PyTorch's ``align_corners=True`` bilinear semantics, which Keras' own layers lack.

SMP's FPN upsamples its segmentation blocks with ``F.interpolate(..., mode="bilinear", align_corners=True)`` and its
head with ``nn.UpsamplingBilinear2d`` (also ``align_corners=True``). Keras ``UpSampling2D(interpolation="bilinear")``
uses half-pixel centres instead, so it puts every output sample at a different place; weights trained with SMP would
then see shifted features. This layer maps output pixel ``o`` to input coordinate ``o * (n - 1) / (s * n - 1)``:
the corner pixels of input and output coincide, exactly as in PyTorch.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="cxrzoo")
class AlignedBilinearUpsampling2D(keras.layers.Layer):
    """Bilinear upsampling by an integer factor with ``align_corners=True`` (channels-last input).

    Args:
        size: integer factor, or (rows, cols) factors.

    Input (B, H, W, C) → output (B, size_h·H, size_w·W, C); H and W may be unknown until run time.
    """

    def __init__(self, size: int | tuple[int, int] = 2, **kwargs):
        super().__init__(**kwargs)
        size = (size, size) if isinstance(size, int) else tuple(size)
        if len(size) != 2 or not all(isinstance(s, int) and s >= 1 for s in size):
            raise ValueError(f"size must be a positive integer or a pair of them, got {size!r}")
        self.size = size

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        shape = tf.shape(inputs)
        out_size = tf.stack([shape[1] * self.size[0], shape[2] * self.size[1]])
        resized = tf.raw_ops.ResizeBilinear(images=inputs, size=out_size, align_corners=True, half_pixel_centers=False)
        return tf.cast(resized, inputs.dtype)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        b, h, w, c = input_shape
        return (b, None if h is None else h * self.size[0], None if w is None else w * self.size[1], c)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": list(self.size)}
