"""Theorem 1, statements 1 and 2: with small fixed variances, L1(lambda) and L2(lambda) act on the
means as L3(lambda / (2 alpha_pr)) does, checked through the gradients with respect to mu.

The penalties' mu-gradients are lambda mu / (N alpha_pr) for both variational losses and
2 lambda' w / N for L3, so they match at lambda' = lambda / (2 alpha_pr); the data terms match up
to O(sigma^2) (antithetic noise cancels the odd terms). ``theorem1_gaps`` tabulates the relative
gradient difference over a sigma grid, with the theorem's scaling and the naive lambda' = lambda.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ..data import TensorData
from ..gaussian import GaussianParams
from .estimates import mu_gradient, same_sigma

__all__ = ["THEOREM_SCALING", "NAIVE_SCALING", "theorem1_gap", "theorem1_gaps", "theorem1_findings"]

#: The ``scaling`` labels of ``theorem1_gaps``: the theorem's lambda' = lambda / (2 alpha_pr), and lambda' = lambda.
THEOREM_SCALING = "lam / (2 alpha_pr)"
NAIVE_SCALING = "lam (naive)"


def theorem1_gap(
    name: str,
    target: nn.Module,
    params: GaussianParams,
    data: TensorData,
    lam: float,
    n_train: int,
    prior_var: float = 1.0,
    eps: Tensor | None = None,
    base_lam: float | None = None,
) -> float:
    """Statements 1 and 2 of Theorem 1: relative gap between mu-gradients of L(lam) and L3.

    Returns ||grad_mu L(lam) - grad_w L3(base_lam)|| / ||grad_w L3(base_lam)||, with L3 evaluated
    at w = mu and ``base_lam`` = lam / (2 prior_var) by default (the theorem's scaling). The gap
    tends to zero as sigma -> 0 for ``name`` "variational" (L1) and "covariance" (L2). A float,
    unitless.

    Raises:
        ValueError: ``name`` is "base" (the gap compares another loss with it); or what
            ``mu_gradient`` raises.
    """
    if name == "base":
        raise ValueError("compare the variational or covariance loss with the base loss")
    base_lam = lam / (2.0 * prior_var) if base_lam is None else base_lam
    g = mu_gradient(name, target, params, data, lam, n_train, prior_var, eps)
    g3 = mu_gradient("base", target, params, data, base_lam, n_train)
    return float(torch.linalg.vector_norm(g - g3) / torch.linalg.vector_norm(g3))


def theorem1_gaps(
    target: nn.Module,
    mean: Mapping[str, Tensor],
    data: TensorData,
    lam: float,
    n_train: int,
    sigmas: Sequence[float],
    eps: Tensor,
    prior_vars: Sequence[float] = (1.0, 0.25),
    loss_names: Sequence[str] = ("variational", "covariance"),
) -> pd.DataFrame:
    """``theorem1_gap`` for q = N(mean, sigma^2 I) over a grid of sigmas, prior variances and losses.

    Args:
        target: the model whose parameters ``mean`` holds (names and shapes).
        mean: the means mu; float64 for gaps down to rounding error.
        data: the examples of the nll (full batch).
        lam: lambda of L1 / L2; n_train: N of the losses.
        sigmas: the common standard deviation of every weight, one q per value.
        eps: the antithetic noise of E_q[nll] (``antithetic_noise``), shape (2S, n_params).
        prior_vars, loss_names: alpha_pr values and losses ("variational" L1, "covariance" L2).

    Returns:
        One row per (prior_var, loss, sigma, scaling), in that nesting order, columns
        ``prior_var``, ``loss``, ``sigma``, ``scaling`` (``THEOREM_SCALING`` or ``NAIVE_SCALING``)
        and ``gap`` (relative gradient difference, dimensionless).

    Raises:
        ValueError: for the "base" loss or bad arguments (from ``theorem1_gap`` and the losses).
    """
    records = []
    for prior_var in prior_vars:
        for loss in loss_names:
            for s in sigmas:
                qs = same_sigma(mean, math.log(s))
                for scaling, base_lam in ((THEOREM_SCALING, None), (NAIVE_SCALING, lam)):
                    gap = theorem1_gap(loss, target, qs, data, lam, n_train, prior_var, eps, base_lam=base_lam)
                    records.append({"prior_var": prior_var, "loss": loss, "sigma": s, "scaling": scaling, "gap": gap})
    return pd.DataFrame(records)


def theorem1_findings(gaps: pd.DataFrame, slope_prior_var: float = 1.0) -> dict[str, float]:
    """The numbers chapter 2 quotes from ``theorem1_gaps`` (both losses, both scalings).

    Args:
        gaps: ``theorem1_gaps``' table, one row per (prior_var, loss, sigma, scaling): columns
            ``prior_var`` (alpha_pr, a variance), ``loss`` ("variational" and "covariance"),
            ``sigma`` (the common standard deviation of the weights, > 0), ``scaling``
            (``THEOREM_SCALING`` and ``NAIVE_SCALING``) and ``gap`` (relative gradient
            difference, dimensionless, finite and >= 0). Every (prior_var, sigma) must have one
            row for each loss and scaling.
        slope_prior_var: the prior variance whose L1 gaps give ``slope``.

    Returns:
        ``gap_smallest`` (largest gap with the theorem's scaling at the smallest sigma),
        ``sigma_smallest``, ``gap_naive`` (smallest naive gap there), ``l1_l2_same`` (largest
        difference between the L1 and L2 gaps at the same prior_var and sigma, theorem's scaling)
        and ``slope`` (of log gap against log sigma for L1 at ``slope_prior_var``, where the gap
        is above 1e-12 and sigma < 0.5; the derivation predicts 2). All dimensionless floats.

    Raises:
        ValueError: when ``gaps`` is empty or lacks a column, a loss or a scaling; when a gap is
            NaN, infinite or negative or a sigma not positive; when a (prior_var, sigma) lacks
            the row of a loss and scaling or has two; or when fewer than two points are left for the
            slope.
    """
    cols = ["prior_var", "loss", "sigma", "scaling", "gap"]
    if not isinstance(gaps, pd.DataFrame) or gaps.empty:
        raise ValueError("gaps is empty; pass the table theorem1_gaps returns")
    missing = [c for c in cols if c not in gaps.columns]
    if missing:
        raise ValueError(f"gaps lacks the column(s) {missing}; pass the table theorem1_gaps returns")
    if set(gaps.loss) != {"variational", "covariance"} or set(gaps.scaling) != {THEOREM_SCALING, NAIVE_SCALING}:
        raise ValueError("theorem1_findings needs both losses and both scalings of theorem1_gaps")
    gap = pd.to_numeric(gaps.gap, errors="coerce").to_numpy(dtype=float)
    sigma = pd.to_numeric(gaps.sigma, errors="coerce").to_numpy(dtype=float)
    if not (np.isfinite(gap).all() and (gap >= 0).all()):
        raise ValueError(f"gaps.gap must be finite and >= 0, got {gaps.gap[~(np.isfinite(gap) & (gap >= 0))].tolist()}")
    if not (np.isfinite(sigma).all() and (sigma > 0).all()):
        raise ValueError("gaps.sigma must be positive and finite")
    scalings = (NAIVE_SCALING, THEOREM_SCALING)
    full = tuple(sorted((loss, sc) for loss in ("covariance", "variational") for sc in scalings))
    pairs_at = gaps.assign(pair=list(zip(gaps.loss, gaps.scaling))).groupby(["prior_var", "sigma"]).pair
    rows = pairs_at.agg(lambda x: tuple(sorted(x)))
    bad = rows[rows.map(lambda t: t != full)]
    if not bad.empty:
        raise ValueError(
            "every (prior_var, sigma) needs one row per loss (L1 'variational', L2 'covariance') and scaling, "
            f"as theorem1_gaps writes them; these do not: {list(bad.index[:3])}"
        )
    theorem = gaps[gaps.scaling == THEOREM_SCALING]
    naive = gaps[gaps.scaling == NAIVE_SCALING]
    s_min = gaps.sigma.min()
    pairs = theorem[theorem.loss == "variational"].merge(
        theorem[theorem.loss == "covariance"], on=["prior_var", "sigma"], suffixes=("_l1", "_l2")
    )
    # The slope of log(gap) against log(sigma) where the gap is well above rounding error.
    fit_part = theorem[
        (theorem.prior_var == slope_prior_var)
        & (theorem.loss == "variational")
        & (theorem.gap > 1e-12)
        & (theorem.sigma < 0.5)
    ]
    if len(fit_part) < 2:
        raise ValueError(f"fewer than two gaps above 1e-12 with sigma < 0.5 at prior_var {slope_prior_var}")
    return {
        "gap_smallest": float(theorem[theorem.sigma == s_min].gap.max()),
        "sigma_smallest": float(s_min),
        "gap_naive": float(naive[naive.sigma == s_min].gap.min()),
        "l1_l2_same": float(np.abs(pairs.gap_l1.to_numpy() - pairs.gap_l2.to_numpy()).max()),
        "slope": float(np.polyfit(np.log(fit_part.sigma), np.log(fit_part.gap), 1)[0]),
    }
