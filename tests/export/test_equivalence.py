"""Every published model, in every format that can hold it, gives the Keras model's outputs (to 1e-5) on real
images, run by the format's own runtime (Keras, TensorFlow, LiteRT's interpreter, ONNX Runtime).

The default tier covers every tag once in each format where the conversion takes seconds; the CXR-Net ensemble in
LiteRT/ONNX and the five other Module 2 members are in the slow tier (``-m slow``): each conversion takes minutes on
2 cores, and the members share one architecture with ``hfhs_fold0``.
"""

from __future__ import annotations

import numpy as np
import pytest

from cxrzoo.exporting.runtime import load_export

pytestmark = pytest.mark.shared

TOLERANCE = 1e-5
FAST = [
    "res_cr_net.v7_lungs",
    "res_cr_net.jms_lungs",
    "covid_cxnet_base.v1_0",
    "covid_cxnet_base.v_free",
    "bone_suppression.jsrt_v2",
    "cxrnet_member.hfhs_fold0",
]
SLOW_MEMBERS = [f"cxrnet_member.hfhs_fold{k}" for k in range(1, 6)]
CXRNET = ["cxrnet.hfhs_v7", "cxrnet_classifier.hfhs_ensemble6"]
SLOW_CLASSIFIER = ["cxrnet_classifier.hfhs_ensemble6"]
#: outputs compared at a looser bound, and why
QUANTIZED = {
    # the gated lung mask is Module 1's probability rounded to 8 bits (round(255 p) / 255): a 1e-7 difference in p
    # at a rounding boundary moves it by 1/255; the probabilities computed from it are held to 1e-5
    "mask": 1.0 / 255 + 1e-6,
}
#: format options per architecture: CXR-Net's scattering needs TensorFlow ops in LiteRT
OPTIONS = {("litert", "cxrnet"): {"allow_tf_ops": True}, ("litert", "cxrnet_classifier"): {"allow_tf_ops": True}}


def _keras_outputs(model, inputs: dict) -> dict:
    from cxrzoo.exporting._common import output_dict

    names = [t.name for t in model.inputs]
    args = [inputs[n] for n in names]
    out = model(args if len(args) > 1 else args[0], training=False)
    return {k: np.asarray(v) for k, v in output_dict(out, model.spec, tuple(names)).items()}


def _check(tag: str, fmt: str, published, exported, real_inputs) -> None:
    inputs = real_inputs(tag)
    expected = _keras_outputs(published(tag), inputs)
    path = exported(tag, fmt, **OPTIONS.get((fmt, tag.partition(".")[0]), {}))
    got = load_export(path)(**inputs)
    assert set(got) == set(expected), f"{fmt} outputs {sorted(got)} != Keras outputs {sorted(expected)}"
    for name, want in expected.items():
        assert got[name].shape == want.shape, (name, got[name].shape, want.shape)
        # 1e-5 on probabilities and masks; relative to the magnitude on unbounded outputs (logits, feature maps)
        bound = QUANTIZED.get(name, TOLERANCE * max(1.0, float(np.max(np.abs(want)))))
        diff = float(np.max(np.abs(got[name].astype(np.float64) - want)))
        assert diff <= bound, f"{tag} as {fmt}: output {name!r} differs by {diff:.3g} (> {bound:.3g})"


@pytest.mark.parametrize("fmt", ["keras", "saved_model", "litert", "onnx"])
@pytest.mark.parametrize("tag", FAST)
def test_export_equals_keras(tag, fmt, published, exported, real_inputs):
    if fmt == "onnx":
        pytest.importorskip("tf2onnx", reason="ONNX export needs the 'export' extra")
        pytest.importorskip("onnxruntime", reason="ONNX export needs the 'export' extra")
    _check(tag, fmt, published, exported, real_inputs)


def test_cxrnet_keras_file_equals_keras(published, exported, real_inputs):
    _check("cxrnet.hfhs_v7", "keras", published, exported, real_inputs)


@pytest.mark.slow
def test_cxrnet_saved_model_prepared_equals_keras(published, exported, real_inputs):
    """All five outputs of the ``prepared`` signature, in process. Slow tier: in this session it did not finish
    within 20 minutes on the shared machine (test_saved_model_serving.py checks the SavedModel's probabilities
    against the pipeline in the default tier, and benchmarks/export_latency.py measured 2.3e-5 over all outputs)."""
    _check("cxrnet.hfhs_v7", "saved_model", published, exported, real_inputs)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["keras", "saved_model"])
def test_cxrnet_classifier_export_equals_keras(fmt, published, exported, real_inputs):
    _check("cxrnet_classifier.hfhs_ensemble6", fmt, published, exported, real_inputs)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["litert", "onnx"])
@pytest.mark.parametrize("tag", CXRNET)
def test_cxrnet_litert_onnx_equal_keras(tag, fmt, published, exported, real_inputs):
    """Documents the state: ONNX raises naming the ops; LiteRT exports with TensorFlow ops, and runs where the
    interpreter has the Flex delegate (TensorFlow 2.21's pip package has none: skipped with the reason)."""
    from cxrzoo.exporting import ExportError

    if fmt == "onnx":
        pytest.importorskip("tf2onnx", reason="ONNX export needs the 'export' extra")
        with pytest.raises(ExportError, match="unsupported TensorFlow ops: .*IFFT2D"):
            exported(tag, fmt)
        return
    try:
        _check(tag, fmt, published, exported, real_inputs)
    except RuntimeError as err:
        if "Flex delegate" not in str(err):
            raise
        pytest.skip("this TensorFlow's tf.lite.Interpreter has no Flex delegate to run TensorFlow ops")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["keras", "saved_model", "litert", "onnx"])
@pytest.mark.parametrize("tag", SLOW_MEMBERS)
def test_other_members_equal_keras(tag, fmt, published, exported, real_inputs):
    if fmt == "onnx":
        pytest.importorskip("tf2onnx", reason="ONNX export needs the 'export' extra")
    _check(tag, fmt, published, exported, real_inputs)
