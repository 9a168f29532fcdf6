"""Finding weights files: mirror folders, then the cache, then a verified download.

Order of resolution for every file of a tag (each step verifies the hash before returning anything):

1. ``CXRZOO_WEIGHTS_PATH``: read-only mirror folders (``os.pathsep``-separated), matched by the file name of the
   published URL;
2. the cache: ``cache_dir=`` argument, else ``$CXRZOO_HOME``, else ``~/.cache/cxrzoo`` (resolved at call time,
   never at import), as ``<root>/weights/<tag>/<filename>``;
3. a download from the manifest's URLs, unless ``CXRZOO_OFFLINE=1``: written to a temporary file inside the cache
   folder, verified, then renamed into place atomically, so an interrupted or corrupt download never leaves a file
   that looks complete.

A file whose hash differs from the manifest raises :class:`WeightsHashError` wherever it was found; cxrzoo never
silently re-downloads or loads it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from cxrzoo.weights.errors import WeightsDownloadError, WeightsHashError, WeightsNotFoundError
from cxrzoo.weights.manifest import WeightsFile, weights_info

ENV_MIRROR = "CXRZOO_WEIGHTS_PATH"
ENV_HOME = "CXRZOO_HOME"
ENV_OFFLINE = "CXRZOO_OFFLINE"
_CHUNK = 1 << 20
_TIMEOUT_S = 60


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


def _download(wfile: WeightsFile, target: Path, tag: str, progress: bool) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in wfile.urls:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{wfile.filename}.", suffix=".part", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            report = _progress_printer(wfile.filename, wfile.size, progress)
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
                announced = getattr(response, "length", None)
                done = 0
                for block in iter(lambda: response.read(_CHUNK), b""):
                    out.write(block)
                    done += len(block)
                    report(done)
            if announced is not None and done < announced:
                raise ConnectionError(f"connection closed after {done} of {announced} bytes")
            if progress:
                sys.stderr.write("\n")
            actual = file_hash(tmp, wfile.hash_algorithm)
            if actual != wfile.expected_hash:
                raise WeightsHashError(url, wfile.hash_algorithm, wfile.expected_hash, actual, tag=tag)
            os.replace(tmp, target)
            return target
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
            failures.append(f"{url}: {exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise WeightsDownloadError(
        f"could not download {wfile.filename!r} for weights {tag!r}:\n  " + "\n  ".join(failures)
    )


def _resolve_file(tag: str, wfile: WeightsFile, cache_dir, offline: bool, progress: bool) -> Path:
    searched = []
    for folder in mirror_folders():
        candidate = folder / wfile.filename
        searched.append(folder)
        if candidate.is_file():
            return verify_file(candidate, wfile, tag)
    cached = _cache_path(tag, wfile, cache_dir)
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
    cache_dir=None,
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
        fd, tmp_name = tempfile.mkstemp(prefix=f".{src.name}.", suffix=".part", dir=dest)
        os.close(fd)
        try:
            shutil.copyfile(src, tmp_name)
            os.replace(tmp_name, target)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
        out.append(target)
    return out


def verify_all(tags: Iterable[str] | None = None, *, cache_dir=None) -> dict[str, str]:
    """Checks the local copies of ``tags`` (default: all) without downloading; returns tag → status text."""
    from cxrzoo.weights.manifest import list_weights

    status = {}
    for tag in tags or list_weights():
        try:
            paths = get_weights_files(tag, cache_dir=cache_dir, offline=True, progress=False)
            status[tag] = "ok: " + ", ".join(str(p) for p in paths)
        except WeightsNotFoundError:
            status[tag] = "missing"
        except WeightsHashError as exc:
            status[tag] = f"HASH MISMATCH: {exc.path}"
    return status
