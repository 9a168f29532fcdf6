"""Reading results and label tables, and joining them row by row.

A results table is what ``cxrzoo predict`` writes (CSV with a header; Parquet when pyarrow is installed): one row
per image with ``path``, ``sha256``, ``tag``, ``cxrzoo_version``, one ``p_<label>`` column per output label, QC
columns and, for segmentation, ``mask_path``. A labels table has an id column (a path or a file stem), a label
column and optionally a patient column. Rows are joined by path or by file stem; rows that do not match are an
error naming how many and a few of them, unless the caller allows them.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

#: File extensions stripped from ids when joining by stem (an id such as ``patient1.scan2`` keeps its dot).
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".dcm", ".dicom", ".npy", ".h5"}
)
#: Id columns looked for, in this order, when none is named.
ID_COLUMNS = ("path", "id", "image", "file", "filename")
EXAMPLES = 5


@dataclass
class Table:
    """A table as text: ``columns`` in file order and ``rows`` (one dict per row, column → string)."""

    path: str
    columns: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)

    def require(self, *names: str, hint: str = "") -> None:
        """ValueError naming the missing columns, the columns there are and ``hint`` (how to fix it)."""
        missing = [n for n in names if n not in self.columns]
        if missing:
            raise ValueError(
                f"{self.path}: no column {', '.join(repr(m) for m in missing)} (columns: {', '.join(self.columns)})"
                + (f"; {hint}" if hint else "")
            )


def read_table(path: str | os.PathLike) -> Table:
    """A CSV file with a header (or a Parquet file, with pyarrow installed) as a :class:`Table` of strings.

    Example::

        table = read_table("out/predictions.csv")
        table.columns  # ['path', 'sha256', 'tag', 'cxrzoo_version', 'p_covid', 'p_non_covid', ...]
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path)
    with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's byte-order mark is not a name
        reader = csv.DictReader(f)
        if not reader.fieldnames:
            raise ValueError(f"{path}: empty file; expected a CSV table with a header row")
        columns = [c.strip() for c in reader.fieldnames]
        duplicated = [c for c, k in Counter(columns).items() if k > 1]
        if duplicated:
            raise ValueError(f"{path}: the header names {', '.join(duplicated)} more than once")
        rows = []
        for line, raw in enumerate(reader, start=2):
            if None in raw:
                raise ValueError(f"{path}, line {line}: more fields than the header has columns")
            rows.append({c.strip(): (v or "").strip() for c, v in raw.items()})
    return Table(str(path), columns, rows)


def _read_parquet(path: Path) -> Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow), or pass the CSV") from None
    data = pq.read_table(path).to_pydict()
    columns = list(data)
    n = len(data[columns[0]]) if columns else 0
    rows = [{c: "" if data[c][i] is None else str(data[c][i]) for c in columns} for i in range(n)]
    return Table(str(path), columns, rows)


def id_stem(value: str) -> str:
    """The id of a path or id for joining by stem: the file name without an image extension.

    Example::

        >>> id_stem("data/val/images/v7_val_0000.png"), id_stem("v7_val_0000"), id_stem("p1.scan2")
        ('v7_val_0000', 'v7_val_0000', 'p1.scan2')
    """
    name = Path(value.replace("\\", "/")).name
    suffix = Path(name).suffix
    return name[: -len(suffix)] if suffix.lower() in IMAGE_SUFFIXES else name


def _path_key(value: str) -> str:
    return os.path.normpath(os.path.abspath(value)) if value else value


def examples(items: Iterable, k: int = EXAMPLES, *, quote: bool = True) -> str:
    """``'a', 'b', 'c' and 4 more``: a few items of a list for an error message."""
    items = list(items)
    shown = ", ".join(repr(i) if quote else str(i) for i in items[:k])
    return shown + (f" and {len(items) - k} more" if len(items) > k else "")


@dataclass
class Join:
    """Matched row indices ``pairs`` (result row, label row), how they were matched and what did not match."""

    how: str
    pairs: list[tuple[int, int]]
    unmatched_results: list[str]
    unmatched_labels: list[str]


def join_rows(result_ids: list[str], label_ids: list[str], *, how: str = "auto", what: str = "labels") -> Join:
    """Match result rows to label rows by ``"path"`` (the same file: paths compared after making them absolute
    against the working directory), by ``"stem"`` (file name without image extension) or ``"auto"``: by path if
    that matches more results than the stem does, else by stem.

    Duplicate ids on the side being matched are an error when they make the match ambiguous.
    """
    if how not in ("auto", "path", "stem"):
        raise ValueError(f"join must be 'auto', 'path' or 'stem', got {how!r}")

    def match(name: str, key) -> Join:
        index: dict[str, list[int]] = {}
        for j, value in enumerate(label_ids):
            index.setdefault(key(value), []).append(j)
        pairs, unmatched, used = [], [], set()
        for i, value in enumerate(result_ids):
            hits = index.get(key(value), [])
            if len(hits) > 1:
                raise ValueError(
                    f"{len(hits)} rows of the {what} match {value!r} by {name}: "
                    f"{examples(label_ids[j] for j in hits)}; make the ids unique"
                    + (" or join by path (--join path)" if name == "stem" else "")
                )
            if hits:
                pairs.append((i, hits[0]))
                used.add(hits[0])
            else:
                unmatched.append(value)
        return Join(name, pairs, unmatched, [v for j, v in enumerate(label_ids) if j not in used])

    candidates = []
    for name, key in (("path", _path_key), ("stem", id_stem)):
        if how in (name, "auto"):
            try:
                candidates.append(match(name, key))
            except ValueError:
                if how == name:
                    raise
    if not candidates:  # auto, and both raised: repeat the stem match for its message
        match("stem", id_stem)
    best = max(candidates, key=lambda j: len(j.pairs))  # ties: the first, by path

    # two results matching one label row would be counted twice
    repeated = [label_ids[j] for j, k in Counter(j for _, j in best.pairs).items() if k > 1]
    if repeated:
        raise ValueError(
            f"{len(repeated)} rows of the {what} match more than one result row by {best.how} "
            f"(e.g. {examples(repeated)}); drop the duplicate results or join by path (--join path)"
        )
    return best


def unmatched_message(join: Join, n_results: int, n_labels: int, *, what: str = "labels") -> str | None:
    """The error text for rows that did not match (None when everything matched)."""
    parts = []
    if join.unmatched_results:
        parts.append(
            f"{len(join.unmatched_results)} of {n_results} results have no row in the {what} "
            f"({examples(join.unmatched_results)})"
        )
    if join.unmatched_labels:
        parts.append(
            f"{len(join.unmatched_labels)} of {n_labels} rows of the {what} have no result "
            f"({examples(join.unmatched_labels)})"
        )
    if not parts:
        return None
    return (
        "; ".join(parts)
        + f" (joined by {join.how}). Check the id column (--id-column), the join (--join path|stem), or pass "
        "--allow-unmatched to evaluate the matched rows only"
    )
