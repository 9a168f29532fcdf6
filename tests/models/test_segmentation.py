"""U-Net, U-Net++ and FPN as SMP builds them: exact parameter counts of all 15 thesis models, decoder wiring,
PyTorch-style upsampling, round trips and the registry."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import cxrzoo
from cxrzoo.layers import AlignedBilinearUpsampling2D
from cxrzoo.models.encoders import ENCODER_CHANNELS, ENCODER_TAPS, count_trainable
from cxrzoo.models.segmentation import BUILDERS, build_fpn, build_unet, build_unet_plus_plus

# Exact SMP counts at 256×256×3, classes=1 (reference segmentation_detector.md §1.4): encoder, decoder, head, and
# the thesis' Table 11 value in millions.
SMP_COUNTS = {
    ("unet", "resnet18"): (11_176_512, 3_151_552, 145, 14.32),
    ("unet", "resnet50"): (23_508_032, 9_012_928, 145, 32.50),
    ("unet", "densenet121"): (6_953_856, 6_653_632, 145, 13.60),
    ("unet", "densenet161"): (26_472_000, 12_266_176, 145, 38.73),
    ("unet", "inceptionv4"): (41_142_816, 7_648_960, 145, 48.79),
    ("unet_plus_plus", "resnet18"): (11_176_512, 4_793_792, 145, 15.96),
    ("unet_plus_plus", "resnet50"): (23_508_032, 25_477_568, 145, 48.97),
    ("unet_plus_plus", "densenet121"): (6_953_856, 23_118_272, 145, 30.06),
    ("unet_plus_plus", "densenet161"): (26_472_000, 52_584_256, 145, 79.04),
    ("unet_plus_plus", "inceptionv4"): (41_142_816, 18_214_336, 145, 59.35),
    ("fpn", "resnet18"): (11_176_512, 1_870_592, 129, 13.04),
    ("fpn", "resnet50"): (23_508_032, 2_607_872, 129, 26.11),
    ("fpn", "densenet121"): (6_953_856, 2_345_728, 129, 9.29),
    ("fpn", "densenet161"): (26_472_000, 3_025_664, 129, 29.49),
    ("fpn", "inceptionv4"): (41_142_816, 2_427_648, 129, 43.57),
}
# BatchNorm moving statistics seen in the reference's Keras builds
NON_TRAINABLE = {
    ("unet", "resnet50"): 55_104,
    ("fpn", "densenet121"): 83_648,
    ("unet_plus_plus", "densenet161"): 229_216,
    ("unet", "inceptionv4"): 65_152,
}


def _part_counts(model) -> dict[str, int]:
    parts = {"encoder": 0, "decoder": 0, "head": 0}
    for layer in model.layers:
        part = (
            "decoder" if layer.name.startswith("decoder_") else "head" if layer.name.startswith("head_") else "encoder"
        )
        parts[part] += sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    return parts


@pytest.mark.parametrize("decoder, encoder", list(SMP_COUNTS))
def test_trainable_parameters_equal_smp_exactly(decoder, encoder):
    model = BUILDERS[decoder](encoder=encoder, input_shape=(256, 256, 3), classes=1)
    encoder_count, decoder_count, head_count, thesis_millions = SMP_COUNTS[(decoder, encoder)]
    total = encoder_count + decoder_count + head_count
    assert count_trainable(model) == total
    assert _part_counts(model) == {"encoder": encoder_count, "decoder": decoder_count, "head": head_count}
    # The thesis truncates or slightly under-reports (largest gap 0.021 M, U-Net/ResNet50's "32.50")
    assert abs(total / 1e6 - thesis_millions) <= 0.025
    if (decoder, encoder) in NON_TRAINABLE:
        assert sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) == NON_TRAINABLE[(decoder, encoder)]
    # SMP's five taps, each at its stride with the encoder's published widths
    for tap, stride, channels in zip(ENCODER_TAPS[encoder], (2, 4, 8, 16, 32), ENCODER_CHANNELS[encoder]):
        assert tuple(model.get_layer(tap).output.shape[1:]) == (256 // stride, 256 // stride, channels), tap
    assert model.output_shape == (None, 256, 256, 1)


def _kernel_io(model, name):
    kernel = model.get_layer(name).kernel
    return int(kernel.shape[2]), int(kernel.shape[3])


def _input_names(model, layer_name):
    by_output = {layer.output.name: layer.name for layer in model.layers}
    inputs = model.get_layer(layer_name).input
    return [by_output[t.name] for t in (inputs if isinstance(inputs, list) else [inputs])]


@pytest.fixture(scope="module")
def small_models():
    shape = (64, 64, 3)
    return {
        "unet": build_unet(input_shape=shape),
        "unet_plus_plus": build_unet_plus_plus(input_shape=shape),
        "fpn": build_fpn(input_shape=shape),
    }


def test_unet_decoder_blocks_follow_smp(small_models):
    model = small_models["unet"]
    expected = [(512 + 256, 256), (256 + 128, 128), (128 + 64, 64), (64 + 64, 32), (32, 16)]
    for i, (cin, cout) in enumerate(expected, start=1):
        assert _kernel_io(model, f"decoder_block{i}_1_conv") == (cin, cout)
        assert _kernel_io(model, f"decoder_block{i}_2_conv") == (cout, cout)
        conv = model.get_layer(f"decoder_block{i}_1_conv")
        assert conv.kernel_size == (3, 3) and not conv.use_bias
        up = model.get_layer(f"decoder_block{i}_upsample")
        assert up.interpolation == "nearest" and up.size == (2, 2)
    # upsampled tensor first, then the skip
    assert _input_names(model, "decoder_block1_concat") == ["decoder_block1_upsample", "conv4_block2_out"]
    assert "decoder_block5_concat" not in {layer.name for layer in model.layers}  # block 5 has no skip
    head = model.get_layer("head_conv")
    assert head.kernel_size == (3, 3) and head.use_bias and _kernel_io(model, "head_conv") == (16, 1)
    bn = model.get_layer("decoder_block3_1_bn")
    assert bn.epsilon == 1e-5 and bn.momentum == 0.9


def test_unet_plus_plus_nodes_follow_smp(small_models):
    model = small_models["unet_plus_plus"]
    # reference §1.3, ResNet18 (skip widths 256, 128, 64, 64): in + skip → out per node
    nodes = {
        "0_0": (512 + 256, 256),
        "0_1": (256 + 256, 128),
        "1_1": (256 + 128, 128),
        "0_2": (128 + 192, 64),
        "1_2": (128 + 128, 64),
        "2_2": (128 + 64, 64),
        "0_3": (64 + 256, 32),
        "1_3": (64 + 192, 64),
        "2_3": (64 + 128, 64),
        "3_3": (64 + 64, 64),
        "0_4": (32, 16),
    }
    convs = {layer.name for layer in model.layers if layer.name.endswith("_1_conv") and "decoder_x" in layer.name}
    assert convs == {f"decoder_x_{n}_1_conv" for n in nodes}
    for node, (cin, cout) in nodes.items():
        assert _kernel_io(model, f"decoder_x_{node}_1_conv") == (cin, cout), node
    # X(0, 2) = block(X(0, 1); X(1, 2), X(2, 2), stride-4 encoder map)
    assert _input_names(model, "decoder_x_0_2_concat") == [
        "decoder_x_0_2_upsample",
        "decoder_x_1_2_2_relu",
        "decoder_x_2_2_2_relu",
        "conv2_block2_out",
    ]
    assert _input_names(model, "decoder_x_0_0_concat") == ["decoder_x_0_0_upsample", "conv4_block2_out"]


def test_fpn_decoder_follows_smp(small_models):
    model = small_models["fpn"]
    layers = {layer.name: layer for layer in model.layers}
    for level, width in zip((5, 4, 3, 2), (512, 256, 128, 64)):
        name = "decoder_p5" if level == 5 else f"decoder_p{level}_lateral"
        assert layers[name].kernel_size == (1, 1) and layers[name].use_bias
        assert _kernel_io(model, name) == (width, 256)
    gns = [layer for layer in model.layers if isinstance(layer, keras.layers.GroupNormalization)]
    assert len(gns) == 7 and all(gn.groups == 32 for gn in gns)
    ups = [layer for layer in model.layers if isinstance(layer, AlignedBilinearUpsampling2D)]
    assert sorted(u.name for u in ups) == sorted(
        [
            "decoder_seg_p5_1_upsample",
            "decoder_seg_p5_2_upsample",
            "decoder_seg_p5_3_upsample",
            "decoder_seg_p4_1_upsample",
            "decoder_seg_p4_2_upsample",
            "decoder_seg_p3_1_upsample",
            "head_upsample",
        ]
    )
    assert layers["head_upsample"].size == (4, 4)
    assert "decoder_seg_p2_1_upsample" not in layers and "decoder_seg_p2_1_conv" in layers
    dropout = layers["decoder_dropout"]
    assert isinstance(dropout, keras.layers.SpatialDropout2D) and dropout.rate == 0.2
    assert layers["head_conv"].kernel_size == (1, 1) and _kernel_io(model, "head_conv") == (128, 1)
    assert model.get_layer("decoder_merge").output.shape[1:] == (16, 16, 128)  # stride 4


def test_fpn_cat_merge_and_unet_without_batchnorm():
    cat = build_fpn(input_shape=(64, 64, 3), decoder_merge_policy="cat", classes=2)
    assert _kernel_io(cat, "head_conv") == (512, 2)
    plain = build_unet(input_shape=(64, 64, 3), decoder_use_batchnorm=False)
    assert plain.get_layer("decoder_block1_1_conv").use_bias
    assert not any(
        layer.name.startswith("decoder_") and isinstance(layer, keras.layers.BatchNormalization)
        for layer in plain.layers
    )


def _align_corners_reference(x: np.ndarray, scale: int) -> np.ndarray:
    """PyTorch's bilinear interpolation with align_corners=True, written out for (H, W) arrays."""
    h, w = x.shape
    out_h, out_w = h * scale, w * scale

    def coords(n_in, n_out):
        src = np.arange(n_out) * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(1)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0

    r0, r1, rw = coords(h, out_h)
    c0, c1, cw = coords(w, out_w)
    rows = x[r0] * (1 - rw)[:, None] + x[r1] * rw[:, None]
    return rows[:, c0] * (1 - cw)[None] + rows[:, c1] * cw[None]


