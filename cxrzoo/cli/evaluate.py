"""``cxrzoo evaluate``: a results table against labels and/or reference masks → report, metrics and figures.

    cxrzoo evaluate PREDICTIONS -o DIR --labels LABELS.csv [--patient-column patient] [--positive covid] ...
    cxrzoo evaluate PREDICTIONS -o DIR --masks MASK_FOLDER

PREDICTIONS is the results table of ``cxrzoo predict`` (one row per image: ``path``, ``tag``, ``p_<label>``
columns, ``mask_path`` for segmentation) or, for segmentation, a folder of predicted masks. DIR receives
``report.md``, ``metrics.json``, the figures (``roc.png``, ``confusion.png``, ``reliability.png``,
``segmentation.png``) and ``segmentation.csv``; each file appears complete or not at all. A short summary goes
to stdout. See docs/evaluate.md.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {value}")
    return value


def _open_fraction(text: str) -> float:
    value = _fraction(text)
    if value == 1:
        raise argparse.ArgumentTypeError("expected a number in (0, 1), got 1")
    return value


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="evaluate a results table against labels (AUC, thresholds, calibration) or masks (Dice, IoU, HD95)",
        description="Evaluate the results of a model against labels and/or reference masks; writes report.md, "
        "metrics.json and figures into -o DIR.",
    )
    parser.add_argument("predictions", metavar="PREDICTIONS", help="results table (CSV) or a folder of masks")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the report and figures")
    what = parser.add_argument_group("what to evaluate against")
    what.add_argument("--labels", metavar="CSV", help="labels: an id column (path or file stem), a label column")
    what.add_argument("--masks", metavar="DIR", help="folder of reference masks (matched by relative path or stem)")
    cols = parser.add_argument_group("labels and results columns")
    cols.add_argument("--label-column", default="label", metavar="NAME", help="(default: label)")
    cols.add_argument("--id-column", metavar="NAME", help="(default: the first of path, id, image, file, filename)")
    cols.add_argument("--patient-column", metavar="NAME", help="patient ids: clustered AUC, grouped folds/bootstrap")
    cols.add_argument("--positive", metavar="LABEL", help="positive label value (default: the model's, or 1)")
    cols.add_argument("--score-column", metavar="NAME", help="P(positive) column (default: p_<positive label>)")
    cols.add_argument("--tag", metavar="TAG", help="evaluate the rows of this model tag only")
    cols.add_argument("--join", choices=("auto", "path", "stem"), default="auto", help="how rows match (auto)")
    cols.add_argument("--allow-unmatched", action="store_true", help="evaluate the matched rows only")
    cols.add_argument("--mask-column", default="mask_path", metavar="NAME", help="predicted masks (mask_path)")
    ops = parser.add_argument_group("operating points")
    ops.add_argument("--threshold", type=float, metavar="T", help="operating point (default: the spec's threshold)")
    ops.add_argument(
        "--target-sensitivity",
        type=_fraction,
        metavar="S",
        help="choose the threshold reaching this sensitivity on the data (default: Youden's J)",
    )
    ops.add_argument(
        "--selection",
        choices=("cv", "split"),
        default="cv",
        help="choose it by patient-grouped cross-validation (cv) or on a calibration split",
    )
    ops.add_argument("--folds", type=_count(2), default=5, metavar="K", help="cross-validation folds (5)")
    ops.add_argument(
        "--calibration-fraction",
        type=_open_fraction,
        default=0.5,
        metavar="F",
        help="patients in the calibration split (0.5)",
    )
    ops.add_argument("--split-column", metavar="NAME", help="labels column with 'calibration'/'test' per row")
    stats = parser.add_argument_group("statistics")
    stats.add_argument("--bins", type=_count(1), default=10, metavar="N", help="calibration bins (10)")
    stats.add_argument("--bootstrap", type=_count(100), default=1000, metavar="N", help="bootstrap resamples (1000)")
    stats.add_argument("--level", type=_open_fraction, default=0.95, metavar="L", help="interval level (0.95)")
    stats.add_argument("--seed", type=int, default=0, help="seed of folds, split and bootstrap (0)")
    stats.add_argument(
        "--hd95-one-empty",
        choices=("nan", "diagonal"),
        default="nan",
        help="HD95 when exactly one mask is empty: undefined (nan) or the image diagonal",
    )
    parser.add_argument("--title", help="the report's title")
    parser.set_defaults(func=_run)


def _summary(metrics: dict) -> list[str]:
    def ci(row, key):
        interval = row.get(f"{key}_ci")
        return f"{row[key]:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else f"{row[key]:.3f}"

    lines = []
    c = metrics.get("classification")
    if c:
        auc = c["auc"]
        lines.append(
            f"classification: {c['n']} images ({c['n_positive']} {c['positive']}), AUC {auc['value']:.3f} "
            f"[{auc['low']:.3f}, {auc['high']:.3f}]"
        )
        for name, row in (
            ("paper threshold", c.get("paper_threshold")),
            (c["data_threshold"]["rule"], c["data_threshold"]["metrics"]),
        ):
            if row:
                lines.append(f"  {name}: sensitivity {ci(row, 'sensitivity')}, specificity {ci(row, 'specificity')}")
        if "ece" in c["calibration"]:
            lines.append(f"  calibration: ECE {c['calibration']['ece']:.3f}, Brier {c['calibration']['brier']:.3f}")
    s = metrics.get("segmentation")
    if s:
        dice, hd = s["summary"]["dice"], s["summary"]["hd95"]
        line = f"segmentation: {s['n_images']} images, Dice mean {dice['mean']:.3f} median {dice['median']:.3f}"
        if hd["n"]:
            line += f", HD95 median {hd['median']:.1f} px"
        lines.append(line)
    return lines


@contextlib.contextmanager
def _native_stderr_quiet():
    """Keeps TensorFlow's C++ start-up logs (written to file descriptor 2 when a model spec is looked up) off the
    terminal for the duration: fd 2 points at /dev/null while Python's ``sys.stderr`` writes to a duplicate of the
    real stderr, so this command's own messages and warnings still show. ``CXRZOO_DEBUG=1`` keeps the logs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ.get("CXRZOO_DEBUG") or "tensorflow" in sys.modules:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
    except (OSError, AttributeError, ValueError):  # no usable fd 2 (an embedded interpreter, a test capture)
        yield
        return
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(
        os.dup(saved), "w", buffering=1, encoding=python_stderr.encoding or "utf-8", errors="replace"
    )
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr.close()
        sys.stderr = python_stderr


