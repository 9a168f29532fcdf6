"""Registry-wide conformance: every architecture and every published model's spec against the model it builds.

For each spec: the model builds, its parameter count equals the spec's, its outputs match the spec's labels, the CAM
layer exists, the recipe produces the input contract, and a ``.keras`` round trip with ``safe_mode=True`` keeps the
outputs (to 1e-6) and the spec. Published weights are checked against the manifest (and loaded where ../shared has
them, in test_specs.py); here every spec builds with random initialisation so the suite needs nothing but the code.
"""

from __future__ import annotations

import numpy as np
import pytest

import cxrzoo
from cxrzoo.spec import ARCHITECTURES, SPECS
from cxrzoo.weights import weights_info

keras = pytest.importorskip("keras")

ARCHS = cxrzoo.list_models()


def _build(spec):
    arch = ARCHITECTURES.get(spec.arch)
    kwargs = {**arch.default_kwargs, **spec.builder_kwargs, "weights": None}
    if "segmenter_weights" in kwargs:
        kwargs["segmenter_weights"] = None
    if "backbone_weights" in kwargs:
        kwargs["backbone_weights"] = None
    return cxrzoo.nn.attach_spec(arch.builder(**kwargs), spec)


def _example_input(spec, rng):
    shape = tuple(64 if d is None else d for d in spec.input.shape)
    lo, hi = spec.input.value_range or (-1.0, 1.0)
    x = rng.uniform(lo, hi, size=(1, *shape)).astype("float32")
    if spec.arch == "cxrnet_classifier":  # [X, M]: the mask input is a [0, 1] probability
        return [x, rng.uniform(0, 1, size=(1, *shape)).astype("float32")]
    return x


def _first_output(out):
    if isinstance(out, dict):
        return np.asarray(out["probabilities"])
    if isinstance(out, (list, tuple)):
        return np.asarray(out[0])
    return np.asarray(out)


@pytest.mark.parametrize("name", ARCHS)
def test_every_architecture_conforms_to_its_spec(name, tmp_path):
    spec = cxrzoo.model_spec(name)
    keras.utils.set_random_seed(0)
    model = _build(spec)
    assert model.count_params() == spec.parameters, f"{name}: {model.count_params():,} parameters"
    out = model.output["probabilities"] if isinstance(model.output, dict) else model.outputs[0]
    assert int(out.shape[-1]) == len(spec.output.labels)
    assert tuple(model.inputs[0].shape[1:]) == tuple(spec.input.shape)
    if spec.cam_layer is not None:
        assert spec.cam_layer in {layer.name for layer in model.layers} | {
            inner.name for layer in model.layers if isinstance(layer, keras.Model) for inner in layer.layers
        }
    if spec.recipe is not None:
        prep = cxrzoo.preprocessing.recipe(weights=spec.name)
        x = prep(np.random.default_rng(1).integers(0, 256, (180, 150), dtype=np.uint8))
        assert x.shape == tuple(spec.input.shape) and x.dtype == np.float32
        if spec.input.value_range is not None:
            lo, hi = spec.input.value_range
            assert lo - 1e-3 <= x.min() and x.max() <= hi + 1e-3
    x = _example_input(spec, np.random.default_rng(2))
    before = _first_output(model.predict(x, verbose=0))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True, compile=False)
    assert cxrzoo.model_spec(loaded) == spec
    after = _first_output(loaded.predict(x, verbose=0))
    np.testing.assert_allclose(after, before, atol=1e-6, rtol=0)


def test_every_published_model_matches_the_manifest():
    published = [name for name in SPECS.names() if SPECS.get(name).pretrained]
    assert published, "no published models registered"
    tags = set()
    for name in published:
        spec = SPECS.get(name)
        for tag in spec.weights:
            entry = weights_info(tag)  # every weights tag of a spec is in the manifest
            tags.add(tag)
            assert spec.obtainable == entry.hash_verified_by_sha256, name
        if name in tags or (len(spec.weights) == 1 and spec.weights[0] == name):
            entry = weights_info(name)
            assert entry.arch == spec.arch
            if entry.role == "model":
                assert tuple(entry.labels) == spec.output.labels, name
                shape = entry["input"]["shape"]
                if shape and not isinstance(shape[0], list):
                    assert tuple(shape) == tuple(spec.input.shape) or None in spec.input.shape, name
                    if "value_range" in entry["input"]:
                        assert tuple(entry["input"]["value_range"]) == tuple(spec.input.value_range), name
    # every manifest tag has a spec (the manifest never lists weights the zoo cannot describe)
    assert set(cxrzoo.list_weights()) <= tags


def test_published_specs_name_their_architecture_and_paper():
    for name in SPECS.names():
        spec = SPECS.get(name)
        arch = ARCHITECTURES.get(spec.arch)
        assert arch.paper == spec.paper and arch.task == spec.task, name
        assert spec.paper in cxrzoo.list_papers()
        if spec.training_recipe is not None:
            assert cxrzoo.training.training_recipe(spec.training_recipe).task in ("segmentation", "classification")


def test_pretrained_lists_exactly_the_loadable_architectures():
    loadable = {SPECS.get(n).arch for n in SPECS.names() if SPECS.get(n).pretrained and SPECS.get(n).obtainable}
    assert set(cxrzoo.list_models(pretrained=True)) == loadable
    assert "cxrnet" in loadable and "covid_cxnet" not in loadable and "covid_cxnet_lung_unet" not in loadable
