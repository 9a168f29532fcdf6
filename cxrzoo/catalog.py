"""The zoo's named tables (papers, architectures, specs, preprocessing recipes, augmentations, training recipes).

Each paper's folder under :mod:`cxrzoo.models` fills these tables when it is imported; the shared machinery below
the papers only ever looks names up. A lookup first imports :mod:`cxrzoo.models` once (:func:`populate`): that one
dynamic import is how the lower layers learn of the papers without importing them, the way timm and Keras find
registered models (docs/architecture.md). Registering has no side effect beyond adding an entry.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

#: The package whose import registers every paper.
PAPERS_PACKAGE = "cxrzoo.models"


@functools.lru_cache(maxsize=1)
def populate() -> None:
    """Imports the papers package (and so TensorFlow) once, which registers everything."""
    importlib.import_module(PAPERS_PACKAGE)


class Catalog(Generic[T]):
    """A name → item table with aliases and error messages that list the valid names."""

    def __init__(self, kind: str, *, lazy: bool = True):
        self.kind = kind
        self._lazy = lazy
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def _ready(self) -> None:
        if self._lazy:
            populate()

    def register(self, name: str, item: T, *, aliases: tuple[str, ...] = ()) -> T:
        if name in self._items and self._items[name] is not item:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        for alias in aliases:
            self._aliases[alias] = name
        return item

    def canonical(self, name: str) -> str:
        self._ready()
        if not isinstance(name, str):
            raise TypeError(f"a {self.kind} name must be a string, got {type(name).__name__}")
        if name in self._items:
            return name
        if name in self._aliases:
            return self._aliases[name]
        raise ValueError(f"unknown {self.kind} {name!r}; valid names: {', '.join(sorted(self._items))}")

    def get(self, name: str) -> T:
        return self._items[self.canonical(name)]

    def __contains__(self, name: object) -> bool:
        self._ready()
        return name in self._items or name in self._aliases

    def names(self, pattern: str = "*") -> list[str]:
        self._ready()
        return sorted(n for n in self._items if fnmatch.fnmatchcase(n, pattern))

    def items(self) -> Iterator[tuple[str, T]]:
        self._ready()
        return iter(sorted(self._items.items()))

    # Read-only mapping protocol, so a catalogue can stand where a dict of presets stood.
    def __getitem__(self, name: str) -> T:
        try:
            return self.get(name)
        except ValueError as err:
            raise KeyError(str(err)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._ready()
        return len(self._items)

    def keys(self) -> list[str]:
        return self.names()

    def values(self) -> list[T]:
        return [item for _, item in self.items()]


@dataclass(frozen=True)
class Paper:
    """One paper: its key (used by every table), the system's name, and the citation."""

    key: str
    name: str
    citation: str
    doc: str  # the model card, relative to docs/

    def __str__(self) -> str:
        return f"{self.name} ({self.citation})"


PAPERS: Catalog[Paper] = Catalog("paper")


def register_paper(key: str, name: str, citation: str, doc: str) -> Paper:
    """Registers a paper under ``key``; its system name (any case, spaces, dashes) is accepted as an alias."""
    paper = Paper(key, name, citation, doc)
    spellings = {name, name.lower(), name.lower().replace("-", "_").replace(" ", "_"), name.lower().replace("-", "")}
    return PAPERS.register(key, paper, aliases=tuple(spellings - {key}))


def paper_key(name: str) -> str:
    """The key of a paper given its key or its system's name (``"CXR-Net"`` → ``"cxrnet"``)."""
    key = name.lower() if isinstance(name, str) and name.lower() in PAPERS else name
    return PAPERS.canonical(key)
