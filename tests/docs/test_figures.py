"""The documentation's pictures: all drawn by scripts/make_figures.py, all shown, small, and credited."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
FIGURES = DOCS / "figures"
SCRIPT = REPO / "scripts" / "make_figures.py"
MAX_BYTES = 5 * 2**20
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)]+\.png)\)")


def _references() -> dict[Path, list[tuple[Path, int]]]:
    """Each PNG a page shows → the pages (and offsets) that show it."""
    found: dict[Path, list[tuple[Path, int]]] = {}
    for page in [REPO / "README.md", *DOCS.rglob("*.md")]:
        text = page.read_text(encoding="utf-8")
        for match in IMAGE.finditer(text):
            target = (page.parent / match.group(1)).resolve()
            found.setdefault(target, []).append((page, match.end()))
    return found


def test_every_figure_is_shown_and_every_shown_figure_exists():
    refs = _references()
    committed = {p.resolve() for p in FIGURES.glob("*.png")}
    assert committed, "docs/figures is empty"
    assert not [p for p in refs if not p.is_file()], "pages show missing figures"
    assert committed <= set(refs), f"figures no page shows: {sorted(p.name for p in committed - set(refs))}"


def test_the_script_draws_exactly_the_committed_figures():
    listed = set(re.findall(r"^(\w+\.png)\s", SCRIPT.read_text(encoding="utf-8"), flags=re.M))
    assert listed == {p.name for p in FIGURES.glob("*.png")}


def test_figures_are_small():
    sizes = {p.name: p.stat().st_size for p in FIGURES.glob("*.png")}
    assert sum(sizes.values()) <= MAX_BYTES, sizes
    assert max(sizes.values()) <= 512 * 1024, sizes


def test_every_figure_names_its_source_and_licence():
    # a picture of a radiograph names the image and its licence; a picture of metrics says no image is reproduced
    for figure, places in _references().items():
        for page, end in places:
            caption = " ".join(page.read_text(encoding="utf-8")[end : end + 900].split())
            credited = "CC BY 3.0" in caption or "not reproduced" in caption or "notebook" in caption
            assert credited, f"{page.relative_to(REPO)}: the caption of {figure.name} names no source or licence"


def test_the_script_only_draws_images_that_may_be_redistributed(shared):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_figures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.VAL = Path(shared("data", "v7_covid_lungs", "val"))
    rows = module.licensed_images(8)
    assert {r["license"] for r in rows} == {"CC BY 3.0"}
    with pytest.raises(SystemExit, match="CC BY 3.0 images"):
        module.licensed_images(10_000)
