"""Algorithm 2: pick lambda, generate the model, remove its least relevant weights.

Relevance follows the paper's criteria: Graves' relative density (17),
g_var(w) ∝ exp(-mu^2 / (2 sigma^2)), ranks weights by |mu| / sigma; the simplified
criterion (18), g_simple(w) ∝ exp(-w^2), ranks them by |w|. Only weights are pruned
(tensors of two or more dimensions); biases are kept, as in the authors' code.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import Tensor, nn

from .data import TensorData
from .gaussian import GaussianParams
from .hypernets import Hypernet
from .train import accuracy

__all__ = ["prune", "relevance", "prunable_names", "pruning_curve", "FRACTIONS", "sparsity"]

FRACTIONS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9)
CRITERIA = ("var", "simple")
SCOPES = ("layer", "global")


def prunable_names(params: GaussianParams) -> list[str]:
    """Names of the weight tensors (two or more dimensions); biases are never pruned."""
    nb = len(params.batch_shape)
    return [n for n, t in params.mean.items() if t.ndim - nb >= 2]


def relevance(params: GaussianParams, criterion: str = "var") -> dict[str, Tensor]:
    """Per-weight score: |mu| / sigma for "var" (eq. 17), |mu| for "simple" (eq. 18).

    A larger score means a more relevant weight; pruning removes the smallest scores.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose one of {CRITERIA}")
    if criterion == "var" and not params.variational:
        raise ValueError(
            "criterion 'var' (|mu|/sigma) needs a variational model; use criterion='simple' for a deterministic one"
        )
    out = {}
    for n in prunable_names(params):
        m = params.mean[n].detach().abs()
        out[n] = m / torch.exp(params.log_sigma[n].detach()) if criterion == "var" else m
    return out


def _lowest(scores: Tensor, count: int) -> Tensor:
    """A boolean mask of exactly ``count`` lowest entries (ties broken by position)."""
    mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    if count > 0:
        order = torch.argsort(scores.flatten(), stable=True)
        mask[order[:count]] = True
    return mask.view_as(scores)


def prune(params: GaussianParams, fraction: float, criterion: str = "var", scope: str = "layer") -> GaussianParams:
    """Zero the means of the ``fraction`` least relevant weights; a new object is returned.

    Args:
        params: the model's parameters (unbatched).
        fraction: share of weights to delete, 0 <= fraction <= 1; the count per tensor
            (``scope="layer"``) or overall (``"global"``) is round(fraction * n).
        criterion: "var" (|mu|/sigma, eq. 17) or "simple" (|mu|, eq. 18).
        scope: "layer" prunes the same fraction of every weight tensor; "global" ranks all
            weights together under one threshold.
    """
    if params.batch_shape:
        raise ValueError("prune takes the parameters of one model; pick one with params[i]")
    if not isinstance(fraction, (int, float)) or not 0.0 <= float(fraction) <= 1.0:
        raise ValueError(f"fraction must be a number in [0, 1], got {fraction!r}")
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose one of {SCOPES}")
    scores = relevance(params, criterion)
    out = params.detach().clone()
    if scope == "layer":
        masks = {n: _lowest(s, round(fraction * s.numel())) for n, s in scores.items()}
    else:
        flat = torch.cat([s.flatten() for s in scores.values()])
        mask = _lowest(flat, round(fraction * flat.numel()))
        masks, start = {}, 0
        for n, s in scores.items():
            masks[n] = mask[start : start + s.numel()].view_as(s)
            start += s.numel()
    for n, mk in masks.items():
        out.mean[n] = out.mean[n].masked_fill(mk, 0.0)
    return out


def sparsity(params: GaussianParams) -> float:
    """Share of weights (not biases) whose mean is exactly zero."""
    names = prunable_names(params)
    total = sum(params.mean[n].numel() for n in names)
    zeros = sum(int((params.mean[n] == 0).sum()) for n in names)
    return zeros / total


def pruning_curve(
    hypernet: Hypernet,
    target: nn.Module,
    data: TensorData,
    lams: Sequence[float],
    fractions: Sequence[float] = FRACTIONS,
    criterion: str = "var",
    scope: str = "layer",
) -> pd.DataFrame:
    """Algorithm 2 over a grid: accuracy at each lambda and pruning fraction.

    Returns a tidy table with columns ``lam, fraction, accuracy``.
    """
    rows = []
    with torch.no_grad():
        for lam in lams:
            params = hypernet(lam)
            for f in fractions:
                acc = accuracy(target, prune(params, f, criterion, scope), data)
                rows.append({"lam": float(lam), "fraction": float(f), "accuracy": acc})
    return pd.DataFrame(rows)
