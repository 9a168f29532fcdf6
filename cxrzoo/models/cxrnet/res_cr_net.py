"""Res-CR-Net, the lung segmenter of CXR-Net (Module 1), and its CONV RES blocks.

Reference:
    Gatti et al., "CXR-Net: A Multitask Deep Learning Network for Explainable and Accurate Diagnosis of COVID-19
    Pneumonia from Chest X-ray Images", Module 1; Abdallah et al., "Res-CR-Net, a residual
    network with a novel architecture optimized for the semantic segmentation of microscopy images" for the full
    network with convolutional-LSTM blocks. Authors' code: github.com/dgattiwsu/CXR-Net, dgattiwsu/Res-CR-Net.

Architecture (CXR-Net Module 1, ``conv_blocks=5, lstm_blocks=0``)::

    input (H, W, 1) ─ stem ─ drop ─ [res ─ drop] × 4 ─ res ─ 1×1 conv(classes) ─ LeakyReLU(0.1) ─ softmax

Every block runs three parallel branches (3×3 dilation 1, 5×5 dilation 3, 7×7 dilation 5 in Module 1), each
``SeparableConv → BN → LeakyReLU → SeparableConv`` with ``filters`` maps; the branches are concatenated and added
to a 1×1-convolution + BN shortcut taken from the block's raw input. Residual blocks pre-activate their input
(BN → LeakyReLU) for the branches only. Nothing is downsampled, so the network accepts any height and width.

Layer names are descriptive (``block3_branch2_conv1``); :func:`legacy_layer_names` maps them to the names the
authors' Keras 2 files use, and the published weights load by name through that map.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import keras

from cxrzoo.models.cxrnet.layers import SeparableConv2D
from cxrzoo.nn.layers import ExpandDims, ReduceSum
from cxrzoo.nn.model import register_model
from cxrzoo.weights.loading import load_default, load_weights

if TYPE_CHECKING:
    from cxrzoo.weights.manifest import WeightsEntry

LEAKY_SLOPE = 0.1
ARCH = "res_cr_net"


def conv_branch(
    x: keras.KerasTensor,
    filters: int,
    kernel_size: int,
    dilation_rate: int,
    *,
    name: str,
    kernel_initializer: str | keras.initializers.Initializer = "he_normal",
    first_regularizer: keras.regularizers.Regularizer | None = None,
) -> keras.KerasTensor:
    """One residual branch: SeparableConv → BN → LeakyReLU → SeparableConv (linear, with bias)."""
    conv = dict(padding="same", depthwise_initializer=kernel_initializer, pointwise_initializer=kernel_initializer)
    x = SeparableConv2D(
        filters,
        kernel_size,
        dilation_rate=dilation_rate,
        name=f"{name}_conv1",
        depthwise_regularizer=first_regularizer,
        pointwise_regularizer=first_regularizer,
        **conv,
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    x = keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"{name}_act")(x)
    return SeparableConv2D(filters, kernel_size, dilation_rate=dilation_rate, name=f"{name}_conv2", **conv)(x)


def conv_res_block(
    x: keras.KerasTensor,
    filters: int,
    *,
    kernel_sizes: Sequence[int],
    dilation_rates: Sequence[int],
    name: str,
    preactivate: bool,
    mode: str = "conc",
    kernel_initializer: str | keras.initializers.Initializer = "he_normal",
    first_regularizer: keras.regularizers.Regularizer | None = None,
) -> keras.KerasTensor:
    """The CONV RES block of Res-CR-Net and CXR-Net.

    ``mode="conc"`` concatenates the branches (``len(kernel_sizes) * filters`` maps) and adds a shortcut of that
    width; ``mode="add"`` sums the branches and a ``filters``-wide shortcut. With ``preactivate`` the branches see
    ``LeakyReLU(BN(x))`` while the shortcut always sees the raw ``x`` (the authors' ordering).
    """
    if mode not in ("conc", "add"):
        raise ValueError(f"mode must be 'conc' or 'add', got {mode!r}")
    if len(kernel_sizes) != len(dilation_rates):
        raise ValueError("kernel_sizes and dilation_rates must have the same length")
    branch_input = x
    if preactivate:
        branch_input = keras.layers.BatchNormalization(name=f"{name}_preact_bn")(x)
        branch_input = keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"{name}_preact_act")(branch_input)
    branches = [
        conv_branch(
            branch_input,
            filters,
            k,
            d,
            name=f"{name}_branch{i}",
            kernel_initializer=kernel_initializer,
            first_regularizer=first_regularizer,
        )
        for i, (k, d) in enumerate(zip(kernel_sizes, dilation_rates), start=1)
    ]
    width = filters * len(branches) if mode == "conc" else filters
    shortcut = keras.layers.Conv2D(
        width, 1, padding="same", kernel_initializer=kernel_initializer, name=f"{name}_shortcut_conv"
    )(x)
    shortcut = keras.layers.BatchNormalization(name=f"{name}_shortcut_bn")(shortcut)
    if mode == "conc":
        merged = keras.layers.Concatenate(name=f"{name}_concat")(branches)
        return keras.layers.Add(name=f"{name}_add")([shortcut, merged])
    return keras.layers.Add(name=f"{name}_add")([shortcut, *branches])


def lstm_res_block(
    x: keras.KerasTensor,
    classes: int,
    *,
    filters: int = 1,
    recurrent_dropout: float = 0.1,
    name: str,
    kernel_initializer: str | keras.initializers.Initializer = "he_normal",
) -> keras.KerasTensor:
    """The LSTM RES block of the full Res-CR-Net.

    A 1×1 convolution to ``classes`` maps with LeakyReLU gives ``y`` (B, H, W, C). ``y`` is viewed as a sequence
    over rows of (W, C, 1) slices and over columns of (H, C, 1) slices; a bidirectional ConvLSTM2D runs along each
    (kernel 3 × C), the two outputs are added and their channel axis summed away, and the result is added to ``y``.
    The authors' code also builds a second 1×1 shortcut that its output never uses; it is left out here, which
    changes neither the outputs nor the parameter count of the authors' graph.
    """
    y = keras.layers.Conv2D(classes, 1, padding="same", kernel_initializer=kernel_initializer, name=f"{name}_conv")(x)
    y = keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"{name}_act")(y)
    seq = ExpandDims(-1, name=f"{name}_expand")(y)  # (B, H, W, C, 1): H is the time axis

    def bidirectional(tag: str) -> keras.layers.Bidirectional:
        return keras.layers.Bidirectional(
            keras.layers.ConvLSTM2D(
                filters,
                kernel_size=(3, classes),
                padding="same",
                return_sequences=True,
                recurrent_dropout=recurrent_dropout,
                kernel_initializer=kernel_initializer,
            ),
            name=f"{name}_{tag}_lstm",
        )

    rows = bidirectional("rows")(seq)
    cols = keras.layers.Permute((2, 1, 3, 4), name=f"{name}_to_cols")(seq)
    cols = bidirectional("cols")(cols)
    cols = keras.layers.Permute((2, 1, 3, 4), name=f"{name}_from_cols")(cols)
    residual = ReduceSum(-1, name=f"{name}_sum")(keras.layers.Add(name=f"{name}_merge")([rows, cols]))
    return keras.layers.Add(name=f"{name}_add")([y, residual])


def _k2(base: str, index: int) -> str:
    """Keras 2 auto-name: ``base`` for the first layer of a type, then ``base_1``, ``base_2``, ..."""
    return base if index == 0 else f"{base}_{index}"


def legacy_layer_names(conv_blocks: int = 5, branches: int = 3) -> dict[str, str]:
    """Map of cxrzoo layer names → the Keras 2 names in the authors' Module 1 files (``lstm_blocks=0`` only).

    The authors' graph is stem + ``conv_blocks - 1`` residual blocks + one extra residual block, built in order,
    so Keras 2 numbered each layer type in block order (docs/models/cxrnet.md).
    """
    if branches != 3:
        raise ValueError("the authors' files have exactly three branches per block")
    names = {}
    for i in range(branches):
        names[f"stem_branch{i + 1}_conv1"] = _k2("separable_conv2d", 2 * i)
        names[f"stem_branch{i + 1}_conv2"] = _k2("separable_conv2d", 2 * i + 1)
        names[f"stem_branch{i + 1}_bn"] = _k2("batch_normalization", i)
    names["stem_shortcut_conv"] = "conv2d"
    names["stem_shortcut_bn"] = "batch_normalization_3"
    for r in range(1, conv_blocks + 1):
        names[f"block{r}_preact_bn"] = _k2("batch_normalization", 5 * r - 1)
        for i in range(branches):
            names[f"block{r}_branch{i + 1}_conv1"] = _k2("separable_conv2d", 6 * r + 2 * i)
            names[f"block{r}_branch{i + 1}_conv2"] = _k2("separable_conv2d", 6 * r + 2 * i + 1)
            names[f"block{r}_branch{i + 1}_bn"] = _k2("batch_normalization", 5 * r + i)
        names[f"block{r}_shortcut_conv"] = _k2("conv2d", r)
        names[f"block{r}_shortcut_bn"] = _k2("batch_normalization", 5 * r + 3)
    names["head_conv"] = _k2("conv2d", conv_blocks + 1)
    return names


def _load_res_cr_net_weights(model: keras.Model, paths: list[Path], entry: WeightsEntry | None) -> None:
    blocks = sum(1 for layer in model.layers if layer.name.endswith("_preact_bn"))
    load_default(model, paths, entry, name_map=legacy_layer_names(conv_blocks=blocks))


@register_model(paper="cxrnet", task="segmentation", cam_layer="head_conv")
def build_res_cr_net(
    *,
    weights: str | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] = (300, 340, 1),
    classes: int = 2,
    filters: int = 16,
    conv_blocks: int = 5,
    lstm_blocks: int = 0,
    kernel_sizes: Sequence[int] = (3, 5, 7),
    dilation_rates: Sequence[int] = (1, 3, 5),
    dropout: float = 0.05,
    lstm_filters: int = 1,
    recurrent_dropout: float = 0.1,
    classifier_activation: str | None = "softmax",
    kernel_initializer: str | keras.initializers.Initializer = "he_normal",
    name: str = "res_cr_net",
) -> keras.Model:
    """Res-CR-Net lung segmenter (CXR-Net Module 1; the full Res-CR-Net with ``lstm_blocks > 0``).

    Reference: Gatti et al., CXR-Net, §2 "Module 1"; Abdallah et al., Res-CR-Net.

    Args:
        weights: None, a tag (``"res_cr_net.v7_lungs"``: V7 lungs incl. heart, used by CXR-Net;
            ``"res_cr_net.jms_lungs"``: JSRT+Montgomery+Shenzhen lungs excl. heart) or a weights file path.
        input_tensor: optional Keras tensor to build on.
        input_shape: (H, W, 1); any H and W (``(None, None, 1)`` for variable sizes, except with ``lstm_blocks``,
            whose ConvLSTM2D layers need fixed sizes). The published weights were trained at (300, 340, 1).
        classes: output channels; with the published weights channel 0 is "lungs", channel 1 "non_lungs".
        filters: maps per branch (16 in CXR-Net).
        conv_blocks: CONV RES blocks before the head: the stem plus ``conv_blocks - 1`` residual blocks, each
            followed by SpatialDropout2D; with ``lstm_blocks=0`` one more residual block and a 1×1 "shrink"
            convolution + LeakyReLU follow (CXR-Net: 5).
        lstm_blocks: LSTM RES blocks after the CONV RES blocks (the full Res-CR-Net); 0 in CXR-Net.
        kernel_sizes, dilation_rates: the three parallel branches (3×3 d1, 5×5 d3, 7×7 d5).
        dropout: SpatialDropout2D rate after the stem and each looped residual block.
        lstm_filters, recurrent_dropout: ConvLSTM2D settings of the LSTM RES blocks.
        classifier_activation: "softmax" (published) or None for the pre-softmax LeakyReLU maps.
        kernel_initializer: the authors used ``he_normal`` (seeded); only matters for training from scratch.
        name: model name.

    Input contract (published weights): an 8-bit CXR prepared as the authors did (see
    :func:`cxrzoo.prepare_cxrnet_input`) divided by 255, float32 (B, 300, 340, 1). No mean/std standardization.

    Returns:
        A ``keras.Model`` mapping (B, H, W, 1) to per-pixel class probabilities (B, H, W, ``classes``).
        At (300, 340, 1) CXR-Net Module 1 has 59,941 parameters (58,309 trainable).

    Example:
        >>> model = cxrzoo.build_res_cr_net(weights="res_cr_net.v7_lungs")
        >>> p_lung = model.predict(image[None, ..., None] / 255.0)[0, ..., 0]
    """
    if conv_blocks < 1:
        raise ValueError(f"conv_blocks must be >= 1, got {conv_blocks}")
    if lstm_blocks < 0:
        raise ValueError(f"lstm_blocks must be >= 0, got {lstm_blocks}")
    if classifier_activation not in ("softmax", "sigmoid", None):
        raise ValueError(f"classifier_activation must be 'softmax', 'sigmoid' or None, got {classifier_activation!r}")
    if lstm_blocks and (input_tensor is None and None in tuple(input_shape)[:2]):
        raise ValueError(
            "lstm_blocks > 0 needs a fixed input height and width (Keras ConvLSTM2D runs over static "
            f"spatial sizes); got input_shape={tuple(input_shape)}"
        )
    if input_tensor is None:
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (H, W, C), got {input_shape}")
        inputs = keras.Input(shape=tuple(input_shape), name="image")
    else:
        inputs = input_tensor
    block = dict(
        kernel_sizes=tuple(kernel_sizes), dilation_rates=tuple(dilation_rates), kernel_initializer=kernel_initializer
    )

    x = conv_res_block(inputs, filters, name="stem", preactivate=False, **block)
    x = keras.layers.SpatialDropout2D(dropout, name="stem_dropout")(x)
    for r in range(1, conv_blocks):
        x = conv_res_block(x, filters, name=f"block{r}", preactivate=True, **block)
        x = keras.layers.SpatialDropout2D(dropout, name=f"block{r}_dropout")(x)
    if lstm_blocks == 0:
        x = conv_res_block(x, filters, name=f"block{conv_blocks}", preactivate=True, **block)
        x = keras.layers.Conv2D(classes, 1, padding="same", kernel_initializer=kernel_initializer, name="head_conv")(x)
        x = keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name="head_act")(x)
    else:
        for m in range(1, lstm_blocks + 1):
            x = lstm_res_block(
                x,
                classes,
                filters=lstm_filters,
                recurrent_dropout=recurrent_dropout,
                name=f"lstm{m}",
                kernel_initializer=kernel_initializer,
            )
    if classifier_activation is not None:
        x = keras.layers.Activation(classifier_activation, name=classifier_activation)(x)
    model = keras.Model(inputs, x, name=name)
    # Fully convolutional: the weights fit any input size, so only the structural arguments are checked.
    return load_weights(
        model,
        weights,
        arch=ARCH,
        loader=_load_res_cr_net_weights,
        classes=classes,
        filters=filters,
        conv_blocks=conv_blocks,
        lstm_blocks=lstm_blocks,
    )
