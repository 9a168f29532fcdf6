"""Backbones of the thesis' segmentation and classification models, graph-exact to the PyTorch ones it used.

Reference:
    Tahir, "Deep ConvNets for COVID-19 Recognition from Chest X-Rays" (M.Sc. thesis, Qatar University, 2021),
    §3.2.2-3.2.3: U-Net, U-Net++ and FPN over ResNet18, ResNet50, DenseNet121, DenseNet161 and InceptionV4 encoders, trained with PyTorch ``segmentation_models_pytorch`` (SMP). He et al. 2016 (ResNet), Huang
    et al. 2017 (DenseNet), Szegedy et al. 2017 (Inception-v4).

Every encoder returns SMP's five feature maps, at strides 2, 4, 8, 16 and 32, taken exactly where SMP takes them:

| encoder | channels (stride 2 … 32) | taps |
|---|---|---|
| resnet18 | 64, 64, 128, 256, 512 | ``conv1_relu``, ``conv{2..5}_block{last}_out`` |
| resnet50 | 64, 256, 512, 1024, 2048 | same |
| densenet121 | 64, 256, 512, 1024, 1024 | ``conv1_relu``, ``pool{2,3,4}_relu`` (inside the transition, before its conv and pool), ``bn`` (no ReLU) |
| densenet161 | 96, 384, 768, 2112, 2208 | same |
| inceptionv4 | 64, 192, 384, 1024, 1536 | ``stem_conv3_relu``, ``mixed_4a``, ``inception_a3``, ``inception_b4``, ``inception_c3`` |

Graph details that make the parameter counts and the numerics those of torchvision / Cadene ``pretrainedmodels``:
ResNet convolutions have no bias (torchvision; ``keras.applications.ResNet50`` has biases) and stride on the 3×3
convolution of the bottleneck (ResNet v1.5); DenseNet161 has a 96-filter stem and growth rate 48; strided
convolutions and pools pad as PyTorch does (symmetric zero padding, never Keras' asymmetric "same"); BatchNorm uses
PyTorch's epsilon (1e-5, InceptionV4 1e-3) and momentum (0.1, i.e. Keras ``momentum=0.9``). InceptionV4 is built with
the padding SMP forces on it (every 3×3 convolution and max-pool padded by 1, so each stage halves the resolution)
or, with ``padding="original"``, as the ImageNet classifier.

Layer names follow ``keras.applications`` where a Keras model exists (DenseNet layer names and shapes equal
``keras.applications.DenseNet121``'s, so its weights transfer by name), and are descriptive otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import keras

from cxrzoo.nn.blocks import classifier_top, make_input
from cxrzoo.weights.loading import load_weights

TORCH_MOMENTUM = 0.9  # PyTorch BatchNorm momentum 0.1 weights the *new* batch; Keras' momentum weights the old value
TORCH_EPSILON = 1e-5
INCEPTION_EPSILON = 1e-3  # Cadene's BasicConv2d

ENCODER_CHANNELS = {
    "resnet18": (64, 64, 128, 256, 512),
    "resnet50": (64, 256, 512, 1024, 2048),
    "densenet121": (64, 256, 512, 1024, 1024),
    "densenet161": (96, 384, 768, 2112, 2208),
    "inceptionv4": (64, 192, 384, 1024, 1536),
}
ENCODERS = tuple(ENCODER_CHANNELS)

RESNET_BLOCKS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
# depth → (stem filters, growth rate, layers per dense block), as torchvision defines them
DENSENET_CONFIGS = {
    121: (64, 32, (6, 12, 24, 16)),
    161: (96, 48, (6, 12, 36, 24)),
    169: (64, 32, (6, 12, 32, 32)),
    201: (64, 32, (6, 12, 48, 32)),
}


def batch_norm(x: keras.KerasTensor, *, name: str, epsilon: float = TORCH_EPSILON) -> keras.KerasTensor:
    """BatchNormalization with PyTorch's epsilon and momentum (γ and β trainable, as ``affine=True``)."""
    return keras.layers.BatchNormalization(epsilon=epsilon, momentum=TORCH_MOMENTUM, name=name)(x)


