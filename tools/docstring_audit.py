"""Docstring audit of the package's public functions (issue 18), read from the source with ``ast``.

For every public function and method of ``varhyper_mini`` it reports

- whether it has a docstring;
- its direct raise sites: the ``raise`` statements in its own body (not in nested functions or
  classes), with the exception class each raises; a re-raise inside an ``except`` block of the
  exception it caught (bare ``raise``, or ``raise err`` for ``except ... as err``) is not a raise site;
- whether the docstring has a ``Raises:`` section that names each raised class.

Public: a function or method whose name has no leading underscore, in a class whose name has none,
in a module whose dotted name has no part with a leading underscore; or a function of a private
module that a public package re-exports (imports in its ``__init__``).
``__init__`` and ``__post_init__`` count for their class: their raise sites may be documented in
their own docstring or in the class docstring. A ``raise`` that the function's own ``try`` catches
(``raise TypeError`` under ``except (TypeError, ValueError)``) is not a raise site.

Usage: python tools/docstring_audit.py [--all] [PACKAGE_DIR]   (--all lists documented functions too;
the exit status is 1 when a raise site is undocumented or a public function has no docstring).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "varhyper_mini"

#: Section titles that end a ``Raises:`` section (Google style, as the package writes them).
_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Returns?|Yields|Raises|Examples?|Notes?|Warns|See Also):\s*$")


#: Methods that run when the class is called: their raise sites may be documented in the class docstring.
_CONSTRUCTORS = ("__init__", "__post_init__")


@dataclass
class Raise:
    """One direct raise site: the class it raises (``None`` when the source does not say) and its line."""

    exc: str | None
    line: int


@dataclass
class Function:
    """One public function or method and what its docstring says about its raise sites."""

    module: str
    qualname: str
    line: int
    docstring: str | None
    raises: list[Raise] = field(default_factory=list)
    #: the class docstring, for ``__init__`` (its raises may be documented there)
    class_doc: str | None = None

    @property
    def name(self) -> str:
        return f"{self.module}.{self.qualname}"

    def documented(self, exc: str) -> bool:
        """Whether a ``Raises:`` section of the docstring (or of the class, for ``__init__``) names ``exc``."""
        return any(names_in_raises(doc, exc) for doc in (self.docstring, self.class_doc) if doc)

    @property
    def has_docstring(self) -> bool:
        """Whether it has a docstring (an ``__init__`` may rely on its class's)."""
        return self.docstring is not None or self.class_doc is not None

    @property
    def undocumented(self) -> list[Raise]:
        """The raise sites whose class the docstring's ``Raises:`` section does not name."""
        return [r for r in self.raises if r.exc is not None and not self.documented(r.exc)]

    @property
    def unresolved(self) -> list[Raise]:
        """The raise sites whose class cannot be read from the source (``raise make_error()``)."""
        return [r for r in self.raises if r.exc is None]


def raises_section(doc: str) -> str | None:
    """The text of the ``Raises:`` section of a docstring (up to the next section or the end), or None."""
    lines = doc.expandtabs().splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "Raises:":
            indent = len(line) - len(line.lstrip())
            body = []
            for nxt in lines[i + 1 :]:
                if not nxt.strip():
                    body.append(nxt)
                    continue
                if len(nxt) - len(nxt.lstrip()) <= indent or _SECTION.match(nxt):
                    break
                body.append(nxt)
            return "\n".join(body)
    return None


def names_in_raises(doc: str, exc: str) -> bool:
    """Whether the ``Raises:`` section of ``doc`` names the exception class ``exc`` as a word."""
    section = raises_section(doc)
    return section is not None and re.search(rf"(?<![\w.]){re.escape(exc)}\b", section) is not None


def _exc_name(node: ast.expr | None, factories: dict[str, str]) -> str | None:
    """The class a ``raise`` statement raises: ``X`` for ``raise X``, ``raise X(...)``, ``raise m.X(...)``.

    A class name starts with a capital letter. ``raise make_error(...)`` raises the class that
    ``factories`` gives for ``make_error`` (its return annotation); otherwise the class is unknown (None).
    """
    called = isinstance(node, ast.Call)
    if called:
        node = node.func
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
    if name is None:
        return None
    if name[:1].isupper():
        return name
    return factories.get(name) if called else None


def factories_of(tree: ast.Module) -> dict[str, str]:
    """Module-level functions annotated to return an exception class: ``def make_error(...) -> ValueError``."""
    out = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            ret = node.returns
            name = ret.id if isinstance(ret, ast.Name) else ret.value if isinstance(ret, ast.Constant) else None
            if isinstance(name, str) and re.fullmatch(r"[A-Z]\w*(Error|Exception|Failed|Skipped|Warning)", name):
                out[node.name] = name
    return out


class _Raises(ast.NodeVisitor):
    """Collects the direct raise sites of one function body, tracking the enclosing ``except ... as`` names."""

    def __init__(self, factories: dict[str, str]):
        self.factories = factories
        self.found: list[Raise] = []
        self._caught: list[str | None] = []  # names bound by the enclosing except handlers
        self._guarded: list[set[str] | None] = []  # classes the enclosing try statements catch (None: all)

    def visit_FunctionDef(self, node):  # nested functions raise when they are called, not here
        return

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef
    visit_ClassDef = visit_FunctionDef

    def visit_Try(self, node: ast.Try):
        caught: set[str] | None = set()
        for handler in node.handlers:
            types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            names = {_exc_name(t, {}) for t in types} if handler.type is not None else {None}
            if names & {None, "Exception", "BaseException"}:
                caught = None  # a bare except, or one for every exception
                break
            caught |= names
        self._guarded.append(caught)
        for stmt in node.body:
            self.visit(stmt)
        self._guarded.pop()
        for part in (node.handlers, node.orelse, node.finalbody):
            for stmt in part:
                self.visit(stmt)

    visit_TryStar = visit_Try

    def visit_ExceptHandler(self, node: ast.ExceptHandler):
        self._caught.append(node.name)
        for stmt in node.body:
            self.visit(stmt)
        self._caught.pop()

    def visit_Raise(self, node: ast.Raise):
        if node.exc is None and self._caught:
            return  # bare re-raise of the exception being handled
        if isinstance(node.exc, ast.Name) and node.exc.id in self._caught:
            return  # ``raise err`` of ``except ... as err``
        exc = _exc_name(node.exc, self.factories)
        if any(g is None or exc in g for g in self._guarded):
            return  # caught by the function's own try statement: it does not escape
        self.found.append(Raise(exc, node.lineno))


def direct_raises(func: ast.FunctionDef | ast.AsyncFunctionDef, factories: dict[str, str] | None = None) -> list[Raise]:
    """The direct raise sites of a function: its own ``raise`` statements, re-raises excluded.

    Also excluded: a ``raise`` inside a ``try`` body whose handlers catch its class by name (or catch
    everything), since that exception does not leave the function as raised.

    ``factories``: functions that build the exception to raise, with the class each returns.
    """
    visitor = _Raises(factories or {})
    for stmt in func.body:
        visitor.visit(stmt)
    return visitor.found


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def audit_source(
    source: str,
    module: str,
    public: bool = True,
    exported: frozenset[str] = frozenset(),
    factories: dict[str, str] | None = None,
) -> list[Function]:
    """The public functions and methods of one module's source.

    ``public``: whether the module itself is public; in a private module only the functions named in
    ``exported`` (re-exported by a public module) count. ``factories``: exception-building functions
    of other modules (see ``factories_of``); the module's own are added.
    """
    tree = ast.parse(source)
    factories = {**(factories or {}), **factories_of(tree)}
    out: list[Function] = []
    funcs = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in tree.body:
        if isinstance(node, funcs):
            if (public and not node.name.startswith("_")) or node.name in exported:
                doc = ast.get_docstring(node)
                out.append(Function(module, node.name, node.lineno, doc, direct_raises(node, factories)))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_") and (public or node.name in exported):
            class_doc = ast.get_docstring(node)
            for item in node.body:
                if not isinstance(item, funcs):
                    continue
                if item.name in _CONSTRUCTORS or not item.name.startswith("_"):
                    out.append(
                        Function(
                            module,
                            f"{node.name}.{item.name}",
                            item.lineno,
                            ast.get_docstring(item),
                            direct_raises(item, factories),
                            class_doc if item.name in _CONSTRUCTORS else None,
                        )
                    )
    # a constructor without raise sites needs no docstring of its own (the class has one)
    return [f for f in out if not (f.qualname.rsplit(".", 1)[-1] in _CONSTRUCTORS and not f.raises)]


def _module_name(path: Path, package: Path) -> str:
    parts = [package.name, *path.relative_to(package).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _reexported(package: Path) -> dict[str, set[str]]:
    """For each module, the names that a public package ``__init__`` imports from it."""
    out: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        module = _module_name(path, package)
        if any(_is_private(p) for p in module.split(".")):
            continue
        tree = ast.parse(path.read_text())
        here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and path.name == "__init__.py":
                if node.level == 0:
                    base = node.module or ""
                else:
                    base = ".".join(here[: len(here) - (node.level - 1)] + ([node.module] if node.module else []))
                out.setdefault(base, set()).update(a.name for a in node.names)
    return out


def audit_package(package: Path = PACKAGE) -> list[Function]:
    """Every public function and method of the package, with its docstring and raise sites."""
    exported = _reexported(package)
    paths = sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    factories: dict[str, str] = {}
    for path in paths:  # by name across the package: the factories are imported by name
        factories.update(factories_of(ast.parse(path.read_text())))
    out: list[Function] = []
    for path in paths:
        module = _module_name(path, package)
        public = not any(p.startswith("_") and p != "__init__" for p in module.split("."))
        names = frozenset(exported.get(module, ()))
        out.extend(audit_source(path.read_text(), module, public, names, factories))
    return out


def summary(functions: list[Function]) -> dict[str, int]:
    """Counts: functions, without docstrings, raise sites, raise sites documented, undocumented, unresolved."""
    sites = [r for f in functions for r in f.raises]
    undocumented = sum(len(f.undocumented) for f in functions)
    unresolved = sum(len(f.unresolved) for f in functions)
    return {
        "public functions": len(functions),
        "without docstring": sum(not f.has_docstring for f in functions),
        "raising functions": sum(bool(f.raises) for f in functions),
        "raise sites": len(sites),
        "raise sites documented": len(sites) - undocumented - unresolved,
        "raise sites undocumented": undocumented,
        "raise sites of unknown class": unresolved,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", type=Path, default=PACKAGE)
    parser.add_argument("--all", action="store_true", help="list every public function, not only the offenders")
    args = parser.parse_args(argv)
    functions = audit_package(args.package)
    bad = False
    for f in functions:
        problems = []
        if not f.has_docstring:
            problems.append("no docstring")
        missing = sorted({r.exc for r in f.undocumented})
        if missing:
            lines = ", ".join(str(r.line) for r in f.undocumented)
            problems.append(f"Raises section lacks {', '.join(missing)} (lines {lines})")
        if f.unresolved:
            problems.append(f"raise of unknown class at lines {', '.join(str(r.line) for r in f.unresolved)}")
        bad |= bool(problems)
        if problems or args.all:
            classes = sorted({r.exc or "?" for r in f.raises})
            detail = "; ".join(problems) or ("raises " + ", ".join(classes) if classes else "ok")
            print(f"{f.name} (line {f.line}): {detail}")
    for key, value in summary(functions).items():
        print(f"{key}: {value}")
    return int(bad)


if __name__ == "__main__":
    sys.exit(main())
