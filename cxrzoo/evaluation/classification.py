"""Binary classification on arrays: discrimination, operating points, thresholds chosen on the data, calibration.

:func:`evaluate_classification` computes, for labels (1 = positive) and scores (P(positive)):

- ROC AUC with DeLong's interval, clustered by patient when ``groups`` are given (:func:`cxrzoo.metrics.auc_ci`);
- sensitivity, specificity, PPV, NPV and F1 at a given threshold (the paper's operating point), on every case;
- the same at a threshold chosen on the data (Youden's J, or the highest threshold reaching a target
  sensitivity), chosen on one part of the data and reported on another: by patient-grouped cross-validation
  (each case called with a threshold chosen without its patient; the out-of-fold calls pooled) or on a
  calibration split (reported on the test split, next to the paper's operating point on the same cases);
- calibration: Brier score, ECE (equal-width bins of P(positive)) and the reliability curve.

Intervals: the AUC's is DeLong's (normal approximation); every other interval is a percentile bootstrap
(:func:`cxrzoo.metrics.bootstrap_ci`) resampling patients (cases without ``groups``). For cross-validated numbers
each resample repeats the whole selection (every patient stays in its fold; the threshold is re-chosen in every
fold of every resample), so the interval includes the threshold's own uncertainty; for a calibration split the
threshold is held fixed and the test split is resampled.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from cxrzoo.data.splits import patient_kfold
from cxrzoo.metrics import (
    auc_ci,
    bootstrap_ci,
    brier_score,
    expected_calibration_error,
    operating_point,
    reliability_curve,
    roc_curve,
    sensitivity_threshold,
    youden_threshold,
)

#: Rates of an operating point that get bootstrap intervals.
RATES = ("sensitivity", "specificity", "ppv", "npv", "f1")


def _choose(y, s, target_sensitivity: float | None) -> float:
    if target_sensitivity is None:
        return youden_threshold(y, s)
    return sensitivity_threshold(y, s, target_sensitivity)


def _check(y_true, y_score, groups):
    y = np.asarray(y_true)
    if y.dtype != bool:
        values = np.unique(y)
        if not np.isin(values, (0, 1)).all():
            raise ValueError(f"y_true must be 0/1 (1 = positive) or bool, found values {values[:6]}")
    y = y.astype(bool).reshape(-1)
    s = np.asarray(y_score, dtype=float).reshape(-1)
    if s.shape != y.shape:
        raise ValueError(f"{y.size} labels but {s.size} scores")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{int(np.sum(~np.isfinite(s)))} scores are NaN or infinite")
    n_pos = int(y.sum())
    if n_pos in (0, y.size):
        kind = "positive" if n_pos else "negative"
        raise ValueError(
            f"all {y.size} cases are {kind}: AUC, sensitivity and specificity need both positive and negative "
            "cases (check the labels and --positive)"
        )
    if groups is None:
        codes = np.arange(y.size)
    else:
        groups = np.asarray(groups)
        if groups.shape != y.shape:
            raise ValueError(f"{groups.size} patient ids for {y.size} cases")
        _, codes = np.unique(groups, return_inverse=True)
    return y, s, codes


def _rates(op: dict) -> dict:
    return {k: op[k] for k in ("threshold", "tp", "fp", "fn", "tn", *RATES, "accuracy", "balanced_accuracy")}


def _intervals(target: dict, statistic, n: int, codes, *, n_resamples: int, level: float, seed: int) -> None:
    """Adds ``<rate>_ci`` = [low, high] (or None with a reason) to ``target`` for every rate in :data:`RATES`.

    ``statistic(idx)`` maps resampled case indices to a dict of rates; it is cached per resample so that the
    bootstrap of each rate reuses the same resamples (same seed) and the same (costly) selection."""
    cache: dict[bytes, dict | None] = {}

    def cached(idx):
        key = idx.tobytes()
        if key not in cache:
            try:
                cache[key] = statistic(idx)
            except ValueError:  # e.g. a resample whose training folds lack a class
                cache[key] = None
        return cache[key]

    for rate in RATES:

        def metric(idx, rate=rate):
            out = cached(idx)
            return float("nan") if out is None else out[rate]

        if not np.isfinite(target[rate]):
            target[f"{rate}_ci"] = None
            continue
        try:
            _, low, high = bootstrap_ci(
                metric, np.arange(n), n_resamples=n_resamples, level=level, seed=seed, groups=codes
            )
            target[f"{rate}_ci"] = [low, high]
        except ValueError as err:
            target[f"{rate}_ci"] = None
            target.setdefault("notes", []).append(f"no interval for {rate}: {err}")


def cross_validated_calls(
    y_true: npt.ArrayLike,
    y_score: npt.ArrayLike,
    groups: npt.ArrayLike | None = None,
    *,
    folds: int = 5,
    target_sensitivity: float | None = None,
    seed: int = 0,
    fold_of: npt.ArrayLike | None = None,
) -> dict[str, Any]:
    """Out-of-fold decisions: patient-grouped stratified folds (:func:`cxrzoo.data.patient_kfold`); in each, the
    threshold is chosen on the other folds and applied to this one.

    ``fold_of`` (a fold index per case) fixes the folds instead (the bootstrap keeps every patient in its fold).
    Returns ``calls`` (bool, one per case), ``fold`` (the fold of each case) and ``thresholds`` (one per fold).
    """
    y, s, codes = _check(y_true, y_score, groups)
    if fold_of is None:
        fold_of = np.zeros(y.size, np.int64)
        try:
            splits = patient_kfold(y.astype(np.int64), codes, n_splits=folds, seed=seed)
        except ValueError as err:
            raise ValueError(f"{err}; use fewer folds (--folds) or a calibration split (--selection split)") from None
        for k, (_, val) in enumerate(splits):
            fold_of[val] = k
    fold_of = np.asarray(fold_of)
    calls = np.zeros(y.size, bool)
    thresholds = []
    for k in range(int(fold_of.max()) + 1):
        val = fold_of == k
        if not val.any():  # a resample that drew no patient of this fold
            continue
        t = _choose(y[~val], s[~val], target_sensitivity)
        calls[val] = s[val] >= t
        thresholds.append(t)
    return {"calls": calls, "fold": fold_of, "thresholds": thresholds}


def calibration_split(
    y_true: npt.ArrayLike, groups: npt.ArrayLike | None = None, *, fraction: float = 0.5, seed: int = 0
) -> np.ndarray:
    """A patient-grouped split stratified by class: True for the cases of the calibration part.

    Patients are shuffled (seeded) within two strata (patients with any positive case, and the others); the first
    ``round(fraction · stratum size)`` patients of each stratum (at least one, and at least one left) calibrate.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"the calibration fraction must be in (0, 1), got {fraction}")
    y = np.asarray(y_true).astype(bool).reshape(-1)
    codes = np.arange(y.size) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    k = int(codes.max()) + 1
    any_pos = np.bincount(codes, weights=y.astype(float), minlength=k) > 0
    rng = np.random.default_rng(seed)
    chosen = np.zeros(k, bool)
    for stratum in (any_pos, ~any_pos):
        members = rng.permutation(np.flatnonzero(stratum))
        if members.size < 2:
            raise ValueError(
                f"a calibration split needs at least two patients of each class, found {members.size}; "
                "use cross-validation instead"
            )
        take = min(max(1, round(fraction * members.size)), members.size - 1)
        chosen[members[:take]] = True
    return chosen[codes]


