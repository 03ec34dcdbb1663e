"""Build the student edition of the book: the same book with every exercise solution left out.

Usage: python tools/build_student.py [--execute] [--book DIR]     (`make book-student`)

The student edition is built from _config.yml with sphinx-exercise's `hide_solutions` set (which
_ext/hide_gated_solutions.py makes work for the book's gated solutions) into
_build/student/_build/html, beside the default build in _build/html, which keeps the solutions.
`assignments/solutions/` is outside both: _config.yml excludes it.

It does not execute the chapters again after `make book`. The notebooks that build executed
(_build/jupyter_execute) seed a jupyter-cache, and the student build runs in myst-nb's cache mode:
a notebook whose code is unchanged since `make book` takes its outputs from there (its prose comes
from the current source), and a notebook whose code changed, or that `make book` did not execute,
is executed as usual. `--execute` executes every notebook instead.
"""

from __future__ import annotations

import argparse
import copy
import json
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]


def student_config(book: Path, cache: Path | None) -> dict:
    """The book's _config.yml with solutions hidden and, given a cache folder, cache-mode execution."""
    config = yaml.safe_load((book / "_config.yml").read_text(encoding="utf8"))
    config["title"] = f"{config.get('title') or ''} (student edition)".strip()
    sphinx = config.setdefault("sphinx", {})
    sphinx.setdefault("config", {})["hide_solutions"] = True
    # Jupyter Book resolves local extension folders against the configuration file's folder.
    sphinx["local_extensions"] = {
        name: str((book / folder).resolve()) for name, folder in (sphinx.get("local_extensions") or {}).items()
    }
    if cache is not None:
        config.setdefault("execute", {}).update(execute_notebooks="cache", cache=str(cache))
    return config


def toc_notebooks(book: Path) -> list[str]:
    """The docnames in _toc.yml that are notebooks."""
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("file", "root") and isinstance(value, str):
                    found.append(value.removesuffix(".ipynb"))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load((book / "_toc.yml").read_text(encoding="utf8")))
    return [doc for doc in found if (book / f"{doc}.ipynb").exists()]


def executions(doctrees: Path) -> dict[str, dict]:
    """What myst-nb recorded of each notebook's execution in the last default build: its runtime
    (for the execution-statistics page) and whether it succeeded."""
    try:
        with (doctrees / "environment.pickle").open("rb") as f:
            env = pickle.load(f)
        metadata = getattr(env, "nb_metadata", {})
        return {doc: data["exec_data"] for doc, data in metadata.items() if data.get("exec_data")}
    except Exception:  # an environment from another Sphinx or myst-nb: the page shows no times then
        return {}


def with_glue(executed: nbformat.NotebookNode, glue: dict) -> nbformat.NotebookNode:
    """Put back the glue outputs that myst-nb took out of an executed notebook (it keeps them aside).

    myst-nb removes each `glue(..., display=False)` output from the notebook it writes and keeps the
    data, with the MIME prefix stripped, in <doc>.glue.json. Where in the notebook the output sat
    does not matter to the glue roles, so they go back on the last code cell, prefix restored.
    """
    nb = copy.deepcopy(executed)
    outputs = []
    for output in glue.values():
        prefix = output.get("metadata", {}).get("scrapbook", {}).get("mime_prefix", "")
        if prefix:  # outputs glued with display=True never left the notebook
            restored = copy.deepcopy(output)
            restored["data"] = {prefix + mime: value for mime, value in output["data"].items()}
            outputs.append(nbformat.from_dict(restored))
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    if outputs and code:
        code[-1].outputs.extend(outputs)
    return nb


def seed_cache(book: Path, executed: Path, cache_dir: Path, docs: list[str], runs: dict[str, dict]) -> dict[str, str]:
    """Cache each notebook that the default build executed without error and whose code still matches
    its source. Returns, for each of ``docs``, "reused" or why the student build executes it."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(cache_dir))
    status = {}
    for doc in docs:
        path = executed / f"{doc}.ipynb"
        if not path.exists():
            status[doc] = "not executed by `make book`"
            continue
        source = nbformat.read(book / f"{doc}.ipynb", as_version=4)
        nb = nbformat.read(path, as_version=4)
        if cache.create_hashed_notebook(source)[1] != cache.create_hashed_notebook(nb)[1]:
            status[doc] = "its code changed since `make book`"
            continue
        errors = any(out.get("output_type") == "error" for cell in nb.cells for out in cell.get("outputs", []))
        if errors or runs.get(doc, {}).get("succeeded") is False:
            status[doc] = "its execution failed in `make book`"
            continue
        glue = executed / f"{doc}.glue.json"
        if glue.exists():
            nb = with_glue(nb, json.loads(glue.read_text(encoding="utf8")))
        runtime = runs.get(doc, {}).get("runtime")
        data = {"execution_seconds": runtime} if runtime is not None else {}
        try:
            cache.cache_notebook_bundle(CacheBundleIn(nb, str(book / f"{doc}.ipynb"), data=data), overwrite=True)
        except Exception as error:  # e.g. not executed in one run (execution counts with gaps)
            status[doc] = f"not cached: {error}"
            continue
        status[doc] = "reused"
    return status


def jupyter_book() -> str:
    beside = Path(sys.executable).with_name("jupyter-book")
    return str(beside) if beside.exists() else (shutil.which("jupyter-book") or "jupyter-book")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--execute", action="store_true", help="execute every notebook instead of reusing those of `make book`"
    )
    parser.add_argument("--book", type=Path, default=ROOT, help="the book's folder (default: this repository)")
    args = parser.parse_args(argv)
    book = args.book.resolve()
    out = book / "_build" / "student"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cache = None if args.execute else out / ".jupyter_cache"
    docs = toc_notebooks(book)
    if cache is not None:
        default = book / "_build"
        status = seed_cache(book, default / "jupyter_execute", cache, docs, executions(default / ".doctrees"))
        reused = sum(why == "reused" for why in status.values())
        print(f"student edition: {reused} of {len(docs)} notebooks reuse the outputs of `make book`")
        for doc, why in status.items():
            if why != "reused":
                print(f"  {doc} is executed anew: {why}")
    config = out / "_config.yml"
    config.write_text(yaml.safe_dump(student_config(book, cache), sort_keys=False), encoding="utf8")
    start = time.perf_counter()
    cmd = [jupyter_book(), "build", str(book), "--config", str(config), "--path-output", str(out)]
    result = subprocess.run([*cmd, "-W", "-n", "--keep-going"], cwd=book)
    print(f"student edition: {out / '_build' / 'html'} ({time.perf_counter() - start:.0f} s)")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