def torch_conv(
    x: keras.KerasTensor,
    filters: int,
    kernel_size: int | tuple[int, int],
    *,
    strides: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    use_bias: bool = False,
    name: str,
) -> keras.KerasTensor:
    """A Conv2D that pads like ``torch.nn.Conv2d(padding=padding)``.

    Stride-1 convolutions with "half" padding are Keras ``padding="same"``; anything else (strided, or unpadded)
    gets explicit symmetric zero padding and a "valid" convolution, because Keras' "same" pads strided
    convolutions asymmetrically (bottom/right only) and would shift the sampling grid by one pixel.
    """
    ks = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    pad = (padding, padding) if isinstance(padding, int) else tuple(padding)
    st = (strides, strides) if isinstance(strides, int) else tuple(strides)
    if st == (1, 1) and all(2 * p == k - 1 for p, k in zip(pad, ks)):
        mode = "same"
    else:
        mode = "valid"
        if any(pad):
            x = keras.layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    return keras.layers.Conv2D(filters, ks, strides=st, padding=mode, use_bias=use_bias, name=name)(x)


def torch_max_pool(
    x: keras.KerasTensor, pool_size: int = 3, strides: int = 2, padding: int = 0, *, name: str
) -> keras.KerasTensor:
    """``nn.MaxPool2d(pool_size, strides, padding)`` on non-negative input (zero padding then equals -inf padding)."""
    if padding:
        x = keras.layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
    return keras.layers.MaxPooling2D(pool_size, strides=strides, name=name)(x)


# ---------------------------------------------------------------------------------------------------------- ResNet


def resnet_basic_block(x: keras.KerasTensor, filters: int, *, strides: int, name: str) -> keras.KerasTensor:
    """torchvision BasicBlock: 3×3 (stride) → BN → ReLU → 3×3 → BN, plus identity or 1×1 projection, → ReLU."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = torch_conv(x, filters, 1, strides=strides, name=f"{name}_0_conv")
        shortcut = batch_norm(shortcut, name=f"{name}_0_bn")
    y = torch_conv(x, filters, 3, strides=strides, padding=1, name=f"{name}_1_conv")
    y = batch_norm(y, name=f"{name}_1_bn")
    y = keras.layers.ReLU(name=f"{name}_1_relu")(y)
    y = torch_conv(y, filters, 3, padding=1, name=f"{name}_2_conv")
    y = batch_norm(y, name=f"{name}_2_bn")
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def resnet_bottleneck_block(
    x: keras.KerasTensor, filters: int, *, strides: int, name: str, expansion: int = 4
) -> keras.KerasTensor:
    """torchvision Bottleneck (v1.5, stride on the 3×3): 1×1 → 3×3 (stride) → 1×1 (×4), each with BN."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters * expansion:
        shortcut = torch_conv(x, filters * expansion, 1, strides=strides, name=f"{name}_0_conv")
        shortcut = batch_norm(shortcut, name=f"{name}_0_bn")
    y = torch_conv(x, filters, 1, name=f"{name}_1_conv")
    y = batch_norm(y, name=f"{name}_1_bn")
    y = keras.layers.ReLU(name=f"{name}_1_relu")(y)
    y = torch_conv(y, filters, 3, strides=strides, padding=1, name=f"{name}_2_conv")
    y = batch_norm(y, name=f"{name}_2_bn")
    y = keras.layers.ReLU(name=f"{name}_2_relu")(y)
    y = torch_conv(y, filters * expansion, 1, name=f"{name}_3_conv")
    y = batch_norm(y, name=f"{name}_3_bn")
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def resnet_features(x: keras.KerasTensor, depth: int = 18) -> list:
    """torchvision ResNet-``depth`` on ``x``: the stride-2 stem output and the four stage outputs (strides 4…32)."""
    if depth not in RESNET_BLOCKS:
        raise ValueError(f"ResNet depth must be one of {sorted(RESNET_BLOCKS)}, got {depth}")
    block_type, blocks = RESNET_BLOCKS[depth]
    block = resnet_basic_block if block_type == "basic" else resnet_bottleneck_block
    x = torch_conv(x, 64, 7, strides=2, padding=3, name="conv1_conv")
    x = batch_norm(x, name="conv1_bn")
    x = keras.layers.ReLU(name="conv1_relu")(x)
    features = [x]
    x = torch_max_pool(x, 3, 2, 1, name="pool1_pool")
    for stage, (filters, count) in enumerate(zip((64, 128, 256, 512), blocks), start=2):
        for b in range(1, count + 1):
            strides = 2 if (b == 1 and stage > 2) else 1
            x = block(x, filters, strides=strides, name=f"conv{stage}_block{b}")
        features.append(x)
    return features


