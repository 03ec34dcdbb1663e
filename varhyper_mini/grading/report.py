"""The grader's report, and the machinery every checker uses to run a check on student code.

A checker (``check_hypernet``, ``check_prior``, ``check_neuron_pruning``) runs named checks with a
``CheckRunner``, which records each outcome as a ``CheckResult`` in a ``GradeReport``. A check is
a function returning a message on success; it signals its other outcomes by raising

- ``CheckFailed``: the student's output is wrong (a message for the student, no traceback);
- ``CheckSkipped``: the caller of the checker switched the check off (not graded);
- ``StudentCodeError``: the student's code raised, when called through ``call_student``.

``call_student`` is the sandbox for calling student code: whatever the student's code raises is
tagged with what was called, and the runner records it as a failed check with the student's
traceback (the grader's and torch's frames left out). Nothing the student's code raises escapes
``CheckRunner.run``.
"""

from __future__ import annotations

import os
import time
import traceback as tb_module
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch

__all__ = [
    "CheckFailed",
    "CheckResult",
    "CheckRunner",
    "CheckSkipped",
    "GradeReport",
    "StudentCodeError",
    "call_student",
    "refusal_problems",
]

T = TypeVar("T")


@dataclass
class CheckResult:
    """The outcome of one check.

    Attributes:
        name: short name of the check, e.g. "finite values".
        passed: True when the check ran and passed; False when it failed. A skipped check has
            ``passed`` True but counts as not graded: ``GradeReport.passed`` is then False.
        message: what was checked and found, or what went wrong and how to fix it.
        traceback: the student's traceback when their code raised, else None.
        skipped: True when the check was not run because the grader's caller switched it off
            (e.g. ``check_hypernet(..., allow_jumps=True)``); a submission cannot switch a check off.
        seconds: wall time of the check.
        blocked: True when the check was not run because an earlier check it needs failed
            (``passed`` is then False): one cause is reported as one failure.
    """

    name: str
    passed: bool
    message: str
    traceback: str | None = None
    skipped: bool = False
    seconds: float = 0.0
    blocked: bool = False

    @property
    def status(self) -> str:
        """ "PASS", "FAIL", "SKIP" or "NOT RUN" (blocked by an earlier failure: not a pass either)."""
        if self.blocked:
            return "NOT RUN"
        return "SKIP" if self.skipped else ("PASS" if self.passed else "FAIL")


@dataclass
class GradeReport:
    """The checks run on one submission; iterate over it for the ``CheckResult`` objects.

    ``print(report)`` shows a summary; ``report.passed`` is True when every check ran and passed;
    ``report["finite values"]`` looks a check up by name.
    """

    subject: str
    setting: str
    results: list[CheckResult] = field(default_factory=list)
    n_stored: int | None = None

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, key: int | str) -> CheckResult:
        """The check named ``key``, or the ``key``-th check.

        Raises:
            KeyError: no check is named ``key``.
            IndexError: there are fewer than ``key`` checks.
        """
        if isinstance(key, str):
            for r in self.results:
                if r.name == key:
                    return r
            raise KeyError(f"no check named {key!r}; checks: {[r.name for r in self.results]}")
        return self.results[key]

    @property
    def passed(self) -> bool:
        """True when every check ran and passed: a skipped check is not graded, so not a pass."""
        return bool(self.results) and all(r.passed and not r.skipped and not r.blocked for r in self.results)

    @property
    def skipped(self) -> list[CheckResult]:
        """The checks that did not run (not graded)."""
        return [r for r in self.results if r.skipped]

    @property
    def failed(self) -> list[CheckResult]:
        """The checks that ran and failed."""
        return [r for r in self.results if not r.passed and not r.blocked]

    @property
    def blocked(self) -> list[CheckResult]:
        """The checks not run because a check they need failed."""
        return [r for r in self.results if r.blocked]

    @property
    def seconds(self) -> float:
        """Wall time of all the checks."""
        return sum(r.seconds for r in self.results)

    def __str__(self) -> str:
        width = max((len(r.name) for r in self.results), default=0)
        lines = [f"Grading {self.subject}", f"  {self.setting}"]
        shown: set[str] = set()
        for r in self.results:
            msg = r.message.replace("\n", "\n" + " " * (width + 13))
            lines.append(f"  {r.status:<7}  {r.name:<{width}}  {msg}")
            if r.traceback and r.traceback in shown:
                lines.append("        | (the same traceback as above)")
            elif r.traceback:
                shown.add(r.traceback)
                lines.extend("        | " + t for t in r.traceback.rstrip().splitlines())
        lines.append(f"{self.n_passed} of {len(self.results)} checks passed ({self.verdict}) in {self.seconds:.1f} s.")
        return "\n".join(lines)

    @property
    def n_passed(self) -> int:
        """How many checks ran and passed."""
        return sum(r.passed and not r.skipped for r in self.results)

    @property
    def verdict(self) -> str:
        """ "all checks passed", or what failed and what was skipped (not graded)."""
        if self.passed:
            return "all checks passed"
        parts = [f"{len(self.failed)} failed"] if self.failed else []
        if self.blocked:
            parts.append(f"{len(self.blocked)} not run")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped — not graded")
        return ", ".join(parts) or "no checks ran"

    def __repr__(self) -> str:
        n_ok = self.n_passed
        return f"<GradeReport {self.subject}: {n_ok}/{len(self.results)} checks passed>"


