"""The numerical and training checks of a hypernetwork form: G(lambda) as a function, and training it.

The outputs must be finite, differentiable, deterministic, the same in a batch as one by one and
continuous in lambda; training with ``varhyper_mini.train`` must reduce the loss and learn how G
depends on lambda. Each check is a function of the ``FormUnderTest`` (using the hypernetwork
``form.h`` built by "builds") that returns a message when the form passes; it raises
``CheckFailed`` when the form fails, and ``StudentCodeError`` when the student's code raises.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import losses
from ..hypernets import Hypernet
from .hypernet_form import FormUnderTest, flat_outputs, format_value, lambdas_at
from .report import CheckFailed, CheckSkipped, call_student

__all__ = [
    "check_batch",
    "check_continuous",
    "check_deterministic",
    "check_differentiable",
    "check_finite",
    "check_lambda_matters",
    "check_training",
]


def check_batch(form: FormUnderTest) -> str:
    """Check "batch agrees with single lambda": row i of ``params_batch(lams)`` is ``forward(lams[i])``.

    Raises:
        CheckFailed: ``params_batch`` of 3 lambdas has another batch shape than (3,), or a row
            differs from ``forward`` at its lambda by more than 1e-5 (relative to the values).
        StudentCodeError: the student's code raised.
    """
    h = form.h
    lo, hi = form.range
    lams = lambdas_at(lo, hi, torch.tensor([0.1, 0.5, 0.9]))
    with torch.no_grad():
        gb = call_student("params_batch(lams) for 3 lambdas", h.params_batch, lams)
        if tuple(gb.batch_shape) != (3,):
            raise CheckFailed(f"params_batch of 3 lambdas has batch_shape {gb.batch_shape}; expected (3,)")
        for i in range(3):
            one = flat_outputs(call_student(f"forward({float(lams[i]):g})", h, float(lams[i])), form.target_spec)
            gap = float((flat_outputs(gb[i], form.target_spec) - one).abs().max())
            if not gap <= 1e-5 * (1 + float(one.abs().max())):
                raise CheckFailed(
                    f"forward({float(lams[i]):g}) and row {i} of params_batch differ by {format_value(gap)}: "
                    "flat_params must treat each row of u on its own"
                )
    return "params_batch(lams) row i equals forward(lams[i]), for 3 lambdas"


def check_finite(form: FormUnderTest) -> str:
    """Check "finite values": every output is finite at 11 lambdas across the range.

    Raises:
        CheckFailed: an output tensor holds NaN or inf.
        StudentCodeError: the student's code raised.
    """
    h = form.h
    lo, hi = form.range
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


def check_differentiable(form: FormUnderTest) -> str:
    """Check "differentiable": gradients of the outputs reach the parameters, finite and not all zero.

    Raises:
        CheckFailed: no trainable parameter, outputs that do not require grad, gradients that are
            not finite, or no non-zero gradient at all.
        StudentCodeError: the student's code raised.
    """
    h = form.h
    lo, hi = form.range
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
        flat = flat_outputs(gb, form.target_spec, batch_dims=1)
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


def check_deterministic(form: FormUnderTest) -> str:
    """Check "deterministic": two calls of ``forward`` with the same lambda give identical outputs.

    Raises:
        CheckFailed: two calls at one lambda differ.
        StudentCodeError: the student's code raised.
    """
    h = form.h
    lo, hi = form.range
    with torch.no_grad():
        for lam in (lo, math.sqrt(lo * hi), hi):
            a = flat_outputs(call_student(f"forward({lam:g})", h, lam), form.target_spec)
            b = flat_outputs(call_student(f"forward({lam:g})", h, lam), form.target_spec)
            if not torch.allclose(a, b, rtol=0.0, atol=0.0, equal_nan=True):
                raise CheckFailed(
                    f"two calls of forward({lam:g}) differ by up to {format_value(float((a - b).abs().max()))}: "
                    "G must be a function of lambda (no random draws or state changes in forward)"
                )
    return "two calls with the same lambda give identical outputs"


def check_continuous(form: FormUnderTest) -> str:
    """Check "continuous in lambda": no jumps.

    Raises:
        CheckSkipped: ``form.allow_jumps`` is set.
        CheckFailed: after a small random change of the parameters, the outputs are not finite, or
            a step of 2e-4 in u (the log-position of lambda) changes them by more than 2% of their
            spread over the range (plus 1e-5).
        StudentCodeError: the student's code raised.
    """
    h = form.h
    if form.allow_jumps:
        raise CheckSkipped("the grader was called with allow_jumps=True")
    lo, hi = form.range
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
        g = flat_outputs(call_student("params_batch(lams)", hp.params_batch, lams), form.target_spec, batch_dims=1)
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
            f"{format_value(jump)} (near lambda = {at:.4g}), while the output varies by {format_value(spread)} "
            "over the whole range: G jumps. G must be continuous in lambda"
        )
    return (
        f"a step of {2 * delta:g} in u changes the output by at most {format_value(jump)} "
        f"(it varies by {format_value(spread)} over the range), with randomly perturbed parameters"
    )


def _objective(form: FormUnderTest, h: Hypernet, module: nn.Module, loss: str) -> float:
    """Mean over 7 lambdas of the loss with the mean weights (no sampling noise)."""
    lo, hi = form.range
    total = 0.0
    lams = lambdas_at(lo, hi, torch.linspace(0, 1, 7)).tolist()
    with torch.no_grad():
        for lam in lams:
            g = h(lam)
            logits = torch.func.functional_call(module, g.mean, (form.data.x,))
            nll = F.cross_entropy(logits, form.data.y)
            total += float(nll + losses.penalty(loss, g, lam, len(form.data)))
    return total / len(lams)


def check_training(form: FormUnderTest) -> str:
    """Check "training reduces the loss": ``varhyper_mini.train`` lowers the objective; sets ``form.trained``.

    Raises:
        CheckFailed: the loss is not finite during or after training, or the objective (mean over 7
            lambdas, mean weights) did not decrease.
        StudentCodeError: the student's code raised.
    """
    from ..training import LogUniform, train

    h, module = form.build()
    lo, hi = h.lam_range
    loss = "variational" if h.variational else "base"
    batch = max(8, math.ceil(len(form.data) / 8))
    epochs = max(1, math.ceil(form.train_steps / math.ceil(len(form.data) / batch)))
    u_probe = torch.linspace(0, 1, 3)
    with torch.no_grad():
        before_g = flat_outputs(
            call_student("params_batch", h.params_batch, lambdas_at(lo, hi, u_probe)), form.target_spec, 1
        )
    before = call_student("forward (objective before training)", _objective, form, h, module, loss)
    hist = call_student(
        f"varhyper_mini.train(loss={loss!r})",
        train,
        h,
        module,
        form.data,
        loss,
        lam_prior=LogUniform(lo, hi),
        epochs=epochs,
        lr=1e-3,
        batch_size=batch,
        seed=0,
        progress=False,
    )
    after = call_student("forward (objective after training)", _objective, form, h, module, loss)
    with torch.no_grad():
        after_g = flat_outputs(
            call_student("params_batch", h.params_batch, lambdas_at(lo, hi, u_probe)), form.target_spec, 1
        )
    steps = epochs * math.ceil(len(form.data) / batch)
    setting = f"{steps} Adam steps of varhyper_mini.train(loss={loss!r}), batch {batch}, lr 1e-3"
    if not all(math.isfinite(v) for v in hist.loss) or not math.isfinite(after):
        raise CheckFailed(f"the loss is not finite during or after {setting}")
    if not after < before:
        raise CheckFailed(
            f"the objective (mean over 7 lambdas, mean weights) did not decrease: "
            f"{format_value(before)} -> {format_value(after)} after {setting}"
        )
    form.trained = (before_g, after_g)
    return (
        f"objective (mean over 7 lambdas, mean weights) {format_value(before)} -> {format_value(after)} after {setting}"
    )


def check_lambda_matters(form: FormUnderTest) -> str:
    """Check "lambda matters": training changes how G depends on lambda (unless ``form.lambda_free``).

    Needs ``form.trained``, which ``check_training`` sets.

    Raises:
        CheckFailed: training did not change G; or, for a ``lambda_free`` form, G differs between
            the ends of the range; or else training hardly changed how G depends on lambda.
    """
    before_g, after_g = form.trained
    lo, hi = form.range
    moved = float((after_g - before_g).norm())
    # How G depends on lambda, G(u) - G(0) at u = 0.5 and 1, before and after training: training
    # must change it (a fixed offset in u, or no u at all, leaves it unchanged).
    dep_before, dep_after = before_g[1:] - before_g[:1], after_g[1:] - after_g[:1]
    learned = float((dep_after - dep_before).norm())
    gap = float(dep_after[-1].norm())
    if not math.isfinite(moved) or moved == 0.0:
        raise CheckFailed("training did not change G, so the effect of lambda could not be tested")
    if form.lambda_free:
        if gap > 1e-6 * (1 + float(after_g.abs().max())):
            raise CheckFailed(
                f"graded as a form that ignores lambda, but G({lo:g}) and G({hi:g}) differ by {format_value(gap)}"
            )
        return "the same model for every lambda, as the caller declared (lambda_free=True)"
    if not learned > 0.01 * moved + 1e-6:
        raise CheckFailed(
            f"training on lambdas drawn from [{lo:g}, {hi:g}] moved G by {format_value(moved)} (norm), but changed "
            f"how G depends on lambda by only {format_value(learned)}: the form ignores lambda, or its dependence on "
            "lambda is fixed rather than learned. Compute G from u (self.encode(lam)) through trained parameters"
        )
    return (
        f"training changed how G depends on lambda by {format_value(learned)} (G moved by {format_value(moved)}); "
        f"after training |G({hi:g}) - G({lo:g})| = {format_value(gap)}"
    )
