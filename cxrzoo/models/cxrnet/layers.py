"""The small layers of CXR-Net Module 2 and of the end-to-end CXR-Net, all serializable.

* :class:`SelectChannel`, :class:`Threshold`: the member's ``select_channel`` / ``threshold`` layers.
* :class:`AxisAttention`: the authors' cross-attention, a multi-head attention that runs along one spatial axis
  of a (B, H, W, C) map (rows or columns), with the weights of their tensorflow-addons-style layer.
* :class:`MinMaxRescale`: per-image rescaling to [0, 1] (the paper's optional "scale by input" mode).
* :class:`LungMaskGate`: the authors' Module 2 mask from a Module 1 lung probability (8-bit round trip and
  intensity gate), done in the graph.
* :class:`SeparableConv2D` and :func:`xla_depthwise`: Keras' separable convolution with a depthwise form that XLA
  compiles well, used by both CXR-Net modules for speed on CPU.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import keras
from keras import ops

if TYPE_CHECKING:
    import tensorflow as tf


@keras.saving.register_keras_serializable(package="cxrzoo")
class SelectChannel(keras.layers.Layer):
    """Keeps channel ``index`` (negative counts from the end) of a channels-last tensor, as a length-1 axis."""

    def __init__(self, index: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        channels = inputs.shape[-1]
        start = self.index % channels
        return inputs[..., start : start + 1]

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], 1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "index": self.index}


@keras.saving.register_keras_serializable(package="cxrzoo")
class Threshold(keras.layers.Layer):
    """1.0 where the input is strictly above ``threshold``, else 0.0 (no gradient flows through it)."""

    def __init__(self, threshold: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.threshold = float(threshold)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return ops.cast(ops.greater(inputs, self.threshold), self.compute_dtype)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold": self.threshold}


@keras.saving.register_keras_serializable(package="cxrzoo")
class MinMaxRescale(keras.layers.Layer):
    """Rescales each sample linearly to [0, 1] over all its elements (a constant sample becomes 0)."""

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        axes = tuple(range(1, len(inputs.shape)))
        low = ops.min(inputs, axis=axes, keepdims=True)
        span = ops.max(inputs, axis=axes, keepdims=True) - low
        return ops.where(span > 0, (inputs - low) / ops.where(span > 0, span, 1.0), 0.0)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape


@keras.saving.register_keras_serializable(package="cxrzoo")
class AxisAttention(keras.layers.Layer):
    """Multi-head attention along one spatial axis of channels-last maps: CXR-Net's row/column cross-attention.

    Called on ``[query, key, value]``, each (B, H, W, C_i). With ``axis=2`` every row attends within itself (the
    W positions of a row are the sequence, rows act as batch); with ``axis=1`` every column does. Per head h::

        q = query·Wq[h] / sqrt(head_size),  k = key·Wk[h],  v = value·Wv[h]
        out = Σ_h softmax(q·kᵀ)·v · Wo[h] + bo

    This is the tensorflow-addons ``MultiHeadAttention`` the authors used (no query/key/value biases, one output
    bias), and equals ``keras.layers.MultiHeadAttention(num_heads, key_dim=head_size, value_dim=head_size,
    attention_axes=(axis,))`` with zero query/key/value biases. Kernels use Keras' layout: ``query_kernel``,
    ``key_kernel``, ``value_kernel`` (C_in, heads, head_size); ``output_kernel`` (heads, head_size, output_size);
    ``output_bias`` (output_size,). The authors' files store the first three as (heads, C_in, head_size).

    The computation takes equal but cheaper routes when the shapes allow: with fewer key channels than
    ``head_size`` the logits go through each head's (C_q, C_k) matrix ``Wq·Wkᵀ``, with fewer outputs the values
    through ``Wv·Wo``; and a one-channel key whose values are all 0 or 1 (CXR-Net's binary lung mask, checked in the
    graph) makes each row's softmax a ratio of two group sums. In CXR-Net this is 16× less time for the pair of
    attention layers; the results are the formula's to float rounding, gradients included.

    Args:
        num_heads: attention heads (2 in CXR-Net).
        head_size: query/key/value depth per head (64 in CXR-Net).
        axis: 1 (columns) or 2 (rows) of a (B, H, W, C) input.
        output_size: output channels; defaults to the value's channel count.
    """

    def __init__(
        self,
        num_heads: int = 2,
        head_size: int = 64,
        axis: int = 2,
        output_size: int | None = None,
        kernel_initializer: str | keras.initializers.Initializer = "glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if axis not in (1, 2):
            raise ValueError(f"axis must be 1 (columns) or 2 (rows) of a (B, H, W, C) map, got {axis}")
        self.num_heads, self.head_size, self.axis = int(num_heads), int(head_size), int(axis)
        self.output_size = None if output_size is None else int(output_size)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape: Sequence[tuple[int | None, ...]]) -> None:
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 3:
            raise ValueError("AxisAttention is called on [query, key, value]")
        (q_shape, k_shape, v_shape) = input_shape
        out = self.output_size or v_shape[-1]
        heads = (self.num_heads, self.head_size)
        self.query_kernel = self.add_weight(
            name="query_kernel", shape=(q_shape[-1], *heads), initializer=self.kernel_initializer
        )
        self.key_kernel = self.add_weight(
            name="key_kernel", shape=(k_shape[-1], *heads), initializer=self.kernel_initializer
        )
        self.value_kernel = self.add_weight(
            name="value_kernel", shape=(v_shape[-1], *heads), initializer=self.kernel_initializer
        )
        self.output_kernel = self.add_weight(
            name="output_kernel", shape=(*heads, out), initializer=self.kernel_initializer
        )
        self.output_bias = self.add_weight(name="output_bias", shape=(out,), initializer="zeros")

    def call(self, inputs: Sequence[tf.Tensor]) -> tf.Tensor:
        query, key, value = inputs
        if self.axis == 1:
            query, key, value = (ops.transpose(t, (0, 2, 1, 3)) for t in (query, key, value))
        # (weights·value·Wv)·Wo = weights·(value·(Wv Wo)): with fewer outputs than head_size (CXR-Net: 1 and 64)
        # the values go straight to each head's output space.
        values_in_output_space = self.output_kernel.shape[-1] < self.head_size
        if values_in_output_space:
            v = ops.einsum("bxmc,hco->bxhmo", value, ops.einsum("chd,hdo->hco", self.value_kernel, self.output_kernel))
        else:
            v = ops.einsum("bxmc,chd->bxhmd", value, self.value_kernel)
        scale = 1.0 / math.sqrt(self.head_size)
        if key.shape[-1] < self.head_size:
            # q·kᵀ = query·(Wq Wkᵀ)·keyᵀ: with fewer key channels than head_size the per-head (C_q, C_k) bilinear
            # form is far cheaper than projecting both sides to head_size first.
            bilinear = ops.einsum("chd,ehd->hce", self.query_kernel, self.key_kernel) * scale
            q = ops.einsum("bxnc,hce->bxhne", query, bilinear)
            if key.shape[-1] == 1:
                # CXR-Net's key is its binary lung mask: then each row of logits takes two values only
                binary = ops.all(ops.logical_or(ops.equal(key, 0.0), ops.equal(key, 1.0)))
                heads = ops.cond(
                    binary,
                    lambda: _two_valued_attention(q[..., 0], key[..., 0], v),
                    lambda: _attend(ops.einsum("bxhne,bxme->bxhnm", q, key), v),
                )
            else:
                heads = _attend(ops.einsum("bxhne,bxme->bxhnm", q, key), v)
        else:
            q = ops.einsum("bxnc,chd->bxhnd", query, self.query_kernel) * scale
            k = ops.einsum("bxmc,chd->bxhmd", key, self.key_kernel)
            heads = _attend(ops.einsum("bxhnd,bxhmd->bxhnm", q, k), v)
        if values_in_output_space:
            out = ops.sum(heads, axis=2) + self.output_bias
        else:
            out = ops.einsum("bxhnd,hdo->bxno", heads, self.output_kernel) + self.output_bias
        if self.axis == 1:
            out = ops.transpose(out, (0, 2, 1, 3))
        return out

    def compute_output_shape(self, input_shape: Sequence[tuple[int | None, ...]]) -> tuple[int | None, ...]:
        q_shape, _, v_shape = input_shape
        return (*q_shape[:-1], self.output_size or v_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "head_size": self.head_size,
            "axis": self.axis,
            "output_size": self.output_size,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


def _attend(logits: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
    """softmax(logits)·values over the last axis of logits (B, X, H, N, M) and axis 3 of values (B, X, H, M, D)."""
    return ops.einsum("bxhnm,bxhmd->bxhnd", ops.softmax(logits, axis=-1), values)


def _two_valued_attention(alpha: tf.Tensor, key: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
    """:func:`_attend` for logits ``alpha[n]·key[m]`` with every key 0 or 1, in O(N + M) instead of O(N·M).

    A row's logits take two values, ``alpha`` where the key is 1 and 0 where it is 0, so its softmax-weighted sum is
    ``(e1·S1 + e0·S0) / (e1·K1 + e0·K0)`` with K the counts and S the value sums of the two groups, and
    ``e = exp(logit − max over the logits present)`` (softmax's usual shift, which keeps e ≤ 1).

    ``alpha`` (B, X, H, N); ``key`` (B, X, M); ``values`` (B, X, H, M, D).
    """
    ones = ops.sum(key, axis=-1)[:, :, None, None]  # K1, (B, X, 1, 1)
    zeros = key.shape[-1] - ones
    sum_ones = ops.einsum("bxm,bxhmd->bxhd", key, values)[:, :, :, None]
    sum_zeros = ops.sum(values, axis=3)[:, :, :, None] - sum_ones
    top = ops.where(ones == 0, 0.0, ops.where(zeros == 0, alpha, ops.maximum(alpha, 0.0)))
    # an absent group gets exponent 0 (its count and sum are 0): no inf·0, in the values or in their gradients
    e1 = ops.exp(ops.where(ones == 0, 0.0, alpha - top))[..., None]
    e0 = ops.exp(ops.where(zeros == 0, 0.0, -top))[..., None]
    return (e1 * sum_ones + e0 * sum_zeros) / (e1 * ones[..., None] + e0 * zeros[..., None])


@keras.saving.register_keras_serializable(package="cxrzoo")
class LungMaskGate(keras.layers.Layer):
    """The authors' Module 2 mask: ``M = gate(image) · quantize(p_lung)``.

    Called on ``[image, p_lung]``: ``image`` the prepared 8-bit CXR (values 0..255), ``p_lung`` Module 1's lung
    probability. ``quantize`` rounds to ``levels`` steps (the authors wrote the mask as an 8-bit PNG and read it
    back, ``round(255·p) / 255``; ``levels=None`` skips it); ``gate`` is 0 where the image is below ``low`` or
    above ``high`` (burnt-in text, collimator edges), else 1 (docs/models/cxrnet.md).
    """

    def __init__(self, low: float = 6.0, high: float = 225.0, levels: int | None = 255, **kwargs):
        super().__init__(**kwargs)
        self.low, self.high = float(low), float(high)
        self.levels = None if levels is None else int(levels)

    def call(self, inputs: Sequence[tf.Tensor]) -> tf.Tensor:
        image, probability = inputs
        if self.levels is not None:
            probability = ops.round(probability * self.levels) / self.levels
        inside = ops.logical_and(ops.greater_equal(image, self.low), ops.less_equal(image, self.high))
        return probability * ops.cast(inside, probability.dtype)

    def compute_output_shape(self, input_shape: Sequence[tuple[int | None, ...]]) -> tuple[int | None, ...]:
        return input_shape[1]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "low": self.low, "high": self.high, "levels": self.levels}


# --------------------------------------------------------------------------- XLA-friendly separable convolution

_XLA_STATE = threading.local()


@contextlib.contextmanager
def xla_depthwise() -> Iterator[None]:
    """Within this block, :class:`SeparableConv2D` layers *traced* for XLA emit their depthwise convolution as a
    sum of shifted products, which XLA fuses into one loop (several times faster on CPU than XLA's grouped
    convolution, and, fused with the neighbouring BN/activation layers, than TensorFlow's native kernels).

    It only changes how the graph is built, not what it computes; use it around the first call of a
    ``tf.function(jit_compile=True)`` (e.g. ``cxrzoo.models.cxrnet.cxrnet_heatmaps`` does). Outside XLA the
    shifted form would be slow, which is why it is opt-in.
    """
    previous = getattr(_XLA_STATE, "active", False)
    _XLA_STATE.active = True
    try:
        yield
    finally:
        _XLA_STATE.active = previous


@contextlib.contextmanager
def native_dilation(max_rate: int = 3) -> Iterator[None]:
    """Within this block, :class:`SeparableConv2D` layers *traced* for TensorFlow's graph executor compute a
    depthwise convolution with dilation 2..``max_rate`` by TensorFlow's dilated depthwise kernel instead of
    ``tf.nn.depthwise_conv2d``'s space-to-batch rewrite (on a 2-core CPU with oneDNN, 5×5 at rate 3 on a 300×340×48
    map: 6.4 ms instead of 12.3 ms; at rate 5 the rewrite is the faster, hence the limit). Same results to float
    rounding; used for Module 1 by ``cxrzoo.models.cxrnet.cxrnet_heatmaps`` (in its graph and XLA-Module-2 modes).
    """
    previous = getattr(_XLA_STATE, "native_dilation", 0)
    _XLA_STATE.native_dilation = int(max_rate)
    try:
        yield
    finally:
        _XLA_STATE.native_dilation = previous


def _native_dilated_depthwise(x: tf.Tensor, kernel: keras.Variable, dilation: tuple[int, int]) -> tf.Tensor:
    import tensorflow as tf

    kh, kw = int(kernel.shape[0]), int(kernel.shape[1])
    dh, dw = dilation
    top, left = (kh - 1) // 2 * dh, (kw - 1) // 2 * dw
    return tf.raw_ops.DepthwiseConv2dNative(
        input=x,
        filter=kernel,
        strides=[1, 1, 1, 1],
        padding="EXPLICIT",
        dilations=[1, dh, dw, 1],
        explicit_paddings=[0, 0, top, (kh - 1) * dh - top, left, (kw - 1) * dw - left, 0, 0],
    )


def _shifted_depthwise(x: tf.Tensor, kernel: keras.Variable, dilation: tuple[int, int]) -> tf.Tensor:
    """'same'-padded, stride-1 depthwise convolution (multiplier 1) as Σ_taps shift(x) · kernel[tap]."""
    kh, kw = int(kernel.shape[0]), int(kernel.shape[1])
    dh, dw = dilation
    ph, pw = (kh - 1) // 2 * dh, (kw - 1) // 2 * dw
    height, width = x.shape[1], x.shape[2]
    padded = ops.pad(x, [[0, 0], [ph, (kh - 1) * dh - ph], [pw, (kw - 1) * dw - pw], [0, 0]])
    total = None
    for i in range(kh):
        for j in range(kw):
            term = padded[:, i * dh : i * dh + height, j * dw : j * dw + width, :] * kernel[i, j, :, 0]
            total = term if total is None else total + term
    return total


@keras.saving.register_keras_serializable(package="cxrzoo")
class SeparableConv2D(keras.layers.SeparableConv2D):
    """``keras.layers.SeparableConv2D`` (same weights, configuration and results) with an XLA-friendly form.

    Traced inside :func:`xla_depthwise`, a 'same'-padded, stride-1, depth-multiplier-1, channels-last layer with
    static spatial sizes computes its depthwise part as shifted products (see :func:`xla_depthwise`); otherwise
    it is exactly Keras' layer. Res-CR-Net and CXR-Net Module 2 use it for their dilated branches.
    """

    def _shiftable(self, inputs: tf.Tensor) -> bool:
        return (
            getattr(_XLA_STATE, "active", False)
            and self.padding == "same"
            and self.strides == (1, 1)
            and self.depth_multiplier == 1
            and self.data_format == "channels_last"
            and inputs.shape[1] is not None
            and inputs.shape[2] is not None
        )

    def _native_dilated(self) -> bool:
        rate = getattr(_XLA_STATE, "native_dilation", 0)
        return (
            rate > 0
            and not getattr(_XLA_STATE, "active", False)
            and self.padding == "same"
            and self.strides == (1, 1)
            and self.data_format == "channels_last"
            and 1 < max(self.dilation_rate) <= rate
        )

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        if self._native_dilated():
            x = _native_dilated_depthwise(inputs, self.depthwise_kernel, self.dilation_rate)
        elif not self._shiftable(inputs):
            return super().call(inputs)
        else:
            x = _shifted_depthwise(inputs, self.depthwise_kernel, self.dilation_rate)
        x = ops.conv(x, self.pointwise_kernel, strides=1, padding="valid", data_format="channels_last")
        if self.use_bias:
            x = x + self.bias
        return self.activation(x) if self.activation is not None else x
