"""Per-image CPU inference latency of every model in the zoo, at its paper input size, batch 1 and 16, next to the
seeds' published timings.

Every name in ``cxrzoo.list_models()`` is built with its registered defaults (the paper configuration, random
weights: latency does not depend on the values) and run through a compiled ``predict_on_batch``; after two warm-up
calls the median of ``--repeats`` timed calls is divided by the batch size.

Baseline measured in the same run: ``keras.applications.ResNet50`` at 224×224×3, batch 1; every latency is also
printed as a ratio to it, so numbers from different machines can be compared. Published timings:

* seed 2 (Loconte & Colavito) Table V: ms per image on an Intel i5-4460 CPU (quad-core, 3.4 GHz) and a GTX 1660;
* thesis (Tahir) Tables 11 and 12: ms per CXR on a GTX 1080 GPU (PyTorch) — GPU times, shown for reference only.

Usage::

    python benchmarks/inference_latency.py                 # every model (about 15 minutes on 2 idle cores)
    python benchmarks/inference_latency.py --quick         # one model per paper, batch 1 and 2, 1 repeat
    python benchmarks/inference_latency.py --pattern "fpn_*"
"""

from __future__ import annotations

import argparse
import fnmatch
import gc
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CXRZOO_SHARED", REPO.parent / "shared"))

# ms per image: (CPU, GPU) from seed 2 Table V
SEED2_TABLE_V = {
    "alexnet": (21.5, 2.6),
    "vgg16": (171.0, 12.7),
    "resnet50": (95.1, 11.0),
    "densenet121": (84.1, 21.5),
    "inception_v3": (116.4, 18.3),
}
# ms per CXR on a GTX 1080 (thesis Tables 11 and 12)
THESIS_GPU_MS = {
    "unet_resnet18": 5.78,
    "unet_resnet50": 10.44,
    "unet_densenet121": 22.86,
    "unet_densenet161": 29.74,
    "unet_inceptionv4": 26.53,
    "unet_plus_plus_resnet18": 8.30,
    "unet_plus_plus_resnet50": 19.90,
    "unet_plus_plus_densenet121": 25.13,
    "unet_plus_plus_densenet161": 48.62,
    "unet_plus_plus_inceptionv4": 32.53,
    "fpn_resnet18": 5.74,
    "fpn_resnet50": 10.34,
    "fpn_densenet121": 22.68,
    "fpn_densenet161": 29.62,
    "fpn_inceptionv4": 26.08,
    "cxr_classifier_resnet18": 3.83,
    "cxr_classifier_resnet50": 8.49,
    "cxr_classifier_densenet121": 20.42,
    "cxr_classifier_densenet161": 27.40,
    "cxr_classifier_inceptionv4": 23.98,
}
DEFAULT_SIZE = 256  # for models registered with a free spatial size
# Inference configuration where it differs from the training default (torchvision's eval mode drops the aux head)
INFERENCE_KWARGS = {"inception_v3": {"aux_classifier": False}}


def _inputs(model, batch: int, rng) -> list[np.ndarray]:
    arrays = []
    for tensor in model.inputs:
        shape = [batch] + [DEFAULT_SIZE if d is None else int(d) for d in tensor.shape[1:]]
        arrays.append(rng.random(shape, dtype=np.float32))
    return arrays


def time_model(model, batch: int, repeats: int, rng) -> float:
    """Median seconds per image of ``model.predict_on_batch`` at ``batch``."""
    x = _inputs(model, batch, rng)
    x = x[0] if len(x) == 1 else x
    for _ in range(2):
        model.predict_on_batch(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_on_batch(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) / batch


def _input_label(model) -> str:
    shapes = [tuple(DEFAULT_SIZE if d is None else d for d in t.shape[1:]) for t in model.inputs]
    return " + ".join("×".join(str(d) for d in s) for s in shapes)


def _published(name: str, paper: str) -> str:
    if paper == "screening" and name in SEED2_TABLE_V:
        cpu, gpu = SEED2_TABLE_V[name]
        return f"{cpu:g} CPU / {gpu:g} GPU (Table V)"
    if name in THESIS_GPU_MS:
        table = 12 if name.startswith("cxr_classifier") else 11
        return f"{THESIS_GPU_MS[name]:g} GPU (Table {table})"
    return "-"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one model per paper, batch 1 and 2, 1 repeat")
    parser.add_argument("--pattern", default="*", help="glob on the registry names")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    # Never download: builders whose defaults load published weights read them from the offline mirror.
    os.environ["CXRZOO_OFFLINE"] = "1"
    if (SHARED / "weights").is_dir():
        os.environ.setdefault("CXRZOO_WEIGHTS_PATH", str(SHARED / "weights"))

    import keras
    import tensorflow as tf

    import cxrzoo
    from cxrzoo.models.encoders import count_trainable

    batches, repeats = (args.batches, args.repeats) if not args.quick else ([1, 2], 1)
    names = [n for n in cxrzoo.list_models() if fnmatch.fnmatchcase(n, args.pattern)]
    if args.quick:
        seen, picked = set(), []
        for n in names:
            paper = cxrzoo.model_info(n).paper
            if paper not in seen:
                seen.add(paper)
                picked.append(n)
        names = picked
    rng = np.random.default_rng(0)
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU(s) visible; "
        f"{len(names)} models, batches {batches}, median of {repeats}",
        flush=True,
    )

    baseline = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))
    base = time_model(baseline, 1, repeats, rng)
    del baseline
    print(f"baseline keras.applications.ResNet50 224×224×3, batch 1: {base * 1e3:.1f} ms/image", flush=True)

    rows = []
    for name in names:
        info = cxrzoo.model_info(name)
        try:
            model = cxrzoo.create_model(name, **INFERENCE_KWARGS.get(name, {}))
        except Exception as exc:  # a model that cannot be built with its defaults is reported, not hidden
            reason = str(exc).splitlines()[0][:160]
            rows.append((name, info.paper, "-", None, [], f"not built: {type(exc).__name__}: {reason}"))
            continue
        per_batch = [time_model(model, b, repeats, rng) for b in batches]
        rows.append(
            (name, info.paper, _input_label(model), count_trainable(model), per_batch, _published(name, info.paper))
        )
        print(
            f"  {name}: " + ", ".join(f"batch {b} {t * 1e3:.1f} ms/image" for b, t in zip(batches, per_batch)),
            flush=True,
        )
        del model
        keras.backend.clear_session()
        gc.collect()

    header = " | ".join(f"batch {b} (ms/img)" for b in batches)
    print(f"\n| model | paper | input | trainable params | {header} | batch 1 / baseline | published (ms/img) |")
    print("|---|---|---|---|" + "---|" * len(batches) + "---|---|")
    for name, paper, shape, params, per_batch, published in rows:
        if not per_batch:
            print(f"| {name} | {paper} | {shape} | - |" + " - |" * len(batches) + f" - | {published} |")
            continue
        cells = " | ".join(f"{t * 1e3:.1f}" for t in per_batch)
        print(f"| {name} | {paper} | {shape} | {params:,} | {cells} | {per_batch[0] / base:.2f} | {published} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
