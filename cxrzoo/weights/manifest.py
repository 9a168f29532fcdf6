"""The weights manifest: what was published, where, with which hash and for which model.

The manifest is a JSON file shipped inside the package (``cxrzoo/weights/weights_manifest.json``; the repository's
top-level ``weights_manifest.json`` is the same file) and validated against
``weights_manifest.schema.json`` by the test suite.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from cxrzoo.weights.errors import UnknownWeightsError

MANIFEST_NAME = "weights_manifest.json"
SCHEMA_NAME = "weights_manifest.schema.json"


@dataclass(frozen=True)
class WeightsFile:
    """One published file: its name, size, hash and the URLs that serve it."""

    filename: str
    size: int | None
    urls: tuple[str, ...]
    sha256: str | None = None
    git_blob_sha1: str | None = None

    @property
    def hash_algorithm(self) -> str:
        return "sha256" if self.sha256 else "git-blob-sha1"

    @property
    def expected_hash(self) -> str:
        return self.sha256 or self.git_blob_sha1  # the schema guarantees one of them

    def describe_hash(self) -> str:
        if self.sha256:
            return f"sha256 {self.sha256}"
        return f"git blob SHA-1 {self.git_blob_sha1} (the only known hash)"


@dataclass(frozen=True)
class WeightsEntry:
    """A manifest entry. ``raw`` holds every field (contracts, provenance, metrics, limitations)."""

    tag: str
    arch: str
    role: str
    title: str
    format: str
    files: tuple[WeightsFile, ...]
    builder_kwargs: Mapping[str, Any]
    labels: tuple[str, ...]
    license: str
    raw: Mapping[str, Any]

    @property
    def hash_verified_by_sha256(self) -> bool:
        return all(f.sha256 for f in self.files)

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.raw))


def read_manifest_text() -> str:
    return resources.files("cxrzoo.weights").joinpath(MANIFEST_NAME).read_text(encoding="utf-8")


def read_schema() -> dict[str, Any]:
    return json.loads(resources.files("cxrzoo.weights").joinpath(SCHEMA_NAME).read_text(encoding="utf-8"))


def _entry_from_json(item: Mapping[str, Any]) -> WeightsEntry:
    files = tuple(
        WeightsFile(
            filename=f["filename"],
            size=f.get("size"),
            urls=tuple(f["urls"]),
            sha256=f.get("sha256"),
            git_blob_sha1=f.get("git_blob_sha1"),
        )
        for f in item["files"]
    )
    return WeightsEntry(
        tag=item["tag"],
        arch=item["arch"],
        role=item["role"],
        title=item["title"],
        format=item["format"],
        files=files,
        builder_kwargs=dict(item["builder_kwargs"]),
        labels=tuple(item["labels"]),
        license=item["license"],
        raw=item,
    )


@lru_cache(maxsize=1)
def _entries() -> dict[str, WeightsEntry]:
    data = json.loads(read_manifest_text())
    return {item["tag"]: _entry_from_json(item) for item in data["weights"]}


def list_weights(arch: str | None = None, pattern: str = "*") -> list[str]:
    """Tags of the published weights, sorted; ``arch`` keeps one architecture, ``pattern`` is a glob on the tag.

    >>> list_weights("res_cr_net")
    ['res_cr_net.jms_lungs', 'res_cr_net.v7_lungs']
    """
    return sorted(
        tag
        for tag, entry in _entries().items()
        if (arch is None or entry.arch == arch) and fnmatch.fnmatchcase(tag, pattern)
    )


def weights_info(tag: str) -> WeightsEntry:
    """The manifest entry of ``tag``; raises ``UnknownWeightsError`` (a ValueError) listing the valid tags."""
    try:
        return _entries()[tag]
    except (KeyError, TypeError):
        valid = ", ".join(list_weights())
        raise UnknownWeightsError(f"unknown weights tag {tag!r}; valid tags: {valid}") from None
