"""The book's local Sphinx extension (_ext/dedupe_scripts.py)."""

import importlib.util
from pathlib import Path

from sphinx.builders.html._assets import _JavaScript

SPEC = importlib.util.spec_from_file_location(
    "dedupe_scripts", Path(__file__).parents[1] / "_ext" / "dedupe_scripts.py"
)
dedupe_scripts = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(dedupe_scripts)


def test_repeated_inline_scripts_are_dropped_and_order_kept():
    thebe = 'const THEBE_JS_URL = "x"'
    scripts = [
        _JavaScript("_static/doctools.js", priority=200),
        _JavaScript(None, body=thebe),
        _JavaScript("_static/sphinx-thebe.js", **{"async": "async"}),
        _JavaScript("", body=thebe),  # the copy that redeclares the const
        _JavaScript(None, body="DOCUMENTATION_OPTIONS.pagename = 'intro';"),
    ]
    context = {"script_files": list(scripts)}
    dedupe_scripts._dedupe(None, "intro", "page.html", context, None)
    assert context["script_files"] == [scripts[0], scripts[1], scripts[2], scripts[4]]


def test_distinct_scripts_are_kept():
    scripts = [_JavaScript(None, body="let a = 1;"), _JavaScript(None, body="let b = 1;"), _JavaScript("a.js")]
    context = {"script_files": list(scripts)}
    dedupe_scripts._dedupe(None, "p", "page.html", context, None)
    assert context["script_files"] == scripts
