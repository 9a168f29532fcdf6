"""evaluate(): results tables joined to labels and masks, its errors, and the files it writes."""

from __future__ import annotations

import csv
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrzoo.evaluation import evaluate, evaluate_segmentation, join_rows, read_mask, read_table
from cxrzoo.evaluation.tables import id_stem

SCORES = [0.9, 0.6, 0.3, 0.7, 0.2, 0.1, 0.4, 0.8, 0.35, 0.55]
LABELS = ["covid", "covid", "covid", "other", "other", "other", "other", "covid", "other", "covid"]


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def results_table(folder: Path, scores=SCORES, *, tag="cxrnet.hfhs_v7", name="predictions.csv", **extra) -> Path:
    rows = [
        {
            "path": f"images/case_{i:02d}.png",
            "sha256": f"{i:064x}",
            "tag": tag,
            "cxrzoo_version": "0.1.0",
            "p_covid": p,
            "p_non_covid": 1 - p,
            "lung_fraction": 0.3,
            "warnings": "",
            **{k: v[i] for k, v in extra.items()},
        }
        for i, p in enumerate(scores)
    ]
    return write_csv(folder / name, rows)


def labels_table(folder: Path, labels=LABELS, *, patients=None, name="labels.csv") -> Path:
    rows = [{"id": f"case_{i:02d}", "label": label} for i, label in enumerate(labels)]
    if patients is not None:
        for row, p in zip(rows, patients):
            row["patient"] = p
    return write_csv(folder / name, rows)


def test_evaluate_a_table_against_labels(tmp_path):
    pred, labels = results_table(tmp_path), labels_table(tmp_path, patients=list("aabcddefgh"))
    ev = evaluate(
        pred, labels=labels, patient_column="patient", positive="covid", threshold=0.5, n_resamples=200, folds=2
    )
    c = ev.metrics["classification"]
    y = np.array([label == "covid" for label in LABELS])
    s = np.array(SCORES)
    from cxrzoo.metrics import auc_ci, operating_point

    assert c["auc"]["value"] == pytest.approx(auc_ci(y, s)[0])
    assert c["n_patients"] == 8 and c["join"] == "stem" and c["score_column"] == "p_covid"
    op = operating_point(y, s, 0.5)
    assert {k: c["paper_threshold"][k] for k in ("tp", "fp", "fn", "tn")} == {
        k: op[k] for k in ("tp", "fp", "fn", "tn")
    }
    assert "## Classification" in ev.report and "p_covid >= threshold" in ev.report


