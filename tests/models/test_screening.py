"""Seed paper 002's baselines: torchvision-exact graphs and parameter counts, grayscale stems, the single logit and
InceptionV3's auxiliary head."""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest

import cxrzoo
from cxrzoo.models.encoders import count_trainable
from cxrzoo.models.screening import (
    AUX_LOSS_WEIGHT,
    _torch_avg_pool_3x3,
    build_alexnet,
    build_densenet121,
    build_inception_v3,
    build_resnet50,
    build_vgg16,
    without_aux_classifier,
)

# Reference segmentation_detector.md §1.9 (torchvision definitions, one output, 3-channel input) and Table V
THREE_CHANNEL = {
    "alexnet": (build_alexnet, (224, 224, 3), 57_007_937, 57.0, "conv1"),
    "vgg16": (build_vgg16, (224, 224, 3), 134_264_641, 134.3, "block1_conv1"),
    "resnet50": (build_resnet50, (224, 224, 3), 23_510_081, 23.5, "conv1_conv"),
    "densenet121": (build_densenet121, (224, 224, 3), 6_954_881, 7.0, "conv1_conv"),
    "inception_v3": (build_inception_v3, (299, 299, 3), 21_787_617, 21.8, "conv2d_1a_3x3_conv"),
}


@functools.cache
def _rgb_model(arch: str):
    builder, shape = THREE_CHANNEL[arch][:2]
    return builder(input_shape=shape)


def _first_conv_extra_weights(model, first_conv: str) -> int:
    kernel = model.get_layer(first_conv).kernel
    kh, kw, cin, cout = (int(d) for d in kernel.shape)
    assert cin == 1
    return kh * kw * 2 * cout


@pytest.mark.parametrize("arch", list(THREE_CHANNEL))
def test_parameter_counts_match_torchvision_and_table_v(arch):
    builder, shape, count, table_v, first_conv = THREE_CHANNEL[arch]
    rgb = without_aux_classifier(_rgb_model(arch))
    assert count_trainable(rgb) == count
    assert round(count / 1e6, 1) == table_v
    assert rgb.output_shape == (None, 1)
    gray = without_aux_classifier(builder())  # the paper's configuration: grayscale
    assert gray.input_shape == (None,) + shape[:2] + (1,)
    assert count_trainable(gray) == count - _first_conv_extra_weights(gray, first_conv)


def test_inception_v3_auxiliary_head_and_the_inference_view():
    model = _rgb_model("inception_v3")
    assert [t.name for t in model.outputs] == [
        model.get_layer("predictions").output.name,
        model.get_layer("aux_predictions").output.name,
    ]
    # aux: 1×1 768→128 (+BN) 98,560; 5×5 128→768 (+BN) 2,459,136; Linear 768→1 769
    assert count_trainable(model) == 21_787_617 + 98_560 + 2_459_136 + 769 == 24_346_082
    assert model.get_layer("aux_conv0_conv").input.shape[1:] == (5, 5, 768)  # 17×17 Mixed_6e, 5×5/3 pool
    assert _input_names(model, "aux_pool") == ["mixed_6e"]
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert all(bn.scale and bn.epsilon == 1e-3 for bn in bns)  # γ kept, unlike keras.applications.InceptionV3
    inference = without_aux_classifier(model)
    assert inference.outputs[0].name == model.outputs[0].name and len(inference.outputs) == 1
    assert without_aux_classifier(inference) is inference
    assert AUX_LOSS_WEIGHT == 0.3
    with pytest.raises(ValueError, match="include_top"):
        build_inception_v3(include_top=False)
    with pytest.raises(ValueError, match="at least 75"):
        build_inception_v3(input_shape=(64, 64, 1), aux_classifier=False)


def _input_names(model, layer_name):
    by_output = {layer.output.name: layer.name for layer in model.layers}
    inputs = model.get_layer(layer_name).input
    return [by_output[t.name] for t in (inputs if isinstance(inputs, list) else [inputs])]


def test_inception_v3_average_pools_count_the_padding():
    # torchvision's avg_pool2d(3, 1, padding=1) divides by 9 at the border too: a corner of ones averages to 4/9
    inputs = keras.Input((2, 2, 1))
    probe = keras.Model(inputs, _torch_avg_pool_3x3(inputs, name="probe"))
    np.testing.assert_allclose(np.asarray(probe(np.ones((1, 2, 2, 1), np.float32)))[0, ..., 0], 4 / 9, rtol=1e-6)


def test_alexnet_and_vgg16_keep_torchvisions_classifier():
    alexnet = _rgb_model("alexnet")
    # torchvision AlexNet: Dropout → FC → ReLU, Dropout → FC → ReLU, FC (only the last one replaced)
    assert [layer.name for layer in alexnet.layers][-6:] == [
        "flatten",
        "fc1_dropout",
        "fc1",
        "fc2_dropout",
        "fc2",
        "predictions",
    ]
    assert alexnet.get_layer("flatten").output.shape[-1] == 9216
    assert alexnet.get_layer("conv1").strides == (4, 4) and alexnet.get_layer("conv1_pad").padding == ((2, 2), (2, 2))
    # torchvision VGG: FC → ReLU → Dropout
    assert [layer.name for layer in _rgb_model("vgg16").layers][-5:] == [
        "fc1",
        "fc1_dropout",
        "fc2",
        "fc2_dropout",
        "predictions",
    ]
    vgg = build_vgg16(include_top=False)
    assert vgg.output_shape == (None, 7, 7, 512)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in vgg.layers)
    out = np.asarray(build_alexnet(input_shape=(96, 96, 1))(np.zeros((2, 96, 96, 1), np.float32)))
    assert out.shape == (2, 1)  # other sizes pass the adaptive 6×6 pool


def test_resnet50_is_bias_free_and_heads_are_logits():
    model = build_resnet50(input_shape=(64, 64, 1), classes=2, classifier_activation="softmax")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 53 and not any(c.use_bias for c in convs)
    assert model.get_layer("conv3_block1_2_conv").strides == (2, 2)  # v1.5: stride on the 3×3
    assert model.get_layer("conv3_block1_1_conv").strides == (1, 1)
    probs = np.asarray(model(np.random.default_rng(0).random((3, 64, 64, 1), dtype=np.float32)))
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="classifier_activation"):
        build_densenet121(classifier_activation="relu")


def test_registered_under_the_screening_paper():
    assert cxrzoo.list_models(paper="screening") == ["alexnet", "densenet121", "inception_v3", "resnet50", "vgg16"]
    assert cxrzoo.model_info("inception_v3").cam_layer == "mixed_7c"
