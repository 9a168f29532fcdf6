"""U-Net, U-Net++ and FPN as ``segmentation_models_pytorch`` (SMP) builds them: the thesis' lung and infection
segmenters.

Reference:
    Tahir, "Deep ConvNets for COVID-19 Recognition from Chest X-Rays" (M.Sc. thesis, Qatar University, 2021),
    §3.2.2 and Table 11; Ronneberger et al. 2015 (U-Net), Zhou et al. 2018 (UNet++), Kirillov et al. 2019 (panoptic
    FPN decoder). The thesis trained SMP's ``Unet``, ``UnetPlusPlus`` and ``FPN`` with their default
    decoders; those decoders are rebuilt here unit for unit (docs/models/infection_detector.md).

Decoders::

    U-Net    head(stride 32) ─ 5 × [nearest ×2 ─ concat skip ─ (3×3 conv ─ BN ─ ReLU) × 2] ─ 3×3 head conv
    U-Net++  nested nodes X(d, l), 0 ≤ d ≤ l ≤ 3, each the U-Net block on [X(d, l-1)] + [X(d+1..l, l), skip];
             X(0, 4) → 3×3 head conv
    FPN      1×1 laterals + nearest ×2 top-down (256 ch) ─ per level (3×3 conv ─ GN(32) ─ ReLU [─ bilinear ×2])
             to stride 4 (128 ch) ─ sum ─ SpatialDropout2D(0.2) ─ 1×1 head conv ─ bilinear ×4

Convolutions followed by a norm layer have no bias; BatchNorm uses PyTorch's epsilon and momentum; bilinear
upsampling uses ``align_corners=True`` like PyTorch's (:class:`cxrzoo.layers.AlignedBilinearUpsampling2D`). The
outputs are logits unless ``activation`` is "sigmoid" or "softmax" (SMP's default is logits). Trainable parameter
counts equal SMP's exactly, e.g. U-Net/ResNet50 32,521,105, FPN/DenseNet121 9,299,713, UNet++/DenseNet161
79,056,401 at ``classes=1`` (docs/models/infection_detector.md lists all fifteen).

No trained weights were published with the thesis; ``weights=`` takes the path of a weights file saved from a model
built with the same arguments.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import keras

from cxrzoo.nn.backbones import ENCODER_CHANNELS, ENCODERS, TORCH_EPSILON, TORCH_MOMENTUM, build_encoder, check_encoder
from cxrzoo.nn.blocks import check_divisible, make_input
from cxrzoo.nn.upsampling import AlignedBilinearUpsampling2D
from cxrzoo.spec import register_architecture
from cxrzoo.weights.loading import load_weights

DECODERS = ("unet", "unet_plus_plus", "fpn")
DEFAULT_DECODER_CHANNELS = (256, 128, 64, 32, 16)
ACTIVATIONS = (None, "sigmoid", "softmax")


def conv_bn_relu(x: keras.KerasTensor, filters: int, *, name: str, use_batchnorm: bool = True) -> keras.KerasTensor:
    """SMP's Conv2dReLU: 3×3 conv (bias only without BN) → BatchNorm → ReLU."""
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=not use_batchnorm, name=f"{name}_conv")(x)
    if use_batchnorm:
        x = keras.layers.BatchNormalization(epsilon=TORCH_EPSILON, momentum=TORCH_MOMENTUM, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def decoder_block(
    x: keras.KerasTensor, skips: Sequence, filters: int, *, name: str, use_batchnorm: bool = True
) -> keras.KerasTensor:
    """SMP's U-Net / UNet++ DecoderBlock: nearest ×2, concatenate (upsampled tensor first, then ``skips`` in
    order), then two conv-BN-ReLU units."""
    x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_upsample")(x)
    if skips:
        x = keras.layers.Concatenate(name=f"{name}_concat")([x, *skips])
    x = conv_bn_relu(x, filters, name=f"{name}_1", use_batchnorm=use_batchnorm)
    return conv_bn_relu(x, filters, name=f"{name}_2", use_batchnorm=use_batchnorm)


def unet_decoder(
    features: Sequence, decoder_channels: Sequence[int], *, use_batchnorm: bool = True
) -> keras.KerasTensor:
    """SMP's UnetDecoder (no centre block) on the five encoder maps (strides 2 … 32); returns the stride-1 map."""
    head, *skips = features[::-1]  # stride 32 first; skips at strides 16, 8, 4, 2
    x = head
    for i, filters in enumerate(decoder_channels):
        x = decoder_block(
            x, [skips[i]] if i < len(skips) else [], filters, name=f"decoder_block{i + 1}", use_batchnorm=use_batchnorm
        )
    return x


def unet_plus_plus_decoder(
    features: Sequence, decoder_channels: Sequence[int], *, use_batchnorm: bool = True
) -> keras.KerasTensor:
    """SMP's UnetPlusPlusDecoder: nested dense skip nodes ``decoder_x_{d}_{l}``; returns the stride-1 map.

    Node X(d, L) upsamples X(d, L-1) and concatenates X(d+1, L) … X(L, L) and the encoder map one level finer.
    Intermediate nodes (d > 0) keep the encoder's width at their level, so the decoder grows with the encoder.
    """
    f = features[::-1]  # f[0] stride 32 … f[4] stride 2
    skip_channels = [int(t.shape[-1]) for t in f[1:]]
    depth = len(f) - 1
    nodes = {}

    def node(d: int, level: int, x: keras.KerasTensor, skips: list[keras.KerasTensor]) -> None:
        filters = decoder_channels[level] if d == 0 else skip_channels[level]
        nodes[(d, level)] = decoder_block(x, skips, filters, name=f"decoder_x_{d}_{level}", use_batchnorm=use_batchnorm)

    for col in range(depth):
        for d in range(depth - col):
            level = d + col
            if col == 0:
                node(d, level, f[d], [f[d + 1]])
            else:
                dense = [nodes[(i, level)] for i in range(d + 1, level + 1)]
                node(d, level, nodes[(d, level - 1)], dense + [f[level + 1]])
    return decoder_block(
        nodes[(0, depth - 1)], [], decoder_channels[-1], name=f"decoder_x_0_{depth}", use_batchnorm=use_batchnorm
    )


def fpn_segmentation_block(
    x: keras.KerasTensor, filters: int, upsamples: int, *, name: str, groups: int = 32
) -> keras.KerasTensor:
    """SMP's SegmentationBlock: ``max(1, upsamples)`` × (3×3 conv → GroupNorm(32) → ReLU [→ bilinear ×2])."""
    for i in range(max(1, upsamples)):
        unit = f"{name}_{i + 1}"
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{unit}_conv")(x)
        x = keras.layers.GroupNormalization(groups=groups, epsilon=TORCH_EPSILON, name=f"{unit}_gn")(x)
        x = keras.layers.ReLU(name=f"{unit}_relu")(x)
        if upsamples:
            x = AlignedBilinearUpsampling2D(2, name=f"{unit}_upsample")(x)
    return x


def fpn_decoder(
    features: Sequence,
    *,
    pyramid_channels: int = 256,
    segmentation_channels: int = 128,
    merge_policy: str = "add",
    dropout: float = 0.2,
) -> keras.KerasTensor:
    """SMP's FPNDecoder on the maps at strides 4 … 32 (the stride-2 map is not used); returns the stride-4 map."""
    c2, c3, c4, c5 = features[-4:]
    p = keras.layers.Conv2D(pyramid_channels, 1, name="decoder_p5")(c5)
    pyramid = [p]
    for level, skip in ((4, c4), (3, c3), (2, c2)):
        up = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"decoder_p{level}_upsample")(p)
        lateral = keras.layers.Conv2D(pyramid_channels, 1, name=f"decoder_p{level}_lateral")(skip)
        p = keras.layers.Add(name=f"decoder_p{level}")([up, lateral])
        pyramid.append(p)
    blocks = [
        fpn_segmentation_block(p, segmentation_channels, upsamples, name=f"decoder_seg_p{5 - i}")
        for i, (p, upsamples) in enumerate(zip(pyramid, (3, 2, 1, 0)))
    ]
    if merge_policy == "add":
        x = keras.layers.Add(name="decoder_merge")(blocks)
    else:
        x = keras.layers.Concatenate(name="decoder_merge")(blocks)
    return keras.layers.SpatialDropout2D(dropout, name="decoder_dropout")(x)


