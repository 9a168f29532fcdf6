"""``cxrzoo evaluate`` on small synthetic results tables: numbers, files, defaults from the spec, errors."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrzoo.cli import main

# 12 images of 9 patients: positives p01..p06 (one image each), negatives n1..n3 with two images each
SCORES = [0.92, 0.81, 0.64, 0.55, 0.33, 0.71, 0.42, 0.12, 0.58, 0.27, 0.05, 0.38]
TRUTH = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
PATIENTS = ["p01", "p02", "p03", "p04", "p05", "p06", "n1", "n1", "n2", "n2", "n3", "n3"]


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _write(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def tables(tmp_path):
    results = [
        {
            "path": str(tmp_path / "images" / f"img_{i:02d}.png"),
            "sha256": f"{i:064x}",
            "tag": "cxrnet.hfhs_v7",
            "cxrzoo_version": "0.1.0",
            "p_covid": p,
            "p_non_covid": round(1 - p, 6),
            "lung_fraction": 0.31,
            "warnings": "",
        }
        for i, p in enumerate(SCORES)
    ]
    labels = [
        {"path": str(tmp_path / "images" / f"img_{i:02d}.png"), "finding": "covid" if y else "pneumonia", "patient": p}
        for i, (y, p) in enumerate(zip(TRUTH, PATIENTS))
    ]
    return _write(tmp_path / "predictions.csv", results), _write(tmp_path / "labels.csv", labels)


def _auc_by_hand(truth, scores):
    pos = [s for s, t in zip(scores, truth) if t]
    neg = [s for s, t in zip(scores, truth) if not t]
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg) / (len(pos) * len(neg))


def test_cli_classification_report(tables, tmp_path, capsys):
    predictions, labels = tables
    out = tmp_path / "report"
    argv = [
        "evaluate", str(predictions), "-o", str(out), "--labels", str(labels), "--label-column", "finding",
        "--patient-column", "patient", "--positive", "covid", "--threshold", "0.5", "--folds", "3",
        "--bootstrap", "200",
    ]  # fmt: skip
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    # 6 × 6 pairs; a positive below a negative: 0.55 < 0.58 and 0.33 < 0.38, 0.42, 0.58 → 32 of 36
    auc = _auc_by_hand(TRUTH, SCORES)
    assert auc == pytest.approx(32 / 36)
    assert f"AUC {auc:.3f}" in stdout
    assert sorted(os.listdir(out)) == ["confusion.png", "metrics.json", "reliability.png", "report.md", "roc.png"]
    metrics = json.loads((out / "metrics.json").read_text())
    c = metrics["classification"]
    assert c["auc"]["value"] == pytest.approx(auc)
    assert c["join"] == "path" and c["n_patients"] == 9 and c["patient_grouped"]
    # at 0.5: positives ≥ 0.5: 0.92 0.81 0.64 0.55 0.71 (5 of 6); negatives ≥ 0.5: 0.58 (1 of 6)
    p = c["paper_threshold"]
    assert (p["tp"], p["fn"], p["fp"], p["tn"]) == (5, 1, 1, 5)
    assert p["sensitivity"] == pytest.approx(5 / 6) and p["npv"] == pytest.approx(5 / 6)
    assert c["data_threshold"]["selection"] == "cv" and len(c["data_threshold"]["fold_thresholds"]) == 3
    brier = np.mean((np.array(SCORES) - np.array(TRUTH)) ** 2)
    assert c["calibration"]["brier"] == pytest.approx(brier)
    report = (out / "report.md").read_text()
    assert "ROC AUC" in report and "out-of-fold" in report and "![ROC curve](roc.png)" in report
    assert metrics["inputs"]["labels"]["sha256"] and metrics["predicted_with"] == ["0.1.0"]


def test_cli_takes_the_positive_label_score_and_threshold_from_the_spec(tables, tmp_path, capsys):
    predictions, labels = tables
    rows = _rows(labels)
    for row in rows:
        row["id"] = Path(row.pop("path")).stem  # join by stem this time
        row["label"] = "covid" if row.pop("finding") == "covid" else "non_covid"
    labels = _write(tmp_path / "labels_by_id.csv", rows)
    out = tmp_path / "report"
    assert main(["evaluate", str(predictions), "-o", str(out), "--labels", str(labels), "--bootstrap", "200",
                 "--folds", "2", "--selection", "split", "--target-sensitivity", "0.8"]) == 0  # fmt: skip
    c = json.loads((out / "metrics.json").read_text())["classification"]
    # the spec of cxrnet.hfhs_v7: positive label 'covid', threshold 0.5 → score column p_covid
    assert c["positive"] == "covid" and c["score_column"] == "p_covid" and c["threshold_source"] == "paper's threshold"
    assert c["paper_threshold"]["threshold"] == 0.5 and c["join"] == "stem"
    d = c["data_threshold"]
    assert d["selection"] == "split" and d["n_calibration"] + d["n_test"] == 12
    assert d["rule"] == "sensitivity >= 0.8" and "paper_threshold_on_test" in d


def test_cli_errors(tables, tmp_path, capsys):
    predictions, labels = tables
    out = str(tmp_path / "report")
    base = ["evaluate", str(predictions), "-o", out, "--label-column", "finding", "--positive", "covid",
            "--threshold", "0.5"]  # fmt: skip

    # rows that do not match: how many, and a few names
    rows = _rows(labels)[:9]
    short = _write(tmp_path / "short.csv", rows)
    assert main([*base, "--labels", str(short)]) == 1
    err = capsys.readouterr().err
    assert "3 of 12 results have no row in the labels" in err and "img_09.png" in err and "--allow-unmatched" in err

    # a missing column
    assert main([*base, "--labels", str(labels), "--patient-column", "subject"]) == 1
    assert "no column 'subject'" in capsys.readouterr().err

    # one class only
    for row in rows:
        row["finding"] = "covid"
    one = _write(tmp_path / "one.csv", rows)
    assert main([*base, "--labels", str(one), "--allow-unmatched"]) == 1
    assert "every row is labelled 'covid'" in capsys.readouterr().err

    # nothing to evaluate against; an output path that is a file: before any work
    assert main(["evaluate", str(predictions), "-o", out]) == 1
    assert "--labels" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["evaluate", str(predictions), "-o", str(blocker), "--labels", str(labels)]) == 1
    assert "is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "report").exists() or not os.listdir(tmp_path / "report")

    # bad option values are argparse errors
    with pytest.raises(SystemExit):
        main([*base, "--labels", str(labels), "--target-sensitivity", "1.5"])
    assert "expected a number in (0, 1]" in capsys.readouterr().err


def test_cli_segmentation(tmp_path, capsys):
    ref, out = tmp_path / "masks", tmp_path / "predict"
    (ref / "sub").mkdir(parents=True)
    (out / "masks").mkdir(parents=True)
    rows = []
    for i in range(3):
        truth = np.zeros((10, 12), np.uint8)
        truth[2:8, 2:10] = 255
        pred = truth.copy()
        pred[2:8, 2 + i : 10 + i] = 255  # shifted right by i columns
        pred[2:8, 2 : 2 + i] = 0
        Image.fromarray(truth).save(ref / "sub" / f"x{i}.png")
        Image.fromarray(pred).save(out / "masks" / f"x{i}.png")
        rows.append({"path": f"/data/sub/x{i}.png", "tag": "res_cr_net.v7_lungs", "mask_path": f"masks/x{i}.png"})
    table = _write(out / "predictions.csv", rows)
    assert main(["evaluate", str(table), "-o", str(tmp_path / "ev"), "--masks", str(ref)]) == 0
    assert "segmentation: 3 images" in capsys.readouterr().out
    per_image = _rows(tmp_path / "ev" / "segmentation.csv")
    # shift by i columns: TP = 6 (8 − i), FP = FN = 6 i → Dice = 2 TP / (2 TP + 12 i); HD95: boundary shifts by i
    for i, row in enumerate(per_image):
        tp = 6 * (8 - i)
        assert float(row["dice"]) == pytest.approx(2 * tp / (2 * tp + 12 * i))
        assert float(row["iou"]) == pytest.approx(tp / (tp + 12 * i))
        assert float(row["hd95"]) == pytest.approx(i)
    seg = json.loads((tmp_path / "ev" / "metrics.json").read_text())["segmentation"]
    assert seg["summary"]["dice"]["median"] == pytest.approx(2 * 42 / (84 + 12))
    assert math.isclose(seg["summary"]["hd95"]["mean"], 1.0)
