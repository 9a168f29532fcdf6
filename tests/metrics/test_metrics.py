"""Metrics by hand, against the numbers the papers print, and their confidence intervals."""

from __future__ import annotations

import numpy as np
import pytest

from cxrzoo import metrics as M

# ----------------------------------------------------------------------------------------------- segmentation


def test_segmentation_scores_by_hand():
    truth = np.zeros((2, 4, 4), np.uint8)
    pred = np.zeros((2, 4, 4), np.float32)
    truth[0, :2, :2] = 1  # 4 true pixels
    pred[0, :2, :3] = 0.9  # 6 predicted: TP 4, FP 2, FN 0
    truth[1, 0, 0] = 1  # 1 true pixel, predicted nothing: TP 0, FP 0, FN 1
    pred[1] = 0.5  # exactly at the threshold: not foreground (p > 0.5)
    np.testing.assert_allclose(M.dice_score(truth, pred), [8 / 10, 0.0])
    np.testing.assert_allclose(M.iou_score(truth, pred), [4 / 6, 0.0])
    np.testing.assert_allclose(M.pixel_accuracy(truth, pred), [14 / 16, 15 / 16])
    # pooled: TP 4, FP 2, FN 1, TN 25
    assert M.dice_score(truth, pred, per_image=False) == pytest.approx(8 / 11)
    assert M.iou_score(truth, pred, per_image=False) == pytest.approx(4 / 7)
    assert M.pixel_accuracy(truth, pred, per_image=False) == pytest.approx(29 / 32)
    s = M.segmentation_scores(truth[..., None], pred[..., None])
    assert s["mean_dice"] == pytest.approx(0.4) and s["pooled_dice"] == pytest.approx(8 / 11)
    assert s["n_images"] == 2 and s["mean_pixel_accuracy"] == pytest.approx(29 / 32)


def test_empty_masks_and_perfect_predictions():
    empty = np.zeros((3, 5, 5), np.uint8)
    assert M.dice_score(empty, empty).tolist() == [1.0, 1.0, 1.0]
    assert np.isnan(M.iou_score(empty, empty, empty=np.nan)).all()
    full_pred = np.ones((3, 5, 5), np.float32)
    assert M.dice_score(empty, full_pred).tolist() == [0.0, 0.0, 0.0]  # false alarms on an empty truth
    truth = (np.random.default_rng(0).random((3, 5, 5)) > 0.5).astype(np.uint8)
    assert M.dice_score(truth, truth.astype(bool)).tolist() == [1.0, 1.0, 1.0]
    assert M.pixel_accuracy(truth, truth.astype(np.float32), per_image=False) == 1.0


def test_segmentation_metrics_are_symmetric_on_binary_masks():
    rng = np.random.default_rng(1)
    a, b = (rng.random((4, 6, 6)) > 0.5), (rng.random((4, 6, 6)) > 0.5)
    for fn in (M.dice_score, M.iou_score, M.pixel_accuracy):
        np.testing.assert_allclose(fn(a.astype(np.uint8), b), fn(b.astype(np.uint8), a))