def _check_common(encoder: str, classes: int, activation: str | None) -> None:
    check_encoder(encoder)
    if classes < 1:
        raise ValueError(f"classes must be >= 1, got {classes}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be None, 'sigmoid' or 'softmax', got {activation!r}")


def _finish(
    inputs: keras.KerasTensor,
    x: keras.KerasTensor,
    *,
    activation: str | None,
    name: str,
    weights: str | os.PathLike | None,
    arch: str,
    **structural,
) -> keras.Model:
    if activation is not None:
        x = keras.layers.Activation(activation, name=activation)(x)
    model = keras.Model(inputs, x, name=name)
    return load_weights(model, weights, arch=arch, **structural)


def _encoder_outputs(
    encoder: str,
    encoder_weights: str | os.PathLike | None,
    input_tensor: keras.KerasTensor | None,
    input_shape: Sequence[int | None],
) -> tuple[keras.KerasTensor, list[keras.KerasTensor]]:
    inputs = make_input(input_tensor, input_shape)
    check_divisible(inputs)
    return inputs, build_encoder(encoder, weights=encoder_weights, input_tensor=inputs).outputs


def _build_unet_family(
    kind: str,
    decoder: Callable[..., keras.KerasTensor],
    *,
    encoder: str,
    encoder_weights: str | os.PathLike | None,
    weights: str | os.PathLike | None,
    input_tensor: keras.KerasTensor | None,
    input_shape: Sequence[int | None],
    classes: int,
    activation: str | None,
    decoder_channels: Sequence[int],
    decoder_use_batchnorm: bool,
    name: str | None,
) -> keras.Model:
    """U-Net and U-Net++ share everything but the decoder: encoder, 3×3 head with bias, activation, weights."""
    _check_common(encoder, classes, activation)
    if len(decoder_channels) != 5:
        raise ValueError(f"decoder_channels must have 5 entries (one per decoder block), got {decoder_channels}")
    inputs, features = _encoder_outputs(encoder, encoder_weights, input_tensor, input_shape)
    x = decoder(features, decoder_channels, use_batchnorm=decoder_use_batchnorm)
    x = keras.layers.Conv2D(classes, 3, padding="same", name="head_conv")(x)
    return _finish(
        inputs,
        x,
        activation=activation,
        name=name or f"{kind}_{encoder}",
        weights=weights,
        arch=f"{kind}_{encoder}",
        classes=classes,
    )


