"""Automatic checks for the book's assignments, with a readable report.

The checkers share one report format (``GradeReport``, a sequence of ``CheckResult``):

- ``check_hypernet(cls_or_factory, target)``: the contract of a hypernetwork form, i.e. a
  subclass of ``Hypernet`` that implements ``flat_params(u)``; ``check_mlp_hypernet`` adds what
  assignment 1 specifies about its ``MLPHypernet`` (the stored-value count);
- ``check_prior(kl_penalty, log_prior)``: a complexity prior; ``check_laplace_prior`` adds that it
  is the Laplace prior assignment 2 asks for;
- ``check_neuron_pruning(prune_neurons, count_macs, neuron_scores)``: structured pruning
  (assignment 3).

What a pass means. Every check is behavioural, and nothing a submission sets switches one off:
the only switches (``lambda_free``, ``allow_jumps``) are arguments of the caller. A check that
could not run because an earlier one failed is "NOT RUN", and a check the caller switched off is
"SKIP" (not graded); neither counts as a pass, so ``report.passed`` is True only when every check
ran and passed. A checker never crashes on the student's code: each check catches the student's
exception and records it as a failed check, with the student's traceback, and checks validate
the student's outputs before using them.

``grade_cli(paths)`` loads ``.py`` files and grades what they define
(``python -m varhyper_mini grade path/to/solution.py``); given several files or a folder it
grades a class: one row per submission, a column per check, a summary and optionally a CSV.

Conventions for a solution file (what ``grade_module`` looks for):

- **Assignment 1.** A class ``MLPHypernet`` is graded with ``check_mlp_hypernet``. A function
  ``make_hypernet(target, lam_range, **kwargs)`` returning a ``Hypernet`` is graded with
  ``check_hypernet``; without either, every ``Hypernet`` subclass *defined in the file* whose
  name does not start with an underscore is. A class is built as ``cls(target, lam_range=(lo,
  hi))``, and also with ``variational=False``, ``init_log_sigma=-2`` (and ``hidden=`` for
  ``MLPHypernet``), so every other constructor argument needs a default and keyword arguments
  must reach ``Hypernet.__init__``. ``lam_range`` may be left out of a factory's signature; the
  grader then reads the range from the returned hypernetwork.
- **Assignment 2.** Functions ``log_prior(w)`` (elementwise log density of the Laplace prior with
  scale 1/sqrt(2)) and ``kl_penalty(mean, log_sigma)`` (elementwise KL(N(mean,
  exp(log_sigma)^2) || prior)).
- **Assignment 3.** Functions ``neuron_scores(params)``, ``prune_neurons(params, fraction)`` and
  ``count_macs(params)``, for the book's MNIST MLP (``models.mnist_mlp``).

A file that defines only some of an assignment's functions fails that assignment.

Modules, one concept each (imports go downwards, from ``classroom`` to ``report``):

- ``report``: ``CheckResult``, ``GradeReport``, and what every checker uses to run a check:
  ``CheckRunner``, ``call_student`` (the sandbox for student code) and the exceptions a check
  raises (``CheckFailed``, ``CheckSkipped``, ``StudentCodeError``);
- ``hypernet``: ``check_hypernet``, ``check_mlp_hypernet`` and the targets; ``hypernet_form``
  (``FormSpec``, ``MLP_HYPERNET``, the form under test), ``hypernet_contract`` (the contract
  checks) and ``hypernet_numerics`` (the numerical and training checks);
- ``prior``: ``check_prior``, ``check_laplace_prior``;
- ``pruning``: ``check_neuron_pruning``;
- ``loader``: ``load_module``, ``SolutionImportError``;
- ``classroom``: ``grade_module``, ``grade_cli``, the class table and its CSV.

Every name listed in ``__all__`` is importable from ``varhyper_mini.grading``.
"""

from __future__ import annotations

from .classroom import NOTHING, grade_cli, grade_module
from .hypernet import DEFAULT_LAM_RANGES, MNIST_SUBSET, TARGETS, check_hypernet, check_mlp_hypernet
from .hypernet_contract import BAD_LAMBDAS
from .hypernet_form import MLP_HYPERNET, FormSpec
from .loader import DEFINITIONS, SolutionImportError, load_module
from .prior import LAPLACE_SCALE, check_laplace_prior, check_prior, laplace_log_prior
from .pruning import PRUNE_FRACTIONS, check_neuron_pruning
from .report import CheckResult, GradeReport

__all__ = [
    "CheckResult",
    "GradeReport",
    "check_hypernet",
    "check_mlp_hypernet",
    "FormSpec",
    "MLP_HYPERNET",
    "check_prior",
    "check_laplace_prior",
    "check_neuron_pruning",
    "load_module",
    "grade_cli",
    "grade_module",
    "DEFAULT_LAM_RANGES",
    # also public in the single module this package replaced
    "BAD_LAMBDAS",
    "DEFINITIONS",
    "LAPLACE_SCALE",
    "MNIST_SUBSET",
    "NOTHING",
    "PRUNE_FRACTIONS",
    "SolutionImportError",
    "TARGETS",
    "laplace_log_prior",
]
