"""Errors raised while finding, verifying and loading published weights."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class WeightsError(Exception):
    """Base class of every weights error cxrzoo raises."""


class UnknownWeightsError(WeightsError, ValueError):
    """A tag that is not in the manifest (or not for the architecture being built)."""


class UnsafeWeightsFileError(WeightsError, ValueError):
    """A weights file given by path that would read data from elsewhere (HDF5 external storage, virtual datasets,
    external links), or is not a regular file, or declares more data than is plausible. Refused before loading."""


class WeightsHashError(WeightsError, ValueError):
    """A file whose content does not match the hash recorded in the manifest."""

    def __init__(self, path: Path | str, algorithm: str, expected: str, actual: str, tag: str | None = None):
        self.path = path  # a local path, or the URL of a download that failed verification
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual
        self.tag = tag
        where = f" for weights {tag!r}" if tag else ""
        super().__init__(
            f"hash mismatch{where}: {self.path} has {algorithm} {actual}, expected {expected}. "
            "The file is corrupt, truncated or not the published one; delete or replace it."
        )


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """A file that is neither in a mirror folder nor in the cache, when downloading is not allowed."""

    def __init__(
        self, tag: str, filename: str, hash_text: str, urls: Sequence[str], searched: Sequence[Path], reason: str
    ):
        self.tag = tag
        self.filename = filename
        self.urls = list(urls)
        self.searched = [Path(p) for p in searched]
        folders = "\n".join(f"    {p}" for p in self.searched) or "    (none)"
        url_lines = "\n".join(f"    {u}" for u in self.urls)
        self.message = (
            f"weights {tag!r}: file {filename!r} ({hash_text}) was not found and {reason}.\n"
            f"  Folders searched:\n{folders}\n"
            f"  Published at:\n{url_lines}\n"
            f"  On a machine with internet access run:  cxrzoo weights fetch {tag} --dest DIR\n"
            f"  then copy DIR here and point CXRZOO_WEIGHTS_PATH at it."
        )
        super().__init__(self.message)

    def __str__(self) -> str:  # OSError would format its constructor arguments as errno/strerror
        return self.message


class WeightsDownloadError(WeightsError, OSError):
    """Every URL of a file failed to download."""
