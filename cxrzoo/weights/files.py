"""Finding weights files: mirror folders, then the cache, then a verified download.

Order of resolution for every file of a tag (each step verifies the hash before returning anything):

1. ``CXRZOO_WEIGHTS_PATH``: read-only mirror folders (``os.pathsep``-separated), matched by the file name of the
   published URL;
2. the cache: ``cache_dir=`` argument, else ``$CXRZOO_HOME``, else ``~/.cache/cxrzoo`` (resolved at call time,
   never at import), as ``<root>/weights/<tag>/<filename>``;
3. a download from the manifest's URLs, unless ``CXRZOO_OFFLINE=1``: written to a temporary file inside the cache
   folder, verified, then renamed into place atomically, so an interrupted or corrupt download never leaves a file
   that looks complete. A download may not exceed the manifest's size (1 GiB when the size is unknown); a URL whose
   body is short, too long or fails the hash is followed by the next URL. Temporary files left by a killed download
   (``.<file>.<random>.part``, locked while a download writes them) are removed at the next resolve.

A file whose hash differs from the manifest raises :class:`WeightsHashError` wherever it was found; cxrzoo never
silently re-downloads or loads it. Files written here (cache, ``fetch_weights(dest=)`` mirrors) get the mode the
umask gives new files (0644 under umask 022), so a shared cache or mirror is readable by its users.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cxrzoo.fileio import atomic_path, create_temp
from cxrzoo.weights.errors import WeightsDownloadError, WeightsHashError, WeightsNotFoundError
from cxrzoo.weights.manifest import WeightsEntry, WeightsFile, weights_info

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: stale downloads are recognized by age instead of by lock
    fcntl = None

ENV_MIRROR = "CXRZOO_WEIGHTS_PATH"
ENV_HOME = "CXRZOO_HOME"
ENV_OFFLINE = "CXRZOO_OFFLINE"
_CHUNK = 1 << 20
_TIMEOUT_S = 60
_PART = ".part"
#: Most bytes read from a URL for a file whose size the manifest does not record.
MAX_UNKNOWN_DOWNLOAD_BYTES = 2**30
_STALE_AGE_S = 24 * 3600  # without file locks, a temporary file this old is taken as abandoned


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache root for this call: ``cache_dir``, else ``$CXRZOO_HOME``, else ``~/.cache/cxrzoo``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    home = os.environ.get(ENV_HOME)
    if home:
        return Path(home).expanduser()
    return Path.home() / ".cache" / "cxrzoo"


def mirror_folders() -> list[Path]:
    """The folders named by ``$CXRZOO_WEIGHTS_PATH``, in order (empty entries are ignored)."""
    value = os.environ.get(ENV_MIRROR, "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


def offline_mode() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in {"1", "true", "yes", "on"}


def file_hash(path: str | os.PathLike, algorithm: str) -> str:
    """``sha256`` of the file's bytes, or its ``git-blob-sha1`` (``sha1(b"blob <size>\\0" + content)``)."""
    path = Path(path)
    if algorithm == "sha256":
        digest = hashlib.sha256()
    elif algorithm == "git-blob-sha1":
        digest = hashlib.sha1()
        digest.update(b"blob %d\0" % path.stat().st_size)
    else:
        raise ValueError(f"unknown hash algorithm {algorithm!r}; expected 'sha256' or 'git-blob-sha1'")
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: str | os.PathLike, wfile: WeightsFile, tag: str | None = None) -> Path:
    """Returns ``path`` if its hash matches ``wfile``; raises :class:`WeightsHashError` otherwise."""
    actual = file_hash(path, wfile.hash_algorithm)
    if actual != wfile.expected_hash:
        raise WeightsHashError(path, wfile.hash_algorithm, wfile.expected_hash, actual, tag=tag)
    return Path(path)


def _cache_path(tag: str, wfile: WeightsFile, cache_dir) -> Path:
    return cache_root(cache_dir) / "weights" / tag / wfile.filename


def _progress_printer(name: str, total: int | None, enabled: bool):
    def report(done: int) -> None:
        if not enabled:
            return
        if total:
            sys.stderr.write(f"\r  downloading {name}: {done / total:6.1%} of {total / 1e6:.1f} MB")
        else:
            sys.stderr.write(f"\r  downloading {name}: {done / 1e6:.1f} MB")
        sys.stderr.flush()

    return report


class _Oversized(Exception):
    """A server sending more bytes than the manifest publishes."""


