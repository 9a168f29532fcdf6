""":func:`evaluate`: a results table (and labels, and/or reference masks) in, metrics, figures and a report out."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxrzoo._version import __version__
from cxrzoo.evaluation import figures as _figures
from cxrzoo.evaluation.classification import evaluate_classification
from cxrzoo.evaluation.report import dumps, jsonable, render_report, write_atomic
from cxrzoo.evaluation.segmentation import evaluate_segmentation, mask_files, read_mask
from cxrzoo.evaluation.tables import (
    ID_COLUMNS,
    Table,
    examples,
    id_stem,
    join_rows,
    read_table,
    unmatched_message,
)

#: What ``evaluate`` writes, in the order it writes them (the report last: it refers to the others).
OUTPUT_FILES = (
    "roc.png",
    "confusion.png",
    "reliability.png",
    "segmentation.png",
    "segmentation.csv",
    "metrics.json",
    "report.md",
)
_TRUE = {"1", "true", "yes", "positive", "pos"}
_FALSE = {"0", "false", "no", "negative", "neg"}
SEGMENTATION_COLUMNS = (
    "id",
    "prediction",
    "reference",
    "height",
    "width",
    "truth_pixels",
    "predicted_pixels",
    "dice",
    "iou",
    "hd95",
)


@dataclass
class Evaluation:
    """The result of :func:`evaluate`: ``metrics`` (JSON-ready dict), ``report`` (Markdown) and, for segmentation,
    ``per_image`` rows; :meth:`save` writes them with the figures."""

    metrics: dict[str, Any]
    report: str
    per_image: list[dict[str, Any]] = field(default_factory=list)

    def figures(self) -> dict[str, bytes]:
        """The PNG figures, by file name."""
        out = {}
        title = self.metrics.get("title") or ""
        if "classification" in self.metrics:
            c = self.metrics["classification"]
            out["roc.png"] = _figures.roc_figure(c, title=title)
            out["confusion.png"] = _figures.confusion_figure(
                c,
                positive=c["positive"],
                negative=c["negative_labels"][0] if len(c["negative_labels"]) == 1 else f"not {c['positive']}",
                title=title,
            )
            if "brier" in c["calibration"]:
                out["reliability.png"] = _figures.reliability_figure(c, title=title)
        if "segmentation" in self.metrics:
            out["segmentation.png"] = _figures.segmentation_figure(
                {"per_image": self.per_image}, title=title or "segmentation"
            )
        return out

    def segmentation_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=SEGMENTATION_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.per_image:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in SEGMENTATION_COLUMNS})
        return buffer.getvalue()

    def save(self, directory: str | os.PathLike) -> list[Path]:
        """Writes ``report.md``, ``metrics.json``, the figures and (segmentation) ``segmentation.csv`` into
        ``directory`` (created if needed). Everything is rendered in memory first; each file then appears
        atomically, the report last."""
        directory = Path(directory)
        contents: dict[str, bytes | str] = dict(self.figures())
        if self.per_image:
            contents["segmentation.csv"] = self.segmentation_csv()
        contents["metrics.json"] = dumps(self.metrics)
        contents["report.md"] = self.report
        directory.mkdir(parents=True, exist_ok=True)
        return [write_atomic(directory / name, contents[name]) for name in OUTPUT_FILES if name in contents]


def check_output_folder(directory: str | os.PathLike) -> Path:
    """Creates ``directory`` if needed and checks a file can be created in it (before any work is done)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory}: exists and is not a folder; choose another -o")
    directory.mkdir(parents=True, exist_ok=True)
    probe = directory / f".cxrzoo-write-test-{os.getpid()}"
    try:
        probe.touch()
    except OSError as err:
        raise PermissionError(f"{directory}: cannot write here ({err.strerror}); choose another -o") from None
    probe.unlink(missing_ok=True)
    return directory


def _sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _spec(tag: str):
    """The spec of a results table's tag (imports the model catalogue, hence TensorFlow, once)."""
    from cxrzoo.spec import SPECS

    return SPECS.get(tag)


