"""Atomic file writes that respect the umask: every file cxrzoo writes goes through here.

A file is written under a temporary name in its destination folder and renamed into place, so a reader never sees a
partial file. ``tempfile.mkstemp`` creates the temporary file with mode 0600 whatever the umask, which would leave
caches, ``--dest`` mirrors and figures unreadable by colleagues; the temporary file is therefore given the mode
``open()`` would have given a new file (``0o666 & ~umask``) before anything is written to it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write", "create_temp", "current_umask", "new_file_mode"]

_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the platform allows.

    ``os.umask`` can only be read by setting it, which briefly changes it for every thread; Linux publishes it in
    ``/proc/self/status`` (since 4.7), so that is tried first and the set-and-restore is only the fallback.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: ``0o666 & ~umask``."""
    return 0o666 & ~current_umask()


def create_temp(path: str | os.PathLike, *, suffix: str | None = None) -> tuple[int, Path]:
    """A new temporary file beside ``path`` (named ``.<name>.<random><suffix>``) with the umask's mode.

    Returns the open descriptor and the path; the caller closes the one and renames or removes the other.
    ``suffix`` defaults to the target's own suffix, so that writers which add an extension when it is missing
    (``np.save``) or pick a format from it (Matplotlib) behave as with the final name.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=path.suffix if suffix is None else suffix, dir=path.parent
    )
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, new_file_mode())
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    return fd, Path(name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """A temporary path to write ``path``'s content to; renamed onto ``path`` when the block succeeds.

    An exception (or ``KeyboardInterrupt``) in the block removes the temporary file and leaves ``path`` as it was.
    """
    path = Path(path)
    fd, tmp = create_temp(path, suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, write: Callable[[str], object], *, suffix: str | None = None) -> Path:
    """Calls ``write(temporary_name)`` and renames the result onto ``path`` atomically; returns ``path``."""
    with atomic_path(path, suffix=suffix) as tmp:
        write(str(tmp))
    return Path(path)
