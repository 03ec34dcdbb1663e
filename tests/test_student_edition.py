"""The student edition (`make book-student`, tools/build_student.py): the book without solutions.

Two parts. A small book built in a temporary folder with this repository's _config.yml and _ext
checks the mechanism on every run: gated solutions hidden (code cells inside them too), the default
build keeping them, the student build reusing the executed outputs of the default build and
executing a notebook whose code changed. Then the real builds, when present: no page of
_build/student/_build/html shows a solution, while _build/html shows every one of them.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "_build" / "html"
STUDENT = ROOT / "_build" / "student" / "_build" / "html"
SPEC = importlib.util.spec_from_file_location("build_student", ROOT / "tools" / "build_student.py")
build_student = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(build_student)

needs_jupyter_book = pytest.mark.skipif(
    shutil.which(build_student.jupyter_book()) is None, reason="jupyter-book is not installed (the book extra)"
)


def _text(path: Path) -> str:
    """A page's text as a reader sees it, in one line (typographic apostrophes made plain)."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", path.read_text(encoding="utf8"), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).replace("\u2019", "'").split())


def _classes(path: Path) -> list[str]:
    return [c for attr in re.findall(r'class="([^"]*)"', path.read_text(encoding="utf8")) for c in attr.split()]


def _pages(site: Path) -> dict[str, Path]:
    return {p.relative_to(site).as_posix(): p for p in site.rglob("*.html") if "_static" not in p.parts}


# --- the mechanism, on a small book ------------------------------------------------------------------

CODE = (
    "import random\nfrom myst_nb import glue\nvalue = random.random()\nprint('RANDOM', value)\n"
    "glue('val', value, display=False)"
)


def _cell(kind: str, source: str, i: int) -> dict:
    cell = {"cell_type": kind, "metadata": {}, "source": source, "id": f"c{i}"}
    if kind == "code":
        cell.update(outputs=[], execution_count=None)
    return cell


def _write_book(folder: Path, code: str = CODE) -> None:
    cells = [
        ("code", code),
        ("markdown", "# Page\n\nValue {glue:text}`val:.6f`.\n\n```{exercise}\n:label: ex-one\nDo it.\n```\n\n"
                     "```{solution-start} ex-one\n:class: dropdown\n```\nSECRET ONE, $x^2$.\n"),
        ("code", "print('SECRET CODE')"),
        ("markdown", "SECRET TWO.\n```{solution-end}\n```\n\nBetween the solutions.\n\n```{exercise}\n:label: ex-two\n"
                     "Again.\n```\n\n```{solution-start} ex-two\n:class: dropdown\n```\nSECRET THREE\n"
                     "```{solution-end}\n```\n\nThe end."),
    ]  # fmt: skip
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [_cell(kind, source, i) for i, (kind, source) in enumerate(cells)],
    }
    (folder / "page.ipynb").write_text(json.dumps(nb), encoding="utf8")


@pytest.fixture(scope="module")
def small_book(tmp_path_factory) -> Path:
    book = tmp_path_factory.mktemp("book")
    for name in ("_config.yml", "references.bib"):
        shutil.copy(ROOT / name, book / name)
    shutil.copytree(ROOT / "_ext", book / "_ext", ignore=shutil.ignore_patterns("__pycache__"))
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: page\n", encoding="utf8")
    (book / "intro.md").write_text("# Intro\n\nThe book.\n", encoding="utf8")
    _write_book(book)
    run = subprocess.run([build_student.jupyter_book(), "build", str(book), "-W", "-n", "--keep-going"],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return book


def _build_student(book: Path) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "build_student.py"), "--book", str(book)],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