def _select_tag(table: Table, tag: str | None) -> tuple[Table, str | None]:
    if "tag" not in table.columns:
        if tag is not None:
            raise ValueError(
                f"{table.path}: no 'tag' column to select {tag!r} from (columns: {', '.join(table.columns)})"
            )
        return table, None
    tags = sorted({row["tag"] for row in table.rows})
    if tag is None:
        if len(tags) > 1:
            raise ValueError(f"{table.path} mixes the results of {', '.join(tags)}; choose one with --tag")
        return table, tags[0] if tags else None
    rows = [row for row in table.rows if row["tag"] == tag]
    if not rows:
        raise ValueError(f"{table.path}: no row has tag {tag!r} (tags: {', '.join(tags)})")
    return Table(table.path, table.columns, rows), tag


def _dedupe(table: Table, score_column: str | None, notes: list[str]) -> Table:
    """Drops repeated rows of one path (the same file listed twice) when they agree; disagreeing repeats are an
    error (two different results for one image)."""
    seen: dict[str, dict] = {}
    rows = []
    for row in table.rows:
        key = row["path"]
        if key in seen:
            if score_column and seen[key].get(score_column) != row.get(score_column):
                raise ValueError(
                    f"{table.path}: {key!r} appears twice with different {score_column} "
                    f"({seen[key].get(score_column)} and {row.get(score_column)}); keep one row per image"
                )
            continue
        seen[key] = row
        rows.append(row)
    if len(rows) < len(table.rows):
        notes.append(f"{len(table.rows) - len(rows)} repeated rows of the same path were counted once")
    return Table(table.path, table.columns, rows)


def _positive_value(values: list[str], positive: str | None, model_positive: str | None, path: str) -> str:
    if positive is not None:
        if positive not in values:
            raise ValueError(f"{path}: no label is {positive!r} (labels: {', '.join(values)}); check --positive")
        return positive
    if model_positive is not None and model_positive in values:
        return model_positive
    lowered = {v.lower() for v in values}
    if lowered <= _TRUE | _FALSE and lowered & _TRUE:
        return next(v for v in values if v.lower() in _TRUE)
    raise ValueError(
        f"{path}: labels are {', '.join(repr(v) for v in values)}; name the positive one with --positive"
        + (f" (the model's positive label is {model_positive!r})" if model_positive else "")
    )


def _score_column(table: Table, score_column: str | None, model_positive: str | None, positive: str) -> str:
    if score_column is not None:
        table.require(score_column, hint="choose the score with --score-column")
        return score_column
    for label in (model_positive, positive):
        if label is not None and f"p_{label}" in table.columns:
            return f"p_{label}"
    p_columns = [c for c in table.columns if c.startswith("p_")]
    if len(p_columns) == 1:
        return p_columns[0]
    raise ValueError(
        f"{table.path}: which column holds P({positive})? "
        + (
            f"columns {', '.join(p_columns)}"
            if p_columns
            else f"no p_<label> column (columns: {', '.join(table.columns)})"
        )
        + "; pass --score-column"
    )


def _floats(table: Table, rows: list[dict], column: str) -> np.ndarray:
    values, bad = [], []
    for row in rows:
        try:
            v = float(row[column])
        except ValueError:
            v = float("nan")
        if not math.isfinite(v):
            bad.append(f"{row['path']!r} ({row[column]!r})")
        values.append(v)
    if bad:
        raise ValueError(
            f"{table.path}: {len(bad)} rows have no usable {column} ({examples(bad, quote=False)}); rerun those "
            "images or drop their rows"
        )
    return np.asarray(values, float)


