"""The contract checks of a hypernetwork form: how it is built, what it stores, returns and starts at.

Each check is a function of the ``FormUnderTest`` that returns a message when the form passes. It
raises ``CheckFailed`` when the form breaks the contract, and ``StudentCodeError`` when the
student's code raises (``CheckRunner`` records both as a failure). All but ``check_builds`` use
the hypernetwork ``form.h`` that ``check_builds`` built.
"""

from __future__ import annotations

import math
import time

import torch
from torch import Tensor, nn

from ..gaussian import GaussianParams
from ..hypernets import Hypernet
from .hypernet_form import FormUnderTest, format_value, lambdas_at
from .report import CheckFailed, StudentCodeError, call_student, refusal_problems

__all__ = [
    "BAD_LAMBDAS",
    "check_builds",
    "check_initial_state",
    "check_output_shapes",
    "check_registered",
    "check_rejects_bad_lambda",
    "check_stored_values",
    "check_variational_false",
]

#: Lambdas that ``forward`` must reject with a ``ValueError``.
BAD_LAMBDAS = (0.0, -1.0, float("nan"), float("inf"))


def _unregistered(h: nn.Module) -> list[str]:
    """Tensor attributes that require grad but are not registered, so neither trained nor counted."""
    found = []
    for mod_name, mod in h.named_modules():
        for attr, val in vars(mod).items():
            if isinstance(val, Tensor) and not isinstance(val, nn.Parameter) and val.requires_grad:
                found.append(f"{mod_name}.{attr}" if mod_name else attr)
    return found


def check_builds(form: FormUnderTest) -> str:
    """Check "builds": the form builds for the target as a ``Hypernet`` with the target's spec; sets ``form.h``.

    Raises:
        CheckFailed: the form does not build as a ``Hypernet``, or its spec is not the target's.
        StudentCodeError: the student's constructor raised.
    """
    t0 = time.perf_counter()
    h, module = form.build()
    if h.spec != form.target_spec:
        raise CheckFailed(
            f"the hypernetwork's spec does not describe the target: pass the target module to "
            f"Hypernet.__init__ (super().__init__(target, **kwargs)); spec names {h.spec.names}"
        )
    form.h, form.range = h, h.lam_range
    return f"{type(h).__name__} built in {time.perf_counter() - t0:.2f} s; lambda range {h.lam_range}"


def check_registered(form: FormUnderTest) -> str:
    """Check "stored tensors are parameters": every stored tensor that requires grad is an ``nn.Parameter``.

    Raises:
        CheckFailed: a stored tensor that requires grad is not registered, or there is no trainable
            parameter at all.
    """
    h = form.h
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


def check_stored_values(form: FormUnderTest) -> str:
    """Check "stored values": ``n_stored()`` counts the parameters, and matches the assignment's formula."""
    p = form.target_spec.total
    n = form.report.n_stored = form.stored(form.h)
    msg = f"stores {n:,} values = {n / p:.2f} x the target's {p:,} parameters"
    if form.asked is None:
        return msg
    for size in form.asked.sizes:
        _check_form_count(form, form.build(**{form.asked.size_arg: size})[0], size, True)
        try:  # a form that ignores variational=False fails 'variational=False' instead
            det = form.build(**{form.asked.size_arg: size, "variational": False})[0]
            with torch.no_grad():
                honoured = call_student("flat_params(u)", det.flat_params, torch.zeros(1))[1] is None
        except (CheckFailed, StudentCodeError):
            honoured = False
        if honoured:
            _check_form_count(form, det, size, False)
    sizes = ", ".join(str(v) for v in form.asked.sizes)
    return f"{msg}; matches {form.asked.formula} for {form.asked.size_arg} = {sizes}, with and without sigma"


def _check_form_count(form: FormUnderTest, h: Hypernet, size: int, var: bool) -> None:
    """Fail unless ``h``, built with ``size``, stores what ``form.asked`` says it does."""
    p = form.target_spec.total
    got, want = form.stored(h), form.asked.stored(p, size, var)
    if got != want:
        raise CheckFailed(
            f"with {form.asked.size_arg}={size} and variational={var}, the form stores {got:,} values; the "
            f"assignment's form stores {form.asked.formula} = {want:,} (P = {p:,}). Store exactly the "
            "tensors the assignment lists, each as an nn.Parameter"
        )