@pytest.mark.parametrize("scale", [2, 4])
def test_aligned_bilinear_upsampling_matches_align_corners_true(scale):
    x = np.random.default_rng(scale).random((2, 5, 7, 3), dtype=np.float32)
    out = np.asarray(AlignedBilinearUpsampling2D(scale)(x))
    assert out.shape == (2, 5 * scale, 7 * scale, 3)
    for b in range(2):
        for c in range(3):
            np.testing.assert_allclose(out[b, ..., c], _align_corners_reference(x[b, ..., c], scale), atol=1e-6)
    # the corners coincide, unlike Keras' half-pixel bilinear upsampling
    np.testing.assert_allclose(out[:, [0, -1]][:, :, [0, -1]], x[:, [0, -1]][:, :, [0, -1]], atol=1e-6)
    keras_bilinear = np.asarray(keras.layers.UpSampling2D(scale, interpolation="bilinear")(x))
    assert not np.allclose(out, keras_bilinear, atol=1e-3)


@pytest.mark.parametrize("decoder", ["unet", "unet_plus_plus", "fpn"])
def test_any_multiple_of_32_and_activations(decoder):
    model = BUILDERS[decoder](input_shape=(None, None, 3), classes=2, activation="softmax")
    out = np.asarray(model(np.random.default_rng(0).random((1, 96, 128, 3), dtype=np.float32)))
    assert out.shape == (1, 96, 128, 2)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)


