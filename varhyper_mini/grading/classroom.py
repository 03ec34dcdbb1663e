"""Grading solution files, one or a class: what a file defines, the grading command, the class table.

``grade_module(module)`` grades everything a solution module defines, following the conventions
of a solution file (see the package docstring). ``grade_cli(paths)`` is ``python -m varhyper_mini
grade``: given one file it prints its reports; given several files or a folder it grades a class,
one row per submission and a column per check, with a summary and optionally a CSV.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..data import DataNotFoundError
from ..hypernets import Hypernet
from .hypernet import TARGETS, check_hypernet, check_mlp_hypernet
from .loader import DEFINITIONS, SolutionImportError, load_module
from .prior import check_laplace_prior
from .pruning import check_neuron_pruning
from .report import CheckResult, GradeReport

__all__ = ["NOTHING", "grade_cli", "grade_module"]


def _hypernet_subjects(module: ModuleType) -> list[Callable]:
    """What a file offers for assignment 1: ``MLPHypernet`` and ``make_hypernet`` when defined,
    else every public ``Hypernet`` subclass defined in the file."""
    factory, mlp = getattr(module, "make_hypernet", None), getattr(module, "MLPHypernet", None)
    own = [
        obj
        for n, obj in vars(module).items()
        if isinstance(obj, type)
        and issubclass(obj, Hypernet)
        and obj.__module__ == module.__name__
        and not n.startswith("_")
    ]
    named = [obj for obj in (mlp, factory) if callable(obj)]
    return named or own


def _missing(subject: str, asked: str, have: list[str]) -> GradeReport:
    """A report with one failed check: the file lacks functions that the assignment asks for."""
    report = GradeReport(subject, f"the assignment asks for {asked}")
    found = ", ".join(have) if have else "none of them"
    report.results.append(CheckResult("defines what is asked", False, f"the file must define {asked}; found {found}"))
    return report


def grade_module(module: ModuleType, target: str = "mnist") -> list[tuple[str, GradeReport]]:
    """Grade everything a solution module defines; a list of (label, report).

    Labels: "A1" for ``MLPHypernet`` (graded with the form assignment 1 specifies), the name of
    any other hypernetwork form or factory (the ``Hypernet`` contract), "A2" for ``log_prior`` and
    ``kl_penalty`` (the Laplace prior), "A3" for ``neuron_scores``, ``prune_neurons`` and
    ``count_macs``. An assignment whose functions are only partly defined gets a failed report.

    Raises:
        ValueError: ``target`` is unknown (only when the module defines a hypernetwork form).
        DataNotFoundError: the MNIST files are missing (target "mnist", a hypernetwork form).
    """
    out = []
    for subject in _hypernet_subjects(module):
        if getattr(subject, "__name__", None) == "MLPHypernet":
            out.append(("A1", check_mlp_hypernet(subject, target=target, verbose=False)))
        else:
            out.append((getattr(subject, "__name__", "form"), check_hypernet(subject, target=target, verbose=False)))
    fns = {
        n: getattr(module, n, None) for n in ("log_prior", "kl_penalty", "neuron_scores", "prune_neurons", "count_macs")
    }
    fns = {n: f if callable(f) else None for n, f in fns.items()}
    have = [n for n, f in fns.items() if f is not None]
    a2 = ("log_prior", "kl_penalty")
    if any(n in have for n in a2):
        if all(n in have for n in a2):
            out.append(("A2", check_laplace_prior(fns["kl_penalty"], fns["log_prior"], verbose=False)))
        else:
            out.append(("A2", _missing("assignment 2", "log_prior and kl_penalty", [n for n in a2 if n in have])))
    a3 = ("neuron_scores", "prune_neurons", "count_macs")
    if any(n in have for n in a3):
        if fns["prune_neurons"] is not None:
            out.append(
                (
                    "A3",
                    check_neuron_pruning(fns["prune_neurons"], fns["count_macs"], fns["neuron_scores"], verbose=False),
                )
            )
        else:
            asked = "neuron_scores, prune_neurons and count_macs"
            out.append(("A3", _missing("assignment 3", asked, [n for n in a3 if n in have])))
    return out


#: What the grading command says of a file that defines nothing it can grade.
NOTHING = (
    "defines nothing to grade: expected MLPHypernet, a Hypernet subclass or make_hypernet (assignment 1), "
    "log_prior and kl_penalty (assignment 2), or neuron_scores, prune_neurons and count_macs (assignment 3)"
)


def _submissions(paths: list[Path]) -> list[Path]:
    """The files to grade: each file given, and the ``.py`` files directly inside each folder given."""
    files = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(f for f in p.glob("*.py") if not f.name.startswith("_")))
        else:
            files.append(p)
    return files


def grade_cli(paths: Path | str | list[Path | str], target: str = "mnist", csv_path: Path | str | None = None) -> int:
    """Grade one solution file, or a class (several files, or folders of ``.py`` files); print the result.

    One file: its report(s); returns 0 when every check passed, 1 when some failed or were not
    graded, 2 when the file could not be graded (missing, failing to import, defining nothing
    gradable, unknown target, no data).

    A class (a folder, or more than one file): one row per submission and a column per check,
    a class summary, and with ``csv_path`` the same table as CSV. A submission that fails to
    import gets its error on its own row. Returns 0 when every submission passed, 1 when any
    failed or could not be graded, 2 when there is nothing to grade, the target is unknown or
    the data are missing. Errors go to stderr as one line; nothing is raised for a submission's
    faults (any exception its import or its functions raise is reported).
    """
    if target not in TARGETS:
        print(f"error: unknown target {target!r}; choose one of {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    paths = [Path(p) for p in (paths if isinstance(paths, (list, tuple)) else [paths])]
    if len(paths) == 1 and not paths[0].is_dir():
        return _grade_one(paths[0], target)
    files = _submissions(paths)
    if not files:
        print(f"error: no .py files to grade in {', '.join(str(p) for p in paths)}", file=sys.stderr)
        return 2
    rows = []
    for f in files:
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # what a submission prints stays out of the table
                module = load_module(f)
                graded = grade_module(module, target)
            rows.append(_Row(f, graded, None if graded else NOTHING))
        except SolutionImportError as err:
            rows.append(_Row(f, [], str(err)))
        except DataNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    print(_class_table(rows))
    if csv_path is not None:
        _write_csv(rows, Path(csv_path))
        print(f"wrote {csv_path}")
    return 0 if all(r.passed for r in rows) else 1


def _grade_one(path: Path, target: str) -> int:
    """Grade one file and print its reports; the exit status of ``grade_cli``."""
    try:
        module = load_module(path)
    except SolutionImportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        graded = grade_module(module, target)
    except (DataNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not graded:
        print(f"error: {path} {NOTHING}", file=sys.stderr)
        return 2
    if module.__definitions_only__:
        print(f"{path} is a notebook export: the grader ran only its {DEFINITIONS}.\n")
    print("\n\n".join(str(r) for _, r in graded))
    return 0 if all(r.passed for _, r in graded) else 1


@dataclass
class _Row:
    """One submission of a class: its (label, report) pairs, or why it could not be graded."""

    path: Path
    graded: list[tuple[str, GradeReport]]
    error: str | None

    @property
    def passed(self) -> bool:
        """True when the submission was graded and every check ran and passed."""
        return self.error is None and all(r.passed for _, r in self.graded)

    @property
    def verdict(self) -> str:
        """ "passed", "not graded", or how many checks failed, were not run or skipped."""
        if self.error is not None:
            return "not graded"
        if self.passed:
            return "passed"
        counts = (
            (sum(len(r.failed) for _, r in self.graded), "failed"),
            (sum(len(r.blocked) for _, r in self.graded), "not run"),
            (sum(len(r.skipped) for _, r in self.graded), "skipped"),
        )
        return ", ".join(f"{n} {what}" for n, what in counts if n)

    def cells(self) -> dict[str, CheckResult]:
        """The results by column name, "label check" (e.g. "A2 elementwise")."""
        return {f"{label} {res.name}": res for label, r in self.graded for res in r}

    def first_problem(self) -> str:
        """Why it could not be graded, or its first check that did not pass; "" when it passed."""
        if self.error is not None:
            return self.error
        for label, r in self.graded:
            for res in r:
                if not res.passed or res.skipped:
                    return f"{label} {res.name}: {res.message}"
        return ""


_SYMBOL = {"PASS": "P", "FAIL": "F", "NOT RUN": "-", "SKIP": "S"}


def _columns(rows: list[_Row]) -> list[str]:
    """The class table's check columns, in the order they first appear."""
    cols: list[str] = []
    for row in rows:
        cols.extend(c for c in row.cells() if c not in cols)
    return cols


