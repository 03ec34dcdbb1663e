"""Chapter 1's checks of the ELBO on Bayesian linear regression, as tables and numbers to quote.

- ``bound_checks`` / ``bound_findings``: ELBO(q) <= log evidence for random q, and the gap equals
  KL(q || posterior) (eqs. 3 and the identity log p(D) - ELBO(q) = KL(q || p(w | D)));
- ``compare_fits`` / ``fit_findings``: the fitted full-covariance and mean-field q against the
  evidence and the closed-form mean-field optimum;
- ``scan_findings``: what a ``sweep_prior_var`` scan says about choosing the prior variance.

The findings are plain Python numbers and strings, keyed by short names (the chapter glues them
as ``ev_<name>``).
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from .._checks import as_int, as_real
from .fits import FitResult, optimal_mean_field, random_gaussian
from .linear import BayesianLinearRegression, FullGaussian, elbo, kl_gaussian

__all__ = [
    "bound_checks",
    "bound_findings",
    "BOUND_REL_TOL",
    "FIT_ROWS",
    "compare_fits",
    "fit_findings",
    "scan_findings",
]

#: ``bound_findings``: a negative gap within this times the scale of the numbers differenced is rounding error.
BOUND_REL_TOL = 1e-9
#: The rows of ``compare_fits``: the fitted full-covariance q, the fitted mean-field q, the exact mean-field optimum.
FIT_ROWS = ("full covariance (fitted)", "mean-field (fitted)", "mean-field (closed-form optimum)")


def _one_model(model: BayesianLinearRegression, what: str) -> None:
    if model.batch_shape:
        raise ValueError(f"{what} takes a model with one prior variance, got a batch of {model.batch_shape[0]}")


def bound_checks(
    model: BayesianLinearRegression, n_random: int, generator: torch.Generator | None = None
) -> pd.DataFrame:
    """The gap log p(D) - ELBO(q) and KL(q || posterior) for ``n_random`` Gaussians q, eq. (3).

    Even draws are arbitrary Gaussians (``random_gaussian``); odd draws are the posterior with its
    Cholesky factor and mean perturbed by a factor eps = 10^-u, u ~ U(0, 6), so some q lie very
    close to the posterior. The draws come from ``generator`` in this order.

    Returns:
        One row per q, columns ``kind`` ("random" or "near the posterior"), ``gap`` and ``kl``
        (nats), ``rel_diff`` = |gap - kl| / kl. The bound says gap >= 0; the identity, gap = kl.

    Raises:
        ValueError: for a batched model (several prior variances) or a bad ``n_random``.
    """
    _one_model(model, "bound_checks")
    n_random = as_int(n_random, "n_random")
    dt, d = model.x.dtype, model.dim
    log_ev = float(model.log_evidence())
    post = model.posterior()
    post_chol = torch.linalg.cholesky(post.cov)
    rows = []
    for i in range(n_random):
        if i % 2 == 0:  # an arbitrary Gaussian
            q = random_gaussian(d, generator, dtype=dt)
            kind = "random"
        else:  # the posterior, perturbed by a factor eps
            eps = 10 ** (-6 * torch.rand((), generator=generator, dtype=dt))
            a = torch.eye(d, dtype=dt) + eps * torch.randn(d, d, generator=generator, dtype=dt) / 4
            chol = post_chol @ a
            mean = post.mean + eps * (post_chol @ torch.randn(d, generator=generator, dtype=dt))
            q = FullGaussian(mean, chol @ chol.T)
            kind = "near the posterior"
        gap = log_ev - float(elbo(q, model))
        kl = float(kl_gaussian(q, post))
        rows.append({"kind": kind, "gap": gap, "kl": kl, "rel_diff": abs(gap - kl) / kl})
    return pd.DataFrame(rows)


def bound_findings(checks: pd.DataFrame, log_evidence: float | None = None) -> dict[str, float | int | str]:
    """The numbers chapter 1 quotes from ``bound_checks``.

    A gap is log p(D) - ELBO(q), the difference of two numbers of size about |log p(D)| + gap, so
    float64 rounding can make a gap that is really 0 slightly negative. A negative gap counts as
    rounding error when it is within ``BOUND_REL_TOL`` (1e-9, about 10^7 float64 epsilons) times
    the scale max(1, |log_evidence|, largest |gap|); a gap below that is a real violation of the
    bound, and the verdict says so.

    Args:
        checks: ``bound_checks``' table (columns ``kind``, ``gap`` in nats, ``rel_diff``), at least
            one row of kind "random".
        log_evidence: the model's log p(D) in nats, for the scale of the tolerance; None leaves it
            out of the scale.

    Returns:
        ``n_random`` (int), ``min_gap`` (nats), ``n_positive`` (how many gaps are > 0),
        ``bound_verdict`` (a phrase: whether any ELBO exceeded the log evidence, and by how much;
        "the bound fails" for a violation beyond the tolerance),
        ``max_rel_identity`` (largest ``rel_diff`` over the arbitrary q's).

    Raises:
        ValueError: when ``checks`` is empty, lacks a column, has no "random" row, or holds a
            NaN or infinite gap or rel_diff; for a non-finite ``log_evidence``.
    """
    if checks.empty:
        raise ValueError("checks is empty; run bound_checks with n_random >= 1")
    missing = [c for c in ("kind", "gap", "rel_diff") if c not in checks.columns]
    if missing:
        raise ValueError(f"checks lacks the column(s) {missing}; pass the table bound_checks returns")
    for col in ("gap", "rel_diff"):
        values = pd.to_numeric(checks[col], errors="coerce")
        if not bool(values.map(math.isfinite).all()):
            raise ValueError(f"checks.{col} holds NaN, infinite or non-numeric values; the bound cannot be judged")
    random_rows = checks.kind == "random"
    if not bool(random_rows.any()):
        raise ValueError("checks has no row of kind 'random', whose rel_diff tests the identity gap = KL")
    scale = max(1.0, float(checks.gap.abs().max()))
    if log_evidence is not None:
        log_evidence = as_real(log_evidence, "log_evidence")
        if not math.isfinite(log_evidence):
            raise ValueError(f"log_evidence must be finite, got {log_evidence}")
        scale = max(scale, abs(log_evidence))
    tol = BOUND_REL_TOL * scale
    min_gap = float(checks.gap.min())
    if bool((checks.gap > 0).all()):
        verdict = "no ELBO exceeded the log evidence"
    elif min_gap >= -tol:
        verdict = f"the others are within {abs(min_gap):.1e} of zero, rounding error"
    else:
        n_bad = int((checks.gap < -tol).sum())
        verdict = (
            f"{n_bad} ELBO{'s' if n_bad > 1 else ''} exceeded the log evidence by more than the rounding "
            f"tolerance {tol:.1e} (by up to {-min_gap:.1e} nats): the bound fails"
        )
    return {
        "n_random": len(checks),
        "min_gap": min_gap,
        "n_positive": int((checks.gap > 0).sum()),
        "bound_verdict": verdict,
        "max_rel_identity": float(checks.rel_diff[random_rows].max()),
    }


def compare_fits(model: BayesianLinearRegression, full: FitResult, mean_field: FitResult) -> pd.DataFrame:
    """ELBO, gap to the log evidence and KL to the posterior of the fitted q's (eq. 3 and its gap).

    Args:
        model: one prior variance.
        full, mean_field: the results of ``fit_full_cov`` and ``fit_mean_field`` on ``model``.

    Returns:
        Indexed by ``FIT_ROWS`` (the two fits and ``optimal_mean_field(model)``), columns ``ELBO``,
        ``log evidence``, ``gap`` (nats), ``KL(q || posterior)`` and ``|gap - KL| / KL``. The last
        is NaN where the KL is at rounding level, at most ``BOUND_REL_TOL`` (1e-9) times
        max(1, |log evidence|): the gap is the difference of two numbers of that size, so it
        cannot resolve a smaller KL, and a relative difference to it means nothing (a fit that
        reaches the posterior has KL 0).

    Raises:
        ValueError: for a batched model.
    """
    _one_model(model, "compare_fits")
    log_ev = float(model.log_evidence())
    post = model.posterior()
    kl_rounding = BOUND_REL_TOL * max(1.0, abs(log_ev))
    table = []
    for name, q in zip(FIT_ROWS, (full.q, mean_field.q, optimal_mean_field(model))):
        e = float(elbo(q, model))
        kl = float(kl_gaussian(q, post))
        table.append(
            {
                "q": name,
                "ELBO": e,
                "log evidence": log_ev,
                "gap": log_ev - e,
                "KL(q || posterior)": kl,
                "|gap - KL| / KL": abs(log_ev - e - kl) / kl if kl > kl_rounding else math.nan,
            }
        )
    return pd.DataFrame(table).set_index("q")


def fit_findings(table: pd.DataFrame, full: FitResult, mean_field: FitResult) -> dict[str, float]:
    """The numbers chapter 1 quotes from ``compare_fits`` (all in nats, except ``rel_mf``).

    Returns:
        ``gap_full`` (|gap| of the full-covariance fit), ``gap_mf`` and ``kl_mf`` (the mean-field
        fit's gap and its KL to the posterior), ``rel_mf`` (their relative difference),
        ``trace_excess`` (the most any ELBO along either optimisation exceeded the log evidence,
        at least 0), ``mf_vs_exact`` (closed-form mean-field optimum's ELBO minus the fit's).

    Raises:
        KeyError: when ``table`` lacks a row of ``FIT_ROWS``.
    """
    full_row, mf_row, exact_row = (table.loc[name] for name in FIT_ROWS)
    log_ev = float(full_row["log evidence"])
    excess = max(float(full.elbo_trace.max()), float(mean_field.elbo_trace.max())) - log_ev
    return {
        "gap_full": abs(float(full_row["gap"])),
        "gap_mf": float(mf_row["gap"]),
        "trace_excess": max(excess, 0.0),
        "kl_mf": float(mf_row["KL(q || posterior)"]),
        "rel_mf": float(mf_row["|gap - KL| / KL"]),
        "mf_vs_exact": float(exact_row["ELBO"] - mf_row["ELBO"]),
    }


def scan_findings(scan: pd.DataFrame, log_evidence_at_one: float) -> dict[str, float | str]:
    """What a ``sweep_prior_var`` scan says about choosing alpha_pr by the evidence (eq. 2).

    Args:
        scan: the table of ``sweep_prior_var``, rows in increasing prior variance.
        log_evidence_at_one: the log evidence at the reference prior variance (alpha_pr = 1), nats.

    Returns:
        ``best_alpha`` and ``best_alpha_mf`` (the grid's arg-max of the evidence and of the
        mean-field ELBO), ``mf_moved`` (a phrase: how far apart they are, in decades),
        ``scan_full_gap`` (largest |log evidence - full-covariance ELBO|), ``gain_vs_one`` (the
        evidence's maximum minus ``log_evidence_at_one``), ``gap_small`` and ``gap_large`` (the
        mean-field gap at the smallest and the largest prior variance).

    Raises:
        ValueError: when ``scan`` is empty.
    """
    if scan.empty:
        raise ValueError("scan is empty; sweep at least one prior variance")
    best = scan.loc[scan.log_evidence.idxmax()]
    best_mf = scan.loc[scan.elbo_mean_field.idxmax()]
    return {
        "best_alpha": float(best.prior_var),
        "best_alpha_mf": float(best_mf.prior_var),
        "mf_moved": "the same grid point as the evidence"
        if best_mf.prior_var == best.prior_var
        else f"{abs(math.log10(best_mf.prior_var / best.prior_var)):.2f} decades away from the evidence's choice",
        "scan_full_gap": float((scan.log_evidence - scan.elbo_full).abs().max()),
        "gain_vs_one": float(best.log_evidence - log_evidence_at_one),
        "gap_small": float(scan.gap_mean_field.iloc[0]),
        "gap_large": float(scan.gap_mean_field.iloc[-1]),
    }