@needs_jupyter_book
def test_small_book_student_edition_hides_solutions_and_reuses_outputs(small_book):
    run = _build_student(small_book)
    default = _text(small_book / "_build" / "html" / "page.html")
    student = _text(small_book / "_build" / "student" / "_build" / "html" / "page.html")
    # The default build keeps every solution, text and code cell alike.
    assert all(s in default for s in ("SECRET ONE", "SECRET CODE", "SECRET TWO", "SECRET THREE"))
    assert "solution" in _classes(small_book / "_build" / "html" / "page.html")
    # The student edition drops them, and nothing around them.
    assert "SECRET" not in student
    assert "solution" not in _classes(small_book / "_build" / "student" / "_build" / "html" / "page.html")
    assert all(s in student for s in ("Do it.", "Again.", "Between the solutions.", "The end."))
    assert "student edition" in _text(small_book / "_build" / "student" / "_build" / "html" / "intro.html")
    # The outputs are those of the default build (the same random draw), glue included.
    printed = re.search(r"RANDOM (0\.\d+)", default).group(1)
    assert f"RANDOM {printed}" in student
    assert f"Value {float(printed):.6f}" in student
    assert "1 of 1 notebooks reuse the outputs" in run.stdout


@needs_jupyter_book
def test_small_book_changed_code_is_executed_again(small_book):
    default = _text(small_book / "_build" / "html" / "page.html")
    printed = re.search(r"RANDOM (0\.\d+)", default).group(1)
    _write_book(small_book, code=CODE + "\n# changed since the default build")
    try:
        run = _build_student(small_book)
    finally:
        _write_book(small_book)
    student = _text(small_book / "_build" / "student" / "_build" / "html" / "page.html")
    assert "0 of 1 notebooks reuse the outputs" in run.stdout
    assert "page is executed anew: its code changed since `make book`" in run.stdout
    assert re.search(r"RANDOM (0\.\d+)", student).group(1) != printed
    assert "SECRET" not in student


@needs_jupyter_book
def test_small_book_failed_execution_is_not_reused(small_book):
    """A notebook whose execution failed in the default build is executed again, not cached as it is."""
    executed = small_book / "_build" / "jupyter_execute" / "page.ipynb"
    kept = executed.read_text(encoding="utf8")
    nb = json.loads(kept)
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"].append({"output_type": "error", "ename": "ValueError", "evalue": "boom", "traceback": []})
    executed.write_text(json.dumps(nb), encoding="utf8")
    try:
        run = _build_student(small_book)
    finally:
        executed.write_text(kept, encoding="utf8")
    assert "page is executed anew: its execution failed in `make book`" in run.stdout
    student = _text(small_book / "_build" / "student" / "_build" / "html" / "page.html")
    assert "boom" not in student and "RANDOM" in student


def test_with_glue_restores_hidden_glue_outputs():
    nb = build_student.nbformat.v4.new_notebook(cells=[build_student.nbformat.v4.new_code_cell("x = 1")])
    glue = {
        "hidden": {"output_type": "display_data", "data": {"text/plain": "0.5"},
                   "metadata": {"scrapbook": {"name": "hidden", "mime_prefix": "application/papermill.record/"}}},
        "shown": {"output_type": "display_data", "data": {"text/plain": "2"},
                  "metadata": {"scrapbook": {"name": "shown"}}},
    }  # fmt: skip
    out = build_student.with_glue(nb, glue)
    assert nb.cells[0].outputs == []  # the input is not changed
    (restored,) = out.cells[0].outputs  # the displayed glue output never left the notebook
    assert restored["data"] == {"application/papermill.record/text/plain": "0.5"}


def test_student_config_hides_solutions_and_keeps_the_rest():
    config = build_student.student_config(ROOT, ROOT / "_build" / "student" / ".jupyter_cache")
    assert config["sphinx"]["config"]["hide_solutions"] is True
    assert config["execute"]["execute_notebooks"] == "cache"
    assert "sphinx-mathjax-offline" in config["sphinx"]["extra_extensions"]
    assert all(Path(p).is_absolute() and Path(p).is_dir() for p in config["sphinx"]["local_extensions"].values())
    assert "assignments/solutions" in config["exclude_patterns"]
    assert build_student.student_config(ROOT, None)["execute"]["execute_notebooks"] == "force"
    assert "assignments/solutions" not in " ".join(build_student.toc_notebooks(ROOT))


