"""The thesis' classifiers, its post-processing, detection and per-lung quantification (on human masks and on
synthetic masks with holes and specks), and the InfectionDetector end to end."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest

import cxrzoo
from cxrzoo.models.encoders import count_trainable
from cxrzoo.models.infection_detector import (
    COVID_FAMILY_LABELS,
    TAHIR_LABELS,
    InfectionDetector,
    build_cxr_classifier,
    build_infection_detector_models,
    build_squeezenet,
    detect_infection,
    fill_holes,
    postprocess_infection_mask,
    postprocess_lung_mask,
    quantify_infection,
    remove_small_regions,
    split_lungs,
)

# Reference §1.4: backbone + Linear(·, 3); the thesis' Table 12 in millions
CLASSIFIERS = {
    "resnet18": (11_178_051, 11.18),
    "resnet50": (23_514_179, 23.51),
    "densenet121": (6_956_931, 6.96),
    "densenet161": (26_478_627, 26.48),
    "inceptionv4": (41_147_427, 41.15),
}
CAM_MAP = {
    "resnet18": (8, 8, 512),
    "resnet50": (8, 8, 2048),
    "densenet121": (8, 8, 1024),
    "densenet161": (8, 8, 2208),
    "inceptionv4": (6, 6, 1536),
}  # Cadene's unpadded InceptionV4 at 256


@pytest.mark.parametrize("backbone", list(CLASSIFIERS))
def test_classifier_parameter_counts_equal_the_thesis(backbone):
    model = build_cxr_classifier(backbone=backbone, input_shape=(256, 256, 3))
    count, table_12 = CLASSIFIERS[backbone]
    assert count_trainable(model) == count
    assert round(count / 1e6, 2) == table_12  # only 3 outputs round to all five published values
    assert model.output_shape == (None, 3) and model.name == f"cxr_classifier_{backbone}"
    cam_layer = cxrzoo.model_info(model.name).cam_layer
    assert tuple(model.get_layer(cam_layer).output.shape[1:]) == CAM_MAP[backbone]
    assert model.get_layer("predictions").activation.__name__ == "linear"  # logits stay reachable


@pytest.mark.parametrize("version, count", [("1_0", 736_963), ("1_1", 724_035)])
def test_squeezenet_matches_torchvision(version, count):
    # torchvision: 1,248,424 (1.0) and 1,235,496 (1.1) parameters with 1,000 classes; the head is 512·k + k
    model = build_squeezenet(version=version, input_shape=(224, 224, 3))
    assert count_trainable(model) == count == {"1_0": 1_248_424, "1_1": 1_235_496}[version] - 513 * 1000 + 513 * 3
    assert model.get_layer("fire9_concat").output.shape[1:] == (13, 13, 512)  # ceil-mode pools, as torchvision
    pools = sorted(layer.name for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D))
    assert pools == (["pool1", "pool4", "pool8"] if version == "1_0" else ["pool1", "pool3", "pool5"])
    probs = np.asarray(model(np.random.default_rng(0).random((2, 224, 224, 3), dtype=np.float32)))
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    assert len(COVID_FAMILY_LABELS) == 3


# --------------------------------------------------------------------------------------- synthetic post-processing


def _two_lungs():
    """Image-left block (patient's right lung) and image-right block (patient's left lung), 120 × 160."""
    lung = np.zeros((120, 160), bool)
    lung[20:100, 15:65] = True  # patient's right: 80 × 50 = 4000 px
    lung[20:100, 95:145] = True  # patient's left:  4000 px
    return lung


def test_remove_small_regions_uses_five_percent_of_the_positives():
    mask = np.zeros((100, 100), bool)
    mask[10:60, 10:60] = True  # 2500 px
    mask[70:72, 70:72] = True  # 4 px: a speck
    mask[80:95, 10:19] = True  # 135 px: 5.1% of 2640 → kept (the rule drops regions *smaller* than 5%)
    mask[0, 99] = True  # 1 px
    total = int(mask.sum())
    out = remove_small_regions(mask)
    assert out[10:60, 10:60].all() and out[80:95, 10:19].all()
    assert not out[70:72, 70:72].any() and not out[0, 99]
    assert int(out.sum()) == total - 5
    # 8-connectivity: a diagonal chain is one region (4-connected, each pixel would be 1/30 < 5% and vanish)
    assert remove_small_regions(np.eye(30, dtype=bool)).sum() == 30


def test_fill_holes_fills_enclosed_background_only():
    ring = np.zeros((20, 20), bool)
    ring[5:15, 5:15] = True
    ring[8:12, 8:12] = False  # enclosed hole
    notch = ring.copy()
    notch[5:8, 10] = False  # a channel to the outside: not a hole
    notch[8:12, 8:12] = False
    assert fill_holes(ring)[5:15, 5:15].all()
    assert not fill_holes(notch)[8:12, 8:12].any()


def test_lung_postprocessing_thresholds_strictly_fills_holes_and_drops_specks():
    lung = _two_lungs()
    prob = lung.astype(np.float32) * 0.9
    prob[50:60, 30:40] = 0.2  # a hole (e.g. a dense consolidation the lung model missed)
    prob[5:8, 150:153] = 0.95  # a speck outside the lungs (9 px < 5% of 7909)
    prob[110, :] = 0.5  # exactly 0.5 is not positive
    out = postprocess_lung_mask(prob)
    np.testing.assert_array_equal(out, lung)


def test_infection_is_restricted_to_the_lungs_and_not_hole_filled():
    lung = _two_lungs()
    infection = np.zeros_like(lung, dtype=np.float32)
    infection[30:70, 100:140] = 0.8  # inside the patient's left lung (image right)
    infection[40:50, 110:120] = 0.1  # a hole in the infection: stays a hole
    infection[0:10, 0:10] = 0.99  # outside the lungs: removed by the AND
    out = postprocess_infection_mask(infection, lung)
    assert not out[0:10, 0:10].any() and not out[40:50, 110:120].any()
    assert int(out.sum()) == 40 * 40 - 100


def test_detection_and_per_lung_quantification_on_synthetic_masks():
    lung = _two_lungs()
    infection = np.zeros(lung.shape, np.float32)
    infection[20:60, 95:145] = 1.0  # half of the patient's left lung
    infection[20:30, 15:65] = 1.0  # an eighth of the right lung
    result = detect_infection(lung.astype(np.float32), infection)
    assert result["covid_positive"] is True
    assert result["infected_fraction"] == pytest.approx((2000 + 500) / 8000)
    assert result["infected_fraction_left"] == pytest.approx(0.5)  # patient's left = image right
    assert result["infected_fraction_right"] == pytest.approx(0.125)
    assert result["lung_mask"].dtype == bool and result["infection_mask"].shape == lung.shape
    negative = detect_infection(lung.astype(np.float32), np.zeros(lung.shape, np.float32))
    assert negative["covid_positive"] is False and negative["infected_fraction"] == 0.0


def test_split_lungs_handles_merged_single_and_missing_lungs():
    lung = _two_lungs()
    left, right = split_lungs(lung)
    assert left[20:100, 95:145].all() and not left[:, :80].any() and (left | right).sum() == lung.sum()
    # lungs touching behind the heart: one component, cut at its narrowest column
    merged = lung.copy()
    merged[55:60, 65:95] = True
    left, right = split_lungs(merged)
    assert not (left & right).any() and (left | right).sum() == merged.sum()
    assert left[20:100, 95:145].all() and right[20:100, 15:65].all()
    # a single lung on the image's left is the patient's right lung; the other is missing → NaN
    only_right = lung.copy()
    only_right[:, 80:] = False
    left, right = split_lungs(only_right)
    assert not left.any() and right.sum() == 4000
    q = quantify_infection(only_right, only_right)
    assert q["infected_fraction_right"] == 1.0 and np.isnan(q["infected_fraction_left"])
    # extra small components are assigned by side; nothing at all → all NaN, negative
    with_blob = lung.copy()
    with_blob[105:110, 120:130] = True
    assert split_lungs(with_blob)[0][105:110, 120:130].all()
    empty = quantify_infection(np.zeros((10, 10), bool), np.zeros((10, 10), bool))
    assert empty["covid_positive"] is False and np.isnan(empty["infected_fraction"])


def test_bad_masks_are_named():
    with pytest.raises(ValueError, match="2-D"):
        postprocess_lung_mask(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="NaN"):
        postprocess_lung_mask(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match="differ in size"):
        postprocess_infection_mask(np.zeros((8, 8)), np.zeros((8, 9), bool))
    with pytest.raises(ValueError, match="min_fraction"):
        remove_small_regions(np.zeros((8, 8), bool), 1.5)


# ------------------------------------------------------------------------------------------- human annotations


def _png(path):
    from PIL import Image

    return np.asarray(Image.open(path))


def test_human_masks_reproduce_the_published_infected_fractions(shared):
    folder = shared("data", "covid_infection", "train")
    rows = list(csv.DictReader(open(folder / "index.csv")))
    assert len(rows) == 70
    worst = 0.0
    for row in rows:
        name = f"{row['id']}.png"
        left, right, infection = (_png(folder / sub / name) > 127 for sub in ("lung_left", "lung_right", "infection"))
        lung = left | right
        result = detect_infection(lung.astype(np.float32), infection.astype(np.float32))
        expected = float(row["infected_fraction_of_lungs"])
        worst = max(worst, abs(result["infected_fraction"] - expected))
        assert result["infected_fraction"] == pytest.approx(expected, abs=1e-3), row["id"]
        assert result["covid_positive"] == (expected > 0), row["id"]
        # the annotators' "lung_left" is the patient's left, on the image's right: the component split agrees
        split_left, split_right = split_lungs(result["lung_mask"])
        assert (split_left & left).sum() / max(split_left.sum(), 1) > 0.99, row["id"]
        assert result["infected_fraction_left"] == pytest.approx((infection & left).sum() / left.sum(), abs=1e-3)
        assert result["infected_fraction_right"] == pytest.approx((infection & right).sum() / right.sum(), abs=1e-3)
    print(f"largest |infected fraction - index| over 70 annotated CXRs: {worst:.5f}")


def test_covid_qu_ex_masks_detect_exactly_the_covid_cases(shared):
    # The thesis' own dataset layout: COVID-19 cases carry QaTa-COV19 infection masks, the others empty ones, so
    # with perfect segmenters the "any infected lung pixel" rule separates them exactly.
    from cxrzoo.data import read_covid_qu_ex

    samples = read_covid_qu_ex(shared("data", "covid_qu_ex_sample"))
    assert len(samples) == 12 and samples.class_names[0] == "COVID-19"
    for (lung_path, infection_path), label in zip(samples.masks, samples.labels):
        lung, infection = _png(lung_path) > 127, _png(infection_path) > 127
        result = detect_infection(lung.astype(np.float32), infection.astype(np.float32))
        assert result["covid_positive"] == (label == 0), lung_path
        assert (label == 0) == (result["infected_fraction"] > 0)
        assert np.isfinite(result["infected_fraction_left"]) and np.isfinite(result["infected_fraction_right"])


# -------------------------------------------------------------------------------------------------- the detector


def _channel_picker(channel: int, size: int, name: str):
    """A 'segmenter' whose sigmoid output is > 0.5 exactly where the chosen input channel is 1."""
    inputs = keras.Input((size, size, 3))
    conv = keras.layers.Conv2D(1, 1, activation="sigmoid", name=f"{name}_conv")
    model = keras.Model(inputs, conv(inputs), name=name)
    kernel = np.zeros((1, 1, 3, 1), np.float32)
    kernel[0, 0, channel, 0] = 40.0
    conv.set_weights([kernel, np.array([-20.0], np.float32)])
    return model


def _encoded(lung: np.ndarray, infection: np.ndarray) -> np.ndarray:
    """A gray 'CXR' carrying both masks: 100 = lung, 200 = infected lung."""
    return (lung * 100 + (infection & lung) * 100).astype(np.uint8)


def _decode(size):
    from cxrzoo.preprocessing import resize

    def prepare(gray):
        gray = resize(gray, (size, size), "nearest")
        return np.stack([gray >= 100, gray >= 200, np.zeros_like(gray, bool)], -1).astype(np.float32)

    return prepare


def test_detector_reproduces_the_masks_of_perfect_segmenters():
    detector = InfectionDetector(
        _channel_picker(0, 128, "lung"), _channel_picker(1, 128, "infection"), segmentation_recipe=_decode(128)
    )
    assert detector._parallel is not None  # one graph, both segmenters on the same input
    lung = np.zeros((128, 128), bool)
    lung[20:100, 12:56] = True
    lung[20:100, 72:116] = True
    infection = np.zeros_like(lung)
    infection[20:60, 80:128] = True
    speckled = lung.copy()
    speckled[2:4, 2:4] = True  # a lung-model false positive: removed
    result = detector(_encoded(speckled, infection))
    np.testing.assert_array_equal(result["lung_mask"], lung)
    np.testing.assert_array_equal(result["infection_mask"], infection & lung)
    assert result["infected_fraction"] == pytest.approx((infection & lung).sum() / lung.sum())
    assert result["infected_fraction_left"] > 0 and result["infected_fraction_right"] == 0.0
    # a batch gives one dict per image, the same as one at a time; any input size comes back at its own size
    big = np.kron(_encoded(lung, infection), np.ones((2, 3), np.uint8))
    batch = detector([_encoded(lung, infection), big])
    assert isinstance(batch, list) and batch[1]["lung_mask"].shape == (256, 384)
    assert batch[0]["infected_fraction"] == pytest.approx(result["infected_fraction"])
    assert batch[1]["infected_fraction"] == pytest.approx(result["infected_fraction"], abs=0.01)


def test_two_channel_softmax_segmenters_are_read_as_background_foreground():
    inputs = keras.Input((32, 32, 3))
    conv = keras.layers.Conv2D(2, 1, name="two")
    logits = keras.Model(inputs, conv(inputs), name="logits2")
    conv.set_weights(
        [np.array([[[[0, 0], [0, 0], [0, 0]]]], np.float32).reshape(1, 1, 3, 2), np.array([0.0, 1.0], np.float32)]
    )  # foreground logit 1 > background 0 everywhere
    detector = InfectionDetector(logits, logits, segmentation_recipe=lambda g: np.zeros((32, 32, 3), np.float32))
    lung_p, _ = detector.segment(np.zeros((40, 40), np.uint8))
    np.testing.assert_allclose(lung_p, 1 / (1 + np.exp(-1.0)), rtol=1e-5)


def test_detector_with_the_thesis_networks_classifies_and_explains():
    from cxrzoo.explain import ScoreCAM

    models = build_infection_detector_models(
        lung_decoder="unet",
        lung_encoder="resnet18",
        infection_decoder="fpn",
        infection_encoder="resnet18",
        classifier_backbone="resnet18",
        input_shape=(64, 64, 3),
    )
    assert models["lung"].layers[-1].name == "sigmoid" and models["classifier"].output_shape == (None, 3)
    detector = InfectionDetector(
        models["lung"], models["infection"], models["classifier"], score_cam=ScoreCAM(max_n=4, batch_size=4)
    )
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (90, 70), dtype=np.uint8), rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)]
    results = detector(images, explain=True)
    for image, r in zip(images, results):
        assert set(r) >= {
            "covid_positive",
            "infected_fraction",
            "infected_fraction_left",
            "infected_fraction_right",
            "lung_mask",
            "infection_mask",
            "class_probabilities",
            "predicted_class",
            "score_cam",
        }
        assert r["lung_mask"].shape == image.shape[:2] and r["score_cam"].shape == image.shape[:2]
        assert r["score_cam"].min() >= 0.0 and r["score_cam"].max() <= 1.0
        assert sum(r["class_probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert r["predicted_class"] in TAHIR_LABELS
        assert not (r["infection_mask"] & ~r["lung_mask"]).any()
    with pytest.raises(ValueError, match="empty"):
        detector([])
    with pytest.raises(ValueError, match="labels"):
        InfectionDetector(models["lung"], models["infection"], models["classifier"], labels=("a", "b"))
    with pytest.raises(ValueError, match="needs a classifier"):
        InfectionDetector(models["lung"], models["infection"])(images[0], explain=True)


def test_registered_models():
    names = cxrzoo.list_models(paper="infection_detector", task="classification")
    assert names == sorted([f"cxr_classifier_{b}" for b in CLASSIFIERS] + ["squeezenet"])
    assert len(cxrzoo.list_models(paper="infection_detector")) == 21