def test_grayscale_input_and_sigmoid():
    model = build_unet_plus_plus(input_shape=(64, 64, 1), activation="sigmoid")
    out = np.asarray(model(np.zeros((2, 64, 64, 1), np.float32)))
    assert out.shape == (2, 64, 64, 1) and out.min() >= 0 and out.max() <= 1
    assert model.get_layer("conv1_conv").kernel.shape == (7, 7, 1, 64)


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="multiples of 32"):
        build_unet(input_shape=(100, 128, 3))
    with pytest.raises(ValueError, match="valid encoders"):
        build_fpn(encoder="vgg16")
    with pytest.raises(ValueError, match="activation"):
        build_unet(activation="relu")
    with pytest.raises(ValueError, match="decoder_channels must have 5"):
        build_unet_plus_plus(decoder_channels=(256, 128, 64, 32))
    with pytest.raises(ValueError, match="decoder_merge_policy"):
        build_fpn(decoder_merge_policy="mean")
    with pytest.raises(ValueError, match="classes"):
        build_unet(classes=0)


def test_weights_file_and_keras_round_trip(tmp_path, small_models):
    model = small_models["fpn"]
    x = np.random.default_rng(2).random((1, 64, 64, 3), dtype=np.float32)
    expected = np.asarray(model(x))
    path = tmp_path / "fpn.weights.h5"
    model.save_weights(path)
    np.testing.assert_array_equal(np.asarray(build_fpn(input_shape=(64, 64, 3), weights=path)(x)), expected)
    model.save(tmp_path / "fpn.keras")
    reloaded = cxrzoo.models.load_model(tmp_path / "fpn.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(reloaded(x)), expected, atol=1e-6)
    with pytest.raises(ValueError, match="unknown weights tag"):
        build_fpn(input_shape=(64, 64, 3), weights="fpn_resnet18.imagenet")
    # encoder_weights: a file saved from the encoder alone initialises the encoder part only
    encoder = cxrzoo.models.encoders.build_encoder("resnet18", input_shape=(64, 64, 3))
    encoder.save_weights(tmp_path / "encoder.weights.h5")
    unet = build_unet(input_shape=(64, 64, 3), encoder_weights=tmp_path / "encoder.weights.h5")
    for name in ("conv1_conv", "conv5_block2_2_conv"):
        np.testing.assert_array_equal(unet.get_layer(name).kernel.numpy(), encoder.get_layer(name).kernel.numpy())


@pytest.mark.slow  # tracing a U-Net train step takes ~10 s; benchmarks/train_infection_segmentation.py trains for real
def test_trains_on_a_tiny_problem():
    keras.utils.set_random_seed(0)
    model = build_unet(input_shape=(32, 32, 1), decoder_channels=(32, 16, 16, 8, 8))
    x = np.random.default_rng(0).random((4, 32, 32, 1), dtype=np.float32)
    y = (x > 0.5).astype("float32")
    # jit_compile=False: XLA-compiling the train step costs far more than these few steps
    model.compile(
        keras.optimizers.Adam(1e-2), loss=keras.losses.BinaryCrossentropy(from_logits=True), jit_compile=False
    )
    losses = model.fit(x, y, epochs=8, batch_size=4, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.7 * losses[0]


def test_every_combination_is_registered():
    names = cxrzoo.list_models(paper="infection_detector", task="segmentation")
    assert names == sorted(f"{d}_{e}" for d in ("unet", "unet_plus_plus", "fpn") for e in ENCODER_CHANNELS)
    info = cxrzoo.model_info("unet_plus_plus_densenet121")
    assert info.builder is build_unet_plus_plus and info.default_kwargs == {"encoder": "densenet121"}
    model = cxrzoo.create_model("fpn_resnet18", input_shape=(64, 64, 3))
    assert model.name == "fpn_resnet18"
    assert model.get_layer(cxrzoo.model_info("fpn_resnet18").cam_layer).output.shape[-1] == 128