def test_segmentation_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="binary mask"):
        M.dice_score(np.full((1, 3, 3), 255, np.uint8), np.zeros((1, 3, 3)))
    with pytest.raises(ValueError, match="shapes differ"):
        M.dice_score(np.zeros((1, 3, 3)), np.zeros((1, 3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        M.iou_score(np.zeros((1, 3, 3)), np.full((1, 3, 3), np.nan))


# ----------------------------------------------------------------------------------------------- classification

# COVID-XNet (paper 004) Table 1, fold 1: Normal 851 | 16, COVID-19 17 | 499 (rows true, columns predicted);
# printed: sensitivity 96.71%, specificity 98.15%, precision 96.89%, F1 96.8%, balanced accuracy 97.43%.
XNET_FOLD1 = np.array([[851, 16], [17, 499]])


def _labels_from_cm(cm):
    t, p = [], []
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            t += [i] * int(cm[i, j])
            p += [j] * int(cm[i, j])
    return np.array(t), np.array(p)


def test_binary_metrics_reproduce_covid_xnet_fold1():
    t, p = _labels_from_cm(XNET_FOLD1)
    np.testing.assert_array_equal(M.confusion_matrix(t, p), XNET_FOLD1)
    assert round(100 * M.sensitivity(t, p), 2) == 96.71
    assert round(100 * M.specificity(t, p), 2) == 98.15
    assert round(100 * M.precision(t, p), 2) == 96.89
    assert round(100 * M.f1_score(t, p), 1) == 96.8
    assert round(100 * M.balanced_accuracy(t, p), 2) == 97.43


def test_covid_cxnet_confusion_matrix_gives_its_accuracy_and_f1():
    # paper 001 Table 3: Normal 641 | 4, COVID-19 3 | 78 → accuracy 99.04%, F-score 0.96
    t, p = _labels_from_cm(np.array([[641, 4], [3, 78]]))
    assert round(100 * M.accuracy(t, p), 2) == 99.04
    assert round(M.f1_score(t, p), 2) == 0.96


def test_per_class_metrics_by_hand_and_one_hot_input():
    cm = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 4]])  # N = 16
    per = M.per_class_metrics(cm)
    np.testing.assert_array_equal(per["support"], [6, 6, 4])
    np.testing.assert_allclose(per["precision"], [5 / 7, 3 / 4, 4 / 5])
    np.testing.assert_allclose(per["sensitivity"], [5 / 6, 3 / 6, 4 / 4])
    np.testing.assert_allclose(per["specificity"], [8 / 10, 9 / 10, 11 / 12])
    np.testing.assert_allclose(per["accuracy"], [13 / 16, 12 / 16, 15 / 16])
    np.testing.assert_allclose(per["f1"], [10 / 13, 6 / 10, 8 / 9])
    t, p = _labels_from_cm(cm)
    np.testing.assert_array_equal(M.confusion_matrix(np.eye(3)[t], np.eye(3)[p]), cm)
    # a class never predicted has an undefined precision, not a silent 0
    assert np.isnan(M.per_class_metrics(np.array([[3, 0], [2, 0]]))["precision"][1])


def test_weighted_overall_reproduces_the_thesis_table10_inceptionv4_row():
    # thesis Table 10 (InceptionV4), classes Normal, COVID-19, non-COVID; test supports from its Table 2
    support = [2140, 2395, 2253]
    assert round(M.weighted_overall([91.12, 91.52, 93.21], support), 2) == 91.95  # sensitivity
    assert round(M.weighted_overall([94.27, 94.84, 94.80], support), 2) == 94.65  # accuracy
    assert round(M.weighted_overall([90.74, 93.72, 91.30], support), 2) == 91.98  # precision


