"""Segmentation masks against reference masks: Dice, IoU and HD95 per image, and their summary.

:func:`evaluate_segmentation` works on arrays (one truth and one prediction per image, any size each);
:func:`read_mask` reads a mask file and :func:`mask_files` indexes a folder of masks for matching by relative
path or by file stem.

Conventions: a mask file is foreground where its value is 1 if its largest value is 1 (0/1 masks), else where
its value is at least half its type's range (128 of 255 for 8-bit, 32768 for 16-bit); colour masks use their
brightest channel, alpha ignored. Dice and IoU of an image whose truth and prediction are both empty are 1.0
(:func:`cxrzoo.metrics.dice_score`). HD95 (:func:`cxrzoo.metrics.hausdorff_distance`) is in pixels of the image,
the larger of the two directed 95th percentiles of boundary-to-boundary distances; both masks empty → 0; exactly
one empty → undefined (``nan``, counted as ``n_undefined`` and left out of the summary) unless ``one_empty``
gives a value (``"diagonal"``: the image diagonal).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cxrzoo.metrics import dice_score, hausdorff_distance, iou_score

MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".npy")


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A mask file (PNG, TIFF, BMP, or ``.npy``) as an (H, W) bool array; see the module's conventions."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such mask file")
    if path.suffix.lower() == ".npy":
        array = np.load(path, allow_pickle=False)
    else:
        from PIL import Image

        with Image.open(path) as image:
            if image.mode == "P":  # palette: a class index per pixel
                array = np.asarray(image)
            else:
                array = np.asarray(image.convert("RGB") if image.mode in ("CMYK", "YCbCr", "LAB", "HSV") else image)
    if array.ndim == 3:
        channels = array.shape[-1]
        array = array[..., : 3 if channels == 4 else channels].max(axis=-1)  # alpha is not a class
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"{path}: a mask must be a 2-D image, got shape {array.shape}")
    if array.dtype == bool:
        return array
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{path}: the mask contains NaN or infinite values")
        return array >= 0.5 if array.max() <= 1 else array >= 0.5 * array.max()
    top = int(array.max())
    if top <= 1:
        return array == 1
    half = (np.iinfo(array.dtype).max + 1) // 2 if array.dtype.kind in "ui" else 128
    return array >= half


def mask_files(folder: str | os.PathLike) -> dict[str, Path]:
    """Every mask file under ``folder`` (recursive), by relative path without extension (POSIX separators)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: not a folder of masks")
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in MASK_SUFFIXES and not path.name.startswith("."):
            files[path.relative_to(folder).with_suffix("").as_posix()] = path
    if not files:
        raise ValueError(f"{folder}: no mask files ({', '.join(MASK_SUFFIXES)}) in this folder or below")
    return files


def _summary(values: np.ndarray) -> dict[str, Any]:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return {"n": 0, "n_undefined": int(values.size)}
    q1, median, q3 = np.percentile(finite, [25, 50, 75])
    return {
        "n": int(finite.size),
        "n_undefined": int(values.size - finite.size),
        "mean": float(finite.mean()),
        "std": float(finite.std(ddof=1)) if finite.size > 1 else 0.0,
        "median": float(median),
        "q1": float(q1),
        "q3": float(q3),
        "iqr": float(q3 - q1),
        "min": float(finite.min()),
        "max": float(finite.max()),
    }


def evaluate_segmentation(
    truths: Sequence[npt.ArrayLike],
    predictions: Sequence[npt.ArrayLike],
    *,
    ids: Sequence[str] | None = None,
    one_empty: float | str = float("nan"),
    percentile: float = 95.0,
) -> dict[str, Any]:
    """Dice, IoU and HD95 (pixels) per image and summarized (mean, std, median, quartiles, IQR, min, max).

    Args:
        truths, predictions: sequences of (H, W) masks (bool, or 0/1), one pair per image, each pair of one size.
        ids: a name per image (default its index).
        one_empty: HD95 when exactly one mask of a pair is empty (``nan``: undefined, left out of the summary).
        percentile: of the Hausdorff distance (95 → HD95).

    Returns:
        ``per_image`` (a list of dicts: ``id``, ``height``, ``width``, ``truth_pixels``, ``predicted_pixels``,
        ``dice``, ``iou``, ``hd95``), ``summary`` (``dice``, ``iou``, ``hd95`` → statistics, plus pooled Dice and
        IoU over all pixels), ``n_images`` and the HD95 convention.

    Example::

        out = evaluate_segmentation([truth], [predicted], ids=["v7_val_0000"])
        out["summary"]["dice"]["median"], out["per_image"][0]["hd95"]
    """
    truths, predictions = list(truths), list(predictions)
    if len(truths) != len(predictions):
        raise ValueError(f"{len(truths)} reference masks but {len(predictions)} predicted masks")
    if not truths:
        raise ValueError("no masks to evaluate")
    ids = [str(i) for i in range(len(truths))] if ids is None else [str(i) for i in ids]
    if len(ids) != len(truths):
        raise ValueError(f"{len(ids)} ids for {len(truths)} masks")
    rows = []
    tp_total = fp_fn_total = 0
    for name, truth, pred in zip(ids, truths, predictions):
        truth, pred = np.asarray(truth), np.asarray(pred)
        if truth.shape != pred.shape:
            raise ValueError(
                f"{name}: the predicted mask is {pred.shape[1]}×{pred.shape[0]} but the reference is "
                f"{truth.shape[1]}×{truth.shape[0]} (width×height); masks must be at the image's own size"
            )
        truth = truth.astype(bool) if truth.dtype != bool else truth
        pred = pred.astype(bool) if pred.dtype != bool else pred
        tp = int(np.sum(truth & pred))
        tp_total += tp
        fp_fn_total += int(np.sum(truth ^ pred))
        rows.append(
            {
                "id": name,
                "height": int(truth.shape[0]),
                "width": int(truth.shape[1]),
                "truth_pixels": int(truth.sum()),
                "predicted_pixels": int(pred.sum()),
                "dice": float(dice_score(truth, pred)[0]),
                "iou": float(iou_score(truth, pred)[0]),
                "hd95": float(hausdorff_distance(truth, pred, percentile=percentile, one_empty=one_empty)[0]),
            }
        )
    summary = {key: _summary(np.array([r[key] for r in rows], float)) for key in ("dice", "iou", "hd95")}
    den = 2 * tp_total + fp_fn_total
    summary["pooled_dice"] = 2 * tp_total / den if den else 1.0
    summary["pooled_iou"] = tp_total / (tp_total + fp_fn_total) if den else 1.0
    for row in rows:  # JSON has no NaN
        if math.isnan(row["hd95"]):
            row["hd95"] = None
    return {
        "n_images": len(rows),
        "per_image": rows,
        "summary": summary,
        "hd95_convention": (
            f"HD{percentile:g} in pixels: the larger of the two directed {percentile:g}th percentiles of distances "
            "between mask boundaries (foreground pixels with a 4-connected background neighbour); both masks "
            "empty → 0; exactly one empty → "
            + ("undefined (left out of the summary)" if _is_nan(one_empty) else f"{one_empty}")
        ),
    }


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)
