"""cxrzoo.export on small random-initialised models (no ../shared needed): formats, metadata, errors, atomicity,
and the ``cxrzoo export`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cxrzoo
from cxrzoo.exporting import FORMATS, ExportError, export, read_metadata
from cxrzoo.exporting.runtime import load_export


@pytest.fixture(scope="module")
def small():
    """COVID-CXNet's base CNN at random initialisation (60 k parameters): exports in seconds."""
    return cxrzoo.create_model("covid_cxnet_base", weights=None)


def _inputs(model):
    x = np.random.default_rng(0).uniform(0, 1, (2, *model.inputs[0].shape[1:])).astype(np.float32)
    return {model.inputs[0].name: x}


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_round_trips_with_metadata(small, fmt, tmp_path):
    if fmt == "onnx":
        pytest.importorskip("tf2onnx", reason="ONNX export needs the 'export' extra")
        pytest.importorskip("onnxruntime", reason="ONNX export needs the 'export' extra")
    suffix = {"keras": ".keras", "litert": ".tflite", "onnx": ".onnx", "saved_model": ""}[fmt]
    path = export(small, fmt, tmp_path / f"m{suffix}")
    record = read_metadata(path)
    assert record["name"] == "covid_cxnet_base"
    assert record["labels"] == ["covid"]
    if fmt != "keras":
        assert record["weights_from_model_object"] is True
        assert record["cxrzoo_version"] == cxrzoo.__version__
        assert record["spec"]["input"]["shape"] == [320, 320, 3]
    inputs = _inputs(small)
    want = np.asarray(small(next(iter(inputs.values()))))
    got = load_export(path)(**inputs)["probabilities"]
    assert np.max(np.abs(got - want)) <= 1e-5
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # nothing else left behind


def test_metadata_names_weights_and_hashes(shared_weights):
    from cxrzoo.exporting._common import metadata

    record = metadata(cxrzoo.model_spec("cxrnet.hfhs_v7"), fmt="saved_model", from_object=False)
    tags = [w["tag"] for w in record["weights"]]
    assert tags == ["cxrnet_classifier.hfhs_ensemble6", "res_cr_net.v7_lungs"]
    assert all(len(f["sha256"]) == 64 for w in record["weights"] for f in w["files"])
    assert record["labels"] == ["covid", "non_covid"]
    assert record["input"]["value_range"] == [0.0, 255.0]


def test_saved_model_without_graph_recipe_serves_prepared(small, tmp_path):
    import tensorflow as tf

    path = export(small, "saved_model", tmp_path / "sm")
    loaded = tf.saved_model.load(str(path))
    assert set(loaded.signatures) == {"serving_default", "prepared", "metadata"}
    # COVID-CXNet's BEASF and CLAHE have no graph form: serving_default takes prepared tensors
    assert loaded.signatures["serving_default"].structured_input_signature[1]["input_layer"].dtype == tf.float32
    assert "same as prepared" in read_metadata(path)["signatures"]["serving_default"]
    assert json.loads((path / "assets" / "cxrzoo_spec.json").read_text())["name"] == "covid_cxnet_base"


def _scattering_model():
    """A tiny model with CXR-Net's wavelet scattering layer (FFTs on complex tensors), carrying a spec."""
    import keras

    from cxrzoo.nn import attach_spec
    from cxrzoo.nn.scattering import Scattering2D

    inputs = keras.Input((16, 16, 1), name="image")
    model = keras.Model(inputs, Scattering2D(J=1, L=2)(inputs))
    return attach_spec(model, cxrzoo.model_spec("cxrnet_member").replace(name="cxrnet_member.wst"))


