"""Evaluation metrics on NumPy arrays, as the papers define and report them.

Segmentation (thesis §4.1.1, pixel level, foreground = positive): :func:`dice_score`, :func:`iou_score`,
:func:`pixel_accuracy`, each per image (an array) or pooled over every pixel of the set (a scalar), and
:func:`segmentation_scores` for all of them at once; :func:`hausdorff_distance` (HD95 by default, per image, pixels).

Classification (thesis §4.1.2; COVID-XNet; CXR-Net): :func:`confusion_matrix`, :func:`per_class_metrics`
(one-vs-rest accuracy, precision, sensitivity, specificity, F1 per class), :func:`weighted_overall` (the thesis'
support-weighted "overall" row, its eq. 17), binary :func:`sensitivity`, :func:`specificity`, :func:`precision`,
:func:`f1_score`, :func:`balanced_accuracy`, :func:`accuracy`; :func:`roc_auc` and :func:`roc_curve`;
:func:`classification_report`. Operating points: :func:`operating_point` (sensitivity, specificity, PPV,
:func:`negative_predictive_value`, F1 of ``score >= threshold``), thresholds chosen on data
(:func:`youden_threshold`, :func:`sensitivity_threshold`). Calibration of P(positive): :func:`brier_score`,
:func:`reliability_curve`, :func:`expected_calibration_error` (equal-width bins).

Confidence intervals: :func:`thesis_ci` (the thesis' normal-approximation half-width ``r = z √(m(1 − m)/N)``, its
eq. 8), :func:`bootstrap_ci` (percentile bootstrap over cases) and :func:`auc_ci` (DeLong's AUC variance, clustered
by patient as Obuchowski generalized it).

Conventions: labels are integer class indices (N,) or one-hot (N, C); scores are probabilities (N, C) or, for a
binary sigmoid head, (N,) / (N, 1) = P(class 1). A ratio whose denominator is 0 (e.g. precision with no positive
prediction) is ``nan``, never a silent 0; the exception is the Dice/IoU of an image whose truth and prediction are
both empty, which is ``empty`` (1.0 by default: nothing to find and nothing found).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "ClassificationReport",
    "accuracy",
    "auc_ci",
    "balanced_accuracy",
    "bootstrap_ci",
    "brier_score",
    "classification_report",
    "confusion_matrix",
    "dice_score",
    "expected_calibration_error",
    "f1_score",
    "hausdorff_distance",
    "iou_score",
    "negative_predictive_value",
    "operating_point",
    "per_class_metrics",
    "pixel_accuracy",
    "precision",
    "reliability_curve",
    "roc_auc",
    "roc_curve",
    "segmentation_scores",
    "sensitivity",
    "sensitivity_threshold",
    "specificity",
    "thesis_ci",
    "weighted_overall",
    "youden_threshold",
]

Z95 = 1.959963984540054  # two-sided 95% normal quantile; the thesis rounds it to 1.96


# ----------------------------------------------------------------------------------------------- segmentation


def _binary_masks(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(N, P) boolean truth and prediction; (N, H, W[, 1]) inputs, predictions binarized with ``> threshold``."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} shapes differ")
    if y_true.ndim == 4 and y_true.shape[-1] == 1:
        y_true, y_pred = y_true[..., 0], y_pred[..., 0]
    if y_true.ndim == 2:
        y_true, y_pred = y_true[None], y_pred[None]
    if y_true.ndim != 3:
        raise ValueError(f"masks must be (N, H, W), (N, H, W, 1) or (H, W), got {np.asarray(y_true).shape}")
    if y_true.dtype != bool:
        values = np.unique(y_true)
        if not np.isin(values, (0, 1)).all():
            raise ValueError(f"y_true must be a binary mask of 0/1 (or bool), found values {values[:6]}")
    if np.issubdtype(y_pred.dtype, np.floating) and np.isnan(y_pred).any():
        raise ValueError("y_pred contains NaN")
    truth = y_true.astype(bool).reshape(len(y_true), -1)
    pred = (y_pred.astype(bool) if y_pred.dtype == bool else y_pred > threshold).reshape(len(y_pred), -1)
    return truth, pred


def _pixel_counts(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    truth, pred = _binary_masks(y_true, y_pred, threshold)
    tp = np.sum(truth & pred, axis=1, dtype=np.int64)
    fp = np.sum(~truth & pred, axis=1, dtype=np.int64)
    fn = np.sum(truth & ~pred, axis=1, dtype=np.int64)
    tn = truth.shape[1] - tp - fp - fn
    return tp, fp, fn, tn


def _overlap(num: npt.ArrayLike, den: npt.ArrayLike, empty: float) -> np.ndarray:
    num, den = np.asarray(num, float), np.asarray(den, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), empty)


def dice_score(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, threshold: float = 0.5, per_image: bool = True, empty: float = 1.0
) -> np.ndarray:
    """Dice ``2TP / (2TP + FP + FN)`` of binary masks (thesis eq. 11).

    Args:
        y_true: (N, H, W) or (N, H, W, 1) 0/1 masks (one image: (H, W)).
        y_pred: same shape; probabilities (binarized with ``> threshold``) or booleans.
        per_image: True → (N,) array, one Dice per image; False → one Dice pooled over every pixel of the set.
        empty: the value when truth and prediction are both empty (``np.nan`` to leave such images out of a
            ``np.nanmean``).
    """
    tp, fp, fn, _ = _pixel_counts(y_true, y_pred, threshold)
    if not per_image:
        tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
    return _overlap(2 * tp, 2 * tp + fp + fn, empty)


def iou_score(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, threshold: float = 0.5, per_image: bool = True, empty: float = 1.0
) -> np.ndarray:
    """Intersection over union ``TP / (TP + FP + FN)`` (Jaccard, thesis eq. 10); arguments as :func:`dice_score`."""
    tp, fp, fn, _ = _pixel_counts(y_true, y_pred, threshold)
    if not per_image:
        tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
    return _overlap(tp, tp + fp + fn, empty)


def pixel_accuracy(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, threshold: float = 0.5, per_image: bool = True
) -> np.ndarray | float:
    """Fraction of correctly classified pixels ``(TP + TN) / all`` (thesis eq. 9); arguments as :func:`dice_score`."""
    tp, fp, fn, tn = _pixel_counts(y_true, y_pred, threshold)
    if not per_image:
        tp, tn, fp, fn = tp.sum(), tn.sum(), fp.sum(), fn.sum()
    return (tp + tn) / (tp + tn + fp + fn)


def segmentation_scores(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, threshold: float = 0.5, empty: float = 1.0
) -> dict:
    """Dice, IoU and pixel accuracy per image (``"dice"`` … arrays), their means (``"mean_dice"`` …) and pooled
    over all pixels (``"pooled_dice"`` …), plus ``"n_images"``."""
    tp, fp, fn, tn = _pixel_counts(y_true, y_pred, threshold)
    out: dict = {"n_images": len(tp)}
    for name, num, den in (("dice", 2 * tp, 2 * tp + fp + fn), ("iou", tp, tp + fp + fn)):
        out[name] = _overlap(num, den, empty)
        out[f"mean_{name}"] = float(np.nanmean(out[name])) if np.isfinite(out[name]).any() else float("nan")
        out[f"pooled_{name}"] = float(_overlap(num.sum(), den.sum(), empty))
    total = tp + fp + fn + tn
    out["pixel_accuracy"] = (tp + tn) / total
    out["mean_pixel_accuracy"] = float(np.mean(out["pixel_accuracy"]))
    out["pooled_pixel_accuracy"] = float((tp + tn).sum() / total.sum())
    return out


def _surface(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a 2-D boolean mask: foreground pixels with a 4-connected background neighbour (pixels on
    the image border count as boundary, as if the image were padded with background)."""
    from scipy.ndimage import binary_erosion

    return mask & ~binary_erosion(mask, border_value=0)