class CheckFailed(Exception):
    """Raised by a check that found something wrong with the student's output.

    The message tells the student what is wrong and how to fix it; ``CheckRunner`` records it as a
    failed check, without a traceback.
    """


class CheckSkipped(Exception):
    """Raised by a check that the checker's caller switched off (e.g. ``allow_jumps=True``).

    ``CheckRunner`` records it as skipped, which is not graded (not a pass). A submission cannot
    switch a check off.
    """


class StudentCodeError(Exception):
    """Raised by ``call_student`` when the student's code raised.

    Attributes:
        what: which call raised, as the student would write it (e.g. "flat_params(u)").
        err: the student's exception; ``CheckRunner`` shows its traceback.
    """

    def __init__(self, what: str, err: Exception) -> None:
        super().__init__(what)
        self.what, self.err = what, err


def call_student(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the student's ``fn(*args, **kwargs)``, the sandbox for student code.

    Raises:
        StudentCodeError: whatever ``fn`` raises (any ``Exception``), tagged with ``what`` was called.
    """
    try:
        return fn(*args, **kwargs)
    except Exception as err:
        raise StudentCodeError(what, err) from err


def refusal_problems(
    call: Callable[[Any], Any], bad_inputs: Sequence[Any], name: Callable[[Any], str], accepted: str
) -> list[str]:
    """What went wrong when the student's ``call`` was given each of ``bad_inputs``, which it must refuse.

    The contract is a ``ValueError`` for every bad input. Returns one phrase per input that broke it:
    ``"<name(bad)> raised <Class> instead of ValueError"``, or ``"<name(bad)> <accepted>"`` when
    ``call`` returned normally. An empty list means every input was refused. Raises nothing itself:
    any ``Exception`` from ``call`` is reported, not propagated.
    """
    problems = []
    for bad in bad_inputs:
        try:
            call(bad)
        except ValueError:
            continue
        except Exception as err:
            problems.append(f"{name(bad)} raised {type(err).__name__} instead of ValueError")
        else:
            problems.append(f"{name(bad)} {accepted}")
    return problems


def _format_traceback(err: BaseException) -> str | None:
    """The traceback of ``err`` without the grader's (this package's) and torch's own frames.

    What is left is the student's code (and the package code it called); ``None`` when no frame
    is left, e.g. for a constructor called with a missing argument.
    """
    skip = (str(Path(__file__).resolve().parent) + os.sep, str(Path(torch.__file__).resolve().parent) + os.sep)
    frames = [
        f for f in tb_module.extract_tb(err.__traceback__) if not str(Path(f.filename).resolve()).startswith(skip)
    ]
    if not frames:
        return None
    lines = ["Traceback (most recent call last):\n", *tb_module.format_list(frames)]
    return "".join(lines + tb_module.format_exception_only(type(err), err))


class CheckRunner:
    """Runs named checks in order, appending each outcome to ``report`` as a ``CheckResult``.

    Every check runs with the random seed ``seed``, inside ``torch.random.fork_rng``, so the
    caller's random state is left untouched.
    """

    def __init__(self, report: GradeReport, seed: int) -> None:
        self.report, self.seed = report, seed

    def run(self, name: str, check: Callable[[], str], blocked_by: str | None = None) -> CheckResult:
        """Run ``check()``, record its outcome under ``name`` and return it; never raises.

        ``check`` returns a message on success, or raises ``CheckFailed``, ``CheckSkipped`` or
        ``StudentCodeError``; any other exception is recorded as a failure with its traceback.
        With ``blocked_by`` (why), the check is not run and is recorded as "NOT RUN".
        """
        t0 = time.perf_counter()
        if blocked_by is not None:
            res = CheckResult(name, False, f"not run: {blocked_by}", blocked=True)
        else:
            try:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed)
                    msg = check()
                res = CheckResult(name, True, msg)
            except CheckSkipped as s:
                res = CheckResult(name, True, f"skipped: {s}", skipped=True)
            except CheckFailed as f:
                res = CheckResult(name, False, str(f))
            except StudentCodeError as e:
                detail = f": {e.err}" if str(e.err) else ""
                text = f"{e.what} raised {type(e.err).__name__}{detail}"
                res = CheckResult(name, False, text, _format_traceback(e.err))
            except Exception as err:  # the student's code called in an unexpected place
                res = CheckResult(name, False, f"raised {type(err).__name__}: {err}", _format_traceback(err))
        res.seconds = time.perf_counter() - t0
        self.report.results.append(res)
        return res
