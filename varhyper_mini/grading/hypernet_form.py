"""The hypernetwork form under test: what an assignment specifies about it, and how the grader builds it.

``FormSpec`` is what an assignment specifies beyond the ``Hypernet`` contract (``MLP_HYPERNET``
for assignment 1); ``FormUnderTest`` builds the submitted form for fresh copies of the target and
holds what the checks of ``check_hypernet`` share; ``lambdas_at``, ``flat_outputs`` and
``format_value`` are the helpers those checks use to probe and describe its outputs.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..data import TensorData
from ..gaussian import GaussianParams, ParamSpec
from ..hypernets import Hypernet
from .report import CheckFailed, GradeReport, call_student

__all__ = ["MLP_HYPERNET", "FormSpec", "FormUnderTest", "flat_outputs", "format_value", "lambdas_at"]


@dataclass(frozen=True)
class FormSpec:
    """What an assignment specifies about a form beyond the ``Hypernet`` contract.

    Attributes:
        size_arg: the constructor argument that sets the form's size (e.g. "hidden").
        sizes: the sizes the grader builds it with.
        stored: ``stored(P, size, variational)``, the number of values the form stores for a target
            with P parameters.
        formula: the stored count as the assignment writes it, for messages.
    """

    size_arg: str
    sizes: tuple[int, ...]
    stored: Callable[[int, int, bool], int]
    formula: str


#: Assignment 1: mu(u) = c + tanh(u a + b) V and log sigma(u) = c' + tanh(u a + b) V'.
MLP_HYPERNET = FormSpec(
    "hidden",
    (1, 5),
    lambda p, h, var: (2 if var else 1) * p * (h + 1) + 2 * h,
    "2P(H + 1) + 2H (P(H + 1) + 2H without sigma)",
)


class FormUnderTest:
    """A hypernetwork form under test: what the checks of ``check_hypernet`` share.

    The checks (in ``hypernet_contract`` and ``hypernet_numerics``) are functions of a
    ``FormUnderTest``. Some record what later checks need: ``h`` is the hypernetwork built by
    "builds" and ``range`` its lambda range; ``trained`` holds the outputs at three lambdas before
    and after "training reduces the loss"; ``report.n_stored`` the stored-value count.

    Attributes:
        cls_or_factory: what was submitted, a ``Hypernet`` subclass or a factory; ``name`` its name.
        target_module: the target model (each build gets a fresh copy); ``target_spec`` its ``ParamSpec``.
        data: training examples for the training checks.
        lam_range: the lambda range the form is built with.
        asked: what the assignment specifies about the form (``FormSpec``), or None.
        train_steps, lambda_free, allow_jumps: the caller's settings of ``check_hypernet``.
    """

    def __init__(
        self,
        cls_or_factory: type[Hypernet] | Callable[..., Hypernet],
        name: str,
        target_module: nn.Module,
        data: TensorData,
        lam_range: tuple[float, float],
        report: GradeReport,
        *,
        train_steps: int,
        asked: FormSpec | None,
        lambda_free: bool,
        allow_jumps: bool,
    ) -> None:
        self.cls_or_factory, self.name, self.target_module, self.data = cls_or_factory, name, target_module, data
        self.lam_range, self.report, self.train_steps = lam_range, report, train_steps
        self.asked, self.lambda_free, self.allow_jumps = asked, lambda_free, allow_jumps
        self.target_spec = ParamSpec.from_module(target_module)
        self.h: Hypernet | None = None
        self.range: tuple[float, float] = lam_range
        self.trained: tuple[Tensor, Tensor] | None = None

    def build(self, **extra: Any) -> tuple[Hypernet, nn.Module]:
        """Build the form for a fresh copy of the target, with keyword arguments ``extra``; (form, copy).

        Raises:
            CheckFailed: what was submitted is not a ``Hypernet`` class or factory, does not accept
                a keyword argument, or does not pass it on to ``Hypernet.__init__``.
            StudentCodeError: the student's constructor raised.
        """
        module = copy.deepcopy(self.target_module)
        if isinstance(self.cls_or_factory, nn.Module):
            raise CheckFailed(
                f"got an instance of {self.name}; pass the class itself, check_hypernet({self.name}), so that the "
                "grader can build fresh copies for the target it tests"
            )
        if isinstance(self.cls_or_factory, type) and not issubclass(self.cls_or_factory, Hypernet):
            raise CheckFailed(f"{self.name} is not a subclass of varhyper_mini.Hypernet")
        kwargs = {"lam_range": self.lam_range} if _accepts(self.cls_or_factory, "lam_range") else {}
        for key, val in extra.items():
            if not _accepts(self.cls_or_factory, key):
                raise CheckFailed(
                    f"{self.name} does not accept the keyword argument {key}=, so the grader cannot build it with "
                    f"{key}={val!r}; take **kwargs and pass them on to Hypernet.__init__"
                )
            kwargs[key] = val
        what = f"{self.name}(target" + "".join(f", {k}={v!r}" for k, v in kwargs.items()) + ")"
        h = call_student(what, self.cls_or_factory, module, **kwargs)
        if not isinstance(h, Hypernet):
            raise CheckFailed(f"{self.name}(...) returned a {type(h).__name__}, not a varhyper_mini.Hypernet")
        for key in ("lam_range", "variational", "init_log_sigma"):
            got = getattr(h, key, None)
            if key in kwargs and (tuple(got) if isinstance(got, list) else got) != kwargs[key]:
                raise CheckFailed(
                    f"built with {key}={kwargs[key]!r}, the hypernetwork has {key}={getattr(h, key, None)!r}: "
                    "pass the keyword arguments on to Hypernet.__init__ (super().__init__(target, **kwargs))"
                )
        return h, module

    def stored(self, h: Hypernet) -> int:
        """``h.n_stored()``, checked against the values its parameters hold.

        Raises:
            CheckFailed: ``n_stored()`` is not the number of values in ``h.parameters()``.
            StudentCodeError: the student's ``n_stored`` raised.
        """
        n = call_student("n_stored()", h.n_stored)
        counted = sum(p.numel() for p in h.parameters())
        if isinstance(n, bool) or not isinstance(n, int) or n != counted:
            raise CheckFailed(
                f"n_stored() returned {n!r}, but the hypernetwork's parameters hold {counted:,} values; "
                "leave n_stored to the base class and register the stored tensors as nn.Parameter"
            )
        return n


def _accepts(fn: Callable, name: str) -> bool:
    """Whether ``fn`` takes the keyword argument ``name`` (True when its signature is unknown)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def flat_outputs(p: GaussianParams, spec: ParamSpec, batch_dims: int = 0) -> Tensor:
    """Means and log sigmas of ``p`` as one flat tensor (for distances between outputs).

    ``batch_dims`` leading dimensions are kept (1 for the output of ``params_batch``).
    """
    parts = [spec.flatten(p.mean, batch_dims)]
    if p.log_sigma is not None:
        parts.append(spec.flatten(p.log_sigma, batch_dims))
    return torch.cat(parts, dim=-1)


def lambdas_at(lo: float, hi: float, u: Tensor) -> Tensor:
    """The lambdas whose code is ``u`` (log-uniform position in [lo, hi])."""
    return torch.exp(math.log(lo) + u.double() * (math.log(hi) - math.log(lo))).to(torch.get_default_dtype())


def format_value(x: float) -> str:
    """``x`` with 3 significant digits, as the checks' messages show numbers."""
    return f"{x:.3g}"