def build_unet(
    *,
    encoder: str = "resnet18",
    encoder_weights: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] = (256, 256, 3),
    classes: int = 1,
    activation: str | None = None,
    decoder_channels: Sequence[int] = DEFAULT_DECODER_CHANNELS,
    decoder_use_batchnorm: bool = True,
    name: str | None = None,
) -> keras.Model:
    """U-Net (SMP ``Unet``) over one of the thesis' five encoders.

    Reference: Tahir thesis §3.2.2, Tables 5, 7, 8, 11; Ronneberger et al. 2015.

    Args:
        encoder: "resnet18", "resnet50", "densenet121", "densenet161" or "inceptionv4" (see
            :mod:`cxrzoo.models.encoders`).
        encoder_weights: None or the path of weights saved from ``build_encoder(encoder)``.
        weights: None or the path of weights saved from a model built with the same arguments (no weights were
            published with the thesis).
        input_tensor: optional Keras tensor to build on.
        input_shape: (H, W, C), H and W multiples of 32 (the thesis: 256×256). C = 1 or 3.
        classes: output channels (SMP default 1: one logit per pixel).
        activation: None (logits, SMP's default), "sigmoid" or "softmax" (over channels).
        decoder_channels: output channels of the five decoder blocks.
        decoder_use_batchnorm: SMP's flag; without BN the decoder convolutions get a bias.
        name: model name (default ``"unet_<encoder>"``).

    Input contract: float32 (B, H, W, C). Without published weights there is no fixed normalisation; the thesis
    fed 256×256 CXRs, 3-channel for its ImageNet-initialised encoders.

    Returns:
        A ``keras.Model`` (B, H, W, C) → (B, H, W, ``classes``). At 256×256×3 and classes=1 U-Net/ResNet18 has
        14,328,209 trainable parameters.

    Example:
        >>> model = cxrzoo.build_unet(encoder="resnet18", activation="sigmoid")
        >>> p_lung = model.predict(batch)[..., 0]
    """
    return _build_unet_family(
        "unet",
        unet_decoder,
        encoder=encoder,
        encoder_weights=encoder_weights,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        classes=classes,
        activation=activation,
        decoder_channels=decoder_channels,
        decoder_use_batchnorm=decoder_use_batchnorm,
        name=name,
    )


def build_unet_plus_plus(
    *,
    encoder: str = "resnet18",
    encoder_weights: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] = (256, 256, 3),
    classes: int = 1,
    activation: str | None = None,
    decoder_channels: Sequence[int] = DEFAULT_DECODER_CHANNELS,
    decoder_use_batchnorm: bool = True,
    name: str | None = None,
) -> keras.Model:
    """U-Net++ (SMP ``UnetPlusPlus``) over one of the thesis' five encoders.

    Reference: Tahir thesis §3.2.2, Tables 5, 7, 8, 11 (UNet++/DenseNet121: the best infection
    segmenter, DSC 88.21%); Zhou et al. 2018.

    Args: as :func:`build_unet`. Node names are ``decoder_x_{depth}_{layer}`` as in SMP.

    Returns:
        A ``keras.Model`` (B, H, W, C) → (B, H, W, ``classes``). At 256×256×3 and classes=1 UNet++/DenseNet161 has
        79,056,401 trainable parameters (the thesis' Table 11 prints 79.04 M; SMP's structure is authoritative).

    Example:
        >>> model = cxrzoo.build_unet_plus_plus(encoder="densenet121", activation="sigmoid")
    """
    return _build_unet_family(
        "unet_plus_plus",
        unet_plus_plus_decoder,
        encoder=encoder,
        encoder_weights=encoder_weights,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        classes=classes,
        activation=activation,
        decoder_channels=decoder_channels,
        decoder_use_batchnorm=decoder_use_batchnorm,
        name=name,
    )