def _classification(
    results: Table,
    labels_path,
    *,
    model_positive,
    threshold,
    threshold_source,
    tag,
    label_column,
    id_column,
    patient_column,
    positive,
    score_column,
    split_column,
    join,
    allow_unmatched,
    options,
    notes,
) -> dict[str, Any]:
    labels = read_table(labels_path)
    if id_column is None:
        id_column = next((c for c in ID_COLUMNS if c in labels.columns), None)
        if id_column is None:
            raise ValueError(
                f"{labels.path}: no id column ({', '.join(ID_COLUMNS)}; columns: {', '.join(labels.columns)}); "
                "name it with --id-column"
            )
    labels.require(id_column, hint="name the id column with --id-column")
    labels.require(label_column, hint="name the label column with --label-column")
    if patient_column is not None:
        labels.require(patient_column, hint="name the patient column with --patient-column")
    if split_column is not None:
        labels.require(split_column, hint="name the split column with --split-column")
    unlabelled = [row[id_column] for row in labels.rows if not row[label_column]]
    if unlabelled:
        raise ValueError(f"{labels.path}: {len(unlabelled)} rows have an empty {label_column} ({examples(unlabelled)})")
    values = sorted({row[label_column] for row in labels.rows})
    if len(values) < 2:
        raise ValueError(
            f"{labels.path}: every row is labelled {values[0]!r} if any: AUC, sensitivity and specificity need "
            "positive and negative cases"
            if values
            else f"{labels.path}: no rows"
        )
    positive = _positive_value(values, positive, model_positive, labels.path)
    score_column = _score_column(results, score_column, model_positive, positive)
    results = _dedupe(results, score_column, notes)

    matched = join_rows([r["path"] for r in results.rows], [r[id_column] for r in labels.rows], how=join)
    message = unmatched_message(matched, len(results.rows), len(labels.rows))
    if message and not allow_unmatched:
        raise ValueError(message)
    if message:
        notes.append("evaluated the matched rows only: " + message.split(" (joined by")[0])
    if not matched.pairs:
        raise ValueError("no result row matches a label row")
    result_rows = [results.rows[i] for i, _ in matched.pairs]
    label_rows = [labels.rows[j] for _, j in matched.pairs]
    y = np.array([row[label_column] == positive for row in label_rows])
    s = _floats(results, result_rows, score_column)
    groups = None
    if patient_column is not None:
        missing = [row for row in label_rows if not row[patient_column]]
        if missing:
            notes.append(f"{len(missing)} images without a patient id count as their own patient")
        groups = np.array([row[patient_column] or f"\x00image:{row[id_column]}" for row in label_rows])
    calibration = None
    selection = options.pop("selection")
    if split_column is not None:
        parts = [row[split_column].strip().lower() for row in label_rows]
        wrong = sorted({p for p in parts if p not in ("calibration", "test")})
        if wrong:
            raise ValueError(f"{labels.path}: {split_column} must be 'calibration' or 'test', found {examples(wrong)}")
        calibration = np.array([p == "calibration" for p in parts])
        selection = "split"
    result = evaluate_classification(
        y, s, groups=groups, threshold=threshold, selection=selection, calibration=calibration, **options
    )
    others = [v for v in values if v != positive]
    result.update(
        positive=positive,
        negative_labels=others,
        score_column=score_column,
        tag=tag,
        threshold_source=threshold_source,
        join=matched.how,
        label_column=label_column,
        id_column=id_column,
        patient_column=patient_column,
        n_unmatched_results=len(matched.unmatched_results),
        n_unmatched_labels=len(matched.unmatched_labels),
        notes=notes + result.get("notes", []),
    )
    return result


