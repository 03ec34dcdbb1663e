"""Theorem 1, statement 3: L1 with lambda = m / m0 is, per example, the ELBO of a subsample of size m0.

These are the paper's objectives (to maximise), built from per-example expected log-likelihoods
l_i = E_q log p(y_i | x_i, w): (1/m) L1(lambda) = (sum_i l_i - lambda KL) / m (eq. 4) against
ELBO(D_hat) / m0 = (sum_{i in D_hat} l_i - KL) / m0 (eq. 3). For a subsample drawn uniformly without
replacement the two agree exactly in expectation, with standard deviation s_l sqrt((1 - m0/m) / m0)
(the finite-population formula; s_l the standard deviation of the l_i).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import torch
from torch import Tensor, nn

from .._checks import as_int
from ..data import TensorData, batches
from ..gaussian import GaussianParams

__all__ = ["expected_loglik", "scaled_l1_objective", "subsample_elbos", "statement3_table", "statement3_findings"]


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


def statement3_table(
    loglik: Tensor, kl: float, m0s: Sequence[int], n_repeats: int, generator: torch.Generator | None = None
) -> pd.DataFrame:
    """Statement 3 for each subsample size m0 of ``m0s``: (1/m) L1(m / m0) against subsample ELBOs / m0.

    Args:
        loglik: per-example E_q log p(y_i | x_i, w), shape (m,) (``expected_loglik``), nats.
        kl: KL(q || prior), nats.
        m0s: subsample sizes, each between 1 and m.
        n_repeats: random subsamples per size, drawn from ``generator`` (sizes in the given order).

    Returns:
        One row per m0, columns ``m0``, ``lambda = m/m0``, ``(1/m) L1``, ``mean of ELBO/m0``, and for
        the difference ELBO/m0 - (1/m) L1: ``mean difference``, ``sd of difference``, ``standard
        error`` (sd / sqrt(n_repeats)) and ``sd predicted`` (the finite-population formula).

    Raises:
        ValueError: for a loglik that is not a non-empty 1-d tensor, an m0 outside [1, m], or a
            bad ``n_repeats``.
    """
    n_repeats = as_int(n_repeats, "n_repeats")
    if loglik.ndim != 1 or len(loglik) == 0:
        raise ValueError(f"loglik must be a non-empty 1-d tensor of per-example values, got {tuple(loglik.shape)}")
    m = len(loglik)
    s_ell = float(loglik.std())
    rows = []
    for m0 in m0s:
        full = float(scaled_l1_objective(loglik, kl, lam=m / m0))
        subs = subsample_elbos(loglik, kl, m0, n_repeats, generator)
        diff = subs - full
        rows.append(
            {
                "m0": m0,
                "lambda = m/m0": m / m0,
                "(1/m) L1": full,
                "mean of ELBO/m0": float(subs.mean()),
                "mean difference": float(diff.mean()),
                "sd of difference": float(diff.std()),
                "standard error": float(diff.std()) / math.sqrt(n_repeats),
                "sd predicted": s_ell * math.sqrt((1 - m0 / m) / m0),
            }
        )
    return pd.DataFrame(rows)


def statement3_findings(table: pd.DataFrame) -> dict[str, float | int]:
    """The numbers chapter 2 quotes from ``statement3_table`` (rows in increasing m0).

    Returns:
        ``max_z`` (largest |mean difference| in standard errors), ``sd_first`` and ``sd_last``
        (spread of the difference at the smallest and the largest m0), ``m0_first`` and
        ``m0_last``, ``sd_ratio`` (largest |measured sd / predicted sd - 1|).

    Raises:
        ValueError: when ``table`` is empty.
    """
    if table.empty:
        raise ValueError("table is empty; give statement3_table at least one m0")
    z = (table["mean difference"] / table["standard error"]).abs()
    sd = table["sd of difference"]
    return {
        "max_z": float(z.max()),
        "sd_first": float(sd.iloc[0]),
        "sd_last": float(sd.iloc[-1]),
        "m0_first": int(table.m0.iloc[0]),
        "m0_last": int(table.m0.iloc[-1]),
        "sd_ratio": float((sd / table["sd predicted"]).sub(1).abs().max()),
    }
