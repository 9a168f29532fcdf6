"""COVID-CXNet: the CheXNet-initialized DenseNet-121 classifier, the paper's base model, its lung U-Net, and the
two-level (hierarchical) classifier.

Reference:
    Haghanifar, Majdabadi, Choi, Deivalakshmi, Ko, "COVID-CXNet: Detecting COVID-19 in Frontal Chest X-ray Images
    using Deep Learning", arXiv:2006.13807. Authors' code: github.com/armiro/COVID-CXNet (MIT).

Architectures (exact definitions from the authors' notebooks and files; docs/models/covid_cxnet.md)::

    COVID-CXNet     input (320, 320, 3) ─ DenseNet-121 (no top) ─ GAP "pooling_layer" ─ Dense(10, relu) "fc"
                    ─ Dropout(0.2) "dropout" ─ Dense(1, sigmoid) or Dense(3, softmax) "pred"
                    431 layers; 7,047,765 parameters (classes=1), 7,047,787 (classes=3)
    base model      input ─ Conv(32, 5×5/2) ─ [Conv(32, 3×3/2)] × 4 (valid, relu) ─ Flatten ─ Dense(10, relu) × 2
                    ─ Dense(1, sigmoid)   (the paper's text says 3×3 and three FC layers; the files say this)
    lung U-Net      4 levels (32–256 filters, two 3×3 convs each, 2×2 max-pool) ─ 512 bottleneck
                    ─ 4 × (2×2/2 transposed conv, skip concat, two 3×3 convs) ─ 1×1 sigmoid; 7,759,521 parameters
    hierarchical    level 1 normal vs pneumonia, level 2 COVID-19 vs CAP, two binary COVID-CXNets combined into
                    P(normal) = 1 − p₁, P(CAP) = p₁(1 − p₂), P(COVID-19) = p₁p₂

Weights: the final COVID-CXNet weights were never published. ``backbone_weights="covid_cxnet.chexnet_init"`` loads
the CheXNet (brucechou1983/CheXNet-Keras v0.3.0) DenseNet-121 weights the authors started from, by layer order as
their ``load_weights`` call did; the file and the U-Net's are published but are not in the offline mirror (only
their git blob SHA-1 is known, and the resolver verifies it). The base model's tags load by layer name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np

from cxrzoo.nn.blocks import classifier_top, make_input
from cxrzoo.nn.model import register_model
from cxrzoo.weights.loading import (
    assign_by_order,
    is_legacy_h5,
    load_default,
    load_weights,
    read_legacy_h5,
    resolve_weights,
    weighted_layers,
)

if TYPE_CHECKING:
    from cxrzoo.weights.manifest import WeightsEntry

ARCH = "covid_cxnet"
BASE_ARCH = "covid_cxnet_base"
UNET_ARCH = "covid_cxnet_lung_unet"
CLASS_NAMES_3 = ("normal", "cap", "covid")  # the authors' dataset_exporter encoding: 0, 1, 2
HEAD_LAYERS = ("pooling_layer", "fc", "dropout", "pred")


def _first_conv_to_grayscale(layer: keras.Layer, values: list[np.ndarray]) -> list[np.ndarray]:
    """Sums an RGB first-convolution kernel over its input channels for a one-channel model (same response to a
    grey image replicated on three channels)."""
    if layer.weights and len(layer.weights[0].shape) == 4 and layer.weights[0].shape[2] == 1:
        kernel = np.asarray(values[0])
        if kernel.ndim == 4 and kernel.shape[2] == 3:
            return [kernel.sum(axis=2, keepdims=True), *values[1:]]
    return values


def _backbone_layers(model: keras.Model) -> list:
    return [layer for layer in weighted_layers(model) if layer.name not in HEAD_LAYERS]


def load_chexnet_backbone(model: keras.Model, path: str | Path) -> None:
    """Loads a CheXNet-Keras weights file (DenseNet-121 + GAP + Dense(14), Keras 2) into the DenseNet-121 of a
    COVID-CXNet model, by layer order; the 14-way head is checked and discarded.

    This is what the authors' ``CheXNet.py`` did (``load_weights`` into a rebuilt DenseNet121). Keras-2-era names
    (``conv1/conv``) do not matter; shapes are checked layer by layer. For a one-channel model the first kernel is
    summed over its three input channels.
    """
    path = Path(path)
    if not is_legacy_h5(path):
        raise ValueError(f"{path} is not a Keras 2 HDF5 weights file (expected CheXNet-Keras v0.3.0 weights)")
    arrays = list(read_legacy_h5(path).items())
    layers = _backbone_layers(model)
    if len(arrays) == len(layers) + 1:
        head_name, head = arrays.pop()
        if len(head) != 2 or np.ndim(head[0]) != 2 or np.shape(head[0])[0] != layers[-1].weights[0].shape[-1]:
            raise ValueError(
                f"{path}: the last layer {head_name!r} is not a Dense head on the 1024 DenseNet "
                f"features (shapes {[np.shape(a) for a in head]})"
            )
    assign_by_order(layers, arrays, source=str(path), convert=_first_conv_to_grayscale)


def _load_by_order_or_default(
    model: keras.Model,
    paths: list[Path],
    entry: WeightsEntry | None,
    *,
    convert: Callable[[keras.Layer, list[np.ndarray]], list[np.ndarray]] | None = None,
) -> None:
    """A Keras 2 HDF5 file → :func:`assign_by_order` over every weighted layer (the authors' files carry Keras 2
    auto-names or Keras-2-era DenseNet names such as ``conv1/conv``); a Keras 3 file → ``load_default``."""
    path = paths[0]
    if path.suffix in {".h5", ".hdf5"} and is_legacy_h5(path):
        assign_by_order(weighted_layers(model), list(read_legacy_h5(path).items()), source=str(path), convert=convert)
    else:
        load_default(model, paths, entry)


def _load_covid_cxnet_weights(model: keras.Model, paths: list[Path], entry: WeightsEntry | None) -> None:
    _load_by_order_or_default(model, paths, entry, convert=_first_conv_to_grayscale)


# --------------------------------------------------------------------------------------------------------------
# COVID-CXNet


def _head_activation(classes: int, classifier_activation: str | None) -> str | None:
    if classes < 1:
        raise ValueError(f"classes must be >= 1, got {classes}")
    if classifier_activation == "auto":
        return "sigmoid" if classes == 1 else "softmax"
    if classifier_activation not in ("sigmoid", "softmax", None):
        raise ValueError(
            f"classifier_activation must be 'auto', 'sigmoid', 'softmax' or None, got {classifier_activation!r}"
        )
    return classifier_activation


@register_model(paper="covid_cxnet", task="classification", cam_layer="relu")
def build_covid_cxnet(
    *,
    weights: str | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] = (320, 320, 3),
    include_top: bool = True,
    pooling: str | None = None,
    classes: int = 1,
    classifier_activation: str | None = "auto",
    backbone_weights: str | None = None,
    fc_units: int = 10,
    dropout: float = 0.2,
    name: str = "covid_cxnet",
) -> keras.Model:
    """COVID-CXNet: DenseNet-121 (CheXNet initialization) + GAP + Dense(10, relu) + Dropout(0.2) + head.

    Reference: Haghanifar et al., COVID-CXNet, §4.3, Fig. 8 and Table 6; the authors' notebooks.

    Args:
        weights: None or a path to weights saved from this model (a Keras 3 ``.weights.h5`` / ``.keras`` file, or
            a Keras 2 HDF5 of the authors' graph, matched by layer order). The final COVID-CXNet weights were never
            published, so there is no tag.
        input_tensor: optional Keras tensor to build on.
        input_shape: (H, W, C); the authors used (320, 320, 3), channels [BEASF, CLAHE, original] / 255 (see the
            ``"covid_cxnet"`` preprocessing recipe). C = 1 is allowed (the CheXNet first kernel is then summed over
            its input channels).
        include_top: with False the model ends at the DenseNet features (10×10×1024 at 320×320), pooled when
            ``pooling`` is "avg" or "max".
        pooling: only with ``include_top=False``.
        classes: 1 (binary COVID-19 vs normal, sigmoid) or 3 (normal / CAP / COVID-19, softmax, in that order).
        classifier_activation: "auto" (sigmoid for 1 class, softmax otherwise), "sigmoid", "softmax" or None
            (logits).
        backbone_weights: None (random initialization), ``"covid_cxnet.chexnet_init"`` (CheXNet-Keras v0.3.0, as
            the authors; not in the offline mirror, verified by its git blob SHA-1 when fetched) or a path to such
            a Keras 2 file. Loaded by layer order; the 14-way CheXNet head is discarded.
        fc_units: 10 in the paper. dropout: 0.2 in the paper.
        name: model name.

    Input contract: float32 (B, 320, 320, 3) in [0, 1]; no ImageNet mean/std (the authors fed /255 even though
    CheXNet was trained with ImageNet normalization).

    Returns:
        A ``keras.Model``; at (320, 320, 3) it has 431 layers and 7,047,765 parameters (classes=1) or 7,047,787
        (classes=3). The Grad-CAM target is the final DenseNet ``relu`` (10×10×1024).

    Example:
        >>> model = cxrzoo.build_covid_cxnet(backbone_weights="covid_cxnet.chexnet_init")  # then fine-tune
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if include_top and pooling is not None:
        raise ValueError("pooling is only used with include_top=False")
    activation = _head_activation(classes, classifier_activation)
    # Resolve (and hash-check) the backbone file before the slow DenseNet build, so a miss fails fast.
    backbone_path = None
    if backbone_weights is not None:
        backbone_path = resolve_weights(backbone_weights, arch=ARCH, role="backbone")[0][0]
    inputs = make_input(input_tensor, input_shape)
    backbone = keras.applications.DenseNet121(include_top=False, weights=None, input_tensor=inputs)
    x = backbone.output
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="pooling_layer")(x)
        x = keras.layers.Dense(fc_units, activation="relu", name="fc")(x)
        x = keras.layers.Dropout(dropout, name="dropout")(x)
        x = keras.layers.Dense(classes, activation=activation, name="pred")(x)
    else:
        x = classifier_top(x, include_top=False, pooling=pooling)
    model = keras.Model(inputs, x, name=name)
    if backbone_path is not None:
        load_chexnet_backbone(model, backbone_path)
    return load_weights(model, weights, arch=ARCH, loader=_load_covid_cxnet_weights)