def hausdorff_distance(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    *,
    percentile: float = 95.0,
    threshold: float = 0.5,
    one_empty: float | str = float("nan"),
) -> np.ndarray:
    """Percentile Hausdorff distance between the boundaries of binary masks, per image, in pixels (HD95 by default).

    Convention (that of MONAI's ``compute_hausdorff_distance``): the boundary of a mask is its foreground pixels
    with a 4-connected background neighbour; every boundary pixel of one mask gets its Euclidean distance (between
    pixel centres) to the nearest boundary pixel of the other; HD_p is the larger of the two directed p-th
    percentiles (NumPy's linear interpolation). ``percentile=100`` is the classical Hausdorff distance.

    Empty masks: both empty → 0.0 (nothing to find, nothing found); exactly one empty → ``one_empty``: ``nan``
    by default (undefined; leave such images out of a summary and count them), or ``"diagonal"`` for the image's
    diagonal ``√(H² + W²)`` (the largest distance possible in the image), or any number.

    Args:
        y_true, y_pred: (N, H, W), (N, H, W, 1) or (H, W) masks as for :func:`dice_score` (predictions binarized
            with ``> threshold`` unless boolean).

    Returns:
        (N,) float array.

    Example::

        >>> truth = np.zeros((12, 12), np.uint8); truth[0, :5] = 1
        >>> pred = truth.copy(); pred[10, 0] = 1
        >>> float(hausdorff_distance(truth, pred)[0])  # boundary distances 0,0,0,0,0,10 → 95th percentile
        7.5
    """
    from scipy.ndimage import distance_transform_edt

    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    if isinstance(one_empty, str) and one_empty != "diagonal":
        raise ValueError(f"one_empty must be a number or 'diagonal', got {one_empty!r}")
    truth, pred = _binary_masks(y_true, y_pred, threshold)
    shape = np.asarray(y_true).shape
    size = shape[-3:-1] if len(shape) == 4 else shape[-2:]
    out = np.empty(len(truth), np.float64)
    for i, (t, p) in enumerate(zip(truth, pred)):
        t, p = t.reshape(size), p.reshape(size)
        if not t.any() and not p.any():
            out[i] = 0.0
        elif not t.any() or not p.any():
            out[i] = float(np.hypot(*size)) if one_empty == "diagonal" else float(one_empty)
        else:
            st, sp = _surface(t), _surface(p)
            to_pred = distance_transform_edt(~sp)[st]  # each truth boundary pixel → nearest predicted boundary
            to_truth = distance_transform_edt(~st)[sp]
            out[i] = max(np.percentile(to_pred, percentile), np.percentile(to_truth, percentile))
    return out


