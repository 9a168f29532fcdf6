"""LiteRT (TensorFlow Lite) export: the model on prepared tensors, converted by ``tf.lite.TFLiteConverter``.

The signature ``serving_default`` takes the spec's input contract and returns the model's outputs by name. The
spec's JSON record rides in the flatbuffer's metadata table under ``cxrzoo_spec`` (read it with
:func:`cxrzoo.exporting.read_metadata`). Models whose graph needs TensorFlow operations that LiteRT has no
built-in kernel for (CXR-Net's wavelet scattering: complex numbers and inverse FFTs) are refused with the list
of operations, unless ``allow_tf_ops=True`` includes them (``SELECT_TF_OPS``); such a file runs only in a LiteRT
runtime linked with the Flex delegate, which the ``tf.lite.Interpreter`` of TensorFlow 2.21's pip package is not
(measured: "Select TensorFlow op(s) ... not supported by this interpreter").
"""

from __future__ import annotations

import re
import tempfile

import keras
import tensorflow as tf

from cxrzoo.exporting._common import METADATA_KEY, ExportError, metadata_json, prepared_function
from cxrzoo.nn.scattering import complex_fft
from cxrzoo.spec import ModelSpec


def _tf_ops_in(message: str) -> list[str]:
    """The TensorFlow ops a converter error names as unsupported by LiteRT's built-in kernels."""
    found = re.findall(r"TF Select ops: ([^\n]+)", message)
    names: set[str] = set()
    for line in found:
        names.update(part.strip().rstrip(".") for part in line.split(","))
    if not names:
        names.update(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", message))
    return sorted(n for n in names if n)


def _converter(folder: str, ops: list) -> tf.lite.TFLiteConverter:
    converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=["serving_default"])
    converter.target_spec.supported_ops = ops
    return converter


def convert(model: keras.Model, spec: ModelSpec, *, allow_tf_ops: bool = False) -> tuple[bytes, list[str]]:
    """The LiteRT flatbuffer of ``model`` and the TensorFlow ops it carries (empty unless ``allow_tf_ops``)."""
    builtins = [tf.lite.OpsSet.TFLITE_BUILTINS]
    with tempfile.TemporaryDirectory() as folder:
        _save(model, spec, folder)
        try:
            return _converter(folder, builtins).convert(), []
        except Exception as err:  # the converter raises ConverterError (and others) with the MLIR diagnostics
            message = str(err)
            ops = _tf_ops_in(message)
            if not ops:
                raise ExportError(f"{spec.name}: LiteRT conversion failed: {_first_lines(message)}") from None
    if not allow_tf_ops:
        raise ExportError(
            f"{spec.name}: LiteRT's built-in operations cannot run this model; it needs the TensorFlow ops "
            f"{', '.join(ops)}. Export with allow_tf_ops=True (CLI: --allow-tf-ops) to include them "
            "(SELECT_TF_OPS); the file then runs only where LiteRT is linked with the Flex delegate (the "
            "tf.lite.Interpreter of TensorFlow 2.21's pip package is not)"
        )
    with tempfile.TemporaryDirectory() as folder, complex_fft():
        # LiteRT's built-in RFFT2D takes power-of-two lengths only: the scattering's FFTs go to the Flex delegate
        _save(model, spec, folder)
        try:
            data = _converter(folder, [*builtins, tf.lite.OpsSet.SELECT_TF_OPS]).convert()
        except Exception as err:
            raise ExportError(f"{spec.name}: LiteRT conversion failed: {_first_lines(str(err))}") from None
    return data, flex_ops(data)


def flex_ops(data: bytes) -> list[str]:
    """The TensorFlow ops a LiteRT flatbuffer runs through the Flex delegate (its ``Flex*`` custom ops)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    names = set()
    for code in model.operatorCodes or []:
        custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
        if custom and custom.startswith("Flex"):
            names.add(custom.removeprefix("Flex"))
    return sorted(names)


def _save(model: keras.Model, spec: ModelSpec, folder: str) -> None:
    """The prepared function as the SavedModel the converter reads."""
    # Written by Keras' ExportArchive, as keras.Model.export(format="litert") does: the converter then freezes the
    # weights into constants and keeps the signature's input and output names. (From a concrete function, or a
    # tf.Module holding the Keras model, the weights stay resource variables that nothing initializes in the
    # flatbuffer, and the interpreter returns NaN.)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", prepared_function(model, spec))
    archive.write_out(folder, verbose=False)


def _first_lines(message: str, count: int = 6) -> str:
    lines = [line for line in message.splitlines() if line.strip()]
    return "\n".join(lines[:count])


def add_metadata(flatbuffer: bytes, record: dict) -> bytes:
    """``flatbuffer`` with ``record`` (JSON) in its metadata table under ``cxrzoo_spec``."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    buffer = schema.BufferT()
    buffer.data = list(metadata_json(record).encode("utf-8"))
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_KEY
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_litert_metadata(data: bytes) -> str | None:
    """The ``cxrzoo_spec`` JSON text of a LiteRT flatbuffer, or None."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    for entry in model.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name == METADATA_KEY:
            return bytes(bytearray(model.buffers[entry.buffer].data)).decode("utf-8")
    return None
