"""Exports built once per session (CXR-Net conversions take a minute each on 2 cores) and real inputs per tag."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(os.environ.get("CXRZOO_SHARED", Path(__file__).resolve().parents[2].parent / "shared")).resolve()


def shared_path(*parts: str) -> Path:
    """As tests/conftest.py's: a path under ../shared, or a skip with the reason (usable in session fixtures)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the authors' files in ../shared are not available on this machine)")
    return path


FIXTURE_JPEGS = ("fixtures", "covid_cxnet", "images")
LUNG_IMAGES = ("data", "v7_covid_lungs", "val", "images")


@pytest.fixture(scope="session")
def weights_mirror():
    folder = shared_path("weights")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CXRZOO_WEIGHTS_PATH", str(folder))
        yield folder


@pytest.fixture(scope="session")
def published(weights_mirror):
    """``published(tag)`` → the Keras model with its published weights, built once per session."""
    import cxrzoo

    cache: dict = {}

    def get(tag: str):
        if tag not in cache:
            cache[tag] = cxrzoo.create_model(tag)
        return cache[tag]

    return get


@pytest.fixture(scope="session")
def exported(published, tmp_path_factory):
    """``exported(tag, fmt, **options)`` → the path of that export of the published model, written once."""
    from cxrzoo.exporting import SUFFIXES, export

    folder = tmp_path_factory.mktemp("exports")
    cache: dict = {}

    def get(tag: str, fmt: str, **options):
        key = (tag, fmt, tuple(sorted(options.items())))
        if key not in cache:
            path = folder / f"{tag}_{len(cache)}{SUFFIXES.get(fmt, '')}"
            cache[key] = export(published(tag), fmt, path, **options)
        return cache[key]

    return get


def _lung_images(count: int):
    return sorted(shared_path(*LUNG_IMAGES).glob("*.png"))[:count]


@pytest.fixture(scope="session")
def real_inputs(published):
    """``real_inputs(tag)`` → the model's inputs by name, made from two real images of ../shared."""
    import keras

    import cxrzoo

    cache: dict = {}

    def cxrnet_module2():
        images = _lung_images(2)
        x = cxrzoo.pipeline("cxrnet_classifier.hfhs_ensemble6", model=published("cxrnet_classifier.hfhs_ensemble6"))
        standardized = x.preprocess(images)
        end_to_end = published("cxrnet.hfhs_v7")
        prepared = cxrzoo.pipeline("cxrnet.hfhs_v7", model=end_to_end).preprocess(images)
        mask = np.asarray(end_to_end(prepared, training=False)["mask"], np.float32)
        return {"image": standardized, "lung_mask": mask}

    def make(tag: str):
        arch = tag.partition(".")[0]
        if arch in ("cxrnet", "res_cr_net"):
            return {"image": cxrzoo.pipeline(tag, model=published(tag)).preprocess(_lung_images(2))}
        if arch == "covid_cxnet_base":
            files = sorted(shared_path(*FIXTURE_JPEGS).glob("*.jpg"))[:2]
            return {"image": cxrzoo.pipeline(tag, model=published(tag)).preprocess(files)}
        if arch == "cxrnet_classifier":
            return cxrnet_module2()
        if arch == "cxrnet_member":
            classifier = published("cxrnet_classifier.hfhs_ensemble6")
            features = keras.Model(classifier.inputs, classifier.get_layer("wst_features").output)
            module2 = real_inputs_cache("cxrnet_classifier.hfhs_ensemble6")
            return {"wst_features": np.asarray(features([module2["image"], module2["lung_mask"]]), np.float32)}
        if arch == "bone_suppression":
            from cxrzoo.preprocessing import read_image, resize

            files = sorted(shared_path(*FIXTURE_JPEGS).glob("*.jpg"))[:2]
            # the model's contract: inverted polarity, / 255, sides divisible by 8
            images = [255 - resize(read_image(f), (256, 256)) for f in files]
            return {"image": (np.stack(images)[..., None] / 255.0).astype(np.float32)}
        raise KeyError(tag)

    def real_inputs_cache(tag: str):
        if tag not in cache:
            inputs = make(tag)
            names = [t.name for t in published(tag).inputs]
            if len(names) == 1:  # keyed by the model's own input name (e.g. 'input_layer')
                inputs = {names[0]: next(iter(inputs.values()))}
            cache[tag] = inputs
        return cache[tag]

    return real_inputs_cache