# ----------------------------------------------------------------------------------------------- classification


def _labels(y: npt.ArrayLike, n_classes: int | None = None) -> np.ndarray:
    """Integer labels (N,) from labels (N,) / (N, 1) or one-hot (N, C)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        y = np.argmax(y, axis=1)
    y = y.reshape(-1)
    if y.size and np.issubdtype(y.dtype, np.floating) and (np.isnan(y).any() or not np.all(y == np.round(y))):
        raise ValueError("class labels must be whole numbers (or one-hot rows)")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or (n_classes is not None and y.max() >= n_classes)):
        raise ValueError(
            f"class labels must be in 0..{'C-1' if n_classes is None else n_classes - 1}, found {y.min()}..{y.max()}"
        )
    return y


def confusion_matrix(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, n_classes: int | None = None) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted class. Labels as integers (N,) or one-hot (N, C)."""
    t, p = _labels(y_true, n_classes), _labels(y_pred, n_classes)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels, y_pred {p.size}")
    n = n_classes if n_classes is not None else int(max(t.max(initial=0), p.max(initial=0)) + 1)
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    if t.size == 0:  # scikit-learn refuses an empty input; the count matrix of no cases is all zeros
        return np.zeros((n, n), np.int64)
    return sk_confusion_matrix(t, p, labels=np.arange(n)).astype(np.int64)