# -------------------------------------------------------------------------------------------------------- DenseNet


def dense_layer(x: keras.KerasTensor, growth_rate: int, *, name: str, bn_size: int = 4) -> keras.KerasTensor:
    """One DenseNet-BC layer: BN → ReLU → 1×1 (bn_size·k) → BN → ReLU → 3×3 (k), concatenated after ``x``."""
    y = batch_norm(x, name=f"{name}_0_bn")
    y = keras.layers.ReLU(name=f"{name}_0_relu")(y)
    y = torch_conv(y, bn_size * growth_rate, 1, name=f"{name}_1_conv")
    y = batch_norm(y, name=f"{name}_1_bn")
    y = keras.layers.ReLU(name=f"{name}_1_relu")(y)
    y = torch_conv(y, growth_rate, 3, padding=1, name=f"{name}_2_conv")
    return keras.layers.Concatenate(name=f"{name}_concat")([x, y])


def dense_transition(
    x: keras.KerasTensor, *, name: str, reduction: float = 0.5
) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """Transition BN → ReLU → 1×1 conv (×reduction) → 2×2 average pool. Returns (skip, pooled).

    The skip is the ReLU output: the full-width, pre-pool map that SMP's DenseNet encoder hands to the decoder.
    """
    skip = batch_norm(x, name=f"{name}_bn")
    skip = keras.layers.ReLU(name=f"{name}_relu")(skip)
    y = torch_conv(skip, int(x.shape[-1] * reduction), 1, name=f"{name}_conv")
    y = keras.layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(y)
    return skip, y


def densenet_features(x: keras.KerasTensor, depth: int = 121) -> list:
    """torchvision DenseNet-``depth`` on ``x``: stem (stride 2), the three transition skips, and ``bn`` (norm5)."""
    if depth not in DENSENET_CONFIGS:
        raise ValueError(f"DenseNet depth must be one of {sorted(DENSENET_CONFIGS)}, got {depth}")
    stem, growth_rate, blocks = DENSENET_CONFIGS[depth]
    x = torch_conv(x, stem, 7, strides=2, padding=3, name="conv1_conv")
    x = batch_norm(x, name="conv1_bn")
    x = keras.layers.ReLU(name="conv1_relu")(x)
    features = [x]
    x = torch_max_pool(x, 3, 2, 1, name="pool1")
    for stage, count in enumerate(blocks, start=2):
        for b in range(1, count + 1):
            x = dense_layer(x, growth_rate, name=f"conv{stage}_block{b}")
        if stage < 1 + len(blocks):
            skip, x = dense_transition(x, name=f"pool{stage}")
            features.append(skip)
    features.append(batch_norm(x, name="bn"))  # norm5, no ReLU: SMP's last feature
    return features


# ----------------------------------------------------------------------------------------------------- InceptionV4


def inception_conv(
    x: keras.KerasTensor,
    filters: int,
    kernel_size: int | tuple[int, int],
    *,
    strides: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    name: str,
) -> keras.KerasTensor:
    """Cadene's BasicConv2d: conv (no bias) → BN(eps 1e-3, γ and β) → ReLU; ``padding`` is PyTorch's."""
    x = torch_conv(x, filters, kernel_size, strides=strides, padding=padding, name=f"{name}_conv")
    x = batch_norm(x, name=f"{name}_bn", epsilon=INCEPTION_EPSILON)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _avg_pool_branch(x: keras.KerasTensor, filters: int, *, name: str) -> keras.KerasTensor:
    # Cadene: AvgPool2d(3, stride 1, padding 1, count_include_pad=False); Keras "same" average pooling also leaves
    # the padding out of the mean.
    y = keras.layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    return inception_conv(y, filters, 1, name=f"{name}_conv")