def evaluate_classification(
    y_true: npt.ArrayLike,
    y_score: npt.ArrayLike,
    *,
    groups: npt.ArrayLike | None = None,
    threshold: float | None = None,
    target_sensitivity: float | None = None,
    selection: str = "cv",
    folds: int = 5,
    calibration: npt.ArrayLike | None = None,
    calibration_fraction: float = 0.5,
    n_bins: int = 10,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Discrimination, operating points and calibration of binary scores, as a JSON-ready dict.

    Args:
        y_true: 1/True = positive, 0/False = negative, one per case.
        y_score: P(positive) per case (any real score works for the AUC and the thresholds; calibration needs
            probabilities in [0, 1] and is skipped, with a note, otherwise).
        groups: patient id per case: clusters the AUC interval, groups the folds/split and the bootstrap.
        threshold: the paper's operating point (``score >= threshold`` is positive); None leaves it out.
        target_sensitivity: choose the data threshold as the highest one reaching this sensitivity; None: Youden.
        selection: ``"cv"`` (patient-grouped ``folds``-fold cross-validation) or ``"split"`` (choose on a
            calibration part, report on the rest).
        calibration: with ``selection="split"``, a bool per case (True = calibration part); None draws a
            patient-grouped stratified split of ``calibration_fraction`` (:func:`calibration_split`).
        n_bins: equal-width bins of the ECE and the reliability curve.
        n_resamples, level, seed: bootstrap settings (``seed`` also seeds the folds and the split).

    Returns:
        ``n``, ``n_positive``, ``n_negative``, ``n_patients``; ``auc`` (``value``, ``low``, ``high``,
        ``method``); ``paper_threshold`` (an operating point with ``<rate>_ci``; None without ``threshold``);
        ``data_threshold`` (``rule``, ``selection``, ``threshold`` chosen on all data for use on new data, the
        reported ``metrics`` on held-out cases with intervals, ``apparent`` in-sample numbers of the all-data
        threshold (optimistic, never the result), and per selection: ``fold_thresholds``, or ``n_calibration``,
        ``n_test`` and ``paper_threshold_on_test``); ``calibration`` (``brier``, ``ece`` and intervals,
        ``curve``); ``roc`` (``fpr``, ``tpr``, ``thresholds``).

    Example::

        result = evaluate_classification(labels, scores, groups=patients, threshold=0.5)
        result["auc"]["value"], result["data_threshold"]["metrics"]["sensitivity"]
    """
    if selection not in ("cv", "split"):
        raise ValueError(f"selection must be 'cv' or 'split', got {selection!r}")
    if target_sensitivity is not None and not 0 < target_sensitivity <= 1:
        raise ValueError(f"the target sensitivity must be in (0, 1], got {target_sensitivity}")
    y, s, codes = _check(y_true, y_score, groups)
    n = y.size
    boot = {"n_resamples": int(n_resamples), "level": level, "seed": seed}
    out: dict[str, Any] = {
        "n": n,
        "n_positive": int(y.sum()),
        "n_negative": int((~y).sum()),
        "n_patients": int(codes.max()) + 1,
        "patient_grouped": groups is not None,
        "level": level,
        "n_resamples": int(n_resamples),
    }

    auc, low, high = auc_ci(y, s, groups=None if groups is None else codes, level=level)
    out["auc"] = {
        "value": auc,
        "low": low,
        "high": high,
        "method": "DeLong, clustered by patient (Obuchowski 1997)" if groups is not None else "DeLong (1988)",
    }
    fpr, tpr, thr = roc_curve(y, s)
    out["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": [None, *thr[1:].tolist()]}

    def at(threshold_, idx_subset=None):
        def stat(idx):
            if idx_subset is not None:
                idx = idx_subset[idx]
            return operating_point(y[idx], s[idx], threshold_)

        return stat

    if threshold is not None:
        paper = _rates(operating_point(y, s, threshold))
        _intervals(paper, at(threshold), n, codes, **boot)
        out["paper_threshold"] = paper
    else:
        out["paper_threshold"] = None

    rule = "Youden's J" if target_sensitivity is None else f"sensitivity >= {target_sensitivity:g}"
    chosen = _choose(y, s, target_sensitivity)
    data: dict[str, Any] = {
        "rule": rule,
        "selection": selection,
        "threshold": chosen,
        "apparent": _rates(operating_point(y, s, chosen)),
    }
    if selection == "cv":
        cv = cross_validated_calls(y, s, codes, folds=folds, target_sensitivity=target_sensitivity, seed=seed)
        metrics = _rates(operating_point(y, cv["calls"].astype(float), 0.5))
        metrics["threshold"] = None  # one per fold

        fold_of_patient = np.zeros(out["n_patients"], np.int64)
        fold_of_patient[codes] = cv["fold"]

        def cv_stat(idx):  # the whole selection again on a resample, each patient staying in its fold
            res = cross_validated_calls(
                y[idx], s[idx], codes[idx], target_sensitivity=target_sensitivity, fold_of=fold_of_patient[codes[idx]]
            )
            return operating_point(y[idx], res["calls"].astype(float), 0.5)

        _intervals(metrics, cv_stat, n, codes, **boot)
        data.update(folds=int(folds), fold_thresholds=cv["thresholds"], metrics=metrics)
        data["evaluated_on"] = (
            f"out-of-fold: {folds}-fold cross-validation grouped by patient; each case called with a threshold "
            "chosen on the other folds"
        )
    else:
        part = (
            calibration_split(y, None if groups is None else codes, fraction=calibration_fraction, seed=seed)
            if calibration is None
            else np.asarray(calibration, bool).reshape(-1)
        )
        if part.shape != y.shape:
            raise ValueError(f"calibration has {part.size} entries for {n} cases")
        cal, test = np.flatnonzero(part), np.flatnonzero(~part)
        for name, idx in (("calibration", cal), ("test", test)):
            if y[idx].all() or not y[idx].any():
                raise ValueError(f"the {name} split needs positive and negative cases ({idx.size} cases)")
        shared_patients = np.intersect1d(codes[cal], codes[test])
        if shared_patients.size:
            raise ValueError(f"{shared_patients.size} patients are in both the calibration and the test split")
        t_cal = _choose(y[cal], s[cal], target_sensitivity)
        metrics = _rates(operating_point(y[test], s[test], t_cal))
        _intervals(metrics, at(t_cal, test), test.size, codes[test], **boot)
        data.update(threshold=t_cal, metrics=metrics, n_calibration=int(cal.size), n_test=int(test.size))
        data["apparent"] = _rates(operating_point(y[cal], s[cal], t_cal))
        data["evaluated_on"] = (
            f"the test split ({test.size} cases); the threshold was chosen on the calibration split "
            f"({cal.size} cases, no patient in both)"
        )
        if threshold is not None:
            on_test = _rates(operating_point(y[test], s[test], threshold))
            _intervals(on_test, at(threshold, test), test.size, codes[test], **boot)
            data["paper_threshold_on_test"] = on_test
    out["data_threshold"] = data

    if s.min() < 0 or s.max() > 1:
        out["calibration"] = {"note": f"scores span {s.min():.4g}..{s.max():.4g}, not probabilities: not computed"}
    else:
        curve = reliability_curve(y, s, n_bins=n_bins)
        calib: dict[str, Any] = {
            "brier": brier_score(y, s),
            "ece": expected_calibration_error(y, s, n_bins=n_bins),
            "n_bins": int(n_bins),
            "binning": f"{n_bins} equal-width bins of P(positive) over [0, 1]; ECE weights each bin by its cases",
            "curve": {
                k: [None if isinstance(v, float) and math.isnan(v) else v for v in curve[k].tolist()] for k in curve
            },
        }
        for name, fn in (("brier", brier_score), ("ece", lambda a, b: expected_calibration_error(a, b, n_bins=n_bins))):
            _, lo, hi = bootstrap_ci(fn, y, s, n_resamples=n_resamples, level=level, seed=seed, groups=codes)
            calib[f"{name}_ci"] = [lo, hi]
        out["calibration"] = calib
    return out
