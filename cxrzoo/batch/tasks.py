"""The engine-agnostic batch function of ``cxrzoo predict``: prepared rows in, result rows out, from the spec.

Two picklable callables, used the same way by the local engine (threads) and the Ray engine (tasks and actors):

* :class:`Preparer` turns an input (``{"index", "path", "key", "source"}``) into a **prepared row**: the file's
  sha256, the model's input as prepared by the spec's recipe, the image's size and image-level QC warnings. It
  skips decoding when the row is already complete in the output folder (same key and sha256).
* :class:`BatchFunction` builds the model once and turns a list of prepared rows into **result rows**: values
  named by the spec's labels, QC warnings, and artifacts as encoded bytes (PNG, NPZ). It does no file I/O, so the
  results can come back from any machine; the caller writes them (:class:`cxrzoo.batch.ResultStore`).

Rows are flat dicts of ``str``, ``int``, ``bool`` and ``bytes`` so that Ray Data can carry them as Arrow columns.
Results do not depend on which other images share a batch (tested), so every engine and every batch size gives
the same table.

Example::

    prep, fn = Preparer("res_cr_net.v7_lungs"), BatchFunction("res_cr_net.v7_lungs")
    rows = [prep({"index": 0, "path": "cxr.png", "key": "cxr.png", "source": "cxr.png"})]
    result = fn(rows)[0]            # {"values": {"lung_fraction": ...}, "artifacts": {"mask.png": b"..."}, ...}
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras

    from cxrzoo.spec import ModelSpec

#: QC thresholds: a lung mask below this fraction of the image is "tiny"; an edge of the image along which more
#: than EDGE_FRACTION of the pixels are lung means the lungs are probably cut off there.
TINY_LUNG_FRACTION = 0.05
EDGE_FRACTION = 0.10
#: Width / height outside this range is unusual for a frontal CXR.
ASPECT_RANGE = (0.6, 1.7)
#: An image with a side below this fraction of the size the weights were trained at is flagged (upsampled).
SMALL = 0.75
#: 8-bit images whose values span fewer levels than this are flagged as low-contrast.
MIN_LEVELS = 32

_UNSUPPORTED = {
    "cxrnet_classifier": "it is CXR-Net's Module 2 alone and takes [X, M] (the image and Module 1's mask); "
    "use --model cxrnet, the end-to-end model",
    "cxrnet_member": "it is one Module 2 member and takes wavelet-scattering features; use --model cxrnet",
}


class ModelChoiceError(ValueError):
    """``--model`` names no model ``cxrzoo predict`` can run."""


def supported_models() -> list[str]:
    """The published models (``arch.tag``) ``cxrzoo predict`` runs: every one whose weights can be obtained and
    whose input is an image."""
    from cxrzoo.registry import list_specs, model_spec

    return [n for n in list_specs() if _why_not(model_spec(n)) is None]


def resolve_model(name: str) -> ModelSpec:
    """The :class:`~cxrzoo.spec.ModelSpec` behind ``--model NAME``: a published model (``"res_cr_net.jms_lungs"``)
    or an architecture, meaning its default published weights (``"cxrnet"`` → ``"cxrnet.hfhs_v7"``).

    Raises:
        ModelChoiceError: an unknown name, an architecture without obtainable weights, or a model whose input is
            not an image; the message lists the models that work.
    """
    from cxrzoo.registry import model_info, model_spec

    try:
        arch = model_info(name)
        spec = model_spec(name if "." in name else (arch.default_weights or name))
    except ValueError:
        raise ModelChoiceError(f"unknown model {name!r}; choose from {', '.join(supported_models())}") from None
    reason = _why_not(spec)
    if reason is not None:
        raise ModelChoiceError(
            f"cxrzoo predict cannot run {spec.name!r}: {reason}; choose from {', '.join(supported_models())}"
        )
    return spec


def _why_not(spec) -> str | None:
    if spec.arch in _UNSUPPORTED:
        return _UNSUPPORTED[spec.arch]
    if not spec.pretrained:
        return "it has no published weights (random initialisation)"
    if not spec.obtainable:
        return "its published weights cannot be obtained"
    if spec.arch == "cxrnet" or spec.arch == "bone_suppression":
        return None
    if spec.recipe is None:
        return f"its input is {spec.input.description}, not an image"
    if spec.task not in ("classification", "segmentation"):
        return f"it is a {spec.task} model"
    return None


# ------------------------------------------------------------------------------------------------ the columns


@dataclass(frozen=True)
class Layout:
    """What a model's rows hold: output ``columns`` ((name, type) with type "float", "bool" or "str"), in order,
    and ``artifacts`` ((kind, column): a file ``<key>.<kind>`` per image, its path in ``column``)."""

    columns: tuple[tuple[str, str], ...]
    artifacts: tuple[tuple[str, str], ...]


def layout(spec: ModelSpec, *, heatmaps: bool = False) -> Layout:
    """The columns and artifacts of ``spec``'s rows (``heatmaps``: CXR-Net's heat maps as artifacts)."""
    cols: list[tuple[str, str]] = []
    arts: list[tuple[str, str]] = []
    labels = spec.output.labels
    if spec.task == "classification":
        cols += [(f"p_{label}", "float") for label in labels]
        if spec.output.positive is not None:
            cols.append(("positive", "bool"))
    if spec.arch == "cxrnet":
        positive = spec.output.positive or labels[0]
        members = int(spec.builder_kwargs.get("members", 6))
        cols += [(f"p_{positive}_member{k}", "float") for k in range(members)]
        cols += [(f"p_{positive}_member_std", "float"), ("lung_fraction", "float")]
        if heatmaps:
            arts += [("heatmaps.png", "heatmap_path"), ("heatmaps.npz", "heatmap_maps_path")]
    elif spec.task == "segmentation":
        cols += [("lung_fraction", "float"), ("left_fraction", "float"), ("right_fraction", "float")]
        arts.append(("mask.png", "mask_path"))
    elif spec.arch == "bone_suppression":
        arts.append(("bones.png", "bone_suppressed_path"))
    cols.append(("warnings", "str"))
    return Layout(tuple(cols), tuple(arts))


# -------------------------------------------------------------------------------------------------- preparing


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def done_key(key: str, sha256: str) -> str:
    """The identity of a completed row: the input's key and its file's sha256 (a changed file is recomputed)."""
    return f"{key}\0{sha256}"


class Preparer:
    """Input → prepared row (picklable; the recipe is built on first use in each process).

    A prepared row holds ``index``, ``path``, ``key``, ``sha256``, ``error`` ("" if none), ``skipped`` (already
    complete), ``height``, ``width``, ``x`` (the model input, float32 bytes, or uint8 bytes of the image for
    bone suppression), ``original`` (uint8 bytes of the image where the artifacts need it, else b"") and
    ``warnings``.
    """

    def __init__(self, model: str, *, heatmaps: bool = False, done: frozenset[str] = frozenset()):
        self.model = model
        self.heatmaps = bool(heatmaps)
        self.done = done
        self._state = None

    def __getstate__(self):
        return {"model": self.model, "heatmaps": self.heatmaps, "done": self.done, "_state": None}

    def _setup(self):
        if self._state is None:
            from cxrzoo.preprocessing.recipes import recipe

            spec = resolve_model(self.model)
            prep = recipe(weights=spec) if spec.recipe is not None else None
            self._state = (spec, prep)
        return self._state

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        from cxrzoo.inputs import read_regular_file
        from cxrzoo.preprocessing.io import (
            MAX_ASPECT,
            MIN_SIDE,
            ImageReadError,
            ImageTooLargeError,
            read_image,
        )
        from cxrzoo.preprocessing.recipes import gray_uint8

        spec, prep = self._setup()
        row = {
            "index": int(item["index"]),
            "path": str(item["path"]),
            "key": str(item["key"]),
            "sha256": "",
            "error": "",
            "skipped": False,
            "height": 0,
            "width": 0,
            "x": b"",
            "original": b"",
            "warnings": "",
        }
        source = str(item.get("source") or item["path"])
        try:
            # only a regular file, under the size cap, read once (a FIFO or device would block or never end)
            data = read_regular_file(source, error=ImageReadError, too_large=ImageTooLargeError)
            row["sha256"] = file_digest(data)
            if done_key(row["key"], row["sha256"]) in self.done:
                row["skipped"] = True
                return row
            # the radiograph check: a strip or a thumbnail would otherwise be scored with confidence
            image = read_image(data, native_depth=True, name=source, min_side=MIN_SIDE, max_aspect=MAX_ASPECT)
            if image.ndim == 3:  # colour DICOM/TIFF at native depth: gray as the recipes do
                image = gray_uint8(image)
            row["height"], row["width"] = (int(v) for v in image.shape[:2])
            if is_binary(image):
                raise ValueError(
                    f"{source}: only two grey levels ({image.min()} and {image.max()}): a mask or a drawing, "
                    "not a radiograph"
                )
            row["warnings"] = "; ".join(image_warnings(image, spec))
            needs_original = spec.arch == "bone_suppression" or (spec.arch == "cxrnet" and self.heatmaps)
            if needs_original:
                row["original"] = np.ascontiguousarray(gray_uint8(image, "predict")).tobytes()
            if prep is not None:
                row["x"] = prep.prepare(image)[0].tobytes()
        except FileNotFoundError:
            row["error"] = f"{source}: no such file"
        except IsADirectoryError:
            row["error"] = f"{source}: is a directory, not an image file"
        except MemoryError:
            row["error"] = f"{source}: not enough memory to read this image"
        except (OSError, ValueError, TypeError, ImportError) as exc:  # unreadable, corrupt, too large, no pydicom
            row["error"] = _reason(exc)
        return row


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def is_binary(image: np.ndarray) -> bool:
    """Exactly two distinct values: a segmentation mask (e.g. a dataset's ``lungs/`` folder), never a radiograph."""
    if image.dtype == np.uint8:
        return int(np.count_nonzero(np.bincount(image.ravel(), minlength=256))) == 2
    low, high = image.min(), image.max()
    return bool(low != high and not np.any((image != low) & (image != high)))


def image_warnings(image: np.ndarray, spec: ModelSpec) -> list[str]:
    """Image-level QC of an input against the spec: smaller than the trained size, unusual aspect, low contrast."""
    out = []
    height, width = image.shape[:2]
    trained = spec.input.trained_size
    if trained is not None and (height < SMALL * trained[0] or width < SMALL * trained[1]):
        out.append(
            f"image {height}x{width} is much smaller than the {trained[0]}x{trained[1]} the model was trained at "
            "(upsampled)"
        )
    aspect = width / height
    if not ASPECT_RANGE[0] <= aspect <= ASPECT_RANGE[1]:
        out.append(f"unusual aspect ratio {width}:{height} for a frontal chest X-ray")
    if image.dtype == np.uint8:
        levels = int(image.max()) - int(image.min())
        if levels < MIN_LEVELS:
            out.append(f"low contrast: pixel values span {levels} levels")
    return out


def mask_warnings(mask: np.ndarray) -> list[str]:
    """Lung-mask QC: tiny (< :data:`TINY_LUNG_FRACTION` of the image) or touching an image edge (cut off?)."""
    mask = np.asarray(mask, bool)
    fraction = float(mask.mean())
    if not mask.any():
        return ["no lung found in the image"]
    out = []
    if fraction < TINY_LUNG_FRACTION:
        out.append(f"tiny lung mask ({fraction:.1%} of the image)")
    edges = {"top": mask[0], "bottom": mask[-1], "left": mask[:, 0], "right": mask[:, -1]}
    cut = [name for name, edge in edges.items() if edge.mean() > EDGE_FRACTION]
    if cut:
        out.append(f"lung mask reaches the {' and '.join(cut)} edge{'s' if len(cut) > 1 else ''} (lungs cut off?)")
    return out


# -------------------------------------------------------------------------------------------- the batch function


_MODELS: dict[str, Any] = {}


def build_model(name: str) -> keras.Model:
    """The published model ``name`` (a spec name), built once per process and kept: a batch job, a Ray actor or
    repeated :func:`~cxrzoo.batch.predict_files` calls pay for the construction once."""
    if name not in _MODELS:
        from cxrzoo.registry import create_model

        _MODELS[name] = create_model(name)
    return _MODELS[name]


class BatchFunction:
    """Prepared rows → result rows, with the model built once (on first call) per process.

    A result row holds ``index``, ``path``, ``key``, ``sha256``, ``error`` ("" if none), ``values`` (the
    :func:`layout` columns) and ``artifacts`` ({kind: encoded bytes}). Prepared rows with an error pass through as
    error rows; skipped rows are dropped.

    Args:
        model: ``--model`` name or tag.
        heatmaps: CXR-Net: the authors' heat-map figure (PNG) and maps (NPZ) at each image's size.
        jit_compile: CXR-Net: compile Module 2 with XLA (:func:`cxrzoo.models.cxrnet.cxrnet_scores`).
        keras_model: an already built model to use (the spec's published model).
    """

    def __init__(self, model: str, *, heatmaps: bool = False, jit_compile: bool = False, keras_model=None):
        self.model = model
        self.heatmaps = bool(heatmaps)
        self.jit_compile = bool(jit_compile)
        self._keras_model = keras_model
        self._state = None

    def __getstate__(self):
        return {
            "model": self.model,
            "heatmaps": self.heatmaps,
            "jit_compile": self.jit_compile,
            "_keras_model": None,
            "_state": None,
        }

    def build(self) -> keras.Model:
        """Builds the model now (else on the first call); returns the Keras model."""
        self._setup()
        return self._state["model"]

    def _setup(self):
        if self._state is None:
            from cxrzoo.pipelines import Pipeline
            from cxrzoo.preprocessing.recipes import recipe

            spec = resolve_model(self.model)
            model = self._keras_model if self._keras_model is not None else build_model(spec.name)
            state = {"spec": spec, "model": model, "layout": layout(spec, heatmaps=self.heatmaps)}
            if spec.recipe is not None:
                state["shape"] = recipe(weights=spec).output_shape
            if spec.arch != "cxrnet" and spec.task in ("classification", "segmentation"):
                state["pipeline"] = Pipeline(model, spec)
            self._state = state
        return self._state

    def __call__(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        state = self._setup()
        rows = [r for r in rows if not r.get("skipped")]
        good = [r for r in rows if not r.get("error")]
        results: dict[int, dict[str, Any]] = {}
        if good:
            spec = state["spec"]
            if spec.arch == "cxrnet":
                outputs = self._cxrnet(state, good)
            elif spec.arch == "bone_suppression":
                outputs = self._bones(state, good)
            else:
                outputs = self._pipeline(state, good)
            for row, out in zip(good, outputs):
                results[id(row)] = _result(row, **out)
        return [results.get(id(r)) or _result(r, error=r["error"]) for r in rows]

    # --- the model kinds

    def _inputs(self, state, rows) -> np.ndarray:
        shape = state["shape"]
        return np.stack([np.frombuffer(r["x"], np.float32).reshape(shape) for r in rows])

    def _cxrnet(self, state, rows) -> list[dict[str, Any]]:
        from cxrzoo.models.cxrnet.heatmaps import cxrnet_heatmaps, cxrnet_scores

        spec, model = state["spec"], state["model"]
        x = self._inputs(state, rows)[..., 0]
        if self.heatmaps:
            out = cxrnet_heatmaps(model, x, empty="zeros", jit_compile=self.jit_compile)
            has_lungs = out["mask"].any(axis=(1, 2))
        else:
            out = cxrnet_scores(model, x, jit_compile=self.jit_compile)
            has_lungs = out["has_lungs"]
        labels = spec.output.labels
        positive = spec.output.positive or labels[0]
        k = labels.index(positive)
        results = []
        for i, row in enumerate(rows):
            if not has_lungs[i]:
                results.append(
                    {"error": "no lung region found (empty CXR-Net lung mask); is this a frontal chest X-ray?"}
                )
                continue
            p = out["probabilities"][i]
            members = out["member_probabilities"][i, :, k]
            lungs = out["lung_mask"][i] > 0.5
            values: dict[str, Any] = {f"p_{label}": float(p[j]) for j, label in enumerate(labels)}
            values["positive"] = bool(p[k] >= spec.output.threshold)
            values.update({f"p_{positive}_member{m}": float(v) for m, v in enumerate(members)})
            values[f"p_{positive}_member_std"] = float(np.std(members.astype(np.float64)))
            values["lung_fraction"] = float(lungs.mean())
            values["warnings"] = _join(row["warnings"], mask_warnings(lungs))
            artifacts = self._heatmap_files(out, i, row) if self.heatmaps else {}
            results.append({"values": values, "artifacts": artifacts})
        return results

    def _heatmap_files(self, maps, i: int, row) -> dict[str, bytes]:
        from cxrzoo.models.cxrnet.heatmaps import cxrnet_figure, cxrnet_heatmaps_at_size

        size = (row["height"], row["width"])
        image = np.frombuffer(row["original"], np.uint8).reshape(size)
        big = cxrnet_heatmaps_at_size(maps, i, size)
        png = io.BytesIO()
        with warnings.catch_warnings():
            # A file name in a script DejaVu Sans lacks makes Matplotlib warn once per missing glyph wherever text
            # is laid out (tight_layout, then savefig); stderr is for errors and progress only.
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
            figure = cxrnet_figure(image, big, 0, title=os.path.basename(row["path"]))
            figure.savefig(png, format="png", bbox_inches="tight")
        arrays = {k: big[k][0] for k in ("positive", "negative", "difference", "mask")}
        return {"heatmaps.png": png.getvalue(), "heatmaps.npz": npz_bytes(arrays)}

    def _pipeline(self, state, rows) -> list[dict[str, Any]]:
        from cxrzoo.pipelines import lung_areas, lung_channel

        spec, pipe = state["spec"], state["pipeline"]
        sizes = [(r["height"], r["width"]) for r in rows]
        outputs = pipe.predict_prepared(self._inputs(state, rows), sizes)
        results = []
        for row, res in zip(rows, outputs):
            if spec.task == "classification":
                values: dict[str, Any] = {f"p_{label}": float(v) for label, v in res["probabilities"].items()}
                if "positive" in res:
                    values["positive"] = bool(res["positive"])
                values["warnings"] = row["warnings"]
                results.append({"values": values, "artifacts": {}})
                continue
            mask = res["masks"][lung_channel(spec)]
            areas = lung_areas(mask)
            values = {
                "lung_fraction": areas["total"]["fraction"],
                "left_fraction": areas["left"]["fraction"],
                "right_fraction": areas["right"]["fraction"],
                "warnings": _join(row["warnings"], mask_warnings(mask)),
            }
            results.append({"values": values, "artifacts": {"mask.png": encode_png(mask.astype(np.uint8) * 255)}})
        return results

    def _bones(self, state, rows) -> list[dict[str, Any]]:
        from cxrzoo.models.covid_xnet.bones import suppress_bones

        results = []
        for row in rows:  # images of different sizes: one at a time
            image = np.frombuffer(row["original"], np.uint8).reshape(row["height"], row["width"])
            soft = suppress_bones(image, model=state["model"])
            results.append({"values": {"warnings": row["warnings"]}, "artifacts": {"bones.png": encode_png(soft)}})
        return results


def _join(first: str, more: list[str]) -> str:
    return "; ".join([w for w in [first] if w] + more)


def _result(row, *, values=None, artifacts=None, error: str = "") -> dict[str, Any]:
    return {
        "index": row["index"],
        "path": row["path"],
        "key": row["key"],
        "sha256": row["sha256"],
        "error": error,
        "values": values or {},
        "artifacts": artifacts or {},
    }


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed ``.npz`` (``np.load`` reads it) with fixed zip timestamps, so equal arrays give equal bytes
    (``np.savez_compressed`` stamps the current time)."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(info, buffer.getvalue())
    return out.getvalue()


def encode_png(image: np.ndarray) -> bytes:
    """A 2-D uint8 image as PNG bytes (OpenCV, lossless)."""
    import cv2

    ok, data = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise ValueError(f"could not encode an image of shape {image.shape} as PNG")
    return data.tobytes()


# ------------------------------------------------------------------------- flat rows (Arrow columns for Ray Data)


def flatten(result: dict[str, Any], kinds: Sequence[str]) -> dict[str, Any]:
    """A result row as flat Arrow-friendly columns: values as JSON, each artifact kind as one binary column."""
    flat = {k: result[k] for k in ("index", "path", "key", "sha256", "error")}
    flat["values"] = json.dumps(result["values"])
    for kind in kinds:
        flat[f"artifact:{kind}"] = result["artifacts"].get(kind, b"")
    return flat


def unflatten(flat: dict[str, Any], kinds: Sequence[str]) -> dict[str, Any]:
    """The inverse of :func:`flatten`."""
    result = {k: flat[k] for k in ("index", "path", "key", "sha256", "error")}
    result["index"] = int(result["index"])
    result["values"] = json.loads(flat["values"])
    result["artifacts"] = {kind: bytes(flat[f"artifact:{kind}"]) for kind in kinds if len(flat[f"artifact:{kind}"])}
    return result


__all__ = [
    "BatchFunction",
    "Layout",
    "ModelChoiceError",
    "Preparer",
    "build_model",
    "done_key",
    "encode_png",
    "flatten",
    "image_warnings",
    "layout",
    "mask_warnings",
    "npz_bytes",
    "resolve_model",
    "supported_models",
    "unflatten",
]
