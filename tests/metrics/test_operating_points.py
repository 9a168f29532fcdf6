"""Operating points, thresholds chosen on data, calibration and HD95, each against a hand computation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from cxrzoo import metrics as M

# ----------------------------------------------------------------------------------------------- operating points


def test_operating_point_by_hand():
    y = [1, 1, 1, 0, 0, 0, 0]
    s = [0.9, 0.6, 0.3, 0.7, 0.2, 0.1, 0.4]
    # at 0.5: called positive 0.9, 0.6 (true) and 0.7 (false); TP 2, FN 1, FP 1, TN 3
    op = M.operating_point(y, s, 0.5)
    assert (op["tp"], op["fn"], op["fp"], op["tn"]) == (2, 1, 1, 3)
    assert op["sensitivity"] == pytest.approx(2 / 3)
    assert op["specificity"] == pytest.approx(3 / 4)
    assert op["ppv"] == pytest.approx(2 / 3)
    assert op["npv"] == pytest.approx(3 / 4)
    assert op["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert op["accuracy"] == pytest.approx(5 / 7)
    # the rule is score >= threshold, as in roc_curve
    assert M.operating_point(y, s, 0.6)["tp"] == 2 and M.operating_point(y, s, 0.6000001)["tp"] == 1
    calls = (np.asarray(s) >= 0.5).astype(int)
    assert M.negative_predictive_value(y, calls) == pytest.approx(3 / 4)
    assert M.precision(y, calls) == pytest.approx(op["ppv"])


def test_operating_point_with_no_positive_call_has_undefined_ppv():
    op = M.operating_point([1, 0, 0], [0.2, 0.1, 0.3], 0.9)
    assert math.isnan(op["ppv"]) and op["f1"] == 0.0
    assert op["npv"] == pytest.approx(2 / 3)


def test_youden_threshold_by_hand():
    y = [0, 0, 1, 0, 1]
    s = [0.1, 0.2, 0.3, 0.4, 0.8]
    # thresholds 0.8: J = 1/2 - 0; 0.4: 1/2 - 1/3; 0.3: 1 - 1/3 = 2/3 (the largest); 0.2: 1 - 2/3
    # → positive from 0.3 up; the cut lies midway to the next lower score 0.2
    assert M.youden_threshold(y, s) == pytest.approx(0.25)
    j = {t: M.operating_point(y, s, t)["sensitivity"] + M.operating_point(y, s, t)["specificity"] - 1 for t in s}
    assert max(j.values()) == pytest.approx(2 / 3)
    # ties in J: the highest threshold (fewest positive calls)
    assert M.youden_threshold([1, 0, 1, 0], [0.9, 0.7, 0.5, 0.3]) == pytest.approx(0.8)


def test_youden_threshold_at_the_extremes():
    # a perfectly wrong score: J is 0 at both ends; the highest threshold calls nothing positive
    t = M.youden_threshold([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9])
    assert t > 0.9 and M.operating_point([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9], t)["tp"] == 0
    # every case positive is the best: the lowest score itself
    assert M.sensitivity_threshold([1, 0, 1], [0.2, 0.5, 0.9], 1.0) == pytest.approx(0.2)


def test_sensitivity_threshold_by_hand():
    y = [0, 0, 1, 0, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.9]
    # sensitivity 0.75 is first reached calling 0.6 and up positive (3 of 4); the cut is midway to 0.4
    assert M.sensitivity_threshold(y, s, 0.75) == pytest.approx(0.5)
    assert M.sensitivity_threshold(y, s, 0.7) == pytest.approx(0.5)
    assert M.sensitivity_threshold(y, s, 1.0) == pytest.approx(0.25)  # all four: from 0.3 up
    with pytest.raises(ValueError, match="target sensitivity"):
        M.sensitivity_threshold(y, s, 0.0)


# ----------------------------------------------------------------------------------------------- calibration


def test_brier_and_ece_by_hand():
    y = [1, 0, 1, 1]
    p = [0.95, 0.15, 0.85, 0.05]
    assert M.brier_score(y, p) == pytest.approx((0.05**2 + 0.15**2 + 0.15**2 + 0.95**2) / 4)
    # two bins: [0, 0.5) holds 0.15 (neg) and 0.05 (pos): observed 1/2, mean 0.10, gap 0.40
    #           [0.5, 1] holds 0.95 and 0.85 (both pos): observed 1, mean 0.90, gap 0.10
    assert M.expected_calibration_error(y, p, n_bins=2) == pytest.approx((2 * 0.40 + 2 * 0.10) / 4)
    curve = M.reliability_curve(y, p, n_bins=2)
    np.testing.assert_allclose(curve["edges"], [0, 0.5, 1])
    assert curve["count"].tolist() == [2, 2]
    np.testing.assert_allclose(curve["mean_predicted"], [0.10, 0.90])
    np.testing.assert_allclose(curve["observed"], [0.5, 1.0])


def test_reliability_bins_edges_and_empty_bins():
    curve = M.reliability_curve([1, 0, 1], [0.5, 0.0, 1.0], n_bins=4)
    # 0.0 in [0, .25); 0.5 in [.5, .75); 1.0 in the last bin
    assert curve["count"].tolist() == [1, 0, 1, 1]
    assert math.isnan(curve["observed"][1]) and math.isnan(curve["mean_predicted"][1])
    assert M.expected_calibration_error([1, 0, 1], [0.5, 0.0, 1.0], n_bins=4) == pytest.approx(0.5 / 3)


def test_calibration_rejects_non_probabilities():
    with pytest.raises(ValueError, match=r"probabilities must be in \[0, 1\]"):
        M.brier_score([1, 0], [1.2, 0.1])
    with pytest.raises(ValueError, match="n_bins"):
        M.reliability_curve([1, 0], [0.2, 0.1], n_bins=0)


# ----------------------------------------------------------------------------------------------- HD95


def _brute_force_hd(truth: np.ndarray, pred: np.ndarray, q: float) -> float:
    """Independent HD_q: boundary pixels by an explicit 4-neighbour test, all pairwise distances."""

    def boundary(mask):
        h, w = mask.shape
        points = []
        for i, j in itertools.product(range(h), range(w)):
            if mask[i, j]:
                neighbours = [(i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)]
                if any(not (0 <= a < h and 0 <= b < w) or not mask[a, b] for a, b in neighbours):
                    points.append((i, j))
        return np.array(points, float)

    a, b = boundary(truth), boundary(pred)
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    return max(np.percentile(d.min(axis=1), q), np.percentile(d.min(axis=0), q))


def test_hd95_by_hand():
    truth = np.zeros((12, 12), np.uint8)
    truth[0, :5] = 1
    pred = truth.copy()
    pred[10, 0] = 1  # one stray pixel 10 rows below
    # truth → pred: all 0. pred → truth: 0, 0, 0, 0, 0, 10; the 95th percentile (linear) sits at rank 4.75 → 7.5
    assert M.hausdorff_distance(truth, pred)[0] == pytest.approx(7.5)
    assert M.hausdorff_distance(truth, pred, percentile=100)[0] == pytest.approx(10.0)
    assert M.hausdorff_distance(pred, truth)[0] == pytest.approx(7.5)  # symmetric
    # single pixels 3 rows and 4 columns apart: 5
    a, b = np.zeros((8, 8), bool), np.zeros((8, 8), bool)
    a[0, 0], b[3, 4] = True, True
    assert M.hausdorff_distance(a, b)[0] == pytest.approx(5.0)


def test_hd95_matches_a_brute_force_computation():
    rng = np.random.default_rng(3)
    for _ in range(5):
        truth = np.zeros((20, 24), bool)
        pred = np.zeros((20, 24), bool)
        r, c = rng.integers(2, 10, 2)
        truth[r : r + rng.integers(3, 9), c : c + rng.integers(3, 12)] = True
        pred[r + 1 : r + rng.integers(4, 10), c - 1 : c + rng.integers(2, 12)] = True
        pred |= rng.random((20, 24)) > 0.97  # speckle
        assert M.hausdorff_distance(truth, pred)[0] == pytest.approx(_brute_force_hd(truth, pred, 95))


def test_hd95_empty_mask_conventions():
    empty = np.zeros((3, 4), np.uint8)
    some = empty.copy()
    some[1, 1] = 1
    assert M.hausdorff_distance(empty, empty)[0] == 0.0
    assert math.isnan(M.hausdorff_distance(empty, some)[0])
    assert M.hausdorff_distance(some, empty, one_empty="diagonal")[0] == pytest.approx(5.0)
    assert M.hausdorff_distance(some, empty, one_empty=99.0)[0] == 99.0
    stack = np.stack([empty, some])
    out = M.hausdorff_distance(stack, stack)
    assert out.tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="one_empty"):
        M.hausdorff_distance(some, empty, one_empty="max")


def test_dice_iou_by_hand_on_a_rectangle():
    truth = np.zeros((6, 6), np.uint8)
    pred = np.zeros((6, 6), bool)
    truth[1:3, 1:3] = 1  # 4 pixels
    pred[1:3, 1:4] = True  # 6 pixels: TP 4, FP 2
    assert M.dice_score(truth, pred)[0] == pytest.approx(8 / 10)
    assert M.iou_score(truth, pred)[0] == pytest.approx(4 / 6)
    # the two extra pixels are 1 away from the truth's boundary: pred → truth 0,0,0,0,1,1 → 95th pct 1
    assert M.hausdorff_distance(truth, pred)[0] == pytest.approx(1.0)