# --------------------------------------------------------------------------------------------------------------
# The base model


@register_model(paper="covid_cxnet", task="classification", cam_layer="conv_layer5")
def build_covid_cxnet_base(
    *,
    weights: str | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] | None = None,
    name: str = "covid_cxnet_base",
) -> keras.Model:
    """The paper's "base model": five strided convolutions, two Dense(10) and a sigmoid, as the authors' files
    define it.

    Reference: Haghanifar et al., COVID-CXNet, §4.1 and Fig. 5; ``main.py`` and every base-model
    HDF5 of armiro/COVID-CXNet (model name ``binary_classifier``). The files differ from the paper's text: the
    first convolution is 5×5 (not 3×3) and there are two FC-10 layers before the output.

    Args:
        weights: None, a tag (``"covid_cxnet_base.v1_0"``: grayscale 400×400, file name records val. accuracy
            0.9672; ``"covid_cxnet_base.v_free"``: [original, BEASF, CLAHE] 300×300) or a path. Loaded by layer
            name from the authors' full Keras 2.3.1 model files.
        input_tensor: optional Keras tensor to build on.
        input_shape: (H, W, C); default (320, 320, 3), or the tag's shape when ``weights`` is a tag (the Flatten
            size, hence the weights, depend on it).
        name: model name (the authors': ``binary_classifier``).

    Input contract (published weights): float32 images / 255 (recipe ``"covid_cxnet_base"``).

    Returns:
        A ``keras.Model`` (B, H, W, C) → (B, 1) P(COVID-19). 60,035 parameters at 320×320×3 or 300×300×3,
        76,675 at 400×400×1.

    Example:
        >>> model = cxrzoo.build_covid_cxnet_base(weights="covid_cxnet_base.v_free")
    """
    if input_shape is None:
        input_shape = (320, 320, 3)
        if weights is not None and input_tensor is None:
            from cxrzoo.weights.loading import looks_like_path

            if not looks_like_path(weights):
                from cxrzoo.weights import weights_info

                input_shape = tuple(weights_info(str(weights)).builder_kwargs.get("input_shape", input_shape))
    inputs = make_input(input_tensor, input_shape, name="input_layer")
    x = keras.layers.Conv2D(32, 5, strides=2, padding="valid", activation="relu", name="conv_layer1")(inputs)
    for i in range(2, 6):
        x = keras.layers.Conv2D(32, 3, strides=2, padding="valid", activation="relu", name=f"conv_layer{i}")(x)
    x = keras.layers.Flatten(name="flatten_layer")(x)
    x = keras.layers.Dense(10, activation="relu", name="fc_layer1")(x)
    x = keras.layers.Dense(10, activation="relu", name="fc_layer2")(x)
    x = keras.layers.Dense(1, activation="sigmoid", name="output_layer")(x)
    model = keras.Model(inputs, x, name=name)
    shape = tuple(int(d) for d in model.input_shape[1:]) if None not in model.input_shape[1:] else None
    return load_weights(model, weights, arch=BASE_ARCH, **({"input_shape": shape} if shape else {}))


