"""Assignment 2's checker: a complexity prior and its KL penalty.

``check_prior(kl_penalty, log_prior)`` checks any prior: ``log_prior`` is a normalised density,
``kl_penalty`` is elementwise, finite, non-negative, differentiable, favours small weights and
agrees with a Monte Carlo estimate of the KL. ``check_laplace_prior`` adds that ``log_prior`` is
the Laplace prior the assignment asks for (``laplace_log_prior``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .report import CheckFailed, CheckRunner, GradeReport, call_student

__all__ = ["LAPLACE_SCALE", "check_laplace_prior", "check_prior", "laplace_log_prior"]

# (mean, log_sigma) pairs at which kl_penalty is compared with a Monte Carlo estimate.
_MC_POINTS = ((0.0, -3.0), (0.5, -2.0), (-1.0, -1.0), (2.0, 0.0), (0.05, -5.0), (-0.3, 0.5))


def check_prior(
    kl_penalty: Callable[[Tensor, Tensor], Tensor],
    log_prior: Callable[[Tensor], Tensor],
    *,
    mc_samples: int = 200_000,
    seed: int = 0,
    verbose: bool = True,
    expected: tuple[str, Callable[[Tensor], Tensor]] | None = None,
) -> GradeReport:
    """Check a complexity prior and its KL penalty, and print a report.

    Args:
        kl_penalty: ``kl_penalty(mean, log_sigma)``, elementwise
            KL(N(mean, exp(log_sigma)^2) || prior), a tensor of the inputs' shape.
        log_prior: ``log_prior(w)``, the prior's elementwise log density.
        mc_samples: draws per point for the Monte Carlo estimate of the KL.
        expected: (description, log density) of the prior an assignment asks for; then
            ``log_prior`` must be that prior. ``check_laplace_prior`` passes assignment 2's.

    When ``kl_penalty`` is not elementwise, the checks that need one KL per weight are not run
    (one cause, one failure).

    Returns:
        A ``GradeReport``; ``report.passed`` is True when every check ran and passed. Nothing the
        student's functions raise or return escapes: it is recorded as a failed check.
    """
    name = f"{getattr(kl_penalty, '__name__', 'kl_penalty')} / {getattr(log_prior, '__name__', 'log_prior')}"
    setting = f"KL(N(mean, sigma^2) || prior) against {mc_samples:,}-sample Monte Carlo estimates"
    report = GradeReport(name, setting)
    runner = CheckRunner(report, seed)
    dt = torch.float64

    malformed: list[str] = []

    def prior(w: Tensor) -> Tensor:
        """``log_prior(w)`` in float64, failing unless it is a tensor of the shape of ``w``."""
        with torch.no_grad():
            lp = call_student("log_prior(w)", log_prior, w)
        if not isinstance(lp, Tensor) or lp.shape != w.shape:
            malformed.append("log_prior")
            got = tuple(lp.shape) if isinstance(lp, Tensor) else type(lp).__name__
            raise CheckFailed(f"log_prior(w) must return one log density per entry, shape {tuple(w.shape)}; got {got}")
        return lp.to(dt)

    def c_density() -> str:
        t = torch.linspace(-math.pi / 2, math.pi / 2, 400_001, dtype=dt)[1:-1]
        w = torch.tan(t)  # w = tan(t) maps the real line onto a finite interval, tails included
        lp = prior(w)
        if bool(torch.isnan(lp).any()) or bool((lp == math.inf).any()):
            raise CheckFailed("log_prior(w) returns nan or +inf for some w")
        dens = torch.exp(lp.to(dt)) / torch.cos(t) ** 2
        z = float(torch.trapezoid(dens, t))
        if not abs(z - 1.0) < 2e-3:
            raise CheckFailed(f"exp(log_prior) integrates to {z:.4f} over the real line, not 1: add the normaliser")
        return f"exp(log_prior) integrates to {z:.4f}"

    def kl(m: Tensor, s: Tensor) -> Tensor:
        """``kl_penalty(m, s)``, failing unless it is a tensor of the inputs' shape."""
        shape = tuple(m.shape)
        out = call_student(f"kl_penalty on tensors of shape {shape}", kl_penalty, m, s)
        if not isinstance(out, Tensor) or tuple(out.shape) != shape:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise CheckFailed(
                f"kl_penalty(mean, log_sigma) must be elementwise (one KL per weight), shape {shape}; "
                f"got {got}. Do not sum over the weights: the training loop does"
            )
        return out

    def c_shape() -> str:
        for shape in ((4, 5), (2, 3, 7), (6,)):
            kl(torch.randn(shape), torch.randn(shape) - 2)
        return "one KL per weight, for inputs of several shapes"

    def c_expected() -> str:
        what, ref = expected
        w = torch.linspace(-4, 4, 161, dtype=dt)
        lp, want = prior(w), ref(w)
        gap = (lp - want).abs()
        if not float(gap.max()) <= 1e-4 * (1 + float(want.abs().max())):
            i = int(gap.argmax())
            gauss = -0.5 * w * w - 0.5 * math.log(2 * math.pi)
            hint = " (that is the Gaussian N(0, 1) log density)" if bool(torch.allclose(lp, gauss, atol=1e-4)) else ""
            raise CheckFailed(
                f"the assignment asks for {what}, but log_prior({float(w[i]):g}) = {float(lp[i]):.4f}{hint}, "
                f"where {what} has log density {float(want[i]):.4f}"
            )
        return f"log_prior is {what}"

    def grid() -> tuple[Tensor, Tensor]:
        m, s = torch.meshgrid(torch.linspace(-10, 10, 41), torch.linspace(-10, 3, 27), indexing="ij")
        return m.reshape(-1), s.reshape(-1)

    def c_finite() -> str:
        m, s = grid()
        with torch.no_grad():
            out = kl(m, s)
        bad = ~torch.isfinite(out)
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise CheckFailed(
                f"kl_penalty is not finite at {int(bad.sum())} of {len(m)} grid points, e.g. "
                f"mean={float(m[i]):g}, log_sigma={float(s[i]):g}"
            )
        return "finite for mean in [-10, 10], log_sigma in [-10, 3]"

    def c_nonneg() -> str:
        m, s = grid()
        with torch.no_grad():
            out = kl(m, s)
        i = int(out.argmin())
        if float(out[i]) < -1e-4:
            raise CheckFailed(
                f"kl_penalty is negative ({float(out[i]):.4g}) at mean={float(m[i]):g}, "
                f"log_sigma={float(s[i]):g}; a KL divergence is never negative"
            )
        return f"smallest value on the grid: {float(out[i]):.3g}"

    def c_mc() -> str:
        gen = torch.Generator().manual_seed(seed)
        rows = []
        for mu, ls in _MC_POINTS:
            sigma = math.exp(ls)
            eps = torch.randn(mc_samples, generator=gen, dtype=dt)
            w = mu + sigma * eps
            log_q = -0.5 * eps**2 - ls - 0.5 * math.log(2 * math.pi)
            lp = prior(w)
            with torch.no_grad():
                got = float(kl(torch.tensor([mu]), torch.tensor([ls]))[0])
            terms = log_q - lp
            est, se = float(terms.mean()), float(terms.std()) / math.sqrt(mc_samples)
            ok = abs(got - est) <= 4 * se + 2e-3 * (1 + abs(est))
            rows.append((mu, ls, got, est, se, ok))
        bad = [r for r in rows if not r[5]]
        if bad:
            mu, ls, got, est, se, _ = bad[0]
            raise CheckFailed(
                f"kl_penalty({mu:g}, {ls:g}) = {got:.4f}, but a Monte Carlo estimate of "
                f"E_q[log q(w) - log_prior(w)] is {est:.4f} +- {se:.4f} ({len(bad)} of {len(rows)} points "
                "disagree)"
            )
        return f"agrees with Monte Carlo at {len(rows)} (mean, log_sigma) points"

    def c_grad() -> str:
        m = torch.tensor([0.3, -1.0, 2.0], requires_grad=True)
        s = torch.tensor([-3.0, -1.0, 0.0], requires_grad=True)
        with torch.enable_grad():
            out = kl(m, s)
            if not out.requires_grad:
                raise CheckFailed("kl_penalty's output does not require grad: write it with torch operations")
            call_student("backward through kl_penalty", out.sum().backward)
        for n, t in (("mean", m), ("log_sigma", s)):
            if t.grad is None or not bool(torch.isfinite(t.grad).all()) or not bool((t.grad != 0).any()):
                raise CheckFailed(f"the gradient with respect to {n} is missing, zero or not finite: {t.grad}")
        return "finite, non-zero gradients with respect to mean and log_sigma"

    def c_small() -> str:
        with torch.no_grad():
            for ls in (-3.0, -1.0):
                m = torch.tensor([0.0, 1.0, 3.0])
                out = kl(m, torch.full((3,), ls))
                if not (float(out[0]) < float(out[1]) < float(out[2])):
                    raise CheckFailed(
                        f"at log_sigma={ls:g}, kl_penalty for mean 0, 1, 3 is {[round(float(v), 4) for v in out]}; "
                        "a complexity prior centred at zero should charge more for larger weights"
                    )
        return "charges more for means further from zero"

    runner.run("log_prior is a density", c_density)
    bad_lp = "log_prior does not return one log density per entry (see 'log_prior is a density')"
    bad_lp = bad_lp if malformed else None
    if expected is not None:
        runner.run("the asked-for prior", c_expected, bad_lp)
    shaped = runner.run("elementwise", c_shape)
    blocked = None if shaped.passed else "kl_penalty does not return one KL per weight (see 'elementwise')"
    runner.run("finite values", c_finite, blocked)
    runner.run("non-negative", c_nonneg, blocked)
    runner.run("matches Monte Carlo", c_mc, blocked or bad_lp)
    runner.run("differentiable", c_grad, blocked)
    runner.run("favours small weights", c_small, blocked)
    if verbose:
        print(report)
    return report


#: Assignment 2's prior: Laplace with scale b = 1 / sqrt(2), the variance 1 of N(0, 1).
LAPLACE_SCALE = 1 / math.sqrt(2)


def laplace_log_prior(w: Tensor) -> Tensor:
    """log p(w) of the Laplace prior of assignment 2, scale ``LAPLACE_SCALE``, elementwise."""
    return -math.log(2 * LAPLACE_SCALE) - w.abs() / LAPLACE_SCALE


def check_laplace_prior(
    kl_penalty: Callable[[Tensor, Tensor], Tensor], log_prior: Callable[[Tensor], Tensor], **kwargs: Any
) -> GradeReport:
    """Check assignment 2: ``check_prior``, and ``log_prior`` must be Laplace(0, 1/sqrt(2)).

    Keyword arguments go to ``check_prior``; like it, returns a ``GradeReport`` and raises nothing
    for what the student's functions do.
    """
    return check_prior(
        kl_penalty, log_prior, expected=("the Laplace prior with scale b = 1/sqrt(2)", laplace_log_prior), **kwargs
    )
