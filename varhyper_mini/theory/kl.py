"""The symmetrised KL divergence D(q1, q2) of section 4.1 between two diagonal Gaussians."""

from __future__ import annotations

import torch
from torch import Tensor

from ..gaussian import GaussianParams

__all__ = ["kl_between", "sym_kl"]


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
