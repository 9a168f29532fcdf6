"""``cxrzoo predict``: a published model over chest X-ray files, folders, globs or a manifest.

    cxrzoo predict [INPUT ...] [-o DIR] [--model NAME] [--heatmaps] [--manifest CSV [--path-column COL]]
                   [--format csv|parquet] [--engine local|ray] [--batch-size N] [--threads N] [--json] [--quiet]

Inputs are image files (PNG, JPEG, TIFF, BMP, WebP, DICOM), folders (every image below, sorted by relative path),
glob patterns, and the rows of a CSV manifest, in that order. ``--model`` takes any published model with an image
input, or an architecture meaning its default weights: ``cxrnet`` (the default: CXR-Net's COVID-19 scores, each
of its six members' scores and their spread, the lung fraction, optionally the authors' heat maps),
``res_cr_net`` / ``res_cr_net.jms_lungs`` (lung masks as PNG at each image's size, per-lung areas),
``covid_cxnet_base`` / ``covid_cxnet_base.v_free`` (COVID-CXNet's score), ``bone_suppression`` (the
bone-suppressed image as PNG).

With ``-o DIR`` the results go to ``DIR/results.csv`` (one row per image, in input order; ``--format parquet``
writes ``results.parquet``), ``DIR/errors.csv`` and ``DIR/artifacts/``; rerunning the same command after an
interruption skips the finished images and ends with the same tables (:mod:`cxrzoo.batch.store`). Every image also
gets a line on stdout (a JSON object with ``--json``) and every failure a line on stderr; a failed file never
stops the run, and the exit status is 1 if any file failed. ``--quiet`` keeps stdout and the progress bar quiet.
The 0.1 form ``cxrzoo predict --heatmaps DIR IMAGE ...`` still works (DIR is then the output folder).

``--engine ray`` runs the same batch function on Ray Data (``pip install "cxrzoo[ray]"``; docs/scale.md);
``--ray-address`` joins a cluster. TensorFlow's native start-up messages are kept off stderr (``CXRZOO_DEBUG=1``
shows them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

PROGRESS_MIN_IMAGES = 4


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "predict",
        help="run a published model over chest X-ray files, folders or a manifest (resumable)",
        description="Run a published model over chest X-ray images; one row per image.",
    )
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="image files, folders or glob patterns")
    parser.add_argument("-o", "--output", metavar="DIR", help="output folder (results table, errors, artifacts)")
    parser.add_argument("--model", default="cxrnet", metavar="NAME", help="model or published tag (default: cxrnet)")
    parser.add_argument("--manifest", metavar="CSV", help="a CSV file listing images (after the INPUTs)")
    parser.add_argument("--path-column", default="path", metavar="COL", help="the manifest's path column (path)")
    parser.add_argument("--heatmaps", action="store_true", help="CXR-Net: write the authors' heat maps (needs -o)")
    parser.add_argument("--format", default="csv", choices=("csv", "parquet"), help="results table format (csv)")
    parser.add_argument("--engine", default="local", choices=("local", "ray"), help="local threads or Ray (local)")
    parser.add_argument("--batch-size", type=_positive_int, default=None, metavar="N", help="images per batch (4)")
    parser.add_argument("--threads", type=_positive_int, default=None, metavar="N", help="preparation threads (1)")
    parser.add_argument("--json", action="store_true", help="one JSON object per image on stdout")
    parser.add_argument("--quiet", action="store_true", help="no per-image lines, no progress bar")
    parser.add_argument(
        "--jit",
        action="store_true",
        help="CXR-Net: compile Module 2 with XLA (20-30 s once per batch size; pays off from a few hundred images)",
    )
    ray = parser.add_argument_group("Ray engine")
    ray.add_argument("--ray-address", metavar="ADDR", help="Ray cluster to join (e.g. auto); default: a local Ray")
    ray.add_argument("--ray-actors", type=_positive_int, default=1, metavar="N", help="model replicas (1)")
    ray.add_argument(
        "--ray-cpus-per-actor", type=float, default=1.0, metavar="C", help="CPUs Ray reserves per actor (1)"
    )
    parser.set_defaults(func=_run)


def rewrite_argv(argv: list[str]) -> list[str]:
    """The 0.1 form ``predict --heatmaps DIR IMAGE...`` (no ``-o``) as ``predict --heatmaps -o DIR IMAGE...``."""
    if not argv or argv[0] != "predict" or "--heatmaps" not in argv:
        return argv
    if any(a in ("-o", "--output") or a.startswith(("--output=", "-o")) for a in argv[1:]):
        return argv  # -o, --output, --output=DIR, -oDIR: the current form
    i = argv.index("--heatmaps")
    if i + 1 < len(argv) and not argv[i + 1].startswith("-"):
        return [*argv[: i + 1], "-o", *argv[i + 1 :]]
    return argv


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _quiet_native_stderr() -> None:
    """Sends file descriptor 2 (where TensorFlow's C++ logs go) to /dev/null; Python's ``sys.stderr`` keeps
    writing to the real stderr through a duplicate of it. Only for the CLI process, before TF is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ.get("CXRZOO_DEBUG") or "tensorflow" in sys.modules:
        return
    if sys.stderr is not sys.__stderr__:
        # stderr is already redirected (a notebook, pytest's capture, a caller's redirect_stderr): main() is running
        # inside someone else's process, whose streams are not ours to rewire
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except (OSError, AttributeError, ValueError):  # no usable fd 2 (e.g. an embedded interpreter): leave it
        return
    sys.stderr = os.fdopen(real, "w", buffering=1, encoding=sys.stderr.encoding or "utf-8", errors="replace")


#: Optional packages Keras imports at start-up when they are installed, for features ``cxrzoo predict`` never uses:
#: pandas (DataFrame inputs), IPython (notebook display), Matplotlib (pyplot image galleries), scikit-learn and SciPy
#: (its scikit-learn wrappers). Together about a second of an idle machine's cold start and 190 MB of peak memory
#: (0.77 -> 0.57 GB after importing Keras); what a run does need later (Matplotlib for heat-map figures, SciPy for
#: lung QC) is imported then.
_NOT_AT_START = ("pandas", "IPython", "matplotlib", "sklearn", "scipy")

#: glibc's mallopt parameters (malloc.h): the number of malloc arenas, and the size from which a block is mapped
#: from the system on its own (and given back when freed).
_M_ARENA_MAX = -8
_M_MMAP_THRESHOLD = -3


def _tame_malloc(arenas: int = 2, mmap_threshold: int = 1 << 20) -> None:
    """Caps glibc's malloc arenas and fixes its mmap threshold before TensorFlow starts its thread pools (as
    ``MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=1048576`` would).

    glibc gives each thread that allocates concurrently an arena of its own, up to eight per core, and memory freed in
    one arena is not reused by another; TensorFlow's inter- and intra-op threads then hold more memory at the peak
    than the tensors need (about 50 MB less peak RSS for CXR-Net scoring with two arenas). And glibc raises its mmap
    threshold (up to 32 MB) each time a mapped block is freed, after which large activations are carved from the
    arenas, where freed memory mostly stays resident; a fixed 1 MB threshold returns each one when it is freed (peak
    RSS at 16 images 1.13-1.16 -> 1.11 GB, two runs each). Neither costs measurable time. Elsewhere than glibc this
    does nothing.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_ARENA_MAX, arenas)
        libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
    except (OSError, AttributeError):
        pass


def _lean_start() -> None:
    """Sets a fresh ``cxrzoo predict`` process up for a small memory peak; an in-process caller that has already
    imported Keras (a notebook, a test calling ``main``) keeps its own settings and modules.

    - glibc's malloc tamed (:func:`_tame_malloc`);
    - Keras (and TensorFlow) imported with :data:`_NOT_AT_START` hidden; the packages remain importable afterwards
      (Keras then just treats them as absent);
    - TensorFlow runs one operation at a time (inter-op threads = 1). Each kernel still uses every core through the
      intra-op pool; what goes is running independent operations (the six members' layers) side by side, each
      holding its own activations. Measured with CXR-Net on 16 images at batch 4 (three runs each, fresh
      processes): peak RSS 1.18-1.20 GB -> 1.06 GB, no slower, identical tables (the order in which independent
      operations run does not change what each computes).
    """
    if "keras" in sys.modules:
        return
    _tame_malloc()
    hidden = [name for name in _NOT_AT_START if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # "import name" raises ImportError, which Keras handles
    try:
        import keras  # noqa: F401
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    import contextlib

    import tensorflow as tf

    # RuntimeError: something imported earlier has already started TensorFlow's runtime; it is left as it is
    with contextlib.suppress(RuntimeError):
        tf.config.threading.set_inter_op_parallelism_threads(1)


def _quiet_python_warnings() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore", module=r"(tensorflow|keras|absl)(\..*)?")
    for name in ("tensorflow", "absl", "keras"):
        logging.getLogger(name).setLevel(logging.ERROR)


def format_row(row: dict) -> str:
    """The text line of one result row: path, scores by label, lung areas, the decision, warnings."""
    parts = [str(row["path"])]
    for column, value in row.items():
        if column.startswith("p_") and "_member" not in column:
            parts.append(f"{column[2:]} {value:.4f}")
    if "lung_fraction" in row:
        parts.append(f"lungs {row['lung_fraction']:.1%}")
    if "left_fraction" in row:
        parts.append(f"left {row['left_fraction']:.1%}\tright {row['right_fraction']:.1%}")
    if "positive" in row:
        labels = [c[2:] for c in row if c.startswith("p_") and "_member" not in c]
        parts.append(labels[0] if row["positive"] else (labels[1] if len(labels) > 1 else f"not {labels[0]}"))
    for column, value in row.items():
        if column.endswith("_path") and value:
            parts.append(str(value))
    if row.get("warnings"):
        parts.append(f"warnings: {row['warnings']}")
    return "\t".join(parts)


def _run(args) -> int:
    _quiet_native_stderr()
    _quiet_python_warnings()
    from tqdm import tqdm

    from cxrzoo.batch import DEFAULT_BATCH_SIZE, DEFAULT_THREADS, ModelChoiceError, predict_files

    if not args.inputs and not args.manifest:
        print("cxrzoo predict: error: give image files, folders, glob patterns or --manifest", file=sys.stderr)
        return 2
    if (args.heatmaps or args.format != "csv") and not args.output:
        print("cxrzoo predict: error: --heatmaps and --format need an output folder: -o DIR", file=sys.stderr)
        return 2
    bar = None

    def on_row(row: dict) -> None:
        if args.quiet:
            return
        if bar is not None:
            bar.clear()
        print(json.dumps(row) if args.json else format_row(row), flush=True)

    def on_error(path: str, reason: str) -> None:
        if bar is not None:
            bar.clear()
        message = reason if reason.startswith(path) else f"{path}: {reason}"
        if args.json:
            print(json.dumps({"path": path, "error": reason}), flush=True)
        else:
            print(f"cxrzoo: error: {message}", file=sys.stderr, flush=True)

    def on_start(total: int) -> None:
        nonlocal bar
        if not args.quiet and total >= PROGRESS_MIN_IMAGES:
            bar = tqdm(total=total, unit="image", file=sys.stderr, leave=False, dynamic_ncols=True)

    def progress(n: int) -> None:
        if bar is not None:
            bar.update(n)

    if args.output:
        from cxrzoo.batch import OutputError, check_output_folder

        try:
            check_output_folder(args.output)  # a bad -o fails at once, before TensorFlow is imported
        except OutputError as exc:
            print(f"cxrzoo: error: {exc}", file=sys.stderr)
            return 1
    _lean_start()
    try:
        summary = predict_files(
            args.inputs,
            args.output,
            model=args.model,
            manifest=args.manifest,
            path_column=args.path_column,
            heatmaps=args.heatmaps,
            fmt=args.format,
            engine=args.engine,
            batch_size=args.batch_size or DEFAULT_BATCH_SIZE,
            threads=args.threads or DEFAULT_THREADS,
            jit_compile=args.jit,
            on_row=on_row,
            on_error=on_error,
            on_start=on_start,
            progress=progress,
            ray_options={
                "address": args.ray_address,
                "actors": args.ray_actors,
                "cpus_per_actor": args.ray_cpus_per_actor,
            },
        )
    except ModelChoiceError as exc:
        print(f"cxrzoo predict: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet and summary.output is not None:
        earlier = f" ({summary.skipped} from an earlier run)" if summary.skipped else ""
        table = "results.parquet" if args.format == "parquet" else "results.csv"
        print(
            f"cxrzoo: {_count(summary.total, 'image')}: {_count(summary.results, 'row')}{earlier}, "
            f"{_count(summary.errors, 'error')} -> "
            f"{os.path.join(summary.output, table)} ({summary.seconds:.1f} s)",
            file=sys.stderr,
        )
    return 1 if summary.errors else 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
