"""Every fenced ``python`` and ``bash`` block of README.md and docs/ runs, in order, page by page.

Why a small collector of our own rather than pytest-markdown-docs: a page's snippets build on each other (the
second block uses the model the first one made) and mix Python with shell commands (``cxrzoo predict`` then
reading its output), and the blocks read the authors' images and weights through ``../shared`` paths, as a reader
with the repository beside ``shared/`` would type them. pytest-markdown-docs runs Python fences only, each as its
own test; here one test per page runs all of its blocks in one namespace and one working folder:

- the working folder is a fresh temporary folder ``work/`` next to a ``shared`` link to ../shared, so
  ``../shared/...`` in a snippet means the same thing as beside a clone, and files a snippet writes
  (``out/``, ``evaluation/``) never land in the repository; it stands for the clone's root, with links to the
  clone's ``benchmarks/``, ``scripts/`` and ``examples/``;
- Python blocks are executed with ``exec`` in one namespace per page; shell blocks with ``bash -e -c`` in the same
  folder, with this interpreter's ``bin/`` (``cxrzoo``, ``python``) first on ``PATH`` and ``CXRZOO_WEIGHTS_PATH``
  pointing at the mirror;
- a block that must not run carries ``<!-- no-run: reason -->`` on the line before its fence (counted, and
  listed by ``test_few_blocks_are_not_run``); every other block runs;
- a block that needs a tool cxrzoo does not install (Docker for TensorFlow Serving) carries
  ``<!-- requires: TOOL reason -->``: ``test_blocks_needing_a_tool`` runs the page up to it and then the block where
  the tool works, and skips, naming the tool, where it does not;
- a page whose blocks need ../shared (a ``../shared`` path, or published weights) skips, with the reason, when it is
  absent;
- pages that train or build the whole CXR-Net (minutes on a CPU) are in the slow tier (``-m slow``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("CXRZOO_SHARED", REPO.parent / "shared")).resolve()  # as tests/conftest.py
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
RUNNABLE = {"python": "python", "py": "python", "bash": "bash", "sh": "bash", "shell": "bash"}
_FENCE = re.compile(r"^(?P<indent>[ ]{0,3})```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.S | re.M)
_NO_RUN = re.compile(r"<!--\s*no-run:\s*(?P<reason>.+?)\s*-->\s*$")
_REQUIRES = re.compile(r"<!--\s*requires:\s*(?P<tool>[\w-]+)\s+(?P<reason>.+?)\s*-->\s*$")
# how to tell that a tool works, beyond being on PATH (a docker client without a daemon cannot run anything)
_TOOL_CHECKS = {"docker": ["docker", "info"]}
# the clone's folders of scripts a page may run; linked into the working folder, which stands for the clone's root
_CLONE_FOLDERS = ("benchmarks", "scripts", "examples")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    code: str
    no_run: str | None  # the reason, when the page marks the block as not to be run
    requires: tuple[str, str] | None = None  # (tool, reason), when the block needs a tool cxrzoo does not install


def blocks(page: Path) -> list[Block]:
    """The page's fenced python/bash blocks, in order, with their no-run marks."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        lang = RUNNABLE.get(match.group("lang").lower())
        if lang is None:
            continue
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _NO_RUN.search(before)
        needs = _REQUIRES.search(before)
        found.append(
            Block(
                page,
                line,
                lang,
                match.group("body"),
                mark.group("reason") if mark else None,
                (needs.group("tool"), needs.group("reason")) if needs else None,
            )
        )
    return found


def _plain(block: Block) -> bool:
    return block.no_run is None and block.requires is None


def _needs_shared(page_blocks: list[Block]) -> bool:
    # published weights are read from the mirror in ../shared/weights (the tests are offline)
    hints = ("../shared", "create_model(", "pipeline(", "segment_lungs(", "suppress_bones(", "weights", "cxrzoo ")
    return any(h in b.code for b in page_blocks for h in hints)


PAGES_WITH_BLOCKS = [p for p in PAGES if any(_plain(b) for b in blocks(p))]
# Pages whose snippets train or build the full CXR-Net take minutes on 2 CPU cores: they run in the slow tier
# (pytest -m slow), the others in the default tier.
SLOW_PAGES = {"README.md", "docs/data.md", "docs/evaluate.md", "docs/finetuning.md", "docs/training.md"}
SLOW_PAGES |= {"docs/models/cxrnet.md", "docs/export.md"}