def test_litert_refuses_tf_ops_unless_allowed(tmp_path):
    model = _scattering_model()
    with pytest.raises(ExportError, match=r"needs the TensorFlow ops .*IFFT2D.*allow_tf_ops=True"):
        export(model, "litert", tmp_path / "wst.tflite")
    assert list(tmp_path.iterdir()) == []  # a failed export leaves nothing behind
    path = export(model, "litert", tmp_path / "wst.tflite", allow_tf_ops=True)
    assert {"Complex", "FFT2D", "IFFT2D"} <= set(read_metadata(path)["tf_ops"])
    # Running it needs the Flex delegate, which TensorFlow 2.21's pip package no longer ships (measured): where
    # it is present the outputs are compared, elsewhere the reason is reported.
    x = np.random.default_rng(1).uniform(0, 255, (1, 16, 16, 1)).astype(np.float32)
    try:
        got = load_export(path)(image=x)
    except RuntimeError as err:
        if "Flex delegate" not in str(err):
            raise
        pytest.skip("this TensorFlow's tf.lite.Interpreter has no Flex delegate to run TensorFlow ops")
    want = np.asarray(model(x))
    assert np.max(np.abs(next(iter(got.values())) - want)) <= 1e-4 * max(1.0, float(np.abs(want).max()))


def test_complex_fft_scattering_equals_real_fft():
    """The FFT2D form the LiteRT export traces (LiteRT's RFFT2D takes power-of-two lengths only) gives the same
    scattering coefficients as RFFT2D, at CXR-Net's size."""
    from cxrzoo.nn.scattering import Scattering2D, complex_fft

    layer = Scattering2D(J=2, L=6)
    x = np.random.default_rng(2).normal(0, 1, (1, 300, 340, 1)).astype(np.float32)
    want = np.asarray(layer(x))
    with complex_fft():
        got = np.asarray(tf_function(layer)(x))
    assert np.max(np.abs(got - want)) <= 1e-5 * max(1.0, float(np.abs(want).max()))


def tf_function(layer):
    import tensorflow as tf

    return tf.function(lambda t: layer(t))


def test_bad_arguments(small, tmp_path):
    with pytest.raises(ValueError, match="unknown export format 'tflite'; choose one of keras, saved_model"):
        export(small, "tflite", tmp_path / "x")
    with pytest.raises(ValueError, match="allow_tf_ops applies to format='litert' only"):
        export(small, "onnx", tmp_path / "x.onnx", allow_tf_ops=True)
    with pytest.raises(ValueError, match=r"must end in \.keras"):
        export(small, "keras", tmp_path / "x.h5")
    (tmp_path / "taken.tflite").write_bytes(b"")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export(small, "litert", tmp_path / "taken.tflite")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        export(small, "litert", tmp_path / "missing" / "x.tflite")
    with pytest.raises(TypeError, match="model name or a Keras model"):
        export(42, "keras", tmp_path / "x.keras")


def test_overwrite_replaces_a_saved_model(small, tmp_path):
    target = tmp_path / "sm"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    export(small, "saved_model", target, overwrite=True)
    assert not (target / "stale.txt").exists()
    assert (target / "saved_model.pb").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]


def test_onnx_error_names_the_unsupported_ops(tmp_path):
    pytest.importorskip("tf2onnx", reason="ONNX export needs the 'export' extra")
    model = _scattering_model()
    with pytest.raises(ExportError, match=r"unsupported TensorFlow ops: .*Complex"):
        export(model, "onnx", tmp_path / "wst.onnx")
    assert list(tmp_path.iterdir()) == []


def test_cli_export(tmp_path, capsys):
    from cxrzoo.cli import main

    target = tmp_path / "xnet.tflite"  # COVID-XNet: no published weights, so a small random model, offline
    assert main(["export", "covid_xnet", "--format", "litert", "-o", str(target)]) == 0
    out = capsys.readouterr().out
    assert str(target) in out and "labels: " in out
    assert read_metadata(target)["name"] == "covid_xnet"
    assert main(["export", "covid_xnet", "--format", "litert", "-o", str(target)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", "covid_xnet", "-f", "keras", "-o", str(tmp_path / "x.keras"), "--allow-tf-ops"]) == 1
    assert "--allow-tf-ops applies to --format litert only" in capsys.readouterr().err


def test_top_level_name():
    assert cxrzoo.export is export