def test_roc_auc_by_hand_with_ties():
    y = np.array([0, 0, 1, 1])
    assert M.roc_auc(y, [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # one tie between a positive and a negative counts 1/2: pairs (+0.4 vs −0.4) → (3 + 0.5)/4
    assert M.roc_auc(y, [0.1, 0.4, 0.4, 0.8]) == pytest.approx(0.875)
    assert M.roc_auc(y, [0.9, 0.8, 0.2, 0.1]) == 0.0
    with pytest.raises(ValueError, match="both positive and negative"):
        M.roc_auc([1, 1], [0.2, 0.3])


def test_roc_curve_area_equals_the_rank_auc():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) + 0.5 * y, 2)  # rounded: plenty of ties
    fpr, tpr, thr = M.roc_curve(y, s)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1 and np.isinf(thr[0])
    assert np.all(np.diff(thr) < 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(M.roc_auc(y, s), abs=1e-12)


# ----------------------------------------------------------------------------------------------- intervals


@pytest.mark.parametrize(
    "value,n,printed",
    [
        (0.9863, 1166, 0.67),  # Table 8, U-Net ResNet18 sensitivity 98.63 ± 0.67 (N = test set)
        (0.9889, 1166, 0.60),  # Table 8, accuracy 98.89 ± 0.6
        (0.8949, 6788, 0.73),  # Table 10, ResNet18 Normal sensitivity 89.49 ± 0.73 (N = whole test set)
        (0.9195, 6788, 0.65),  # Table 10, InceptionV4 overall sensitivity 91.95 ± 0.65
        (0.8827, 423, 3.07),  # Table 4, SqueezeNet COVID-19 accuracy 88.27 ± 3.07 (N = the class's 423 cases)
        (0.7209, 144, 7.33),  # Table 4, SqueezeNet MERS sensitivity 72.09 ± 7.33 (N = 144 MERS cases)
        (0.9502, 701, 1.61),  # Table 4, ResNet18 overall accuracy 95.02 ± 1.61 (N = 701)
    ],
)
def test_thesis_ci_reproduces_the_printed_half_widths(value, n, printed):
    assert round(100 * M.thesis_ci(value, n), 2) == pytest.approx(printed, abs=0.011)


def test_thesis_ci_validates_and_broadcasts():
    np.testing.assert_allclose(M.thesis_ci(np.array([0.5, 0.9]), 100), 1.96 * np.sqrt([0.0025, 0.0009]))
    assert M.thesis_ci(1.0, 10) == 0.0
    with pytest.raises(ValueError, match="proportions"):
        M.thesis_ci(95.0, 100)
    with pytest.raises(ValueError, match="positive"):
        M.thesis_ci(0.5, 0)


def test_bootstrap_ci_agrees_with_the_normal_approximation_for_a_proportion():
    rng = np.random.default_rng(3)
    correct = (rng.random(2000) < 0.9).astype(float)
    est, lo, hi = M.bootstrap_ci(np.mean, correct, n_resamples=1000, seed=0)
    assert est == pytest.approx(correct.mean()) and lo < est < hi
    r = M.thesis_ci(est, len(correct))
    assert (hi - lo) / 2 == pytest.approx(r, rel=0.15)
    assert M.bootstrap_ci(np.mean, correct, n_resamples=200, seed=5) == M.bootstrap_ci(
        np.mean, correct, n_resamples=200, seed=5
    )


def test_bootstrap_by_group_is_wider_for_correlated_cases():
    # 40 patients × 10 identical images: resampling images pretends to have 400 independent cases
    rng = np.random.default_rng(4)
    per_patient = (rng.random(40) < 0.7).astype(float)
    values, groups = np.repeat(per_patient, 10), np.repeat(np.arange(40), 10)
    _, lo_i, hi_i = M.bootstrap_ci(np.mean, values, n_resamples=500)
    _, lo_g, hi_g = M.bootstrap_ci(np.mean, values, n_resamples=500, groups=groups)
    assert (hi_g - lo_g) > 2 * (hi_i - lo_i)


def test_bootstrap_refuses_a_mostly_undefined_metric():
    # undefined unless every resampled case is the same one, which practically never happens
    def only_constant(v):
        return 1.0 if v.std() == 0 else float("nan")

    with pytest.raises(ValueError, match="undefined"):
        M.bootstrap_ci(only_constant, np.arange(10.0), n_resamples=50)


# ----------------------------------------------------------------------------------------------- report


def test_classification_report_three_classes():
    rng = np.random.default_rng(5)
    t = rng.integers(0, 3, 120)
    prob = rng.dirichlet(np.ones(3), 120)
    prob[np.arange(80), t[:80]] += 2.0  # 80 cases clearly right
    prob /= prob.sum(1, keepdims=True)
    table, report = M.classification_report(t, prob, ["normal", "covid", "pneumonia"])
    pred = prob.argmax(1)
    per = M.per_class_metrics(M.confusion_matrix(t, pred, n_classes=3))
    assert report["covid"]["sensitivity"] == pytest.approx(per["sensitivity"][1])
    assert report["covid"]["auc"] == pytest.approx(M.roc_auc(t, prob[:, 1], positive=1))
    assert report["overall"]["f1"] == pytest.approx(M.weighted_overall(per["f1"], per["support"]))
    assert report["accuracy"] == pytest.approx(M.accuracy(t, pred))
    v = report["normal"]["precision"]
    assert report["normal"]["precision_ci"] == pytest.approx((v - M.thesis_ci(v, 120), v + M.thesis_ci(v, 120)))
    n_normal = report["normal"]["support"]
    _, by_class = M.classification_report(t, prob, ["normal", "covid", "pneumonia"], ci_n="class")
    assert by_class["normal"]["precision_ci"][1] == pytest.approx(min(1.0, v + M.thesis_ci(v, n_normal)))
    assert "overall (weighted)" in table and "pneumonia" in table and "thesis formula" in table
    assert report["confusion_matrix"] == M.confusion_matrix(t, pred, n_classes=3).tolist()


def test_classification_report_binary_sigmoid_scores_and_bootstrap():
    t = np.array([0] * 30 + [1] * 20)
    score = np.r_[np.linspace(0.0, 0.6, 30), np.linspace(0.4, 1.0, 20)]
    table, report = M.classification_report(
        t, score, ["negative", "positive"], threshold=0.5, ci="bootstrap", n_resamples=200
    )
    pred = (score >= 0.5).astype(int)
    assert report["positive"]["sensitivity"] == pytest.approx(M.sensitivity(t, pred))
    assert report["positive"]["specificity"] == pytest.approx(M.specificity(t, pred))
    assert report["positive"]["auc"] == pytest.approx(M.roc_auc(t, score))
    lo, hi = report["positive"]["sensitivity_ci"]
    assert lo <= report["positive"]["sensitivity"] <= hi and hi - lo > 0
    assert "bootstrap" in table


def test_classification_report_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        M.classification_report([0, 1], np.ones((2, 2)) / 2, ["a", "b", "c"])
    with pytest.raises(ValueError, match="NaN"):
        M.classification_report([0, 1], np.array([[np.nan, 1], [0.5, 0.5]]), ["a", "b"])
    with pytest.raises(ValueError, match="0..1"):
        M.classification_report([0, 2], np.ones((2, 2)) / 2, ["a", "b"])
    with pytest.raises(ValueError, match="binary"):
        M.classification_report([0, 1], [0.2, 0.9], ["a", "b", "c"])


# ----------------------------------------------------------------------------------------- clustered AUC interval


def _delong_by_pairs(t, s):
    """DeLong's variance from the full comparison matrix (the textbook definition, independent of auc_ci's ranks)."""
    pos, neg = s[t], s[~t]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), np.var(v10, ddof=1) / len(pos) + np.var(v01, ddof=1) / len(neg)


