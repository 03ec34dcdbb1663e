"""Choosing lambda on one trained hypernetwork: the criteria, the curve over lambda, the ELBO.

The paper (Grebenkova, Bakhteev, Strijov, ICAART 2023) trains one hypernetwork G(lambda) and
leaves the choice of lambda to the user. ``select_lambda`` sweeps lambda and picks the best value
by a validation criterion (accuracy or NLL on a split carved from the training data) or by the
evidence lower bound at lambda = 1, ELBO = E_q log p(D|w) - KL(q || p) = -N * L1(1) (the paper's
eq. 4 with lambda = 1). For L1 the ELBO cannot choose lambda: a converged hypernetwork minimises
L1(1) at lambda = 1, so its ELBO curve peaks there whatever the data; read it as a convergence
check.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .._checks import as_int
from ..data import TensorData, batches
from ..evaluation import check_data, predict
from ..gaussian import GaussianParams, ParamSpec, check_prior_var
from ..hypernets import Hypernet, check_lam, same_lambda
from .calibration import prediction_metrics

__all__ = [
    "CRITERIA",
    "Selection",
    "lambda_grid",
    "match_lam",
    "elbo",
    "lambda_curve",
    "best_from_curve",
    "select_lambda",
]

CRITERIA = ("accuracy", "nll", "elbo")
# Which column of a lambda curve each criterion reads, and whether larger is better.
_CRITERION_COLUMN = {"accuracy": ("val_accuracy", True), "nll": ("val_nll", False), "elbo": ("elbo", True)}


def lambda_grid(lam_range: tuple[float, float], n: int) -> tuple[float, ...]:
    """``n`` values spaced evenly in log lambda over ``lam_range``, both ends included.

    ``lambda_grid((1e-3, 1e2), 6)`` is the paper's MNIST grid {1e-3, 1e-2, ..., 1e2}; ``n = 1``
    gives the geometric mean of the two ends. Returns a tuple of ``n`` Python floats.

    Raises:
        ValueError: for an end that is not a valid lambda (positive, finite, in the float32
            range, not a bool), ``lo > hi``, or ``n`` not a positive integer.
    """
    lo, hi = (float(check_lam(v)) for v in lam_range)
    if not lo <= hi:
        raise ValueError(f"lam_range must satisfy 0 < lo <= hi < inf, got {lam_range!r}")
    n = as_int(n, "the number of lambda values")
    if n == 1:
        return (math.sqrt(lo * hi),)
    return tuple(float(v) for v in np.geomspace(lo, hi, n))


def match_lam(values: pd.Series, lam: float) -> np.ndarray:
    """Which entries of ``values`` are the lambda ``lam``, under the package's rule (``hypernets.same_lambda``).

    Returns a boolean array, shape ``(len(values),)``.
    """
    return same_lambda(values, lam)


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

    - ``samples > 0``: averaged over that many weight draws w ~ q (a generator seeded with
      ``seed``), an unbiased estimate of E_q[-log p(y|x, w)], so the result estimates a true
      lower bound on log p(D);
    - ``samples = 0``: the plug-in value at the mean weights (cheaper, not a bound).

    Args:
        target: the plain module that ``params`` parametrise.
        params: one model's variational posterior (unbatched ``GaussianParams``).
        train_data: the data the likelihood is evaluated on, examples of shape (N, ...).
    Returns:
        ``{"elbo", "nll", "kl", "samples"}``: nll in nats per example, elbo and kl in nats.
    Raises:
        ValueError: for batched or deterministic ``params``, parameter names that do not match
            ``target``, empty data, a prior variance that is not positive and finite, or
            ``samples`` < 0.
    """
    if not isinstance(params, GaussianParams) or params.batch_shape:
        raise ValueError("elbo takes the GaussianParams of one model (params[i] picks one from a batch)")
    params.require_variational("the ELBO")
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
    """The selection criteria at every lambda of ``lams``: one row per lambda, in the given order.

    Columns: ``lam``; with ``val_data``, ``val_accuracy``, ``val_nll`` (nats per example) and
    ``val_ece`` (``prediction_metrics`` of the predictions with the mean weights, or averaged over
    ``mc_samples`` weight draws); with ``train_data``, ``elbo``, ``train_nll`` and ``kl`` from
    ``elbo(..., samples=elbo_samples)``. Lambda number i draws its weights with seed ``seed + i``.

    Raises:
        ValueError: when neither ``val_data`` nor ``train_data`` is given, ``lams`` is empty or
            holds an invalid lambda, or for the errors of ``vh.predict`` and ``elbo``.
    """
    if val_data is None and train_data is None:
        raise ValueError("give val_data (accuracy, nll) and/or train_data (elbo)")
    lams = [float(check_lam(v)) for v in lams]
    if not lams:
        raise ValueError("lams is empty; give at least one lambda")
    rows = []
    gen_dev = hypernet.device
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
    Ties go to the **largest** lambda: the simplest of the equally good models. Rows with a
    missing value in the column are skipped.

    Raises:
        ValueError: for an unknown criterion, a curve without the columns ``lam`` and the one
            read, or a column with no finite values.
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
        prior_var: the prior variance of the ELBO's KL term.
        seed: lambda number i draws its weights with seed ``seed + i``.
    Returns:
        A ``Selection``; ties go to the largest lambda (``best_from_curve``).
    Raises:
        ValueError: for an unknown criterion, a ``hypernet`` that is not a ``Hypernet``,
            "elbo" without ``train_data`` or on a deterministic hypernetwork, "accuracy" or
            "nll" without ``val_data``, empty data, or an invalid lambda.
    Warns:
        UserWarning: when ``val_data`` is named like a test set.
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
