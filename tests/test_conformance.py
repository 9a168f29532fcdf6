"""Registry-wide conformance: every architecture and every published model's spec against the model it builds.

For each spec: the model builds, its parameter count equals the spec's, its outputs match the spec's labels, the CAM
layer exists, the recipe produces the input contract, and a ``.keras`` round trip with ``safe_mode=True`` keeps the
outputs (to 1e-6) and the spec. Every spec builds with random initialisation here, so the suite needs nothing but
the code; the published weights are checked against the manifest below and loaded by the golden tests.

Parameter counts do not depend on the input size for the fully convolutional architectures, so those are built
at a small size (the spec's count is the paper configuration's); the others are built at the paper's size.
"""

from __future__ import annotations

import fnmatch

import numpy as np
import pytest

import cxrzoo
from cxrzoo.spec import ARCHITECTURES, SPECS
from cxrzoo.weights import weights_info

keras = pytest.importorskip("keras")

# Architectures whose parameters do not depend on the input size, and a size they build at quickly.
SMALL_SIZE = {
    "unet_*": 64,
    "unet_plus_plus_*": 64,
    "fpn_*": 64,
    "cxr_classifier_*": 96,  # InceptionV4's unpadded stem needs at least 75 pixels
    "squeezenet": 96,
    "resnet50": 64,
    "densenet121": 64,
    "covid_cxnet": 64,
    "covid_cxnet_lung_unet": 64,
    "res_cr_net": 64,
    "bone_suppression": 64,
}
ARCH_SPECS = cxrzoo.list_models()
TAG_SPECS = [name for name in cxrzoo.list_specs() if "." in name]


def _small_size(arch: str) -> int | None:
    return next((size for pattern, size in SMALL_SIZE.items() if fnmatch.fnmatchcase(arch, pattern)), None)


def _build(spec):
    """The spec's model with random weights (at a small size where the parameter count allows)."""
    arch = ARCHITECTURES.get(spec.arch)
    kwargs = {**arch.default_kwargs, **spec.builder_kwargs, "weights": None}
    for key in ("segmenter_weights", "backbone_weights"):
        if key in kwargs:
            kwargs[key] = None
    size = _small_size(spec.arch)
    if size is not None:
        kwargs["input_shape"] = (size, size, spec.input.shape[-1])
    model = arch.builder(**kwargs)
    return cxrzoo.nn.attach_spec(model, cxrzoo.nn.model.adapt_spec(spec, model))


def _example_input(model, spec, rng):
    shape = tuple(64 if d is None else d for d in model.inputs[0].shape[1:])
    lo, hi = spec.input.value_range or (-1.0, 1.0)
    x = rng.uniform(lo, hi, size=(1, *shape)).astype("float32")
    if spec.arch == "cxrnet_classifier":  # [X, M]: the mask input is a [0, 1] probability
        return [x, rng.uniform(0, 1, size=(1, *shape)).astype("float32")]
    return x


def _first_output(out):
    if isinstance(out, dict):
        out = out["probabilities"]
    elif isinstance(out, (list, tuple)):
        out = out[0]
    return keras.ops.convert_to_numpy(out)


def _check_spec_against_model(spec, model):
    assert model.count_params() == spec.parameters, f"{spec.name}: {model.count_params():,} parameters"
    out = model.output[spec.output.key] if isinstance(model.output, dict) else model.outputs[0]
    assert int(out.shape[-1]) == len(spec.output.labels)
    if _small_size(spec.arch) is None:
        assert tuple(model.inputs[0].shape[1:]) == tuple(spec.input.shape)
    if spec.cam_layer is not None:
        names = {layer.name for layer in model.layers}
        names |= {inner.name for layer in model.layers if isinstance(layer, keras.Model) for inner in layer.layers}
        assert spec.cam_layer in names
    if spec.recipe is not None:
        prep = cxrzoo.preprocessing.recipe(weights=spec.name)
        x = prep(np.random.default_rng(1).integers(0, 256, (180, 150), dtype=np.uint8))
        assert x.shape == tuple(spec.input.shape) and x.dtype == np.float32
        if spec.input.value_range is not None:
            lo, hi = spec.input.value_range
            assert lo - 1e-3 <= x.min() and x.max() <= hi + 1e-3