def _lock(fd: int) -> None:
    """Marks a temporary download as in use (released when its descriptor closes, even by a killed process)."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def remove_stale_downloads(target: Path) -> list[Path]:
    """Removes the temporary files of killed downloads of ``target`` (``.<name>.<random>.part`` beside it) that no
    running download holds locked; returns what was removed."""
    removed = []
    for part in target.parent.glob(f".{target.name}.*{_PART}"):
        try:
            with open(part, "rb") as fh:
                if fcntl is not None:
                    try:
                        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # another process is downloading into it right now
                else:  # pragma: no cover
                    import time

                    if time.time() - os.fstat(fh.fileno()).st_mtime < _STALE_AGE_S:
                        continue
                part.unlink()
                removed.append(part)
        except OSError:
            continue  # gone already, or not ours to remove: the next resolve tries again
    return removed


def _fetch_url(url: str, out, limit: int, report) -> int:
    """Streams ``url`` into ``out``, refusing more than ``limit`` bytes; returns the number of bytes."""
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
        announced = getattr(response, "length", None)
        if announced is not None and announced > limit:
            raise _Oversized(f"the server announces {announced:,} bytes, more than the published {limit:,}")
        done = 0
        while True:
            block = response.read(min(_CHUNK, limit + 1 - done))  # one byte past the limit reveals an overrun
            if not block:
                break
            done += len(block)
            if done > limit:
                raise _Oversized(f"the server sent more than the published {limit:,} bytes")
            out.write(block)
            report(done)
    if announced is not None and done < announced:
        raise ConnectionError(f"connection closed after {done} of {announced} bytes")
    return done


def _download(wfile: WeightsFile, target: Path, tag: str, progress: bool) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_downloads(target)
    limit = wfile.size if wfile.size is not None else MAX_UNKNOWN_DOWNLOAD_BYTES
    failures: list[str] = []
    mismatches: list[WeightsHashError] = []
    for url in wfile.urls:
        fd, tmp = create_temp(target, suffix=_PART)
        try:
            # the descriptor (and its lock) stays open until the file is renamed, so no cleaner can take it
            with os.fdopen(fd, "wb") as out:
                _lock(out.fileno())
                _fetch_url(url, out, limit, _progress_printer(wfile.filename, wfile.size, progress))
                out.flush()
                if progress:
                    sys.stderr.write("\n")
                actual = file_hash(tmp, wfile.hash_algorithm)
                if actual != wfile.expected_hash:
                    raise WeightsHashError(url, wfile.hash_algorithm, wfile.expected_hash, actual, tag=tag)
                os.replace(tmp, target)
            return target
        except WeightsHashError as exc:  # a corrupt or substituted body: the next URL may serve the real file
            mismatches.append(exc)
            failures.append(f"{url}: {exc}")
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError, _Oversized) as exc:
            failures.append(f"{url}: {exc}")
        finally:
            tmp.unlink(missing_ok=True)
    if mismatches:
        error = mismatches[0]
        if len(failures) > 1 and hasattr(error, "add_note"):
            error.add_note("every URL failed:\n  " + "\n  ".join(failures))
        raise error
    raise WeightsDownloadError(
        f"could not download {wfile.filename!r} for weights {tag!r}:\n  " + "\n  ".join(failures)
    )


def _resolve_file(tag: str, wfile: WeightsFile, cache_dir, offline: bool, progress: bool) -> Path:
    cached = _cache_path(tag, wfile, cache_dir)
    if cached.parent.is_dir():
        remove_stale_downloads(cached)
    searched = []
    for folder in mirror_folders():
        candidate = folder / wfile.filename
        searched.append(folder)
        if candidate.is_file():
            return verify_file(candidate, wfile, tag)
    searched.append(cached.parent)
    if cached.is_file():
        return verify_file(cached, wfile, tag)
    if offline:
        raise WeightsNotFoundError(
            tag,
            wfile.filename,
            wfile.describe_hash(),
            wfile.urls,
            searched,
            reason=f"downloading is disabled ({ENV_OFFLINE}=1)",
        )
    return _download(wfile, cached, tag, progress)


def get_weights_files(
    tag: str, *, cache_dir: str | os.PathLike | None = None, offline: bool | None = None, progress: bool | None = None
) -> list[Path]:
    """Local, hash-verified paths of every file of ``tag`` (a TF checkpoint has two), in manifest order."""
    entry = weights_info(tag)
    offline = offline_mode() if offline is None else offline
    progress = sys.stderr.isatty() if progress is None else progress
    return [_resolve_file(tag, wfile, cache_dir, offline, progress) for wfile in entry.files]


def get_weights_file(
    tag: str, *, cache_dir: str | os.PathLike | None = None, offline: bool | None = None, progress: bool | None = None
) -> Path:
    """Local, hash-verified path of the weights file of ``tag`` (the first file when there are several).

    Looks in ``$CXRZOO_WEIGHTS_PATH`` mirror folders, then the cache (``cache_dir`` → ``$CXRZOO_HOME`` →
    ``~/.cache/cxrzoo``), then downloads unless ``offline`` (default: ``$CXRZOO_OFFLINE=1``).

    Raises:
        UnknownWeightsError: ``tag`` is not in the manifest (the message lists the valid tags).
        WeightsHashError: a file was found or downloaded but its hash is not the published one.
        WeightsNotFoundError: offline and not found (the message says how to fetch it elsewhere).
        WeightsDownloadError: every URL failed.
    """
    return get_weights_files(tag, cache_dir=cache_dir, offline=offline, progress=progress)[0]


def fetch_weights(
    tag: str,
    dest: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    offline: bool | None = None,
    progress: bool | None = None,
) -> list[Path]:
    """Resolves ``tag`` (downloading if needed) and, with ``dest``, copies its files there flat, ready to be used
    as a ``CXRZOO_WEIGHTS_PATH`` mirror folder. The copy is atomic per file."""
    paths = get_weights_files(tag, cache_dir=cache_dir, offline=offline, progress=progress)
    if dest is None:
        return paths
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for src in paths:
        target = dest / src.name
        if target.exists() and target.resolve() == src.resolve():
            out.append(target)
            continue
        with atomic_path(target, suffix=_PART) as tmp:
            shutil.copyfile(src, tmp)
        out.append(target)
    return out


def unobtainable_by_design(entry: WeightsEntry) -> bool:
    """True for entries whose files the project could not obtain: the manifest records only their git blob SHA-1
    (no sha256, no size), so no mirror built from the project's downloads holds them (see docs/weights.md)."""
    return any(f.sha256 is None for f in entry.files)


