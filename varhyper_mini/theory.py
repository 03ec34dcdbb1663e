"""Quantities from the paper's theory.

- the symmetrised KL D(q1, q2) of section 4.1 (``sym_kl``, ``kl_between``);
- Theorem 1, statements 1 and 2: mu-gradients of L1 / L2 against L3 (``theorem1_gap``);
- eq. (8), the exact difference L1 - L2 (``l1_minus_l2``);
- Theorem 1, statement 3: L1 with lambda = m / m0 against subsample ELBOs (``subsample_elbos``);
- ``fit_at_lams``: precise, deterministic fits of q at several lambdas for these checks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from . import losses
from ._checks import as_int
from .data import TensorData, batches
from .gaussian import GaussianParams, ParamSpec, check_prior_var
from .hypernets import check_lam

__all__ = [
    "sym_kl",
    "kl_between",
    "log_det_cov",
    "l1_minus_l2",
    "antithetic_noise",
    "expected_nll",
    "loss_value",
    "mu_gradient",
    "theorem1_gap",
    "LamFit",
    "fit_at_lams",
    "expected_loglik",
    "scaled_l1_objective",
    "subsample_elbos",
]


def _check_pair(p: GaussianParams, q: GaussianParams) -> None:
    for name, g in (("p", p), ("q", q)):
        if not g.variational:
            raise ValueError(f"{name} is deterministic (log_sigma is None); sym_kl needs two Gaussians")
    if set(p.mean) != set(q.mean):
        raise ValueError(f"p and q have different parameter names: {sorted(p.mean)} vs {sorted(q.mean)}")


def kl_between(p: GaussianParams, q: GaussianParams) -> Tensor:
    """KL(p || q) between two diagonal Gaussians, summed over all weights."""
    _check_pair(p, q)
    total = torch.zeros(())
    for n in p.mean:
        lp, lq = p.log_sigma[n], q.log_sigma[n]
        d = p.mean[n] - q.mean[n]
        term = lq - lp + (torch.exp(2 * lp) + d * d) / (2 * torch.exp(2 * lq)) - 0.5
        total = total + term.sum()
    return total


def sym_kl(p: GaussianParams, q: GaussianParams) -> Tensor:
    """The paper's symmetrised divergence D(p, q) = KL(p || q) + KL(q || p)."""
    return kl_between(p, q) + kl_between(q, p)


# ---------------------------------------------------------------------------------------------
# Theorem 1 and eq. (8): the three losses compared (chapter "Three losses and Theorem 1").
#
# All losses here are the package's, written to be minimised (see ``varhyper_mini.losses``):
#   L1(lam) = nll + lam * KL(q || N(0, a)) / N,  L2(lam) = nll + KL(q || N(0, a / lam)) / N,
#   L3(lam) = nll + lam * ||w||^2 / N,
# with nll the batch-mean cross-entropy, a = prior_var and N = n_train. The expectation of the
# nll under q is estimated with antithetic pairs w = mu +- sigma * eps for a fixed set of eps, so
# every function below is deterministic given its noise.
# ---------------------------------------------------------------------------------------------


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


def antithetic_noise(
    n_pairs: int, n_params: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64
) -> Tensor:
    """Standard normal noise in antithetic pairs, shape (2 * n_pairs, n_params): rows eps and -eps.

    Averaging f(mu + sigma * eps) over such pairs cancels the odd terms of the Taylor series in
    sigma, so the estimate of E_q f differs from f(mu) by O(sigma^2), as the exact expectation does.
    """
    n_pairs = as_int(n_pairs, "n_pairs")
    eps = torch.randn(n_pairs, n_params, generator=generator, dtype=dtype)
    return torch.cat([eps, -eps])


def _flat(params: GaussianParams, spec: ParamSpec) -> tuple[Tensor, Tensor | None]:
    nb = len(params.batch_shape)
    mean = spec.flatten(params.mean, batch_dims=nb)
    ls = None if params.log_sigma is None else spec.flatten(params.log_sigma, batch_dims=nb)
    return mean, ls


