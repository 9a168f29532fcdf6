"""evaluate_classification on arrays: the AUC and its DeLong interval by hand, held-out thresholds, calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cxrzoo.evaluation import calibration_split, cross_validated_calls, evaluate_classification

Z95 = 1.959963984540054


def _delong_by_hand(pos, neg):
    """DeLong et al. (1988) from its definition: ψ(x, y) = 1, ½, 0 for x >, =, < y; placement values V10, V01."""
    psi = np.array([[1.0 if x > y else 0.5 if x == y else 0.0 for y in neg] for x in pos])
    auc = psi.mean()
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    var = np.var(v10, ddof=1) / len(pos) + np.var(v01, ddof=1) / len(neg)
    return auc, var


def test_auc_and_delong_interval_by_hand():
    pos, neg = [0.9, 0.8, 0.4], [0.7, 0.5, 0.3, 0.2]
    # ψ rows: 0.9 beats all 4, 0.8 all 4, 0.4 beats 0.3 and 0.2 → V10 = 1, 1, 1/2, AUC = 5/6
    # V01 = 2/3, 2/3, 1, 1; S10 = 1/12, S01 = 1/27; var = S10/3 + S01/4 = 1/36 + 1/108 = 1/27
    auc, var = _delong_by_hand(pos, neg)
    assert auc == pytest.approx(5 / 6) and var == pytest.approx(1 / 27)
    y = [1] * 3 + [0] * 4
    result = evaluate_classification(y, pos + neg, folds=2, n_resamples=200)
    assert result["auc"]["value"] == pytest.approx(5 / 6)
    assert result["auc"]["low"] == pytest.approx(5 / 6 - Z95 * math.sqrt(1 / 27))
    assert result["auc"]["high"] == 1.0  # 5/6 + 0.377 clipped
    assert result["auc"]["method"] == "DeLong (1988)"


def test_delong_with_ties_matches_the_definition():
    rng = np.random.default_rng(0)
    pos = list(np.round(rng.uniform(0.3, 1.0, 9), 1))  # rounded: many ties
    neg = list(np.round(rng.uniform(0.0, 0.8, 12), 1))
    auc, var = _delong_by_hand(pos, neg)
    result = evaluate_classification([1] * 9 + [0] * 12, pos + neg, n_resamples=200, folds=3)
    assert result["auc"]["value"] == pytest.approx(auc)
    assert result["auc"]["low"] == pytest.approx(max(0.0, auc - Z95 * math.sqrt(var)))


def test_operating_points_at_the_paper_threshold():
    y = [1, 1, 1, 0, 0, 0, 0]
    s = [0.9, 0.6, 0.3, 0.7, 0.2, 0.1, 0.4]
    result = evaluate_classification(y, s, threshold=0.5, folds=2, n_resamples=300)
    p = result["paper_threshold"]
    assert (p["tp"], p["fp"], p["fn"], p["tn"]) == (2, 1, 1, 3)
    assert (p["sensitivity"], p["specificity"], p["ppv"], p["npv"]) == pytest.approx((2 / 3, 3 / 4, 2 / 3, 3 / 4))
    assert p["f1"] == pytest.approx(2 / 3)
    for rate in ("sensitivity", "specificity", "ppv", "npv", "f1"):
        low, high = p[f"{rate}_ci"]
        assert 0 <= low <= p[rate] <= high <= 1


def test_cross_validated_threshold_by_hand():
    y = [1, 1, 0, 0, 1, 1, 0, 0]
    s = [0.875, 0.625, 0.4375, 0.125, 0.75, 0.25, 0.375, 0.1875]  # binary fractions: exact midpoints
    fold = [0, 0, 0, 0, 1, 1, 1, 1]
    cv = cross_validated_calls(y, s, fold_of=fold)
    # fold 0 is called with Youden on fold 1 (0.75 P, 0.25 P, 0.375 N, 0.1875 N): J = 1/2 at 0.75 and at 0.25;
    # the higher one wins; cut midway to 0.375 → 0.5625 → fold 0 calls 0.875 and 0.625 positive: all right
    # fold 1 is called with Youden on fold 0: J = 1 calling 0.875 and 0.625 → cut midway to 0.4375 → 0.53125
    # → fold 1 calls 0.75 only
    assert cv["thresholds"] == [0.5625, 0.53125]
    assert cv["calls"].tolist() == [True, True, False, False, True, False, False, False]
    result = evaluate_classification(y, s, n_resamples=200, folds=2)
    assert result["data_threshold"]["selection"] == "cv"


def test_data_threshold_is_reported_out_of_fold_and_apart_from_the_apparent_numbers():
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(30), np.zeros(30)].astype(int)
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    patients = np.r_[np.arange(30), 100 + np.arange(30) // 2]  # negatives: two images per patient
    result = evaluate_classification(y, s, groups=patients, threshold=0.5, n_resamples=200)
    data = result["data_threshold"]
    cv = cross_validated_calls(y, s, patients, folds=5)
    assert data["fold_thresholds"] == pytest.approx(cv["thresholds"])
    calls = cv["calls"]
    assert data["metrics"]["tp"] == int(np.sum(calls & (y == 1)))
    assert data["metrics"]["tn"] == int(np.sum(~calls & (y == 0)))
    # no patient in two folds
    for p in np.unique(patients):
        assert len(set(cv["fold"][patients == p])) == 1
    # the all-data threshold and its in-sample numbers are kept apart from the reported ones
    assert data["apparent"]["threshold"] == pytest.approx(data["threshold"])
    assert data["metrics"]["threshold"] is None
    assert result["auc"]["method"].startswith("DeLong, clustered")
    assert result["n_patients"] == 45


def test_target_sensitivity_and_a_calibration_split():
    rng = np.random.default_rng(2)
    y = np.r_[np.ones(40), np.zeros(40)].astype(int)
    s = np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0, 1)
    part = calibration_split(y, fraction=0.5, seed=0)
    assert part.sum() == 40 and part[y == 1].sum() == 20
    result = evaluate_classification(
        y, s, threshold=0.5, selection="split", calibration=part, target_sensitivity=0.9, n_resamples=200
    )
    data = result["data_threshold"]
    assert data["rule"] == "sensitivity >= 0.9"
    from cxrzoo.metrics import operating_point, sensitivity_threshold

    t = sensitivity_threshold(y[part], s[part], 0.9)
    assert data["threshold"] == pytest.approx(t)
    assert data["apparent"]["sensitivity"] >= 0.9  # on the calibration split, by construction
    test = operating_point(y[~part], s[~part], t)
    assert data["metrics"]["sensitivity"] == pytest.approx(test["sensitivity"])
    assert (
        data["n_test"] == 40 and data["paper_threshold_on_test"]["tp"] == operating_point(y[~part], s[~part], 0.5)["tp"]
    )


def test_calibration_split_keeps_patients_together():
    y = np.array([1, 1, 0, 0, 0, 0, 1, 0, 0, 1])
    groups = np.array(["a", "a", "b", "b", "c", "d", "e", "f", "f", "g"])
    part = calibration_split(y, groups, fraction=0.5, seed=3)
    for g in np.unique(groups):
        assert len(set(part[groups == g])) == 1
    with pytest.raises(ValueError, match="two patients of each class"):
        calibration_split([1, 0, 0], fraction=0.5)


def test_calibration_numbers_and_their_absence_for_scores():
    y = [1, 0, 1, 1, 0, 0]
    p = [0.95, 0.15, 0.85, 0.05, 0.3, 0.6]
    result = evaluate_classification(y, p, n_bins=2, folds=2, n_resamples=200)
    from cxrzoo.metrics import brier_score, expected_calibration_error

    assert result["calibration"]["brier"] == pytest.approx(brier_score(y, p))
    assert result["calibration"]["ece"] == pytest.approx(expected_calibration_error(y, p, n_bins=2))
    logits = [3.0, -1.0, 2.0, -2.5, 0.1, 0.4]
    assert "not probabilities" in evaluate_classification(y, logits, folds=2, n_resamples=200)["calibration"]["note"]


def test_single_class_and_bad_input_are_clear_errors():
    with pytest.raises(ValueError, match="all 3 cases are positive"):
        evaluate_classification([1, 1, 1], [0.2, 0.4, 0.9])
    with pytest.raises(ValueError, match="all 2 cases are negative"):
        evaluate_classification([0, 0], [0.2, 0.4])
    with pytest.raises(ValueError, match="0/1"):
        evaluate_classification([0, 2], [0.2, 0.4])
    with pytest.raises(ValueError, match="NaN"):
        evaluate_classification([0, 1], [0.2, float("nan")])
    with pytest.raises(ValueError, match="3 labels but 2 scores"):
        evaluate_classification([0, 1, 1], [0.2, 0.4])
    with pytest.raises(ValueError, match="selection"):
        evaluate_classification([0, 1], [0.2, 0.4], selection="magic")


def test_too_few_patients_for_the_folds_is_a_clear_error():
    with pytest.raises(ValueError, match=r"3 patients cannot fill 5 folds; use fewer folds \(--folds\)"):
        evaluate_classification([1, 0, 1], [0.9, 0.2, 0.6], groups=["a", "b", "c"])