def test_auc_ci_without_groups_is_delong():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 80)
    s = np.round(rng.normal(size=80) + 0.8 * y, 1)  # rounded: ties too
    auc, var = _delong_by_pairs(y == 1, s)
    est, lo, hi = M.auc_ci(y, s)
    assert est == pytest.approx(auc) == pytest.approx(M.roc_auc(y, s))
    assert (hi - lo) / 2 == pytest.approx(M.Z95 * np.sqrt(var), rel=1e-9)


def _paired(rng, n, effect, noise=0.1):
    """n images, each a positive and a negative case scored almost alike (the model sees the image, barely the
    lesion): the clustered design of benchmarks/cv_ensemble.py."""
    base = rng.normal(size=n)
    y = np.r_[np.zeros(n, int), np.ones(n, int)]
    score = np.r_[base + effect + noise * rng.normal(size=n), base + noise * rng.normal(size=n)]
    return y, score, np.r_[np.arange(n), np.arange(n)]


def test_clustered_auc_ci_has_the_coverage_the_naive_one_lacks():
    # Monte Carlo: the spread of the AUC over many samples of paired cases is what the clustered standard error
    # must estimate; DeLong's, which treats the two cases of an image as independent, overstates it several-fold.
    rng = np.random.default_rng(0)
    aucs, clustered, naive = [], [], []
    for _ in range(300):
        y, s, g = _paired(rng, 60, 0.1)
        est, lo, hi = M.auc_ci(y, s, positive=0, groups=g)
        aucs.append(est)
        clustered.append((hi - lo) / (2 * M.Z95))
        _, lo, hi = M.auc_ci(y, s, positive=0)
        naive.append((hi - lo) / (2 * M.Z95))
    spread = np.std(aucs, ddof=1)
    assert np.mean(clustered) == pytest.approx(spread, rel=0.15)
    assert np.mean(naive) > 3 * spread


def test_grouped_bootstrap_of_the_auc_is_biased_where_the_clustered_interval_is_not():
    # Why auc_ci exists: drawing an image twice adds the comparisons between its copies' positive and negative,
    # which the sample holds once per image; the percentile interval then misses the estimate.
    y, s, g = _paired(np.random.default_rng(1), 60, 0.05, noise=0.0)  # every image's own pair ranked right
    auc = lambda t, x: M.roc_auc(t, x, positive=0)
    est, lo, hi = M.bootstrap_ci(auc, y, s, groups=g, n_resamples=500)
    assert not lo <= est <= hi
    est, lo, hi = M.auc_ci(y, s, positive=0, groups=g)
    assert lo < est < hi


def test_auc_ci_rejects_what_it_cannot_compute():
    with pytest.raises(ValueError, match="both positive and negative"):
        M.auc_ci([1, 1, 1], [0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="group ids"):
        M.auc_ci([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], groups=[0, 1])
    with pytest.raises(ValueError, match="two groups"):
        M.auc_ci([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], groups=[7, 7, 7, 7])
