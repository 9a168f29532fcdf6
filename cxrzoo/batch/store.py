"""The output folder of ``cxrzoo predict -o DIR``: artifacts, a journal of completed rows, the final tables.

Layout::

    DIR/results.csv                 one row per input that succeeded, in input order (results.parquet: --format)
    DIR/errors.csv                  path, reason: one row per input that failed, in input order
    DIR/artifacts/<key>.<kind>      masks, heat maps, bone-suppressed images (<key>: the input's relative path)
    DIR/.cxrzoo-predict/            run.json (model and options), journal.jsonl (completed rows), lock

The guarantees:

* **A row means everything is there.** An image's artifacts are each written to a temporary file in their folder
  and renamed into place, all of them, before its row is appended to the journal (one ``write`` of one line).
* **Resumable.** A rerun of the same command skips every input whose key and file sha256 have a journal row, and
  writes the same final tables, byte for byte, as an uninterrupted run: the tables are rebuilt in input order from
  the journal at the end, each written to a temporary file and renamed. A torn last journal line (a kill during the
  write) is dropped; temporary files and artifacts without a journal row (a kill between an image's files) are
  deleted when the next run opens the folder, so no partial set survives.
* **Checked first.** :func:`check_output_folder` (exists or can be created, is a folder, a file can be written and
  removed) runs before any model is built; a folder holding another model's or options' results is refused, and
  two runs cannot write one folder at once (a lock).

Example::

    store = ResultStore("out", model="res_cr_net.v7_lungs", layout=layout(spec)).open()
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cxrzoo._version import __version__
from cxrzoo.fileio import new_file_mode

STATE = ".cxrzoo-predict"
ARTIFACTS = "artifacts"
TMP_PREFIX = ".tmp-"
FORMATS = ("csv", "parquet")
BASE_COLUMNS = ("path", "sha256", "tag", "cxrzoo_version")


class OutputError(ValueError):
    """The output folder cannot be used (not creatable, not writable, another model's results, locked)."""


def check_output_folder(folder: str | os.PathLike) -> Path:
    """Creates ``folder`` if needed and proves a file can be written and removed there; OutputError otherwise."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise OutputError(f"output folder {os.fspath(path)!r} exists and is not a folder; choose another -o")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the output folder {os.fspath(path)!r} ({exc.strerror or exc}); choose another -o"
        ) from None
    try:
        fd, probe = tempfile.mkstemp(prefix=TMP_PREFIX + "probe-", dir=path)
        try:
            os.write(fd, b"cxrzoo")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise OutputError(
            f"the output folder {os.fspath(path)!r} is not writable ({exc.strerror or exc}); "
            "choose another -o or fix its permissions"
        ) from None
    return path


def atomic_write(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file in the same folder and a rename (mode 0o666 & ~umask)."""
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, new_file_mode())  # mkstemp's 0600 would hide results from colleagues
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class ResultStore:
    """The output folder of one model and one set of options; see the module docstring for the guarantees.

    Args:
        folder: the output folder (created if needed).
        model: the spec name the rows come from (the ``tag`` column).
        layout: the :class:`~cxrzoo.batch.tasks.Layout` of the rows.
        options: options that change the results (e.g. ``{"heatmaps": True}``); a rerun must use the same.
        fmt: "csv" or "parquet" for the results table (errors are always CSV).
    """

    def __init__(self, folder, *, model: str, layout, options: dict[str, Any] | None = None, fmt: str = "csv") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
        self.folder = Path(folder)
        self.model = model
        self.layout = layout
        self.options = dict(options or {})
        self.fmt = fmt
        self.columns = [*BASE_COLUMNS, *(name for name, _ in layout.columns), *(col for _, col in layout.artifacts)]
        self.completed: dict[tuple[str, str], dict[str, Any]] = {}
        self.current: dict[str, str] = {}  # key -> sha256 of the row completed (or found complete) in this run
        self.errors: dict[str, tuple[str, str]] = {}  # key -> (path, reason)
        self._journal = None
        self._lock = None

    # --- opening

    def open(self) -> ResultStore:
        """Checks the folder, takes the lock, reads the journal and removes what a killed run left half-written."""
        if self.fmt == "parquet":
            _pyarrow()
        check_output_folder(self.folder)
        state = self.folder / STATE
        state.mkdir(exist_ok=True)
        self._take_lock(state / "lock")
        self._check_run(state / "run.json")
        self.completed = self._read_journal(state / "journal.jsonl")
        self._clean()
        self._journal = open(state / "journal.jsonl", "ab")  # noqa: SIM115 (kept open for the run)
        return self

    def _take_lock(self, path: Path) -> None:
        import fcntl

        handle = open(path, "a")  # noqa: SIM115 (held until close)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise OutputError(
                f"another cxrzoo predict is writing to {os.fspath(self.folder)!r}; wait for it or choose another -o"
            ) from None
        self._lock = handle

    def _check_run(self, path: Path) -> None:
        record = {"model": self.model, "options": self.options, "columns": self.columns}
        if path.exists():
            try:
                old = json.loads(path.read_text())
            except (OSError, ValueError):
                old = None
            if old is not None and (old.get("model"), old.get("options")) != (self.model, self.options):
                raise OutputError(
                    f"{os.fspath(self.folder)!r} holds results of {old.get('model')!r} with options "
                    f"{old.get('options')}; this run is {self.model!r} with {self.options}: use another -o "
                    "(or the same model and options to resume)"
                )
        atomic_write(path, (json.dumps(record, indent=1) + "\n").encode())

    def _read_journal(self, path: Path) -> dict[tuple[str, str], dict[str, Any]]:
        completed: dict[tuple[str, str], dict[str, Any]] = {}
        if not path.exists():
            return completed
        data = path.read_bytes()
        good = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # torn by a kill during the write
            try:
                entry = json.loads(line)
                completed[(entry["key"], entry["sha256"])] = entry["row"]
            except (ValueError, KeyError, TypeError):
                break
            good += len(line)
        if good < len(data):
            with open(path, "r+b") as handle:
                handle.truncate(good)
        return completed

    def _referenced(self) -> set[str]:
        return {row[col] for row in self.completed.values() for _, col in self.layout.artifacts if row.get(col)}

    def _clean(self) -> None:
        """Deletes temporary files, and artifacts no journal row names (a set cut short by a kill)."""
        root = self.folder / ARTIFACTS
        for tmp in self.folder.glob(TMP_PREFIX + "*"):
            with contextlib.suppress(OSError):
                tmp.unlink()
        if not root.is_dir():
            return
        keep = self._referenced()
        for here, _, files in os.walk(root):
            for name in files:
                path = Path(here) / name
                rel = path.relative_to(self.folder).as_posix()
                if name.startswith(TMP_PREFIX) or rel not in keep:
                    with contextlib.suppress(OSError):
                        path.unlink()

    # --- during the run

    def done_keys(self) -> frozenset[str]:
        """``key\\0sha256`` of every completed row (what :class:`~cxrzoo.batch.tasks.Preparer` skips)."""
        from cxrzoo.batch.tasks import done_key

        return frozenset(done_key(key, sha) for key, sha in self.completed)

    def artifact_path(self, key: str, kind: str) -> str:
        """The artifact file of input ``key`` (relative to the output folder, POSIX)."""
        return f"{ARTIFACTS}/{key}.{kind}"

    def skipped(self, key: str, sha256: str) -> dict[str, Any]:
        """Marks an input as complete from an earlier run; returns its row."""
        self.current[key] = sha256
        self.errors.pop(key, None)
        return self.completed[(key, sha256)]

    def add(self, result: dict[str, Any]) -> dict[str, Any]:
        """Writes one result row's artifacts, then its journal line; returns the table row."""
        if self._journal is None:
            raise RuntimeError("ResultStore.open() first")
        key, sha = result["key"], result["sha256"]
        row: dict[str, Any] = {"path": result["path"], "sha256": sha, "tag": self.model, "cxrzoo_version": __version__}
        row.update(result["values"])
        for kind, column in self.layout.artifacts:
            data = result["artifacts"].get(kind)
            if data is None:
                row[column] = ""
                continue
            rel = self.artifact_path(key, kind)
            target = self.folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, data)
            row[column] = rel
        line = json.dumps({"key": key, "sha256": sha, "row": row}, separators=(",", ":")) + "\n"
        self._journal.write(line.encode())
        self._journal.flush()  # a killed process loses nothing flushed (the page cache survives it)
        self.completed[(key, sha)] = row
        self.current[key] = sha
        self.errors.pop(key, None)
        return row

    def error(self, key: str, path: str, reason: str) -> None:
        """Records a failed input (errors are retried by a rerun, so they are not journaled)."""
        self.errors[key] = (path, reason)
        self.current.pop(key, None)

    # --- the end

    def finish(self, items: Iterable) -> dict[str, int]:
        """Writes the results and errors tables in input order; returns counts. Inputs this run did not reach are
        left out (the run was interrupted; a rerun completes them)."""
        rows, errors = [], []
        for item in items:
            if item.key in self.errors:
                errors.append({"path": item.path, "reason": self.errors[item.key][1]})
            elif item.key in self.current:
                row = dict(self.completed[(item.key, self.current[item.key])])
                row["path"] = item.path  # the path as given this time (a moved folder keeps its results)
                rows.append(row)
        self._write_results(rows)
        atomic_write(self.folder / "errors.csv", _csv_bytes(["path", "reason"], errors, {}))
        return {"results": len(rows), "errors": len(errors)}

    def _write_results(self, rows: list[dict[str, Any]]) -> None:
        types = dict(self.layout.columns)
        if self.fmt == "csv":
            atomic_write(self.folder / "results.csv", _csv_bytes(self.columns, rows, types))
            return
        pa, pq = _pyarrow()
        arrow = {"float": pa.float64(), "bool": pa.bool_()}
        columns = {}
        for col in self.columns:
            kind = types.get(col)
            columns[col] = pa.array([_parquet_value(r.get(col), kind) for r in rows], arrow.get(kind, pa.string()))
        table = pa.table(columns)
        sink = io.BytesIO()
        pq.write_table(table, sink)
        atomic_write(self.folder / "results.parquet", sink.getvalue())

    def close(self) -> None:
        for handle in (self._journal, self._lock):
            if handle is not None:
                handle.close()
        self._journal = self._lock = None

    def __enter__(self) -> ResultStore:
        return self.open() if self._journal is None else self

    def __exit__(self, *exc) -> None:
        self.close()


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise OutputError(
            'Parquet output needs pyarrow: pip install "cxrzoo[ray]" (or pyarrow), or use --format csv'
        ) from None
    return pa, pq


def _text(value, kind: str | None) -> str:
    if value is None:
        return ""
    if kind == "float" or isinstance(value, float):
        value = float(value)
        return "" if math.isnan(value) else format(value, ".9g")  # .9g: every float32 value exactly
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parquet_value(value, kind: str | None):
    if value is None or (value == "" and kind in ("float", "bool")):
        return None
    if kind == "float":
        return float(value)
    if kind == "bool":
        return bool(value)
    return str(value)


def _csv_bytes(columns: list[str], rows: list[dict[str, Any]], types: dict[str, str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_text(row.get(col), types.get(col)) for col in columns])
    return out.getvalue().encode("utf-8")


__all__ = ["FORMATS", "OutputError", "ResultStore", "atomic_write", "check_output_folder"]