def _check_initial(form: FormUnderTest, h: Hypernet, log_sigma: float, what: str) -> None:
    """Fail unless ``h`` gives the target's parameters and ``log_sigma`` at 5 lambdas."""
    lo, hi = h.lam_range
    lams = lambdas_at(lo, hi, torch.linspace(0, 1, 5))
    want = form.target_spec.flatten({n: t.detach() for n, t in form.target_module.named_parameters()})
    with torch.no_grad():
        g = call_student("params_batch(lams)", h.params_batch, lams)
        gap = float((form.target_spec.flatten(g.mean, 1) - want).abs().max())
    if not gap <= 1e-5 * (1 + float(want.abs().max())):
        raise CheckFailed(
            f"{what}, the means differ from the target's own parameters by up to {format_value(gap)}; every form "
            "starts at the target's parameters for every lambda (use self.initial_mean(target) and start "
            "the lambda-dependent part at zero)"
        )
    if g.log_sigma is None:
        return
    ls = form.target_spec.flatten(g.log_sigma, 1).detach()
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


def check_initial_state(form: FormUnderTest) -> str:
    """Check "initial state": the target's parameters for every lambda, log sigma at ``init_log_sigma``."""
    _check_initial(form, form.h, -3.0, "at initialisation (default init_log_sigma = -3)")
    _check_initial(form, form.build(init_log_sigma=-2.0)[0], -2.0, "built with init_log_sigma=-2, at initialisation")
    return "starts at the target's parameters for every lambda, log sigma at init_log_sigma (-3 and -2)"


def check_variational_false(form: FormUnderTest) -> str:
    """Check "variational=False": means only, fewer stored values, the same initial state.

    Raises:
        CheckFailed: built with ``variational=False``, ``flat_params`` does not return ``(mean, None)``
            with means of shape (3, P), the form stores no fewer values than with sigma, or it does
            not start at the target's parameters.
        StudentCodeError: the student's code raised.
    """
    h_var, h = form.build(variational=True)[0], form.build(variational=False)[0]
    u = torch.tensor([0.0, 0.5, 1.0])
    with torch.no_grad():
        out = call_student("flat_params(u) with variational=False", h.flat_params, u)
        if not (isinstance(out, tuple) and len(out) == 2) or out[1] is not None:
            raise CheckFailed(
                "built with variational=False, flat_params must return (mean, None): a deterministic model "
                "has no log sigma"
            )
        mean = out[0]
        if not isinstance(mean, Tensor) or tuple(mean.shape) != (3, form.target_spec.total):
            raise CheckFailed(
                f"built with variational=False, flat_params must return means of shape (3, {form.target_spec.total})"
            )
    n_var, n_det = form.stored(h_var), form.stored(h)
    if not n_det < n_var:
        raise CheckFailed(
            f"built with variational=False, the form still stores {n_det:,} values (with sigma: {n_var:,}); "
            "store no log-sigma tensors when self.variational is false"
        )
    _check_initial(form, h, -3.0, "built with variational=False, at initialisation")
    return f"variational=False: means only, {n_det:,} stored values instead of {n_var:,}"


def check_output_shapes(form: FormUnderTest) -> str:
    """Check "output names and shapes": ``flat_params`` and ``forward`` return the target's tensors.

    ``flat_params(u)`` for u of shape (3,) must return ``(mean, log_sigma)``, each of shape (3, P)
    (P = the target's parameter count; ``log_sigma`` None only for a deterministic form), and
    ``forward(lam)`` a ``GaussianParams`` with the target's names and shapes.

    Raises:
        CheckFailed: a return value of another type, names or shape than these.
        StudentCodeError: the student's ``flat_params`` or ``forward`` raised.
    """
    h = form.h
    lo, hi = form.range
    p, k = form.target_spec.total, 3
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
        if list(tensors) != list(form.target_spec.names):
            raise CheckFailed(
                f"forward(lam).{part} has names {list(tensors)}; expected the target's {list(form.target_spec.names)}"
            )
        for n, s in zip(form.target_spec.names, form.target_spec.shapes):
            if tuple(tensors[n].shape) != tuple(s):
                raise CheckFailed(
                    f"forward(lam).{part}[{n!r}] has shape {tuple(tensors[n].shape)}; the target's is {tuple(s)}"
                )
    kinds = "means and log sigmas" if g.log_sigma is not None else "means (deterministic)"
    return f"the target's {len(form.target_spec.names)} tensors with their shapes, {kinds}"


def check_rejects_bad_lambda(form: FormUnderTest) -> str:
    """Check "rejects bad lambda": ``forward`` raises ``ValueError`` for each of ``BAD_LAMBDAS``.

    Raises:
        CheckFailed: ``forward`` returned parameters, or raised another exception, for a bad lambda.
    """
    h = form.h
    problems = refusal_problems(h, BAD_LAMBDAS, lambda bad: f"forward({bad})", "returned parameters")
    if problems:
        raise CheckFailed(
            "; ".join(problems) + ". Encode lambda with self.encode(lam), which rejects values "
            "that are not positive and finite with a ValueError"
        )
    return "forward raises ValueError for " + ", ".join(str(b) for b in BAD_LAMBDAS)
