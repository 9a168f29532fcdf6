"""External validation of the published models on labelled public chest X-rays, regenerated end to end.

The labelled set (../shared/data; see its reference/data.md):

* positives: the 60 COVID-19 CXRs of ``v7_covid_lungs/val`` (ieee8023 collection, with human V7 lung masks); its
  index has no patient column, so every image counts as its own patient;
* negatives: the 55 non-COVID CXRs of ``ieee_non_covid/public`` (other pneumonias, SARS, ARDS, "No Finding") of 31
  patients, patient ids from its index.

For each classifier (CXR-Net ``cxrnet.hfhs_v7``, COVID-CXNet base models ``covid_cxnet_base.v1_0`` and ``.v_free``)
the script writes a results table with the columns of ``cxrzoo predict`` (``path``, ``sha256``, ``tag``,
``cxrzoo_version``, ``p_<label>``, ``lung_fraction``, ``warnings``) using ``cxrzoo.pipeline``, then evaluates it
with ``cxrzoo.evaluation.evaluate`` (the Python side of ``cxrzoo evaluate``) against ``labels.csv``, clustered by
patient. For Res-CR-Net (``res_cr_net.v7_lungs`` through ``cxrzoo.segment_lungs``) it writes each positive's lung
mask as a PNG at the image's size and evaluates Dice, IoU and HD95 against the human masks.

Everything goes into ``OUT`` (default ``external_validation/``, not part of the repository): ``labels.csv``,
``predictions_<tag>.csv``, one evaluation folder per model (``report.md``, ``metrics.json``, figures), and
``summary.md``. ``--docs-figures DIR`` also draws three small summary figures for the documentation (ROC curves
and reliability diagrams of the three classifiers, per-image lung Dice). The same evaluation from the shell::

    cxrzoo evaluate OUT/predictions_cxrnet.hfhs_v7.csv -o OUT/cxrnet.hfhs_v7 --labels OUT/labels.csv \\
        --patient-column patient

    python benchmarks/external_validation.py [-o OUT] [--reuse] [--docs-figures docs/figures]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CXRZOO_SHARED", REPO.parent / "shared"))
CLASSIFIERS = ("cxrnet.hfhs_v7", "covid_cxnet_base.v1_0", "covid_cxnet_base.v_free")
SEGMENTER = "res_cr_net.v7_lungs"
LICENCE_NOTE = (
    "metrics derived from ieee8023 covid-chestxray-dataset images and V7 Darwin masks\n"
    "(licences per image: CC BY, CC BY-NC-SA, CC BY-NC-ND, Apache-2.0, unstated); no image reproduced"
)
SMALL_LUNGS = 0.10  # this script's QC rule: a lung mask under 10% of the image gets a warning


def _index(folder: Path) -> list[dict]:
    with open(folder / "index.csv", newline="") as f:
        return list(csv.DictReader(f))


def _write_csv(path: Path, rows: list[dict]) -> None:
    from cxrzoo.evaluation.report import write_atomic

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def labelled_set(out: Path) -> list[dict]:
    """The 115 labelled images, positives first, written to ``out/labels.csv``."""
    v7 = SHARED / "data" / "v7_covid_lungs" / "val"
    ieee = SHARED / "data" / "ieee_non_covid" / "public"
    if not v7.is_dir() or not ieee.is_dir():
        raise SystemExit(f"needs {v7} and {ieee} (set CXRZOO_SHARED)")
    rows = []
    for row in _index(v7):
        patient = row.get("patient") or f"v7:{row['id']}"  # no patient ids in this index: each image its own
        rows.append(
            {
                "path": str(v7 / "images" / f"{row['id']}.png"),
                "id": row["id"],
                "label": "covid",
                "patient": patient,
                "finding": row["finding"],
                "source": "v7_covid_lungs/val",
                "license": row["license"],
            }
        )
    for row in _index(ieee):
        rows.append(
            {
                "path": str(ieee / "images" / f"{row['id']}.png"),
                "id": row["id"],
                "label": "non_covid",
                "patient": f"ieee:{row['patient']}",
                "finding": row["finding"],
                "source": "ieee_non_covid/public",
                "license": row["license"],
            }
        )
    _write_csv(out / "labels.csv", rows)
    return rows


def lung_masks(images: list[dict], out: Path) -> dict[str, dict]:
    """Res-CR-Net V7 lung masks of every image (QC column of the classifiers' tables), the positives' masks written
    as PNG for the segmentation evaluation."""
    from PIL import Image

    import cxrzoo
    from cxrzoo.evaluation.report import write_atomic

    masks_dir = out / "res_cr_net_masks"
    masks_dir.mkdir(parents=True, exist_ok=True)
    found = {}
    for start in range(0, len(images), 8):
        chunk = images[start : start + 8]
        for row, res in zip(chunk, cxrzoo.segment_lungs([r["path"] for r in chunk])):
            mask_path = None
            if row["label"] == "covid":
                buffer = io.BytesIO()
                Image.fromarray(res["mask"].astype(np.uint8) * 255).save(buffer, format="PNG")
                mask_path = write_atomic(masks_dir / f"{row['id']}.png", buffer.getvalue())
            found[row["path"]] = {"fraction": res["areas"]["total"]["fraction"], "mask_path": mask_path}
    return found


def predictions_table(tag: str, images: list[dict], lungs: dict[str, dict], out: Path) -> Path:
    """The results table of ``tag`` over ``images``, with the columns of ``cxrzoo predict``."""
    import cxrzoo

    pipe = cxrzoo.pipeline(tag)
    labels = pipe.spec.output.labels
    rows = []
    for start in range(0, len(images), 8):
        chunk = images[start : start + 8]
        for row, res in zip(chunk, pipe.predict([r["path"] for r in chunk])):
            fraction = lungs[row["path"]]["fraction"]
            rows.append(
                {
                    "path": row["path"],
                    "sha256": _sha256(Path(row["path"])),
                    "tag": pipe.spec.name,
                    "cxrzoo_version": cxrzoo.__version__,
                    **{f"p_{label}": f"{res['probabilities'][label]:.6f}" for label in labels},
                    "lung_fraction": f"{fraction:.6f}",
                    "warnings": "small lung mask" if fraction < SMALL_LUNGS else "",
                }
            )
    path = out / f"predictions_{pipe.spec.name}.csv"
    _write_csv(path, rows)
    return path


def segmentation_table(images: list[dict], lungs: dict[str, dict], out: Path) -> Path:
    import cxrzoo

    rows = [
        {
            "path": r["path"],
            "sha256": _sha256(Path(r["path"])),
            "tag": SEGMENTER,
            "cxrzoo_version": cxrzoo.__version__,
            "lung_fraction": f"{lungs[r['path']]['fraction']:.6f}",
            "warnings": "small lung mask" if lungs[r["path"]]["fraction"] < SMALL_LUNGS else "",
            "mask_path": Path(lungs[r["path"]]["mask_path"]).relative_to(out).as_posix(),
        }
        for r in images
        if r["label"] == "covid"
    ]
    path = out / f"predictions_{SEGMENTER}.csv"
    _write_csv(path, rows)
    return path


def largest_components(out: Path, keep: int = 2) -> Path:
    """The predicted masks with only their ``keep`` largest 8-connected components (the two lungs): a common
    post-processing that ``segment_lungs`` does not do, evaluated apart to show what the small false islands
    cost in HD95 (Dice barely notices them)."""
    from PIL import Image
    from scipy import ndimage

    from cxrzoo.evaluation import read_mask
    from cxrzoo.evaluation.report import write_atomic

    folder = out / f"res_cr_net_masks_{keep}cc"
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted((out / "res_cr_net_masks").glob("*.png")):
        mask = read_mask(path)
        labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
        if n > keep:
            sizes = np.bincount(labels.ravel())[1:]
            mask = np.isin(labels, 1 + np.argsort(sizes)[::-1][:keep])
        buffer = io.BytesIO()
        Image.fromarray(mask.astype(np.uint8) * 255).save(buffer, format="PNG")
        write_atomic(folder / path.name, buffer.getvalue())
    return folder


def _ci(row: dict, key: str) -> str:
    interval = row.get(f"{key}_ci")
    return f"{row[key]:.2f} [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else f"{row[key]:.2f}"


def summary(results: dict[str, dict], seg: dict | None, seg_2cc: dict | None = None) -> str:
    lines = [
        "# External validation on public data",
        "",
        "Positives: 60 COVID-19 CXRs (v7_covid_lungs/val, each its own patient); negatives: 55 non-COVID CXRs of 31",
        "patients (ieee_non_covid/public). 95% intervals: AUC DeLong clustered by patient; others bootstrap over",
        "patients (1000 resamples); the data-chosen threshold (Youden) by 5-fold patient-grouped cross-validation.",
        "",
        "| model | AUC | at the paper's 0.5: sensitivity | specificity | PPV | NPV | F1 | Youden (out-of-fold): "
        "sensitivity | specificity | threshold on all data | ECE | Brier |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tag, c in results.items():
        p, d, cal = c["paper_threshold"], c["data_threshold"], c["calibration"]
        auc = c["auc"]
        lines.append(
            f"| `{tag}` | {auc['value']:.3f} [{auc['low']:.3f}, {auc['high']:.3f}] | {_ci(p, 'sensitivity')} "
            f"| {_ci(p, 'specificity')} | {_ci(p, 'ppv')} | {_ci(p, 'npv')} | {_ci(p, 'f1')} "
            f"| {_ci(d['metrics'], 'sensitivity')} | {_ci(d['metrics'], 'specificity')} | {d['threshold']:.3g} "
            f"| {_ci(cal, 'ece')} | {_ci(cal, 'brier')} |"
        )
    if seg:
        s = seg["summary"]
        lines += [
            "",
            f"Res-CR-Net `{SEGMENTER}` lung masks vs the human V7 masks ({seg['n_images']} images, original size): "
            f"Dice mean {s['dice']['mean']:.3f}, median {s['dice']['median']:.3f} (IQR {s['dice']['q1']:.3f}–"
            f"{s['dice']['q3']:.3f}, min {s['dice']['min']:.3f}); IoU mean {s['iou']['mean']:.3f}, median "
            f"{s['iou']['median']:.3f}; HD95 median {s['hd95']['median']:.1f} px (IQR {s['hd95']['q1']:.1f}–"
            f"{s['hd95']['q3']:.1f}, mean {s['hd95']['mean']:.1f}, max {s['hd95']['max']:.1f}).",
        ]
    if seg_2cc:
        s = seg_2cc["summary"]
        lines += [
            "",
            "The same masks keeping only their two largest connected components (post-processing not done by "
            f"segment_lungs): Dice mean {s['dice']['mean']:.3f}, median {s['dice']['median']:.3f}; HD95 median "
            f"{s['hd95']['median']:.1f} px (IQR {s['hd95']['q1']:.1f}–{s['hd95']['q3']:.1f}, mean "
            f"{s['hd95']['mean']:.1f}, max {s['hd95']['max']:.1f}).",
        ]
    return "\n".join(lines) + "\n"


def _save_figure(fig, path: Path) -> None:
    """Writes a documentation figure as a 100-dpi PNG carrying the licence note, atomically."""
    from cxrzoo.evaluation.report import write_atomic

    fig.supxlabel(LICENCE_NOTE, fontsize=5.5, color="0.4")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    write_atomic(path, buffer.getvalue())


def docs_figures(results: dict[str, dict], per_image: list[dict], folder: Path) -> None:
    """Three small figures for the model cards: the three ROC curves, their reliability diagrams, and the per-image
    lung Dice."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    folder.mkdir(parents=True, exist_ok=True)
    names = {
        "cxrnet.hfhs_v7": "CXR-Net",
        "covid_cxnet_base.v1_0": "COVID-CXNet base v1.0",
        "covid_cxnet_base.v_free": "COVID-CXNet base v_free",
    }
    fig = Figure(figsize=(4.2, 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.75", lw=1, ls="--")
    for k, (tag, c) in enumerate(results.items()):
        roc, auc, p = c["roc"], c["auc"], c["paper_threshold"]
        ax.step(
            roc["fpr"],
            roc["tpr"],
            where="post",
            color=f"C{k}",
            lw=1.8,
            label=f"{names.get(tag, tag)}: AUC {auc['value']:.2f} [{auc['low']:.2f}, {auc['high']:.2f}]",
        )
        ax.plot(1 - p["specificity"], p["sensitivity"], "o", color=f"C{k}", ms=6)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - specificity", ylabel="sensitivity", aspect="equal")
    ax.set_title("60 public COVID-19 vs 55 non-COVID CXRs\n(dots: threshold 0.5)", fontsize=9)
    ax.legend(loc="lower right", fontsize=7)
    ax.grid(alpha=0.3)
    _save_figure(fig, folder / "external_roc.png")

    fig = Figure(figsize=(4.2, 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.75", lw=1, ls="--", label="perfect calibration")
    for k, (tag, c) in enumerate(results.items()):
        calib = c["calibration"]
        curve = calib["curve"]
        used = [i for i, n in enumerate(curve["count"]) if n > 0]
        ax.plot(
            [curve["mean_predicted"][i] for i in used],
            [curve["observed"][i] for i in used],
            "o-",
            color=f"C{k}",
            lw=1.5,
            ms=4,
            label=f"{names.get(tag, tag)}: ECE {calib['ece']:.2f}, Brier {calib['brier']:.2f}",
        )
    ax.set(
        xlim=(0, 1), ylim=(-0.02, 1.02), xlabel="predicted P(COVID-19), bin mean", ylabel="observed fraction COVID-19"
    )
    ax.set_title("Reliability on the same 115 public CXRs\n(10 equal-width bins)", fontsize=9)
    ax.legend(loc="upper left", fontsize=6.5)
    ax.grid(alpha=0.3)
    _save_figure(fig, folder / "external_reliability.png")

    dice = np.array([r["dice"] for r in per_image])
    hd = np.array([r["hd95"] for r in per_image if r["hd95"] is not None])
    fig = Figure(figsize=(6.0, 2.6), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    left.hist(dice, bins=np.linspace(min(0.4, dice.min()), 1.0, 25), color="C0", edgecolor="white")
    left.set(xlabel="lung Dice per image", ylabel="images")
    right.hist(hd, bins=20, color="C1", edgecolor="white")
    right.set(xlabel="HD95 per image (pixels)", ylabel="images")
    fig.suptitle(f"Res-CR-Net V7 lungs vs human masks, {len(per_image)} public COVID-19 CXRs", fontsize=9)
    _save_figure(fig, folder / "external_lung_masks.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="external_validation", help="output folder")
    parser.add_argument("--reuse", action="store_true", help="reuse existing predictions tables in the folder")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (1000)")
    parser.add_argument("--docs-figures", metavar="DIR", help="also draw the documentation's summary figures here")
    args = parser.parse_args()
    if not os.environ.get("CXRZOO_WEIGHTS_PATH") and (SHARED / "weights").is_dir():
        os.environ["CXRZOO_WEIGHTS_PATH"] = str(SHARED / "weights")
    os.environ.setdefault("CXRZOO_OFFLINE", "1")

    from cxrzoo.evaluation import evaluate
    from cxrzoo.evaluation.report import write_atomic

    out = Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    images = labelled_set(out)
    print(
        f"{len(images)} images: {sum(r['label'] == 'covid' for r in images)} COVID-19, "
        f"{sum(r['label'] != 'covid' for r in images)} other, {len({r['patient'] for r in images})} patients"
    )

    tables = {tag: out / f"predictions_{tag}.csv" for tag in (*CLASSIFIERS, SEGMENTER)}
    if not (args.reuse and all(p.is_file() for p in tables.values())):
        t = time.perf_counter()
        lungs = lung_masks(images, out)
        print(f"lung masks: {time.perf_counter() - t:.1f} s")
        segmentation_table(images, lungs, out)
        for tag in CLASSIFIERS:
            t = time.perf_counter()
            predictions_table(tag, images, lungs, out)
            print(f"{tag}: {len(images)} images in {time.perf_counter() - t:.1f} s")

    results = {}
    for tag in CLASSIFIERS:
        ev = evaluate(
            tables[tag],
            labels=out / "labels.csv",
            patient_column="patient",
            n_resamples=args.bootstrap,
            title=f"{tag} on public COVID-19 / non-COVID CXRs",
        )
        ev.save(out / tag)
        results[tag] = ev.metrics["classification"]
    seg = evaluate(
        tables[SEGMENTER],
        masks=SHARED / "data" / "v7_covid_lungs" / "val" / "lungs",
        title=f"{SEGMENTER} lung masks vs human V7 masks",
    )
    seg.save(out / SEGMENTER)
    seg_2cc = evaluate(
        largest_components(out),
        masks=SHARED / "data" / "v7_covid_lungs" / "val" / "lungs",
        title=f"{SEGMENTER} lung masks, two largest components, vs human V7 masks",
    )
    seg_2cc.save(out / f"{SEGMENTER}_2cc")
    text = summary(results, seg.metrics["segmentation"], seg_2cc.metrics["segmentation"])
    write_atomic(out / "summary.md", text)
    print(text)
    if args.docs_figures:
        docs_figures(results, seg.per_image, Path(args.docs_figures))
        print(f"figures in {args.docs_figures}")


if __name__ == "__main__":
    main()
