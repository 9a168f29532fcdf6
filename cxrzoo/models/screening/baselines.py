"""The five CNNs of "Screening X-ray images for COVID-19 infections", trained from scratch.

Reference:
    Loconte & Colavito, "Screening X-ray Images for COVID-19 Infections", §IV-V and Table V:
    AlexNet, VGG16, ResNet50, DenseNet121 and InceptionV3 in PyTorch (torchvision definitions), on grayscale
    COVIDx CXR-2 images (top 8% cropped, centre-cropped, bicubic 224×224; bilinear 299×299 for InceptionV3), one
    output trained with a class-weighted binary cross-entropy, InceptionV3 with its auxiliary classifier weighted
    0.3. Krizhevsky et al. 2012; Simonyan & Zisserman 2015; He et al. 2016; Huang et al. 2017; Szegedy et al. 2016.

Every builder follows torchvision's graph: AlexNet and VGG16 keep their two 4096-wide dropout layers and replace only
the last Linear; ResNet50 and DenseNet121 replace ``fc`` / ``classifier``; InceptionV3 has BatchNorm with γ (unlike
``keras.applications.InceptionV3``, whose ``scale=False`` drops 17,216 parameters), average pools that count the
padding, and the auxiliary head on ``Mixed_6e``. Trainable parameters with one output, 3-channel input: AlexNet
57,007,937; VGG16 134,264,641; ResNet50 23,510,081; DenseNet121 6,954,881; InceptionV3 21,787,617 without the
auxiliary head (the count Table V reports) and 24,346,082 with it. A grayscale input removes exactly the first
convolution's two extra input channels.

The outputs are one logit (``classifier_activation=None``), to be trained with
:class:`cxrzoo.losses.WeightedBinaryCrossentropy` ``from_logits``; no weights were published.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras

from cxrzoo.nn.backbones import build_backbone_classifier, inception_conv, torch_conv
from cxrzoo.nn.blocks import CLASSIFIER_ACTIVATIONS, classifier_top, dense_predictions, make_input
from cxrzoo.nn.model import register_model
from cxrzoo.weights.loading import load_weights

AUX_LOSS_WEIGHT = 0.3  # weight of InceptionV3's auxiliary loss in the paper (after Szegedy et al.)
GRAYSCALE_224 = (224, 224, 1)


def _check_top(classes: int, classifier_activation: str | None) -> None:
    if classes < 1:
        raise ValueError(f"classes must be >= 1, got {classes}")
    if classifier_activation not in CLASSIFIER_ACTIVATIONS:
        raise ValueError(f"classifier_activation must be None, 'softmax' or 'sigmoid', got {classifier_activation!r}")


def _finish(
    inputs: keras.KerasTensor,
    x: keras.KerasTensor | list[keras.KerasTensor],
    *,
    name: str,
    weights: str | os.PathLike | None,
    arch: str,
    **structural,
) -> keras.Model:
    model = keras.Model(inputs, x, name=name)
    return load_weights(model, weights, arch=arch, **structural)


@register_model(paper="screening", task="classification", cam_layer="conv5")
def build_alexnet(
    *,
    weights: str | os.PathLike | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] = GRAYSCALE_224,
    include_top: bool = True,
    classes: int = 1,
    classifier_activation: str | None = None,
    dropout: float = 0.5,
    name: str = "alexnet",
) -> keras.Model:
    """AlexNet as torchvision defines it (5 convolutions, 3 fully connected layers with dropout).

    Reference: Loconte & Colavito §IV-A, Table V (57.0 M parameters, 21.5 ms per image on an Intel
    i5-4460 CPU); Krizhevsky et al. 2012.

    Args:
        weights: None or the path of weights saved from a model built with the same arguments.
        input_tensor: optional Keras tensor to build on.
        input_shape: (H, W, C); the paper: (224, 224, 1). Other sizes pass an adaptive 6×6 average pool.
        include_top: False returns the (B, 6, 6, 256) map after the adaptive pool.
        classes: outputs of the last layer (1: the paper's single logit).
        classifier_activation: None (logits, for a weighted BCE from logits), "sigmoid" or "softmax".
        dropout: rate of the two dropout layers (0.5).
        name: model name.

    Returns:
        A ``keras.Model``; with one output and (224, 224, 3) input 57,007,937 trainable parameters, with
        (224, 224, 1) input 56,992,449.

    Example:
        >>> model = cxrzoo.build_alexnet()
        >>> logit = model.predict(gray_224[None, ..., None] / 255.0)
    """
    _check_top(classes, classifier_activation)
    inputs = make_input(input_tensor, input_shape)
    x = keras.layers.ReLU(name="conv1_relu")(
        torch_conv(inputs, 64, 11, strides=4, padding=2, use_bias=True, name="conv1")
    )
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = keras.layers.Conv2D(192, 5, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = keras.layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.Conv2D(256, 3, padding="same", activation="relu", name="conv4")(x)
    x = keras.layers.Conv2D(256, 3, padding="same", activation="relu", name="conv5")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    x = keras.layers.AdaptiveAveragePooling2D(6, name="adaptive_pool")(x)
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dropout(dropout, name="fc1_dropout")(x)
        x = keras.layers.Dense(4096, activation="relu", name="fc1")(x)
        x = keras.layers.Dropout(dropout, name="fc2_dropout")(x)
        x = keras.layers.Dense(4096, activation="relu", name="fc2")(x)
        x = dense_predictions(x, classes, classifier_activation)
    return _finish(inputs, x, name=name, weights=weights, arch="alexnet", classes=classes)


@register_model(paper="screening", task="classification", cam_layer="block5_conv3")
def build_vgg16(
    *,
    weights: str | os.PathLike | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] = GRAYSCALE_224,
    include_top: bool = True,
    classes: int = 1,
    classifier_activation: str | None = None,
    dropout: float = 0.5,
    name: str = "vgg16",
) -> keras.Model:
    """VGG16 (configuration D, no BatchNorm) as torchvision defines it.

    Reference: Loconte & Colavito §IV-B, Table V (134.3 M parameters, 171.0 ms per image on CPU);
    Simonyan & Zisserman 2015.

    Args: as :func:`build_alexnet`; ``include_top=False`` returns the (B, 7, 7, 512) map after the adaptive pool.
    Layer names are ``keras.applications.VGG16``'s (``block1_conv1`` … ``fc1``, ``fc2``, ``predictions``).

    Returns:
        A ``keras.Model``; with one output and (224, 224, 3) input 134,264,641 trainable parameters.

    Example:
        >>> model = cxrzoo.build_vgg16()
    """
    _check_top(classes, classifier_activation)
    inputs = make_input(input_tensor, input_shape)
    x = inputs
    for block, (filters, convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), start=1):
        for i in range(1, convs + 1):
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{block}_conv{i}")(x)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    x = keras.layers.AdaptiveAveragePooling2D(7, name="adaptive_pool")(x)
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(4096, activation="relu", name="fc1")(x)
        x = keras.layers.Dropout(dropout, name="fc1_dropout")(x)
        x = keras.layers.Dense(4096, activation="relu", name="fc2")(x)
        x = keras.layers.Dropout(dropout, name="fc2_dropout")(x)
        x = dense_predictions(x, classes, classifier_activation)
    return _finish(inputs, x, name=name, weights=weights, arch="vgg16", classes=classes)


@register_model(paper="screening", task="classification", cam_layer="conv5_block3_out")
def build_resnet50(
    *,
    weights: str | os.PathLike | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] = GRAYSCALE_224,
    include_top: bool = True,
    pooling: str | None = None,
    classes: int = 1,
    classifier_activation: str | None = None,
    name: str = "resnet50",
) -> keras.Model:
    """ResNet50 as torchvision defines it (no convolution biases, stride on the bottleneck's 3×3).

    Reference: Loconte & Colavito §IV-C, Table V (23.5 M parameters, 95.1 ms per image on CPU);
    He et al. 2016.

    Args: as :func:`build_alexnet`, plus ``pooling`` (None / "avg" / "max") when ``include_top=False``.

    Returns:
        A ``keras.Model``; with one output and (224, 224, 3) input 23,510,081 trainable parameters
        (``keras.applications.ResNet50`` would have 26,560 more: its convolutions carry biases).

    Example:
        >>> model = cxrzoo.build_resnet50()
    """
    return build_backbone_classifier(
        "resnet50",
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        arch="resnet50",
    )


@register_model(paper="screening", task="classification", cam_layer="relu")
def build_densenet121(
    *,
    weights: str | os.PathLike | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] = GRAYSCALE_224,
    include_top: bool = True,
    pooling: str | None = None,
    classes: int = 1,
    classifier_activation: str | None = None,
    name: str = "densenet121",
) -> keras.Model:
    """DenseNet121 as torchvision defines it (layer names and shapes of ``keras.applications.DenseNet121``).

    Reference: Loconte & Colavito §IV-D, Table V (7.0 M parameters, 84.1 ms per image on CPU);
    Huang et al. 2017.

    Args: as :func:`build_resnet50`.

    Returns:
        A ``keras.Model``; with one output and (224, 224, 3) input 6,954,881 trainable parameters.

    Example:
        >>> model = cxrzoo.build_densenet121()
    """
    return build_backbone_classifier(
        "densenet121",
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        arch="densenet121",
    )


# ------------------------------------------------------------------------------------------------------ InceptionV3


def _torch_avg_pool_3x3(x: keras.KerasTensor, *, name: str) -> keras.KerasTensor:
    # torchvision's F.avg_pool2d(x, 3, stride=1, padding=1) counts the zero padding in the mean (count_include_pad
    # defaults to True); Keras' "same" average pooling would not, so pad explicitly.
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    return keras.layers.AveragePooling2D(3, strides=1, name=name)(x)


def inception_v3_a(x: keras.KerasTensor, pool_features: int, *, name: str) -> keras.KerasTensor:
    """torchvision InceptionA (Mixed_5b/c/d)."""
    b1 = inception_conv(x, 64, 1, name=f"{name}_branch1x1")
    b5 = inception_conv(x, 48, 1, name=f"{name}_branch5x5_1")
    b5 = inception_conv(b5, 64, 5, padding=2, name=f"{name}_branch5x5_2")
    b3 = inception_conv(x, 64, 1, name=f"{name}_branch3x3dbl_1")
    b3 = inception_conv(b3, 96, 3, padding=1, name=f"{name}_branch3x3dbl_2")
    b3 = inception_conv(b3, 96, 3, padding=1, name=f"{name}_branch3x3dbl_3")
    bp = inception_conv(
        _torch_avg_pool_3x3(x, name=f"{name}_branch_pool_avg"), pool_features, 1, name=f"{name}_branch_pool"
    )
    return keras.layers.Concatenate(name=name)([b1, b5, b3, bp])


def inception_v3_b(x: keras.KerasTensor, *, name: str) -> keras.KerasTensor:
    """torchvision InceptionB (Mixed_6a, grid reduction 35 → 17)."""
    b3 = inception_conv(x, 384, 3, strides=2, name=f"{name}_branch3x3")
    bd = inception_conv(x, 64, 1, name=f"{name}_branch3x3dbl_1")
    bd = inception_conv(bd, 96, 3, padding=1, name=f"{name}_branch3x3dbl_2")
    bd = inception_conv(bd, 96, 3, strides=2, name=f"{name}_branch3x3dbl_3")
    bp = keras.layers.MaxPooling2D(3, strides=2, name=f"{name}_branch_pool")(x)
    return keras.layers.Concatenate(name=name)([b3, bd, bp])


def inception_v3_c(x: keras.KerasTensor, channels_7x7: int, *, name: str) -> keras.KerasTensor:
    """torchvision InceptionC (Mixed_6b-e, factorized 7×7)."""
    c7 = channels_7x7
    b1 = inception_conv(x, 192, 1, name=f"{name}_branch1x1")
    b7 = inception_conv(x, c7, 1, name=f"{name}_branch7x7_1")
    b7 = inception_conv(b7, c7, (1, 7), padding=(0, 3), name=f"{name}_branch7x7_2")
    b7 = inception_conv(b7, 192, (7, 1), padding=(3, 0), name=f"{name}_branch7x7_3")
    bd = inception_conv(x, c7, 1, name=f"{name}_branch7x7dbl_1")
    bd = inception_conv(bd, c7, (7, 1), padding=(3, 0), name=f"{name}_branch7x7dbl_2")
    bd = inception_conv(bd, c7, (1, 7), padding=(0, 3), name=f"{name}_branch7x7dbl_3")
    bd = inception_conv(bd, c7, (7, 1), padding=(3, 0), name=f"{name}_branch7x7dbl_4")
    bd = inception_conv(bd, 192, (1, 7), padding=(0, 3), name=f"{name}_branch7x7dbl_5")
    bp = inception_conv(_torch_avg_pool_3x3(x, name=f"{name}_branch_pool_avg"), 192, 1, name=f"{name}_branch_pool")
    return keras.layers.Concatenate(name=name)([b1, b7, bd, bp])


def inception_v3_d(x: keras.KerasTensor, *, name: str) -> keras.KerasTensor:
    """torchvision InceptionD (Mixed_7a, grid reduction 17 → 8)."""
    b3 = inception_conv(x, 192, 1, name=f"{name}_branch3x3_1")
    b3 = inception_conv(b3, 320, 3, strides=2, name=f"{name}_branch3x3_2")
    b7 = inception_conv(x, 192, 1, name=f"{name}_branch7x7x3_1")
    b7 = inception_conv(b7, 192, (1, 7), padding=(0, 3), name=f"{name}_branch7x7x3_2")
    b7 = inception_conv(b7, 192, (7, 1), padding=(3, 0), name=f"{name}_branch7x7x3_3")
    b7 = inception_conv(b7, 192, 3, strides=2, name=f"{name}_branch7x7x3_4")
    bp = keras.layers.MaxPooling2D(3, strides=2, name=f"{name}_branch_pool")(x)
    return keras.layers.Concatenate(name=name)([b3, b7, bp])


def inception_v3_e(x: keras.KerasTensor, *, name: str) -> keras.KerasTensor:
    """torchvision InceptionE (Mixed_7b/c, expanded 1×3 / 3×1 branches)."""
    b1 = inception_conv(x, 320, 1, name=f"{name}_branch1x1")
    b3 = inception_conv(x, 384, 1, name=f"{name}_branch3x3_1")
    b3 = keras.layers.Concatenate(name=f"{name}_branch3x3")(
        [
            inception_conv(b3, 384, (1, 3), padding=(0, 1), name=f"{name}_branch3x3_2a"),
            inception_conv(b3, 384, (3, 1), padding=(1, 0), name=f"{name}_branch3x3_2b"),
        ]
    )
    bd = inception_conv(x, 448, 1, name=f"{name}_branch3x3dbl_1")
    bd = inception_conv(bd, 384, 3, padding=1, name=f"{name}_branch3x3dbl_2")
    bd = keras.layers.Concatenate(name=f"{name}_branch3x3dbl")(
        [
            inception_conv(bd, 384, (1, 3), padding=(0, 1), name=f"{name}_branch3x3dbl_3a"),
            inception_conv(bd, 384, (3, 1), padding=(1, 0), name=f"{name}_branch3x3dbl_3b"),
        ]
    )
    bp = inception_conv(_torch_avg_pool_3x3(x, name=f"{name}_branch_pool_avg"), 192, 1, name=f"{name}_branch_pool")
    return keras.layers.Concatenate(name=name)([b1, b3, bd, bp])


def inception_v3_aux(
    x: keras.KerasTensor, classes: int, classifier_activation: str | None, *, name: str = "aux"
) -> keras.KerasTensor:
    """torchvision InceptionAux on Mixed_6e: 5×5/3 average pool → 1×1 (128) → 5×5 (768) → global pool → FC."""
    x = keras.layers.AveragePooling2D(5, strides=3, name=f"{name}_pool")(x)
    x = inception_conv(x, 128, 1, name=f"{name}_conv0")
    x = inception_conv(x, 768, 5, name=f"{name}_conv1")
    x = keras.layers.GlobalAveragePooling2D(name=f"{name}_avg_pool")(x)
    return dense_predictions(x, classes, classifier_activation, name=f"{name}_predictions")


@register_model(paper="screening", task="classification", cam_layer="mixed_7c")
def build_inception_v3(
    *,
    weights: str | os.PathLike | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] = (299, 299, 1),
    include_top: bool = True,
    pooling: str | None = None,
    aux_classifier: bool = True,
    classes: int = 1,
    classifier_activation: str | None = None,
    dropout: float = 0.5,
    name: str = "inception_v3",
) -> keras.Model:
    """InceptionV3 as torchvision defines it, with its auxiliary classifier for training.

    Reference: Loconte & Colavito §IV-E and §V-A (auxiliary loss weighted 0.3, 224×224 images
    upsampled bilinearly to 299×299), Table V (21.8 M parameters, 116.4 ms per image on CPU); Szegedy et al. 2016.

    Args:
        weights, input_tensor, classes, classifier_activation, name: as :func:`build_alexnet`.
        input_shape: (H, W, C), at least 75×75; the paper: (299, 299, 1).
        include_top, pooling: as :func:`build_resnet50` (no auxiliary head without the top).
        aux_classifier: add the auxiliary head on ``mixed_6e``. The model then has two outputs,
            ``[predictions, aux_predictions]``; train with ``loss_weights=[1.0, AUX_LOSS_WEIGHT]`` (0.3) and
            predict with :func:`without_aux_classifier`, which drops the head (torchvision's eval mode).
        dropout: rate before the last layer (0.5).

    Returns:
        A ``keras.Model``. With one output and (299, 299, 3) input: 21,787,617 trainable parameters without the
        auxiliary head (the paper's 21.8 M) and 24,346,082 with it.

    Example:
        >>> model = cxrzoo.build_inception_v3()
        >>> model.compile("adam", loss=[bce, bce], loss_weights=[1.0, AUX_LOSS_WEIGHT])
        >>> predictor = without_aux_classifier(model)
    """
    _check_top(classes, classifier_activation)
    if aux_classifier and not include_top:
        raise ValueError("aux_classifier=True needs include_top=True (the auxiliary head is a classifier)")
    inputs = make_input(input_tensor, input_shape)
    known = [s for s in tuple(inputs.shape[1:3]) if s is not None]
    if any(s < 75 for s in known):
        raise ValueError(f"InceptionV3 needs inputs of at least 75×75, got {tuple(inputs.shape[1:3])}")
    x = inception_conv(inputs, 32, 3, strides=2, name="conv2d_1a_3x3")
    x = inception_conv(x, 32, 3, name="conv2d_2a_3x3")
    x = inception_conv(x, 64, 3, padding=1, name="conv2d_2b_3x3")
    x = keras.layers.MaxPooling2D(3, strides=2, name="maxpool1")(x)
    x = inception_conv(x, 80, 1, name="conv2d_3b_1x1")
    x = inception_conv(x, 192, 3, name="conv2d_4a_3x3")
    x = keras.layers.MaxPooling2D(3, strides=2, name="maxpool2")(x)
    x = inception_v3_a(x, 32, name="mixed_5b")
    x = inception_v3_a(x, 64, name="mixed_5c")
    x = inception_v3_a(x, 64, name="mixed_5d")
    x = inception_v3_b(x, name="mixed_6a")
    for block, c7 in (("mixed_6b", 128), ("mixed_6c", 160), ("mixed_6d", 160), ("mixed_6e", 192)):
        x = inception_v3_c(x, c7, name=block)
    aux = inception_v3_aux(x, classes, classifier_activation) if aux_classifier else None
    x = inception_v3_d(x, name="mixed_7a")
    x = inception_v3_e(x, name="mixed_7b")
    x = inception_v3_e(x, name="mixed_7c")
    x = classifier_top(
        x,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        dropout=dropout,
    )
    outputs = [x, aux] if aux is not None else x
    return _finish(
        inputs, outputs, name=name, weights=weights, arch="inception_v3", classes=classes, aux_classifier=aux_classifier
    )


def without_aux_classifier(model: keras.Model) -> keras.Model:
    """The inference view of an InceptionV3 built with ``aux_classifier=True``: same layers and weights, only the
    main output (what torchvision returns in eval mode). Models with one output are returned unchanged."""
    if len(model.outputs) == 1:
        return model
    return keras.Model(model.input, model.outputs[0], name=f"{model.name}_inference")