def _rel(page: Path) -> str:
    return str(page.relative_to(REPO))


def test_pages_have_blocks_to_run():
    assert PAGES_WITH_BLOCKS, "no runnable python/bash blocks found in README.md or docs/"


def test_few_blocks_are_not_run():
    # blocks that need a tool we do not install count too: on a machine without it they are not run either
    not_run = [
        (f"{_rel(b.page)}:{b.line}", b.no_run or f"needs {b.requires[0]}: {b.requires[1]}")
        for p in PAGES
        for b in blocks(p)
        if not _plain(b)
    ]
    total = sum(len(blocks(p)) for p in PAGES)
    assert len(not_run) <= max(3, total // 10), f"too many blocks marked no-run or needing a tool: {not_run}"
    assert all(reason for _, reason in not_run)


def _param(page: Path):
    marks = [pytest.mark.slow] if _rel(page) in SLOW_PAGES else []
    return pytest.param(page, id=_rel(page), marks=marks)


def _tool_missing(tool: str) -> str | None:
    """Why ``tool`` cannot run here, or None when it can."""
    if shutil.which(tool) is None:
        return f"{tool} is not installed"
    check = _TOOL_CHECKS.get(tool)
    if check is not None:
        done = subprocess.run(check, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            return f"`{' '.join(check)}` failed: {done.stderr.strip()[-300:]}"
    return None


def _run_blocks(page: Path, page_blocks: list[Block], tmp_path: Path, monkeypatch) -> None:
    """Run ``page_blocks`` in order in one namespace and one fresh working folder, as a reader would."""
    if _needs_shared(page_blocks) and not (SHARED / "weights").is_dir():
        pytest.skip(f"{_rel(page)}: its snippets read the published weights and images in {SHARED} (absent here)")
    work = tmp_path / "work"
    work.mkdir()
    for folder in _CLONE_FOLDERS:  # commands such as ``python benchmarks/x.py`` run from the clone's root
        (work / folder).symlink_to(REPO / folder, target_is_directory=True)
    if SHARED.exists():
        (tmp_path / "shared").symlink_to(SHARED, target_is_directory=True)
        monkeypatch.setenv("CXRZOO_WEIGHTS_PATH", str(SHARED / "weights"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.chdir(work)
    namespace: dict = {"__name__": "__snippet__"}
    try:
        for block in page_blocks:
            where = f"{_rel(page)}:{block.line}"
            if block.lang == "python":
                try:
                    exec(compile(block.code, where, "exec"), namespace)  # the documentation's own code
                except Exception as error:
                    raise AssertionError(f"the python block at {where} failed: {error!r}") from error
            else:
                done = subprocess.run(
                    ["bash", "-e", "-o", "pipefail", "-c", block.code],
                    cwd=work,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                output = f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
                assert done.returncode == 0, f"the shell block at {where} exited {done.returncode}:\n{output}"
    finally:
        # a page's models and arrays go with it: the pages build a dozen models in one process
        import gc

        import keras
        import matplotlib.pyplot as plt

        plt.close("all")
        namespace.clear()
        keras.backend.clear_session()
        gc.collect()


@pytest.mark.shared
@pytest.mark.parametrize("page", [_param(p) for p in PAGES_WITH_BLOCKS])
def test_page_snippets_run(page, tmp_path, monkeypatch):
    _run_blocks(page, [b for b in blocks(page) if _plain(b)], tmp_path, monkeypatch)


NEEDING_A_TOOL = [
    pytest.param(b, id=f"{_rel(p)}:{b.line}", marks=_param(p).marks)
    for p in PAGES
    for b in blocks(p)
    if b.requires is not None and b.no_run is None
]


@pytest.mark.shared
@pytest.mark.parametrize("block", NEEDING_A_TOOL)
def test_blocks_needing_a_tool(block, tmp_path, monkeypatch):
    tool, reason = block.requires
    missing = _tool_missing(tool)
    if missing is not None:
        pytest.skip(f"{_rel(block.page)}:{block.line} needs {tool} ({reason}): {missing}")
    before = [b for b in blocks(block.page) if _plain(b) and b.line < block.line]
    _run_blocks(block.page, [*before, block], tmp_path, monkeypatch)