def build_fpn(
    *,
    encoder: str = "resnet18",
    encoder_weights: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] = (256, 256, 3),
    classes: int = 1,
    activation: str | None = None,
    decoder_pyramid_channels: int = 256,
    decoder_segmentation_channels: int = 128,
    decoder_merge_policy: str = "add",
    decoder_dropout: float = 0.2,
    upsampling: int = 4,
    name: str | None = None,
) -> keras.Model:
    """FPN (SMP ``FPN``) over one of the thesis' five encoders.

    Reference: Tahir thesis §3.2.2, Tables 5, 7, 8, 11 (FPN/DenseNet121: the best lung
    segmenter, DSC 97.99%); Kirillov et al. 2019.

    Args:
        encoder, encoder_weights, weights, input_tensor, input_shape, classes, activation, name: as
            :func:`build_unet`.
        decoder_pyramid_channels: width of the top-down pyramid (256).
        decoder_segmentation_channels: width of the per-level segmentation blocks (128).
        decoder_merge_policy: "add" (SMP default) or "cat" (the head then sees 4 × 128 channels).
        decoder_dropout: SpatialDropout2D rate after the merge (SMP's Dropout2d, 0.2).
        upsampling: bilinear (align_corners=True) factor of the head, from stride 4 back to the input size.

    Returns:
        A ``keras.Model`` (B, H, W, C) → (B, H, W, ``classes``). At 256×256×3 and classes=1 FPN/DenseNet121 has
        9,299,713 trainable parameters.

    Example:
        >>> model = cxrzoo.build_fpn(encoder="densenet121", activation="sigmoid")
    """
    _check_common(encoder, classes, activation)
    if decoder_merge_policy not in ("add", "cat"):
        raise ValueError(f"decoder_merge_policy must be 'add' or 'cat', got {decoder_merge_policy!r}")
    if not 0.0 <= decoder_dropout < 1.0:
        raise ValueError(f"decoder_dropout must be in [0, 1), got {decoder_dropout}")
    inputs, features = _encoder_outputs(encoder, encoder_weights, input_tensor, input_shape)
    x = fpn_decoder(
        features,
        pyramid_channels=decoder_pyramid_channels,
        segmentation_channels=decoder_segmentation_channels,
        merge_policy=decoder_merge_policy,
        dropout=decoder_dropout,
    )
    x = keras.layers.Conv2D(classes, 1, name="head_conv")(x)
    if upsampling > 1:
        x = AlignedBilinearUpsampling2D(upsampling, name="head_upsample")(x)
    return _finish(
        inputs,
        x,
        activation=activation,
        name=name or f"fpn_{encoder}",
        weights=weights,
        arch=f"fpn_{encoder}",
        classes=classes,
    )


BUILDERS = {"unet": build_unet, "unet_plus_plus": build_unet_plus_plus, "fpn": build_fpn}


def build_segmentation_model(decoder: str, encoder: str, **kwargs) -> keras.Model:
    """``build_unet`` / ``build_unet_plus_plus`` / ``build_fpn`` chosen by name (``decoder`` in ``DECODERS``)."""
    if decoder not in BUILDERS:
        raise ValueError(f"unknown decoder {decoder!r}; valid decoders: {', '.join(DECODERS)}")
    return BUILDERS[decoder](encoder=encoder, **kwargs)


# The head's input is the decoder's last feature map: the natural CAM target for a segmenter.
_CAM_LAYER = {"unet": "decoder_block5_2_relu", "unet_plus_plus": "decoder_x_0_4_2_relu", "fpn": "decoder_merge"}

for _decoder in DECODERS:
    for _encoder in ENCODERS:
        register_architecture(
            f"{_decoder}_{_encoder}",
            BUILDERS[_decoder],
            paper="infection_detector",
            task="segmentation",
            cam_layer=_CAM_LAYER[_decoder],
            encoder=_encoder,
            summary=f"{_decoder} decoder (SMP) over a {_encoder} encoder: lung / infection segmenter (Tahir thesis)",
        )
del _decoder, _encoder

__all__ = [
    "DECODERS",
    "ENCODER_CHANNELS",
    "build_fpn",
    "build_segmentation_model",
    "build_unet",
    "build_unet_plus_plus",
]
