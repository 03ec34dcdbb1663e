"""Bayesian linear regression: the evidence (eq. 2), the posterior and the ELBO (eq. 3), exact.

- model: y = X w + eps, eps ~ N(0, noise_var I); prior p(w) = N(0, prior_var I), where
  ``prior_var`` is the paper's alpha_pr, a **variance** (eq. 1);
- the evidence p(y | alpha_pr) = N(y | 0, prior_var X X^T + noise_var I), eq. (2);
- the posterior N(m, Sigma) with Sigma^-1 = X^T X / noise_var + I / prior_var;
- for a Gaussian q(w) = N(mu, S) the expected log-likelihood E_q log p(y | w) and
  KL(q || prior), hence the ELBO of eq. (3), are exact, and so are their gradients.

``prior_var`` may be a 1-d tensor of K prior variances: every quantity then carries a leading
batch dimension of size K.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["FullGaussian", "BayesianLinearRegression", "kl_gaussian", "elbo"]


@dataclass(frozen=True)
class FullGaussian:
    """A Gaussian N(mean, cov) with a full covariance matrix (optionally a batch of them).

    Attributes:
        mean: shape (..., d).
        cov: shape (..., d, d), symmetric positive definite.

    Raises:
        ValueError: ``mean`` is 0-d, or ``cov`` is not of shape ``(*mean.shape, d)``.
    """

    mean: Tensor
    cov: Tensor

    def __post_init__(self) -> None:
        d = self.mean.shape[-1] if self.mean.ndim else 0
        if self.mean.ndim < 1 or self.cov.shape != (*self.mean.shape, d):
            raise ValueError(
                f"expected mean of shape (..., d) and cov of shape (..., d, d), got "
                f"{tuple(self.mean.shape)} and {tuple(self.cov.shape)}"
            )

    @property
    def dim(self) -> int:
        """d, the dimension of the random vector (the last dimension of ``mean``)."""
        return self.mean.shape[-1]

    @classmethod
    def diagonal(cls, mean: Tensor, var: Tensor) -> FullGaussian:
        """A mean-field (diagonal) Gaussian with variances ``var`` (same shape as ``mean``)."""
        return cls(mean, torch.diag_embed(var))

    def log_det_cov(self) -> Tensor:
        """log det cov, through a Cholesky factor (raises if cov is not positive definite)."""
        chol = torch.linalg.cholesky(self.cov)
        return 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)

    def detach(self) -> FullGaussian:
        """The same Gaussian with ``mean`` and ``cov`` detached from the autograd graph."""
        return FullGaussian(self.mean.detach(), self.cov.detach())

    def __getitem__(self, i: int) -> FullGaussian:
        """Entry ``i`` of the leading batch dimension."""
        if self.mean.ndim < 2:
            raise IndexError("this FullGaussian has no batch dimension")
        return FullGaussian(self.mean[i], self.cov[i])


def kl_gaussian(q: FullGaussian, p: FullGaussian) -> Tensor:
    """KL(q || p) between two full-covariance Gaussians, in closed form (batched).

    KL = 0.5 * [tr(P^-1 Q) + (m_p - m_q)^T P^-1 (m_p - m_q) - d + log det P - log det Q].
    Returns a tensor of the broadcast batch shape of ``q`` and ``p`` (0-d for single Gaussians), in nats.

    Raises:
        ValueError: ``q`` and ``p`` have different dimensions d.
    """
    if q.dim != p.dim:
        raise ValueError(f"q has dimension {q.dim} but p has {p.dim}")
    chol_p = torch.linalg.cholesky(p.cov)
    diff = (p.mean - q.mean).unsqueeze(-1)
    # P^-1 Q and P^-1 diff through triangular solves rather than an explicit inverse.
    chol_p_q = torch.broadcast_to(chol_p, torch.broadcast_shapes(chol_p.shape, q.cov.shape))
    trace = torch.cholesky_solve(q.cov.expand_as(chol_p_q), chol_p_q).diagonal(dim1=-2, dim2=-1).sum(-1)
    chol_p_d = torch.broadcast_to(chol_p, (*diff.shape[:-2], *chol_p.shape[-2:]))
    maha = (diff * torch.cholesky_solve(diff, chol_p_d)).sum((-2, -1))
    log_det_p = 2.0 * torch.log(torch.diagonal(chol_p, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * (trace + maha - q.dim + log_det_p - q.log_det_cov())


def _as_prior_var(prior_var: float | Tensor, dtype: torch.dtype, device: torch.device) -> Tensor:
    t = torch.as_tensor(prior_var, dtype=dtype, device=device)
    if t.ndim > 1 or t.numel() == 0 or not bool(torch.all(torch.isfinite(t) & (t > 0))):
        raise ValueError(f"prior_var must be a positive finite variance or a 1-d tensor of them, got {prior_var!r}")
    return t


class BayesianLinearRegression:
    """y = X w + N(0, noise_var), prior w ~ N(0, prior_var I): evidence and posterior in closed form.

    Args:
        x: design matrix, shape (n, d).
        y: targets, shape (n,).
        noise_var: the known noise variance.
        prior_var: alpha_pr, the prior **variance** of every weight (eq. 1); a float, or a 1-d
            tensor of K values for K models at once (results then have a leading dimension K).

    Raises:
        ValueError: ``x`` is not of shape (n, d) or ``y`` not of shape (n,), or ``noise_var`` is not
            a positive finite number, or ``prior_var`` is not a positive finite number or a
            non-empty 1-d tensor of them.
    """

    def __init__(self, x: Tensor, y: Tensor, noise_var: float, prior_var: float | Tensor) -> None:
        if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"expected x of shape (n, d) and y of shape (n,), got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        if not (math.isfinite(float(noise_var)) and float(noise_var) > 0):
            raise ValueError(f"noise_var must be a positive finite variance, got {noise_var!r}")
        self.x, self.y = x, y
        self.noise_var = float(noise_var)
        self.prior_var = _as_prior_var(prior_var, x.dtype, x.device)
        self.xtx = x.T @ x
        self.xty = x.T @ y
        self.yty = y @ y

    @property
    def n(self) -> int:
        """n, the number of observations (rows of ``x``)."""
        return self.x.shape[0]

    @property
    def dim(self) -> int:
        """d, the number of weights (columns of ``x``)."""
        return self.x.shape[1]

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """``()`` for one prior variance, ``(K,)`` for K of them."""
        return tuple(self.prior_var.shape)

    def with_prior_var(self, prior_var: float | Tensor) -> BayesianLinearRegression:
        """The same data and noise with another prior variance (or batch of them)."""
        return BayesianLinearRegression(self.x, self.y, self.noise_var, prior_var)

    def _eye(self, k: int) -> Tensor:
        return torch.eye(k, dtype=self.x.dtype, device=self.x.device)

    def _pv(self) -> Tensor:
        """The prior variance shaped to broadcast against (..., d, d)."""
        return self.prior_var[..., None, None]

    def prior(self) -> FullGaussian:
        """p(w | alpha_pr) = N(0, prior_var I), eq. (1)."""
        cov = self._pv() * self._eye(self.dim)
        return FullGaussian(torch.zeros(cov.shape[:-1], dtype=self.x.dtype, device=self.x.device), cov)

    def posterior_precision(self) -> Tensor:
        """Sigma^-1 = X^T X / noise_var + I / prior_var."""
        return self.xtx / self.noise_var + self._eye(self.dim) / self._pv()

    def posterior(self) -> FullGaussian:
        """p(w | D, alpha_pr) = N(m, Sigma), m = Sigma X^T y / noise_var."""
        chol = torch.linalg.cholesky(self.posterior_precision())
        cov = torch.cholesky_inverse(chol)
        rhs = (self.xty / self.noise_var).expand(*self.batch_shape, self.dim).unsqueeze(-1)
        mean = torch.cholesky_solve(rhs, chol).squeeze(-1)
        return FullGaussian(mean, 0.5 * (cov + cov.transpose(-2, -1)))

    def log_evidence(self) -> Tensor:
        """log p(y | alpha_pr), eq. (2): the log density of y under N(0, prior_var X X^T + noise_var I).

        Computed from the n-dimensional marginal of y, independently of the posterior.
        """
        c = self._pv() * (self.x @ self.x.T) + self.noise_var * self._eye(self.n)
        chol = torch.linalg.cholesky(c)
        rhs = self.y.expand(*self.batch_shape, self.n).unsqueeze(-1)
        z = torch.linalg.solve_triangular(chol, rhs, upper=False).squeeze(-1)
        log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        return -0.5 * (z * z).sum(-1) - 0.5 * log_det - 0.5 * self.n * math.log(2 * math.pi)

    def log_evidence_via_posterior(self) -> Tensor:
        """log p(y) again, from Bayes' rule at w = m: log p(y|m) + log p(m) - log p(m|y)."""
        post = self.posterior()
        m = post.mean
        resid = self.y - m @ self.x.T
        return (
            -0.5 * self.n * math.log(2 * math.pi * self.noise_var)
            - 0.5 * (resid * resid).sum(-1) / self.noise_var
            - 0.5 * (m * m).sum(-1) / self.prior_var
            - 0.5 * self.dim * torch.log(self.prior_var)
            + 0.5 * post.log_det_cov()
        )

    def kl_to_prior(self, q: FullGaussian) -> Tensor:
        """KL(q || N(0, prior_var I)) = 0.5 [(tr S + |mu|^2) / a - d + d log a - log det S], a = prior_var.

        The isotropic prior needs no matrix factorisation; equal to ``kl_gaussian(q, self.prior())``.
        """
        tr = q.cov.diagonal(dim1=-2, dim2=-1).sum(-1)
        sq = (q.mean * q.mean).sum(-1)
        a = self.prior_var
        return 0.5 * ((tr + sq) / a - self.dim + self.dim * torch.log(a) - q.log_det_cov())

    def expected_log_lik(self, q: FullGaussian) -> Tensor:
        """E_q log p(y | w) = -n/2 log(2 pi s^2) - (||y - X mu||^2 + tr(X^T X S)) / (2 s^2), exact."""
        # ||y - X mu||^2 from the sufficient statistics y^T y, X^T y, X^T X: no n-sized work.
        mu = q.mean
        sq_resid = self.yty - 2.0 * (mu * self.xty).sum(-1) + (mu * (mu @ self.xtx)).sum(-1)
        trace = (self.xtx * q.cov).sum((-2, -1))
        quad = sq_resid + trace
        return -0.5 * self.n * math.log(2 * math.pi * self.noise_var) - 0.5 * quad / self.noise_var


def elbo(q: FullGaussian, model: BayesianLinearRegression) -> Tensor:
    """The evidence lower bound (eq. 3): E_q log p(D | w) - KL(q || p(w | alpha_pr)).

    For every q, ``model.log_evidence() - elbo(q, model)`` equals KL(q || posterior) >= 0.
    Returns a tensor of the broadcast batch shape of ``q`` and ``model.prior_var`` (0-d for one of each), in nats.

    Raises:
        ValueError: ``q`` has another dimension than the model's number of weights.
    """
    if q.dim != model.dim:
        raise ValueError(f"q has dimension {q.dim} but the model has {model.dim} weights")
    return model.expected_log_lik(q) - model.kl_to_prior(q)
