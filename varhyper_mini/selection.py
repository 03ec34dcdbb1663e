"""Beyond the paper: choosing lambda, hitting a budget, calibration and the cost of a hypernetwork.

The paper trains one hypernetwork G(lambda) and leaves the choice of lambda to the user. This
module turns that choice into procedures:

- ``select_lambda`` sweeps lambda on one trained hypernetwork and picks the best value by a
  validation criterion (accuracy or NLL on a split carved from the training data) or by the
  evidence lower bound at lambda = 1, ELBO = E_q log p(D|w) - KL(q || p) = -N * L1(1). For L1 the
  ELBO cannot choose lambda: a converged hypernetwork minimises L1(1) at lambda = 1, so its
  ELBO curve peaks there whatever the data; read it as a convergence check.
- ``replicate_curves`` and ``compare_criteria`` judge the validation criteria over several
  independently trained hypernetworks, with standard errors and confidence intervals.
- ``fit_budget`` searches (lambda, pruning fraction) for the model that meets a size and/or
  accuracy budget, and returns it as a ready, pruned plain ``nn.Module``.
- ``expected_calibration_error`` and ``calibration_table`` measure calibration against lambda
  and the share of deleted weights, for mean weights and Monte Carlo-averaged predictions.
- ``compression_ratio`` is total parameters / non-zero parameters.
- ``run_cost_study`` times one hypernetwork against K directly trained models and writes the
  committed results that the chapter "Choosing lambda" reads (``load_choosing_results``).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import time
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import as_int, as_real, check_has_values
from .data import TensorData, batches
from .gaussian import GaussianParams, ParamSpec, check_prior_var
from .hypernets import ConstantHypernet, Hypernet, PiecewiseLinearHypernet, check_lam
from .prune import check_fraction, nothing_to_prune, prunable_names, prune
from .train import LogUniform, accuracy, check_data, predict, train, train_many

__all__ = [
    "CRITERIA",
    "Selection",
    "lambda_grid",
    "elbo",
    "lambda_curve",
    "best_from_curve",
    "select_lambda",
    "expected_calibration_error",
    "prediction_metrics",
    "calibration_table",
    "count_nonzero",
    "compression_ratio",
    "deletable_fraction",
    "BudgetFit",
    "fit_budget",
    "pruned_module",
    "save_pruned",
    "load_pruned",
    "CostConfig",
    "EVAL_SEEDS",
    "COST_PRESETS",
    "run_cost_study",
    "cost_data",
    "train_cost_hypernet",
    "ChoosingResults",
    "gap_table",
    "selection_table",
    "plot_gap",
    "plot_calibration",
    "load_choosing_results",
    "replicate_curves",
    "CriterionComparison",
    "compare_criteria",
    "plot_criteria",
]

CRITERIA = ("accuracy", "nll", "elbo")
# Which column of a lambda curve each criterion reads, and whether larger is better.
_CRITERION_COLUMN = {"accuracy": ("val_accuracy", True), "nll": ("val_nll", False), "elbo": ("elbo", True)}
_EPS = 1e-12


# -- choosing lambda -------------------------------------------------------------------------------
def lambda_grid(lam_range: tuple[float, float], n: int) -> tuple[float, ...]:
    """``n`` values spaced evenly in log lambda over ``lam_range``, both ends included.

    ``lambda_grid((1e-3, 1e2), 6)`` is the paper's MNIST grid {1e-3, 1e-2, ..., 1e2}.
    """
    lo, hi = (float(check_lam(v)) for v in lam_range)
    if not lo <= hi:
        raise ValueError(f"lam_range must satisfy 0 < lo <= hi < inf, got {lam_range!r}")
    n = as_int(n, "the number of lambda values")
    if n == 1:
        return (math.sqrt(lo * hi),)
    return tuple(float(v) for v in np.geomspace(lo, hi, n))


def _weights_dev(params: GaussianParams) -> torch.device:
    return next(iter(params.mean.values())).device


@torch.no_grad()
def elbo(
    target: nn.Module,
    params: GaussianParams,
    train_data: TensorData,
    samples: int = 2,
    prior_var: float = 1.0,
    n_train: int | None = None,
    seed: int = 0,
    batch_size: int = 4096,
) -> dict[str, float]:
    """The evidence lower bound at lambda = 1 of the posterior ``params`` (eq. 4 with lambda = 1).

    ELBO = -N * nll - KL(q || N(0, prior_var I)), with N = ``n_train`` (default ``len(train_data)``)
    and nll the expected per-example negative log-likelihood on ``train_data``:

    - ``samples > 0``: averaged over that many weight draws w ~ q, an unbiased estimate of
      E_q[-log p(y|x, w)], so the result estimates a true lower bound on log p(D);
    - ``samples = 0``: the plug-in value at the mean weights (cheaper, not a bound).

    Returns ``{"elbo", "nll", "kl", "samples"}`` (nll per example, elbo and kl in nats).
    """
    if not isinstance(params, GaussianParams) or params.batch_shape:
        raise ValueError("elbo takes the GaussianParams of one model (params[i] picks one from a batch)")
    params._require_variational("the ELBO")
    check_data(train_data, "train_data")
    check_prior_var(prior_var)
    samples = as_int(samples, "samples (0: mean weights)", minimum=0)
    n = len(train_data) if n_train is None else as_int(n_train, "n_train")
    ParamSpec.from_module(target).check_names(params.mean.keys())
    dev = _weights_dev(params)
    gen = torch.Generator(device=dev).manual_seed(seed)
    draws = [params.mean] if samples == 0 else [params.sample(gen) for _ in range(samples)]
    total = 0.0
    for w in draws:
        for idx in batches(len(train_data), batch_size, shuffle=False):
            logits = torch.func.functional_call(target, w, (train_data.x[idx].to(dev),))
            total += float(F.cross_entropy(logits, train_data.y[idx].to(dev), reduction="sum"))
    nll = total / (len(draws) * len(train_data))
    kl = float(params.kl(prior_var))
    return {"elbo": -n * nll - kl, "nll": nll, "kl": kl, "samples": samples}


def prediction_metrics(probs: Tensor, labels: Tensor, n_bins: int = 15) -> dict[str, float]:
    """Accuracy, mean negative log-likelihood and ECE of class probabilities ``probs`` (N, C)."""
    ece = expected_calibration_error(probs, labels, n_bins)
    labels = labels.to(probs.device)
    acc = float((probs.argmax(1) == labels).double().mean())
    nll = float(-torch.log(probs.gather(1, labels[:, None]).clamp_min(_EPS)).double().mean())
    return {"accuracy": acc, "nll": nll, "ece": ece}


def lambda_curve(
    hypernet: Hypernet,
    target: nn.Module,
    val_data: TensorData | None,
    lams: Sequence[float],
    train_data: TensorData | None = None,
    mc_samples: int = 0,
    elbo_samples: int = 2,
    prior_var: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """The selection criteria at every lambda of ``lams``: one row per lambda.

    Columns: ``lam``; with ``val_data``, ``val_accuracy`` and ``val_nll`` (predictions with the
    mean weights, or averaged over ``mc_samples`` weight draws); with ``train_data``, ``elbo``,
    ``train_nll`` and ``kl`` from ``elbo(..., samples=elbo_samples)``.
    """
    if val_data is None and train_data is None:
        raise ValueError("give val_data (accuracy, nll) and/or train_data (elbo)")
    lams = [float(check_lam(v)) for v in lams]
    if not lams:
        raise ValueError("lams is empty; give at least one lambda")
    rows = []
    gen_dev = hypernet._device()
    with torch.no_grad():
        for i, lam in enumerate(lams):
            params = hypernet(lam)
            row: dict[str, float] = {"lam": lam}
            if val_data is not None:
                g = torch.Generator(device=gen_dev).manual_seed(seed + i)
                probs = predict(target, params, val_data, mc_samples=mc_samples, generator=g)
                m = prediction_metrics(probs, val_data.y)
                row.update(val_accuracy=m["accuracy"], val_nll=m["nll"], val_ece=m["ece"])
            if train_data is not None:
                e = elbo(target, params, train_data, elbo_samples, prior_var, seed=seed + i)
                row.update(elbo=e["elbo"], train_nll=e["nll"], kl=e["kl"])
            rows.append(row)
    return pd.DataFrame(rows)


def best_from_curve(curve: pd.DataFrame, criterion: str = "accuracy", column: str | None = None) -> float:
    """The lambda that a criterion picks from a lambda curve.

    ``criterion`` is "accuracy" (largest ``val_accuracy``), "nll" (smallest ``val_nll``) or "elbo"
    (largest ``elbo``). ``column`` overrides the column read, with the criterion's direction,
    e.g. ``best_from_curve(curve, "accuracy", column="test_accuracy")`` for the test-set optimum.
    Ties go to the **largest** lambda: the simplest of the equally good models.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose one of {CRITERIA}")
    col, larger = _CRITERION_COLUMN[criterion]
    col = column or col
    if not isinstance(curve, pd.DataFrame) or "lam" not in curve or col not in curve:
        have = list(curve.columns) if isinstance(curve, pd.DataFrame) else type(curve).__name__
        raise ValueError(f"the curve needs columns 'lam' and {col!r}; it has {have}")
    d = curve[["lam", col]].dropna()
    if d.empty:
        raise ValueError(f"the curve has no finite values in {col!r}")
    best = d[col].max() if larger else d[col].min()
    return float(d.loc[d[col] == best, "lam"].max())