def test_save_writes_every_file_atomically_with_the_usual_mode(tmp_path):
    pred, labels = results_table(tmp_path), labels_table(tmp_path)
    ev = evaluate(pred, labels=labels, positive="covid", threshold=0.5, n_resamples=200, folds=2)
    old = os.umask(0o022)
    try:
        written = ev.save(tmp_path / "out")
    finally:
        os.umask(old)
    names = sorted(p.name for p in written)
    assert names == ["confusion.png", "metrics.json", "reliability.png", "report.md", "roc.png"]
    assert sorted(os.listdir(tmp_path / "out")) == names  # no temporary files left
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["classification"]["auc"]["value"] == pytest.approx(ev.metrics["classification"]["auc"]["value"])
    assert (tmp_path / "out" / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_join_by_path_and_by_stem():
    j = join_rows(["a/x.png", "a/y.png"], ["y", "x"])
    assert j.how == "stem" and j.pairs == [(0, 1), (1, 0)]
    j = join_rows(["a/x.png", "b/x.png"], ["b/x.png", "a/x.png"])
    assert j.how == "path" and j.pairs == [(0, 1), (1, 0)]
    with pytest.raises(ValueError, match="2 rows of the labels match 'a/x.png' by stem"):
        join_rows(["a/x.png"], ["a/x.jpg", "b/x.png"], how="stem")
    assert id_stem("p1.scan2") == "p1.scan2" and id_stem("C:\\data\\x.DCM") == "x"


def test_unmatched_rows_are_an_error_naming_them(tmp_path):
    pred = results_table(tmp_path)
    labels = labels_table(tmp_path, LABELS[:7])
    with pytest.raises(ValueError, match=r"3 of 10 results have no row in the labels \('images/case_07.png'"):
        evaluate(pred, labels=labels, positive="covid", threshold=0.5)
    ev = evaluate(pred, labels=labels, positive="covid", threshold=0.5, allow_unmatched=True, n_resamples=200, folds=2)
    assert ev.metrics["classification"]["n"] == 7
    assert any("evaluated the matched rows only" in n for n in ev.metrics["classification"]["notes"])


def test_missing_columns_are_clear_errors(tmp_path):
    pred = results_table(tmp_path)
    write_csv(tmp_path / "nolabel.csv", [{"id": "case_00", "class": "covid"}])
    with pytest.raises(ValueError, match=r"no column 'label' \(columns: id, class\); name the label column"):
        evaluate(pred, labels=tmp_path / "nolabel.csv", positive="covid", threshold=0.5)
    with pytest.raises(ValueError, match="no column 'p_pneumonia'"):
        evaluate(pred, labels=labels_table(tmp_path), positive="covid", threshold=0.5, score_column="p_pneumonia")
    write_csv(tmp_path / "bare.csv", [{"file_name": "case_00.png", "p": 0.5}])
    with pytest.raises(ValueError, match="no column 'path'"):
        evaluate(tmp_path / "bare.csv", labels=labels_table(tmp_path))
    with pytest.raises(ValueError, match="patient column"):
        evaluate(pred, labels=labels_table(tmp_path), positive="covid", threshold=0.5, patient_column="patient")


def test_single_class_labels_and_unknown_positive_are_clear_errors(tmp_path):
    pred = results_table(tmp_path)
    with pytest.raises(ValueError, match="every row is labelled 'covid'"):
        evaluate(pred, labels=labels_table(tmp_path, ["covid"] * 10), positive="covid", threshold=0.5)
    with pytest.raises(ValueError, match="no label is 'COVID-19'"):
        evaluate(pred, labels=labels_table(tmp_path), positive="COVID-19", threshold=0.5, score_column="p_covid")
    # labels that match only one class after the join
    labels = labels_table(tmp_path, ["covid"] * 10 + ["other"])
    with pytest.raises(ValueError, match="all 10 cases are positive"):
        evaluate(pred, labels=labels, positive="covid", threshold=0.5, allow_unmatched=True)


def test_zero_one_labels_and_the_score_column(tmp_path):
    pred = results_table(tmp_path)
    labels = labels_table(tmp_path, [str(int(label == "covid")) for label in LABELS])
    with pytest.raises(ValueError, match=r"which column holds P\(1\)\? columns p_covid, p_non_covid"):
        _no_spec_evaluate(pred, labels)
    ev = evaluate(pred, labels=labels, threshold=0.5, score_column="p_covid", positive="1", n_resamples=200, folds=2)
    assert ev.metrics["classification"]["positive"] == "1" and ev.metrics["classification"]["n_positive"] == 5


def _no_spec_evaluate(pred, labels):
    # a table without a tag: no spec to name the positive label or its score column
    table = read_table(pred)
    rows = [{k: v for k, v in row.items() if k != "tag"} for row in table.rows]
    bare = write_csv(Path(pred).with_name("untagged.csv"), rows)
    return evaluate(bare, labels=labels, threshold=0.5, n_resamples=200, folds=2)


def test_mixed_tags_and_duplicate_rows(tmp_path):
    a = read_table(results_table(tmp_path, name="a.csv")).rows
    b = read_table(results_table(tmp_path, tag="covid_cxnet_base.v1_0", name="b.csv")).rows
    both = write_csv(tmp_path / "both.csv", a + b)
    labels = labels_table(tmp_path)
    with pytest.raises(ValueError, match="mixes the results of covid_cxnet_base.v1_0, cxrnet.hfhs_v7; .*--tag"):
        evaluate(both, labels=labels, positive="covid", threshold=0.5)
    ev = evaluate(both, labels=labels, tag="cxrnet.hfhs_v7", positive="covid", threshold=0.5, n_resamples=200, folds=2)
    assert ev.metrics["classification"]["n"] == 10
    twice = write_csv(tmp_path / "twice.csv", a + a[:2])
    ev = evaluate(twice, labels=labels, positive="covid", threshold=0.5, n_resamples=200, folds=2)
    assert ev.metrics["classification"]["n"] == 10
    assert any("2 repeated rows" in n for n in ev.metrics["classification"]["notes"])
    a[1]["p_covid"] = "oops"
    bad = write_csv(tmp_path / "bad.csv", a)
    with pytest.raises(ValueError, match=r"1 rows have no usable p_covid \('images/case_01.png' \('oops'\)\)"):
        evaluate(bad, labels=labels, positive="covid", threshold=0.5)


# ----------------------------------------------------------------------------------------------- segmentation


def _png(path: Path, mask: np.ndarray, scale: int = 255) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * scale).save(path)
    return path


