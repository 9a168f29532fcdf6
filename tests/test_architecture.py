"""The layering of docs/architecture.md: contracts kept, no import cycle, shared code free of paper imports."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (the test extra)")


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_imports_a_module_that_imports_it_back():
    assert _cycles(grimp.build_graph("cxrzoo")) == []


def test_the_cycle_finder_finds_a_cycle():
    class Graph:
        modules = frozenset({"a", "b", "c"})

        @staticmethod
        def find_modules_directly_imported_by(module):
            return {"a": {"b"}, "b": {"a"}, "c": {"a"}}[module]

    assert _cycles(Graph()) == [["a", "b"]]


def test_shared_machinery_never_imports_a_paper():
    graph = grimp.build_graph("cxrzoo")
    shared = (
        "cxrzoo.nn",
        "cxrzoo.preprocessing",
        "cxrzoo.data",
        "cxrzoo.training",
        "cxrzoo.explain",
        "cxrzoo.weights",
        "cxrzoo.spec",
        "cxrzoo.catalog",
        "cxrzoo.losses",
        "cxrzoo.metrics",
    )
    for module in graph.modules:
        if module.startswith(shared):
            papers = {m for m in graph.find_modules_directly_imported_by(module) if m.startswith("cxrzoo.models")}
            assert not papers, f"{module} imports {sorted(papers)}"


def test_import_linter_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("lint-imports is not installed here (pip install -e '.[test]')")
    done = subprocess.run([lint], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 2 kept, 0 broken." in done.stdout
