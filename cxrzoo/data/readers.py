"""Dataset readers: image folders with mask folders, COVID-QU-Ex, CSV indexes, and CXR-Net's H5 files.

Folder and CSV readers return :class:`Samples` (paths, masks, labels, patient ids), which feed
:func:`cxrzoo.data.make_dataset` and :func:`cxrzoo.data.patient_kfold`. Nothing is decoded until the pipeline runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy.typing as npt

if TYPE_CHECKING:
    import tensorflow as tf

    from cxrzoo.data.augment import Augmentation

import csv
import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cxrzoo.data.pipeline import build_pipeline, make_dataset
from cxrzoo.fileio import atomic_path
from cxrzoo.inputs import InputFileError, check_hdf5_tree, open_regular_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".dcm", ".dicom")


@dataclass
class Samples:
    """A labelled image collection, by path.

    Attributes:
        images: image paths.
        masks: per image, one mask path per entry of ``mask_names`` (or None).
        labels: int class ids (index into ``class_names``), or None.
        groups: patient ids (for patient-disjoint splits), or None.
        names: an identifier per image (file stem or CSV value).
        class_names: the label names, in id order.
        mask_names: the mask classes, in channel order.
        extra: further per-image columns (e.g. COVID-QU-Ex's ``split``), as arrays.
    """

    images: list[str]
    masks: list[list[str]] | None = None
    labels: np.ndarray | None = None
    groups: np.ndarray | None = None
    names: list[str] = field(default_factory=list)
    class_names: list[str] | None = None
    mask_names: list[str] | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: npt.ArrayLike) -> Samples:
        """The samples at ``indices`` (e.g. one fold of :func:`cxrzoo.data.patient_kfold`)."""
        idx = np.asarray(indices, dtype=np.int64)
        pick = lambda seq: None if seq is None else [seq[i] for i in idx]
        return dataclasses.replace(
            self,
            images=pick(self.images),
            masks=pick(self.masks),
            names=pick(self.names) or [],
            labels=None if self.labels is None else self.labels[idx],
            groups=None if self.groups is None else self.groups[idx],
            extra={k: v[idx] for k, v in self.extra.items()},
        )

    def dataset(self, **kwargs: Any) -> tf.data.Dataset:
        """:func:`cxrzoo.data.make_dataset` over these samples (masks and labels included when present)."""
        return make_dataset(self.images, self.masks, self.labels, **kwargs)


def _list_images(folder: Path, pattern: str) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _find_mask(folder: Path, image: Path) -> Path | None:
    exact = folder / image.name
    if exact.is_file():
        return exact
    matches = sorted(p for p in folder.glob(image.stem + ".*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return matches[0] if matches else None


def _attach_masks(root: Path, images: list[Path], mask_dirs: Sequence[str]) -> list[list[str]]:
    masks, missing = [], []
    for image in images:
        row = []
        for d in mask_dirs:
            found = _find_mask(root / d, image)
            if found is None:
                missing.append(str(root / d / image.name))
            row.append(str(found))
        masks.append(row)
    if missing:
        raise FileNotFoundError(f"{len(missing)} mask file(s) missing, e.g. {missing[0]}")
    return masks


def read_image_folder(
    root: str | os.PathLike, *, images: str = "images", masks: Sequence[str] = ("lungs",), pattern: str = "*"
) -> Samples:
    """A folder of images with one sub-folder per mask class, masks matched by file name.

    ``v7_covid_lungs/train`` is ``images/`` + ``lungs/``; CXR-Net Module 1's training folders are
    ``read_image_folder(root, images="images/img", masks=("masks/lungs", "masks/non_lungs"))``; the infection set
    is ``masks=("lung_left", "lung_right", "infection")``. A mask with the same stem and another extension is
    accepted; a missing mask is an error naming it. ``masks=()`` reads images only.
    """
    root = Path(root)
    paths = _list_images(root / images, pattern)
    if not paths:
        raise FileNotFoundError(f"{root / images}: no images matching {pattern!r}")
    return Samples(
        images=[str(p) for p in paths],
        masks=_attach_masks(root, paths, masks) if masks else None,
        names=[p.stem for p in paths],
        mask_names=list(masks) or None,
    )


def read_class_folders(root: str | os.PathLike, *, classes: Sequence[str] | None = None, pattern: str = "*") -> Samples:
    """Images in one sub-folder per class (``root/<class>/*.png``); labels are indices into ``classes``
    (default: the sub-folders in sorted order)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    classes = list(classes) if classes is not None else sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise FileNotFoundError(f"{root}: no class sub-folders")
    images, labels = [], []
    for label, name in enumerate(classes):
        found = _list_images(root / name, pattern)
        images += found
        labels += [label] * len(found)
    return Samples(
        images=[str(p) for p in images],
        labels=np.asarray(labels, np.int64),
        names=[p.stem for p in images],
        class_names=classes,
    )


# --------------------------------------------------------------------------------------------------- COVID-QU-Ex

QU_EX_CLASSES = ("COVID-19", "Non-COVID", "Normal")
QU_EX_SPLITS = ("Train", "Val", "Test")
QU_EX_MASKS = {"lung": "lung masks", "infection": "infection masks"}


def _qu_ex_root(root: Path) -> Path:
    # Accept the folder holding Train/Val/Test, "Infection Segmentation Data", or Kaggle's doubly nested copy.
    for _ in range(3):
        if any((root / s).is_dir() for s in QU_EX_SPLITS):
            return root
        nested = root / "Infection Segmentation Data"
        if not nested.is_dir():
            break
        root = nested
    raise FileNotFoundError(f"{root}: not a COVID-QU-Ex 'Infection Segmentation Data' folder (no Train/Val/Test)")


def read_covid_qu_ex(
    root: str | os.PathLike,
    *,
    splits: Sequence[str] | None = None,
    classes: Sequence[str] = QU_EX_CLASSES,
    masks: Sequence[str] = ("lung", "infection"),
) -> Samples:
    """The COVID-QU-Ex "Infection Segmentation Data" layout (the thesis' infection set).

    ``<root>/{Train,Val,Test}/{COVID-19,Non-COVID,Normal}/{images,lung masks,infection masks}/*.png``; ``root``
    may also be the folder above (one or two levels of "Infection Segmentation Data", as on Kaggle).

    Args:
        splits: the splits to read (default: every split present); ``extra["split"]`` records each image's.
        classes: label order (ids index into it); default COVID-19 = 0, Non-COVID = 1, Normal = 2.
        masks: "lung" and/or "infection", in channel order (infection masks of non-COVID images are all zero).

    Returns :class:`Samples` without patient ids (the dataset publishes none).
    """
    base = _qu_ex_root(Path(root))
    chosen = [s for s in QU_EX_SPLITS if (base / s).is_dir()] if splits is None else list(splits)
    unknown = [m for m in masks if m not in QU_EX_MASKS]
    if unknown:
        raise ValueError(f"unknown COVID-QU-Ex mask kinds {unknown}; choose from {sorted(QU_EX_MASKS)}")
    images, mask_rows, labels, split_of = [], [], [], []
    for split in chosen:
        if not (base / split).is_dir():
            raise FileNotFoundError(f"{base / split}: no such split folder")
        for label, cls in enumerate(classes):
            folder = base / split / cls
            if not folder.is_dir():
                continue
            found = _list_images(folder / "images", "*")
            images += found
            mask_rows += _attach_masks(folder, found, [QU_EX_MASKS[m] for m in masks]) if masks else [[]] * len(found)
            labels += [label] * len(found)
            split_of += [split] * len(found)
    if not images:
        raise FileNotFoundError(f"{base}: no images for splits {chosen} and classes {list(classes)}")
    return Samples(
        images=[str(p) for p in images],
        masks=mask_rows if masks else None,
        labels=np.asarray(labels, np.int64),
        names=[p.stem for p in images],
        class_names=list(classes),
        mask_names=list(masks) or None,
        extra={"split": np.asarray(split_of)},
    )


# ----------------------------------------------------------------------------------------------------------- CSV


def read_csv(
    path: str | os.PathLike,
    *,
    image: str = "path",
    label: str | None = "label",
    group: str | None = "patient_id",
    masks: Sequence[str] = (),
    root: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
) -> Samples:
    """A CSV index with one row per image: a path column, and optionally label, patient id and mask columns.

    Relative paths are resolved against ``root`` (default: the CSV's folder). Integer labels are kept; other
    labels are mapped to ids in the order of ``class_names`` (default: sorted unique values). ``label=None`` or
    ``group=None`` skips that column. A missing column or an unknown class is an error naming it.
    """
    path = Path(path)
    base = Path(root) if root is not None else path.parent
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        columns = reader.fieldnames or []
    wanted = [image] + [c for c in (label, group) if c] + list(masks)
    absent = [c for c in wanted if c not in columns]
    if absent:
        raise ValueError(f"{path}: missing column(s) {absent}; the file has {columns}")
    if not rows:
        raise ValueError(f"{path}: no rows")
    resolve = lambda v: str(base / v) if not os.path.isabs(v) else v
    samples = Samples(images=[resolve(r[image]) for r in rows], names=[Path(r[image]).stem for r in rows])
    if masks:
        samples.masks = [[resolve(r[m]) for m in masks] for r in rows]
        samples.mask_names = list(masks)
    if label:
        values = [r[label] for r in rows]
        if class_names is None and all(v.strip().lstrip("-").isdigit() for v in values):
            samples.labels = np.asarray([int(v) for v in values], np.int64)
        else:
            names = list(class_names) if class_names is not None else sorted(set(values))
            lookup = {n: i for i, n in enumerate(names)}
            unknown = sorted(set(values) - set(lookup))
            if unknown:
                raise ValueError(f"{path}: labels {unknown} are not in class_names {names}")
            samples.labels = np.asarray([lookup[v] for v in values], np.int64)
            samples.class_names = names
    if group:
        samples.groups = np.asarray([r[group] for r in rows])
    return samples


# ----------------------------------------------------------------------------------------------- CXR-Net H5 files

H5_KEYS = ("X", "M", "y", "w")


def read_cxrnet_h5(path: str | os.PathLike) -> dict[str, np.ndarray | float]:
    """One CXR-Net Module 2 example file: ``{"X": (H, W, 1) float64, "M": (H, W, 1) float64, "y": (2,) int64 or
    float64, "w": float}`` (standardized image, combined lung mask, one-hot [positive, negative], class weight)."""
    import h5py

    path = Path(path)
    # The input-safety layer: a regular file under the size cap (h5py then opens it by name: its own file driver is
    # much faster than reading through a Python file object, and this reader runs in the training pipeline), and
    # no data pulled from other files.
    with open_regular_file(path):
        pass
    try:
        with h5py.File(path, "r") as f:
            check_hdf5_tree(f, str(path), error=InputFileError)
            missing = [k for k in H5_KEYS if k not in f]
            if missing:
                raise ValueError(f"{path}: not a CXR-Net H5 file (missing {missing}; has {sorted(f.keys())})")
            out = {"X": f["X"][()], "M": f["M"][()], "y": f["y"][()], "w": float(f["w"][()])}
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file ({err})") from None
    _check_h5_arrays(out, str(path))
    return out


def _check_h5_arrays(arrays: dict, where: str) -> None:
    x, m, y, w = (arrays[k] for k in H5_KEYS)
    if x.ndim != 3 or x.shape[-1] != 1 or m.shape != x.shape:
        raise ValueError(f"{where}: X and M must both be (H, W, 1), got {x.shape} and {m.shape}")
    if np.asarray(y).shape != (2,):
        raise ValueError(f"{where}: y must be one-hot [positive, negative] of shape (2,), got {np.shape(y)}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(m)) and np.isfinite(w)):
        raise ValueError(f"{where}: X, M and w must be finite")
    if m.min() < 0 or m.max() > 1:
        raise ValueError(f"{where}: M must lie in [0, 1], got {m.min()}..{m.max()}")


def write_cxrnet_h5(
    path: str | os.PathLike, X: npt.ArrayLike, M: npt.ArrayLike, y: npt.ArrayLike, w: float | npt.ArrayLike
) -> None:
    """Write one example in the authors' layout: X and M float64 ``(H, W, 1)`` gzip-9 with h5py's automatic
    chunks ((38, 43, 1) at 300 × 340, as the authors' files), ``y`` int64 ``(2,)``, ``w`` a float64 scalar, no
    attributes. The file appears atomically: an error leaves no partial file behind."""
    import h5py

    path = Path(path)
    arrays = {"X": np.asarray(X, np.float64), "M": np.asarray(M, np.float64), "y": np.asarray(y), "w": float(w)}
    for key in ("X", "M"):
        if arrays[key].ndim == 2:
            arrays[key] = arrays[key][..., None]
    if arrays["y"].dtype.kind not in "iuf":
        raise ValueError(f"{path}: y must be numeric, got dtype {arrays['y'].dtype}")
    arrays["y"] = arrays["y"].astype(np.int64) if arrays["y"].dtype.kind in "iu" else arrays["y"]
    _check_h5_arrays(arrays, str(path))
    with atomic_path(path, suffix=".tmp") as tmp, h5py.File(tmp, "w") as f:
        for key in ("X", "M"):
            f.create_dataset(key, data=arrays[key], compression="gzip", compression_opts=9, chunks=True)
        f.create_dataset("y", data=arrays["y"])
        f.create_dataset("w", data=np.float64(arrays["w"]))


def cxrnet_h5_dataset(
    paths: Sequence,
    *,
    batch_size: int,
    augment: str | Augmentation | None = None,
    shuffle: bool = False,
    seed: int | None = None,
    cache: str | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """CXR-Net Module 2's input pipeline over H5 files: batches of ``((X, M), y, w)``, float32.

    Like the authors' DataGenerator: X and M get the same transform (``augment="cxrnet_module2"`` is theirs; M is
    a continuous mask input, so it is resampled bilinearly like X) and ``w`` is the per-example class weight. The
    ``y`` and ``w`` of every file are read up front; X and M are read by the parallel pipeline.
    """
    paths = [str(p) for p in paths]
    if not paths:
        raise ValueError("cxrnet_h5_dataset: no files")
    labels, weights = [], []
    for p in paths:
        example = read_cxrnet_h5(p)
        labels.append(np.asarray(example["y"], np.float32))
        weights.append(example["w"])

    def load(i: int):
        example = read_cxrnet_h5(paths[i])
        return example["X"].astype(np.float32), example["M"].astype(np.float32)

    first = read_cxrnet_h5(paths[0])["X"]
    return build_pipeline(
        load,
        len(paths),
        x_shape=first.shape,
        has_masks=True,
        labels=np.stack(labels),
        sample_weights=np.asarray(weights),
        augment=augment,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        cache=cache,
        drop_remainder=drop_remainder,
        mask_role="input",
    )