def _segmentation(predictions, masks, *, results: Table | None, mask_column, join, allow_unmatched, one_empty):
    truth = mask_files(masks)
    if results is None:  # a folder of predicted masks
        predicted = mask_files(predictions)
        pred_ids = list(predicted)
        pred_paths = list(predicted.values())
        source = f"the folder `{predictions}`"
    else:
        results.require(
            mask_column, hint="a segmentation model's results table has mask paths; or pass a folder of masks"
        )
        base = Path(results.path).parent
        pred_ids, pred_paths, missing = [], [], []
        for row in results.rows:
            if not row[mask_column]:
                missing.append(row["path"])
                continue
            path = Path(row[mask_column])
            if not path.is_absolute():  # relative to the table (predict writes masks beside it), else to the cwd
                path = base / path if (base / path).exists() or not path.exists() else path
            pred_ids.append(row["path"])
            pred_paths.append(path)
        if missing:
            raise ValueError(f"{results.path}: {len(missing)} rows have no {mask_column} ({examples(missing)})")
        source = f"`{mask_column}` of `{results.path}`"
    matched = join_rows(pred_ids, list(truth), how=join, what="reference masks")
    message = unmatched_message(matched, len(pred_ids), len(truth), what="reference masks")
    notes = []
    if message and not allow_unmatched:
        raise ValueError(message)
    if message:
        notes.append("evaluated the matched masks only: " + message.split(" (joined by")[0])
    if not matched.pairs:
        raise ValueError("no predicted mask matches a reference mask")
    truth_paths = list(truth.values())
    absent = [str(pred_paths[i]) for i, _ in matched.pairs if not Path(pred_paths[i]).is_file()]
    if absent:
        raise FileNotFoundError(f"{len(absent)} predicted mask files do not exist ({examples(absent)})")
    ids = [id_stem(str(pred_ids[i])) if results is not None else pred_ids[i] for i, _ in matched.pairs]
    out = evaluate_segmentation(
        [read_mask(truth_paths[j]) for _, j in matched.pairs],
        [read_mask(pred_paths[i]) for i, _ in matched.pairs],
        ids=ids,
        one_empty=one_empty,
    )
    for row, (i, j) in zip(out["per_image"], matched.pairs):
        row["prediction"] = str(pred_paths[i])
        row["reference"] = str(truth_paths[j])
    out.update(predicted_from=source, reference=str(masks), join=matched.how, notes=notes)
    return out


