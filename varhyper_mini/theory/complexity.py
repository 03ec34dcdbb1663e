"""How lambda moves the complexity term: the KL divergence at the optimum of L1(lambda) and L2(lambda).

For L1 = f(q) + lambda K(q) the KL term K can only fall as lambda grows (add the two optimality
inequalities at lambda_1 < lambda_2). L2 changes the prior inside the KL instead, and the KL from
the fixed prior N(0, alpha_pr I) need not be monotone in lambda. ``kl_vs_lambda`` fits q at a grid of
lambdas for each loss (``fit_at_lams``) and tabulates both KL terms, the mean sigma and the accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data import TensorData
from ..evaluation import accuracy
from ..gaussian import GaussianParams
from .estimates import fit_at_lams

__all__ = ["kl_vs_lambda", "is_monotone", "kl_findings"]

_KL = "KL to N(0, alpha_pr)"
_OWN = "KL to N(0, alpha_pr / lambda)"


def kl_vs_lambda(
    target: nn.Module,
    train_data: TensorData,
    test_data: TensorData,
    lams: Sequence[float],
    prior_var: float = 1.0,
    steps: int = 1000,
    lr: float = 0.05,
    n_pairs: int = 8,
    loss_names: Sequence[str] = ("variational", "covariance"),
) -> pd.DataFrame:
    """Fit q at every lambda of ``lams`` for each loss, then measure the complexity of each optimum.

    The fits are ``fit_at_lams`` (full batch, fixed antithetic noise, decaying learning rate),
    all lambdas of one loss at once, starting from ``target``'s parameters. The KL terms are
    computed in float64.

    Returns:
        One row per (loss, lambda), columns ``loss``, ``lambda``, ``KL to N(0, alpha_pr)`` and
        ``KL to N(0, alpha_pr / lambda)`` (nats), ``mean sigma`` (over the weight tensors, the
        parameters with two or more dimensions; biases left out) and ``test accuracy`` (of the
        means on ``test_data``, a fraction).

    Raises:
        ValueError: for a bad loss name, an empty ``lams``, a bad lambda, ``steps`` or
            ``prior_var`` (from ``fit_at_lams``), or a target without weight tensors.
    """
    weights = [n for n, p in target.named_parameters() if p.ndim >= 2]
    if not weights:
        raise ValueError("the target has no weight tensors (parameters with two or more dimensions)")
    fits = {
        loss: fit_at_lams(target, train_data, loss, list(lams), prior_var, steps=steps, lr=lr, n_pairs=n_pairs)
        for loss in loss_names
    }
    rows = []
    for loss, fit in fits.items():
        for i, lam in enumerate(lams):
            qi = fit.params[i]
            q64 = GaussianParams(
                {k: v.double() for k, v in qi.mean.items()}, {k: v.double() for k, v in qi.log_sigma.items()}
            )
            sigma = torch.cat([torch.exp(fit.params.log_sigma[n][i]).reshape(-1) for n in weights])
            rows.append(
                {
                    "loss": loss,
                    "lambda": lam,
                    _KL: float(q64.kl(prior_var)),
                    _OWN: float(q64.kl(prior_var / lam)),
                    "mean sigma": float(sigma.mean()),
                    "test accuracy": accuracy(target, qi, test_data),
                }
            )
    return pd.DataFrame(rows)


def is_monotone(values: Sequence[float] | np.ndarray) -> bool:
    """Whether ``values`` never rise or never fall along the sequence (ties allowed)."""
    d = np.diff(np.asarray(values))
    return bool(np.all(d <= 0) or np.all(d >= 0))


def _trend(values: np.ndarray) -> str:
    d = np.diff(values)
    if np.all(d <= 0):
        return "decreases monotonically"
    return "increases monotonically" if np.all(d >= 0) else "is not monotone"


def kl_findings(kl_table: pd.DataFrame) -> dict[str, float | str]:
    """The numbers chapter 2 quotes from ``kl_vs_lambda`` (rows in increasing lambda per loss).

    Returns:
        ``l1_monotone`` (a phrase: how L1's KL to N(0, alpha_pr) moves with lambda),
        ``l1_kl_first`` and ``l1_kl_last`` (that KL at the smallest and the largest lambda, nats),
        ``l2_kl_min_lam`` and ``l2_kl_min`` (where L2's KL to N(0, alpha_pr) is smallest, and its
        value), ``l2_kl_last``, ``l2_own_monotone`` (a phrase about L2's own KL term,
        KL to N(0, alpha_pr / lambda)), ``l1_sigma_last`` and ``l2_sigma_last`` (mean sigma at the
        largest lambda).

    Raises:
        ValueError: when ``kl_table`` lacks the rows of either loss.
    """
    l1 = kl_table[kl_table.loss == "variational"]
    l2 = kl_table[kl_table.loss == "covariance"]
    if l1.empty or l2.empty:
        raise ValueError("kl_findings needs the rows of both the variational and the covariance loss")
    imin = int(l2[_KL].values.argmin())
    return {
        "l1_monotone": _trend(l1[_KL].values),
        "l1_kl_first": float(l1[_KL].iloc[0]),
        "l1_kl_last": float(l1[_KL].iloc[-1]),
        "l2_kl_min_lam": float(l2["lambda"].iloc[imin]),
        "l2_kl_min": float(l2[_KL].iloc[imin]),
        "l2_kl_last": float(l2[_KL].iloc[-1]),
        "l2_own_monotone": "is monotone" if is_monotone(l2[_OWN].values) else "is not monotone either",
        "l2_sigma_last": float(l2["mean sigma"].iloc[-1]),
        "l1_sigma_last": float(l1["mean sigma"].iloc[-1]),
    }
