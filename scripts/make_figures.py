"""Regenerates every picture in docs/figures from real chest X-rays in ../shared and the published weights.

Only images whose licence allows redistribution are drawn: the CC BY 3.0 images of the ieee8023 COVID-19 image
collection in ``../shared/data/v7_covid_lungs/val`` (licence per image in its ``index.csv``; docs/data.md). Each
figure names its source images and their licence in the figure itself, and its page's caption repeats it.

    python scripts/make_figures.py                    # all figures (about 5 minutes on 2 CPU cores)
    python scripts/make_figures.py --only masks cam   # some of them
    python scripts/make_figures.py --reuse-external DIR   # the evaluation figures from an existing
                                                          # benchmarks/external_validation.py output folder

Figures (docs/figures/…, each on the page named):

==============================  ===================================  ===========================================
file                            what                                 page
==============================  ===================================  ===========================================
cxrnet_heatmaps.png             CXR-Net's four-panel heat-map figure models/cxrnet.md
res_cr_net_masks.png            Res-CR-Net lung masks, Dice          models/res_cr_net.md
bone_suppression.png            before / after bone suppression      models/bone_suppression.md
covid_cxnet_gradcam.png         Grad-CAM of both COVID-CXNet bases   models/covid_cxnet.md, explain.md
external_roc.png                ROC curves on public data            models/cxrnet.md, models/covid_cxnet.md
external_reliability.png        reliability diagrams, same data      evaluate.md
external_lung_masks.png         per-image lung Dice and HD95         models/res_cr_net.md
finetune_curves.png             training curves of the notebook      finetuning.md
==============================  ===================================  ===========================================

The training curves are the figure examples/finetune_cxrnet.ipynb draws (the notebook runs in CI and is committed
with its outputs); this script copies it out of the notebook rather than training again.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CXRZOO_SHARED", REPO.parent / "shared"))
FIGURES = REPO / "docs" / "figures"
VAL = SHARED / "data" / "v7_covid_lungs" / "val"
LICENCE = "CC BY 3.0"
SOURCE = "ieee8023 covid-chestxray-dataset"
DPI = 80


def licensed_images(count: int, start: int = 0) -> list[dict]:
    """``count`` rows of the V7 validation index whose image is CC BY 3.0, in index order from ``start``."""
    with open(VAL / "index.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["license"].strip() == LICENCE]
    if len(rows) < start + count:
        raise SystemExit(f"{VAL}: only {len(rows)} {LICENCE} images, {start + count} needed")
    return rows[start : start + count]


def _credit(rows: list[dict]) -> str:
    names = ", ".join(r["source_file"] for r in rows)
    return f"images: {SOURCE} ({names}), {LICENCE}"


def _save(fig, name: str) -> Path:
    from cxrzoo.fileio import atomic_write

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    target = FIGURES / name
    atomic_write(target, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))
    print(f"{target.relative_to(REPO)}: {target.stat().st_size / 1024:.0f} KB")
    return target


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _gray(path: Path) -> np.ndarray:
    from cxrzoo.preprocessing import read_image

    return read_image(path)


def cxrnet_heatmaps() -> None:
    """The authors' four-panel figure (image, positive, negative and difference maps) for one public image."""
    import cxrzoo
    from cxrzoo.models.cxrnet import cxrnet_figure, cxrnet_heatmaps, cxrnet_heatmaps_at_size, prepare_cxrnet_input

    row = licensed_images(1)[0]
    image = _gray(VAL / "images" / f"{row['id']}.png")
    model = cxrzoo.create_model("cxrnet")
    maps = cxrnet_heatmaps(model, prepare_cxrnet_input(image)[None])
    big = cxrnet_heatmaps_at_size(maps, 0, image.shape)
    p = float(maps["probabilities"][0, 0])
    fig = cxrnet_figure(image, big, 0, title=row["source_file"])
    fig.set_size_inches(10.0, 3.2)
    for ax in fig.axes:
        ax.title.set_fontsize(8)
    fig.suptitle(f"CXR-Net (cxrnet.hfhs_v7): P(COVID-19) = {p:.2f}, maps at the image's own size", fontsize=9)
    fig.text(0.5, 0.01, _credit([row]), ha="center", fontsize=6, color="0.4")
    fig.tight_layout(rect=(0, 0.04, 1, 0.93))
    _save(fig, "cxrnet_heatmaps.png")


def _contour(ax, mask: np.ndarray, color: str) -> None:
    ax.contour(mask.astype(float), levels=[0.5], colors=color, linewidths=1.0)


def res_cr_net_masks() -> None:
    """Res-CR-Net V7 lung masks on three public images, with their Dice against the human V7 masks (the masks'
    licence is not stated, so they are not drawn)."""
    import cxrzoo
    from cxrzoo.metrics import dice_score

    rows = licensed_images(3, start=1)
    images = [_gray(VAL / "images" / f"{r['id']}.png") for r in rows]
    truths = [_gray(VAL / "lungs" / f"{r['id']}.png") > 127 for r in rows]
    found = cxrzoo.segment_lungs(images)
    fig = _new_figure(8.4, 3.3)
    for ax, image, truth, result, row in zip(fig.subplots(1, 3), images, truths, found, rows):
        ax.imshow(image, cmap="gray")
        _contour(ax, result["mask"], "red")  # the human masks' licence is not stated: used for Dice only
        dice = float(dice_score(truth[None], result["mask"][None])[0])
        ax.set_title(f"{row['source_file']}: Dice {dice:.3f} vs the human mask", fontsize=8)
        ax.axis("off")
    fig.suptitle("Res-CR-Net lung masks (res_cr_net.v7_lungs) on public COVID-19 CXRs", fontsize=9)
    fig.supxlabel(_credit(rows) + "; human V7 Darwin masks used for Dice, not drawn", fontsize=6, color="0.4")
    _save(fig, "res_cr_net_masks.png")


