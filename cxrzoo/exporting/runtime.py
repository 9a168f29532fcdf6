"""Run an exported model in its own runtime: :func:`load_export` gives one calling convention for all formats.

``load_export(path)(image=x)`` (inputs by the model's input names, NumPy arrays of the spec's input contract)
returns the outputs by name as NumPy arrays, with the format's own runtime: Keras for ``.keras``, TensorFlow for a
SavedModel (its ``prepared`` signature), ``tf.lite.Interpreter`` for LiteRT (the full TensorFlow package's, which
includes the Flex delegate) and ONNX Runtime (CPU) for ONNX. The tests and ``benchmarks/export_latency.py`` compare
formats through it.

Example::

    run = load_export("lungs.onnx")
    run(image=x)["mask"].shape          # (B, 300, 340, 2)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

Runner = Callable[..., dict[str, np.ndarray]]


def load_export(path: str | os.PathLike, *, threads: int | None = None) -> Runner:
    """A function running the export at ``path`` on prepared inputs given by name; see the module docstring.

    Args:
        path: a SavedModel folder, or a ``.keras``, ``.tflite`` or ``.onnx`` file written by
            :func:`cxrzoo.export`.
        threads: LiteRT and ONNX Runtime: intra-op threads (default: the runtime's own choice).
    """
    path = Path(path)
    if path.is_dir():
        return _saved_model(path)
    suffix = path.suffix.lower()
    if suffix == ".keras":
        return _keras(path)
    if suffix in (".tflite", ".litert"):
        return _litert(path, threads)
    if suffix == ".onnx":
        return _onnx(path, threads)
    raise ValueError(f"{path}: not an export (expected a SavedModel folder, .keras, .tflite or .onnx)")


def _keras(path: Path) -> Runner:
    import keras

    import cxrzoo.models  # noqa: F401  (registers the custom layers the file names)
    from cxrzoo.exporting._common import output_dict

    model = keras.models.load_model(path, safe_mode=True)
    names = [t.name.split(":")[0] for t in model.inputs]

    def run(**inputs):
        args = [inputs[n] for n in names]
        out = model(args if len(args) > 1 else args[0], training=False)
        out = output_dict(out, model.spec, tuple(names))
        return {k: np.asarray(v) for k, v in out.items()}

    return run


def _saved_model(path: Path) -> Runner:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures["prepared"]

    def run(**inputs):
        out = signature(**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in out.items()}

    run.loaded = loaded  # keeps the variables alive
    return run


def _litert(path: Path, threads: int | None) -> Runner:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=threads)
    runner = interpreter.get_signature_runner("serving_default")
    dtypes = {k: v["dtype"] for k, v in runner.get_input_details().items()}

    def run(**inputs):
        # the signature runner resizes its input tensors to each call's shapes; outputs are copied out of the
        # interpreter's buffers, which the next call overwrites
        out = runner(**{k: np.asarray(v, dtypes[k]) for k, v in inputs.items()})
        return {k: np.array(v) for k, v in out.items()}

    run.interpreter = interpreter
    return run


def _onnx(path: Path, threads: int | None) -> Runner:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("running ONNX files needs onnxruntime: pip install 'cxrzoo[export]'") from None
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]

    def run(**inputs):
        values = session.run(names, {k: np.asarray(v, np.float32) for k, v in inputs.items()})
        return dict(zip(names, values))

    return run