@pytest.mark.parametrize("name", ARCH_SPECS)
def test_every_architecture_conforms_to_its_spec(name, tmp_path):
    spec = cxrzoo.model_spec(name)
    keras.utils.set_random_seed(0)
    model = _build(spec)
    _check_spec_against_model(spec, model)
    x = _example_input(model, spec, np.random.default_rng(2))
    # eager calls: tracing a predict function for each of two copies of ~35 models dominated this test's time
    before = _first_output(model(x, training=False))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True, compile=False)
    assert cxrzoo.model_spec(loaded) == cxrzoo.model_spec(model)
    after = _first_output(loaded(x, training=False))
    np.testing.assert_allclose(after, before, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", TAG_SPECS)
def test_every_published_model_conforms_to_its_spec(name):
    spec = cxrzoo.model_spec(name)
    arch_spec = cxrzoo.model_spec(spec.arch)
    without_weights = {k: v for k, v in spec.builder_kwargs.items() if not k.endswith("weights")}
    if without_weights == {k: v for k, v in arch_spec.builder_kwargs.items() if not k.endswith("weights")}:
        # the same graph as the architecture's (tested above): the spec must agree with it
        assert spec.parameters == arch_spec.parameters and spec.input.shape == arch_spec.input.shape
        assert spec.output.labels == arch_spec.output.labels and spec.cam_layer == arch_spec.cam_layer
        assert spec.recipe == arch_spec.recipe
        if spec.recipe is not None:
            assert cxrzoo.preprocessing.recipe(weights=name).output_shape == tuple(spec.input.shape)
        return
    keras.utils.set_random_seed(0)
    _check_spec_against_model(spec, _build(spec))


def test_every_published_model_matches_the_manifest():
    tags = set()
    for name in cxrzoo.list_specs():
        spec = SPECS.get(name)
        for tag in spec.weights:
            entry = weights_info(tag)  # every weights tag of a spec is in the manifest
            tags.add(tag)
            assert spec.obtainable == entry.hash_verified_by_sha256, name
        if spec.weights == (name,):
            entry = weights_info(name)
            assert entry.arch == spec.arch
            if entry.role == "model":
                assert tuple(entry.labels) == spec.output.labels, name
                shape = entry["input"]["shape"]
                if shape and not isinstance(shape[0], list):
                    assert tuple(shape) == tuple(spec.input.shape) or None in spec.input.shape, name
                    if "value_range" in entry["input"]:
                        assert tuple(entry["input"]["value_range"]) == tuple(spec.input.value_range), name
    assert set(cxrzoo.list_weights()) == tags  # the manifest lists no weights the zoo cannot describe


def test_specs_name_registered_architectures_papers_and_recipes():
    for name in cxrzoo.list_specs():
        spec = SPECS.get(name)
        arch = ARCHITECTURES.get(spec.arch)
        assert arch.paper == spec.paper and arch.task == spec.task, name
        assert spec.paper in cxrzoo.list_papers()
        if spec.training_recipe is not None:
            assert cxrzoo.training.training_recipe(spec.training_recipe).task == spec.task, name
    assert {ARCHITECTURES.get(a).paper for a in cxrzoo.list_models()} == set(cxrzoo.list_papers())


def test_pretrained_lists_exactly_the_loadable_architectures():
    loadable = {SPECS.get(n).arch for n in SPECS.names() if SPECS.get(n).pretrained and SPECS.get(n).obtainable}
    assert set(cxrzoo.list_models(pretrained=True)) == loadable
    assert "cxrnet" in loadable and "covid_cxnet" not in loadable and "covid_cxnet_lung_unet" not in loadable
