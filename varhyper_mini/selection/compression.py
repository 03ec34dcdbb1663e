"""How small a pruned model is: counts of kept parameters, compression ratio, sparsity.

One rule for biases (1-d tensors) in every count here, with one switch, ``include_biases``:

- **Sizes** (``count_nonzero``, ``compression_ratio``, the ``compression`` column of
  ``compression_table``, ``fit_budget``'s ``max_nonzero``) count every stored floating-point
  parameter, biases included, by default: a saved model keeps its biases.
- **Shares of deleted weights** (``sparsity``, the pruning ``fraction`` of Algorithm 2,
  ``deletable_fraction``) count the weight tensors only, by default: the paper's Algorithm 2
  prunes weights and keeps the biases, as ``vh.prune`` does.

Both counts come from ``count_nonzero``, so they agree: for either value of ``include_biases``,
``sparsity(p, b) == (total - nonzero) / total`` with ``nonzero, total = count_nonzero(p, b)``,
and ``sparsity(p)`` equals ``vh.sparsity(p)`` (``prune.sparsity``, which leaves biases out).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import torch
from torch import Tensor, nn

from .._checks import as_real
from ..data import TensorData
from ..evaluation import accuracy, check_data
from ..gaussian import GaussianParams
from ..pruning import check_fraction, nothing_to_prune, prune

__all__ = ["count_nonzero", "compression_ratio", "sparsity", "compression_table", "deletable_fraction"]

#: What the counts accept: one model's GaussianParams (their means), a module, or a dict of tensors.
Weights = GaussianParams | nn.Module | dict[str, Tensor]


def _module_weights(module: nn.Module) -> dict[str, Tensor]:
    """The module's parameters by name, with ``torch.nn.utils.prune`` masks applied (w = w_orig * mask)."""
    buffers = dict(module.named_buffers())
    out = {}
    for n, p in module.named_parameters():
        if n.endswith("_orig") and n[: -len("_orig")] + "_mask" in buffers:
            base = n[: -len("_orig")]
            out[base] = p.detach() * buffers[base + "_mask"]
        else:
            out[n] = p.detach()
    return out


def _tensors(params: Weights) -> dict[str, Tensor]:
    if isinstance(params, GaussianParams):
        if params.batch_shape:
            raise ValueError("pass the parameters of one model (params[i] picks one from a batch)")
        return params.mean
    if isinstance(params, nn.Module):
        return _module_weights(params)
    if isinstance(params, dict) and all(isinstance(v, Tensor) for v in params.values()):
        return params
    raise ValueError(f"expected GaussianParams, an nn.Module or a dict of tensors, got {type(params).__name__}")


def count_nonzero(params: Weights, include_biases: bool = True) -> tuple[int, int]:
    """(non-zero, total) parameter counts; biases (1-d tensors) count unless ``include_biases=False``.

    Accepts ``GaussianParams`` of one model (their means), a dict of tensors, or an
    ``nn.Module`` (a module pruned with ``torch.nn.utils.prune`` counts its effective, masked
    weights). Only floating-point tensors count; a NaN counts as non-zero.

    Raises:
        ValueError: for another type or batched ``GaussianParams``; for no floating-point
            parameters; with ``include_biases=False``, for a model without weight tensors (the
            "nothing to prune" error of every pruning function).
    """
    tensors = _tensors(params)
    nz = total = 0
    for t in tensors.values():
        if not torch.is_floating_point(t) or (t.ndim < 2 and not include_biases):
            continue
        nz += int(torch.count_nonzero(t.detach()))
        total += t.numel()
    if total == 0:
        if not include_biases:  # the error every pruning function gives for such a model
            raise nothing_to_prune(tensors)
        raise ValueError("no floating-point parameters to count")
    return nz, total


def compression_ratio(params: Weights, include_biases: bool = True) -> float:
    """Total parameters / non-zero parameters (1 for a dense model, inf when all are zero).

    Biases count by default, since a stored model keeps them; ``include_biases=False`` counts
    the weight tensors only (the ones Algorithm 2 prunes). Accepts what ``count_nonzero``
    accepts and raises what it raises.
    """
    nz, total = count_nonzero(params, include_biases)
    return math.inf if nz == 0 else total / nz


def sparsity(params: Weights, include_biases: bool = False) -> float:
    """Share of parameters that are exactly zero, in [0, 1]: (total - non-zero) / total.

    By default the weight tensors only (the share Algorithm 2 deleted; biases are kept), which
    is ``vh.sparsity`` (``prune.sparsity``) to the last bit; ``include_biases=True`` counts the
    biases too, as ``compression_ratio`` does by default, and then
    ``sparsity(p, True) == 1 - 1 / compression_ratio(p)`` up to rounding. Accepts what
    ``count_nonzero`` accepts and raises what it raises.
    """
    nz, total = count_nonzero(params, include_biases)
    return (total - nz) / total


