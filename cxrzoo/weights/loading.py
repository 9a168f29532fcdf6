"""Putting weights into models: ``weights=`` as None, a manifest tag, or a path to a file.

Legacy Keras 2 HDF5 files (the authors' ``save_weights``/``save`` output) are read with h5py and assigned layer by
layer *by name*, through a per-architecture map from cxrzoo's descriptive layer names to the authors' auto-generated
ones, so that two layers of the same shape can never receive each other's weights. Every weighted layer of the
model must be matched and every weight shape must agree, or the load fails naming the layer.

Trust model (docs/security.md): a tag's files are verified by hash and therefore safe; a file given by path is
untrusted. It must be a regular file, and an HDF5 file (or the HDF5 inside a ``.keras`` archive) may not read data
from anywhere but itself: external storage, virtual datasets and external links are refused naming the object
(:func:`check_weights_file`), before Keras or h5py reads any of its data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cxrzoo.inputs import check_hdf5_tree, open_regular_file
from cxrzoo.weights.errors import UnknownWeightsError, UnsafeWeightsFileError
from cxrzoo.weights.files import get_weights_files
from cxrzoo.weights.manifest import WeightsEntry, list_weights, weights_info

# A loader puts the weights in ``paths`` (one file, or a checkpoint's files) into ``model``.
Loader = Callable[[Any, list[Path], "WeightsEntry | None"], None]

_WEIGHT_SUFFIXES = (".h5", ".hdf5", ".keras", ".index", ".weights.h5")


def looks_like_path(weights: Any) -> bool:
    if isinstance(weights, os.PathLike):
        return True
    text = str(weights)
    return os.sep in text or "/" in text or text.endswith(_WEIGHT_SUFFIXES) or os.path.exists(text)


def resolve_weights(
    weights: str | os.PathLike,
    *,
    arch: str | Iterable[str],
    role: str = "model",
    cache_dir: str | os.PathLike | None = None,
) -> tuple[list[Path], WeightsEntry | None]:
    """Local paths for ``weights`` (a tag of ``arch`` or a file path) and the manifest entry when it is a tag."""
    archs = {arch} if isinstance(arch, str) else set(arch)
    if looks_like_path(weights):
        path = Path(weights).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"weights file not found: {path}")
        check_weights_file(path)
        return [path], None
    entry = weights_info(str(weights))
    if entry.arch not in archs or entry.role != role:
        valid = sorted(t for a in archs for t in list_weights(a) if weights_info(t).role == role)
        raise UnknownWeightsError(
            f"weights {weights!r} are {entry.role} weights for {entry.arch!r}, not {role} weights for "
            f"{' / '.join(sorted(archs))!r}; valid tags here: {', '.join(valid) or '(none)'}"
        )
    return get_weights_files(entry.tag, cache_dir=cache_dir), entry


def check_builder_kwargs(entry: WeightsEntry | None, **given: Any) -> None:
    """Raises ValueError when a builder argument contradicts the configuration the weights were trained with."""
    if entry is None:
        return
    for key, value in given.items():
        if key not in entry.builder_kwargs:
            continue
        expected = entry.builder_kwargs[key]
        norm_value = list(value) if isinstance(value, (tuple, list)) else value
        if norm_value != expected:
            raise ValueError(
                f"weights {entry.tag!r} were trained with {key}={expected!r}, but {key}={value!r} was requested; "
                f"build without weights or with {key}={expected!r}"
            )


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"
_NO_SIZE_CAP = 2**62  # weights files may be large; what they declare is capped by check_hdf5_tree instead


def check_weights_file(path: str | os.PathLike) -> None:
    """Refuses a weights file that is not a regular file, or whose HDF5 data (directly, or inside a ``.keras``
    archive) would be read from other files: external storage, virtual datasets, external links.

    Raises:
        FileNotFoundError, IsADirectoryError: no such file, or a folder.
        UnsafeWeightsFileError: anything else refused; the message names the HDF5 object.
    """
    import h5py

    path = Path(path)
    with open_regular_file(path, max_bytes=_NO_SIZE_CAP, error=UnsafeWeightsFileError) as fh:
        head = fh.read(8)
        if head.startswith(_ZIP_SIGNATURE):
            _check_keras_archive(fh, str(path))
            return
    if head != _HDF5_SIGNATURE and not h5py.is_hdf5(path):  # an HDF5 user block moves the signature to 512, 1024...
        return  # not HDF5 (e.g. a TF checkpoint index): its loader validates it
    try:
        with h5py.File(path, "r") as h5:
            check_hdf5_tree(h5, str(path), error=UnsafeWeightsFileError)
    except OSError as exc:
        raise ValueError(f"{path} is not a readable HDF5 weights file ({exc})") from None


def _check_keras_archive(fh, name: str) -> None:
    import zipfile

    import h5py

    try:
        archive = zipfile.ZipFile(fh)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{name} is not a readable .keras archive ({exc})") from None
    with archive:
        for member in archive.namelist():
            if not member.endswith(".h5"):
                continue
            with archive.open(member) as inner:
                try:
                    with h5py.File(inner, "r") as h5:
                        check_hdf5_tree(h5, f"{name}:{member}", error=UnsafeWeightsFileError)
                except OSError as exc:
                    raise ValueError(f"{name}:{member} is not a readable HDF5 file ({exc})") from None


def read_legacy_h5(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """Layer name → weight arrays (in the file's ``weight_names`` order) of a Keras 2 HDF5 file.

    Works for ``save_weights`` files and for full-model files (which keep the same tree under ``model_weights``).
    Layers without weights are left out; the dict follows the file's ``layer_names`` order.
    """
    import h5py

    path = Path(path)
    with open_regular_file(path, max_bytes=_NO_SIZE_CAP, error=UnsafeWeightsFileError):
        pass
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path} is not a readable HDF5 weights file ({exc})") from None
    with handle as h5:
        check_hdf5_tree(h5, str(path), error=UnsafeWeightsFileError)  # before any dataset is read
        root = h5["model_weights"] if "model_weights" in h5 else h5
        if "layer_names" not in root.attrs:
            raise ValueError(f"{path} is not a Keras 2 weights file (no 'layer_names' attribute)")
        out: dict[str, list[np.ndarray]] = {}
        try:
            for raw_name in np.atleast_1d(root.attrs["layer_names"]):
                name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
                group = root[name]
                weight_names = [
                    w.decode() if isinstance(w, bytes) else str(w)
                    for w in np.atleast_1d(group.attrs.get("weight_names", []))
                ]
                if weight_names:
                    out[name] = [np.asarray(group[w]) for w in weight_names]
        except (KeyError, TypeError, AttributeError, OSError, UnicodeDecodeError) as exc:
            # a layer or weight the file lists but does not hold, or holds as the wrong kind of object
            raise ValueError(f"{path} is not a consistent Keras 2 weights file ({type(exc).__name__}: {exc})") from None
        return out


def is_legacy_h5(path: str | os.PathLike) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            root = h5["model_weights"] if "model_weights" in h5 else h5
            return "layer_names" in root.attrs
    except OSError:
        return False


def weighted_layers(model: keras.Model) -> list:
    """Layers of ``model`` that own weights, in model order (nested models are not entered)."""
    return [layer for layer in model.layers if layer.weights]


def assign_by_name(
    model: keras.Model,
    arrays: Mapping[str, list[np.ndarray]],
    *,
    name_map: Mapping[str, str] | None = None,
    convert: Callable[[Any, list[np.ndarray]], list[np.ndarray]] | None = None,
    source: str = "weights file",
) -> None:
    """Assigns ``arrays`` (source layer name → arrays) to the weighted layers of ``model``.

    ``name_map`` maps the model's layer names to source names (identity when absent); ``convert(layer, arrays)``
    reshapes a layer's arrays where the source layout differs from Keras 3 (e.g. attention kernels). Fails, naming
    the layer, when a layer is unmatched, a source layer is left over, or a shape differs. Nothing is assigned
    unless everything matches.
    """
    name_map = name_map or {}
    plan = []
    used = set()
    for layer in weighted_layers(model):
        src_name = name_map.get(layer.name, layer.name)
        if src_name not in arrays:
            raise ValueError(f"{source}: no weights for layer {layer.name!r} (looked for {src_name!r})")
        values = list(arrays[src_name])
        if convert is not None:
            values = convert(layer, values)
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(v.shape) for v in values]
        if expected != got:
            raise ValueError(
                f"{source}: layer {layer.name!r} (from {src_name!r}) expects weight shapes {expected}, file has {got}"
            )
        plan.append((layer, values))
        used.add(src_name)
    leftover = [name for name in arrays if name not in used]
    if leftover:
        raise ValueError(f"{source}: weights of {len(leftover)} layers were not used: {', '.join(leftover[:8])}")
    for layer, values in plan:
        layer.set_weights(values)


def load_default(
    model: keras.Model,
    paths: list[Path],
    entry: WeightsEntry | None,
    *,
    name_map: Mapping[str, str] | None = None,
    convert: Callable[[Any, list[np.ndarray]], list[np.ndarray]] | None = None,
) -> None:
    """Legacy Keras 2 HDF5 → by-name assignment; a Keras 3 ``.weights.h5`` / ``.keras`` file → ``load_weights``."""
    path = paths[0]
    if path.suffix in {".h5", ".hdf5"} and is_legacy_h5(path):
        assign_by_name(model, read_legacy_h5(path), name_map=name_map, convert=convert, source=str(path))
    elif path.name.endswith((".weights.h5", ".keras")):
        model.load_weights(path)
    else:
        raise ValueError(f"{path}: unrecognized weights format (expected a Keras 2 HDF5, .weights.h5 or .keras file)")


def load_weights(
    model: keras.Model,
    weights: str | os.PathLike | None,
    *,
    arch: str | Iterable[str],
    loader: Loader | None = None,
    cache_dir: str | os.PathLike | None = None,
    **builder_kwargs: Any,
) -> keras.Model:
    """Loads ``weights`` (None, a tag of ``arch``, or a file path) into ``model`` and returns it.

    ``builder_kwargs`` are the arguments the model was built with; they are checked against the configuration
    recorded for a tag so that, e.g., 3-class weights are not forced into a 2-class head.
    """
    if weights is None:
        return model
    paths, entry = resolve_weights(weights, arch=arch, cache_dir=cache_dir)
    check_builder_kwargs(entry, **builder_kwargs)
    (loader or load_default)(model, paths, entry)
    return model


# Keras 2 files whose layer names are not ours load by layer order, as Keras 2's ``load_weights`` did.
def assign_by_order(
    layers: Sequence[Any],
    arrays: Sequence[tuple[str, list[np.ndarray]]],
    *,
    source: str,
    convert: Callable[[Any, list[np.ndarray]], list[np.ndarray]] | None = None,
) -> None:
    """Assigns ``arrays`` (source layer name, weight arrays), in order, to ``layers``; all-or-nothing.

    Every shape must agree (after ``convert(layer, values)``), and the counts must be equal; otherwise a
    ValueError names the first mismatching pair.
    """
    if len(arrays) != len(layers):
        raise ValueError(f"{source}: {len(arrays)} weighted layers in the file, the model has {len(layers)}")
    plan = []
    for layer, (src_name, values) in zip(layers, arrays):
        values = list(values)
        if convert is not None:
            values = convert(layer, values)
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(np.shape(v)) for v in values]
        if expected != got:
            raise ValueError(
                f"{source}: layer {layer.name!r} expects weight shapes {expected}, but the file's "
                f"layer in the same position, {src_name!r}, has {got}"
            )
        plan.append((layer, values))
    for layer, values in plan:
        layer.set_weights(values)
