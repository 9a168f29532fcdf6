"""What a batch run reads: files, folders (recursive), globs or a CSV manifest, in a fixed order, each with a key.

The key of an input is its relative path (to the folder it was found in, the glob's fixed part, the manifest's
folder, or as written on the command line), made unique in input order (``x.png``, then ``x.png~2`` for a second
``x.png`` from another folder or the same path given twice) and shortened with a hash where a component is too
long for a file name. Artifact files are named after it (``artifacts/<key>.<kind>``), so two inputs never share
an artifact and a rerun of the same command names everything the same way. Nothing here imports TensorFlow.

Example::

    from cxrzoo.batch import collect_inputs
    for item in collect_inputs(["scans/", "extra/*.dcm"]):
        print(item.path, item.key)
"""

from __future__ import annotations

import csv
import glob
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

#: File suffixes a folder or glob contributes (lower case): PNG, JPEG, TIFF, BMP, WebP and DICOM.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".dcm", ".dicom", ".dic")

#: Longest key component (UTF-8 bytes) kept as it is; longer ones are cut and get a hash, so that the artifact
#: name (component + ".<kind>", kinds are at most 16 bytes) stays below the usual 255-byte file-name limit.
MAX_COMPONENT_BYTES = 200

_GLOB_MAGIC = ("*", "?", "[")


class InputError(ValueError):
    """A command-line mistake in the inputs (an empty folder, a glob matching nothing, a bad manifest)."""


@dataclass(frozen=True)
class InputFile:
    """One input of a batch run.

    Attributes:
        path: the path as given or found (written to the results table).
        key: the unique relative name its artifacts and its journal entry are filed under.
        source: where to read it from (``path`` resolved against a manifest's folder; else ``path``).
    """

    path: str
    key: str
    source: str


def collect_inputs(
    sources: Sequence[str | os.PathLike] = (),
    *,
    manifest: str | os.PathLike | None = None,
    path_column: str = "path",
    exclude: Iterable[str | os.PathLike] = (),
) -> list[InputFile]:
    """The inputs of a batch run, in input order, each with its unique key.

    Args:
        sources: files (any name; a missing file is kept, it becomes an error row of the run), folders (every
            image file below, by :data:`IMAGE_SUFFIXES`, hidden files and folders skipped, sorted by relative path)
            and glob patterns (``**`` recursive; matches sorted).
        manifest: a CSV file with a header; its ``path_column`` lists the images, relative paths being relative to
            the manifest's folder. Its rows come after ``sources``.
        path_column: the manifest's column of paths.
        exclude: folders never to collect from (the run's output folder, if it lies inside an input folder).

    Raises:
        InputError: a folder with no image file, a glob matching nothing, a manifest without ``path_column``, or
            no input at all.

    Example::

        collect_inputs(["val/"])[0]      # InputFile(path='val/v7_val_0000.png', key='v7_val_0000.png', ...)
    """
    skip = [Path(e).resolve() for e in exclude]
    found: list[tuple[str, str, str]] = []  # (path, relative name, source)
    for source in sources:
        found += _expand(os.fspath(source), skip)
    if manifest is not None:
        found += _read_manifest(Path(manifest), path_column)
    if not found:
        raise InputError("no inputs: give image files, folders, glob patterns or --manifest")
    return _with_keys(found)


def _expand(text: str, skip: list[Path]) -> list[tuple[str, str, str]]:
    path = Path(text)
    if path.is_dir():
        files = _walk(path, skip)
        if not files:
            raise InputError(f"folder {text!r} holds no image file ({', '.join(IMAGE_SUFFIXES)})")
        return [(os.path.join(text, rel), rel, os.path.join(text, rel)) for rel in files]
    if not path.exists() and any(c in text for c in _GLOB_MAGIC):
        root = _glob_root(text)
        matches = sorted(m for m in glob.glob(text, recursive=True) if Path(m).is_file() and not _inside(Path(m), skip))
        if not matches:
            raise InputError(f"no file matches {text!r}")
        return [(m, os.path.relpath(m, root) if root else m, m) for m in matches]
    return [(text, _relative_name(text), text)]


def _walk(folder: Path, skip: list[Path]) -> list[str]:
    out = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _inside(here / d, skip))
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                out.append((here / name).relative_to(folder).as_posix())
    return sorted(out)


def _inside(path: Path, skip: list[Path]) -> bool:
    if not skip:
        return False
    resolved = path.resolve()
    return any(resolved == s or s in resolved.parents for s in skip)


def _glob_root(pattern: str) -> str:
    """The folder part of a glob pattern before its first wildcard ('' when the first component has one)."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if any(c in part for c in _GLOB_MAGIC):
            break
        fixed.append(part)
    return os.path.join(*fixed) if fixed else ""


def _relative_name(text: str) -> str:
    """A file named on the command line: its path as written if relative and inside '.', else its name."""
    norm = os.path.normpath(text)
    if os.path.isabs(norm) or norm == ".." or norm.startswith(".." + os.sep):
        return Path(norm).name
    return Path(norm).as_posix()


def _read_manifest(path: Path, column: str) -> list[tuple[str, str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or column not in reader.fieldnames:
                have = ", ".join(reader.fieldnames or []) or "none"
                raise InputError(
                    f"manifest {os.fspath(path)!r} has no column {column!r} (its columns: {have}); "
                    "name the column of paths with --path-column"
                )
            values = [(row.get(column) or "").strip() for row in reader]
    except OSError as exc:
        raise InputError(f"cannot read the manifest {os.fspath(path)!r}: {exc.strerror or exc}") from None
    folder = path.parent
    out = []
    for value in values:
        if not value:
            continue
        source = value if os.path.isabs(value) else os.fspath(folder / value)
        out.append((value, _relative_name(value), source))
    return out


def _with_keys(found: list[tuple[str, str, str]]) -> list[InputFile]:
    used: set[str] = set()
    items = []
    for path, rel, source in found:
        base = _safe_key(rel)
        key, n = base, 1
        # case-insensitive, so that two keys never name one file on macOS or Windows file systems
        while key.casefold() in used:
            n += 1
            key = f"{base}~{n}"
        used.add(key.casefold())
        items.append(InputFile(path=path, key=key, source=source))
    return items


def _safe_key(rel: str) -> str:
    """A relative POSIX path without '.', '..' or empty components; over-long components shortened with a hash."""
    parts = [p for p in PurePosixPath(rel.replace(os.sep, "/")).parts if p not in ("", ".", "..", "/")]
    if not parts:
        parts = ["image"]
    return "/".join(_short(p) for p in parts)


def _short(component: str) -> str:
    data = component.encode("utf-8", "surrogateescape")
    if len(data) <= MAX_COMPONENT_BYTES:
        return component
    digest = hashlib.sha256(data).hexdigest()[:16]
    head = data[:100].decode("utf-8", "ignore")
    return f"{head}~{digest}"


__all__ = ["IMAGE_SUFFIXES", "InputError", "InputFile", "collect_inputs"]
