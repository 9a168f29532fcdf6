"""The one-page Markdown report of an evaluation, and atomic file writing."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars/arrays as Python values and NaN/infinity as None (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Writes ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``: readers see the
    old file or the complete new one, never a part; an error leaves no temporary file. The file gets the usual
    permissions of a new file (0o666 without the umask), not mkstemp's 0o600."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _num(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _with_ci(row: dict, key: str, digits: int = 3) -> str:
    ci = row.get(f"{key}_ci")
    text = _num(row[key], digits)
    return f"{text} [{_num(ci[0], digits)}, {_num(ci[1], digits)}]" if ci else text


def _operating_row(name: str, where: str, op: dict) -> str:
    cells = [_with_ci(op, k, 2) for k in ("sensitivity", "specificity", "ppv", "npv", "f1")]
    counts = f"{op['tp']}/{op['fp']}/{op['fn']}/{op['tn']}"
    return f"| {name} | {where} | " + " | ".join(cells) + f" | {counts} |"


def _labels(values: list[str]) -> str:
    return ", ".join(f"`{v}`" for v in values) if len(values) <= 3 else f"{len(values)} other labels"


def classification_section(c: dict[str, Any]) -> list[str]:
    level = round(100 * c["level"])
    lines = [
        "## Classification",
        "",
        f"{c['n']} images: {c['n_positive']} positive (`{c['positive']}`), {c['n_negative']} negative "
        f"({_labels(c['negative_labels'])}); {c['n_patients']} "
        + ("patients" if c["patient_grouped"] else "cases (no patient column: every image its own patient)")
        + f". Score: `{c['score_column']}`"
        + (f" of `{c['tag']}`" if c.get("tag") else "")
        + f"; rows joined by {c['join']}.",
        "",
        f"| measure | value [{level}% CI] | interval |",
        "|---|---|---|",
        f"| ROC AUC | {_num(c['auc']['value'])} [{_num(c['auc']['low'])}, {_num(c['auc']['high'])}] "
        f"| {c['auc']['method']} |",
    ]
    calib = c["calibration"]
    if "brier" in calib:
        boot = f"bootstrap over {'patients' if c['patient_grouped'] else 'images'}, {c['n_resamples']} resamples"
        lines += [
            f"| Brier score | {_with_ci(calib, 'brier')} | {boot} |",
            f"| ECE ({calib['n_bins']} equal-width bins) | {_with_ci(calib, 'ece')} | {boot} |",
        ]
    else:
        lines.append(f"| calibration | n/a | {calib['note']} |")
    data = c["data_threshold"]
    lines += [
        "",
        f"**Operating points** (positive when `{c['score_column']} >= threshold`; {level}% bootstrap intervals)",
        "",
        "| threshold | evaluated on | sensitivity | specificity | PPV | NPV | F1 | TP/FP/FN/TN |",
        "|---|---|---|---|---|---|---|---|",
    ]
    paper = c.get("paper_threshold")
    if paper:
        lines.append(_operating_row(f"{c['threshold_source']} {paper['threshold']:g}", f"all {c['n']}", paper))
    if data["selection"] == "cv":
        spread = data["fold_thresholds"]
        name = (
            f"{data['rule']}, re-chosen in each of {data['folds']} patient-grouped folds "
            f"({min(spread):.3g}–{max(spread):.3g})"
        )
        lines.append(_operating_row(name, f"out-of-fold, all {c['n']}", data["metrics"]))
    else:
        if data.get("paper_threshold_on_test"):
            p = data["paper_threshold_on_test"]
            lines.append(_operating_row(f"{c['threshold_source']} {p['threshold']:g}", f"test {data['n_test']}", p))
        lines.append(
            _operating_row(
                f"{data['rule']} {data['threshold']:.3g}, chosen on the calibration split ({data['n_calibration']})",
                f"test {data['n_test']}",
                data["metrics"],
            )
        )
    app = data["apparent"]
    lines += [
        "",
        f"Threshold chosen on the data ({data['rule']}): **{data['threshold']:.4g}**"
        + (" (on all images; use it on new data)" if data["selection"] == "cv" else " (on the calibration split)")
        + f". The table reports it on cases it was not chosen on ({data['evaluated_on']}). On the cases it was "
        f"chosen on it gives sensitivity {_num(app['sensitivity'], 2)}, specificity {_num(app['specificity'], 2)}: "
        "optimistic, not a result.",
    ]
    for note in c.get("notes", []):
        lines.append(f"- {note}")
    lines += ["", "![ROC curve](roc.png) ![confusion matrices](confusion.png)"]
    if "brier" in calib:
        lines.append("![reliability diagram](reliability.png)")
    return lines


def segmentation_section(s: dict[str, Any]) -> list[str]:
    summary = s["summary"]
    lines = [
        "## Segmentation",
        "",
        f"{s['n_images']} images; predicted masks from {s['predicted_from']}, reference masks from "
        f"`{s['reference']}`; matched by {s['join']}.",
        "",
        "| measure | mean (SD) | median | IQR [Q1, Q3] | min | max | n |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, name in (("dice", "Dice"), ("iou", "IoU"), ("hd95", "HD95 (pixels)")):
        row = summary[key]
        if not row["n"]:
            lines.append(f"| {name} | n/a | | | | | 0 |")
            continue
        digits = 1 if key == "hd95" else 3
        undefined = f" (+{row['n_undefined']} undefined)" if row["n_undefined"] else ""
        lines.append(
            f"| {name} | {_num(row['mean'], digits)} ({_num(row['std'], digits)}) | {_num(row['median'], digits)} "
            f"| {_num(row['iqr'], digits)} [{_num(row['q1'], digits)}, {_num(row['q3'], digits)}] "
            f"| {_num(row['min'], digits)} | {_num(row['max'], digits)} | {row['n']}{undefined} |"
        )
    lines += [
        "",
        f"Pooled over all pixels: Dice {_num(summary['pooled_dice'])}, IoU {_num(summary['pooled_iou'])}. "
        f"{s['hd95_convention']}. Per image: `segmentation.csv`.",
        *(f"- {note}" for note in s.get("notes", [])),
        "",
        "![segmentation scores](segmentation.png)",
    ]
    return lines


def render_report(metrics: dict[str, Any]) -> str:
    """The Markdown report of :func:`cxrzoo.evaluation.evaluate`'s metrics (figures referenced by file name)."""
    inputs = metrics["inputs"]
    lines = [f"# {metrics.get('title') or 'Evaluation'}", ""]
    sources = [f"{k} `{v['path']}` (sha256 {v['sha256'][:12]}…)" for k, v in inputs.items() if v.get("sha256")]
    lines.append(f"cxrzoo {metrics['cxrzoo_version']}" + ("; " + "; ".join(sources) if sources else "") + ".")
    if metrics.get("predicted_with"):
        lines[-1] += f" Predictions made with cxrzoo {', '.join(metrics['predicted_with'])}."
    lines.append("")
    if "classification" in metrics:
        lines += classification_section(metrics["classification"]) + [""]
    if "segmentation" in metrics:
        lines += segmentation_section(metrics["segmentation"]) + [""]
    lines += ["## How these numbers were computed", ""]
    if "classification" in metrics:
        lines += [
            "- AUC: Mann–Whitney with ties 1/2; interval from DeLong's variance, with a patient column Obuchowski's "
            "clustered variant (images of one patient are not independent).",
            "- A threshold chosen on the data is never reported on the cases it was chosen on: with cross-validation,"
            " every case is called with a threshold chosen on folds without its patient (the bootstrap repeats the "
            "choice in every resample); with a calibration split, on the test split only.",
            "- Youden: the threshold maximizing sensitivity + specificity − 1; a target sensitivity: the highest "
            "threshold reaching it. Thresholds lie midway between neighbouring scores.",
        ]
    if "segmentation" in metrics:
        lines.append(
            "- Dice and IoU per image at each image's own size (both masks empty: 1); HD95 in that image's pixels."
        )
    lines.append("- See docs/evaluate.md for every definition. Research use only; not a medical device.")
    return "\n".join(lines) + "\n"


def dumps(metrics: dict[str, Any]) -> str:
    return json.dumps(jsonable(metrics), indent=2, allow_nan=False) + "\n"
