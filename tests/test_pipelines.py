"""``cxrzoo.pipeline`` and ``cxrzoo.segment_lungs`` on real images: the published numbers through the one-call path."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

import cxrzoo
from cxrzoo.metrics import dice_score

pytestmark = pytest.mark.shared


def test_pipeline_scores_like_the_cli(shared_weights, shared):
    image = shared("fixtures", "covid_cxnet", "images", "038.jpg")
    pipe = cxrzoo.pipeline("cxrnet")
    assert pipe.spec.name == "cxrnet.hfhs_v7" and pipe.recipe.output_shape == (300, 340, 1)
    result = pipe.predict([str(image)])[0]
    assert result["probabilities"]["covid"] == pytest.approx(0.0042, abs=5e-5)
    assert result["label"] == "non_covid" and result["positive"] is False
    again = pipe.predict(cxrzoo.preprocessing.read_image(image, native_depth=True))[0]
    assert again["probabilities"]["covid"] == pytest.approx(result["probabilities"]["covid"], abs=1e-6)


def _v7_val(shared):
    folder = shared("data", "v7_covid_lungs", "val")
    images = sorted((folder / "images").glob("*.png"))
    masks = [folder / "lungs" / p.name for p in images]
    return images, masks


def test_segment_lungs_gives_masks_at_the_original_size_as_the_manual_route(shared_weights, shared):
    images, masks = _v7_val(shared)
    assert len(images) == 60
    truth = [cxrzoo.preprocessing.read_image(m) > 127 for m in masks]
    out = cxrzoo.segment_lungs([str(p) for p in images])
    assert all(o["mask"].shape == t.shape for o, t in zip(out, truth))
    ours = np.mean([dice_score(t, o["mask"], per_image=False) for t, o in zip(truth, out)])

    # The manual route: prepare → Module 1 at 300×340 → lung probability resized back → 0.5.
    model = cxrzoo.create_model("res_cr_net.v7_lungs")
    prep = cxrzoo.preprocessing.recipe(weights="res_cr_net.v7_lungs")
    manual = []
    for path, t in zip(images, truth):
        p = model.predict(prep(str(path))[None], verbose=0)[0, ..., 0]
        back = cv2.resize(p, (t.shape[1], t.shape[0]), interpolation=cv2.INTER_LINEAR)
        manual.append(dice_score(t, back >= 0.5, per_image=False))
    assert ours == pytest.approx(np.mean(manual), abs=0.002)
    assert ours > 0.85

    # Native size, the trap the spec's size guard warns about: the model run at the size a hospital's file has
    # (these copies are downsized to <= 512 px; upsampled back to the original size, long side capped at 1400).
    native = cxrzoo.create_model("res_cr_net.v7_lungs", input_shape=(None, None, 1))
    native.check_inputs = False
    with open(images[0].parents[1] / "index.csv") as handle:
        sizes = {row["id"]: row["original_size"] for row in csv.DictReader(handle) if row["original_size"]}
    native_dice = []
    for path, t in [(p, t) for p, t in zip(images, truth) if p.stem in sizes][:6]:
        width, height = (int(v) for v in sizes[path.stem].split("x"))
        scale = min(1.0, 1400 / max(width, height))
        size = (round(height * scale), round(width * scale))
        gray = cxrzoo.preprocessing.resize(cxrzoo.preprocessing.read_image(path), size, "bilinear")
        x = cxrzoo.preprocessing.equalize_hist(gray).astype("float32")[None, ..., None] / 255.0
        p = native.predict(x, verbose=0)[0, ..., 0]
        back = cv2.resize(p, (t.shape[1], t.shape[0]), interpolation=cv2.INTER_LINEAR)
        native_dice.append(dice_score(t, back >= 0.5, per_image=False))
    print(f"lung Dice: segment_lungs {ours:.4f}, manual {np.mean(manual):.4f}, native size {np.mean(native_dice):.4f}")
    assert ours > np.mean(native_dice) + 0.2
    left, right = out[0]["areas"]["left"], out[0]["areas"]["right"]
    assert left["pixels"] > 0 and right["pixels"] > 0
    assert out[0]["areas"]["total"]["pixels"] == left["pixels"] + right["pixels"] == int(out[0]["mask"].sum())


def test_pipelines_refuse_what_they_cannot_prepare(shared_weights):
    with pytest.raises(ValueError, match="no image pipeline"):
        cxrzoo.pipeline("cxrnet_member")
    pipe = cxrzoo.pipeline("res_cr_net.v7_lungs")
    with pytest.raises(cxrzoo.nn.InputContractError, match="NaN"):
        pipe.predict(np.full((40, 50), np.nan, "float32"))
