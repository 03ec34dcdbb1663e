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

    Returns:
        ``gap_smallest`` (largest gap with the theorem's scaling at the smallest sigma),
        ``sigma_smallest``, ``gap_naive`` (smallest naive gap there), ``l1_l2_same`` (largest
        difference between the L1 and L2 gaps, theorem's scaling) and ``slope`` (of log gap against
        log sigma for L1 at ``slope_prior_var``, where the gap is above 1e-12 and sigma < 0.5; the
        derivation predicts 2).

    Raises:
        ValueError: when ``gaps`` lacks a loss or a scaling, or fewer than two points are left for the slope.
    """
    if set(gaps.loss) != {"variational", "covariance"} or set(gaps.scaling) != {THEOREM_SCALING, NAIVE_SCALING}:
        raise ValueError("theorem1_findings needs both losses and both scalings of theorem1_gaps")
    theorem = gaps[gaps.scaling == THEOREM_SCALING]
    naive = gaps[gaps.scaling == NAIVE_SCALING]
    s_min = gaps.sigma.min()
    l1 = theorem[theorem.loss == "variational"].gap.values
    l2 = theorem[theorem.loss == "covariance"].gap.values
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
        "l1_l2_same": float(np.abs(l1 - l2).max()),
        "slope": float(np.polyfit(np.log(fit_part.sigma), np.log(fit_part.gap), 1)[0]),
    }
