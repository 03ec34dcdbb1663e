"""How close two trained posteriors are: the measures the experiments compare models with.

- ``sym_kl_float64``: the symmetrised KL D(q1, q2) of section 4.1 (Figure 3), ``theory.sym_kl``
  computed in float64;
- ``relevance_distance``: how far apart the pruning scores g = |mu| / sigma (eq. (17)) are;
- ``expected_loss``: the variational loss L1 that training minimises, for Theorem 2's loss gap.

They build on ``theory`` and ``prune`` and belong to no single experiment.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import losses
from ..data import TensorData
from ..gaussian import GaussianParams, ParamSpec
from ..pruning import relevance
from ..theory import sym_kl

__all__ = ["sym_kl_float64", "relevance_distance", "expected_loss"]


def sym_kl_float64(p: GaussianParams, q: GaussianParams) -> float:
    """``theory.sym_kl`` D(p, q) = KL(p || q) + KL(q || p) in float64, as a Python float >= 0 (nats).

    Nearly equal posteriors give a small positive number, not float32 rounding noise (a
    negative remainder of rounding is reported as 0). ``p`` and ``q``: variational parameters of
    one model each (no batch), with the same names and shapes. Raises ``ValueError`` as
    ``theory.sym_kl`` does (a deterministic model, other parameter names).
    """

    with torch.no_grad():
        return max(0.0, float(sym_kl(p.to(dtype=torch.float64), q.to(dtype=torch.float64))))


def relevance_distance(p: GaussianParams, q: GaussianParams) -> float:
    """How far apart the pruning scores g = |mu| / sigma (eq. (17)) of two models are, in [0, 1].

    sum |g_p - g_q| / (sum g_p + sum g_q) over the prunable weights (the Bray-Curtis
    dissimilarity): 0 for equal scores, at most 1, symmetric, and scale-free, so that
    lambdas with large scores (weak prior) and near-zero scores (strong prior) weigh alike.
    ``p`` and ``q``: variational parameters of one model each, same names and shapes. Raises
    what ``prune.relevance`` raises (e.g. for a deterministic model).
    """
    gp, gq = relevance(p, "var"), relevance(q, "var")
    a = torch.cat([gp[n].flatten() for n in gq]).double()
    b = torch.cat([gq[n].flatten() for n in gq]).double()
    return float((a - b).abs().sum() / (a.sum() + b.sum()).clamp_min(1e-300))


@torch.no_grad()
def expected_loss(
    target: nn.Module,
    params: GaussianParams,
    data: TensorData,
    lam: float,
    n_train: int | None = None,
    prior_var: float = 1.0,
    samples: int = 512,
    seed: int = 0,
) -> float:
    """The variational loss L1 at ``lam`` as minimised in training (eq. (4), per example), on all of ``data``.

    E_{w ~ q}[mean cross-entropy] + lam * KL(q || N(0, prior_var)) / n_train, in nats per
    example, the expectation estimated with ``samples`` plain Monte Carlo draws of w (not
    antithetic, unlike ``theory.expected_nll``). The draws come from ``seed``, so two models
    compared with the same seed see the same noise (common random numbers), as Theorem 2's
    loss gap E_lambda[L(G(lambda)) - L(w*(lambda))] needs. ``n_train`` defaults to ``len(data)``.

    Raises:
        ValueError: ``params`` are not the variational parameters of one model (no batch).
    """
    if not isinstance(params, GaussianParams) or not params.variational or params.batch_shape:
        raise ValueError("expected_loss needs the variational parameters of one model (GaussianParams)")
    spec = ParamSpec.from_module(target)
    mean = spec.flatten(params.mean)
    log_sigma = spec.flatten(params.log_sigma)
    g = torch.Generator(device=mean.device).manual_seed(int(seed))
    eps = torch.randn(samples, spec.total, generator=g, device=mean.device, dtype=mean.dtype)
    weights = spec.unflatten(mean + torch.exp(log_sigma) * eps)
    x, y = data.x.to(mean.device), data.y.to(mean.device)
    logits = torch.func.vmap(lambda p: torch.func.functional_call(target, p, (x,)))(weights)
    s, b, c = logits.shape
    nll = F.cross_entropy(logits.reshape(s * b, c), y.repeat(s))
    n_train = len(data) if n_train is None else n_train
    return float(nll + losses.penalty("variational", params, lam, n_train, prior_var))