def _ratio(num: npt.ArrayLike, den: npt.ArrayLike) -> np.ndarray:
    num, den = np.asarray(num, float), np.asarray(den, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def per_class_metrics(cm: npt.ArrayLike) -> dict[str, np.ndarray]:
    """One-vs-rest metrics of every class from a confusion matrix (thesis eqs. 12–16), arrays of length C.

    Keys: ``support`` (true cases per class), ``accuracy`` ((TP + TN)/N of the class-vs-rest problem),
    ``precision``, ``sensitivity`` (recall), ``specificity``, ``f1``. ``nan`` where a denominator is 0.
    """
    cm = np.asarray(cm, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {cm.shape}")
    total = cm.sum()
    tp = np.diag(cm)
    fn = cm.sum(axis=1) - tp
    fp = cm.sum(axis=0) - tp
    tn = total - tp - fn - fp
    prec, sens = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {
        "support": tp + fn,
        "accuracy": _ratio(tp + tn, total),
        "precision": prec,
        "sensitivity": sens,
        "specificity": _ratio(tn, tn + fp),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def weighted_overall(values: npt.ArrayLike, support: npt.ArrayLike) -> float:
    """The thesis' overall value of a per-class metric: ``Σ n_i · metric_i / N`` (eq. 17), ``n_i`` the support."""
    values, support = np.asarray(values, float), np.asarray(support, float)
    if values.shape != support.shape:
        raise ValueError(f"{values.size} values for {support.size} class supports")
    if np.isnan(values[support > 0]).any():
        return float("nan")
    return float(np.sum(np.where(support > 0, values, 0.0) * support) / support.sum())


def _binary_cm(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, positive: int) -> tuple[int, int, int, int]:
    t, p = _labels(y_true) == positive, _labels(y_pred) == positive
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels, y_pred {p.size}")
    return int(np.sum(t & p)), int(np.sum(~t & p)), int(np.sum(t & ~p)), int(np.sum(~t & ~p))


def accuracy(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Fraction of cases whose predicted label equals the true label."""
    t, p = _labels(y_true), _labels(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels, y_pred {p.size}")
    return float(np.mean(t == p)) if t.size else float("nan")


def sensitivity(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, positive: int = 1) -> float:
    """TP / (TP + FN) for the ``positive`` class (recall, true-positive rate)."""
    tp, _, fn, _ = _binary_cm(y_true, y_pred, positive)
    return float(_ratio(tp, tp + fn))


def specificity(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, positive: int = 1) -> float:
    """TN / (TN + FP): the sensitivity of the negative (every other) class."""
    _, fp, _, tn = _binary_cm(y_true, y_pred, positive)
    return float(_ratio(tn, tn + fp))


def precision(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, positive: int = 1) -> float:
    """TP / (TP + FP) for the ``positive`` class (positive predictive value)."""
    tp, fp, _, _ = _binary_cm(y_true, y_pred, positive)
    return float(_ratio(tp, tp + fp))


def f1_score(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, positive: int = 1) -> float:
    """2TP / (2TP + FP + FN), the harmonic mean of precision and sensitivity."""
    from sklearn.metrics import f1_score as sk_f1_score

    t, p = _labels(y_true), _labels(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels, y_pred {p.size}")
    if t.size == 0:
        return float("nan")
    # labels=[positive], average=None: the positive class's one-vs-rest F1 even when it never occurs
    return float(sk_f1_score(t, p, labels=[positive], average=None, zero_division=np.nan)[0])


def balanced_accuracy(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Mean of the per-class sensitivities (binary: (sensitivity + specificity)/2, as COVID-XNet reports)."""
    return _balanced_from_cm(confusion_matrix(y_true, y_pred))


def _binary_scores(y_true: npt.ArrayLike, y_score: npt.ArrayLike, positive: int) -> tuple[np.ndarray, np.ndarray]:
    t = _labels(y_true) == positive
    s = np.asarray(y_score, dtype=float).reshape(-1)
    if s.shape != t.shape:
        raise ValueError(f"{t.size} labels but {s.size} scores; pass one score per case (P(positive))")
    if np.isnan(s).any():
        raise ValueError("y_score contains NaN")
    return t, s


def roc_curve(
    y_true: npt.ArrayLike, y_score: npt.ArrayLike, *, positive: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) of the ROC curve; ``thresholds`` decreasing, the first ``inf`` (nothing positive).

    A case is called positive when its score is ``>= threshold``. ``y_score`` (N,) is P(positive).
    """
    t, s = _binary_scores(y_true, y_score, positive)
    if t.all() or not t.any():
        raise ValueError("ROC needs both positive and negative cases")
    from sklearn.metrics import roc_curve as sk_roc_curve

    # drop_intermediate=False keeps every distinct score as a threshold (operating points and Youden's cut read
    # them); scikit-learn's first threshold is inf, its rule ``score >= threshold`` (tests/metrics pin both)
    fpr, tpr, thresholds = sk_roc_curve(t, s, drop_intermediate=False)
    return fpr, tpr, thresholds


def roc_auc(y_true: npt.ArrayLike, y_score: npt.ArrayLike, *, positive: int = 1) -> float:
    """Area under the ROC curve (the Mann–Whitney probability that a positive outscores a negative; ties 1/2)."""
    from sklearn.metrics import roc_auc_score

    t, s = _binary_scores(y_true, y_score, positive)
    if t.all() or not t.any():
        raise ValueError("ROC AUC needs both positive and negative cases")
    return float(roc_auc_score(t, s))


def negative_predictive_value(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, positive: int = 1) -> float:
    """TN / (TN + FN): the fraction of negative calls that are truly negative (NPV)."""
    _, _, fn, tn = _binary_cm(y_true, y_pred, positive)
    return float(_ratio(tn, tn + fn))


def operating_point(
    y_true: npt.ArrayLike, y_score: npt.ArrayLike, threshold: float, *, positive: int = 1
) -> dict[str, float]:
    """Counts and rates of the binary decision ``y_score >= threshold`` (the rule of :func:`roc_curve`).

    Returns ``threshold``, ``tp``, ``fp``, ``fn``, ``tn``, ``sensitivity``, ``specificity``, ``ppv`` (precision),
    ``npv``, ``f1``, ``accuracy``, ``balanced_accuracy``; ``nan`` where a denominator is 0.

    Example::

        >>> operating_point([1, 1, 0, 0], [0.9, 0.4, 0.6, 0.1], 0.5)["sensitivity"]
        0.5
    """
    t, s = _binary_scores(y_true, y_score, positive)
    called = s >= float(threshold)
    tp, fp = int(np.sum(t & called)), int(np.sum(~t & called))
    fn, tn = int(np.sum(t & ~called)), int(np.sum(~t & ~called))
    sens, spec = float(_ratio(tp, tp + fn)), float(_ratio(tn, tn + fp))
    return {
        "threshold": float(threshold),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "sensitivity": sens,
        "specificity": spec,
        "ppv": float(_ratio(tp, tp + fp)),
        "npv": float(_ratio(tn, tn + fn)),
        "f1": float(_ratio(2 * tp, 2 * tp + fp + fn)),
        "accuracy": float(_ratio(tp + tn, t.size)),
        "balanced_accuracy": (sens + spec) / 2,
    }


def _cut(thresholds: np.ndarray, i: int) -> float:
    """The threshold between ROC point ``i`` and the next: midway between the lowest score called positive at ``i``
    and the next lower distinct score, so the decision on the data it was chosen on is that of point ``i``, and
    a new score is not decided by which side of an observed score it falls on."""
    if i == 0:  # nothing positive: just above the highest score
        return float(np.nextafter(thresholds[1], np.inf))
    if i == len(thresholds) - 1:  # everything positive
        return float(thresholds[i])
    return float((thresholds[i] + thresholds[i + 1]) / 2)


def youden_threshold(y_true: npt.ArrayLike, y_score: npt.ArrayLike, *, positive: int = 1) -> float:
    """The threshold maximizing Youden's J = sensitivity + specificity − 1 on these data.

    Among ROC points with the same largest J the one with the highest threshold (fewest positive calls) is taken;
    the returned threshold lies midway between its lowest positive score and the next lower score (see
    :func:`operating_point` for the rule ``score >= threshold``).

    Example::

        >>> youden_threshold([0, 0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4, 0.8])  # J = 2/3 calling 0.3 and up positive
        0.25
    """
    fpr, tpr, thresholds = roc_curve(y_true, y_score, positive=positive)
    return _cut(thresholds, int(np.argmax(tpr - fpr)))


def sensitivity_threshold(y_true: npt.ArrayLike, y_score: npt.ArrayLike, target: float, *, positive: int = 1) -> float:
    """The highest threshold whose sensitivity on these data is at least ``target`` (so the best specificity at
    that sensitivity); placed midway to the next lower score as in :func:`youden_threshold`.

    Example::

        >>> round(sensitivity_threshold([0, 0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4, 0.8], 0.5), 9)  # 0.8 alone: 1 of 2
        0.6
    """
    if not 0 < target <= 1:
        raise ValueError(f"target sensitivity must be in (0, 1], got {target}")
    _, tpr, thresholds = roc_curve(y_true, y_score, positive=positive)
    return _cut(thresholds, int(np.argmax(tpr >= target - 1e-12)))


# ----------------------------------------------------------------------------------------------- calibration


def _probabilities_of_positive(y_true, y_prob, positive):
    t, p = _binary_scores(y_true, y_prob, positive)
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(f"probabilities must be in [0, 1], found {p.min():.4g}..{p.max():.4g}")
    return t, p


def brier_score(y_true: npt.ArrayLike, y_prob: npt.ArrayLike, *, positive: int = 1) -> float:
    """Mean squared difference between P(positive) and the outcome (1 positive, 0 not); 0 is perfect, 0.25 is a
    constant 0.5.

    Example::

        >>> brier_score([1, 0], [0.8, 0.4])  # ((0.2)² + (0.4)²) / 2
        0.1
    """
    t, p = _probabilities_of_positive(y_true, y_prob, positive)
    if not t.size:
        raise ValueError("brier_score needs at least one case")
    return float(np.mean((p - t) ** 2))


def reliability_curve(
    y_true: npt.ArrayLike, y_prob: npt.ArrayLike, *, n_bins: int = 10, positive: int = 1
) -> dict[str, np.ndarray]:
    """Observed frequency of the positive class against the mean predicted probability, in equal-width bins.

    Binning: ``n_bins`` bins of width 1/n_bins over [0, 1]; bin k holds probabilities in [k/n, (k+1)/n), the last
    bin also 1.0. Returns ``edges`` (n_bins + 1), ``count``, ``mean_predicted`` and ``observed`` (both ``nan`` for
    an empty bin), one entry per bin.
    """
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins}")
    n_bins = int(n_bins)
    t, p = _probabilities_of_positive(y_true, y_prob, positive)
    k = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(k, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(k, weights=p, minlength=n_bins) / count
        observed = np.bincount(k, weights=t.astype(float), minlength=n_bins) / count
    return {"edges": np.linspace(0.0, 1.0, n_bins + 1), "count": count, "mean_predicted": mean_p, "observed": observed}


def expected_calibration_error(
    y_true: npt.ArrayLike, y_prob: npt.ArrayLike, *, n_bins: int = 10, positive: int = 1
) -> float:
    """ECE = Σ_k (n_k / N) · |observed_k − mean_predicted_k| over the bins of :func:`reliability_curve`.

    This is the ECE of P(positive) (equal-width bins over [0, 1]), not the "confidence" ECE of the top label;
    the two differ for binary problems.

    Example::

        >>> round(expected_calibration_error([1, 0, 1, 1], [0.95, 0.15, 0.85, 0.05], n_bins=2), 9)  # (2·0.4 + 2·0.1)/4
        0.25
    """
    curve = reliability_curve(y_true, y_prob, n_bins=n_bins, positive=positive)
    n = curve["count"].sum()
    if n == 0:
        raise ValueError("expected_calibration_error needs at least one case")
    used = curve["count"] > 0
    gaps = np.abs(curve["observed"][used] - curve["mean_predicted"][used])
    return float(np.sum(curve["count"][used] * gaps) / n)


# ----------------------------------------------------------------------------------------------- intervals


def thesis_ci(value: npt.ArrayLike, n: npt.ArrayLike, *, z: float = 1.96) -> float | np.ndarray:
    """The thesis' 95% CI half-width ``r = z √(m (1 − m) / N)`` (its eq. 8; ``z`` = 1.96 as there).

    ``value`` is a proportion in [0, 1] (not a percentage), ``n`` the number of test cases; arrays broadcast.
    The thesis reports ``m ± r``. Which N it used differs between tables: the total test set in study II (e.g.
    Tables 8–10), the class's own cases for the per-class rows of study I (Table 4).
    """
    value = np.asarray(value, dtype=float)
    if np.any((value < 0) | (value > 1)):
        raise ValueError(f"thesis_ci needs proportions in [0, 1], got {value}")
    n = np.asarray(n, dtype=float)
    if np.any(n <= 0):
        raise ValueError(f"n must be positive, got {n}")
    r = z * np.sqrt(value * (1.0 - value) / n)
    return float(r) if r.ndim == 0 else r


def bootstrap_ci(
    metric: Callable[..., float],
    *arrays: npt.ArrayLike,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int | None = 0,
    groups: npt.ArrayLike | None = None,
) -> tuple[float, float, float]:
    """Percentile bootstrap CI of ``metric(*arrays)``: ``(estimate, low, high)``.

    Cases (the first axis of every array) are resampled with replacement ``n_resamples`` times; with ``groups``
    (e.g. patient ids) whole groups are resampled, which keeps correlated images of one patient together.
    Resamples on which the metric is undefined (``nan``, e.g. AUC of a one-class resample) are dropped; if more
    than half are, a ValueError says so.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("every array must have the same number of cases")
    estimate = float(metric(*arrays))
    rng = np.random.default_rng(seed)
    if groups is None:
        index_sets = None
    else:
        groups = np.asarray(groups)
        if len(groups) != n:
            raise ValueError(f"{len(groups)} group ids for {n} cases")
        _, codes = np.unique(groups, return_inverse=True)
        index_sets = [np.flatnonzero(codes == g) for g in range(codes.max() + 1)]
    values = []
    for _ in range(int(n_resamples)):
        if index_sets is None:
            idx = rng.integers(0, n, n)
        else:
            idx = np.concatenate([index_sets[g] for g in rng.integers(0, len(index_sets), len(index_sets))])
        try:
            v = float(metric(*(a[idx] for a in arrays)))
        except ValueError:
            v = float("nan")
        values.append(v)
    values = np.asarray(values)
    ok = values[np.isfinite(values)]
    if ok.size < 0.5 * len(values):
        raise ValueError(f"the metric is undefined on {len(values) - ok.size} of {len(values)} resamples")
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(ok, [alpha, 1.0 - alpha])
    return estimate, float(low), float(high)


def auc_ci(
    y_true: npt.ArrayLike,
    y_score: npt.ArrayLike,
    *,
    positive: int = 1,
    groups: npt.ArrayLike | None = None,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """ROC AUC with a normal-approximation CI from DeLong's variance: ``(auc, low, high)``, clipped to [0, 1].

    With ``groups`` (patient or image ids) the variance is Obuchowski's clustered generalization of DeLong's
    (Biometrics 53:567, 1997): each group contributes the summed placement values of its positive and of its
    negative cases, so correlated cases of one patient are not counted as independent evidence. Without groups
    every case is its own cluster and this is DeLong et al. (1988).

    Prefer it to :func:`bootstrap_ci` with ``groups`` for the AUC: a cluster bootstrap that draws a group twice
    also compares that group's positive with its own negative *across the copies*, which weighs the within-group
    comparisons about twice as much as the sample does and shifts the bootstrap distribution (on paired cases
    scored almost alike, enough to exclude the estimate from the percentile interval).
    """
    from scipy.stats import norm, rankdata

    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    t, s = _binary_scores(y_true, y_score, positive)
    pos, neg = s[t], s[~t]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise ValueError("ROC AUC needs both positive and negative cases")
    # Placement values via ranks (ties 1/2): v10[i] = P(pos_i > a negative), v01[j] = P(a positive > neg_j).
    r_all = rankdata(s)
    v10 = (r_all[t] - rankdata(pos)) / n
    v01 = 1.0 - (r_all[~t] - rankdata(neg)) / m
    auc = float(v10.mean())
    if groups is None:
        var = np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n if m > 1 and n > 1 else float("nan")
    else:
        groups = np.asarray(groups)
        if len(groups) != len(t):
            raise ValueError(f"{len(groups)} group ids for {len(t)} cases")
        _, codes = np.unique(groups, return_inverse=True)
        k = int(codes.max()) + 1
        if k < 2:
            raise ValueError("a clustered AUC interval needs at least two groups")
        m_i = np.bincount(codes[t], minlength=k)
        n_i = np.bincount(codes[~t], minlength=k)
        a = np.bincount(codes[t], weights=v10, minlength=k) - m_i * auc
        b = np.bincount(codes[~t], weights=v01, minlength=k) - n_i * auc
        scale = k / (k - 1)
        var = scale * ((a @ a) / m**2 + (b @ b) / n**2 + 2 * (a @ b) / (m * n))
    half = float(norm.ppf(0.5 + level / 2) * np.sqrt(var))
    return auc, max(0.0, auc - half), min(1.0, auc + half)


# ----------------------------------------------------------------------------------------------- report


class ClassificationReport(NamedTuple):
    """``table``: the printable table; ``metrics``: the same numbers as a dict (see :func:`classification_report`)."""

    table: str
    metrics: dict


_REPORT_COLUMNS = ("accuracy", "precision", "sensitivity", "f1", "specificity", "auc")


def _probabilities(y_prob: npt.ArrayLike, n_labels: int) -> np.ndarray:
    p = np.asarray(y_prob, dtype=float)
    if p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1):
        if n_labels != 2:
            raise ValueError(f"one score per case means a binary task, but {n_labels} labels were given")
        p = p.reshape(-1)
        p = np.stack([1.0 - p, p], axis=1)
    if p.ndim != 2 or p.shape[1] != n_labels:
        raise ValueError(f"y_prob must be (N, {n_labels}) (or (N,) for binary), got {np.asarray(y_prob).shape}")
    if np.isnan(p).any():
        raise ValueError("y_prob contains NaN")
    return p


def classification_report(
    y_true: npt.ArrayLike,
    y_prob: npt.ArrayLike,
    labels: Sequence[str],
    *,
    threshold: float | None = None,
    ci: str | None = "thesis",
    ci_n: str = "total",
    n_resamples: int = 1000,
    seed: int | None = 0,
    digits: int = 2,
) -> ClassificationReport:
    """Per-class and overall metrics with 95% CIs, laid out like the thesis' tables (values in %).

    Args:
        y_true: integer labels (N,) or one-hot (N, C), indices into ``labels``.
        y_prob: class probabilities (N, C); for a binary sigmoid head (N,) or (N, 1) = P(``labels[1]``).
        labels: class names, in index order (CXR-Net: ``["positive", "negative"]``).
        threshold: binary only: call ``labels[1]`` when P(``labels[1]``) ``>= threshold``; default argmax
            (equivalent to 0.5 up to ties).
        ci: ``"thesis"`` (eq. 8 half-widths), ``"bootstrap"`` (percentile intervals over cases) or None.
        ci_n: N of the thesis formula: ``"total"`` (all cases, the thesis' study II) or ``"class"`` (the class's
            cases for per-class rows, study I).
        n_resamples, seed: bootstrap settings.
        digits: decimals of the percentages in the table.

    Returns:
        ``(table, metrics)``. ``metrics[label]`` and ``metrics["overall"]`` map each of accuracy (one-vs-rest),
        precision, sensitivity, f1, specificity, auc (one-vs-rest ROC AUC) to a proportion, and ``<name>_ci`` to a
        ``(low, high)`` pair when ``ci`` is set; ``"support"`` counts the class's cases. The overall row is the
        support-weighted average of the class rows (thesis eq. 17). ``metrics`` also holds ``"accuracy"`` (fraction
        correct), ``"balanced_accuracy"``, ``"confusion_matrix"`` (rows true, columns predicted), ``"labels"``,
        ``"n"`` and ``"ci"``.
    """
    labels = [str(label) for label in labels]
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ValueError(f"labels must be at least two distinct names, got {labels}")
    if ci not in ("thesis", "bootstrap", None):
        raise ValueError(f"ci must be 'thesis', 'bootstrap' or None, got {ci!r}")
    if ci_n not in ("total", "class"):
        raise ValueError(f"ci_n must be 'total' or 'class', got {ci_n!r}")
    k = len(labels)
    t = _labels(y_true, k)
    p = _probabilities(y_prob, k)
    if len(p) != len(t):
        raise ValueError(f"{len(t)} labels but {len(p)} probability rows")
    if threshold is not None:
        if k != 2:
            raise ValueError("threshold applies to binary tasks only")
        pred = (p[:, 1] >= threshold).astype(np.int64)
    else:
        pred = np.argmax(p, axis=1)

    def rows(t_: np.ndarray, p_: np.ndarray, pred_: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        per = per_class_metrics(confusion_matrix(t_, pred_, n_classes=k))
        auc = []
        for c in range(k):
            try:
                auc.append(roc_auc(t_, p_[:, c], positive=c))
            except ValueError:
                auc.append(float("nan"))
        per["auc"] = np.asarray(auc)
        overall = {m: weighted_overall(per[m], per["support"]) for m in _REPORT_COLUMNS}
        return per, overall

    per, overall = rows(t, p, pred)
    n = len(t)
    metrics: dict = {"labels": labels, "n": n, "ci": ci}
    for c, label in enumerate(labels):
        metrics[label] = {"support": int(per["support"][c]), **{m: float(per[m][c]) for m in _REPORT_COLUMNS}}
    metrics["overall"] = {"support": n, **overall}

    if ci == "thesis":
        for c, label in enumerate(labels):
            n_ci = n if ci_n == "total" else max(int(per["support"][c]), 1)
            _add_thesis_ci(metrics[label], n_ci)
        _add_thesis_ci(metrics["overall"], n)
    elif ci == "bootstrap":

        def stat(c: int | None, m: str) -> Callable[[np.ndarray, np.ndarray, np.ndarray], float]:
            def f(t_: np.ndarray, p_: np.ndarray, pred_: np.ndarray) -> float:
                per_, overall_ = rows(t_, p_, pred_)
                return overall_[m] if c is None else per_[m][c]

            return f

        for c, key in [*enumerate(labels), (None, "overall")]:
            for m in _REPORT_COLUMNS:
                if np.isnan(metrics[key][m]):
                    metrics[key][f"{m}_ci"] = (float("nan"), float("nan"))
                    continue
                _, lo, hi = bootstrap_ci(stat(c, m), t, p, pred, n_resamples=n_resamples, seed=seed)
                metrics[key][f"{m}_ci"] = (lo, hi)

    cm = confusion_matrix(t, pred, n_classes=k)
    metrics["accuracy"] = accuracy(t, pred)
    metrics["balanced_accuracy"] = _balanced_from_cm(cm)
    metrics["confusion_matrix"] = cm.tolist()
    return ClassificationReport(_format_table(metrics, labels, digits), metrics)


def _balanced_from_cm(cm: npt.ArrayLike) -> float:
    """Mean per-class sensitivity of a confusion matrix (classes without cases left out)."""
    sens = per_class_metrics(cm)["sensitivity"]
    return float(np.nanmean(sens)) if np.isfinite(sens).any() else float("nan")


def _add_thesis_ci(row: dict, n: int) -> None:
    for m in _REPORT_COLUMNS:
        v = row[m]
        if np.isnan(v):
            row[f"{m}_ci"] = (float("nan"), float("nan"))
        else:
            r = thesis_ci(v, n)
            row[f"{m}_ci"] = (max(0.0, v - r), min(1.0, v + r))


def _format_table(metrics: dict, labels: list[str], digits: int) -> str:
    def cell(row: dict, m: str) -> str:
        v = row[m]
        if np.isnan(v):
            return "n/a"
        if m == "auc":
            text = f"{v:.3f}"
        else:
            text = f"{100 * v:.{digits}f}"
        lo_hi = row.get(f"{m}_ci")
        if lo_hi is None or np.isnan(lo_hi[0]):
            return text
        if m == "auc":
            return f"{text} [{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]"
        return f"{text} [{100 * lo_hi[0]:.{digits}f}, {100 * lo_hi[1]:.{digits}f}]"

    header = ["class", "support", *(m if m != "f1" else "f1-score" for m in _REPORT_COLUMNS)]
    body = [
        [
            key if key != "overall" else "overall (weighted)",
            str(metrics[key]["support"]),
            *(cell(metrics[key], m) for m in _REPORT_COLUMNS),
        ]
        for key in [*labels, "overall"]
    ]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in body]
    ci = metrics["ci"]
    note = "" if ci is None else f"; 95% CI {'by the thesis formula' if ci == 'thesis' else 'by bootstrap'}"
    lines.append(
        f"accuracy {100 * metrics['accuracy']:.{digits}f}%, balanced accuracy "
        f"{100 * metrics['balanced_accuracy']:.{digits}f}%, n = {metrics['n']} (values in %, AUC as a "
        f"fraction{note})"
    )
    return "\n".join(lines)