def inception_v4_a(x: keras.KerasTensor, *, name: str) -> keras.KerasTensor:
    """Inception-A (384 → 384)."""
    b0 = inception_conv(x, 96, 1, name=f"{name}_branch0")
    b1 = inception_conv(x, 64, 1, name=f"{name}_branch1_1")
    b1 = inception_conv(b1, 96, 3, padding=1, name=f"{name}_branch1_2")
    b2 = inception_conv(x, 64, 1, name=f"{name}_branch2_1")
    b2 = inception_conv(b2, 96, 3, padding=1, name=f"{name}_branch2_2")
    b2 = inception_conv(b2, 96, 3, padding=1, name=f"{name}_branch2_3")
    b3 = _avg_pool_branch(x, 96, name=f"{name}_branch3")
    return keras.layers.Concatenate(name=name)([b0, b1, b2, b3])


def inception_v4_b(x: keras.KerasTensor, *, name: str) -> keras.KerasTensor:
    """Inception-B (1024 → 1024), with factorized 7×7 convolutions."""
    b0 = inception_conv(x, 384, 1, name=f"{name}_branch0")
    b1 = inception_conv(x, 192, 1, name=f"{name}_branch1_1")
    b1 = inception_conv(b1, 224, (1, 7), padding=(0, 3), name=f"{name}_branch1_2")
    b1 = inception_conv(b1, 256, (7, 1), padding=(3, 0), name=f"{name}_branch1_3")
    b2 = inception_conv(x, 192, 1, name=f"{name}_branch2_1")
    b2 = inception_conv(b2, 192, (7, 1), padding=(3, 0), name=f"{name}_branch2_2")
    b2 = inception_conv(b2, 224, (1, 7), padding=(0, 3), name=f"{name}_branch2_3")
    b2 = inception_conv(b2, 224, (7, 1), padding=(3, 0), name=f"{name}_branch2_4")
    b2 = inception_conv(b2, 256, (1, 7), padding=(0, 3), name=f"{name}_branch2_5")
    b3 = _avg_pool_branch(x, 128, name=f"{name}_branch3")
    return keras.layers.Concatenate(name=name)([b0, b1, b2, b3])


def inception_v4_c(x: keras.KerasTensor, *, name: str) -> keras.KerasTensor:
    """Inception-C (1536 → 1536), with split 1×3 / 3×1 branches."""
    b0 = inception_conv(x, 256, 1, name=f"{name}_branch0")
    b1 = inception_conv(x, 384, 1, name=f"{name}_branch1_0")
    b1a = inception_conv(b1, 256, (1, 3), padding=(0, 1), name=f"{name}_branch1_1a")
    b1b = inception_conv(b1, 256, (3, 1), padding=(1, 0), name=f"{name}_branch1_1b")
    b2 = inception_conv(x, 384, 1, name=f"{name}_branch2_0")
    b2 = inception_conv(b2, 448, (3, 1), padding=(1, 0), name=f"{name}_branch2_1")
    b2 = inception_conv(b2, 512, (1, 3), padding=(0, 1), name=f"{name}_branch2_2")
    b2a = inception_conv(b2, 256, (1, 3), padding=(0, 1), name=f"{name}_branch2_3a")
    b2b = inception_conv(b2, 256, (3, 1), padding=(1, 0), name=f"{name}_branch2_3b")
    b3 = _avg_pool_branch(x, 256, name=f"{name}_branch3")
    return keras.layers.Concatenate(name=name)([b0, b1a, b1b, b2a, b2b, b3])