#: The statuses :func:`verify_weights` reports, in the order of severity used by ``cxrzoo weights verify``.
VERIFY_STATUSES = ("ok", "unobtainable", "missing", "unreadable", "hash mismatch")


@dataclass(frozen=True)
class VerifyResult:
    """The state of one tag's local copies: ``status`` is one of :data:`VERIFY_STATUSES`; ``detail`` gives the
    paths (ok), the file that failed (mismatch, unreadable) or why it is absent."""

    tag: str
    status: str
    detail: str = ""

    def __str__(self) -> str:
        labels = {
            "ok": "ok",
            "unobtainable": "unobtainable by design",
            "missing": "missing",
            "unreadable": "UNREADABLE",
            "hash mismatch": "HASH MISMATCH",
        }
        return labels[self.status] + (f": {self.detail}" if self.detail else "")


def verify_weights(
    tags: Iterable[str] | None = None, *, cache_dir: str | os.PathLike | None = None
) -> list[VerifyResult]:
    """Checks the local copies of ``tags`` (default: all) without downloading, one :class:`VerifyResult` per tag.

    A tag absent everywhere is "unobtainable" when :func:`unobtainable_by_design` says no mirror can hold it,
    else "missing"; a file that exists but cannot be read (e.g. a mirror made with mode 0600 by another user) is
    "unreadable" rather than an exception.
    """
    from cxrzoo.weights.manifest import list_weights

    results = []
    for tag in tags or list_weights():
        entry = weights_info(tag)
        try:
            paths = get_weights_files(tag, cache_dir=cache_dir, offline=True, progress=False)
            results.append(VerifyResult(tag, "ok", ", ".join(str(p) for p in paths)))
        except WeightsNotFoundError:
            if unobtainable_by_design(entry):
                results.append(
                    VerifyResult(
                        tag, "unobtainable", "only a git blob SHA-1 is published; no mirror holds it (docs/weights.md)"
                    )
                )
            else:
                results.append(VerifyResult(tag, "missing"))
        except WeightsHashError as exc:
            results.append(VerifyResult(tag, "hash mismatch", str(exc.path)))
        except OSError as exc:  # PermissionError and friends: report it, and go on with the other tags
            where = f"{exc.filename}: " if exc.filename else ""
            results.append(VerifyResult(tag, "unreadable", f"{where}{exc.strerror or exc}"))
    return results


def verify_all(tags: Iterable[str] | None = None, *, cache_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Checks the local copies of ``tags`` (default: all) without downloading; returns tag → status text (see
    :func:`verify_weights` for the structured form)."""
    return {r.tag: str(r) for r in verify_weights(tags, cache_dir=cache_dir)}
