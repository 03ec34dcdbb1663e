"""A model within a budget: search (lambda, pruning fraction) on one trained hypernetwork.

The paper's Algorithm 2 picks lambda, generates the model G(lambda) and deletes its least
relevant weights; ``fit_budget`` runs it over a grid of lambdas and pruning fractions and returns
the model that meets a size and/or accuracy budget, as a ready, pruned plain ``nn.Module``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .._checks import as_int, as_real
from ..data import TensorData
from ..evaluation import accuracy, check_data
from ..gaussian import GaussianParams
from ..hypernets import Hypernet, check_lam
from ..pruning import check_fraction, prune
from .choose import lambda_grid
from .compression import count_nonzero
from .export import pruned_module, save_pruned

__all__ = ["BudgetFit", "fit_budget"]


@dataclass
class BudgetFit:
    """The model that ``fit_budget`` chose, ready to use, with the grid it searched.

    Attributes:
        model: a plain ``nn.Module`` (a copy of the target) holding the pruned mean weights.
        params: the pruned ``GaussianParams`` at the chosen point.
        lam, fraction: the chosen lambda and share of deleted weights (weight tensors only).
        accuracy: accuracy on the data the budget was fitted on, a share in [0, 1].
        nonzero, total: non-zero and total parameter counts (biases included).
        grid: every searched (lam, fraction) with accuracy, nonzero, total, ``violation`` and
            ``feasible``.
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
        """total / nonzero, biases included (``compression_ratio`` of ``model``); inf when nonzero is 0."""
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
    Algorithm 2 (``vh.prune`` with ``criterion`` and ``scope``) at every share of ``fractions``
    (default 0, 0.05, ..., 0.95, 0.97, 0.99) and scored on ``data``, which should be a
    validation split, not the test set.

    Budget (give at least one; all given ones must hold):
        max_nonzero: at most this many non-zero parameters (biases included);
        min_fraction_deleted / max_fraction_deleted: bounds on the share of deleted weights
            (weight tensors only, biases are never deleted);
        min_accuracy: at least this accuracy on ``data`` (a share in [0, 1]).
    Objective among the points that meet it: ``"size"`` picks the fewest non-zero parameters
    (then the higher accuracy), ``"accuracy"`` the highest accuracy (then the fewer non-zero);
    ``"auto"`` is "size" when only ``min_accuracy`` constrains quality and no size bound is
    given, else "accuracy". Remaining ties go to the larger lambda.

    Returns:
        A ``BudgetFit`` whose ``model`` is a plain copy of ``target`` with the pruned means
        (``masks=True`` adds ``torch.nn.utils.prune`` masks).
    Raises:
        ValueError: naming the closest point on the grid when no point meets the budget; for no
            budget or an invalid one, an unknown objective, "var" on a deterministic
            hypernetwork, empty data, lambdas or fractions, or the errors of ``vh.prune``.
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
