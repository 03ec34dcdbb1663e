"""Assignment 1's checker: a hypernetwork form against the contract of ``Hypernet``.

``check_hypernet(cls_or_factory, target)`` builds the form for a target model ("mnist", "wine" or
any module) and runs its checks in order: the contract checks of ``hypernet_contract``, then the
numerical and training checks of ``hypernet_numerics``; a check whose prerequisite failed is not
run. ``check_mlp_hypernet`` adds what assignment 1 specifies about its ``MLPHypernet``
(``MLP_HYPERNET``: the stored-value count).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .. import models
from ..data import TensorData
from ..gaussian import ParamSpec
from ..hypernets import Hypernet
from .hypernet_contract import (
    check_builds,
    check_initial_state,
    check_output_shapes,
    check_registered,
    check_rejects_bad_lambda,
    check_stored_values,
    check_variational_false,
)
from .hypernet_form import MLP_HYPERNET, FormSpec, FormUnderTest
from .hypernet_numerics import (
    check_batch,
    check_continuous,
    check_deterministic,
    check_differentiable,
    check_finite,
    check_lambda_matters,
    check_training,
)
from .report import CheckResult, CheckRunner, GradeReport

__all__ = ["DEFAULT_LAM_RANGES", "MNIST_SUBSET", "TARGETS", "check_hypernet", "check_mlp_hypernet"]

#: The default lambda range of each named target.
DEFAULT_LAM_RANGES = {"mnist": (1e-3, 1e2), "wine": (1e2, 1e6)}
#: The targets ``check_hypernet`` and the grading command know by name.
TARGETS = ("mnist", "wine")
#: MNIST training images in the training checks.
MNIST_SUBSET = 512


@functools.lru_cache(maxsize=4)
def _mnist_subset(root: str | None, n: int) -> TensorData:
    """``n`` MNIST training images, kept for the next grading run in this process."""
    from ..data import mnist

    return mnist(root, train=True, subset=n)


def _resolve_target(
    target: str | nn.Module, data: TensorData | None, data_root: str | None
) -> tuple[nn.Module, TensorData, str, tuple[float, float]]:
    """(target module, training data, label for the report, default lambda range) of ``target``."""
    if isinstance(target, nn.Module):
        if data is None:
            raise ValueError(
                "with a custom target module, pass data=TensorData(...) (a few hundred examples) "
                "for the training checks"
            )
        return target, data, type(target).__name__, DEFAULT_LAM_RANGES["mnist"]
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {TARGETS} or pass an nn.Module")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = models.MODELS[target]()
    if data is None:
        if target == "wine":
            from ..data import wine

            data = wine()[0]
        else:
            data = _mnist_subset(None if data_root is None else str(data_root), MNIST_SUBSET)
    label = {"mnist": "the MNIST MLP 784-50-10", "wine": "the Wine logistic regression 13-3"}[target]
    return module, data, label, DEFAULT_LAM_RANGES[target]


def _run_checks(form: FormUnderTest, runner: CheckRunner) -> None:
    """Run every check on ``form`` in order; a check whose prerequisite failed is not run."""

    def run(name: str, check: Callable[[FormUnderTest], str], blocked_by: str | None = None) -> CheckResult:
        return runner.run(name, functools.partial(check, form), blocked_by)

    built = run("builds", check_builds)
    blocked = None if built.passed else "the hypernetwork could not be built (see 'builds')"
    registered = run("stored tensors are parameters", check_registered, blocked)
    unregistered = "the stored tensors are not all registered (see 'stored tensors are parameters')"
    run("stored values", check_stored_values, blocked or (None if registered.passed else unregistered))
    shapes = run("output names and shapes", check_output_shapes, blocked)
    wrong = blocked or (None if shapes.passed else "the outputs have the wrong form (see 'output names and shapes')")
    run("initial state", check_initial_state, wrong)
    run("variational=False", check_variational_false, wrong)
    run("finite values", check_finite, wrong)
    run("differentiable", check_differentiable, wrong)
    run("deterministic", check_deterministic, wrong)
    run("batch agrees with single lambda", check_batch, wrong)
    run("continuous in lambda", check_continuous, wrong)
    run("rejects bad lambda", check_rejects_bad_lambda, blocked)
    trained = run("training reduces the loss", check_training, wrong)
    untrained = unregistered if not registered.passed else None if trained.passed else "the training check failed"
    run("lambda matters", check_lambda_matters, wrong or untrained)


def check_hypernet(
    cls_or_factory: type[Hypernet] | Callable[..., Hypernet],
    target: str | nn.Module = "mnist",
    data: TensorData | None = None,
    lam_range: tuple[float, float] | None = None,
    *,
    train_steps: int = 24,
    seed: int = 0,
    verbose: bool = True,
    data_root: str | None = None,
    form: FormSpec | None = None,
    lambda_free: bool = False,
    allow_jumps: bool = False,
) -> GradeReport:
    """Check a hypernetwork form against the contract of ``Hypernet`` and print a report.

    Every check is behavioural, and no attribute of the submission switches one off. The form
    must start where the package's forms start (the target's parameters for every lambda, log
    sigma at ``init_log_sigma``), honour ``variational=False``, register every stored tensor as
    ``nn.Parameter``, and learn a dependence on lambda in training. The class (or the factory)
    is therefore also built with ``variational=False`` and ``init_log_sigma=-2``: it must accept
    these keyword arguments and pass them on to ``Hypernet.__init__``.

    Args:
        cls_or_factory: a ``Hypernet`` subclass, built as ``cls(target, lam_range=...)``, or a
            function ``make_hypernet(target, lam_range=...)`` returning a ``Hypernet``
            (``functools.partial(MyHypernet, hidden=8)`` works too).
        target: "mnist" (the 784-50-10 MLP, trained on 512 images), "wine" (logistic
            regression on the 142 training wines), or any ``nn.Module`` (then give ``data``).
        data: training examples for the training checks (default: chosen from ``target``).
        lam_range: the lambda range (default: (1e-3, 1e2) for MNIST, (1e2, 1e6) for Wine).
        train_steps: Adam steps of ``varhyper_mini.train`` in the training checks.
        seed: seeds every check; the caller's random state is left untouched.
        verbose: print the report.
        data_root: where the MNIST files are (default: ``$VARHYPER_DATA`` or the user cache).
        form: what the assignment specifies about the form (``MLP_HYPERNET`` for assignment 1):
            then the stored-value count must match its formula at each of its sizes.
        lambda_free: the caller (never the submission) grades a form meant to ignore lambda,
            such as ``ConstantHypernet``: "lambda matters" then checks that G stays the same for
            every lambda after training.
        allow_jumps: the caller allows a form that jumps in lambda; "continuous in lambda" is then
            skipped, and a skipped check means the report does not pass.
    Returns:
        A ``GradeReport``; ``report.passed`` is True when every check ran and passed. Nothing the
        student's code raises or returns escapes: it is recorded as a failed check.
    Raises:
        ValueError: ``target`` is not "mnist", "wine" or an ``nn.Module``, or is a module without ``data``.
        DataNotFoundError: the MNIST files are not in ``data_root`` (target "mnist" without ``data``).
    """
    target_module, data, label, default_range = _resolve_target(target, data, data_root)
    lam_range = tuple(float(v) for v in (lam_range or default_range))
    if isinstance(cls_or_factory, nn.Module):
        name = type(cls_or_factory).__name__
    else:
        name = getattr(cls_or_factory, "__name__", None) or getattr(
            getattr(cls_or_factory, "func", None), "__name__", repr(cls_or_factory)
        )
    total = ParamSpec.from_module(target_module).total
    setting = f"target: {label} ({total:,} parameters); lambda range {lam_range}; training data: {len(data)} examples"
    report = GradeReport(name, setting)
    under_test = FormUnderTest(
        cls_or_factory,
        name,
        target_module,
        data,
        lam_range,
        report,
        train_steps=train_steps,
        asked=form,
        lambda_free=lambda_free,
        allow_jumps=allow_jumps,
    )
    _run_checks(under_test, CheckRunner(report, seed))
    if verbose:
        print(report)
    return report


def check_mlp_hypernet(
    cls_or_factory: type[Hypernet] | Callable[..., Hypernet], target: str | nn.Module = "mnist", **kwargs: Any
) -> GradeReport:
    """Check assignment 1's ``MLPHypernet``: ``check_hypernet`` with the form the assignment specifies.

    On top of the contract, the stored-value count must be 2P(H + 1) + 2H (P(H + 1) + 2H with
    ``variational=False``) for ``hidden`` H = 1 and 5. Keyword arguments go to ``check_hypernet``,
    which says what it returns and raises.
    """
    return check_hypernet(cls_or_factory, target, form=MLP_HYPERNET, **kwargs)
