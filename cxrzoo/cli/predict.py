"""``cxrzoo predict``: COVID-19 scores (and the authors' heat maps) for chest X-ray files.

    cxrzoo predict [--model cxrnet] [--json] [--heatmaps DIR] [--batch-size N] [--jit] IMAGE...

Each IMAGE (PNG, JPEG, DICOM, ...) is read with :func:`cxrzoo.preprocessing.read_image` at its native depth,
prepared as the CXR-Net authors did (:func:`cxrzoo.prepare_cxrnet_input`) and scored by the end-to-end
:func:`cxrzoo.build_cxrnet` with the published weights. One line per image on stdout (a JSON object with
``--json``); an unreadable file gets an error line and the others are still processed; the exit status is 1 if
any file failed. With ``--heatmaps DIR`` each image also gets ``DIR/<name>_heatmaps.png`` (the authors' four
panels) and the raw maps ``DIR/<name>_{positive,negative,difference}.npy``.

Scores and maps come from one compiled TensorFlow program per batch (:func:`cxrzoo.models.cxrnet.cxrnet_heatmaps`);
``--jit`` compiles Module 2 and the heat maps with XLA (Module 1 stays on TensorFlow's kernels), which pays off
for long lists of images. TensorFlow's native start-up messages are kept off stderr (``CXRZOO_DEBUG=1`` shows
them), so stderr carries only this command's errors and its progress bar (shown for more than three images).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from cxrzoo.fileio import atomic_write

if TYPE_CHECKING:
    import keras

MODELS = ("cxrnet",)
CLASS_NAMES = ("covid", "non_covid")
PROGRESS_MIN_IMAGES = 4


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "predict",
        help="score chest X-ray files (PNG, JPEG, DICOM) and draw heat maps",
        description="Score chest X-ray files with a published model; one line per image.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, DICOM, ...)")
    parser.add_argument("--model", default="cxrnet", choices=MODELS, help="model (default: cxrnet)")
    parser.add_argument("--json", action="store_true", help="one JSON object per image")
    parser.add_argument("--heatmaps", metavar="DIR", help="write the heat-map figure and raw maps (.npy) here")
    parser.add_argument("--batch-size", type=_positive_int, default=8, metavar="N", help="images per batch (8)")
    parser.add_argument(
        "--jit",
        action="store_true",
        help="compile with XLA: about half the time per image after a one-time compilation of "
        "20-30 s per batch size; worth it for a few dozen images or more",
    )
    parser.set_defaults(func=_run)


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
    try:
        sys.stderr.flush()
        real = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except (OSError, AttributeError, ValueError):  # no usable fd 2 (e.g. an embedded interpreter): leave it
        return
    sys.stderr = os.fdopen(real, "w", buffering=1, encoding=sys.stderr.encoding or "utf-8", errors="replace")


def _quiet_python_warnings() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore", module=r"(tensorflow|keras|absl)(\..*)?")
    for name in ("tensorflow", "absl", "keras"):
        logging.getLogger(name).setLevel(logging.ERROR)


def build_model(name: str) -> keras.Model:
    """The model behind ``--model NAME`` with its published weights."""
    if name != "cxrnet":
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    from cxrzoo.registry import create_model

    return create_model("cxrnet")


def _prepare(path: str):
    from cxrzoo.models.cxrnet import prepare_cxrnet_input
    from cxrzoo.preprocessing.io import MAX_ASPECT, MIN_SIDE, read_image

    # the radiograph check: a strip or a thumbnail would otherwise be scored with confidence
    return prepare_cxrnet_input(read_image(path, native_depth=True, min_side=MIN_SIDE, max_aspect=MAX_ASPECT))


def _output_names(paths: list[str]) -> dict[str, str]:
    """A distinct file stem per input (``name``, then ``name-2``, ... when two inputs share a name)."""
    seen: dict[str, int] = {}
    names = {}
    for path in paths:
        stem = Path(path).stem or "image"
        seen[stem] = seen.get(stem, 0) + 1
        names[path] = stem if seen[stem] == 1 else f"{stem}-{seen[stem]}"
    return names


def _atomic_write(path: Path, write) -> None:
    atomic_write(path, write)  # the shared umask-respecting helper: maps are as readable as any new file


def _write_heatmaps(folder: Path, stem: str, image, maps, index: int, title: str) -> dict[str, str]:
    import numpy as np

    from cxrzoo.models.cxrnet.heatmaps import cxrnet_figure

    written = {}
    for key in ("positive", "negative", "difference"):
        target = folder / f"{stem}_{key}.npy"
        _atomic_write(target, lambda tmp, k=key: np.save(tmp, maps[k][index], allow_pickle=False))
        written[key] = str(target)
    target = folder / f"{stem}_heatmaps.png"
    with warnings.catch_warnings():
        # A file name in a script DejaVu Sans lacks makes Matplotlib warn once per missing glyph wherever text is
        # laid out (cxrnet_figure's tight_layout, then savefig); stderr is for errors and progress only.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        figure = cxrnet_figure(image, maps, index, title=title)
        _atomic_write(target, lambda tmp: figure.savefig(tmp, format="png", bbox_inches="tight"))
    written["figure"] = str(target)
    return written


def _report(args, record: dict) -> None:
    if args.json:
        print(json.dumps(record), flush=True)
    elif "error" in record:
        print(f"cxrzoo: error: {record['image']}: {record['error']}", file=sys.stderr, flush=True)
    else:
        p = record["probabilities"]
        print(
            f"{record['image']}\tcovid {p['covid']:.4f}\tnon_covid {p['non_covid']:.4f}\t"
            f"lungs {record['lung_fraction']:.1%}\t{record['prediction']}",
            flush=True,
        )


def _score_batch(model, batch, jit: bool):
    """Scores, lung probability, whether Module 2 saw any lung, and the heat maps of a (B, 300, 340) batch."""
    import numpy as np

    from cxrzoo.models.cxrnet.heatmaps import cxrnet_heatmaps

    # one compiled program gives the scores and the maps (the maps cost a few milliseconds more)
    maps = cxrnet_heatmaps(model, batch.astype(np.float32), empty="zeros", jit_compile=jit)
    return maps["probabilities"], maps["lung_mask"], maps["mask"].any(axis=(1, 2)), maps


def _run(args) -> int:
    _quiet_native_stderr()
    _quiet_python_warnings()
    import numpy as np
    from tqdm import tqdm

    folder = None
    if args.heatmaps:
        folder = Path(args.heatmaps)
        folder.mkdir(parents=True, exist_ok=True)
    model = build_model(args.model)
    names = _output_names(args.images)
    failures = 0
    bar = tqdm(
        total=len(args.images),
        unit="image",
        file=sys.stderr,
        leave=False,
        disable=len(args.images) < PROGRESS_MIN_IMAGES,
    )
    for start in range(0, len(args.images), args.batch_size):
        chunk = args.images[start : start + args.batch_size]
        ready, arrays = [], []
        for path in chunk:
            try:
                arrays.append(_prepare(path))
                ready.append(path)
            except (OSError, ValueError, ImportError, MemoryError) as exc:  # unreadable, corrupt, too large, ...
                failures += 1
                bar.clear()
                _report(args, {"image": path, "model": args.model, "error": str(exc) or type(exc).__name__})
        if ready:
            batch = np.stack(arrays)
            probabilities, lungs, has_lungs, maps = _score_batch(model, batch, args.jit)
            for i, path in enumerate(ready):
                bar.clear()
                if not has_lungs[i]:
                    failures += 1
                    _report(
                        args,
                        {
                            "image": path,
                            "model": args.model,
                            "error": "no lung region found (empty CXR-Net lung mask); is this a frontal chest X-ray?",
                        },
                    )
                    continue
                p = [float(v) for v in probabilities[i]]
                record = {
                    "image": path,
                    "model": args.model,
                    "probabilities": dict(zip(CLASS_NAMES, (round(v, 6) for v in p))),
                    "prediction": CLASS_NAMES[int(np.argmax(p))],
                    "lung_fraction": round(float(np.mean(lungs[i] > 0.5)), 6),
                }
                if folder is not None:
                    record["heatmaps"] = _write_heatmaps(folder, names[path], batch[i], maps, i, Path(path).name)
                _report(args, record)
        bar.update(len(chunk))
    bar.close()
    return 1 if failures else 0
