"""Every examples/*.ipynb runs top to bottom, offline, on the tiny subsets in ../shared (nbclient)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def test_there_are_notebooks_to_run():
    assert NOTEBOOKS, f"no notebooks in {EXAMPLES}"


@pytest.mark.shared
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_offline(notebook, shared, shared_weights, monkeypatch, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("CXRZOO_SHARED", str(shared("data").parent))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    # the kernel inherits this process' environment: CXRZOO_OFFLINE=1 (set by conftest) refuses any download,
    # CXRZOO_WEIGHTS_PATH points at the mirror, and MPLBACKEND keeps matplotlib off any display
    monkeypatch.setenv("MPLBACKEND", "Agg")
    assert os.environ.get("CXRZOO_OFFLINE") == "1"
    nb = nbformat.read(notebook, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(EXAMPLES)}}
    )
    client.execute()
    errors = [
        o
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    leftovers = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in {".keras", ".h5", ".png", ".csv"})
    assert not leftovers, f"the notebooks left files behind in examples/: {leftovers}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_with_its_outputs_and_a_figure(notebook):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(notebook, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code), f"{notebook.name}: not executed top to bottom"
    outputs = [o for cell in code for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"], f"{notebook.name}: stored with an error"
    figures = [o for o in outputs if any(k.startswith("image/") for k in o.get("data", {}))]
    assert figures, f"{notebook.name}: no figure among its stored outputs"
    assert notebook.stat().st_size < 400_000, f"{notebook.name}: {notebook.stat().st_size} bytes; keep it small"
