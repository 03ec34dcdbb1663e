"""Algorithm 2: pick lambda, generate the model, remove its least relevant weights.

Relevance follows the paper's criteria: Graves' relative density (17),
g_var(w) ∝ exp(-mu^2 / (2 sigma^2)), ranks weights by |mu| / sigma; the simplified
criterion (18), g_simple(w) ∝ exp(-w^2), ranks them by |w|. Only weights are pruned
(tensors of two or more dimensions); biases are kept, as in the authors' code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import torch
from torch import Tensor, nn

from ._checks import as_real, check_has_values
from .data import TensorData, batches
from .evaluation import accuracy, check_data, check_data_dtype
from .gaussian import GaussianParams
from .hypernets import Hypernet, call_with, check_lam, evaluation

__all__ = [
    "prune",
    "pruning_masks",
    "apply_masks",
    "layer_input_means",
    "correct_biases",
    "relevance",
    "prunable_names",
    "pruning_curve",
    "posterior_stats",
    "deleted_shares",
    "scope_comparison",
    "FRACTIONS",
    "CRITERIA",
    "SCOPES",
    "sparsity",
    "check_fraction",
    "nothing_to_prune",
]

FRACTIONS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9)
CRITERIA = ("var", "simple")
SCOPES = ("layer", "global")


def prunable_names(params: GaussianParams) -> list[str]:
    """Names of the weight tensors (two or more dimensions); biases are never pruned."""
    nb = len(params.batch_shape)
    return [n for n, t in params.mean.items() if t.ndim - nb >= 2]


def nothing_to_prune(names) -> ValueError:
    """The one error every pruning function raises for a model (parameter ``names``) without weight tensors."""
    return ValueError(
        f"nothing to prune: the parameters {list(names)} are all 1-d (biases, scales), and only weight "
        "tensors of two or more dimensions are ranked and pruned. Pass biases=True to prune 1-d parameters "
        "too (prune, pruning_masks, relevance), or use a target with weight matrices."
    )


def _ranked_names(params: GaussianParams, biases: bool) -> list[str]:
    names = list(params.mean) if biases else prunable_names(params)
    if not names:
        raise nothing_to_prune(params.mean)
    return names


def _var_scores(mean: Tensor, log_sigma: Tensor, name: str) -> Tensor:
    """|mu| / sigma, exact even where sigma over- or underflows in the parameters' dtype.

    Computed as exp(log|mu| - log sigma) in float64 where the plain quotient is not finite; a
    deleted weight (mean 0) scores 0.
    """
    m = mean.abs()
    bad_sigma = torch.isposinf(log_sigma) | torch.isnan(log_sigma) | (torch.isneginf(log_sigma) & (m != 0))
    if bool(bad_sigma.any()):
        raise ValueError(
            f"log sigma of {name!r} is NaN, +inf, or -inf (sigma = 0) for a non-zero mean: |mu|/sigma cannot rank "
            "these weights. The model has diverged or was edited; use criterion='simple' (|mu|) or retrain it."
        )
    score = torch.where(m == 0, m, m / torch.exp(log_sigma))
    if bool(torch.isfinite(score).all()):
        return score
    # sigma underflows to 0 (or overflows) in this dtype: the quotient in log space, in float64.
    log_score = torch.log(m.double()) - log_sigma.double()
    score = torch.where(m == 0, torch.zeros_like(log_score), torch.exp(log_score))
    if not bool(torch.isfinite(score).all()):
        raise ValueError(f"|mu|/sigma of {name!r} overflows even in float64; the model's log sigma is out of range")
    return score


def relevance(params: GaussianParams, criterion: str = "var", biases: bool = False) -> dict[str, Tensor]:
    """Per-weight score: |mu| / sigma for "var" (eq. 17), |mu| for "simple" (eq. 18).

    A larger score means a more relevant weight; pruning removes the smallest scores. Weight
    tensors only, unless ``biases``. A weight already deleted (mean 0, sigma 0) scores 0.
    Scores have the parameters' dtype, or float64 for a tensor whose |mu| / sigma does not fit
    in it (sigma under- or overflowing), so the ranking never depends on position. Returns a
    dict from parameter name to a score tensor of that parameter's shape (unitless).

    Raises:
        ValueError: an unknown criterion, "var" on a deterministic model, parameters on the meta
            device, non-finite means or log sigmas (other than a deleted weight's -inf), or a
            model with nothing to rank (no weight tensors and ``biases=False``).
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose one of {CRITERIA}")
    if criterion == "var" and not params.variational:
        raise ValueError(
            "criterion 'var' (|mu|/sigma) needs a variational model; use criterion='simple' for a deterministic one"
        )
    check_has_values(params.mean.values())
    out = {}
    for n in _ranked_names(params, biases):
        mean = params.mean[n].detach()
        if not bool(torch.isfinite(mean).all()):
            raise ValueError(f"the means of {n!r} are not finite (the model has diverged); they cannot be ranked")
        out[n] = _var_scores(mean, params.log_sigma[n].detach(), n) if criterion == "var" else mean.abs()
    return out


def _lowest(scores: Tensor, count: int) -> Tensor:
    """A boolean mask of exactly ``count`` lowest entries (ties broken by position)."""
    mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    if count > 0:
        order = torch.argsort(scores.flatten(), stable=True)
        mask[order[:count]] = True
    return mask.view_as(scores)


def check_fraction(fraction, name: str = "fraction") -> float:
    """The share of weights to delete as a float in [0, 1] (any real number type, not a bool).

    Raises:
        ValueError: ``fraction`` is not a real number in [0, 1]; the message calls it ``name``.
    """
    f = as_real(fraction, name)
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {fraction!r}")
    return f


def _check_prune_args(params: GaussianParams, fraction: float, scope: str) -> float:
    if not isinstance(params, GaussianParams):
        raise ValueError(f"params must be GaussianParams, got {type(params).__name__}")
    if params.batch_shape:
        raise ValueError("prune takes the parameters of one model; pick one with params[i]")
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose one of {SCOPES}")
    return check_fraction(fraction)


def pruning_masks(
    params: GaussianParams, fraction: float, criterion: str = "var", scope: str = "layer", biases: bool = False
) -> dict[str, Tensor]:
    """Boolean masks, True for the weights that ``prune`` deletes, keyed by parameter name.

    Same arguments, and errors, as ``prune``. Tensors that are never pruned (biases, unless
    ``biases``) have no entry.
    """
    fraction = _check_prune_args(params, fraction, scope)
    scores = relevance(params, criterion, biases=biases)
    if scope == "layer":
        return {n: _lowest(s, round(fraction * s.numel())) for n, s in scores.items()}
    flat = torch.cat([s.flatten() for s in scores.values()])
    mask = _lowest(flat, round(fraction * flat.numel()))
    masks, start = {}, 0
    for n, s in scores.items():
        masks[n] = mask[start : start + s.numel()].view_as(s)
        start += s.numel()
    return masks


def apply_masks(params: GaussianParams, masks: dict[str, Tensor]) -> GaussianParams:
    """Delete the masked weights: mean 0 and, for a variational model, sigma 0 (a new object).

    A deleted weight is exactly zero in every Monte Carlo draw, not re-sampled noise
    (log sigma = -inf; the KL of such a posterior is infinite, so use it for prediction).
    """
    out = params.detach().clone()
    for n, mk in masks.items():
        out.mean[n] = out.mean[n].masked_fill(mk, 0.0)
        if out.log_sigma is not None:
            out.log_sigma[n] = out.log_sigma[n].masked_fill(mk, -math.inf)
    return out


def prune(
    params: GaussianParams, fraction: float, criterion: str = "var", scope: str = "layer", biases: bool = False
) -> GaussianParams:
    """Algorithm 2: delete the ``fraction`` least relevant weights; a new object is returned.

    A deleted weight has mean 0 and, in a variational model, standard deviation 0.

    Args:
        params: the model's parameters (unbatched).
        fraction: share of weights to delete, a real number (Python, NumPy or 0-d tensor; not
            a bool) with 0 <= fraction <= 1; the count per tensor (``scope="layer"``) or
            overall (``"global"``) is round(fraction * n).
        criterion: "var" (|mu|/sigma, eq. 17) or "simple" (|mu|, eq. 18).
        scope: "layer" prunes the same fraction of every weight tensor (the authors' code);
            "global" ranks all weights together under one threshold.
        biases: rank and prune the biases too (the paper and its code keep them).
    Raises:
        ValueError: for batched params, a fraction outside [0, 1] or a bool, an unknown
            criterion or scope, ``criterion="var"`` on a deterministic model, non-finite
            parameters (see ``relevance``), or nothing to prune (no weight tensors and
            ``biases=False``; every pruning function raises the same error).
    """
    return apply_masks(params, pruning_masks(params, fraction, criterion, scope, biases))


def layer_input_means(
    target: nn.Module, params: GaussianParams | dict[str, Tensor], data: TensorData, max_examples: int = 10_000
) -> dict[str, Tensor]:
    """The mean input of every linear and convolutional layer, keyed by its weight's name.

    Runs ``target`` with the mean weights of ``params`` on the first ``max_examples`` of
    ``data``. A linear layer's entry has shape ``(in_features,)``; a convolution's has shape
    ``(in_channels,)``, averaged over examples and positions. Used by ``correct_biases``.
    """
    weights = params.mean if isinstance(params, GaussianParams) else params
    check_has_values(weights.values())
    check_data(data)
    check_data_dtype(data, next(iter(weights.values())).dtype)
    sums: dict[str, Tensor] = {}
    counts: dict[str, int] = {}
    hooks = []

    def hook_for(name: str, conv: bool):
        def hook(_mod, inputs):
            x = inputs[0].detach()
            dims = [0, 2, 3] if conv and x.ndim == 4 else list(range(x.ndim - 1))
            x = x.sum(dims) if conv else x.reshape(-1, x.shape[-1]).sum(0)
            n = math.prod(inputs[0].shape[d] for d in dims) if conv else inputs[0].numel() // inputs[0].shape[-1]
            sums[name] = sums.get(name, 0) + x.double()
            counts[name] = counts.get(name, 0) + n

        return hook

    for mname, mod in target.named_modules():
        conv = isinstance(mod, nn.modules.conv._ConvNd)
        if (conv or isinstance(mod, nn.Linear)) and f"{mname}.weight" in weights:
            hooks.append(mod.register_forward_pre_hook(hook_for(f"{mname}.weight", conv)))
    if not hooks:
        return {}
    dev = next(iter(weights.values())).device
    try:
        with torch.no_grad(), evaluation(target):
            for idx in batches(min(len(data), max_examples), 4096, shuffle=False):
                call_with(target, weights, data.x[idx].to(dev))
    finally:
        for h in hooks:
            h.remove()
    dtype = next(iter(weights.values())).dtype
    return {n: (sums[n] / counts[n]).to(dtype) for n in sums}


def correct_biases(
    params: GaussianParams, pruned: GaussianParams, masks: dict[str, Tensor], input_means: dict[str, Tensor]
) -> GaussianParams:
    """Move each deleted weight's contribution at its layer's mean input into its unit's bias.

    For a linear layer, bias_i += sum_j [w_ij deleted] * w_ij * xbar_j; for a convolution,
    xbar is the per-channel mean input and the kernel's positions are summed. ``params`` is the
    unpruned model, ``pruned`` = ``apply_masks(params, masks)``, ``input_means`` from
    ``layer_input_means``. Layers without a bias are left as they are. A new object is returned.
    """
    out = pruned.clone()
    for n, mk in masks.items():
        if n not in input_means or not n.endswith(".weight"):
            continue
        bias = n[: -len("weight")] + "bias"
        if bias not in out.mean:
            continue
        removed = params.mean[n].detach() * mk
        if removed.ndim > 2:  # convolution: the kernel's positions all see the channel mean
            removed = removed.flatten(2).sum(-1)
        out.mean[bias] = out.mean[bias] + removed @ input_means[n].to(removed.dtype)
    return out


def sparsity(params: GaussianParams) -> float:
    """Share of weights (not biases) whose mean is exactly zero; ``ValueError`` when there are no weight tensors."""
    names = _ranked_names(params, biases=False)
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

    Returns a tidy table with columns ``lam, fraction, accuracy``. ``lams`` and ``fractions``
    may be any sequences or arrays of real numbers; all are checked before the first model runs.

    Raises:
        ValueError: a lambda that is not positive and finite (in the float32 range), a fraction
            outside [0, 1], no lambda or no fraction at all, or a model with no weight tensors
            to prune; or what ``prune`` and ``accuracy`` raise for the model and data.
    """
    lams = [float(check_lam(v)) for v in lams]
    fractions = [check_fraction(f, "fractions") for f in fractions]
    if not (lams and fractions):
        raise ValueError("pruning_curve needs at least one lambda and one fraction")
    rows = []
    with torch.no_grad():
        for lam in lams:
            params = hypernet(lam)
            _ranked_names(params, biases=False)  # nothing to prune: the same error as prune
            for f in fractions:
                acc = accuracy(target, prune(params, f, criterion, scope), data)
                rows.append({"lam": lam, "fraction": f, "accuracy": acc})
    return pd.DataFrame(rows)


def posterior_stats(hypernet: Hypernet, lams: Sequence[float], names: Sequence[str] | None = None) -> pd.DataFrame:
    """How lambda moves the means, the scales and the relevance (17) of each weight tensor.

    For each lambda of ``lams`` and each weight tensor in ``names`` (default: every weight tensor,
    ``prunable_names``) of the model ``hypernet(lambda)``: the mean |mu|, the mean sigma and the
    median |mu|/sigma, the ratio Algorithm 2 ranks by (eq. 17).

    Returns:
        A tidy table with columns ``lam, layer, mean |mu|, mean sigma, median |mu|/sigma``, one
        row per lambda and tensor, in the order of ``lams`` and ``names``.
    Raises:
        ValueError: for a deterministic hypernetwork (no sigma), a lambda that is not a positive
            float32 number, or a name the model does not have.
    """
    lams = [float(check_lam(v)) for v in lams]
    if not hypernet.variational:
        raise ValueError("posterior_stats needs a variational hypernetwork (it reports sigma and |mu|/sigma)")
    rows = []
    with torch.no_grad():
        for lam in lams:
            p = hypernet(lam)
            for layer in prunable_names(p) if names is None else names:
                if layer not in p.mean:
                    raise ValueError(f"the model has no parameter {layer!r}; it has {list(p.mean)}")
                mu, sig = p.mean[layer], p.sigma[layer]
                rows.append({
                    "lam": lam,
                    "layer": layer,
                    "mean |mu|": float(mu.abs().mean()),
                    "mean sigma": float(sig.mean()),
                    "median |mu|/sigma": float((mu.abs() / sig).median()),
                })  # fmt: skip
    return pd.DataFrame(rows)


def deleted_shares(params: GaussianParams) -> dict[str, float]:
    """Share of each weight tensor's entries whose mean is exactly zero, keyed by the tensor's name.

    Unlike ``sparsity`` (one share over all weights) this is per tensor, so it shows how a global
    threshold spreads the deletions over the layers. Raises ``ValueError`` when there are no
    weight tensors.
    """
    # a float32 mean of the 0/1 mask, as the book's chapters have always computed it
    return {n: float((params.mean[n] == 0).float().mean()) for n in _ranked_names(params, biases=False)}


def scope_comparison(
    hypernet: Hypernet,
    target: nn.Module,
    data: TensorData,
    lams: Sequence[float],
    fractions: Sequence[float] = FRACTIONS,
    scopes: Sequence[str] = SCOPES,
    criterion: str = "var",
) -> pd.DataFrame:
    """Algorithm 2 with a per-layer and with a global threshold: accuracy and each layer's deleted share.

    For each lambda, scope ("layer": the same share of every weight tensor, as in the authors'
    code; "global": one threshold for all weights) and fraction, the model ``hypernet(lambda)`` is
    pruned with ``prune(params, fraction, criterion, scope)`` and evaluated on ``data`` with its
    mean weights.

    Returns:
        A tidy table with columns ``lam, scope, fraction, accuracy`` and ``"<layer> deleted"``
        (the share of that weight tensor deleted, ``deleted_shares``; ``<layer>`` is the tensor's
        name without ".weight"), one row per lambda, scope and fraction, in that order.
    Raises:
        ValueError: for a bad lambda, fraction, scope or criterion (all checked before the first
            model runs), or the errors of ``prune``.
    """
    lams = [float(check_lam(v)) for v in lams]
    fractions = [check_fraction(f, "fractions") for f in fractions]
    for scope in scopes:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; choose one of {SCOPES}")
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose one of {CRITERIA}")
    rows = []
    with torch.no_grad():
        for lam in lams:
            p = hypernet(lam)
            for scope in scopes:
                for f in fractions:
                    q = prune(p, f, criterion, scope)
                    shares = {f"{n.removesuffix('.weight')} deleted": v for n, v in deleted_shares(q).items()}
                    row = {"lam": lam, "scope": scope, "fraction": f, "accuracy": accuracy(target, q, data)}
                    rows.append({**row, **shares})
    return pd.DataFrame(rows)
