"""The SavedModel's ``serving_default`` on encoded image files: the paper's preparation in the graph gives the
same results as cxrzoo's NumPy path, also in a plain-TensorFlow process where cxrzoo cannot be imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap

import numpy as np
import pytest
import tensorflow as tf

pytestmark = pytest.mark.shared

# Runs in a Python without cxrzoo: -I (no PYTHONPATH, no user site, not the working folder) and -S (no site, so
# no .pth file of the editable install), with only the environment's site-packages on sys.path.
PLAIN_TF = textwrap.dedent(
    """
    import json, sys
    sys.path.append(sys.argv[1])
    try:
        import cxrzoo
    except ImportError:
        pass
    else:
        raise SystemExit("cxrzoo is importable: the test would not show that the SavedModel stands alone")
    import tensorflow as tf
    model = tf.saved_model.load(sys.argv[2])
    images = tf.constant([open(path, "rb").read() for path in sys.argv[3:]])
    out = model.signatures["serving_default"](images=images)
    meta = json.loads(model.signatures["metadata"]()["cxrzoo_spec"].numpy().decode())
    print(json.dumps({"outputs": {k: v.numpy().tolist() for k, v in out.items()}, "labels": meta["labels"]}))
    """
)


def _fixture_jpegs(shared):
    return sorted(shared("fixtures", "covid_cxnet", "images").glob("*.jpg"))


def test_cxrnet_saved_model_in_plain_tensorflow(shared, exported, published, tmp_path):
    import cxrzoo

    path = exported("cxrnet.hfhs_v7", "saved_model")
    files = _fixture_jpegs(shared)
    assert len(files) == 4
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    site = sysconfig.get_paths()["purelib"]
    run = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PLAIN_TF, site, str(path), *map(str, files)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    served = json.loads(run.stdout.strip().splitlines()[-1])
    assert served["labels"] == ["covid", "non_covid"]

    expected = cxrzoo.pipeline("cxrnet", model=published("cxrnet.hfhs_v7")).predict(files)
    for i, result in enumerate(expected):
        for label, p in result["probabilities"].items():
            assert abs(served["outputs"][label][i] - p) <= 1e-5, (files[i].name, label, served["outputs"][label][i], p)
        np.testing.assert_allclose(
            served["outputs"]["probabilities"][i], list(result["probabilities"].values()), atol=1e-5
        )
    assert round(expected[0]["probabilities"]["covid"], 4) == 0.0042  # 038.jpg, as documented


def test_cxrnet_serving_default_signature(exported):
    loaded = tf.saved_model.load(str(exported("cxrnet.hfhs_v7", "saved_model")))
    assert set(loaded.signatures) == {"serving_default", "prepared", "metadata"}
    serving = loaded.signatures["serving_default"]
    assert serving.structured_input_signature[1]["images"].dtype == tf.string
    assert set(serving.structured_outputs) == {"covid", "non_covid", "probabilities"}


def test_lung_segmenter_serving_on_png_bytes(shared, exported, published):
    """Res-CR-Net's serving_default: PNG bytes in, the lung map at 300×340 equal to the Keras model on the
    recipe's input."""
    import cxrzoo

    files = sorted(shared("data", "v7_covid_lungs", "val", "images").glob("*.png"))[:2]
    loaded = tf.saved_model.load(str(exported("res_cr_net.v7_lungs", "saved_model")))
    out = loaded.signatures["serving_default"](images=tf.constant([f.read_bytes() for f in files]))
    model = published("res_cr_net.v7_lungs")
    expected = np.asarray(model(cxrzoo.pipeline("res_cr_net.v7_lungs", model=model).preprocess(files)))
    assert np.max(np.abs(out["lungs"].numpy() - expected[..., 0])) <= 1e-5
    assert np.max(np.abs(out["probabilities"].numpy() - expected)) <= 1e-5
