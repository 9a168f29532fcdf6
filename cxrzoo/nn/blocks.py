"""Builder helpers shared by every paper's models: inputs, keras.applications-style classifier tops, checks.

Nothing here carries a paper's defaults; the builders under :mod:`cxrzoo.models` call these with theirs.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras


def make_input(
    input_tensor: keras.KerasTensor | None, input_shape: Sequence[int | None], *, name: str = "image"
) -> keras.KerasTensor:
    """``input_tensor`` if given, else a ``keras.Input`` of ``input_shape`` (validated as (H, W, C))."""
    if input_tensor is not None:
        return input_tensor
    if len(tuple(input_shape)) != 3:
        raise ValueError(f"input_shape must be (H, W, C), got {tuple(input_shape)}")
    if input_shape[-1] is None:
        raise ValueError(f"the channel count of input_shape must be known, got {tuple(input_shape)}")
    return keras.Input(shape=tuple(input_shape), name=name)


def check_divisible(inputs: keras.KerasTensor, divisor: int = 32) -> None:
    """Raises ValueError when a known spatial size of ``inputs`` is not a multiple of ``divisor``.

    Every decoder concatenates upsampled maps with encoder maps of the same stride, which only line up when the
    input halves exactly five times (SMP raises at run time for the same reason).
    """
    sizes = tuple(inputs.shape[1:3])
    if any(s is not None and s % divisor for s in sizes):
        raise ValueError(
            f"input height and width must be multiples of {divisor} for these encoder-decoder "
            f"models, got {sizes}; resize or pad the image (e.g. to 256×256)"
        )


def count_trainable(model: keras.Layer) -> int:
    """Trainable parameters the PyTorch way: conv/dense weights and biases and BN/GN γ, β (no running stats)."""
    total = 0
    for w in model.trainable_weights:
        size = 1
        for d in w.shape:
            size *= int(d)
        total += size
    return total


CLASSIFIER_ACTIVATIONS = (None, "softmax", "sigmoid")


def classifier_top(
    x: keras.KerasTensor,
    *,
    include_top: bool = True,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    dropout: float = 0.0,
) -> keras.KerasTensor:
    """keras.applications-style end of a classifier: global average pool → [dropout] → Dense ``predictions`` →
    optional activation layer (kept separate so the logits stay reachable at ``predictions``); without the top,
    ``pooling`` None / "avg" / "max"."""
    if classifier_activation not in CLASSIFIER_ACTIVATIONS:
        raise ValueError(f"classifier_activation must be None, 'softmax' or 'sigmoid', got {classifier_activation!r}")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    if not include_top:
        if pooling == "avg":
            return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if pooling == "max":
            return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
        return x
    if classes < 1:
        raise ValueError(f"classes must be >= 1, got {classes}")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="top_dropout")(x)
    return dense_predictions(x, classes, classifier_activation)


def dense_predictions(
    x: keras.KerasTensor, classes: int, classifier_activation: str | None, *, name: str = "predictions"
) -> keras.KerasTensor:
    """Dense ``name`` (the logits) followed, when asked, by a separate ``{name}_{activation}`` layer."""
    x = keras.layers.Dense(classes, name=name)(x)
    if classifier_activation is not None:
        x = keras.layers.Activation(classifier_activation, name=f"{name}_{classifier_activation}")(x)
    return x