def evaluate(
    predictions: str | os.PathLike,
    *,
    labels: str | os.PathLike | None = None,
    masks: str | os.PathLike | None = None,
    label_column: str = "label",
    id_column: str | None = None,
    patient_column: str | None = None,
    positive: str | None = None,
    score_column: str | None = None,
    threshold: float | None = None,
    tag: str | None = None,
    join: str = "auto",
    allow_unmatched: bool = False,
    target_sensitivity: float | None = None,
    selection: str = "cv",
    folds: int = 5,
    calibration_fraction: float = 0.5,
    split_column: str | None = None,
    n_bins: int = 10,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    mask_column: str = "mask_path",
    hd95_one_empty: float | str = float("nan"),
    title: str | None = None,
) -> Evaluation:
    """Evaluates a results table against labels (classification) and/or reference masks (segmentation).

    Args:
        predictions: the results table of ``cxrzoo predict`` (CSV; Parquet with pyarrow), or, for segmentation
            only, a folder of predicted masks.
        labels: a CSV with an id column (a path or a file stem; ``id_column``, default the first of ``path``,
            ``id``, ``image``, ``file``, ``filename``), ``label_column`` and optionally ``patient_column``.
        masks: a folder of reference masks (recursive), matched to the predictions by relative path or file stem.
        positive: the label value of the positive class; default the model's positive label (from the table's
            ``tag`` and its spec), or ``1``/``true`` for 0/1 labels. Other values are negative.
        score_column: the P(positive) column; default ``p_<the spec's positive label>``.
        threshold: the operating point to report (default the spec's threshold, "the paper's").
        tag: the rows of this model tag, when the table holds several.
        join: ``"auto"``, ``"path"`` or ``"stem"`` (see :func:`cxrzoo.evaluation.tables.join_rows`).
        allow_unmatched: evaluate the matched rows only (and say how many did not match) instead of an error.
        target_sensitivity, selection, folds, calibration_fraction, n_bins, n_resamples, level, seed: as in
            :func:`cxrzoo.evaluation.evaluate_classification`; ``split_column`` (values ``calibration``/``test``
            in the labels) fixes the calibration split.
        mask_column: the results table's column of predicted mask paths (relative to the table's folder).
        hd95_one_empty: HD95 when exactly one mask is empty (``nan``: undefined; ``"diagonal"``).
        title: the report's title.

    Example::

        from cxrzoo.evaluation import evaluate
        ev = evaluate("out/predictions.csv", labels="labels.csv", patient_column="patient")
        ev.metrics["classification"]["auc"]
        ev.save("evaluation/")  # report.md, metrics.json, roc.png, confusion.png, reliability.png
    """
    if labels is None and masks is None:
        raise ValueError("nothing to evaluate against: give labels (a CSV) and/or masks (a folder)")
    predictions = Path(predictions)
    metrics: dict[str, Any] = {"title": title, "cxrzoo_version": __version__, "inputs": {}}
    metrics["settings"] = {
        "join": join,
        "allow_unmatched": allow_unmatched,
        "target_sensitivity": target_sensitivity,
        "selection": "split" if split_column else selection,
        "folds": folds,
        "calibration_fraction": calibration_fraction,
        "split_column": split_column,
        "n_bins": n_bins,
        "n_resamples": n_resamples,
        "level": level,
        "seed": seed,
        "hd95_one_empty": str(hd95_one_empty),
    }
    results = None
    if predictions.is_dir():
        if labels is not None:
            raise ValueError(f"{predictions} is a folder; classification needs a results table (CSV)")
    else:
        results = read_table(predictions)
        results.require("path", hint="is this a results table of cxrzoo predict?")
        results, tag = _select_tag(results, tag)
        metrics["inputs"]["predictions"] = {"path": str(predictions), "sha256": _sha256(predictions)}
        if "cxrzoo_version" in results.columns:
            metrics["predicted_with"] = sorted({r["cxrzoo_version"] for r in results.rows if r["cxrzoo_version"]})
    metrics["tag"] = tag

    if labels is not None:
        model_positive, source = None, "given threshold"
        spec = None
        # the spec (whose lookup imports TensorFlow) only when the caller has not named what it would give
        score_known = score_column is not None or (positive is not None and f"p_{positive}" in results.columns)
        if tag is not None and (positive is None or threshold is None or not score_known):
            try:
                spec = _spec(tag)
            except ValueError:
                spec = None  # an unknown tag: the caller names what the spec would have
        if spec is not None:
            model_positive = spec.output.positive
            if threshold is None and spec.output.positive is not None:
                threshold = 0.5 if spec.output.kind == "logits" else spec.output.threshold
                source = "paper's threshold"
        notes = []
        if threshold is None:
            notes.append("no operating point given (no --threshold and no spec with a threshold for the tag)")
        metrics["inputs"]["labels"] = {"path": str(labels), "sha256": _sha256(labels)}
        metrics["classification"] = _classification(
            results,
            labels,
            model_positive=model_positive,
            threshold=threshold,
            threshold_source=source,
            tag=tag,
            label_column=label_column,
            id_column=id_column,
            patient_column=patient_column,
            positive=positive,
            score_column=score_column,
            split_column=split_column,
            join=join,
            allow_unmatched=allow_unmatched,
            options={
                "target_sensitivity": target_sensitivity,
                "selection": selection,
                "folds": folds,
                "calibration_fraction": calibration_fraction,
                "n_bins": n_bins,
                "n_resamples": n_resamples,
                "level": level,
                "seed": seed,
            },
            notes=notes,
        )
    per_image = []
    if masks is not None:
        seg = _segmentation(
            predictions,
            masks,
            results=results,
            mask_column=mask_column,
            join=join,
            allow_unmatched=allow_unmatched,
            one_empty=hd95_one_empty,
        )
        per_image = seg.pop("per_image")
        metrics["segmentation"] = seg
        metrics["inputs"]["masks"] = {"path": str(masks)}
    metrics = jsonable(metrics)
    return Evaluation(metrics, render_report(metrics), jsonable(per_image))
