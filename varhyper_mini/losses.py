"""The paper's three losses, eqs. (4)-(6), written as quantities to **minimise**.

The paper states them as objectives to maximise; the extracted text lost their signs.
With nll the batch-mean cross-entropy and N = ``n_train`` the training-set size,
each is the negative (per-example) objective:

- variational, L1:  nll + lambda * KL(q || N(0, prior_var)) / N
- covariance,  L2:  nll + KL(q || N(0, prior_var / lambda)) / N
- base,        L3:  nll + lambda * ||w||^2 / N   (w the means, biases included)

``lam`` may be a tensor matching ``params.batch_shape`` (one lambda per sample); the
result is then averaged over the batch, so each function returns a scalar.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .gaussian import GaussianParams, check_prior_var, kl_to_prior_flat

__all__ = [
    "variational",
    "covariance",
    "base",
    "penalty",
    "penalty_unchecked",
    "penalty_flat",
    "check_loss_name",
    "LOSSES",
]

LOSSES = ("variational", "covariance", "base")


def _check(n_train: int, lam: float | Tensor) -> Tensor | float:
    if isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < 1:
        raise ValueError(f"n_train must be a positive integer (the training-set size), got {n_train!r}")
    if isinstance(lam, (int, float)) and not isinstance(lam, bool):
        # A plain number stays a Python float (double precision): float64 parameters see it
        # unrounded, and no tensor is built on this per-step path.
        if not (math.isfinite(lam) and lam > 0):
            raise ValueError(f"lambda must be positive and finite, got {lam!r}")
        return float(lam)
    lam_t = lam if isinstance(lam, Tensor) else torch.as_tensor(lam, dtype=torch.float64)
    if not bool(torch.all(torch.isfinite(lam_t) & (lam_t > 0))):
        raise ValueError(f"lambda must be positive and finite, got {lam!r}")
    return lam_t


def penalty(name: str, params: GaussianParams, lam: float | Tensor, n_train: int, prior_var: float = 1.0) -> Tensor:
    """The complexity term of loss ``name``, already divided by ``n_train``.

    Returns a tensor of ``params.batch_shape`` (a scalar for unbatched params).
    """
    check_loss_name(name)
    lam_t = _check(n_train, lam)
    if name != "base":
        params._require_variational(f"the {name} loss")
        check_prior_var(prior_var)
    return penalty_unchecked(name, params, lam_t, n_train, prior_var)


def check_loss_name(name: str) -> None:
    """Raise ``ValueError`` for a loss name that is not one of ``LOSSES``."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {LOSSES}")


def penalty_flat(
    name: str,
    mean: Tensor,
    log_sigma: Tensor | None,
    lam: Tensor | float,
    n_train: int,
    prior_var: float = 1.0,
    sigma: Tensor | None = None,
) -> Tensor:
    """The complexity term of loss ``name`` from flat ``(..., P)`` means and log sigmas.

    The training step's form of ``penalty_unchecked``: no ``GaussianParams`` is built, and a
    ``sigma = exp(log_sigma)`` already computed for the weight draw is reused. Returns shape
    ``(...)``; ``lam`` broadcasts against it. No value checks.
    """
    if name == "variational":
        return lam * kl_to_prior_flat(mean, log_sigma, prior_var, sigma) / n_train
    if name == "covariance":
        return kl_to_prior_flat(mean, log_sigma, prior_var / lam, sigma) / n_train
    return lam * (mean * mean).sum(-1) / n_train


def penalty_unchecked(
    name: str, params: GaussianParams, lam: Tensor | float, n_train: int, prior_var: float = 1.0
) -> Tensor:
    """``penalty`` without value checks, for use inside ``torch.func.vmap`` (training)."""
    if isinstance(lam, Tensor):
        lam = lam.to(next(iter(params.mean.values())).dtype)
    if name == "variational":
        return lam * params._kl(prior_var) / n_train
    if name == "covariance":
        return params._kl(prior_var / lam) / n_train
    return lam * params.sq_norm() / n_train


def variational(
    nll: Tensor, params: GaussianParams, lam: float | Tensor, n_train: int, prior_var: float = 1.0
) -> Tensor:
    """L1, eq. (4): nll + lambda * KL(q || N(0, prior_var I)) / n_train."""
    return (nll + penalty("variational", params, lam, n_train, prior_var)).mean()


def covariance(
    nll: Tensor, params: GaussianParams, lam: float | Tensor, n_train: int, prior_var: float = 1.0
) -> Tensor:
    """L2, eq. (5): nll + KL(q || N(0, prior_var / lambda I)) / n_train."""
    return (nll + penalty("covariance", params, lam, n_train, prior_var)).mean()


def base(nll: Tensor, params: GaussianParams, lam: float | Tensor, n_train: int) -> Tensor:
    """L3, eq. (6): nll + lambda * sum(mean^2) / n_train (weights and biases)."""
    return (nll + penalty("base", params, lam, n_train)).mean()
