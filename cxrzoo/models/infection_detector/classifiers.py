"""The thesis' classifiers: any of the five backbones with one linear layer, SqueezeNet, and the detector's models.

Reference: Tahir, segmentation-driven COVID-19 infection detector (thesis), §3.2.3 (docs/models/infection_detector.md).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import keras

from cxrzoo.models.infection_detector.segmentation import build_segmentation_model
from cxrzoo.nn.backbones import CLASSIFIER_CAM_LAYER, ENCODERS, build_backbone_classifier
from cxrzoo.nn.blocks import make_input
from cxrzoo.nn.model import register_model
from cxrzoo.spec import register_architecture
from cxrzoo.weights.loading import load_weights


def build_cxr_classifier(
    *,
    backbone: str,
    weights: str | os.PathLike | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] = (256, 256, 3),
    include_top: bool = True,
    pooling: str | None = None,
    classes: int = 3,
    classifier_activation: str | None = "softmax",
    name: str | None = None,
) -> keras.Model:
    """The thesis' CXR classifiers: an ImageNet backbone whose last layer is replaced by one linear layer.

    Reference: Tahir thesis §3.2.3, Tables 9, 10, 12 (scheme II: COVID-19 / non-COVID / normal on
    lung-segmented CXRs; InceptionV4 best, overall sensitivity 91.95%).

    Args:
        backbone: "resnet18", "resnet50", "densenet121", "densenet161" or "inceptionv4" (torchvision / Cadene
            graphs; InceptionV4 with its original, unpadded stem).
        weights: None or the path of weights saved from a model built with the same arguments.
        input_tensor: optional Keras tensor to build on.
        input_shape: (H, W, C); the thesis: 256×256, 3 channels (see the ``"tahir_classifier"`` recipe).
        include_top, pooling: keras.applications semantics.
        classes: 3 (the thesis' both schemes; labels :data:`TAHIR_LABELS` or :data:`COVID_FAMILY_LABELS`).
        classifier_activation: "softmax" (default), "sigmoid" or None (logits). The logits are always reachable at
            layer ``predictions``.
        name: model name (default ``"cxr_classifier_<backbone>"``, the registry name).

    Returns:
        A ``keras.Model``. Trainable parameters with 3 classes: ResNet18 11,178,051; ResNet50 23,514,179;
        DenseNet121 6,956,931; DenseNet161 26,478,627; InceptionV4 41,147,427 (Table 12: 11.18, 23.51, 6.96,
        26.48, 41.15 M).

    Example:
        >>> model = cxrzoo.build_cxr_classifier(backbone="inceptionv4")
        >>> probs = model.predict(cxrzoo.preprocessing.recipe("tahir_classifier")(segmented_cxr)[None])
    """
    return build_backbone_classifier(
        backbone,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name or f"cxr_classifier_{backbone}",
        arch=f"cxr_classifier_{backbone}",
    )


for _backbone in ENCODERS:
    register_architecture(
        f"cxr_classifier_{_backbone}",
        build_cxr_classifier,
        paper="infection_detector",
        task="classification",
        cam_layer=CLASSIFIER_CAM_LAYER[_backbone],
        backbone=_backbone,
        summary=f"{_backbone} + one linear layer: the thesis' 3-class CXR classifier",
    )
del _backbone

SQUEEZENET_FIRES = {
    # version → (stem filters, stem kernel, (squeeze, expand) of fire2 … fire9, fires followed by a max-pool)
    "1_0": (96, 7, ((16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)), (4, 8)),
    "1_1": (64, 3, ((16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)), (3, 5)),
}


def fire_module(x: keras.KerasTensor, squeeze: int, expand: int, *, name: str) -> keras.KerasTensor:
    """SqueezeNet Fire module: 1×1 squeeze → ReLU → [1×1 expand ∥ 3×3 expand] → ReLU, concatenated."""
    s = keras.layers.Conv2D(squeeze, 1, activation="relu", name=f"{name}_squeeze1x1")(x)
    e1 = keras.layers.Conv2D(expand, 1, activation="relu", name=f"{name}_expand1x1")(s)
    e3 = keras.layers.Conv2D(expand, 3, padding="same", activation="relu", name=f"{name}_expand3x3")(s)
    return keras.layers.Concatenate(name=f"{name}_concat")([e1, e3])


def _ceil_max_pool(x: keras.KerasTensor, *, name: str) -> keras.KerasTensor:
    # torchvision's MaxPool2d(3, 2, ceil_mode=True): one extra zero row/column at the bottom/right lets the last
    # window hang over the edge (inputs are ReLU outputs, so a zero never wins over a real value).
    x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=2, name=name)(x)


@register_model(paper="infection_detector", task="classification", cam_layer="fire9_concat")
def build_squeezenet(
    *,
    weights: str | os.PathLike | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] = (256, 256, 3),
    version: str = "1_0",
    include_top: bool = True,
    classes: int = 3,
    classifier_activation: str | None = "softmax",
    dropout: float = 0.5,
    name: str = "squeezenet",
) -> keras.Model:
    """SqueezeNet as torchvision defines it: the thesis' smallest classifier (scheme I, COVID-19 / MERS / SARS).

    Reference: Tahir thesis §3.2.3 and Table 4 (pools after the first convolution and after the
    4th and 8th fire modules, i.e. SqueezeNet 1.0); Iandola et al. 2016.

    Args:
        weights, input_tensor, name: as :func:`build_cxr_classifier`.
        input_shape: (H, W, C); the thesis: 256×256.
        version: "1_0" (the thesis' layout, default) or "1_1".
        include_top: False returns the ``fire9_concat`` map (512 channels).
        classes: 3 (labels :data:`COVID_FAMILY_LABELS`).
        classifier_activation: "softmax", "sigmoid" or None. The head is torchvision's: dropout → 1×1
            convolution → ReLU → global average pool, so the "logits" at ``avg_pool`` are non-negative.
        dropout: rate before the final convolution (0.5).

    Returns:
        A ``keras.Model``; with 3 classes and 3-channel input SqueezeNet 1.0 has 736,963 trainable parameters
        (torchvision's 1,248,424 with 1,000 classes) and 1.1 has 724,035.

    Example:
        >>> model = cxrzoo.build_squeezenet()
    """
    if version not in SQUEEZENET_FIRES:
        raise ValueError(f"version must be one of {sorted(SQUEEZENET_FIRES)}, got {version!r}")
    if classifier_activation not in (None, "softmax", "sigmoid"):
        raise ValueError(f"classifier_activation must be None, 'softmax' or 'sigmoid', got {classifier_activation!r}")
    stem, kernel, fires, pools_after = SQUEEZENET_FIRES[version]
    inputs = make_input(input_tensor, input_shape)
    x = keras.layers.Conv2D(stem, kernel, strides=2, activation="relu", name="conv1")(inputs)
    x = _ceil_max_pool(x, name="pool1")
    if classes < 1:
        raise ValueError(f"classes must be >= 1, got {classes}")
    for i, (squeeze, expand) in enumerate(fires, start=1):
        x = fire_module(x, squeeze, expand, name=f"fire{i + 1}")
        if i + 1 in pools_after:
            x = _ceil_max_pool(x, name=f"pool{i + 1}")
    if include_top:
        x = keras.layers.Dropout(dropout, name="drop9")(x)
        x = keras.layers.Conv2D(classes, 1, activation="relu", name="conv10")(x)
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if classifier_activation is not None:
            x = keras.layers.Activation(classifier_activation, name=f"predictions_{classifier_activation}")(x)
    model = keras.Model(inputs, x, name=name)
    return load_weights(model, weights, arch="squeezenet", classes=classes, version=version)


# ----------------------------------------------------------------------------------------- the thesis' system


def build_infection_detector_models(
    *,
    lung_decoder: str = "fpn",
    lung_encoder: str = "densenet121",
    infection_decoder: str = "unet_plus_plus",
    infection_encoder: str = "densenet121",
    classifier_backbone: str | None = "inceptionv4",
    input_shape: Sequence[int | None] = (256, 256, 3),
    lung_weights: str | os.PathLike | None = None,
    infection_weights: str | os.PathLike | None = None,
    classifier_weights: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """The three networks of the thesis' system, ready for :class:`InfectionDetector`.

    Reference: Tahir thesis §3.2, Figure 3; defaults are the best models of Tables 5, 7 and 10.

    Args:
        lung_decoder, infection_decoder: "unet", "unet_plus_plus" or "fpn".
        lung_encoder, infection_encoder, classifier_backbone: one of the five encoders; ``classifier_backbone=None``
            leaves the classifier out.
        input_shape: the shared (H, W, C) input of the three models (the thesis: 256×256×3).
        lung_weights, infection_weights, classifier_weights: None or paths of weights files saved from models
            built with the same arguments (no trained weights were published).

    Returns:
        ``{"lung": model, "infection": model, "classifier": model or None}``; the segmenters end in a sigmoid
        (one foreground probability per pixel), the classifier in a softmax over :data:`TAHIR_LABELS`.

    Example:
        >>> models = cxrzoo.build_infection_detector_models(lung_weights="lung.weights.h5", ...)
        >>> detector = cxrzoo.InfectionDetector(models["lung"], models["infection"], models["classifier"])
    """
    seg = dict(input_shape=input_shape, classes=1, activation="sigmoid")
    lung = build_segmentation_model(
        lung_decoder, lung_encoder, weights=lung_weights, name=f"lung_{lung_decoder}_{lung_encoder}", **seg
    )
    infection = build_segmentation_model(
        infection_decoder,
        infection_encoder,
        weights=infection_weights,
        name=f"infection_{infection_decoder}_{infection_encoder}",
        **seg,
    )
    classifier = None
    if classifier_backbone is not None:
        classifier = build_cxr_classifier(
            backbone=classifier_backbone, input_shape=input_shape, weights=classifier_weights
        )
    return {"lung": lung, "infection": infection, "classifier": classifier}