@dataclass
class Selection:
    """What ``select_lambda`` chose and the curve it chose from.

    Attributes:
        best_lam: the chosen lambda.
        criterion: "accuracy", "nll" or "elbo".
        curve: one row per lambda (see ``lambda_curve``); ``score`` is the column the
            criterion reads, ``chosen`` marks the chosen row.
        note: how the criterion was estimated (data split, mean weights or MC samples).
    """

    best_lam: float
    criterion: str
    curve: pd.DataFrame
    note: str = ""


def select_lambda(
    hypernet: Hypernet,
    target: nn.Module,
    val_data: TensorData | None,
    criterion: str = "accuracy",
    lams: Sequence[float] | None = None,
    train_data: TensorData | None = None,
    n_lams: int = 21,
    mc_samples: int = 0,
    elbo_samples: int = 2,
    prior_var: float = 1.0,
    seed: int = 0,
) -> Selection:
    """Sweep lambda on one trained hypernetwork and return the best value with its curve.

    Args:
        hypernet, target: the trained hypernetwork and the plain module it parametrises.
        val_data: a held-out split carved from the **training** set (``TensorData.split``),
            never the test set; needed for "accuracy" and "nll", optional for "elbo".
        criterion: "accuracy" (largest validation accuracy), "nll" (smallest validation NLL)
            or "elbo" (largest evidence lower bound at lambda = 1, see ``elbo``). For an L1
            hypernetwork "elbo" is a convergence check, not a choice: at convergence G(lambda)
            minimises L1(lambda), and the ELBO is -N * L1(1), so it peaks at lambda = 1.
        lams: the lambdas to compare; default ``n_lams`` values log-spaced over the
            hypernetwork's range.
        train_data: the data the hypernetwork was trained on; needed for "elbo".
        mc_samples: validation predictions with the mean weights (0) or averaged over draws.
        elbo_samples: weight draws for the ELBO's expected NLL (0: plug-in at the mean).
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose one of {CRITERIA}")
    if not isinstance(hypernet, Hypernet):
        raise ValueError(f"hypernet must be a Hypernet, got {type(hypernet).__name__}")
    if criterion == "elbo":
        if train_data is None:
            raise ValueError("criterion 'elbo' needs train_data: the ELBO's likelihood is on the training set")
        if not hypernet.variational:
            raise ValueError("criterion 'elbo' needs a variational hypernetwork (it has no KL otherwise)")
    elif val_data is None:
        raise ValueError(
            f"criterion {criterion!r} needs val_data: carve it from the training set with "
            "train_data.split(n_holdout), never use the test set"
        )
    for d, what in ((val_data, "val_data"), (train_data, "train_data")):
        if d is not None:
            check_data(d, what)
    if val_data is not None and "test" in val_data.name.lower():
        warnings.warn(
            f"val_data is named {val_data.name!r}: choosing lambda on the test set biases the test "
            "result; carve a validation split from the training set instead",
            stacklevel=2,
        )
    lams = lambda_grid(hypernet.lam_range, n_lams) if lams is None else [float(check_lam(v)) for v in lams]
    use_train = train_data if criterion == "elbo" else None
    curve = lambda_curve(hypernet, target, val_data, lams, use_train, mc_samples, elbo_samples, prior_var, seed)
    best = best_from_curve(curve, criterion)
    col = _CRITERION_COLUMN[criterion][0]
    curve["score"] = curve[col]
    curve["chosen"] = curve["lam"] == best
    if criterion == "elbo":
        how = "mean weights" if elbo_samples == 0 else f"{elbo_samples} Monte Carlo weight draws"
        note = f"ELBO at lambda = 1 on {train_data.name} (N = {len(train_data)}), expected NLL from {how}"
    else:
        how = "mean weights" if mc_samples == 0 else f"{mc_samples} Monte Carlo weight draws"
        note = f"validation {criterion} on {val_data.name} ({len(val_data)} examples), {how}"
    return Selection(best, criterion, curve, note)


# -- calibration -----------------------------------------------------------------------------------
def expected_calibration_error(probs: Tensor, labels: Tensor, n_bins: int = 15) -> float:
    """Expected calibration error of the top-class confidence, with ``n_bins`` equal-width bins.

    ECE = sum_b (|B_b| / n) * |accuracy(B_b) - mean confidence(B_b)|, where the confidence of an
    example is its largest class probability and bin b holds confidences in (b/n_bins, (b+1)/n_bins]
    (the first bin also holds 0). 0 means perfectly calibrated on these data.
    """
    probs = torch.as_tensor(probs)
    labels = torch.as_tensor(labels)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"probs must have shape (N, C) with C >= 2 classes, got {tuple(probs.shape)}")
    if labels.ndim != 1 or len(labels) != len(probs):
        raise ValueError(f"labels must have shape ({len(probs)},), got {tuple(labels.shape)}")
    if len(labels) == 0:
        raise ValueError("no examples: probs and labels are empty")
    n_bins = as_int(n_bins, "n_bins")
    p = probs.detach().to(torch.float64).cpu()
    if not bool(torch.all(torch.isfinite(p) & (p >= 0) & (p <= 1 + 1e-6))):
        raise ValueError("probs must be probabilities in [0, 1] (apply softmax to logits first)")
    conf, pred = p.max(1)
    correct = (pred == labels.cpu()).to(torch.float64)
    inner = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)[1:-1]
    idx = torch.bucketize(conf.clamp(0, 1), inner, right=False)  # (edge_b, edge_b+1]
    gap = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, idx, correct - conf)
    return float(gap.abs().sum() / len(labels))


def calibration_table(
    hypernet: Hypernet,
    target: nn.Module,
    data: TensorData,
    lams: Sequence[float],
    fractions: Sequence[float] = (0.0,),
    mc_samples: int = 8,
    criterion: str = "var",
    scope: str = "layer",
    n_bins: int = 15,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy, NLL and ECE against lambda and the share of deleted weights.

    Each (lambda, fraction) gives two rows: ``prediction="mean"`` (the mean weights, as the
    paper evaluates) and ``prediction="mc"`` (class probabilities averaged over ``mc_samples``
    weight draws, ``vh.predict(..., mc_samples=n)``; deleted weights stay at zero). A
    deterministic hypernetwork gives only the "mean" rows.
    """
    check_data(data, "data")
    mc_samples = as_int(mc_samples, "mc_samples", minimum=0)
    lams = [float(check_lam(v)) for v in lams]
    fractions = [check_fraction(f, "fractions") for f in fractions]
    rows = []
    dev = hypernet._device()
    with torch.no_grad():
        for i, lam in enumerate(lams):
            params = hypernet(lam)
            for f in fractions:
                pp = prune(params, f, criterion, scope)  # deleted weights have sigma 0: MC never resamples them
                kinds = [("mean", 0)]
                if mc_samples and params.variational:
                    kinds.append(("mc", mc_samples))
                for name, s in kinds:
                    g = torch.Generator(device=dev).manual_seed(seed + i)
                    probs = predict(target, pp, data, mc_samples=s, generator=g)
                    m = prediction_metrics(probs, data.y, n_bins)
                    rows.append({"lam": float(lam), "fraction": float(f), "prediction": name,
                                 "mc_samples": s, **m})  # fmt: skip
    return pd.DataFrame(rows)


