"""Gradient ascent on the ELBO of a ``BayesianLinearRegression``: full-covariance and mean-field q.

Both fits use exact gradients (the ELBO is a closed-form function of q), Adam and a cosine-decayed
learning rate, so they reach the optimum of their family to rounding error. ``sweep_prior_var``
fits a whole grid of prior variances at once, as a batch of independent models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import Tensor

from .._checks import as_int, as_positive
from .linear import BayesianLinearRegression, FullGaussian, elbo

__all__ = ["FitResult", "fit_full_cov", "fit_mean_field", "optimal_mean_field", "random_gaussian", "sweep_prior_var"]


@dataclass
class FitResult:
    """A fitted q and the ELBO at every optimisation step.

    Attributes:
        q: the fitted Gaussian (batched like the model's ``prior_var``).
        elbo_trace: tensor of shape (steps, *batch_shape): the ELBO before each step's update.
        family: "full" or "mean-field".
    """

    q: FullGaussian
    elbo_trace: Tensor = field(default_factory=lambda: torch.zeros(0))
    family: str = "full"


def _check_fit_args(steps: int, lr: float) -> None:
    as_int(steps, "steps")
    as_positive(lr, "lr")


def _ascend(params: list[Tensor], build, model: BayesianLinearRegression, steps: int, lr: float, family: str):
    """Adam on -ELBO with a cosine-decayed learning rate (down to 1e-3 lr) for a precise optimum.

    Batched models are independent, so the gradient of the summed ELBO is each one's own.
    """
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=1e-3 * lr)
    trace = []
    for _ in range(steps):
        opt.zero_grad()
        value = elbo(build(), model)
        (-value.sum()).backward()
        opt.step()
        sched.step()
        trace.append(value.detach())
    with torch.no_grad():
        q = build().detach()
    return FitResult(q, torch.stack(trace), family)


def _default_init(model: BayesianLinearRegression, init_std: float) -> FullGaussian:
    """N(0, init_std^2 I): a start that does not depend on the prior variance being scanned."""
    eye = torch.eye(model.dim, dtype=model.x.dtype, device=model.x.device)
    return FullGaussian(torch.zeros(model.dim, dtype=model.x.dtype, device=model.x.device), init_std**2 * eye)


def _init_tensors(model: BayesianLinearRegression, init: FullGaussian) -> tuple[Tensor, Tensor]:
    """Initial mean and Cholesky factor from ``init``, broadcast to the model's batch shape."""
    shape = (*model.batch_shape, model.dim)
    mean = init.mean.detach().expand(shape).clone()
    chol = torch.linalg.cholesky(init.cov.detach()).expand(*shape, model.dim).clone()
    return mean, chol


def fit_full_cov(
    model: BayesianLinearRegression,
    steps: int = 1000,
    lr: float = 0.05,
    init: FullGaussian | None = None,
    init_std: float = 0.1,
) -> FitResult:
    """Maximise the ELBO over full-covariance Gaussians q = N(mu, L L^T) by gradient ascent.

    L is lower triangular with a positive diagonal stored as its log. The posterior belongs to
    this family, so the optimum reaches the exact log evidence. Starts from ``init``, by
    default N(0, init_std^2 I). Adam with a cosine-decayed learning rate.
    """
    _check_fit_args(steps, lr)
    mean0, chol0 = _init_tensors(model, _default_init(model, init_std) if init is None else init)
    mean = mean0.requires_grad_(True)
    log_diag = torch.log(torch.diagonal(chol0, dim1=-2, dim2=-1)).clone().requires_grad_(True)
    lower = torch.tril(chol0, diagonal=-1).clone().requires_grad_(True)
    mask = torch.tril(torch.ones(model.dim, model.dim, dtype=chol0.dtype, device=chol0.device), diagonal=-1)

    def build() -> FullGaussian:
        chol = lower * mask + torch.diag_embed(torch.exp(log_diag))
        return FullGaussian(mean, chol @ chol.transpose(-2, -1))

    return _ascend([mean, log_diag, lower], build, model, steps, lr, "full")


def fit_mean_field(
    model: BayesianLinearRegression,
    steps: int = 1000,
    lr: float = 0.05,
    init: FullGaussian | None = None,
    init_std: float = 0.1,
) -> FitResult:
    """Maximise the ELBO over mean-field Gaussians q = N(mu, diag(sigma^2)) by gradient ascent.

    sigma is stored as its log (the package's ``log_sigma`` convention). Only the diagonal of
    ``init.cov`` is used (default: N(0, init_std^2 I)).
    """
    _check_fit_args(steps, lr)
    if init is None:
        init = _default_init(model, init_std)
    shape = (*model.batch_shape, model.dim)
    mean = init.mean.detach().expand(shape).clone().requires_grad_(True)
    var0 = init.cov.detach().diagonal(dim1=-2, dim2=-1).expand(shape)
    log_sigma = (0.5 * torch.log(var0)).clone().requires_grad_(True)

    def build() -> FullGaussian:
        return FullGaussian.diagonal(mean, torch.exp(2.0 * log_sigma))

    return _ascend([mean, log_sigma], build, model, steps, lr, "mean-field")


def optimal_mean_field(model: BayesianLinearRegression) -> FullGaussian:
    """The exact mean-field optimum: mean = posterior mean, sigma_i^2 = 1 / (Sigma^-1)_ii.

    Setting the ELBO's gradient to zero for a diagonal q gives these values; they are used
    to check ``fit_mean_field``.
    """
    prec = model.posterior_precision()
    return FullGaussian.diagonal(model.posterior().mean, 1.0 / prec.diagonal(dim1=-2, dim2=-1))


def random_gaussian(dim: int, generator: torch.Generator | None = None, dtype=torch.float64) -> FullGaussian:
    """A random full-covariance Gaussian (for tests: any q must obey ELBO <= log evidence)."""
    mean = torch.randn(dim, generator=generator, dtype=dtype)
    a = torch.randn(dim, dim, generator=generator, dtype=dtype) / math.sqrt(dim)
    return FullGaussian(mean, a @ a.T + 0.1 * torch.eye(dim, dtype=dtype))


def sweep_prior_var(
    model: BayesianLinearRegression, prior_vars: Sequence[float], steps: int = 1000, lr: float = 0.05
) -> pd.DataFrame:
    """Exact log evidence and the optimised ELBOs (full and mean-field) for each prior variance.

    All prior variances are fitted at once (a batch of independent q's).
    Columns: prior_var, log_evidence, elbo_full, elbo_mean_field, elbo_mean_field_exact (the
    closed-form mean-field optimum, a check), gap_mean_field (log evidence - elbo_mean_field).

    Raises:
        ValueError: ``prior_vars`` is empty.
    """
    if len(prior_vars) == 0:
        raise ValueError("prior_vars is empty; give at least one prior variance")
    pv = torch.as_tensor([float(v) for v in prior_vars], dtype=model.x.dtype, device=model.x.device)
    m = model.with_prior_var(pv)
    full = fit_full_cov(m, steps=steps, lr=lr)
    mf = fit_mean_field(m, steps=steps, lr=lr)
    ev = m.log_evidence()
    e_full, e_mf = elbo(full.q, m), elbo(mf.q, m)
    e_mf_exact = elbo(optimal_mean_field(m), m)
    return pd.DataFrame(
        {
            "prior_var": pv.cpu().numpy(),
            "log_evidence": ev.cpu().numpy(),
            "elbo_full": e_full.cpu().numpy(),
            "elbo_mean_field": e_mf.cpu().numpy(),
            "elbo_mean_field_exact": e_mf_exact.cpu().numpy(),
            "gap_mean_field": (ev - e_mf).cpu().numpy(),
        }
    )