def inception_v4_features(x: keras.KerasTensor, *, padding: str = "smp") -> list:
    """Cadene InceptionV4 ``features`` on ``x``, cut into SMP's five stages (strides 2 … 32).

    ``padding="smp"`` pads every 3×3 convolution and max-pool by 1 (what SMP's encoder forces), so each stage halves
    the input exactly; ``padding="original"`` keeps the ImageNet classifier's unpadded stem and reductions (the
    feature maps are then not aligned to strides and only the last one is meant to be used).
    """
    if padding not in ("smp", "original"):
        raise ValueError(f"padding must be 'smp' or 'original', got {padding!r}")
    p = 1 if padding == "smp" else 0
    x = inception_conv(x, 32, 3, strides=2, padding=p, name="stem_conv1")
    x = inception_conv(x, 32, 3, padding=p, name="stem_conv2")
    x = inception_conv(x, 64, 3, padding=1, name="stem_conv3")
    features = [x]
    # Mixed_3a: max-pool ∥ strided conv
    pooled = torch_max_pool(x, 3, 2, p, name="mixed_3a_pool")
    conv = inception_conv(x, 96, 3, strides=2, padding=p, name="mixed_3a_conv")
    x = keras.layers.Concatenate(name="mixed_3a")([pooled, conv])
    # Mixed_4a: two conv towers ending in an (unpadded in the original) 3×3
    b0 = inception_conv(x, 64, 1, name="mixed_4a_branch0_1")
    b0 = inception_conv(b0, 96, 3, padding=p, name="mixed_4a_branch0_2")
    b1 = inception_conv(x, 64, 1, name="mixed_4a_branch1_1")
    b1 = inception_conv(b1, 64, (1, 7), padding=(0, 3), name="mixed_4a_branch1_2")
    b1 = inception_conv(b1, 64, (7, 1), padding=(3, 0), name="mixed_4a_branch1_3")
    b1 = inception_conv(b1, 96, 3, padding=p, name="mixed_4a_branch1_4")
    x = keras.layers.Concatenate(name="mixed_4a")([b0, b1])
    features.append(x)
    # Mixed_5a: strided conv ∥ max-pool
    conv = inception_conv(x, 192, 3, strides=2, padding=p, name="mixed_5a_conv")
    pooled = torch_max_pool(x, 3, 2, p, name="mixed_5a_pool")
    x = keras.layers.Concatenate(name="mixed_5a")([conv, pooled])
    for i in range(1, 4):
        x = inception_v4_a(x, name=f"inception_a{i}")
    features.append(x)
    x = inception_v4_a(x, name="inception_a4")
    # Reduction-A (k, l, m, n = 192, 224, 256, 384)
    b0 = inception_conv(x, 384, 3, strides=2, padding=p, name="reduction_a_branch0")
    b1 = inception_conv(x, 192, 1, name="reduction_a_branch1_1")
    b1 = inception_conv(b1, 224, 3, padding=1, name="reduction_a_branch1_2")
    b1 = inception_conv(b1, 256, 3, strides=2, padding=p, name="reduction_a_branch1_3")
    b2 = torch_max_pool(x, 3, 2, p, name="reduction_a_pool")
    x = keras.layers.Concatenate(name="reduction_a")([b0, b1, b2])
    for i in range(1, 5):
        x = inception_v4_b(x, name=f"inception_b{i}")
    features.append(x)
    for i in range(5, 8):
        x = inception_v4_b(x, name=f"inception_b{i}")
    # Reduction-B
    b0 = inception_conv(x, 192, 1, name="reduction_b_branch0_1")
    b0 = inception_conv(b0, 192, 3, strides=2, padding=p, name="reduction_b_branch0_2")
    b1 = inception_conv(x, 256, 1, name="reduction_b_branch1_1")
    b1 = inception_conv(b1, 256, (1, 7), padding=(0, 3), name="reduction_b_branch1_2")
    b1 = inception_conv(b1, 320, (7, 1), padding=(3, 0), name="reduction_b_branch1_3")
    b1 = inception_conv(b1, 320, 3, strides=2, padding=p, name="reduction_b_branch1_4")
    b2 = torch_max_pool(x, 3, 2, p, name="reduction_b_pool")
    x = keras.layers.Concatenate(name="reduction_b")([b0, b1, b2])
    for i in range(1, 4):
        x = inception_v4_c(x, name=f"inception_c{i}")
    features.append(x)
    return features


# ---------------------------------------------------------------------------------------------------------- public

_FEATURE_FUNCTIONS: dict[str, Callable[..., list]] = {
    "resnet18": lambda x: resnet_features(x, 18),
    "resnet50": lambda x: resnet_features(x, 50),
    "densenet121": lambda x: densenet_features(x, 121),
    "densenet161": lambda x: densenet_features(x, 161),
    "inceptionv4": lambda x: inception_v4_features(x, padding="smp"),
}

# The layers whose outputs are the five SMP feature maps (strides 2 … 32) of each encoder.
ENCODER_TAPS = {
    "resnet18": ("conv1_relu", "conv2_block2_out", "conv3_block2_out", "conv4_block2_out", "conv5_block2_out"),
    "resnet50": ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
    "densenet121": ("conv1_relu", "pool2_relu", "pool3_relu", "pool4_relu", "bn"),
    "densenet161": ("conv1_relu", "pool2_relu", "pool3_relu", "pool4_relu", "bn"),
    "inceptionv4": ("stem_conv3_relu", "mixed_4a", "inception_a3", "inception_b4", "inception_c3"),
}


