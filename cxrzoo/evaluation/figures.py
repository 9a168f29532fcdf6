"""The evaluation figures as PNG bytes: ROC curve, confusion matrices, reliability diagram, segmentation scores.

Drawn with matplotlib's Agg canvas directly (no pyplot, no display, no global state). Only the "Glyph ... missing
from font" warnings are silenced, around drawing: label names come from the user's data and may hold characters
the default font lacks, which is no reason to warn on every run.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np

DPI = 110


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from (current )?font", category=UserWarning)
        fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def roc_figure(result: dict[str, Any], *, title: str = "") -> bytes:
    """The ROC curve with its AUC and interval, the paper's operating point and the data-chosen one (held out)."""
    fig = _figure(4.6, 4.4)
    ax = fig.subplots()
    roc, auc = result["roc"], result["auc"]
    ax.plot([0, 1], [0, 1], color="0.75", lw=1, ls="--")
    ax.step(
        roc["fpr"],
        roc["tpr"],
        where="post",
        color="C0",
        lw=2,
        label=f"AUC {auc['value']:.3f} [{auc['low']:.3f}, {auc['high']:.3f}]",
    )
    paper = result.get("paper_threshold")
    if paper:
        ax.plot(
            1 - paper["specificity"],
            paper["sensitivity"],
            "o",
            color="C3",
            mfc="none",
            mew=2,
            ms=12,
            label=f"paper's threshold {paper['threshold']:g}",
        )
    data = result["data_threshold"]
    held_out = data["metrics"]
    where = "cross-validated" if data["selection"] == "cv" else "test split"
    ax.plot(
        1 - held_out["specificity"], held_out["sensitivity"], "s", color="C2", ms=8, label=f"{data['rule']} ({where})"
    )
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="1 - specificity", ylabel="sensitivity", aspect="equal")
    ax.set_title(title or "ROC curve", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def confusion_figure(
    result: dict[str, Any], *, positive: str = "positive", negative: str = "negative", title: str = ""
) -> bytes:
    """Confusion matrices (rows true, columns called) at the paper's threshold and at the data-chosen one."""
    panels = []
    if result.get("paper_threshold"):
        p = result["paper_threshold"]
        panels.append((f"paper's threshold {p['threshold']:g}\n(all {result['n']} cases)", p))
    data = result["data_threshold"]
    where = "out-of-fold" if data["selection"] == "cv" else f"test split, {data['n_test']} cases"
    panels.append((f"{data['rule']}\n({where})", data["metrics"]))
    fig = _figure(3.3 * len(panels) + 0.4, 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (name, op) in zip(axes, panels):
        cm = np.array([[op["tp"], op["fn"]], [op["fp"], op["tn"]]])
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(1, cm.max()))
        for (i, j), v in np.ndenumerate(cm):
            ax.text(
                j, i, str(v), ha="center", va="center", fontsize=13, color="white" if v > 0.6 * cm.max() else "black"
            )
        ax.set_xticks([0, 1], [positive, negative])
        ax.set_yticks([0, 1], [positive, negative])
        ax.set_xlabel("called")
        ax.set_ylabel("true")
        ax.set_title(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return _png(fig)


def reliability_figure(result: dict[str, Any], *, title: str = "") -> bytes:
    """Observed frequency against mean predicted probability per bin, with the cases per bin below."""
    calib = result["calibration"]
    curve = calib["curve"]
    edges = np.asarray(curve["edges"])
    count = np.asarray(curve["count"])
    mean_p = np.array([np.nan if v is None else v for v in curve["mean_predicted"]], float)
    observed = np.array([np.nan if v is None else v for v in curve["observed"]], float)
    fig = _figure(4.4, 4.8)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], color="0.75", lw=1, ls="--", label="perfect calibration")
    used = count > 0
    top.plot(
        mean_p[used], observed[used], "o-", color="C0", label=f"ECE {calib['ece']:.3f}, Brier {calib['brier']:.3f}"
    )
    top.set(ylim=(-0.02, 1.02), ylabel="observed fraction positive")
    top.set_title(title or "reliability diagram", fontsize=10)
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    bottom.bar(edges[:-1], count, width=np.diff(edges), align="edge", color="C0", alpha=0.6, edgecolor="white")
    bottom.set(xlim=(0, 1), xlabel="predicted probability (bin)", ylabel="cases")
    return _png(fig)


def segmentation_figure(result: dict[str, Any], *, title: str = "") -> bytes:
    """Per-image Dice and IoU (box plots with the images as points) and the HD95 histogram."""
    rows = result["per_image"]
    dice = np.array([r["dice"] for r in rows])
    iou = np.array([r["iou"] for r in rows])
    hd = np.array([r["hd95"] for r in rows if r["hd95"] is not None], float)
    fig = _figure(7.2, 3.4)
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.2])
    left.boxplot([dice, iou], widths=0.5, showfliers=False)
    left.set_xticks([1, 2], ["Dice", "IoU"])
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(rows))
    for k, values in enumerate((dice, iou), start=1):
        left.plot(k + jitter, values, ".", color="C0", alpha=0.6, ms=5)
    left.set(ylim=(min(0.0, float(np.nanmin([dice.min(), iou.min()]))) - 0.02, 1.02), ylabel="per image")
    left.grid(alpha=0.3, axis="y")
    if hd.size:
        right.hist(hd, bins=min(20, max(5, hd.size // 3)), color="C1", alpha=0.8, edgecolor="white")
    right.set(xlabel="HD95 (pixels)", ylabel="images")
    right.grid(alpha=0.3, axis="y")
    fig.suptitle(title or f"{len(rows)} images", fontsize=10)
    return _png(fig)
