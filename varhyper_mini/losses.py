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

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import F32_MAX, F32_TINY, as_int
from .gaussian import GaussianParams, check_prior_var, kl_to_prior_flat
from .hypernets import check_lam

__all__ = [
    "variational",
    "covariance",
    "base",
    "penalty",
    "penalty_unchecked",
    "penalty_flat",
    "check_loss_name",
    "nll_per_sample",
    "LOSSES",
]

LOSSES = ("variational", "covariance", "base")


def _check(n_train: int, lam: float | Tensor) -> Tensor | float:
    as_int(n_train, "n_train (the training-set size)")
    if isinstance(lam, Tensor) and lam.ndim > 0:  # one lambda per batch entry
        lam64 = lam.detach().to(torch.float64)
        if lam.dtype == torch.bool or not bool(torch.all((lam64 >= F32_TINY) & (lam64 <= F32_MAX))):
            raise ValueError(f"lambda must be positive, finite and inside the float32 range, got {lam!r}")
        return lam
    # A plain number stays a Python float (double precision): float64 parameters see it unrounded.
    return float(check_lam(lam))


def penalty(name: str, params: GaussianParams, lam: float | Tensor, n_train: int, prior_var: float = 1.0) -> Tensor:
    """The complexity term of loss ``name``, already divided by ``n_train``.

    Returns a tensor of ``params.batch_shape`` (a scalar for unbatched params), in nats per
    example; ``lam`` is one number or a tensor of shape ``params.batch_shape``.

    Raises:
        ValueError: a bad name, ``n_train`` (a positive integer), lambda (positive, finite, in the
            float32 range) or ``prior_var``; deterministic ``params`` for a variational loss; or a
            penalty that is not finite (e.g. lambda times the KL overflows): a loss that is inf or
            NaN must not be trained on.
    """
    check_loss_name(name)
    lam_t = _check(n_train, lam)
    if name != "base":
        params.require_variational(f"the {name} loss")
        check_prior_var(prior_var)
    out = penalty_unchecked(name, params, lam_t, n_train, prior_var)
    if not bool(torch.all(torch.isfinite(out.detach()))):
        raise ValueError(
            f"the {name} penalty is not finite ({out.detach().flatten()[:4].tolist()}) at lambda = {lam!r}, "
            f"n_train = {n_train}, prior_var = {prior_var!r}: lambda is too large for these parameters, or the "
            "parameters are not finite. Use a smaller lambda (or lam_range), or check the parameters."
        )
    return out


def check_loss_name(name: str) -> None:
    """Check that ``name`` is one of ``LOSSES``.

    Raises:
        ValueError: ``name`` is not one of ``LOSSES``.
    """
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
    """L1, eq. (4): nll + lambda * KL(q || N(0, prior_var I)) / n_train.

    ``nll``: each model's mean cross-entropy per example (nats), of shape ``params.batch_shape``
    (0-d for one model); returns the mean over the models, a 0-d tensor in nats per example.
    Minimising it maximises eq. (4) divided by the training-set size. Raises what ``penalty`` raises.
    """
    return (nll + penalty("variational", params, lam, n_train, prior_var)).mean()


def covariance(
    nll: Tensor, params: GaussianParams, lam: float | Tensor, n_train: int, prior_var: float = 1.0
) -> Tensor:
    """L2, eq. (5): nll + KL(q || N(0, prior_var / lambda I)) / n_train.

    ``nll``: each model's mean cross-entropy per example (nats), of shape ``params.batch_shape``
    (0-d for one model); returns the mean over the models, a 0-d tensor in nats per example.
    Minimising it maximises eq. (5) divided by the training-set size. Raises what ``penalty`` raises.
    """
    return (nll + penalty("covariance", params, lam, n_train, prior_var)).mean()


def base(nll: Tensor, params: GaussianParams, lam: float | Tensor, n_train: int) -> Tensor:
    """L3, eq. (6): nll + lambda * sum(mean^2) / n_train (weights and biases).

    ``nll``: each model's mean cross-entropy per example (nats), of shape ``params.batch_shape``
    (0-d for one model); returns the mean over the models, a 0-d tensor in nats per example.
    Minimising it maximises eq. (6) divided by the training-set size. Raises what ``penalty`` raises.
    """
    return (nll + penalty("base", params, lam, n_train)).mean()


def nll_per_sample(logits: Tensor, y: Tensor) -> Tensor:
    """The data term of every loss for k weight sets at once: batch-mean cross-entropy, shape (k,).

    ``logits`` (k, B, C), one set of B predictions per weight sample (a lambda draw, a Monte Carlo
    draw); ``y`` (B,) integer labels. In nats per example. The training step (Algorithm 1) and the
    theory's expected NLL both use it.
    """
    k, b, c = logits.shape
    ce = F.cross_entropy(logits.reshape(k * b, c), y.repeat(k), reduction="none")
    return ce.reshape(k, b).mean(1)
