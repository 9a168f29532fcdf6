"""Models bound to their weights' preprocessing and labels: the spec-driven front door and its guards.

Each ``test_trap_*`` is one of the eight silent-wrong-result traps of the "one spec per published model" issue: each
failed on the code before it (commit 04f7bc4) and passes now.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import cxrzoo
from cxrzoo.nn import InputContractError, InputContractWarning

keras = pytest.importorskip("keras")


# ------------------------------------------------------------------------------------------------- the traps


def test_trap1_create_model_loads_the_published_weights_by_default(shared_weights, shared):
    image = shared("fixtures", "covid_cxnet", "images", "038.jpg")
    model = cxrzoo.create_model("cxrnet")
    assert cxrzoo.model_spec(model).name == "cxrnet.hfhs_v7"
    x = cxrzoo.preprocessing.recipe(weights="cxrnet.hfhs_v7")(str(image))[None]
    p = model.predict(x, verbose=0)["probabilities"][0]
    assert p[0] == pytest.approx(0.0042, abs=5e-5)
    assert cxrzoo.model_info("cxrnet").weights == ["cxrnet.hfhs_v7"]
    assert cxrzoo.model_info("cxrnet").default_weights == "cxrnet.hfhs_v7"


def test_trap1_random_initialisation_is_asked_for_by_name():
    model = cxrzoo.create_model("cxrnet", weights=None)
    spec = cxrzoo.model_spec(model)
    assert spec.name == "cxrnet" and not spec.pretrained
    pretrained = set(cxrzoo.list_models(pretrained=True))
    assert "cxrnet" in pretrained
    assert not {"covid_cxnet", "covid_cxnet_lung_unet"} & pretrained  # only unobtainable files were published


def test_trap2_inputs_scaled_by_1_over_255_are_refused(shared_weights):
    model = cxrzoo.create_model("cxrnet")
    prepared = np.random.default_rng(0).integers(0, 256, (1, 300, 340, 1)).astype("float32")
    with pytest.raises(InputContractError, match=r"scaled to \[0, 1\].*recipe\(weights='cxrnet.hfhs_v7'\)"):
        model.predict(prepared / 255.0, verbose=0)
    with pytest.raises(InputContractError, match="outside the range"):
        model.predict(prepared * 4.0, verbose=0)
    model.check_inputs = False  # an explicit opt-out runs what it is given
    model.predict(prepared / 255.0, verbose=0)


def test_trap2_the_builders_guard_too(shared_weights):
    # ``from cxrzoo import build_cxrnet`` is the advertised path: its models carry their spec as well
    model = cxrzoo.build_cxrnet()
    assert cxrzoo.model_spec(model).name == "cxrnet.hfhs_v7"
    with pytest.raises(InputContractError, match="scaled to"):
        model.predict(np.full((1, 300, 340, 1), 0.5, "float32"), verbose=0)
    seg = cxrzoo.build_res_cr_net(input_shape=(None, None, 1), filters=4, conv_blocks=1)
    assert cxrzoo.model_spec(seg).input.shape == (None, None, 1)
    assert cxrzoo.model_spec(seg).parameters == seg.count_params()
    member = cxrzoo.build_cxrnet_member(classes=3)
    assert cxrzoo.model_spec(member).labels == ("class_0", "class_1", "class_2")


def test_trap3_another_size_than_the_weights_were_trained_at_warns(shared_weights):
    model = cxrzoo.create_model("res_cr_net.v7_lungs", input_shape=(None, None, 1))
    x = np.random.default_rng(0).random((1, 128, 160, 1)).astype("float32")
    with pytest.warns(InputContractWarning, match=r"trained on 300×340.*segment_lungs"):
        model.predict(x, verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.predict(x, verbose=0)
    assert caught[0].filename == __file__  # it points at the caller's line, not at cxrzoo
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputContractWarning)
        model.predict(np.zeros((1, 300, 340, 1), "float32"), verbose=0)


def test_trap4_the_detector_reads_the_lung_channel_from_the_spec():
    lung = cxrzoo.create_model("res_cr_net", weights=None, input_shape=(300, 340, 1), filters=4, conv_blocks=1)
    infection = cxrzoo.create_model("unet_resnet18", weights=None, input_shape=(64, 64, 3))
    detector = cxrzoo.InfectionDetector(lung, infection)
    assert detector._channels == (0, 0)  # Res-CR-Net: [lungs, non_lungs]; the thesis' U-Net: one logit
    result = detector(np.random.default_rng(0).integers(0, 256, (90, 80), dtype=np.uint8))
    assert result["lung_mask"].shape == (90, 80)
    # A model whose channels are not lungs is refused, naming what it outputs.
    not_lungs = cxrzoo.create_model("bone_suppression", weights=None)
    with pytest.raises(ValueError, match="not a segmenter"):
        cxrzoo.InfectionDetector(not_lungs, infection)
    plain = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Conv2D(2, 1, activation="softmax")])
    assert cxrzoo.InfectionDetector(plain, infection)._channels[0] == 1  # no spec: the thesis' [bg, fg]


def test_trap5_datasets_keep_input_order_unless_training_asks():
    images = [np.full((20, 24), v, np.uint8) for v in range(0, 250, 25)]
    ds = cxrzoo.data.make_dataset(images, labels=np.arange(10), recipe="cxrnet", batch_size=4)
    labels = np.concatenate([y.numpy() for _, y in ds])
    np.testing.assert_array_equal(labels, np.arange(10))
    shuffled = cxrzoo.data.make_dataset(
        images, labels=np.arange(10), recipe="cxrnet", batch_size=4, shuffle=True, seed=3
    )
    assert sorted(np.concatenate([y.numpy() for _, y in shuffled])) == list(range(10))


def test_trap6_the_recipe_comes_from_the_weights():
    assert cxrzoo.preprocessing.recipe(weights="covid_cxnet_base.v_free").output_shape == (300, 300, 3)
    assert cxrzoo.preprocessing.recipe(weights="covid_cxnet_base.v1_0").output_shape == (400, 400, 1)
    with pytest.raises(TypeError, match="covid_cxnet_base.v1_0.*covid_cxnet_base.v_free"):
        cxrzoo.preprocessing.recipe("covid_cxnet_base")
    with pytest.raises(ValueError, match="not the one"):
        cxrzoo.preprocessing.recipe("covid_cxnet", weights="covid_cxnet_base.v_free")


def test_trap7_every_model_carries_its_label_names():
    assert cxrzoo.model_spec("cxrnet").labels == ("covid", "non_covid")
    assert cxrzoo.model_spec("covid_xnet").labels == ("normal", "covid")
    assert cxrzoo.model_spec("res_cr_net.v7_lungs").labels == ("lungs", "non_lungs")
    three = cxrzoo.create_model("covid_cxnet_base", weights=None)
    assert cxrzoo.model_spec(three).output.positive == "covid"
    multi = cxrzoo.create_model("covid_xnet", classes=3)
    assert cxrzoo.model_spec(multi).labels == ("class_0", "class_1", "class_2")  # never the 2-class names


def test_trap8_mistakes_get_errors_that_name_the_fix():
    model = cxrzoo.create_model("cxrnet", weights=None)
    raw = np.random.default_rng(0).integers(0, 256, (420, 512)).astype("float32")
    with pytest.raises(InputContractError, match=r"x\[None, \.\.\., None\]"):
        model.predict(raw, verbose=0)
    with pytest.raises(InputContractError, match="without the channel axis"):
        model.predict(np.zeros((1, 300, 340), "float32"), verbose=0)
    with pytest.raises(InputContractError, match="must be 300×340"):
        model.predict(np.zeros((1, 420, 512, 1), "float32"), verbose=0)
    with pytest.raises(TypeError, match="weights='default'"):
        cxrzoo.create_model("cxrnet", pretrained=True)
    with pytest.raises(ValueError, match="unknown paper '000'.*cxrnet"):
        cxrzoo.list_models(paper="000")
    assert (
        cxrzoo.list_models(paper="CXR-Net")
        == cxrzoo.list_models(paper="cxrnet")
        == ["cxrnet", "cxrnet_classifier", "cxrnet_member", "res_cr_net"]
    )
    assert cxrzoo.list_weights("res_cr_net.*") == ["res_cr_net.jms_lungs", "res_cr_net.v7_lungs"]


# ------------------------------------------------------------------------------------------- specs, front door


def test_a_spec_survives_the_keras_round_trip(tmp_path):
    model = cxrzoo.create_model("res_cr_net", weights=None, input_shape=(32, 40, 1), filters=4, conv_blocks=1)
    spec = cxrzoo.model_spec(model)
    assert spec.input.shape == (32, 40, 1) and spec.builder_kwargs["filters"] == 4
    model.save(tmp_path / "m.keras")
    loaded = cxrzoo.load_model(tmp_path / "m.keras")
    assert cxrzoo.model_spec(loaded) == spec
    with pytest.raises(InputContractError, match="channel"):  # the guard comes back with the spec
        loaded.predict(np.zeros((1, 32, 40, 3), "float32"), verbose=0)


def test_specs_round_trip_through_dicts():
    for name in cxrzoo.list_specs():
        spec = cxrzoo.model_spec(name)
        assert cxrzoo.ModelSpec.from_dict(spec.to_dict()) == spec


def test_create_model_refuses_weights_of_another_architecture_and_unobtainable_ones():
    with pytest.raises(ValueError, match="belong to 'res_cr_net'"):
        cxrzoo.create_model("cxrnet_member", weights="res_cr_net.v7_lungs")
    with pytest.raises(ValueError, match="cannot be obtained"):
        cxrzoo.create_model("covid_cxnet.chexnet_init")
    with pytest.raises(ValueError, match="unknown model spec"):
        cxrzoo.create_model("res_cr_net.v8")
    with pytest.raises(ValueError, match="carries no spec"):
        cxrzoo.model_spec(keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]))


def test_fit_takes_the_training_recipe_from_the_spec():
    from cxrzoo.training.fit import _recipe_of

    assert _recipe_of(cxrzoo.create_model("covid_xnet", weights=None), "classification") == "covid_xnet"
    assert (
        _recipe_of(cxrzoo.build_res_cr_net(input_shape=(32, 32, 1), filters=2, conv_blocks=1), "segmentation")
        == "cxrnet_module1"
    )
    with pytest.raises(ValueError, match="pass recipe="):
        _recipe_of(keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)], name="mine"), "classification")


def test_pipelines_return_labelled_results_at_each_images_size():
    keras.utils.set_random_seed(0)
    seg = cxrzoo.pipeline("unet_resnet18", input_shape=(64, 64, 3))  # no published weights: random init
    assert seg.recipe.output_shape == (64, 64, 3)
    images = [np.random.default_rng(1).integers(0, 256, (90, 70), dtype=np.uint8), np.full((50, 60, 3), 9, "uint16")]
    a, b = seg.predict(images)
    assert a["channels"] == ("foreground",) and a["probabilities"].shape == (90, 70, 1)
    assert b["masks"]["foreground"].shape == (50, 60)
    assert a["probabilities"].min() >= 0.0 and a["probabilities"].max() <= 1.0  # logits turned into probabilities
    cls = cxrzoo.pipeline("covid_xnet", model=cxrzoo.create_model("covid_xnet", weights=None, input_shape=(32, 32, 1)))
    (result,) = cls.predict(images[:1])
    assert set(result["probabilities"]) == {"normal", "covid"} and result["label"] in ("normal", "covid")
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