def _class_table(rows: list[_Row]) -> str:
    """The class as a terminal table: one row per submission, one column per check, and a summary."""
    cols = _columns(rows)
    name_w = max(len("submission"), *(len(r.path.name) for r in rows))
    verdict_w = max(len("verdict"), *(len(r.verdict) for r in rows))
    lines = ["Checks: " + "; ".join(f"{i + 1} {c}" for i, c in enumerate(cols))]
    head = " ".join(f"{i + 1:>2}" for i in range(len(cols)))
    lines.append(f"{'submission':<{name_w}}  {'verdict':<{verdict_w}}  {head}")
    for row in rows:
        cells = row.cells()
        marks = " ".join(f"{_SYMBOL[cells[c].status] if c in cells else '.':>2}" for c in cols)
        line = f"{row.path.name:<{name_w}}  {row.verdict:<{verdict_w}}  {marks}"
        lines.append(line.rstrip() + (f"  {row.error}" if row.error else ""))
    n_pass = sum(r.passed for r in rows)
    n_error = sum(r.error is not None for r in rows)
    lines.append("P passed, F failed, - not run (an earlier check failed), S skipped (not graded), . not applicable")
    lines.append(
        f"Class summary: {len(rows)} submissions; {n_pass} passed, {len(rows) - n_pass - n_error} failed, "
        f"{n_error} could not be graded."
    )
    return "\n".join(lines)


def _write_csv(rows: list[_Row], path: Path) -> None:
    """The class table as CSV: submission, verdict, passed, the first problem, then one column per check."""
    import csv

    cols = _columns(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["submission", "verdict", "passed", "first problem", *cols])
        for row in rows:
            cells = row.cells()
            w.writerow(
                [str(row.path), row.verdict, int(row.passed), row.first_problem()]
                + [cells[c].status if c in cells else "" for c in cols]
            )