# -- size ------------------------------------------------------------------------------------------
def _tensors(params) -> dict[str, Tensor]:
    if isinstance(params, GaussianParams):
        if params.batch_shape:
            raise ValueError("pass the parameters of one model (params[i] picks one from a batch)")
        return params.mean
    if isinstance(params, nn.Module):
        return _module_weights(params)
    if isinstance(params, dict) and all(isinstance(v, Tensor) for v in params.values()):
        return params
    raise ValueError(f"expected GaussianParams, an nn.Module or a dict of tensors, got {type(params).__name__}")


def count_nonzero(params, include_biases: bool = True) -> tuple[int, int]:
    """(non-zero, total) parameter counts; biases (1-d tensors) count unless ``include_biases=False``.

    Accepts ``GaussianParams`` (their means), a dict of tensors, or an ``nn.Module`` (a module
    pruned with ``torch.nn.utils.prune`` counts its effective, masked weights).
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


def compression_ratio(params, include_biases: bool = True) -> float:
    """Total parameters / non-zero parameters (1 for a dense model, inf when all are zero).

    Biases count by default, since a stored model keeps them; ``include_biases=False`` counts
    the weight tensors only (the ones Algorithm 2 prunes).
    """
    nz, total = count_nonzero(params, include_biases)
    return math.inf if nz == 0 else total / nz


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

    Two ratios, as the compression literature reports them: ``compression`` counts every stored
    parameter (biases included), ``compression_weights`` only the weight tensors that Algorithm 2
    prunes. ``params`` is one model's posterior, e.g. ``hypernet(lam)``.
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

    ``tol`` is absolute (0.01 = one percentage point below the unpruned model's accuracy on
    ``data``). The search evaluates the ``coarse`` fractions, takes the largest one within
    ``tol``, then bisects towards the next coarse fraction down to ``resolution`` (it assumes
    accuracy falls with the fraction between those two points). Returns ``fraction``,
    ``accuracy`` (at it), ``base_accuracy`` and ``evaluations``.
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


# -- a budget --------------------------------------------------------------------------------------
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


def _effective_state(module: nn.Module) -> dict[str, Tensor]:
    """The state dict with pruning reparametrisations folded in, as the bare module would have it."""
    state = {k: v.detach() for k, v in module.state_dict().items()}
    out = {}
    for k, v in state.items():
        if k.endswith("_mask") and k[: -len("_mask")] + "_orig" in state:
            continue
        if k.endswith("_orig") and k[: -len("_orig")] + "_mask" in state:
            base = k[: -len("_orig")]
            out[base] = v * state[base + "_mask"]
        else:
            out[k] = v
    return out


def pruned_module(target: nn.Module, params: GaussianParams, masks: bool = False) -> nn.Module:
    """A plain copy of ``target`` holding the (pruned) mean weights of ``params``, in eval mode.

    With ``masks=True`` every weight tensor gets a ``torch.nn.utils.prune`` mask over its zeros,
    so further training keeps the deleted weights at zero.
    """
    if not isinstance(params, GaussianParams) or params.batch_shape:
        raise ValueError("pruned_module takes the GaussianParams of one model")
    check_has_values(params.mean.values())
    model = copy.deepcopy(target)
    ParamSpec.from_module(model).check_names(params.mean.keys())
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(params.mean[n].detach().to(p.device, p.dtype))
    if masks:
        from torch.nn.utils import prune as tprune

        modules = dict(model.named_modules())
        for n in prunable_names(params):
            mod_name, _, attr = n.rpartition(".")
            mod = modules[mod_name]
            tprune.custom_from_mask(mod, attr, mask=(getattr(mod, attr) != 0).to(torch.float32))
    return model.eval()


def save_pruned(model: nn.Module, path: str | os.PathLike) -> Path:
    """Save ``model``'s weights as a plain state dict that ``load_pruned`` (weights_only) reads.

    Pruning masks are folded in, so the file loads into the bare architecture. Written
    atomically: a temporary file in the same folder, then renamed.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in _effective_state(model).items()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_pruned(path: str | os.PathLike, architecture: nn.Module) -> nn.Module:
    """Load a file written by ``save_pruned`` into ``architecture`` (a fresh module of the same kind).

    Uses ``torch.load(weights_only=True)``: the file holds tensors only. Returns the module in
    eval mode; raises ``ValueError`` when the names or shapes do not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved model at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        architecture.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit this architecture: {err}") from None
    return architecture.eval()


@dataclass
class BudgetFit:
    """The model that ``fit_budget`` chose, ready to use, with the grid it searched.

    Attributes:
        model: a plain ``nn.Module`` (a copy of the target) holding the pruned mean weights.
        params: the pruned ``GaussianParams`` at the chosen point.
        lam, fraction: the chosen lambda and share of deleted weights.
        accuracy: accuracy on the data the budget was fitted on.
        nonzero, total: non-zero and total parameter counts (biases included).
        grid: every searched (lam, fraction) with accuracy, nonzero and ``feasible``.
    """

    model: nn.Module
    params: GaussianParams
    lam: float
    fraction: float
    accuracy: float
    nonzero: int
    total: int
    grid: pd.DataFrame = field(repr=False)

    @property
    def compression(self) -> float:
        """total / nonzero."""
        return math.inf if self.nonzero == 0 else self.total / self.nonzero

    def save(self, path: str | os.PathLike) -> Path:
        """``save_pruned(self.model, path)``."""
        return save_pruned(self.model, path)


def _check_budget(max_fraction_deleted, min_fraction_deleted, min_accuracy, max_nonzero) -> None:
    given = [v for v in (max_fraction_deleted, min_fraction_deleted, min_accuracy, max_nonzero) if v is not None]
    if not given:
        raise ValueError("give a budget: max_nonzero, min_fraction_deleted, max_fraction_deleted and/or min_accuracy")
    for name, v in (("max_fraction_deleted", max_fraction_deleted), ("min_fraction_deleted", min_fraction_deleted),
                    ("min_accuracy", min_accuracy)):  # fmt: skip
        if v is not None and not 0 <= as_real(v, name) <= 1:
            raise ValueError(f"{name} must be a number in [0, 1], got {v!r}")
    if max_nonzero is not None:
        as_int(max_nonzero, "max_nonzero", minimum=0)
    if (max_fraction_deleted is not None and min_fraction_deleted is not None
            and min_fraction_deleted > max_fraction_deleted):  # fmt: skip
        raise ValueError(
            f"min_fraction_deleted ({min_fraction_deleted}) exceeds max_fraction_deleted ({max_fraction_deleted})"
        )


def fit_budget(
    hypernet: Hypernet,
    target: nn.Module,
    data: TensorData,
    max_fraction_deleted: float | None = None,
    min_accuracy: float | None = None,
    max_nonzero: int | None = None,
    lams: Sequence[float] | None = None,
    fractions: Sequence[float] | None = None,
    criterion: str = "var",
    min_fraction_deleted: float | None = None,
    objective: str = "auto",
    scope: str = "layer",
    masks: bool = False,
) -> BudgetFit:
    """Search (lambda, pruning fraction) on a trained hypernetwork for a model within a budget.

    Every lambda of ``lams`` (default: 11 log-spaced over the hypernetwork's range) is pruned by
    Algorithm 2 at every share of ``fractions`` (default 0, 0.05, ..., 0.95, 0.97, 0.99) and
    scored on ``data``, which should be a validation split, not the test set.

    Budget (give at least one; all given ones must hold):
        max_nonzero: at most this many non-zero parameters (biases included);
        min_fraction_deleted / max_fraction_deleted: bounds on the share of deleted weights;
        min_accuracy: at least this accuracy on ``data``.
    Objective among the points that meet it: ``"size"`` picks the fewest non-zero parameters
    (then the higher accuracy), ``"accuracy"`` the highest accuracy (then the fewer non-zero);
    ``"auto"`` is "size" when only ``min_accuracy`` constrains quality and no size bound is
    given, else "accuracy". Remaining ties go to the larger lambda.

    Returns a ``BudgetFit`` whose ``model`` is a plain copy of ``target`` with the pruned means
    (``masks=True`` adds ``torch.nn.utils.prune`` masks). Raises ``ValueError`` naming the
    closest point on the grid when no point meets the budget.
    """
    _check_budget(max_fraction_deleted, min_fraction_deleted, min_accuracy, max_nonzero)
    if objective not in ("auto", "size", "accuracy"):
        raise ValueError(f"unknown objective {objective!r}; choose 'auto', 'size' or 'accuracy'")
    if criterion == "var" and not hypernet.variational:
        raise ValueError("criterion 'var' (|mu|/sigma) needs a variational hypernetwork; use 'simple'")
    check_data(data, "data")
    lams = lambda_grid(hypernet.lam_range, 11) if lams is None else [float(check_lam(v)) for v in lams]
    if fractions is None:
        fractions = [round(0.05 * i, 2) for i in range(20)] + [0.97, 0.99]
    fractions = sorted({check_fraction(f, "fractions") for f in fractions})
    if not lams or not fractions:
        raise ValueError("lams and fractions must not be empty")
    rows = []
    with torch.no_grad():
        for lam in lams:
            params = hypernet(lam)
            for f in fractions:
                pp = prune(params, f, criterion, scope)
                nz, total = count_nonzero(pp)
                rows.append({"lam": lam, "fraction": f, "accuracy": accuracy(target, pp, data),
                             "nonzero": nz, "total": total})  # fmt: skip
    grid = pd.DataFrame(rows)
    total = int(grid.total.iloc[0])
    # Each violation in a comparable unit (a share): accuracy points, or parameters / total.
    viol = pd.DataFrame(index=grid.index)
    viol["accuracy"] = (min_accuracy - grid.accuracy).clip(lower=0) if min_accuracy is not None else 0.0
    viol["nonzero"] = ((grid.nonzero - max_nonzero).clip(lower=0) / total) if max_nonzero is not None else 0.0
    viol["max_fraction"] = (
        (grid.fraction - max_fraction_deleted).clip(lower=0) if max_fraction_deleted is not None else 0.0
    )
    viol["min_fraction"] = (
        (min_fraction_deleted - grid.fraction).clip(lower=0) if min_fraction_deleted is not None else 0.0
    )
    grid["violation"] = viol.sum(axis=1)
    grid["feasible"] = grid.violation <= 1e-12
    size_bound = max_nonzero is not None or min_fraction_deleted is not None
    if objective == "auto":
        objective = "size" if (min_accuracy is not None and not size_bound) else "accuracy"
    budget = ", ".join(
        f"{k} {v}"
        for k, v in (("accuracy >=", min_accuracy), ("nonzero <=", max_nonzero),
                     ("fraction deleted >=", min_fraction_deleted), ("fraction deleted <=", max_fraction_deleted))
        if v is not None
    )  # fmt: skip
    feasible = grid[grid.feasible]
    if feasible.empty:
        c = grid.sort_values(["violation", "accuracy", "lam"], ascending=[True, False, False]).iloc[0]
        raise ValueError(
            f"no (lambda, fraction) on the searched grid meets the budget ({budget}). The closest "
            f"achievable point is lambda = {c.lam:.4g}, fraction deleted = {c.fraction:.2f}: accuracy "
            f"{c.accuracy:.4f}, {int(c.nonzero)} of {total} parameters non-zero. Relax the budget, "
            "train longer, or search more lambdas/fractions."
        )
    if objective == "size":
        order, asc = ["nonzero", "accuracy", "lam"], [True, False, False]
    else:
        order, asc = ["accuracy", "nonzero", "lam"], [False, True, False]
    best = feasible.sort_values(order, ascending=asc).iloc[0]
    lam, f = float(best.lam), float(best.fraction)
    with torch.no_grad():
        pp = prune(hypernet(lam), f, criterion, scope)
    model = pruned_module(target, pp, masks=masks)
    return BudgetFit(model, pp, lam, f, float(best.accuracy), int(best.nonzero), total, grid)


# -- the cost study --------------------------------------------------------------------------------
@dataclass
class CostConfig:
    """Settings of ``run_cost_study``; the defaults are the committed CPU-scale run.

    Data: a stratified ``train_subset`` of the MNIST training set, split into a fit part and
    ``n_val`` validation images; the test set (``test_subset``: None = all 10,000) for the
    curves. One variational piecewise-linear hypernetwork (``n_pieces`` regions, ``lam_samples``
    lambdas per batch, log lambda uniform on ``lam_range``) against directly trained variational
    models at ``K`` log-spaced lambdas for each K in ``ks``, all trained for ``epochs`` epochs
    with the same optimiser settings, each K trained both in a plain loop and batched.
    """

    train_subset: int = 10_000
    n_val: int = 1_000
    test_subset: int | None = None
    epochs: int = 20
    batch_size: int = 256
    lr: float = 5e-4
    lam_samples: int = 5
    n_pieces: int = 5
    lam_range: tuple[float, float] = (1e-3, 1e2)
    ks: tuple[int, ...] = (6, 20)
    mc_samples: int = 5
    elbo_samples: int = 8
    tol: float = 0.01
    calibration_fractions: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9)
    calibration_k: int = 6
    threads: int | None = 1
    seed: int = 0

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "lam_samples", "n_pieces", "n_val", "train_subset"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.n_val >= self.train_subset:
            raise ValueError(f"n_val ({self.n_val}) must be smaller than train_subset ({self.train_subset})")
        if not self.ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in self.ks):
            raise ValueError(f"ks must be positive integers, got {self.ks!r}")
        lo, hi = self.lam_range
        if not 0 < lo < hi:
            raise ValueError(f"lam_range must satisfy 0 < lo < hi, got {self.lam_range}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {self.threads!r}")


COST_PRESETS: dict[str, CostConfig] = {
    "cpu": CostConfig(),
    # A tiny slice of the same pipeline, for tests and the chapter's quick mode.
    "quick": CostConfig(
        train_subset=2000,
        n_val=400,
        test_subset=1000,
        epochs=4,
        ks=(3,),
        mc_samples=2,
        elbo_samples=1,
        calibration_fractions=(0.0, 0.5, 0.9),
        calibration_k=3,
    ),  # fmt: skip
}

CHOOSING_FILES = ("cost.csv", "curves.csv", "calibration.csv", "provenance.json")
# Base seeds of the Monte Carlo draws in the cost study's evaluation (lambda i adds i), so that
# ``select_lambda(..., seed=EVAL_SEEDS["hypernetwork"])`` on the study's grid repeats its curves.
EVAL_SEEDS = {"hypernetwork": 1000, "direct": 2000, "calibration": 3000}


def _model_seed(base: int, name: str) -> int:
    return (zlib.crc32(name.encode()) + base) % (2**31 - 1)


def _direct_nets(lams: Sequence[float], cfg: CostConfig) -> list[ConstantHypernet]:
    nets = []
    for lam in lams:
        torch.manual_seed(_model_seed(cfg.seed, f"direct-{lam:.6g}"))
        target = _mnist_target()
        nets.append(ConstantHypernet(target, lam_range=cfg.lam_range))
    return nets


def _mnist_target() -> nn.Module:
    from .models import mnist_mlp

    return mnist_mlp()


def _model_rows(label: str, grid: str, hypernet: Hypernet, lams, target, cfg, fit, val, test, seed: int) -> list[dict]:
    rows = []
    dev = hypernet._device()
    with torch.no_grad():
        for i, lam in enumerate(lams):
            params = hypernet(lam)
            g = torch.Generator(device=dev).manual_seed(seed + i)
            mean = prediction_metrics(predict(target, params, test), test.y)
            mc = prediction_metrics(predict(target, params, test, mc_samples=cfg.mc_samples, generator=g), test.y)
            valm = prediction_metrics(predict(target, params, val), val.y)
            e = elbo(target, params, fit, cfg.elbo_samples, seed=seed + i)
            d = deletable_fraction(target, params, test, tol=cfg.tol)
            pruned = prune(params, d["fraction"], "var")
            rows.append({
                "model": label, "grid": grid, "lam": float(lam),
                "test_accuracy": mean["accuracy"], "test_nll": mean["nll"], "test_ece": mean["ece"],
                "test_accuracy_mc": mc["accuracy"], "test_nll_mc": mc["nll"], "test_ece_mc": mc["ece"],
                "deletable": d["fraction"], "deletable_accuracy": d["accuracy"],
                "compression_at_deletable": compression_ratio(pruned),
                "val_accuracy": valm["accuracy"], "val_nll": valm["nll"],
                "elbo": e["elbo"], "train_nll": e["nll"], "kl": e["kl"],
            })  # fmt: skip
    return rows


class _Timer:
    """Wall-clock and process CPU seconds of a block (CPU time is what a busy machine cannot inflate)."""

    def __enter__(self) -> _Timer:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0


def cost_data(
    config: CostConfig | None = None, data_root: str | os.PathLike | None = None
) -> tuple[TensorData, TensorData, TensorData]:
    """The cost study's (fit, validation, test) MNIST data: the validation split is carved from
    the stratified training subset, the test data come from the test set."""
    from .data import mnist

    cfg = config or CostConfig()
    cfg.validate()
    full = mnist(data_root, train=True, subset=cfg.train_subset, seed=cfg.seed)
    fit, val = full.split(cfg.n_val, seed=cfg.seed)
    test = mnist(data_root, train=False, subset=cfg.test_subset, seed=cfg.seed)
    return fit, val, test


def train_cost_hypernet(
    config: CostConfig, fit: TensorData, progress: bool = False
) -> tuple[PiecewiseLinearHypernet, nn.Module]:
    """The cost study's hypernetwork, trained on ``fit`` exactly as ``run_cost_study`` trains it.

    A variational piecewise-linear hypernetwork for the MNIST perceptron, ``lam_samples`` lambdas
    per batch drawn log-uniformly from ``lam_range``. Returns (hypernetwork, target module).
    """
    cfg = config
    seed = _model_seed(cfg.seed, "hypernet")
    torch.manual_seed(seed)
    target = _mnist_target()
    hyper = PiecewiseLinearHypernet(target, n_pieces=cfg.n_pieces, lam_range=cfg.lam_range)
    train(hyper, target, fit, loss="variational", lam_prior=LogUniform(*cfg.lam_range),
          lam_samples=cfg.lam_samples, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
          seed=seed, progress=progress)  # fmt: skip
    return hyper, target


def _load_avg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def run_cost_study(
    out_dir: str | os.PathLike | None = None,
    config: CostConfig | None = None,
    data_root: str | os.PathLike | None = None,
    command: str | None = None,
    progress: bool = False,
) -> dict[str, Path]:
    """Time one hypernetwork against K directly trained models, and compare what they give.

    Measured in one run on one machine (training time only, wall clock):
    the hypernetwork; for each K in ``config.ks``, K direct models trained one after another
    (``vh.train`` in a plain loop) and the same K models trained together (``vh.train_many``).
    The loop and the batched models start from the same initialisation and seeds.

    Writes into ``out_dir`` (default ``results/choosing``), each file atomically:
    ``cost.csv`` (one row per timed training), ``curves.csv`` (test accuracy, NLL, ECE with mean
    weights and MC-averaged, % deletable at <= ``tol`` accuracy loss, validation accuracy/NLL and
    ELBO, for the hypernetwork at every lambda of the grids and for every batched direct model),
    ``calibration.csv`` (hypernetwork: accuracy, NLL, ECE against lambda and % deleted) and
    ``provenance.json``. Returns the paths.
    """
    from . import __version__
    from .provenance import atomic_write, git_commit, hardware, results_root

    cfg = config or CostConfig()
    cfg.validate()
    out = Path(out_dir) if out_dir is not None else results_root() / "choosing"
    out.mkdir(parents=True, exist_ok=True)
    call = command or f"varhyper_mini.selection.run_cost_study(out_dir={str(out)!r}, config={cfg!r})"
    old_threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    load_start = _load_avg()
    t_start, cpu_start = time.perf_counter(), time.process_time()
    commit = git_commit()
    try:
        fit, val, test = cost_data(cfg, data_root)
        common = dict(loss="variational", epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                      progress=progress)  # fmt: skip
        cost_rows = []

        # The hypernetwork: one training run covers every lambda of the range.
        with _Timer() as tm:
            hyper, target = train_cost_hypernet(cfg, fit, progress)
        cost_rows.append({"method": "hypernetwork", "k_lams": 0, "models": 1, "seconds": tm.wall,
                          "cpu_seconds": tm.cpu})  # fmt: skip

        grids = {k: lambda_grid(cfg.lam_range, k) for k in cfg.ks}
        direct: dict[int, list[ConstantHypernet]] = {}
        agreement: dict[int, float] = {}
        for k, lams in grids.items():
            seeds = [_model_seed(cfg.seed, f"direct-{lam:.6g}") for lam in lams]
            loop_nets = _direct_nets(lams, cfg)
            with _Timer() as tm:
                for net, lam, s in zip(loop_nets, lams, seeds):
                    train(net, target, fit, lam=lam, seed=s, **common)
            cost_rows.append({"method": "direct-loop", "k_lams": k, "models": k, "seconds": tm.wall,
                              "cpu_seconds": tm.cpu})  # fmt: skip
            many_nets = _direct_nets(lams, cfg)
            with _Timer() as tm:
                train_many(many_nets, target, fit, lams=list(lams), seeds=seeds, desc=f"direct x{k}", **common)
            cost_rows.append({"method": "direct-batched", "k_lams": k, "models": k, "seconds": tm.wall,
                              "cpu_seconds": tm.cpu})  # fmt: skip
            with torch.no_grad():
                agreement[k] = max(
                    abs(accuracy(target, a(lam), test) - accuracy(target, b(lam), test))
                    for a, b, lam in zip(loop_nets, many_nets, lams)
                )
            direct[k] = many_nets
        train_end = time.perf_counter()

        # What each approach gives, on the same data.
        all_lams = sorted({round(v, 12) for lams in grids.values() for v in lams})
        curve_rows = _model_rows(
            "hypernetwork", "all", hyper, all_lams, target, cfg, fit, val, test, EVAL_SEEDS["hypernetwork"]
        )
        for k, nets in direct.items():
            for i, (net, lam) in enumerate(zip(nets, grids[k])):
                curve_rows += _model_rows(
                    "direct", f"K={k}", net, [lam], target, cfg, fit, val, test, EVAL_SEEDS["direct"] + i
                )
        curves = pd.DataFrame(curve_rows)
        cal_lams = lambda_grid(cfg.lam_range, cfg.calibration_k)
        calibration = calibration_table(
            hyper, target, test, cal_lams, cfg.calibration_fractions, cfg.mc_samples, seed=EVAL_SEEDS["calibration"]
        )
        calibration.insert(0, "model", "hypernetwork")

        cost = pd.DataFrame(cost_rows)
        cost["epochs"] = cfg.epochs
        hyper_row = cost.iloc[0]
        cost["seconds_per_model"] = cost.seconds / cost.models
        cost["ratio_to_hypernetwork"] = cost.seconds / hyper_row.seconds
        cost["cpu_ratio_to_hypernetwork"] = cost.cpu_seconds / hyper_row.cpu_seconds
        cost["max_accuracy_diff_loop_vs_batched"] = [
            agreement.get(k) if m == "direct-batched" else None for m, k in zip(cost.method, cost.k_lams)
        ]
        selections = {c: best_from_curve(curves[curves.model == "hypernetwork"], c) for c in CRITERIA}
    finally:
        torch.set_num_threads(old_threads)
    ended = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    provenance = {
        "package": "varhyper_mini",
        "package_version": __version__,
        "function": "varhyper_mini.selection.run_cost_study",
        "command": call,
        "config": dataclasses.asdict(cfg),
        "scale_note": (
            f"Reduced CPU scale: a stratified subset of the MNIST training set ({len(fit)} images to fit, "
            f"{len(val)} for validation), {len(test)} test images, {cfg.epochs} epochs for every model, "
            "one run. The paper uses 60000 training images, 50 epochs and 5 runs."
        ),
        "data": {
            "fit": fit.name,
            "validation": val.name,
            "test": test.name,
            "n_fit": len(fit),
            "n_val": len(val),
            "n_test": len(test),
        },  # fmt: skip
        "timing": (
            "training calls only, one after another in one process: 'seconds' is wall clock, "
            "'cpu_seconds' the process CPU time (with one thread, the compute actually spent; on a "
            "busy machine the wall clock also counts time spent waiting for a core)"
        ),
        "elbo_estimate": (
            f"ELBO at lambda = 1 on the fit split: -N*nll - KL(q||N(0,1)), nll averaged over "
            f"{cfg.elbo_samples} Monte Carlo weight draws"
            if cfg.elbo_samples
            else "ELBO at lambda = 1 on the fit split, nll at the mean weights (plug-in)"
        ),
        "selections_on_hypernetwork": selections,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "hardware": {**hardware("cpu"), "torch_threads": cfg.threads or old_threads},
        "load_average_start": load_start,
        "load_average_end": _load_avg(),
        "git_commit": commit,
        "started": started,
        "ended": ended,
        "train_seconds": train_end - t_start,
        "cpu_seconds": time.process_time() - cpu_start,
        "wall_seconds": time.perf_counter() - t_start,
    }
    texts = {
        "cost.csv": cost.to_csv(index=False),
        "curves.csv": curves.to_csv(index=False),
        "calibration.csv": calibration.to_csv(index=False),
        "provenance.json": json.dumps(provenance, indent=2),
    }
    paths = {}
    for name, text in texts.items():
        atomic_write(out / name, text)  # readers see the old file or the new one, never a part
        paths[name] = out / name
    return paths


# -- reading the results ---------------------------------------------------------------------------
_GAP_METRICS = ("test_accuracy", "test_nll", "test_ece", "deletable")


def _match_lam(values: pd.Series, lam: float) -> pd.Series:
    return np.isclose(np.log(values.to_numpy(dtype=float)), math.log(lam), atol=1e-9)


def gap_table(curves: pd.DataFrame, metrics: Sequence[str] = _GAP_METRICS) -> pd.DataFrame:
    """Hypernetwork minus direct model at every lambda where a direct model was trained.

    One row per lambda (a lambda in several grids appears once); for each metric m the columns
    ``m_hyper``, ``m_direct`` and ``m_gap`` (hyper - direct), and ``grids`` naming the grids.
    """
    hyper = curves[curves.model == "hypernetwork"]
    direct = curves[curves.model == "direct"]
    if hyper.empty or direct.empty:
        raise ValueError("curves must hold rows of model 'hypernetwork' and 'direct'")
    rows = []
    for lam, grp in direct.groupby(direct.lam.round(12)):
        h = hyper[_match_lam(hyper.lam, float(lam))]
        if h.empty:
            raise ValueError(f"the hypernetwork was not evaluated at lambda = {lam:g}")
        row = {"lam": float(lam), "grids": ", ".join(sorted(set(grp.grid)))}
        d = grp.iloc[0]
        for m in metrics:
            row[f"{m}_hyper"] = float(h[m].iloc[0])
            row[f"{m}_direct"] = float(d[m])
            row[f"{m}_gap"] = row[f"{m}_hyper"] - row[f"{m}_direct"]
        rows.append(row)
    return pd.DataFrame(rows).sort_values("lam").reset_index(drop=True)


def selection_table(curves: pd.DataFrame, direct_grid: str | None = None) -> pd.DataFrame:
    """What each way of choosing lambda picks, judged on the test set.

    Rows: the hypernetwork's lambda chosen by validation accuracy, validation NLL and the ELBO,
    and the test-set optimum (an oracle no one has in practice); then the classical recipe,
    the directly trained model of ``direct_grid`` (default: the largest grid) with the best
    validation accuracy. Columns: ``approach``, ``criterion``, ``lam``, ``test_accuracy``,
    ``test_nll``, ``deletable``, ``regret`` (oracle test accuracy minus this one) and
    ``direct_test_accuracy`` (the direct model trained at that lambda, where there is one).
    """
    hyper = curves[curves.model == "hypernetwork"]
    direct = curves[curves.model == "direct"]
    if hyper.empty:
        raise ValueError("curves hold no hypernetwork rows")
    if direct_grid is None and not direct.empty:
        direct_grid = max(set(direct.grid), key=lambda g: (direct.grid == g).sum())
    oracle = best_from_curve(hyper, "accuracy", column="test_accuracy")
    picks = [(c, best_from_curve(hyper, c)) for c in CRITERIA] + [("test accuracy (oracle)", oracle)]
    best_test = float(hyper.loc[_match_lam(hyper.lam, oracle), "test_accuracy"].iloc[0])
    rows = []
    for crit, lam in picks:
        h = hyper[_match_lam(hyper.lam, lam)].iloc[0]
        d = direct[_match_lam(direct.lam, lam)] if not direct.empty else direct
        rows.append({
            "approach": "hypernetwork", "criterion": crit, "lam": lam,
            "test_accuracy": float(h.test_accuracy), "test_nll": float(h.test_nll),
            "deletable": float(h.deletable), "regret": best_test - float(h.test_accuracy),
            "direct_test_accuracy": float(d.test_accuracy.iloc[0]) if len(d) else float("nan"),
        })  # fmt: skip
    if direct_grid is not None:
        dg = direct[direct.grid == direct_grid]
        lam = best_from_curve(dg, "accuracy")
        d = dg[_match_lam(dg.lam, lam)].iloc[0]
        rows.append({
            "approach": f"direct models ({direct_grid})", "criterion": "accuracy", "lam": lam,
            "test_accuracy": float(d.test_accuracy), "test_nll": float(d.test_nll),
            "deletable": float(d.deletable), "regret": best_test - float(d.test_accuracy),
            "direct_test_accuracy": float(d.test_accuracy),
        })  # fmt: skip
    return pd.DataFrame(rows)


def plot_gap(curves: pd.DataFrame, metrics: Sequence[str] = _GAP_METRICS):
    """One panel per metric against lambda: the hypernetwork's curve, the direct models' points."""
    import matplotlib.pyplot as plt

    labels = {"test_accuracy": "test accuracy", "test_nll": "test NLL", "test_ece": "test ECE",
              "deletable": "share deletable (≤ 1 pp loss)"}  # fmt: skip
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.0), squeeze=False)
    hyper = curves[curves.model == "hypernetwork"].sort_values("lam")
    direct = curves[curves.model == "direct"]
    markers = dict(zip(sorted(set(direct.grid), key=len), "os^Dv"))
    for ax, m in zip(axes[0], metrics):
        ax.plot(hyper.lam, hyper[m], "-", color="C0", label="hypernetwork")
        for g, grp in direct.groupby("grid"):
            ax.plot(grp.lam, grp[m], markers.get(g, "o"), color="C1", mfc="none", label=f"direct, {g}")
        ax.set_xscale("log")
        ax.set_xlabel("λ")
        ax.set_title(labels.get(m, m), fontsize=10)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_calibration(calibration: pd.DataFrame, metric: str = "ece"):
    """``metric`` against the share of deleted weights, one line per lambda; mean weights and MC."""
    import matplotlib.pyplot as plt

    kinds = [k for k in ("mean", "mc") if k in set(calibration.prediction)]
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.0), sharey=True, squeeze=False)
    lams = sorted(set(calibration.lam))
    cmap = plt.get_cmap("viridis")
    for ax, kind in zip(axes[0], kinds):
        part = calibration[calibration.prediction == kind]
        for i, lam in enumerate(lams):
            g = part[part.lam == lam].sort_values("fraction")
            ax.plot(100 * g.fraction, g[metric], marker="o", color=cmap(i / max(1, len(lams) - 1)),
                    label=f"λ = {lam:g}")  # fmt: skip
        n = int(part.mc_samples.max())
        ax.set_title("mean weights" if kind == "mean" else f"MC average of {n} draws", fontsize=10)
        ax.set_xlabel("% of weights deleted")
    axes[0][0].set_ylabel(metric.upper() if metric == "ece" else metric)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


@dataclass
class ChoosingResults:
    """The committed results of ``run_cost_study``."""

    cost: pd.DataFrame
    curves: pd.DataFrame
    calibration: pd.DataFrame
    provenance: dict
    folder: Path


def load_choosing_results(results_dir: str | os.PathLike | None = None, name: str = "choosing") -> ChoosingResults:
    """Read ``<results>/choosing`` (cost, curves, calibration, provenance).

    ``results_dir`` is the folder that holds ``choosing/``; by default the checkout's
    ``results/`` or, in an installed package, the copy shipped inside it (as
    ``varhyper_mini.study.load_results`` finds them).
    """
    from .provenance import results_root

    base = Path(results_dir) if results_dir is not None else results_root()
    folder = base / name
    missing = [f for f in CHOOSING_FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"no complete cost-study results in {folder} (missing {', '.join(missing)}); run "
            f"`python -c \"from varhyper_mini.selection import run_cost_study; run_cost_study('{folder}')\"`"
        )
    return ChoosingResults(
        cost=pd.read_csv(folder / "cost.csv"),
        curves=pd.read_csv(folder / "curves.csv"),
        calibration=pd.read_csv(folder / "calibration.csv"),
        provenance=json.loads((folder / "provenance.json").read_text()),
        folder=folder,
    )


# -- choosing lambda over several seeds --------------------------------------------------------------
# What each judge column prefers: larger test accuracy, smaller test NLL.
_JUDGES = {"test_accuracy": True, "test_nll": False}


def replicate_curves(
    config: CostConfig,
    seeds: Sequence[int],
    lams: Sequence[float] | None = None,
    n_lams: int = 21,
    data_root: str | os.PathLike | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Independent replicates of the cost study's hypernetwork, each evaluated at every lambda.

    Replicate ``s`` sets ``CostConfig.seed = s``: it redraws the training subset, the validation
    split carved from it and the initial weights, and trains the hypernetwork exactly as
    ``train_cost_hypernet`` does (so the seed of ``config`` repeats the committed run). Each
    replicate is then evaluated with the mean weights on its validation split and on the test
    data at ``lams`` (default ``n_lams`` values log-spaced over ``config.lam_range``).

    Returns one row per (seed, lambda): ``seed``, ``lam``, ``val_accuracy``, ``val_nll``,
    ``test_accuracy``, ``test_nll``; what ``compare_criteria`` reads.
    """
    config.validate()
    seeds = [as_int(s, "a seed", minimum=0) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct non-negative integers, at least one, got {seeds!r}")
    lams = lambda_grid(config.lam_range, n_lams) if lams is None else [float(check_lam(v)) for v in lams]
    if not lams:
        raise ValueError("lams is empty; give at least one lambda")
    old_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    rows = []
    try:
        for s in seeds:
            cfg = dataclasses.replace(config, seed=s)
            fit, val, test = cost_data(cfg, data_root)
            hyper, target = train_cost_hypernet(cfg, fit, progress)
            with torch.no_grad():
                for lam in lams:
                    params = hyper(lam)
                    v = prediction_metrics(predict(target, params, val), val.y)
                    t = prediction_metrics(predict(target, params, test), test.y)
                    rows.append({"seed": s, "lam": float(lam), "val_accuracy": v["accuracy"], "val_nll": v["nll"],
                                 "test_accuracy": t["accuracy"], "test_nll": t["nll"]})  # fmt: skip
    finally:
        torch.set_num_threads(old_threads)
    return pd.DataFrame(rows)


@dataclass
class CriterionComparison:
    """What ``compare_criteria`` found; every difference comes with its standard error.

    Attributes:
        picks: one row per (seed, criterion): the chosen ``lam``, its test accuracy and NLL, and
            ``regret`` (how much worse than the seed's test-set optimum, in the judge's units).
        summary: one row per criterion: ``seeds``, mean ``regret`` with its standard deviation
            over seeds, standard error ``se`` and confidence interval ``ci_low``/``ci_high``; the
            mean test accuracy and NLL of the picks; the median chosen lambda.
        differences: one row per pair of criteria (a, b): mean of regret(a) - regret(b) over the
            seeds (paired: both choose on the same replicate), its ``se``, interval, and
            ``within_noise``: True when the interval contains 0, or with fewer than two seeds.
        judge: the test-set column the choices are judged by.
        level: the confidence level of the intervals.
    """

    picks: pd.DataFrame
    summary: pd.DataFrame
    differences: pd.DataFrame
    judge: str
    level: float


def _mean_se_ci(values: np.ndarray, level: float) -> dict[str, float]:
    """Mean, standard deviation, standard error and Student-t interval of ``values``."""
    n = len(values)
    mean = float(np.mean(values))
    if n < 2:
        return {"mean": mean, "sd": float("nan"), "se": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    from scipy.stats import t as student_t  # scipy comes with scikit-learn

    sd = float(np.std(values, ddof=1))
    se = sd / math.sqrt(n)
    half = float(student_t.ppf(0.5 + level / 2, n - 1)) * se
    return {"mean": mean, "sd": sd, "se": se, "ci_low": mean - half, "ci_high": mean + half}


def compare_criteria(
    curves: pd.DataFrame,
    criteria: Sequence[str] = ("accuracy", "nll"),
    judge: str = "test_accuracy",
    level: float = 0.95,
) -> CriterionComparison:
    """Judge ways of choosing lambda over independent replicates, with standard errors.

    ``curves`` has one row per (seed, lambda), as ``replicate_curves`` returns. For each seed,
    each criterion picks a lambda from the validation columns (``best_from_curve``: largest
    ``val_accuracy``, smallest ``val_nll``; ties to the largest lambda), and the pick is judged
    by ``judge`` on the test data against the seed's own test-set optimum (the regret, >= 0).
    The regrets are then averaged over seeds, with a Student-t interval at ``level``; criteria
    are compared pairwise on the same seeds. A difference whose interval contains zero is
    reported as ``within_noise``: it does not rank the criteria.
    """
    if judge not in _JUDGES:
        raise ValueError(f"unknown judge {judge!r}; choose one of {tuple(_JUDGES)}")
    level = as_real(level, "level")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95, got {level!r}")
    criteria = list(criteria)
    bad = [c for c in criteria if c not in ("accuracy", "nll")]
    if not criteria or bad:
        raise ValueError(f"criteria must be among ('accuracy', 'nll'), got {criteria!r}")
    need = {"seed", "lam", "val_accuracy", "val_nll", judge}
    if not isinstance(curves, pd.DataFrame) or not need <= set(curves.columns):
        have = list(curves.columns) if isinstance(curves, pd.DataFrame) else type(curves).__name__
        raise ValueError(f"curves need the columns {sorted(need)}; they have {have}")
    larger = _JUDGES[judge]
    rows = []
    for seed, c in curves.groupby("seed"):
        best = c[judge].max() if larger else c[judge].min()
        for crit in criteria:
            lam = best_from_curve(c, crit)
            row = c[_match_lam(c.lam, lam)].iloc[0]
            value = float(row[judge])
            rows.append({"seed": int(seed), "criterion": crit, "lam": lam,
                         "test_accuracy": float(row.get("test_accuracy", float("nan"))),
                         "test_nll": float(row.get("test_nll", float("nan"))),
                         "regret": float(best - value) if larger else float(value - best)})  # fmt: skip
    picks = pd.DataFrame(rows)
    summary = []
    for crit in criteria:
        p = picks[picks.criterion == crit]
        stats = _mean_se_ci(p.regret.to_numpy(), level)
        summary.append({"criterion": crit, "seeds": len(p), "regret": stats["mean"], "sd": stats["sd"],
                        "se": stats["se"], "ci_low": stats["ci_low"], "ci_high": stats["ci_high"],
                        "test_accuracy": float(p.test_accuracy.mean()), "test_nll": float(p.test_nll.mean()),
                        "median_lam": float(np.exp(np.median(np.log(p.lam))))})  # fmt: skip
    diffs = []
    by_seed = picks.pivot(index="seed", columns="criterion", values="regret")
    for i, a in enumerate(criteria):
        for b in criteria[i + 1 :]:
            stats = _mean_se_ci((by_seed[a] - by_seed[b]).to_numpy(), level)
            noise = bool(math.isnan(stats["se"]) or stats["ci_low"] <= 0 <= stats["ci_high"])
            diffs.append({"a": a, "b": b, "difference": stats["mean"], "se": stats["se"],
                          "ci_low": stats["ci_low"], "ci_high": stats["ci_high"], "within_noise": noise})  # fmt: skip
    differences = pd.DataFrame(diffs, columns=["a", "b", "difference", "se", "ci_low", "ci_high", "within_noise"])
    return CriterionComparison(picks, pd.DataFrame(summary), differences, judge, level)


def plot_criteria(curves: pd.DataFrame, comparison: CriterionComparison):
    """Left: each replicate's test accuracy against lambda, with the lambda each criterion picked.
    Right: each criterion's regret per replicate (dots) with its mean and confidence interval."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [1.6, 1]})
    ax = axes[0]
    markers = dict(zip(comparison.summary.criterion, "ovs^"))
    for k, (_seed, c) in enumerate(curves.sort_values("lam").groupby("seed")):
        ax.plot(
            c.lam, c.test_accuracy, "-", color="0.6", lw=0.8, label="test accuracy, one per seed" if k == 0 else None
        )
    for i, (crit, p) in enumerate(comparison.picks.groupby("criterion", sort=False)):
        ax.plot(p.lam, p.test_accuracy, markers.get(crit, "o"), color=f"C{i}", mfc="none",
                label=f"picked by validation {crit}")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("λ")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7)
    ax = axes[1]
    scale = 100 if comparison.judge == "test_accuracy" else 1
    for i, row in enumerate(comparison.summary.itertuples()):
        r = comparison.picks[comparison.picks.criterion == row.criterion].regret
        ax.plot(np.full(len(r), i) + np.linspace(-0.12, 0.12, len(r)), scale * r, "o", color=f"C{i}", alpha=0.5, ms=4)
        if not math.isnan(row.se):
            ax.errorbar(i + 0.3, scale * row.regret, yerr=[[scale * (row.regret - row.ci_low)],
                        [scale * (row.ci_high - row.regret)]], fmt="k_", capsize=4, ms=12)  # fmt: skip
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(range(len(comparison.summary)), [f"validation {c}" for c in comparison.summary.criterion])
    unit = "points" if comparison.judge == "test_accuracy" else "nats"
    ax.set_ylabel(f"regret ({unit}), {int(round(100 * comparison.level))} % interval")
    fig.tight_layout()
    return fig
