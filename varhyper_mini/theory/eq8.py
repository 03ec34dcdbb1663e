"""Eq. (8) of the paper derived in full: the exact difference L1(lambda) - L2(lambda), and its check.

All losses are the package's, written to be minimised (``varhyper_mini.losses``):
L1(lam) = nll + lam * KL(q || N(0, a)) / N and L2(lam) = nll + KL(q || N(0, a / lam)) / N, with
a = prior_var and N = n_train. The means of q cancel from the difference; only its variances enter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from torch import Tensor

from .. import losses
from .._checks import as_int
from ..gaussian import GaussianParams

__all__ = ["log_det_cov", "l1_minus_l2", "l1_minus_l2_from_losses", "eq8_checks", "eq8_findings"]


def log_det_cov(params: GaussianParams) -> Tensor:
    """log det A_ps^-1 = sum_i log sigma_i^2 for a diagonal covariance (keeps ``batch_shape``)."""
    params.require_variational("log_det_cov")
    nb = len(params.batch_shape)
    return sum(2.0 * ls.reshape(*ls.shape[:nb], -1).sum(-1) for ls in params.log_sigma.values())


def l1_minus_l2(params: GaussianParams, lam: float | Tensor, n_train: int, prior_var: float = 1.0) -> Tensor:
    """The exact difference L1(lam) - L2(lam) of the package's losses, eq. (8) derived in full.

    With n weights, log det A_ps^-1 = sum log sigma_i^2 and a = prior_var, for the same q and nll:

        L1 - L2 = [ (1 - lam) / 2 * log det A_ps^-1 + n / 2 * ((lam - 1) * (ln a - 1) + ln lam) ] / N.

    The means cancel: only the variances of q enter. For the paper's objectives (to maximise)
    the sign flips, giving (lam - 1) / 2 * log det A_ps^-1 plus a term free of q. Returns a
    float64 tensor of the broadcast shape of ``params.batch_shape`` and ``lam``, in nats per example.

    Raises:
        ValueError: a lambda that is not positive and finite, a ``prior_var`` that is not positive,
            or deterministic ``params`` (no sigma).
    """
    lam_t = torch.as_tensor(lam, dtype=torch.float64)
    if not bool(torch.all(torch.isfinite(lam_t) & (lam_t > 0))):
        raise ValueError(f"lambda must be positive and finite, got {lam!r}")
    if not prior_var > 0:
        raise ValueError(f"prior_var must be positive, got {prior_var!r}")
    n = params.numel()
    ld = log_det_cov(params).to(torch.float64)
    const = 0.5 * n * ((lam_t - 1.0) * (math.log(prior_var) - 1.0) + torch.log(lam_t))
    return (0.5 * (1.0 - lam_t) * ld + const) / n_train


def l1_minus_l2_from_losses(
    params: GaussianParams, lam: float | Tensor, n_train: int, prior_var: float = 1.0
) -> Tensor:
    """L1(lam) - L2(lam) computed from the package's losses themselves (``losses.variational`` and
    ``losses.covariance``), the other side of the check of ``l1_minus_l2`` (eq. 8).

    ``lam`` is passed on as given (a Python float, or a tensor of any dtype), so the check also
    shows what rounding lambda to float32 costs. The nll term is the same in both losses and
    cancels; a float64 constant stands in for it. Returns a 0-d float64 tensor (nats per example).

    Raises:
        ValueError: as the losses do, for a bad lambda, ``n_train``, ``prior_var`` or a
            deterministic ``params``.
    """
    nll = torch.tensor(0.5, dtype=torch.float64)  # cancels; any value
    return losses.variational(nll, params, lam, n_train, prior_var) - losses.covariance(
        nll, params, lam, n_train, prior_var
    )


def eq8_checks(
    like: Mapping[str, Tensor],
    n_train: int,
    n_trials: int = 200,
    generator: torch.Generator | None = None,
    prior_vars: Sequence[float] = (1.0, 0.25),
) -> pd.DataFrame:
    """``l1_minus_l2`` (eq. 8) against the package's losses for ``n_trials`` random q, in float64.

    Each trial draws, from ``generator`` in this order, means 2 * N(0, 1) and log sigmas
    U(-4, -1) with the shapes of ``like`` (parameter name -> tensor), then lambda = 10^u with
    u ~ U(-2, 4); trial t uses ``prior_vars[t % len(prior_vars)]``. The losses get lambda in three
    forms: a float64 tensor, a Python float and a float32 tensor.

    Returns:
        One row per trial: ``lambda``, ``prior_var`` (the trial's alpha_pr, a variance),
        ``log det A^-1`` (sum of log sigma^2), ``formula`` (eq. 8),
        ``rel_err``, ``rel_err_python``, ``rel_err_f32`` (|losses - formula| / |formula| for the
        three forms of lambda) and ``L1 - L2 (losses)`` (float64 lambda).

    Raises:
        ValueError: for a bad ``n_trials`` or an empty ``prior_vars``.
    """
    n_trials = as_int(n_trials, "n_trials")
    if len(prior_vars) == 0:
        raise ValueError("prior_vars is empty; give at least one prior variance")
    f64 = torch.float64
    rows = []
    for trial in range(n_trials):
        mean = {n: 2 * torch.randn(v.shape, generator=generator, dtype=f64) for n, v in like.items()}
        log_sigma = {n: -4 + 3 * torch.rand(v.shape, generator=generator, dtype=f64) for n, v in like.items()}
        q = GaussianParams(mean, log_sigma)
        lam = 10 ** (6 * float(torch.rand((), generator=generator, dtype=f64)) - 2)  # 1e-2 .. 1e4
        prior_var = prior_vars[trial % len(prior_vars)]
        formula = l1_minus_l2(q, lam, n_train, prior_var)
        row = {
            "lambda": lam,
            "prior_var": float(prior_var),
            "log det A^-1": float(log_det_cov(q)),
            "formula": float(formula),
        }
        # lambda as a float64 tensor, as a Python float, and as a float32 tensor (PyTorch's default dtype).
        forms = (("", torch.tensor(lam, dtype=f64)), ("_python", lam), ("_f32", torch.tensor(lam, dtype=torch.float32)))
        for key, lam_as in forms:
            direct = l1_minus_l2_from_losses(q, lam_as, n_train, prior_var)
            row[f"rel_err{key}"] = float(abs(direct - formula) / abs(formula))
        row["L1 - L2 (losses)"] = float(l1_minus_l2_from_losses(q, torch.tensor(lam, dtype=f64), n_train, prior_var))
        rows.append(row)
    return pd.DataFrame(rows)


def eq8_findings(checks: pd.DataFrame) -> dict[str, float | int | str]:
    """The numbers chapter 2 quotes from ``eq8_checks``.

    Returns:
        ``eq8_n`` (trials), ``eq8_max_rel``, ``eq8_max_rel_py`` and ``eq8_max_rel_f32`` (largest
        relative error with lambda as a float64 tensor, a Python float, a float32 tensor), and
        ``eq8_py_same`` ("identical to" or "not identical to": the Python float's errors against
        the float64 tensor's).

    Raises:
        ValueError: when ``checks`` is empty.
    """
    if checks.empty:
        raise ValueError("checks is empty; run eq8_checks with n_trials >= 1")
    return {
        "eq8_max_rel": float(checks.rel_err.max()),
        "eq8_max_rel_py": float(checks.rel_err_python.max()),
        "eq8_py_same": "identical to" if checks.rel_err_python.equals(checks.rel_err) else "not identical to",
        "eq8_max_rel_f32": float(checks.rel_err_f32.max()),
        "eq8_n": len(checks),
    }
