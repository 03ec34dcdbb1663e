"""Committed notebooks carry no outputs, and each starts with the install cell."""

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = (
    sorted(ROOT.glob("*.ipynb")) + sorted(ROOT.glob("chapters/*.ipynb")) + sorted(ROOT.glob("assignments/**/*.ipynb"))
)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a cell has outputs; clear them before committing"
            assert cell.execution_count is None, f"{path.name}: execution counts left in"


@pytest.mark.parametrize(
    "path", sorted(ROOT.glob("chapters/*.ipynb")) + sorted(ROOT.glob("*.ipynb")), ids=lambda p: p.name
)
def test_chapter_first_cell_installs_the_package(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "code" and "pip" in first.source and "varhyper_mini" in first.source
    assert "remove-input" in first.metadata.get("tags", [])


def test_install_cells_use_the_one_repository_url():
    import importlib.util

    spec = importlib.util.spec_from_file_location("sync", ROOT / "tools" / "sync_install_cells.py")
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    want = sync.install_cell_source()
    for path in sync.notebooks():
        first = nbformat.read(path, as_version=4).cells[0]
        assert first.source == want, f"{path.name}: run `python tools/sync_install_cells.py`"


MAX_CELL_LINES = 25  # cells hold prose-sized calls; logic lives in tested package functions


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_code_cells_stay_thin(path):
    nb = nbformat.read(path, as_version=4)
    long = [
        (i, n)
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (n := len(cell.source.splitlines())) > MAX_CELL_LINES
    ]
    assert not long, (
        f"{path.name}: code cells (index, lines) over {MAX_CELL_LINES} lines: {long}; move logic into the package"
    )