# --------------------------------------------------------------------------------------------------------------
# The lung U-Net


def unet_encoder_block(x: keras.KerasTensor, filters: int, *, name: str) -> keras.KerasTensor:
    """Two 3×3 relu convolutions (same padding); the output feeds both the skip connection and the pool."""
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv1")(x)
    return keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv2")(x)


def unet_decoder_block(x: keras.KerasTensor, skip: keras.KerasTensor, filters: int, *, name: str) -> keras.KerasTensor:
    """2×2/2 transposed convolution (linear, with bias), concatenation with the skip, two 3×3 relu convs."""
    x = keras.layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"{name}_up")(x)
    x = keras.layers.Concatenate(axis=-1, name=f"{name}_concat")([x, skip])
    return unet_encoder_block(x, filters, name=name)


@register_model(paper="covid_cxnet", task="segmentation", cam_layer="bottleneck_conv2")
def build_covid_cxnet_lung_unet(
    *,
    weights: str | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] = (320, 320, 1),
    filters: Sequence[int] = (32, 64, 128, 256),
    bottleneck_filters: int = 512,
    name: str = "covid_cxnet_lung_unet",
) -> keras.Model:
    """The U-Net lung segmenter of COVID-CXNet's ROI-extraction block.

    Reference: Haghanifar et al., COVID-CXNet, §3.2 and Fig. 4; the authors' hands_on,
    multiclass and unet_lung_segmentation notebooks (a Kaggle Montgomery + Shenzhen U-Net).

    Args:
        weights: None, ``"covid_cxnet_lung_unet.montgomery_shenzhen"`` (``cxr_reg_weights.hdf5``; published but
            not in the offline mirror, verified by git blob SHA-1, loaded by layer order) or a path.
        input_tensor: optional Keras tensor to build on.
        input_shape: (H, W, 1) with H and W divisible by 16; the authors ran (320, 320, 1).
        filters: encoder filters per level (32, 64, 128, 256). bottleneck_filters: 512.
        name: model name.

    Input contract (as COVID-CXNet ran it): the 8-bit image after local histogram equalization with a disk of
    radius 40, **unscaled** 0..255 float32 (see :func:`cxrzoo.models.covid_cxnet.covid_cxnet_lung_mask`).

    Returns:
        A ``keras.Model`` (B, H, W, 1) → (B, H, W, 1) sigmoid lung map; 7,759,521 parameters.

    Example:
        >>> unet = cxrzoo.build_covid_cxnet_lung_unet()
        >>> p = cxrzoo.models.covid_cxnet.covid_cxnet_lung_mask(image_320, unet)
    """
    inputs = make_input(input_tensor, input_shape)
    levels = len(filters)
    hw = tuple(inputs.shape[1:3])
    if any(size is not None and size % (2**levels) for size in hw):
        raise ValueError(f"input height and width must be divisible by {2**levels}, got {hw}")
    x = inputs
    skips = []
    for i, f in enumerate(filters, start=1):
        x = unet_encoder_block(x, f, name=f"enc{i}")
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"enc{i}_pool")(x)
    x = unet_encoder_block(x, bottleneck_filters, name="bottleneck")
    for i, (f, skip) in reversed(list(enumerate(zip(filters, skips), start=1))):
        x = unet_decoder_block(x, skip, f, name=f"dec{i}")
    x = keras.layers.Conv2D(1, 1, activation="sigmoid", name="mask")(x)
    model = keras.Model(inputs, x, name=name)
    return load_weights(model, weights, arch=UNET_ARCH, loader=_load_by_order_or_default)