def test_read_mask_conventions(tmp_path):
    m = np.zeros((4, 5), bool)
    m[1:3, 2:4] = True
    assert np.array_equal(read_mask(_png(tmp_path / "a.png", m)), m)  # 0/255
    assert np.array_equal(read_mask(_png(tmp_path / "b.png", m, scale=1)), m)  # 0/1
    rgb = np.repeat((m * 200).astype(np.uint8)[..., None], 3, axis=-1)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    assert np.array_equal(read_mask(tmp_path / "c.png"), m)
    np.save(tmp_path / "d.npy", m.astype(np.float32) * 0.9)
    assert np.array_equal(read_mask(tmp_path / "d.npy"), m)
    with pytest.raises(FileNotFoundError):
        read_mask(tmp_path / "none.png")


def test_evaluate_segmentation_summary_by_hand():
    truth = np.zeros((6, 6), bool)
    truth[1:3, 1:3] = True
    pred_a = np.zeros((6, 6), bool)
    pred_a[1:3, 1:4] = True  # Dice 0.8, IoU 2/3, HD95 1
    out = evaluate_segmentation([truth, truth, np.zeros((3, 3))], [truth, pred_a, np.ones((3, 3))], ids="abc")
    rows = out["per_image"]
    assert [r["dice"] for r in rows] == pytest.approx([1.0, 0.8, 0.0])
    assert [r["iou"] for r in rows] == pytest.approx([1.0, 2 / 3, 0.0])
    assert rows[0]["hd95"] == 0.0 and rows[1]["hd95"] == pytest.approx(1.0) and rows[2]["hd95"] is None
    s = out["summary"]
    assert s["dice"]["mean"] == pytest.approx(0.6) and s["dice"]["median"] == pytest.approx(0.8)
    assert s["dice"]["q1"] == pytest.approx(0.4) and s["dice"]["q3"] == pytest.approx(0.9)
    assert s["dice"]["iqr"] == pytest.approx(0.5)
    assert s["hd95"]["n"] == 2 and s["hd95"]["n_undefined"] == 1 and s["hd95"]["mean"] == pytest.approx(0.5)
    # pooled: TP 4 + 4 + 0, FP + FN 0 + 2 + 9
    assert s["pooled_dice"] == pytest.approx(16 / (16 + 11))
    with pytest.raises(ValueError, match="the predicted mask is 5×6 but the reference is 6×6"):
        evaluate_segmentation([truth], [np.zeros((6, 5))])


def test_evaluate_masks_from_a_table_and_from_a_folder(tmp_path):
    rng = np.random.default_rng(0)
    truths, preds = {}, {}
    for i in range(4):
        t = np.zeros((20, 16 + i), bool)
        t[4:14, 3:12] = True
        p = t.copy()
        p[rng.integers(0, 20, 5), rng.integers(0, 16, 5)] ^= True
        truths[f"case_{i:02d}"], preds[f"case_{i:02d}"] = t, p
        _png(tmp_path / "ref" / f"case_{i:02d}.png", t)
        _png(tmp_path / "out" / "masks" / f"case_{i:02d}_lungs.png", p)
    table = results_table(
        tmp_path / "out",
        SCORES[:4],
        tag="res_cr_net.v7_lungs",
        mask_path=[f"masks/case_{i:02d}_lungs.png" for i in range(4)],
    )
    ev = evaluate(table, masks=tmp_path / "ref")
    seg = ev.metrics["segmentation"]
    from cxrzoo.metrics import dice_score, hausdorff_distance

    expected = [float(dice_score(truths[k], preds[k])[0]) for k in sorted(truths)]
    assert [r["dice"] for r in ev.per_image] == pytest.approx(expected)
    assert [r["hd95"] for r in ev.per_image] == pytest.approx(
        [float(hausdorff_distance(truths[k], preds[k])[0]) for k in sorted(truths)]
    )
    assert seg["n_images"] == 4 and seg["join"] == "stem"
    written = ev.save(tmp_path / "report")
    assert {p.name for p in written} == {"segmentation.csv", "segmentation.png", "metrics.json", "report.md"}
    rows = _rows(tmp_path / "report" / "segmentation.csv")
    assert [r["id"] for r in rows] == sorted(truths) and float(rows[0]["dice"]) == pytest.approx(expected[0])

    # a folder of predicted masks, matched by relative path
    for k, p in preds.items():
        _png(tmp_path / "flat" / f"{k}.png", p)
    ev = evaluate(tmp_path / "flat", masks=tmp_path / "ref")
    assert ev.metrics["segmentation"]["join"] == "path"
    assert [r["dice"] for r in ev.per_image] == pytest.approx(expected)