def check_encoder(encoder: str) -> str:
    """Returns ``encoder`` or raises ValueError listing the valid names."""
    if encoder not in _FEATURE_FUNCTIONS:
        raise ValueError(f"unknown encoder {encoder!r}; valid encoders: {', '.join(ENCODERS)}")
    return encoder


def encoder_features(inputs: keras.KerasTensor, encoder: str) -> list:
    """Builds ``encoder`` on the Keras tensor ``inputs``; returns its five SMP feature maps (strides 2 … 32)."""
    return _FEATURE_FUNCTIONS[check_encoder(encoder)](inputs)


def build_encoder(
    encoder: str = "resnet18",
    *,
    weights: str | os.PathLike | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] = (256, 256, 3),
    name: str | None = None,
) -> keras.Model:
    """One of the five encoders as a ``keras.Model`` with its five SMP feature maps as outputs.

    Reference: see the module docstring (thesis §3.2.2; SMP encoders).

    Args:
        encoder: "resnet18", "resnet50", "densenet121", "densenet161" or "inceptionv4".
        weights: None (random initialisation) or the path of a weights file saved from this encoder
            (``encoder_model.save_weights("x.weights.h5")``). No ImageNet weights are shipped: the thesis'
            encoders started from torchvision / Cadene ImageNet weights, which must be converted by the user.
        input_tensor: optional Keras tensor to build on.
        input_shape: (H, W, C); C may be 1 (grayscale) or 3. H and W should be multiples of 32.
        name: model name (default ``"<encoder>_encoder"``).

    Returns:
        A ``keras.Model`` mapping (B, H, W, C) to five maps at strides 2, 4, 8, 16, 32 with
        ``ENCODER_CHANNELS[encoder]`` channels.

    Example:
        >>> enc = build_encoder("densenet121", input_shape=(256, 256, 3))
        >>> [tuple(t.shape) for t in enc.outputs][-1]
        (None, 8, 8, 1024)
    """
    check_encoder(encoder)
    inputs = make_input(input_tensor, input_shape)
    model = keras.Model(inputs, encoder_features(inputs, encoder), name=name or f"{encoder}_encoder")
    return load_weights(model, weights, arch=f"{encoder}_encoder")


# ------------------------------------------------------------------------------------------ classification backbones

# The map each backbone's classifier pools (the natural Grad-CAM / Score-CAM target).
CLASSIFIER_CAM_LAYER = {
    "resnet18": "conv5_block2_out",
    "resnet50": "conv5_block3_out",
    "densenet121": "relu",
    "densenet161": "relu",
    "inceptionv4": "inception_c3",
}


def classification_features(inputs: keras.KerasTensor, backbone: str) -> keras.KerasTensor:
    """The last feature map of ``backbone`` as its ImageNet classifier pools it.

    Differs from the encoder's last map in two places: DenseNets add the final ReLU (torchvision's ``forward``),
    and InceptionV4 keeps Cadene's original, unpadded stem and reductions (SMP pads only its encoder copy).
    """
    check_encoder(backbone)
    if backbone.startswith("densenet"):
        return keras.layers.ReLU(name="relu")(encoder_features(inputs, backbone)[-1])
    if backbone == "inceptionv4":
        return inception_v4_features(inputs, padding="original")[-1]
    return encoder_features(inputs, backbone)[-1]


def build_backbone_classifier(
    backbone: str,
    *,
    weights: str | os.PathLike | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] = (256, 256, 3),
    include_top: bool = True,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    name: str,
    arch: str,
) -> keras.Model:
    """``backbone`` (torchvision / Cadene graph) → :func:`classifier_top`, as a model; ``weights`` None or a path.

    The body of :func:`cxrzoo.build_cxr_classifier` and of the screening baselines' ResNet50 / DenseNet121; ``arch`` is the
    registry name their weights are checked against.
    """
    inputs = make_input(input_tensor, input_shape)
    x = classifier_top(
        classification_features(inputs, backbone),
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
    )
    return load_weights(keras.Model(inputs, x, name=name), weights, arch=arch, classes=classes)
