"""A tiny Sphinx extension for the book: drop repeated <script> entries from every page.

In a Jupyter Book 1 build, sphinx-thebe 0.3.1's inline configuration (``const THEBE_JS_URL = ...``)
and sphinx-togglebutton's selector reach every page twice, once with the file name ``None`` and
once with ``""``. The second ``const`` is a redeclaration, so the browser logs a SyntaxError on
every page. Keeping the first
copy of each identical script removes the error without touching the theme.
"""

from __future__ import annotations

from typing import Any


def _dedupe(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        # The copies differ only in an empty file name ("" against None), so compare what the
        # browser sees: the source file and the attributes, which hold an inline script's body.
        attributes = getattr(js, "attributes", {}) or {}
        key = (getattr(js, "filename", js) or "", tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    if len(unique) != len(scripts):
        context["script_files"] = unique


def setup(app: Any) -> dict[str, Any]:
    # A late priority, so the list is complete when it runs.
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