def test_mask_errors(tmp_path):
    t = np.ones((8, 8), bool)
    _png(tmp_path / "ref" / "a.png", t)
    _png(tmp_path / "ref" / "b.png", t)
    _png(tmp_path / "pred" / "a.png", np.ones((8, 9), bool))
    with pytest.raises(ValueError, match=r"1 of 2 rows of the reference masks have no result \('b'\)"):
        evaluate(tmp_path / "pred", masks=tmp_path / "ref")
    with pytest.raises(ValueError, match="the predicted mask is 9×8 but the reference is 8×8"):
        evaluate(tmp_path / "pred", masks=tmp_path / "ref", allow_unmatched=True)
    table = results_table(tmp_path, SCORES[:2])
    with pytest.raises(ValueError, match="no column 'mask_path'"):
        evaluate(table, masks=tmp_path / "ref")
    with pytest.raises(ValueError, match="nothing to evaluate against"):
        evaluate(table)


def test_figures_with_label_names_the_font_lacks_do_not_warn(tmp_path):
    import warnings

    pred = results_table(tmp_path)
    labels = labels_table(tmp_path, ["新冠" if label == "covid" else "其他" for label in LABELS])
    ev = evaluate(pred, labels=labels, positive="新冠", score_column="p_covid", threshold=0.5, n_resamples=200,
                  folds=2)  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figures = ev.figures()
    assert set(figures) == {"roc.png", "confusion.png", "reliability.png"}
    assert not [w for w in caught if "Glyph" in str(w.message)]


@pytest.mark.shared
def test_the_shared_external_set_joins_by_stem(shared, tmp_path):
    """The layout of the real external set: a table of image paths, reference masks in a sibling folder, labels by
    id from both index files; the human masks against themselves give Dice 1 and HD95 0 on all 60 images."""
    val = shared("data", "v7_covid_lungs", "val")
    negatives = shared("data", "ieee_non_covid", "public")
    with open(val / "index.csv", newline="") as f:
        positives = [row["id"] for row in csv.DictReader(f)]
    with open(negatives / "index.csv", newline="") as f:
        others = list(csv.DictReader(f))
    rows = [
        {"path": str(val / "images" / f"{i}.png"), "tag": "res_cr_net.v7_lungs", "p_covid": 0.9,
         "mask_path": str(val / "lungs" / f"{i}.png")}
        for i in positives
    ]  # fmt: skip
    table = write_csv(tmp_path / "predictions.csv", rows)
    ev = evaluate(table, masks=val / "lungs")
    summary = ev.metrics["segmentation"]["summary"]
    assert ev.metrics["segmentation"]["n_images"] == 60 and ev.metrics["segmentation"]["join"] == "stem"
    assert summary["dice"]["min"] == 1.0 and summary["hd95"]["max"] == 0.0

    rows += [
        {"path": str(negatives / "images" / f"{r['id']}.png"), "tag": "res_cr_net.v7_lungs", "p_covid": 0.1 + k / 100,
         "mask_path": ""}
        for k, r in enumerate(others)
    ]  # fmt: skip
    table = write_csv(tmp_path / "all.csv", rows)
    labels = write_csv(
        tmp_path / "labels.csv",
        [{"id": i, "label": "covid", "patient": ""} for i in positives]
        + [{"id": r["id"], "label": "non_covid", "patient": r["patient"]} for r in others],
    )
    ev = evaluate(table, labels=labels, patient_column="patient", positive="covid", threshold=0.5, n_resamples=200)
    c = ev.metrics["classification"]
    assert (c["n"], c["n_positive"], c["n_patients"]) == (115, 60, 91) and c["auc"]["value"] == 1.0
    assert any("60 images without a patient id" in note for note in c["notes"])
