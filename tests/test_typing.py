"""Type hints on every public function of cxrzoo: each argument (but self/cls, *args, **kwargs) and the return.

Private helpers (a leading underscore, or nested inside a function) may stay unannotated; ruff's ANN201 checks
return types too, this test also checks the arguments of public functions only.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "cxrzoo"


def _public_functions(tree: ast.Module):
    """(qualified name, node) of every public function and public method of a public class."""

    def walk(body, prefix: str):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                yield f"{prefix}{node.name}", node
            elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                yield from walk(node.body, f"{prefix}{node.name}.")

    yield from walk(tree.body, "")


def _missing(node) -> list[str]:
    args = node.args
    named = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    missing = [a.arg for a in named if a.annotation is None and a.arg not in ("self", "cls")]
    if node.returns is None and node.name != "__init__":
        missing.append("return")
    return missing


def test_every_public_function_is_annotated():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name, node in _public_functions(tree):
            missing = _missing(node)
            if missing:
                problems.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {name}: {', '.join(missing)}")
    assert not problems, "missing type hints:\n" + "\n".join(problems)


def test_the_check_sees_a_missing_hint():
    tree = ast.parse("def f(a, b: int) -> int: ...\nclass C:\n    def g(self, x: int): ...\n    def _h(self, y): ...\n")
    found = {name: _missing(node) for name, node in _public_functions(tree)}
    assert found == {"f": ["a"], "C.g": ["return"]}