# --- the real builds ---------------------------------------------------------------------------------

SOLUTION = re.compile(r"```\{solution-start\}[^\n]*\n(?::[^\n]*\n)*```\n(.*?)```\{solution-end\}", re.S)


def _solution_phrases() -> list[tuple[str, str]]:
    """(notebook, the longest run of plain words) for every solution in the book's notebooks."""
    phrases = []
    notebooks = sorted(ROOT.glob("chapters/*.ipynb")) + sorted(ROOT.glob("assignments/*.ipynb"))
    for path in notebooks + sorted(ROOT.glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf8"))["cells"]
        text = "\n".join("".join(c["source"]) if c["cell_type"] == "markdown" else "\n" for c in cells)
        for body in SOLUTION.findall(text):
            body = re.sub(r"```.*?```", "|", body, flags=re.S)
            body = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`|\{[^}]*\}|\[[^\]]*\]\([^)]*\)", "|", body)
            runs = [" ".join(r.split()).strip(" ,;-") for r in re.split(r"[^A-Za-z ,;'\n-]+", body)]
            phrases.append((path.stem, max(runs, key=len)))
    return phrases


def test_every_solution_has_a_phrase_to_look_for():
    phrases = _solution_phrases()
    count = sum(p.read_text(encoding="utf8").count("{solution-start}") for p in ROOT.glob("chapters/*.ipynb"))
    assert count > 0 and len(phrases) >= count
    assert all(len(phrase.split()) >= 4 for _, phrase in phrases), phrases


@pytest.mark.skipif(not (DEFAULT / "intro.html").exists(), reason="the book is not built: run `make book` first")
def test_default_edition_shows_every_solution():
    """The check below can fail: the phrases it looks for are on the pages of the default build."""
    text = " ".join(_text(p) for p in _pages(DEFAULT).values())
    missing = [f"{nb}: {phrase!r}" for nb, phrase in _solution_phrases() if phrase not in text]
    assert not missing, "solutions not found in the default build:\n" + "\n".join(missing)
    assert any("solution" in _classes(p) for p in _pages(DEFAULT).values())


@pytest.mark.skipif(
    not (STUDENT / "intro.html").exists(), reason="the student edition is not built: run `make book-student` first"
)
def test_student_edition_shows_no_solution():
    problems = []
    phrases = _solution_phrases()
    pages = _pages(STUDENT)
    for rel, path in sorted(pages.items()):
        text = _text(path)
        if "solution" in _classes(path):
            problems.append(f"{rel}: an element of class 'solution'")
        if "Solution to Exercise" in text:
            problems.append(f"{rel}: a 'Solution to Exercise' title")
        problems += [f"{rel}: text of a solution in {nb}: {phrase!r}" for nb, phrase in phrases if phrase in text]
    assert not problems, "\n".join(problems)
    if (DEFAULT / "intro.html").exists():
        default = _pages(DEFAULT)
        assert set(pages) == set(default), "the two editions have different pages"
        exercises = {rel: _classes(p).count("exercise") for rel, p in default.items()}
        assert exercises == {rel: _classes(p).count("exercise") for rel, p in pages.items()}
        assert sum(exercises.values()) > 0


@pytest.mark.parametrize("site", [DEFAULT, STUDENT], ids=["default", "student"])
def test_no_page_links_to_or_includes_reference_solutions(site):
    if not (site / "intro.html").exists():
        pytest.skip(f"{site.relative_to(ROOT)} is not built (`make book` / `make book-student`)")
    included = [p for p in site.rglob("*") if "assignments/solutions" in p.relative_to(site).as_posix()]
    assert not included
    linked = [
        f"{rel}: {url}"
        for rel, path in _pages(site).items()
        for url in re.findall(r'(?:href|src)="([^"]*)"', path.read_text(encoding="utf8"))
        if "assignments/solutions" in url
    ]
    assert not linked, "\n".join(linked)