def _run(args) -> int:
    from cxrzoo.evaluation import check_output_folder, evaluate

    # ValueError and OSError are reported by cxrzoo.cli.main as "cxrzoo: error: ..." with exit status 1
    if not args.labels and not args.masks:
        raise ValueError("give --labels CSV (classification) and/or --masks DIR (segmentation)")
    folder = check_output_folder(args.output)  # before any work: an unusable folder fails fast
    try:
        with _native_stderr_quiet():
            result = _evaluate(evaluate, args)
    except ImportError as err:  # e.g. a Parquet table without pyarrow
        raise ValueError(str(err)) from None
    written = result.save(folder)
    for line in _summary(result.metrics):
        print(line)
    print(f"wrote {', '.join(p.name for p in written)} to {folder}")
    return 0


def _evaluate(evaluate, args):
    return evaluate(
        args.predictions,
        labels=args.labels,
        masks=args.masks,
        label_column=args.label_column,
        id_column=args.id_column,
        patient_column=args.patient_column,
        positive=args.positive,
        score_column=args.score_column,
        threshold=args.threshold,
        tag=args.tag,
        join=args.join,
        allow_unmatched=args.allow_unmatched,
        target_sensitivity=args.target_sensitivity,
        selection=args.selection,
        folds=args.folds,
        calibration_fraction=args.calibration_fraction,
        split_column=args.split_column,
        n_bins=args.bins,
        n_resamples=args.bootstrap,
        level=args.level,
        seed=args.seed,
        mask_column=args.mask_column,
        hd95_one_empty=math.nan if args.hd95_one_empty == "nan" else args.hd95_one_empty,
        title=args.title,
    )
