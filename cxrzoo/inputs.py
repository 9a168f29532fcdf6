"""The input-safety layer: every file cxrzoo reads on a user's behalf (images, dataset files, weights given by path)
is opened through here. See docs/security.md for the threat model.

- Only regular files are read: a directory, FIFO, socket or device (``/dev/zero``, ``/dev/stdin``) is refused
  before it is opened, so nothing can block forever waiting for a writer or stream without end.
- A size cap applies before reading (:data:`MAX_FILE_BYTES`, ``$CXRZOO_MAX_FILE_BYTES``, or ``max_bytes=``), and
  reading stops at the cap even when a file grows while it is read.
- HDF5 files (weights given by path, CXR-Net's H5 examples) may not pull data from anywhere but themselves:
  external storage, virtual datasets and external links are refused, naming the object
  (:func:`check_hdf5_tree`), and so is a file whose datasets declare more than :data:`MAX_HDF5_BYTES`.

This module imports nothing heavy (h5py is imported by the HDF5 check only), so it may be used under tight memory
limits.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import h5py

__all__ = [
    "ENV_MAX_FILE_BYTES",
    "MAX_FILE_BYTES",
    "MAX_HDF5_BYTES",
    "InputFileError",
    "InputTooLargeError",
    "check_hdf5_tree",
    "max_file_bytes",
    "open_regular_file",
    "read_regular_file",
]

#: Largest file read by default: 256 MiB. An uncompressed 4300 x 4300 16-bit DICOM radiograph is 37 MB; the largest
#: published weights file in the zoo is about 1 MB (ImageNet backbones a few hundred MB are built, not read here).
MAX_FILE_BYTES = 256 * 2**20

#: Environment variable overriding :data:`MAX_FILE_BYTES` (a number of bytes), read at every call.
ENV_MAX_FILE_BYTES = "CXRZOO_MAX_FILE_BYTES"

#: Largest total size the datasets of an HDF5 file may declare (2 GiB): a few bytes of header can declare a
#: terabyte-sized dataset of unwritten chunks, which reading would materialize as its fill value.
MAX_HDF5_BYTES = 2 * 2**30

#: Most objects (groups, datasets, links) an HDF5 file may hold before it is refused as unreasonable.
MAX_HDF5_OBJECTS = 100_000

_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class InputFileError(ValueError):
    """A file refused before or while reading: not a regular file, too large, or unsafe content."""


class InputTooLargeError(InputFileError):
    """A file (or what it declares it holds) over a documented size limit."""


def max_file_bytes(max_bytes: int | None = None) -> int:
    """The size cap for this call: ``max_bytes``, else ``$CXRZOO_MAX_FILE_BYTES``, else :data:`MAX_FILE_BYTES`."""
    if max_bytes is not None:
        return int(max_bytes)
    value = os.environ.get(ENV_MAX_FILE_BYTES, "").strip()
    if not value:
        return MAX_FILE_BYTES
    try:
        cap = int(value)
    except ValueError:
        raise ValueError(f"{ENV_MAX_FILE_BYTES} must be a number of bytes, got {value!r}") from None
    if cap <= 0:
        raise ValueError(f"{ENV_MAX_FILE_BYTES} must be positive, got {cap}")
    return cap


def _kind(mode: int) -> str:
    for test, text in _FILE_KINDS:
        if test(mode):
            return text
    return "not a regular file"


def open_regular_file(
    path: str | os.PathLike,
    *,
    max_bytes: int | None = None,
    error: type[Exception] = InputFileError,
    too_large: type[Exception] = InputTooLargeError,
) -> BinaryIO:
    """Opens ``path`` for binary reading if it is a regular file no larger than the cap; returns the file object.

    Raises ``FileNotFoundError`` (missing), ``IsADirectoryError`` (a folder), ``error`` (FIFO, socket, device) or
    ``too_large`` (over the cap). The file's type is checked both before opening (so that opening a device or a
    FIFO never has side effects or blocks) and on the opened descriptor (so that a swap in between is caught).
    """
    path = Path(path)
    cap = max_file_bytes(max_bytes)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(f"{path}: is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: is {_kind(info.st_mode)}; cxrzoo reads regular files only")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{path}: is {_kind(info.st_mode)}; cxrzoo reads regular files only")
        if info.st_size > cap:
            raise too_large(
                f"{path}: the file is {info.st_size:,} bytes, over the limit of {cap:,} "
                f"(${ENV_MAX_FILE_BYTES} or max_bytes= raises it)"
            )
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(
    path: str | os.PathLike,
    *,
    max_bytes: int | None = None,
    error: type[Exception] = InputFileError,
    too_large: type[Exception] = InputTooLargeError,
) -> bytes:
    """The bytes of a regular file no larger than the cap (see :func:`open_regular_file`)."""
    cap = max_file_bytes(max_bytes)
    with open_regular_file(path, max_bytes=cap, error=error, too_large=too_large) as fh:
        data = fh.read(cap + 1)  # a file that grew since fstat is still held to the cap
    if len(data) > cap:
        raise too_large(f"{path}: the file grew past the limit of {cap:,} bytes while it was read")
    return data


def check_hdf5_tree(
    h5file: Any, name: str, *, max_bytes: int = MAX_HDF5_BYTES, error: type[Exception] = InputFileError
) -> None:
    """Refuses an open ``h5py.File`` that would read anything outside itself, or declares too much data.

    Every group is walked through its links (never following one): an external link, a dataset with external
    storage (``Dataset.external``) or a virtual dataset (``Dataset.is_virtual``) raises ``error`` naming the
    object, as does a file whose datasets declare more than ``max_bytes`` in total or that holds more than
    :data:`MAX_HDF5_OBJECTS` objects. Soft links stay inside the file and are not followed.
    """
    import h5py

    seen: set = set()
    total = 0
    count = 0
    stack = [("/", h5file["/"])]
    while stack:
        group_path, group = stack.pop()
        for key in group:
            count += 1
            if count > MAX_HDF5_OBJECTS:
                raise error(f"{name}: more than {MAX_HDF5_OBJECTS:,} HDF5 objects; not a weights or data file")
            child_path = group_path.rstrip("/") + "/" + key
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise error(
                    f"{name}: HDF5 object {child_path!r} is an external link to {link.filename!r}; "
                    "files that read other files are refused"
                )
            if not isinstance(link, h5py.HardLink):
                continue  # a soft link names an object inside this file, which the walk reaches by its hard link
            obj = group.get(key)
            if obj is None:
                continue
            address = h5py.h5o.get_info(obj.id).addr
            if address in seen:
                continue
            seen.add(address)
            if isinstance(obj, h5py.Group):
                stack.append((child_path, obj))
            elif isinstance(obj, h5py.Dataset):
                if obj.is_virtual:
                    raise error(
                        f"{name}: HDF5 dataset {child_path!r} is a virtual dataset (it maps other files); refused"
                    )
                if obj.external:
                    files = ", ".join(
                        repr(entry[0].decode(errors="replace") if isinstance(entry[0], bytes) else entry[0])
                        for entry in obj.external
                    )
                    raise error(
                        f"{name}: HDF5 dataset {child_path!r} keeps its data in external file(s) {files}; refused"
                    )
                total += _declared_bytes(obj)
                if total > max_bytes:
                    raise error(
                        f"{name}: the HDF5 datasets declare more than {max_bytes:,} bytes (at {child_path!r}); refused"
                    )


def _declared_bytes(dataset: h5py.Dataset) -> int:
    """Bytes the dataset would occupy once read (its shape times its item size); 0 for null dataspaces."""
    shape = dataset.shape
    if shape is None:
        return 0
    count = 1
    for side in shape:
        count *= int(side)
    return count * max(int(dataset.dtype.itemsize), 1)
