"""Per-image CPU latency of the exported formats against the Keras model, in the same run.

For each published model: the Keras model (``predict_on_batch``, a compiled TensorFlow function, as
``cxrzoo.pipeline`` runs it), its SavedModel (``prepared`` signature, TensorFlow), its LiteRT file
(``tf.lite.Interpreter``, XNNPACK) and its ONNX file (ONNX Runtime, CPU), at batch 1 and 8, on prepared inputs
from real images. After two warm-up calls the median of ``--repeats`` timed calls is divided by the batch size.
Formats a model cannot be exported to (CXR-Net: ONNX; LiteRT runs it only with a Flex delegate, which
TensorFlow 2.21's pip package lacks) are reported with the reason. Also prints the largest difference to the
Keras outputs.

Usage::

    python benchmarks/export_latency.py                       # the default tags (about 15 minutes on 2 cores)
    python benchmarks/export_latency.py --tags res_cr_net.v7_lungs --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CXRZOO_SHARED", REPO.parent / "shared"))
DEFAULT_TAGS = ("res_cr_net.v7_lungs", "covid_cxnet_base.v1_0", "cxrnet_member.hfhs_fold0", "cxrnet.hfhs_v7")
FORMATS = ("keras", "saved_model", "litert", "onnx")
SUFFIXES = {"keras": ".keras", "saved_model": "", "litert": ".tflite", "onnx": ".onnx"}
# Not attempted here (each attempt takes 5-10 minutes on 2 cores before it fails; docs/export.md has the measured
# reasons): CXR-Net's wavelet scattering.
NOT_RUNNABLE = {
    "litert": "needs TensorFlow ops (Complex, IFFT2D, IRFFT2D, ...): exports with allow_tf_ops=True, but "
    "TensorFlow 2.21's tf.lite.Interpreter has no Flex delegate to run them",
    "onnx": "tf2onnx: unsupported TensorFlow ops Complex, IFFT2D, IRFFT2D, Imag, Real",
}
SCATTERING_ARCHS = ("cxrnet", "cxrnet_classifier")


def _inputs(tag: str, batch: int) -> dict:
    """Prepared inputs of real images (repeated to fill the batch), keyed by the model's input name."""
    import cxrzoo

    model = cxrzoo.create_model(tag)
    arch = tag.partition(".")[0]
    if arch == "cxrnet_member":
        import keras

        classifier = cxrzoo.create_model("cxrnet_classifier.hfhs_ensemble6")
        end_to_end = cxrzoo.create_model("cxrnet.hfhs_v7")
        files = sorted((SHARED / "data" / "v7_covid_lungs" / "val" / "images").glob("*.png"))[:1]
        x = cxrzoo.pipeline("cxrnet_classifier.hfhs_ensemble6", model=classifier).preprocess(files)
        mask = np.asarray(end_to_end(cxrzoo.pipeline("cxrnet", model=end_to_end).preprocess(files))["mask"])
        features = keras.Model(classifier.inputs, classifier.get_layer("wst_features").output)
        one = np.asarray(features([x, mask]), np.float32)
    elif arch == "covid_cxnet_base":
        files = sorted((SHARED / "fixtures" / "covid_cxnet" / "images").glob("*.jpg"))[:1]
        one = cxrzoo.pipeline(tag, model=model).preprocess(files)
    else:
        files = sorted((SHARED / "data" / "v7_covid_lungs" / "val" / "images").glob("*.png"))[:1]
        one = cxrzoo.pipeline(tag, model=model).preprocess(files)
    return {model.inputs[0].name: np.repeat(one, batch, axis=0)}


def _time(call, repeats: int) -> float:
    call()
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _max_diff(got: dict, want: dict) -> float:
    return max(float(np.max(np.abs(np.asarray(got[k], np.float64) - want[k]))) for k in want if k in got)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", nargs="+", default=list(DEFAULT_TAGS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if (SHARED / "weights").exists():
        os.environ.setdefault("CXRZOO_WEIGHTS_PATH", str(SHARED / "weights"))
    os.environ.setdefault("CXRZOO_OFFLINE", "1")
    import cxrzoo
    from cxrzoo.exporting import ExportError, export
    from cxrzoo.exporting._common import output_dict
    from cxrzoo.exporting.runtime import load_export

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for tag in args.tags:
            model = cxrzoo.create_model(tag)
            names = tuple(t.name for t in model.inputs)
            runners, reasons = {}, {}
            for fmt in FORMATS[1:]:
                if tag.partition(".")[0] in SCATTERING_ARCHS and fmt in NOT_RUNNABLE:
                    reasons[fmt] = NOT_RUNNABLE[fmt]
                    continue
                start = time.perf_counter()
                try:
                    path = export(model, fmt, Path(folder) / f"{tag}{SUFFIXES[fmt]}")
                    runners[fmt] = load_export(path)
                    print(f"{tag}: {fmt} exported in {time.perf_counter() - start:.0f} s", file=sys.stderr)
                except (ExportError, ImportError) as err:
                    reasons[fmt] = str(err).split(";")[0][:160]
            for batch in args.batches:
                inputs = _inputs(tag, batch)
                x = next(iter(inputs.values()))
                want = {k: np.asarray(v) for k, v in output_dict(model.predict_on_batch(x), model.spec, names).items()}
                keras_s = _time(lambda m=model, x=x: m.predict_on_batch(x), args.repeats) / batch
                row = {"tag": tag, "batch": batch, "keras": (keras_s, 0.0)}
                for fmt, run in runners.items():
                    try:
                        seconds = _time(lambda run=run, inputs=inputs: run(**inputs), args.repeats) / batch
                        row[fmt] = (seconds, _max_diff(run(**inputs), want))
                    except RuntimeError as err:  # e.g. a LiteRT file needing the Flex delegate
                        row[fmt] = str(err).split(".")[0][:120]
                for fmt, reason in reasons.items():
                    row[fmt] = reason
                rows.append(row)
                print(row, file=sys.stderr, flush=True)
    header = "| model | batch | Keras (ms/image) | SavedModel | LiteRT | ONNX Runtime |"
    print(header + " max \\|Δ\\| vs Keras (SM / LiteRT / ONNX) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for row in rows:
        base = row["keras"][0]
        cells, diffs = [], []
        for fmt in FORMATS[1:]:
            value = row.get(fmt)
            if isinstance(value, tuple):
                cells.append(f"{value[0] * 1e3:.1f} ({base / value[0]:.2f}×)")
                diffs.append(f"{value[1]:.1e}")
            else:
                cells.append("✗")
                diffs.append("–")
        print(f"| {row['tag']} | {row['batch']} | {base * 1e3:.1f} | {' | '.join(cells)} | {' / '.join(diffs)} |")
    for row in rows[:: len(args.batches)]:
        for fmt in FORMATS[1:]:
            if isinstance(row.get(fmt), str):
                print(f"- {row['tag']} {fmt}: {row[fmt]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
