"""Rewrite the first (install) cell of every notebook from the one repository URL in _config.yml.

The repository URL lives in `_config.yml` (`repository.url`) and the version in pyproject.toml; this
script writes them into each notebook's install cell, and tests/test_notebooks.py checks that they agree.
Usage: python tools/sync_install_cells.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def repository_url() -> str:
    text = (ROOT / "_config.yml").read_text()
    m = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", text, flags=re.M)
    if not m:
        raise SystemExit("_config.yml has no repository.url")
    return m.group(1)


def version() -> str:
    m = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), flags=re.M)
    return m.group(1)


def install_cell_source() -> str:
    url = repository_url().removeprefix("https://")
    return f"""# Setup: install varhyper_mini when it is not importable (for example in Google Colab).
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("varhyper_mini") is None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "varhyper_mini @ git+https://{url}@v{version()}",
        ],
        check=True,
    )"""


def notebooks() -> list[Path]:
    return (
        sorted(ROOT.glob("*.ipynb")) + sorted(ROOT.glob("chapters/*.ipynb")) + sorted(ROOT.glob("assignments/*.ipynb"))
    )


def main() -> int:
    src = install_cell_source()
    for path in notebooks():
        nb = nbformat.read(path, as_version=4)
        first = nb.cells[0]
        if first.cell_type == "code" and "pip" in first.source and first.source != src:
            first.source = src
            nbformat.write(nb, path)
            print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