def bone_suppression() -> None:
    """One public image before and after the published bone-suppression autoencoder (run at 1024×1024)."""
    from cxrzoo.models.covid_xnet import suppress_bones

    row = licensed_images(1, start=4)[0]
    image = _gray(VAL / "images" / f"{row['id']}.png")
    soft = suppress_bones(image, size=(1024, 1024))
    removed = image.astype(np.float32) - soft.astype(np.float32)  # what the network took away: ribs, clavicles
    fig = _new_figure(9.0, 3.6)
    panels = (
        (image, "original", dict(cmap="gray", vmin=0, vmax=255)),
        (soft, "bones suppressed", dict(cmap="gray", vmin=0, vmax=255)),
        (
            removed,
            "original − suppressed",
            dict(cmap="gray", vmin=np.percentile(removed, 1), vmax=np.percentile(removed, 99)),
        ),
    )
    for ax, (shown, title, style) in zip(fig.subplots(1, 3), panels):
        ax.imshow(shown, **style)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle("Bone suppression (bone_suppression.jsrt_v2), run at 1024×1024 as trained", fontsize=9)
    fig.supxlabel(_credit([row]), fontsize=6, color="0.4")
    _save(fig, "bone_suppression.png")


def covid_cxnet_gradcam() -> None:
    """Grad-CAM of both published COVID-CXNet base models on two public images, with their scores."""
    import cxrzoo
    from cxrzoo.explain import GradCAM, overlay

    rows = licensed_images(2, start=5)
    paths = [str(VAL / "images" / f"{r['id']}.png") for r in rows]
    tags = ("covid_cxnet_base.v1_0", "covid_cxnet_base.v_free")
    fig = _new_figure(6.6, 6.4)
    axes = fig.subplots(len(rows), len(tags))
    for j, tag in enumerate(tags):
        pipe = cxrzoo.pipeline(tag)
        x = pipe.preprocess(paths)
        maps = GradCAM()(pipe.model, x)
        scores = pipe.predict(paths)
        for i, row in enumerate(rows):
            p = scores[i]["probabilities"][pipe.spec.output.positive]
            ax = axes[i, j]
            ax.imshow(overlay(x[i, ..., 0], maps[i]))
            ax.set_title(f"{tag}\n{row['source_file']}: P(COVID-19) {p:.2f}", fontsize=7)
            ax.axis("off")
    fig.suptitle("Grad-CAM (target layer conv_layer5) of the published COVID-CXNet base models", fontsize=9)
    fig.supxlabel(_credit(rows), fontsize=6, color="0.4")
    _save(fig, "covid_cxnet_gradcam.png")


def external(reuse: str | None) -> None:
    """ROC, reliability and lung-Dice figures of benchmarks/external_validation.py (no image is drawn in them)."""
    with tempfile.TemporaryDirectory(prefix="cxrzoo-external-") as scratch:
        out = reuse or scratch
        command = [sys.executable, str(REPO / "benchmarks" / "external_validation.py"), "-o", out]
        command += ["--docs-figures", str(FIGURES)] + (["--reuse"] if reuse else [])
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    for name in ("external_roc.png", "external_reliability.png", "external_lung_masks.png"):
        print(f"docs/figures/{name}: {(FIGURES / name).stat().st_size / 1024:.0f} KB")


def finetune_curves() -> None:
    """The training-curve figure that examples/finetune_cxrnet.ipynb drew when it last ran."""
    from cxrzoo.fileio import atomic_write

    notebook = json.loads((REPO / "examples" / "finetune_cxrnet.ipynb").read_text(encoding="utf-8"))
    pictures = [
        output["data"]["image/png"]
        for cell in notebook["cells"]
        if cell["cell_type"] == "code"
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    if len(pictures) != 1:
        raise SystemExit(f"examples/finetune_cxrnet.ipynb: expected one PNG output (the curves), found {len(pictures)}")
    data = base64.b64decode("".join(pictures[0]))
    target = FIGURES / "finetune_curves.png"
    atomic_write(target, lambda tmp: Path(tmp).write_bytes(data))
    print(f"{target.relative_to(REPO)}: {len(data) / 1024:.0f} KB")


STEPS = {
    "heatmaps": cxrnet_heatmaps,
    "masks": res_cr_net_masks,
    "bones": bone_suppression,
    "cam": covid_cxnet_gradcam,
    "external": None,
    "curves": finetune_curves,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(STEPS), help="draw only these figures")
    parser.add_argument("--reuse-external", metavar="DIR", help="an external_validation.py output folder to reuse")
    args = parser.parse_args()
    if not VAL.is_dir():
        raise SystemExit(f"{VAL} is missing: the figures are drawn from ../shared/data (set CXRZOO_SHARED)")
    if not os.environ.get("CXRZOO_WEIGHTS_PATH") and (SHARED / "weights").is_dir():
        os.environ["CXRZOO_WEIGHTS_PATH"] = str(SHARED / "weights")
    os.environ.setdefault("CXRZOO_OFFLINE", "1")
    FIGURES.mkdir(parents=True, exist_ok=True)
    for name in args.only or STEPS:
        if name == "external":
            external(args.reuse_external)
        else:
            STEPS[name]()
    total = sum(p.stat().st_size for p in FIGURES.glob("*.png"))
    print(f"docs/figures: {total / 2**20:.2f} MB in all")


if __name__ == "__main__":
    main()