def _nll_of_weights(target: nn.Module, spec: ParamSpec, w: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Batch-mean cross-entropy for each row of flat weights ``w`` (..., P): shape (...)."""
    lead = w.shape[:-1]
    flat = w.reshape(-1, spec.total)
    weights = spec.unflatten(flat)
    logits = torch.func.vmap(lambda p: torch.func.functional_call(target, p, (x,)))(weights)
    return losses.nll_per_sample(logits, y).reshape(lead)


def expected_nll(target: nn.Module, params: GaussianParams, data: TensorData, eps: Tensor) -> Tensor:
    """E_q[batch-mean cross-entropy] estimated on the weight draws mu + sigma * eps (rows of ``eps``).

    A deterministic ``params`` (no sigma) gives the cross-entropy at the means.
    """
    spec = ParamSpec.from_module(target)
    mean, ls = _flat(params, spec)
    x, y = data.x.to(mean.dtype), data.y
    if ls is None:
        return _nll_of_weights(target, spec, mean.unsqueeze(-2), x, y).squeeze(-1)
    w = mean.unsqueeze(-2) + torch.exp(ls).unsqueeze(-2) * eps.to(mean.dtype)
    return _nll_of_weights(target, spec, w, x, y).mean(-1)


def loss_value(
    name: str,
    target: nn.Module,
    params: GaussianParams,
    data: TensorData,
    lam: float | Tensor,
    n_train: int,
    prior_var: float = 1.0,
    eps: Tensor | None = None,
) -> Tensor:
    """L1, L2 or L3 (``name`` as in ``losses.LOSSES``) of ``params`` on ``data``, nll from ``eps``.

    ``base`` (L3) uses the means only. Keeps ``params.batch_shape``: returns a tensor of that
    shape, in nats per example. ``eps``: noise of shape (S, P) (P = the target's parameter count),
    e.g. ``antithetic_noise``.

    Raises:
        ValueError: an unknown ``name``; ``eps`` is None for the variational or covariance loss;
            or what ``losses.penalty`` raises.
    """
    losses.check_loss_name(name)
    if name == "base":
        det = GaussianParams(params.mean, None, params.batch_shape)
        nll = expected_nll(target, det, data, torch.zeros(1, 1))
        return nll + losses.penalty("base", det, lam, n_train)
    if eps is None:
        raise ValueError(f"the {name} loss needs the noise eps for E_q[nll]; see antithetic_noise")
    nll = expected_nll(target, params, data, eps)
    return nll + losses.penalty(name, params, lam, n_train, prior_var)


def mu_gradient(
    name: str,
    target: nn.Module,
    params: GaussianParams,
    data: TensorData,
    lam: float,
    n_train: int,
    prior_var: float = 1.0,
    eps: Tensor | None = None,
) -> Tensor:
    """The gradient of loss ``name`` with respect to the means mu, as one flat vector.

    The log sigmas are held fixed (Theorem 1 takes alpha_ps as fixed, not optimised). Returns
    shape (P,), P the target's parameter count, the tensors in the order of ``params.mean``.

    Raises:
        ValueError: ``params`` hold a batch of models; or what ``loss_value`` raises.
    """
    if params.batch_shape:
        raise ValueError("mu_gradient takes the parameters of one model; index a batch with params[i]")
    mean = {k: v.detach().clone().requires_grad_(True) for k, v in params.mean.items()}
    ls = None if params.log_sigma is None else {k: v.detach() for k, v in params.log_sigma.items()}
    value = loss_value(name, target, GaussianParams(mean, ls), data, lam, n_train, prior_var, eps)
    grads = torch.autograd.grad(value, list(mean.values()))
    return torch.cat([g.reshape(-1) for g in grads])


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


@dataclass
class LamFit:
    """Models optimised at several lambdas: ``params`` has ``batch_shape == (K,)``.

    ``trace`` holds the loss of every model after each step, shape (steps, K).
    """

    params: GaussianParams
    lams: Tensor
    trace: Tensor


def fit_at_lams(
    target: nn.Module,
    data: TensorData,
    loss: str,
    lams: Sequence[float],
    prior_var: float = 1.0,
    n_train: int | None = None,
    steps: int = 1000,
    lr: float = 0.05,
    n_pairs: int = 8,
    seed: int = 0,
    init_log_sigma: float = -3.0,
    dtype: torch.dtype = torch.float32,
) -> LamFit:
    """Minimise loss(lam) over q for each lam in ``lams``: K independent models in one loop.

    A deterministic, full-batch version of training a directly trained model, for the theory
    chapters: E_q[nll] uses a fixed set of ``n_pairs`` antithetic noise pairs (shared by every
    lambda), and Adam's learning rate decays to 1e-3 ``lr`` along a cosine, so the result is a
    precise optimum of that objective. Every model starts at ``target``'s parameters with
    ``init_log_sigma``. Use ``vh.train_many`` for the stochastic, minibatch training of the paper.

    Raises:
        ValueError: an unknown ``loss``; ``lams`` empty or holding a lambda that is not positive,
            finite and in the float32 range; ``steps`` not a positive integer; a bad ``prior_var``.
    """
    losses.check_loss_name(loss)
    if len(lams) == 0:
        raise ValueError("lams is empty; give at least one lambda")
    lam_t = torch.as_tensor([float(check_lam(v)) for v in lams], dtype=dtype)
    steps = as_int(steps, "steps")
    check_prior_var(prior_var)
    n_train = len(data) if n_train is None else n_train
    spec = ParamSpec.from_module(target)
    k = len(lam_t)
    init = spec.flatten({n: p.detach() for n, p in target.named_parameters()}).to(dtype)
    mean = init.expand(k, -1).clone().requires_grad_(True)
    variational = loss != "base"
    ls = torch.full((k, spec.total), init_log_sigma, dtype=dtype, requires_grad=True) if variational else None
    gen = torch.Generator().manual_seed(seed)
    eps = antithetic_noise(n_pairs, spec.total, gen, dtype) if variational else None
    x, y = data.x.to(dtype), data.y
    opt = torch.optim.Adam([mean] + ([ls] if variational else []), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=1e-3 * lr)
    trace = []
    for _ in range(steps):
        opt.zero_grad()
        if variational:
            w = mean.unsqueeze(1) + torch.exp(ls).unsqueeze(1) * eps  # (K, 2S, P)
            nll = _nll_of_weights(target, spec, w, x, y).mean(-1)
        else:
            nll = _nll_of_weights(target, spec, mean, x, y)
        gp = GaussianParams(spec.unflatten(mean), None if ls is None else spec.unflatten(ls), (k,), _flat=(mean, ls))
        value = nll + losses.penalty_unchecked(loss, gp, lam_t, n_train, prior_var)
        value.sum().backward()  # the models are independent
        opt.step()
        sched.step()
        trace.append(value.detach())
    mean, ls = mean.detach(), None if ls is None else ls.detach()
    params = GaussianParams(spec.unflatten(mean), None if ls is None else spec.unflatten(ls), (k,))
    return LamFit(params, lam_t, torch.stack(trace))


# ---------------------------------------------------------------------------------------------
# Statement 3 of Theorem 1: L1 with lambda = m / m0 and the ELBO of a subsample of size m0.
# These are the paper's objectives (to maximise), built from per-example expected log-likelihoods.
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def expected_loglik(
    target: nn.Module,
    params: GaussianParams,
    data: TensorData,
    n_samples: int = 8,
    generator: torch.Generator | None = None,
    batch_size: int = 4096,
) -> Tensor:
    """Per-example E_q log p(y_i | x_i, w), shape (m,), averaged over ``n_samples`` draws of w.

    The same draws are used for every example, so sums over any subset are consistent. In nats
    (log-likelihoods, <= 0); m = ``len(data)``.

    Raises:
        ValueError: ``params`` hold a batch of models, or ``n_samples`` is not a positive integer.
    """
    if params.batch_shape:
        raise ValueError("expected_loglik takes the parameters of one model")
    n_samples = as_int(n_samples, "n_samples")
    draws = [params.sample(generator) for _ in range(n_samples)]
    dev = next(iter(params.mean.values())).device
    out = []
    for idx in batches(len(data), batch_size, shuffle=False):
        x, y = data.x[idx].to(dev), data.y[idx].to(dev)
        ll = 0.0
        for w in draws:
            logp = torch.log_softmax(torch.func.functional_call(target, w, (x,)), -1)
            ll = ll + logp.gather(1, y[:, None]).squeeze(1)
        out.append(ll / n_samples)
    return torch.cat(out)


def scaled_l1_objective(loglik: Tensor, kl: float | Tensor, lam: float) -> Tensor:
    """(1/m) * L1(lam) with L1 = sum_i E_q log p(y_i | x_i, w) - lam * KL(q || prior), eq. (4) / m.

    ``loglik``: per-example expected log-likelihoods, shape (m,) (``expected_loglik``); ``kl`` in
    nats. Returns a 0-d tensor, in nats per example.

    Raises:
        ValueError: ``loglik`` is not a non-empty 1-d tensor.
    """
    if loglik.ndim != 1 or len(loglik) == 0:
        raise ValueError(f"loglik must be a non-empty 1-d tensor of per-example values, got {tuple(loglik.shape)}")
    return (loglik.sum() - lam * torch.as_tensor(kl, dtype=loglik.dtype)) / len(loglik)


def subsample_elbos(
    loglik: Tensor, kl: float | Tensor, m0: int, n_repeats: int, generator: torch.Generator | None = None
) -> Tensor:
    """ELBO(D_hat) / m0 for ``n_repeats`` random subsamples D_hat of size ``m0`` (without replacement).

    ELBO(D_hat) = sum_{i in D_hat} E_q log p(y_i | x_i, w) - KL(q || prior), eq. (3). Statement 3:
    its mean equals ``scaled_l1_objective(loglik, kl, m / m0)`` and its spread shrinks as m0 grows.
    ``loglik`` of shape (m,) as for ``scaled_l1_objective``; returns shape (n_repeats,), in nats
    per example.

    Raises:
        ValueError: ``m0`` is not an integer in [1, m], or ``n_repeats`` is not a positive integer.
    """
    m = len(loglik)
    if not isinstance(m0, int) or not 1 <= m0 <= m:
        raise ValueError(f"m0 must be an integer between 1 and {m}, got {m0!r}")
    n_repeats = as_int(n_repeats, "n_repeats")
    kl_t = torch.as_tensor(kl, dtype=loglik.dtype)
    # The first m0 entries of a random permutation (random keys, sorted) form a uniform subsample.
    keys = torch.rand(n_repeats, m, generator=generator)
    idx = keys.argsort(dim=1)[:, :m0]
    return (loglik[idx].sum(1) - kl_t) / m0
