"""The three losses of a variational model as deterministic functions of q, for the theory checks.

All losses here are the package's, written to be minimised (see ``varhyper_mini.losses``):
  L1(lam) = nll + lam * KL(q || N(0, a)) / N,  L2(lam) = nll + KL(q || N(0, a / lam)) / N,
  L3(lam) = nll + lam * ||w||^2 / N,
with nll the batch-mean cross-entropy, a = prior_var and N = n_train (eqs. 4-6). The expectation
of the nll under q is estimated with antithetic pairs w = mu +- sigma * eps for a fixed set of eps,
so every function below is deterministic given its noise; ``fit_at_lams`` optimises q this way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor, nn

from .. import losses
from .._checks import as_int
from ..data import TensorData
from ..gaussian import GaussianParams, ParamSpec, check_prior_var
from ..hypernets import check_lam

__all__ = [
    "antithetic_noise",
    "same_sigma",
    "expected_nll",
    "loss_value",
    "loss_table",
    "mu_gradient",
    "LamFit",
    "fit_at_lams",
]


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


def same_sigma(mean: Mapping[str, Tensor], log_sigma: float) -> GaussianParams:
    """q with the means ``mean`` (parameter name -> tensor) and the same sigma for every weight.

    Args:
        mean: the means mu, one tensor per parameter, in the target's order.
        log_sigma: log sigma, a number, shared by every weight (the dtype of each mean).

    Raises:
        ValueError: from ``GaussianParams`` for an empty ``mean``.
    """
    return GaussianParams(dict(mean), {n: torch.full_like(v, log_sigma) for n, v in mean.items()})


def loss_table(
    target: nn.Module,
    params: GaussianParams,
    data: TensorData,
    lams: Sequence[float],
    n_train: int,
    prior_var: float = 1.0,
    eps: Tensor | None = None,
) -> pd.DataFrame:
    """L1, L2 and L3 (eqs. 4-6, to minimise, per example) of one q at each lambda of ``lams``.

    E_q[nll] is estimated once on the weight draws mu + sigma * eps (rows of ``eps``, see
    ``antithetic_noise``); L3 is evaluated at w = mu.

    Returns:
        Indexed by ``lambda``, columns ``E_q[nll]``, ``L1``, ``L2``, ``L3 (at w = mu)`` (nats per example).

    Raises:
        ValueError: for a batched or deterministic ``params``, missing ``eps``, or a bad lambda,
            ``n_train`` or ``prior_var`` (from the losses).
    """
    if params.batch_shape or not params.variational:
        raise ValueError("loss_table takes the Gaussian parameters of one model")
    if eps is None:
        raise ValueError("loss_table needs the noise eps for E_q[nll]; see antithetic_noise")
    nll = expected_nll(target, params, data, eps)
    rows = {}
    for lam in lams:
        rows[lam] = {
            "E_q[nll]": float(nll),
            "L1": float(losses.variational(nll, params, lam, n_train, prior_var)),
            "L2": float(losses.covariance(nll, params, lam, n_train, prior_var)),
            "L3 (at w = mu)": float(loss_value("base", target, params, data, lam, n_train)),
        }
    return pd.DataFrame(rows).T.rename_axis("lambda")


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
