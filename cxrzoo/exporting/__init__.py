"""Take a model elsewhere: :func:`export` to a ``.keras`` file, a SavedModel (with the paper's preparation inside),
LiteRT (TensorFlow Lite) or ONNX, each carrying the model's spec.

=============  ===================================================================================================
format         what is written
=============  ===================================================================================================
keras          the ``.keras`` file (the spec in its config; ``keras.models.load_model(path)`` with safe_mode)
saved_model    a folder: ``serving_default`` (encoded images → outputs by label, preparation in the graph, where
               the spec's recipe has a graph form), ``prepared`` (the input contract), ``metadata``; loads in
               plain TensorFlow and TensorFlow Serving, without cxrzoo
litert         a ``.tflite`` file on prepared tensors; models that need TensorFlow ops (CXR-Net's FFTs) only with
               ``allow_tf_ops=True``
onnx           a ``.onnx`` file on prepared tensors (tf2onnx, opset 17; ``pip install 'cxrzoo[export]'``)
=============  ===================================================================================================

Every format carries the same JSON record (:func:`read_metadata`): the spec, labels, input contract, weights tags
with their sha256, and the cxrzoo/TensorFlow/Keras versions. docs/export.md has the tag × format table and the
TensorFlow Serving instructions.

Example::

    import cxrzoo
    cxrzoo.export("cxrnet", "saved_model", "cxrnet_sm")          # serving_default takes PNG/JPEG bytes
    cxrzoo.export("res_cr_net.v7_lungs", "onnx", "lungs.onnx")
    cxrzoo.exporting.read_metadata("lungs.onnx")["labels"]        # ['lungs', 'non_lungs']
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cxrzoo.exporting._common import (
    METADATA_KEY,
    METADATA_NAME,
    ExportError,
    check_target,
    metadata,
    resolve,
    write_file,
    write_folder,
)

FORMATS = ("keras", "saved_model", "litert", "onnx")
#: The file suffix each file format gets when the path has none.
SUFFIXES = {"keras": ".keras", "litert": ".tflite", "onnx": ".onnx"}


def export(
    name_or_model: Any,
    format: str = "saved_model",
    path: str | os.PathLike | None = None,
    *,
    allow_tf_ops: bool = False,
    opset: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Exports a published model (``"cxrnet"``, ``"res_cr_net.v7_lungs"``, …) or a model carrying a spec.

    Args:
        name_or_model: a spec or architecture name (built with its published weights) or a model built by
            :func:`cxrzoo.create_model` (fine-tuned or not).
        format: one of :data:`FORMATS`.
        path: where to write (default: the spec's name plus the format's suffix, in the current folder). Written
            atomically: a failed export leaves nothing behind.
        allow_tf_ops: LiteRT only: include TensorFlow ops LiteRT has no built-in kernel for (``SELECT_TF_OPS``).
        opset: ONNX only: the opset (default 17).
        overwrite: replace an existing ``path``.

    Returns:
        The path written.

    Raises:
        ExportError: the model cannot be exported in this format (the message names the ops and the way out).
        FileExistsError: ``path`` exists and ``overwrite`` is False.

    Example::

        cxrzoo.export("cxrnet", "litert", "cxrnet.tflite", allow_tf_ops=True)
    """
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    if allow_tf_ops and format != "litert":
        raise ValueError("allow_tf_ops applies to format='litert' only")
    if opset is not None and format != "onnx":
        raise ValueError("opset applies to format='onnx' only")
    model, spec, from_object = resolve(name_or_model)
    if path is None:
        path = spec.name + SUFFIXES.get(format, "")
    target = check_target(path, overwrite)
    if format == "keras" and target.suffix != ".keras":
        raise ValueError(f"a Keras model file must end in .keras, got {target.name!r}")
    record = metadata(spec, fmt=format, from_object=from_object)

    if format == "keras":
        # the .keras file carries the full spec in the model's config; the record is the same information
        return write_file(target, lambda tmp: _save_keras(model, tmp))
    if format == "saved_model":
        from cxrzoo.exporting.saved_model import write_saved_model

        return write_folder(target, lambda tmp: write_saved_model(tmp, model, spec, record))
    if format == "litert":
        from cxrzoo.exporting import litert

        data, tf_ops = litert.convert(model, spec, allow_tf_ops=allow_tf_ops)
        record["tf_ops"] = tf_ops
        data = litert.add_metadata(data, record)
        return write_file(target, lambda tmp: Path(tmp).write_bytes(data))
    from cxrzoo.exporting import onnx as onnx_export

    proto = onnx_export.convert(model, spec, record, opset=opset or onnx_export.DEFAULT_OPSET)
    record["opset"] = opset or onnx_export.DEFAULT_OPSET
    return write_file(target, lambda tmp: Path(tmp).write_bytes(proto.SerializeToString()))


def _save_keras(model, tmp: str) -> None:
    # keras insists on the .keras suffix: save beside the temporary file, then move over it
    staging = tmp + ".keras"
    try:
        model.save(staging)
        os.replace(staging, tmp)
    finally:
        Path(staging).unlink(missing_ok=True)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The record an export carries (spec, labels, input contract, weights and their sha256, versions), read
    without loading the model: from a SavedModel folder, a ``.tflite``, ``.onnx`` or ``.keras`` file."""
    path = Path(path)
    if path.is_dir():
        asset = path / "assets" / METADATA_NAME
        if not asset.exists():
            raise ValueError(f"{path}: a SavedModel without {METADATA_NAME}; not exported by cxrzoo")
        return json.loads(asset.read_text(encoding="utf-8"))
    suffix = path.suffix.lower()
    if suffix == ".keras":
        import zipfile

        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
        spec = config.get("config", {}).get("spec")
        if spec is None:
            raise ValueError(f"{path}: a .keras file without a cxrzoo spec")
        return {"name": spec["name"], "format": "keras", "labels": spec["output"]["labels"], "spec": spec}
    if suffix == ".onnx":
        from cxrzoo.exporting.onnx import read_onnx_metadata

        text = read_onnx_metadata(str(path))
    elif suffix in (".tflite", ".litert"):
        from cxrzoo.exporting.litert import read_litert_metadata

        text = read_litert_metadata(path.read_bytes())
    else:
        raise ValueError(f"{path}: not an export (expected a SavedModel folder, .keras, .tflite or .onnx)")
    if text is None:
        raise ValueError(f"{path}: no {METADATA_KEY!r} metadata; not exported by cxrzoo")
    return json.loads(text)


__all__ = ["FORMATS", "ExportError", "export", "read_metadata"]