@torch.no_grad()
def compression_table(
    target: nn.Module,
    params: GaussianParams,
    data: TensorData,
    fractions: Sequence[float] = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99),
    criterion: str = "var",
    scope: str = "layer",
) -> pd.DataFrame:
    """Accuracy and compression ratio (total / non-zero parameters) at each pruning level.

    Each fraction is the share of weights that Algorithm 2 (``vh.prune``) deletes, biases kept.
    Two ratios, as the compression literature reports them: ``compression`` counts every stored
    parameter (biases included), ``compression_weights`` only the weight tensors that Algorithm 2
    prunes. ``params`` is one model's posterior, e.g. ``hypernet(lam)``.

    Returns:
        One row per fraction: ``fraction``, ``nonzero`` and ``total`` (parameter counts, biases
        included), ``compression``, ``compression_weights`` and ``accuracy`` on ``data``
        (mean weights, a share in [0, 1]).
    Raises:
        ValueError: for batched ``params``, a fraction outside [0, 1], empty data, or the errors
            of ``vh.prune``.
    """
    check_data(data, "data")
    if isinstance(params, GaussianParams) and params.batch_shape:
        raise ValueError("pass the parameters of one model (params[i] picks one from a batch)")
    rows = []
    for f in [check_fraction(f, "fractions") for f in fractions]:
        pruned = prune(params, f, criterion, scope)
        nz, total = count_nonzero(pruned)
        nz_w, total_w = count_nonzero(pruned, include_biases=False)
        rows.append({
            "fraction": float(f), "nonzero": nz, "total": total,
            "compression": total / nz if nz else math.inf,
            "compression_weights": total_w / nz_w if nz_w else math.inf,
            "accuracy": accuracy(target, pruned, data),
        })  # fmt: skip
    return pd.DataFrame(rows)


@torch.no_grad()
def deletable_fraction(
    target: nn.Module,
    params: GaussianParams,
    data: TensorData,
    tol: float = 0.01,
    criterion: str = "var",
    scope: str = "layer",
    coarse: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99),
    resolution: float = 0.01,
) -> dict[str, float]:
    """The largest share of weights Algorithm 2 deletes while accuracy drops by at most ``tol``.

    The share counts weight tensors only (Algorithm 2 keeps the biases; see the module's rule).
    ``tol`` is absolute (0.01 = one percentage point below the unpruned model's accuracy on
    ``data``). The search evaluates the ``coarse`` fractions, takes the largest one within
    ``tol``, then bisects towards the next coarse fraction down to ``resolution`` (it assumes
    accuracy falls with the fraction between those two points).

    Returns:
        ``fraction`` (the share deleted), ``accuracy`` (at it), ``base_accuracy`` (unpruned),
        both shares in [0, 1], and ``evaluations`` (the number of pruned models scored).
    Raises:
        ValueError: for ``tol`` outside [0, 1), ``resolution`` outside (0, 0.5], a coarse
            fraction outside [0, 1], or the errors of ``vh.prune`` and ``vh.accuracy``.
    """
    if not 0 <= as_real(tol, "tol") < 1:
        raise ValueError(f"tol is an absolute accuracy drop in [0, 1), got {tol!r}")
    if not 0 < as_real(resolution, "resolution") <= 0.5:
        raise ValueError(f"resolution must be in (0, 0.5], got {resolution!r}")
    tol, resolution = float(tol), float(resolution)
    grid = sorted({check_fraction(f, "coarse fractions") for f in coarse} | {0.0})
    cache: dict[float, float] = {}

    def acc(f: float) -> float:
        f = round(f, 6)
        if f not in cache:
            cache[f] = accuracy(target, prune(params, f, criterion, scope), data)
        return cache[f]

    base = acc(0.0)
    floor = base - tol - 1e-9
    passing = [f for f in grid if acc(f) >= floor]
    lo = max(passing)
    above = [f for f in grid if f > lo]
    if above:
        hi = above[0]
        while hi - lo > resolution + 1e-9:
            mid = round(round((lo + hi) / 2 / resolution) * resolution, 6)
            if mid <= lo or mid >= hi:
                break
            if acc(mid) >= floor:
                lo = mid
            else:
                hi = mid
    return {"fraction": lo, "accuracy": acc(lo), "base_accuracy": base, "evaluations": len(cache)}
