"""COVID-XNet: a small custom CNN with a GAP → softmax head, explained with class activation maps.

Reference:
    Duran-Lopez, Dominguez-Morales, Corral-Jaime, Vicente-Diaz, Linares-Barranco, "COVID-XNet: A Custom Deep
    Learning System to Diagnose and Locate COVID-19 in Chest X-ray Images", Applied Sciences 10(16):5683, 2020,
    doi:10.3390/app10165683. No code or weights of the authors are public.

Architecture (§2.2.2 and Fig. 2 of the paper)::

    input (128, 128, 1) ─ conv1 5×5 ─ pool ─ conv2 5×5 ─ pool ─ conv3 5×5 ─ pool ─ conv4 3×3 ─ pool ─ conv5 3×3
                        ─ GAP "avg_pool" ─ Dense(classes) "predictions" (logits) ─ softmax

Stated by the paper: the five convolutions and their kernel sizes, four 2×2 max-pools, global average pooling, a
softmax layer, the 128×128 grayscale input, training from scratch. **Not stated** (Figure 2 is not in the text):
the filters per convolution, padding, activation, batch normalization, dropout, where exactly the pools sit. They
are arguments here; the defaults are this project's choices, documented in docs/models/covid_xnet.md: filters
(16, 32, 64, 128, 256) doubling per stage, "same" padding, ReLU, no batch normalization, no dropout, a pool after
each of conv1–conv4 (the only placement that gives four pools before conv5).

The GAP → dense head is what makes class activation maps (Zhou et al. 2016) exact:
``cxrzoo.explain.CAM()(model, images)`` weights the ``conv5_act`` maps by the dense kernel of the class.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from cxrzoo.nn.blocks import classifier_top, make_input
from cxrzoo.nn.model import register_model
from cxrzoo.weights.loading import load_weights

ARCH = "covid_xnet"
PAPER_KERNEL_SIZES = (5, 5, 5, 3, 3)
DEFAULT_FILTERS = (16, 32, 64, 128, 256)  # not in the paper: this project's choice
CLASS_NAMES = ("normal", "covid")


def conv_block(
    x: keras.KerasTensor,
    filters: int,
    kernel_size: int,
    *,
    name: str,
    padding: str = "same",
    activation: str = "relu",
    batch_norm: bool = False,
    pool: bool = True,
    kernel_initializer: str | keras.initializers.Initializer = "glorot_uniform",
) -> keras.KerasTensor:
    """Convolution ``name`` → optional BatchNormalization → activation ``name_act`` → optional 2×2 max-pool."""
    x = keras.layers.Conv2D(
        filters, kernel_size, padding=padding, use_bias=not batch_norm, kernel_initializer=kernel_initializer, name=name
    )(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    x = keras.layers.Activation(activation, name=f"{name}_act")(x)
    if pool:
        x = keras.layers.MaxPooling2D(2, name=f"pool{name.removeprefix('conv')}")(x)
    return x


@register_model(paper="covid_xnet", task="classification", cam_layer="conv5_act")
def build_covid_xnet(
    *,
    weights: str | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] = (128, 128, 1),
    filters: Sequence[int] = DEFAULT_FILTERS,
    kernel_sizes: Sequence[int] = PAPER_KERNEL_SIZES,
    padding: str = "same",
    activation: str = "relu",
    batch_norm: bool = False,
    dropout: float = 0.0,
    include_top: bool = True,
    pooling: str | None = None,
    classes: int = 2,
    classifier_activation: str | None = "softmax",
    kernel_initializer: str | keras.initializers.Initializer = "glorot_uniform",
    name: str = "covid_xnet",
) -> keras.Model:
    """COVID-XNet: five convolutions (5×5, 5×5, 5×5, 3×3, 3×3), four 2×2 max-pools, GAP and a softmax layer.

    Reference: Duran-Lopez et al., COVID-XNet, §2.2.2, Fig. 2.

    Args:
        weights: None or a path to weights saved from this model (the authors published none).
        input_tensor: optional Keras tensor to build on.
        input_shape: (128, 128, 1) in the paper (grayscale after histogram matching, bone suppression and CLAHE;
            recipe ``"covid_xnet"``).
        filters: maps of conv1–conv5; **not stated in the paper**, default (16, 32, 64, 128, 256) is ours.
        kernel_sizes: the paper's (5, 5, 5, 3, 3).
        padding, activation, batch_norm, dropout: **not stated**; ours: "same", "relu", False, 0.0 (dropout, when
            > 0, is applied after the GAP).
        include_top: False ends at the conv5 features (pooled with ``pooling="avg"``/``"max"``).
        pooling: only with ``include_top=False``.
        classes: 2 in the paper (index 0 normal, 1 COVID-19).
        classifier_activation: "softmax" (paper), "sigmoid" or None; a separate layer after the Dense
            ``predictions`` (the logits).
        kernel_initializer: Keras default (the paper does not say).
        name: model name.

    Input contract: float32 (B, 128, 128, 1) in [0, 1] (8-bit preprocessed image / 255).

    Returns:
        A ``keras.Model``; with the default filters 434,050 parameters at (128, 128, 1).

    Example:
        >>> model = cxrzoo.build_covid_xnet()
        >>> model.compile("adadelta", "categorical_crossentropy")   # the paper's optimizer, batch 32
    """
    filters = tuple(int(f) for f in filters)
    kernel_sizes = tuple(int(k) for k in kernel_sizes)
    if len(filters) != 5 or len(kernel_sizes) != 5:
        raise ValueError(f"COVID-XNet has five convolutions: got filters={filters}, kernel_sizes={kernel_sizes}")
    if min(filters) < 1 or min(kernel_sizes) < 1:
        raise ValueError(f"filters and kernel sizes must be positive: {filters}, {kernel_sizes}")
    if padding not in ("same", "valid"):
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    inputs = make_input(input_tensor, input_shape)
    x = inputs
    for i, (f, k) in enumerate(zip(filters, kernel_sizes), start=1):
        x = conv_block(
            x,
            f,
            k,
            name=f"conv{i}",
            padding=padding,
            activation=activation,
            batch_norm=batch_norm,
            pool=i < 5,
            kernel_initializer=kernel_initializer,
        )
    x = classifier_top(
        x,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        dropout=dropout,
    )
    model = keras.Model(inputs, x, name=name)
    return load_weights(model, weights, arch=ARCH)
