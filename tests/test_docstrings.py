"""Public docstrings document what they raise (issue 18), checked with ``tools/docstring_audit.py``.

Every public function or method of the package that raises directly (a ``raise`` statement in its
own body, not a re-raise of the exception it caught) names each raised class in a ``Raises:``
section of its docstring, and every public function has a docstring. The audit itself is tested
first, on small synthetic sources, so that a broken audit cannot pass the package silently.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_audit():
    spec = importlib.util.spec_from_file_location("docstring_audit", ROOT / "tools" / "docstring_audit.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


audit = _load_audit()


def _functions(source: str, **kwargs) -> dict:
    return {f.qualname: f for f in audit.audit_source(textwrap.dedent(source), "m", **kwargs)}


SYNTHETIC = '''
def documented(x):
    """Doc.

    Raises:
        ValueError: ``x`` is negative.
    """
    if x < 0:
        raise ValueError(x)


def prose_only(x):
    """Raises ``ValueError`` for a negative ``x`` (prose is not a section)."""
    if x < 0:
        raise ValueError(x)


def wrong_class(x):
    """Doc.

    Raises:
        TypeError: never.
    """
    raise ValueError(x)


def named_after_the_section(x):
    """Doc.

    Raises:
        TypeError: ``x`` is not a number.

    Returns:
        Never; the ValueError below is not in the Raises section.
    """
    raise ValueError(x)


def reraises(x):
    """Only re-raises: no raise site."""
    try:
        return int(x)
    except ValueError:
        raise
    except TypeError as err:
        raise err


def wraps(x):
    """Doc."""
    try:
        return int(x)
    except TypeError as err:
        raise KeyError(x) from err


def guarded(x):
    """The TypeError is caught here and becomes the ValueError, which is documented.

    Raises:
        ValueError: ``x`` is a string.
    """
    try:
        if isinstance(x, str):
            raise TypeError
        return int(x)
    except (TypeError, ValueError):
        raise ValueError(x) from None


def nested(x):
    """The nested function's raise is not this function's."""
    def inner():
        raise ValueError(x)
    return inner


def qualified(x):
    """Doc."""
    raise torch.cuda.OutOfMemoryError(x)


def _make_error(x) -> LookupError:
    return LookupError(x)


def by_factory(x):
    """Doc."""
    raise _make_error(x)


def _private(x):
    raise ValueError(x)


def no_doc(x):
    return x


class Thing:
    """A thing.

    Raises:
        ValueError: ``x`` is negative.
    """

    def __init__(self, x):
        if x < 0:
            raise ValueError(x)

    def method(self):
        raise RuntimeError("undocumented")

    def _hidden(self):
        raise RuntimeError("private")


@dataclass
class Record:
    """A record (undocumented raise in __post_init__)."""

    x: int

    def __post_init__(self):
        if self.x < 0:
            raise ValueError(self.x)


class _Hidden:
    def method(self):
        raise RuntimeError("private class")
'''


def test_audit_finds_raise_sites_and_their_documentation():
    fs = _functions(SYNTHETIC)
    assert "_private" not in fs and "_make_error" not in fs and "Thing._hidden" not in fs
    assert not any(name.startswith("_Hidden") for name in fs)
    assert [r.exc for r in fs["documented"].raises] == ["ValueError"]
    assert fs["documented"].undocumented == []
    # prose, a wrong class, a class named outside the section: undocumented
    for name in ("prose_only", "wrong_class", "named_after_the_section"):
        assert [r.exc for r in fs[name].undocumented] == ["ValueError"], name
    assert fs["reraises"].raises == []
    assert [r.exc for r in fs["wraps"].undocumented] == ["KeyError"]  # a new exception, raised from the old
    assert fs["nested"].raises == []
    assert [r.exc for r in fs["guarded"].raises] == ["ValueError"] and fs["guarded"].undocumented == []
    assert [r.exc for r in fs["qualified"].raises] == ["OutOfMemoryError"]
    assert [r.exc for r in fs["by_factory"].undocumented] == ["LookupError"]
    assert fs["no_doc"].docstring is None and not fs["no_doc"].has_docstring
    # __init__ may be documented by its class
    assert fs["Thing.__init__"].has_docstring and fs["Thing.__init__"].undocumented == []
    assert [r.exc for r in fs["Thing.method"].undocumented] == ["RuntimeError"]
    assert [r.exc for r in fs["Record.__post_init__"].undocumented] == ["ValueError"]


def test_audit_private_module_counts_only_reexported_names():
    fs = _functions(SYNTHETIC, public=False, exported=frozenset({"documented", "_private"}))
    assert set(fs) == {"documented", "_private"}


def test_audit_summary_counts():
    counts = audit.summary(list(_functions(SYNTHETIC).values()))
    # sites: documented 1, prose_only 1, wrong_class 1, named_after 1, wraps 1, qualified 1, by_factory 1,
    # guarded 1, Thing.__init__ 1, Thing.method 1, Record.__post_init__ 1
    assert counts["raise sites"] == 11
    assert counts["raise sites documented"] == 3
    assert counts["raise sites undocumented"] == 8
    assert counts["without docstring"] == 2  # no_doc, Thing.method


def test_audit_main_fails_on_a_bad_package(tmp_path, capsys):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(textwrap.dedent(SYNTHETIC))
    assert audit.main([str(pkg)]) == 1
    assert "pkg.mod.prose_only" in capsys.readouterr().out
    (pkg / "mod.py").write_text(textwrap.dedent(SYNTHETIC.split("\n\ndef prose_only")[0]))
    assert audit.main([str(pkg)]) == 0


@pytest.fixture(scope="module")
def package_functions():
    return audit.audit_package()


def test_every_direct_raise_is_documented(package_functions):
    missing = [
        f"{f.name} (line {f.line}): {', '.join(sorted({r.exc for r in f.undocumented}))}"
        for f in package_functions
        if f.undocumented
    ]
    assert missing == [], "add these classes to the Raises: section of the docstring:\n" + "\n".join(missing)


def test_every_raise_names_its_class(package_functions):
    unknown = [f"{f.name} (line {r.line})" for f in package_functions for r in f.unresolved]
    assert unknown == [], "raise an exception class (or a factory annotated with its class):\n" + "\n".join(unknown)


def test_every_public_function_has_a_docstring(package_functions):
    bare = [f"{f.name} (line {f.line})" for f in package_functions if not f.has_docstring]
    assert bare == [], "public functions without a docstring:\n" + "\n".join(bare)
