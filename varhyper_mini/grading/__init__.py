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
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import io
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import losses, models
from ..data import DataNotFoundError, TensorData
from ..gaussian import GaussianParams, ParamSpec
from ..hypernets import Hypernet
from .loader import DEFINITIONS, SolutionImportError, load_module
from .prior import LAPLACE_SCALE, check_laplace_prior, check_prior, laplace_log_prior
from .pruning import PRUNE_FRACTIONS, check_neuron_pruning
from .report import CheckFailed, CheckResult, CheckRunner, CheckSkipped, GradeReport, StudentCodeError, call_student

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
]

DEFAULT_LAM_RANGES = {"mnist": (1e-3, 1e2), "wine": (1e2, 1e6)}
TARGETS = ("mnist", "wine")
MNIST_SUBSET = 512
BAD_LAMBDAS = (0.0, -1.0, float("nan"), float("inf"))




def format_value(x: float) -> str:
    return f"{x:.3g}"


# -- assignment 1: a hypernetwork form ----------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _mnist_subset(root: str | None, n: int) -> TensorData:
    from ..data import mnist

    return mnist(root, train=True, subset=n)


def _resolve_target(target: str | nn.Module, data: TensorData | None, data_root: str | None):
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


def _accepts(fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def flat_outputs(p: GaussianParams, spec: ParamSpec, batch_dims: int = 0) -> Tensor:
    """Means and log sigmas of ``p`` as one flat tensor (for distances between outputs)."""
    parts = [spec.flatten(p.mean, batch_dims)]
    if p.log_sigma is not None:
        parts.append(spec.flatten(p.log_sigma, batch_dims))
    return torch.cat(parts, dim=-1)


def lambdas_at(lo: float, hi: float, u: Tensor) -> Tensor:
    """The lambdas whose code is ``u`` (log-uniform position in [lo, hi])."""
    return torch.exp(math.log(lo) + u.double() * (math.log(hi) - math.log(lo))).to(torch.get_default_dtype())


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


def _unregistered(h: nn.Module) -> list[str]:
    """Tensor attributes that require grad but are not registered, so neither trained nor counted."""
    found = []
    for mod_name, mod in h.named_modules():
        for attr, val in vars(mod).items():
            if isinstance(val, Tensor) and not isinstance(val, nn.Parameter) and val.requires_grad:
                found.append(f"{mod_name}.{attr}" if mod_name else attr)
    return found


class _HypernetChecks:
    """The checks of ``check_hypernet``, one method each, sharing the form under test.

    ``h`` is the hypernetwork built by "builds"; ``range`` its lambda range; ``trained`` the
    outputs at three lambdas before and after "training reduces the loss".
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
        form: FormSpec | None,
        lambda_free: bool,
        allow_jumps: bool,
    ) -> None:
        self.cls_or_factory, self.name, self.target_module, self.data = cls_or_factory, name, target_module, data
        self.lam_range, self.report, self.train_steps = lam_range, report, train_steps
        self.form, self.lambda_free, self.allow_jumps = form, lambda_free, allow_jumps
        self.target_spec = ParamSpec.from_module(target_module)
        self.h: Hypernet | None = None
        self.range: tuple[float, float] = lam_range
        self.trained: tuple[Tensor, Tensor] | None = None

    def run_all(self, runner: CheckRunner) -> None:
        """Run every check in order; a check whose prerequisite failed is not run."""
        built = runner.run("builds", self.c_build)
        blocked = None if built.passed else "the hypernetwork could not be built (see 'builds')"
        registered = runner.run("stored tensors are parameters", self.c_registered, blocked)
        unregistered = "the stored tensors are not all registered (see 'stored tensors are parameters')"
        runner.run("stored values", self.c_count, blocked or (None if registered.passed else unregistered))
        shapes = runner.run("output names and shapes", self.c_shapes, blocked)
        wrong = blocked or (
            None if shapes.passed else "the outputs have the wrong form (see 'output names and shapes')"
        )
        runner.run("initial state", self.c_init, wrong)
        runner.run("variational=False", self.c_variational, wrong)
        runner.run("finite values", self.c_finite, wrong)
        runner.run("differentiable", self.c_grad, wrong)
        runner.run("deterministic", self.c_deterministic, wrong)
        runner.run("batch agrees with single lambda", self.c_batch, wrong)
        runner.run("continuous in lambda", self.c_continuous, wrong)
        runner.run("rejects bad lambda", self.c_bad_lambda, blocked)
        trained = runner.run("training reduces the loss", self.c_train, wrong)
        untrained = unregistered if not registered.passed else None if trained.passed else "the training check failed"
        runner.run("lambda matters", self.c_lambda_matters, wrong or untrained)

    def build(self, **extra) -> tuple[Hypernet, nn.Module]:
        """Build the form for a fresh copy of the target, with keyword arguments ``extra``."""
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

    def c_build(self) -> str:
        t0 = time.perf_counter()
        h, module = self.build()
        if h.spec != self.target_spec:
            raise CheckFailed(
                f"the hypernetwork's spec does not describe the target: pass the target module to "
                f"Hypernet.__init__ (super().__init__(target, **kwargs)); spec names {h.spec.names}"
            )
        self.h, self.range = h, h.lam_range
        return f"{type(h).__name__} built in {time.perf_counter() - t0:.2f} s; lambda range {h.lam_range}"

    def c_registered(self) -> str:
        h = self.h
        loose = _unregistered(h)
        if loose:
            raise CheckFailed(
                f"{', '.join(loose)} {'is a tensor' if len(loose) == 1 else 'are tensors'} that the hypernetwork "
                "stores but does not register: wrap every stored tensor in nn.Parameter, otherwise the "
                "optimiser never trains it and n_stored() does not count it"
            )
        named = [n for n, p in h.named_parameters() if p.requires_grad]
        if not named:
            raise CheckFailed("the hypernetwork has no trainable parameters: register its stored tensors as nn.Parameter")
        return f"{len(named)} trainable nn.Parameter tensors; no unregistered tensor that requires grad"

    def stored(self, h: Hypernet) -> int:
        n = call_student("n_stored()", h.n_stored)
        counted = sum(p.numel() for p in h.parameters())
        if isinstance(n, bool) or not isinstance(n, int) or n != counted:
            raise CheckFailed(
                f"n_stored() returned {n!r}, but the hypernetwork's parameters hold {counted:,} values; "
                "leave n_stored to the base class and register the stored tensors as nn.Parameter"
            )
        return n

    def c_count(self) -> str:
        p = self.target_spec.total
        n = self.report.n_stored = self.stored(self.h)
        msg = f"stores {n:,} values = {n / p:.2f} x the target's {p:,} parameters"
        if self.form is None:
            return msg
        for size in self.form.sizes:
            self.check_form_count(self.build(**{self.form.size_arg: size})[0], size, True)
            try:  # a form that ignores variational=False fails 'variational=False' instead
                det = self.build(**{self.form.size_arg: size, "variational": False})[0]
                with torch.no_grad():
                    honoured = call_student("flat_params(u)", det.flat_params, torch.zeros(1))[1] is None
            except (CheckFailed, StudentCodeError):
                honoured = False
            if honoured:
                self.check_form_count(det, size, False)
        sizes = ", ".join(str(v) for v in self.form.sizes)
        return f"{msg}; matches {self.form.formula} for {self.form.size_arg} = {sizes}, with and without sigma"

    def check_form_count(self, h: Hypernet, size: int, var: bool) -> None:
        p = self.target_spec.total
        got, want = self.stored(h), self.form.stored(p, size, var)
        if got != want:
            raise CheckFailed(
                f"with {self.form.size_arg}={size} and variational={var}, the form stores {got:,} values; the "
                f"assignment's form stores {self.form.formula} = {want:,} (P = {p:,}). Store exactly the "
                "tensors the assignment lists, each as an nn.Parameter"
            )

    def initial(self, h: Hypernet, log_sigma: float, what: str) -> None:
        """Fail unless ``h`` gives the target's parameters and ``log_sigma`` at 5 lambdas."""
        lo, hi = h.lam_range
        lams = lambdas_at(lo, hi, torch.linspace(0, 1, 5))
        want = self.target_spec.flatten({n: t.detach() for n, t in self.target_module.named_parameters()})
        with torch.no_grad():
            g = call_student("params_batch(lams)", h.params_batch, lams)
            gap = float((self.target_spec.flatten(g.mean, 1) - want).abs().max())
        if not gap <= 1e-5 * (1 + float(want.abs().max())):
            raise CheckFailed(
                f"{what}, the means differ from the target's own parameters by up to {format_value(gap)}; every form "
                "starts at the target's parameters for every lambda (use self.initial_mean(target) and start "
                "the lambda-dependent part at zero)"
            )
        if g.log_sigma is None:
            return
        ls = self.target_spec.flatten(g.log_sigma, 1).detach()
        if not bool(torch.allclose(ls, torch.full_like(ls, log_sigma), rtol=0, atol=1e-5)):
            lo_v, hi_v = float(ls.min()), float(ls.max())
            hint = (
                f" {format_value(lo_v)} is 2 x init_log_sigma: that is the log variance log sigma^2; flat_params returns "
                "the log standard deviation log sigma"
                if abs(lo_v - 2 * log_sigma) < 1e-4 and abs(hi_v - 2 * log_sigma) < 1e-4
                else " Start the log sigmas at self.initial_log_sigma() and the lambda-dependent part at zero"
            )
            found = (
                f"is {format_value(lo_v)} (sigma {format_value(math.exp(lo_v))})"
                if lo_v == hi_v
                else f"is between {format_value(lo_v)} and {format_value(hi_v)} (sigma {format_value(math.exp(lo_v))} to "
                f"{format_value(math.exp(hi_v))})"
            )
            raise CheckFailed(
                f"{what}, log_sigma {found}; it must be init_log_sigma = {log_sigma:g} (sigma "
                f"{format_value(math.exp(log_sigma))}) for every lambda.{hint}"
            )

    def c_init(self) -> str:
        self.initial(self.h, -3.0, "at initialisation (default init_log_sigma = -3)")
        self.initial(self.build(init_log_sigma=-2.0)[0], -2.0, "built with init_log_sigma=-2, at initialisation")
        return "starts at the target's parameters for every lambda, log sigma at init_log_sigma (-3 and -2)"

    def c_variational(self) -> str:
        h_var, h = self.build(variational=True)[0], self.build(variational=False)[0]
        u = torch.tensor([0.0, 0.5, 1.0])
        with torch.no_grad():
            out = call_student("flat_params(u) with variational=False", h.flat_params, u)
            if not (isinstance(out, tuple) and len(out) == 2) or out[1] is not None:
                raise CheckFailed(
                    "built with variational=False, flat_params must return (mean, None): a deterministic model "
                    "has no log sigma"
                )
            mean = out[0]
            if not isinstance(mean, Tensor) or tuple(mean.shape) != (3, self.target_spec.total):
                raise CheckFailed(
                    "built with variational=False, flat_params must return means of shape "
                    f"(3, {self.target_spec.total})"
                )
        n_var, n_det = self.stored(h_var), self.stored(h)
        if not n_det < n_var:
            raise CheckFailed(
                f"built with variational=False, the form still stores {n_det:,} values (with sigma: {n_var:,}); "
                "store no log-sigma tensors when self.variational is false"
            )
        self.initial(h, -3.0, "built with variational=False, at initialisation")
        return f"variational=False: means only, {n_det:,} stored values instead of {n_var:,}"

    def c_shapes(self) -> str:
        h = self.h
        lo, hi = self.range
        p, k = self.target_spec.total, 3
        u = torch.tensor([0.0, 0.5, 1.0])
        out = call_student("flat_params(u) with u of shape (3,)", h.flat_params, u)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise CheckFailed(f"flat_params(u) must return a tuple (mean, log_sigma); got {type(out).__name__}")
        mean, ls = out
        if not isinstance(mean, Tensor) or tuple(mean.shape) != (k, p):
            got = tuple(mean.shape) if isinstance(mean, Tensor) else type(mean).__name__
            raise CheckFailed(
                f"flat_params(u) for u of shape ({k},) must return means of shape ({k}, {p}) "
                f"(one row per u, one column per target parameter); got {got}"
            )
        if ls is None and h.variational:
            raise CheckFailed("variational=True, but flat_params returned log_sigma=None")
        if ls is not None and (not isinstance(ls, Tensor) or ls.shape != mean.shape):
            got = tuple(ls.shape) if isinstance(ls, Tensor) else type(ls).__name__
            raise CheckFailed(f"log_sigma must have the shape of the means, ({k}, {p}); got {got}")
        lam = math.sqrt(lo * hi)
        g = call_student(f"forward({lam:g})", h, lam)
        if not isinstance(g, GaussianParams):
            raise CheckFailed(f"forward(lam) must return GaussianParams; got {type(g).__name__}")
        for part, tensors in (("mean", g.mean), ("log_sigma", g.log_sigma)):
            if tensors is None:
                continue
            if list(tensors) != list(self.target_spec.names):
                raise CheckFailed(
                    f"forward(lam).{part} has names {list(tensors)}; expected the target's "
                    f"{list(self.target_spec.names)}"
                )
            for n, s in zip(self.target_spec.names, self.target_spec.shapes):
                if tuple(tensors[n].shape) != tuple(s):
                    raise CheckFailed(
                        f"forward(lam).{part}[{n!r}] has shape {tuple(tensors[n].shape)}; the target's is {tuple(s)}"
                    )
        kinds = "means and log sigmas" if g.log_sigma is not None else "means (deterministic)"
        return f"the target's {len(self.target_spec.names)} tensors with their shapes, {kinds}"

    def c_batch(self) -> str:
        h = self.h
        lo, hi = self.range
        lams = lambdas_at(lo, hi, torch.tensor([0.1, 0.5, 0.9]))
        with torch.no_grad():
            gb = call_student("params_batch(lams) for 3 lambdas", h.params_batch, lams)
            if tuple(gb.batch_shape) != (3,):
                raise CheckFailed(f"params_batch of 3 lambdas has batch_shape {gb.batch_shape}; expected (3,)")
            for i in range(3):
                one = flat_outputs(call_student(f"forward({float(lams[i]):g})", h, float(lams[i])), self.target_spec)
                gap = float((flat_outputs(gb[i], self.target_spec) - one).abs().max())
                if not gap <= 1e-5 * (1 + float(one.abs().max())):
                    raise CheckFailed(
                        f"forward({float(lams[i]):g}) and row {i} of params_batch differ by {format_value(gap)}: "
                        "flat_params must treat each row of u on its own"
                    )
        return "params_batch(lams) row i equals forward(lams[i]), for 3 lambdas"

    def c_finite(self) -> str:
        h = self.h
        lo, hi = self.range
        lams = lambdas_at(lo, hi, torch.linspace(0, 1, 11))
        with torch.no_grad():
            for lam in lams.tolist():
                g = call_student(f"forward({lam:g})", h, lam)
                for part, tensors in (("mean", g.mean), ("log_sigma", g.log_sigma)):
                    for n, t in (tensors or {}).items():
                        bad = ~torch.isfinite(t)
                        if bool(bad.any()):
                            raise CheckFailed(
                                f"forward({lam:g}).{part}[{n!r}] has {int(bad.sum())} non-finite "
                                f"values (nan or inf) out of {t.numel()}"
                            )
        return f"all outputs are finite at 11 lambdas from {lo:g} to {hi:g}"

    def c_grad(self) -> str:
        h = self.h
        lo, hi = self.range
        named = [(n, p) for n, p in h.named_parameters() if p.requires_grad]
        if not named:
            raise CheckFailed("the hypernetwork has no trainable parameters (register them as nn.Parameter)")
        with torch.enable_grad():
            g = call_student(f"forward({lo:g})", h, lo)
            first = next(iter(g.mean.values()))
            if not first.requires_grad:
                raise CheckFailed(
                    "forward(lam) returns tensors that do not require grad: they are cut from the "
                    "hypernetwork's parameters (.detach(), .data, torch.no_grad() or a round trip "
                    "through numpy/float), so training cannot change them"
                )
            lams = lambdas_at(lo, hi, torch.linspace(0, 1, 11))
            gb = call_student("params_batch(lams)", h.params_batch, lams)
            flat = flat_outputs(gb, self.target_spec, batch_dims=1)
            if not flat.requires_grad:
                raise CheckFailed("params_batch / flat_params return tensors that do not require grad")
            weights = torch.randn(flat.shape, generator=torch.Generator().manual_seed(1))
            h.zero_grad(set_to_none=True)
            call_student("backward through flat_params", (flat * weights).sum().backward)
        reached = [n for n, p in named if p.grad is not None and bool((p.grad != 0).any())]
        nonfinite = [n for n, p in named if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
        unused = [n for n, p in named if p.grad is None]
        h.zero_grad(set_to_none=True)
        if nonfinite:
            raise CheckFailed(f"gradients are not finite for {nonfinite}")
        if not reached:
            raise CheckFailed(f"no parameter gets a non-zero gradient (of {len(named)} parameter tensors)")
        msg = f"non-zero gradients reach {len(reached)} of {len(named)} parameter tensors"
        if unused:
            msg += f"; never used (stored but no gradient): {unused}"
        return msg

    def c_deterministic(self) -> str:
        h = self.h
        lo, hi = self.range
        with torch.no_grad():
            for lam in (lo, math.sqrt(lo * hi), hi):
                a = flat_outputs(call_student(f"forward({lam:g})", h, lam), self.target_spec)
                b = flat_outputs(call_student(f"forward({lam:g})", h, lam), self.target_spec)
                if not torch.allclose(a, b, rtol=0.0, atol=0.0, equal_nan=True):
                    raise CheckFailed(
                        f"two calls of forward({lam:g}) differ by up to {format_value(float((a - b).abs().max()))}: "
                        "G must be a function of lambda (no random draws or state changes in forward)"
                    )
        return "two calls with the same lambda give identical outputs"

    def c_continuous(self) -> str:
        h = self.h
        if self.allow_jumps:
            raise CheckSkipped("the grader was called with allow_jumps=True")
        lo, hi = self.range
        hp = call_student("copy.deepcopy(hypernet)", copy.deepcopy, h)
        gen = torch.Generator().manual_seed(2)
        with torch.no_grad():
            # Random perturbation, so that every stored part varies with lambda (fresh forms
            # usually start constant in lambda).
            for p in hp.parameters():
                s = float(p.std()) if p.numel() > 1 else 0.0
                p.add_(torch.randn(p.shape, generator=gen) * (0.1 * s if s > 0 else 0.1))
            delta = 1e-4
            u = torch.linspace(0, 1, 41)
            left, right = (u - delta).clamp(0, 1), (u + delta).clamp(0, 1)
            lams = lambdas_at(lo, hi, torch.cat([u, left, right]))
            g = flat_outputs(call_student("params_batch(lams)", hp.params_batch, lams), self.target_spec, batch_dims=1)
            mid, a, b = g[:41], g[41:82], g[82:]
            spread = float((mid - mid[:1]).abs().max())
            jumps = (b - a).abs().amax(dim=1)
            worst = int(jumps.argmax())
            jump = float(jumps[worst])
        if not math.isfinite(spread) or not math.isfinite(jump):
            raise CheckFailed("outputs are not finite after a small random change of the parameters")
        if spread <= 1e-7:
            return "constant in lambda (after a random change of its parameters)"
        if jump > 0.02 * spread + 1e-5:
            at = float(lambdas_at(lo, hi, u[worst : worst + 1])[0])
            raise CheckFailed(
                f"a step of {2 * delta:g} in u = log-position of lambda changes the output by up to "
                f"{format_value(jump)} (near lambda = {at:.4g}), while the output varies by {format_value(spread)} over the "
                "whole range: G jumps. G must be continuous in lambda"
            )
        return (
            f"a step of {2 * delta:g} in u changes the output by at most {format_value(jump)} "
            f"(it varies by {format_value(spread)} over the range), with randomly perturbed parameters"
        )

    def c_bad_lambda(self) -> str:
        h = self.h
        problems = []
        for bad in BAD_LAMBDAS:
            try:
                h(bad)
            except ValueError:
                continue
            except Exception as err:
                problems.append(f"forward({bad}) raised {type(err).__name__} instead of ValueError")
            else:
                problems.append(f"forward({bad}) returned parameters")
        if problems:
            raise CheckFailed(
                "; ".join(problems) + ". Encode lambda with self.encode(lam), which rejects values "
                "that are not positive and finite with a ValueError"
            )
        return "forward raises ValueError for " + ", ".join(str(b) for b in BAD_LAMBDAS)

    def objective(self, h: Hypernet, module: nn.Module, loss: str) -> float:
        """Mean over 7 lambdas of the loss with the mean weights (no sampling noise)."""
        lo, hi = self.range
        total = 0.0
        lams = lambdas_at(lo, hi, torch.linspace(0, 1, 7)).tolist()
        with torch.no_grad():
            for lam in lams:
                g = h(lam)
                logits = torch.func.functional_call(module, g.mean, (self.data.x,))
                nll = F.cross_entropy(logits, self.data.y)
                total += float(nll + losses.penalty(loss, g, lam, len(self.data)))
        return total / len(lams)

    def c_train(self) -> str:
        from ..train import LogUniform, train

        h, module = self.build()
        lo, hi = h.lam_range
        loss = "variational" if h.variational else "base"
        batch = max(8, math.ceil(len(self.data) / 8))
        epochs = max(1, math.ceil(self.train_steps / math.ceil(len(self.data) / batch)))
        u_probe = torch.linspace(0, 1, 3)
        with torch.no_grad():
            before_g = flat_outputs(call_student("params_batch", h.params_batch, lambdas_at(lo, hi, u_probe)), self.target_spec, 1)
        before = call_student("forward (objective before training)", self.objective, h, module, loss)
        hist = call_student(
            f"varhyper_mini.train(loss={loss!r})",
            train,
            h,
            module,
            self.data,
            loss,
            lam_prior=LogUniform(lo, hi),
            epochs=epochs,
            lr=1e-3,
            batch_size=batch,
            seed=0,
            progress=False,
        )
        after = call_student("forward (objective after training)", self.objective, h, module, loss)
        with torch.no_grad():
            after_g = flat_outputs(call_student("params_batch", h.params_batch, lambdas_at(lo, hi, u_probe)), self.target_spec, 1)
        steps = epochs * math.ceil(len(self.data) / batch)
        setting = f"{steps} Adam steps of varhyper_mini.train(loss={loss!r}), batch {batch}, lr 1e-3"
        if not all(math.isfinite(v) for v in hist.loss) or not math.isfinite(after):
            raise CheckFailed(f"the loss is not finite during or after {setting}")
        if not after < before:
            raise CheckFailed(
                f"the objective (mean over 7 lambdas, mean weights) did not decrease: "
                f"{format_value(before)} -> {format_value(after)} after {setting}"
            )
        self.trained = (before_g, after_g)
        return f"objective (mean over 7 lambdas, mean weights) {format_value(before)} -> {format_value(after)} after {setting}"

    def c_lambda_matters(self) -> str:
        before_g, after_g = self.trained
        lo, hi = self.range
        moved = float((after_g - before_g).norm())
        # How G depends on lambda, G(u) - G(0) at u = 0.5 and 1, before and after training: training
        # must change it (a fixed offset in u, or no u at all, leaves it unchanged).
        dep_before, dep_after = before_g[1:] - before_g[:1], after_g[1:] - after_g[:1]
        learned = float((dep_after - dep_before).norm())
        gap = float(dep_after[-1].norm())
        if not math.isfinite(moved) or moved == 0.0:
            raise CheckFailed("training did not change G, so the effect of lambda could not be tested")
        if self.lambda_free:
            if gap > 1e-6 * (1 + float(after_g.abs().max())):
                raise CheckFailed(f"graded as a form that ignores lambda, but G({lo:g}) and G({hi:g}) differ by {format_value(gap)}")
            return "the same model for every lambda, as the caller declared (lambda_free=True)"
        if not learned > 0.01 * moved + 1e-6:
            raise CheckFailed(
                f"training on lambdas drawn from [{lo:g}, {hi:g}] moved G by {format_value(moved)} (norm), but changed "
                f"how G depends on lambda by only {format_value(learned)}: the form ignores lambda, or its dependence on "
                "lambda is fixed rather than learned. Compute G from u (self.encode(lam)) through trained parameters"
            )
        return (
            f"training changed how G depends on lambda by {format_value(learned)} (G moved by {format_value(moved)}); after "
            f"training |G({hi:g}) - G({lo:g})| = {format_value(gap)}"
        )


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
        A ``GradeReport``; ``report.passed`` is True when every check ran and passed.
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
    checks = _HypernetChecks(
        cls_or_factory,
        name,
        target_module,
        data,
        lam_range,
        report,
        train_steps=train_steps,
        form=form,
        lambda_free=lambda_free,
        allow_jumps=allow_jumps,
    )
    checks.run_all(CheckRunner(report, seed))
    if verbose:
        print(report)
    return report


def check_mlp_hypernet(
    cls_or_factory: type[Hypernet] | Callable[..., Hypernet], target: str | nn.Module = "mnist", **kwargs
) -> GradeReport:
    """Check assignment 1's ``MLPHypernet``: ``check_hypernet`` with the form the assignment specifies.

    On top of the contract, the stored-value count must be 2P(H + 1) + 2H (P(H + 1) + 2H with
    ``variational=False``) for ``hidden`` H = 1 and 5. Keyword arguments go to ``check_hypernet``.
    """
    return check_hypernet(cls_or_factory, target, form=MLP_HYPERNET, **kwargs)




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
    the data are missing.
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
        return self.error is None and all(r.passed for _, r in self.graded)

    @property
    def verdict(self) -> str:
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
        return {f"{label} {res.name}": res for label, r in self.graded for res in r}

    def first_problem(self) -> str:
        if self.error is not None:
            return self.error
        for label, r in self.graded:
            for res in r:
                if not res.passed or res.skipped:
                    return f"{label} {res.name}: {res.message}"
        return ""


_SYMBOL = {"PASS": "P", "FAIL": "F", "NOT RUN": "-", "SKIP": "S"}


def _columns(rows: list[_Row]) -> list[str]:
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
