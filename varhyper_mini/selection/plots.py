"""The figures of chapter 8 ("Choosing lambda"): the hypernetwork against direct models, calibration, criteria.

Each function takes the tables of this subpackage and returns a matplotlib ``Figure``
(matplotlib is imported when a figure is drawn).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .compare import CriterionComparison
from .cost_results import GAP_METRICS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_cost", "plot_gap", "plot_calibration", "plot_criteria"]


def plot_cost(cost: pd.DataFrame) -> Figure:
    """CPU seconds to train, one bar per row of ``cost.csv``: the hypernetwork, then the K direct models.

    ``cost`` is ``ChoosingResults.cost`` (columns ``method``, ``k_lams``, ``cpu_seconds``); the
    hypernetwork's bar is blue, the direct models' orange. Raises ``KeyError`` for a missing column.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.8))
    labels = [m if m == "hypernetwork" else f"{m}, K = {k}" for m, k in zip(cost.method, cost.k_lams)]
    ax.barh(labels, cost.cpu_seconds, color=["C0" if m == "hypernetwork" else "C1" for m in cost.method])
    ax.set_xlabel("CPU seconds to train")
    ax.invert_yaxis()
    return fig


def plot_gap(curves: pd.DataFrame, metrics: Sequence[str] = GAP_METRICS) -> Figure:
    """One panel per metric against lambda: the hypernetwork's curve, the direct models' points.

    ``curves`` is the cost study's ``curves.csv`` (``ChoosingResults.curves``): columns
    ``model``, ``grid``, ``lam`` and each of ``metrics``; lambda on a log axis. Raises
    ``KeyError`` for a metric that is not a column.
    """
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


def plot_calibration(calibration: pd.DataFrame, metric: str = "ece") -> Figure:
    """``metric`` against the share of deleted weights (in %), one line per lambda; mean weights and MC.

    ``calibration`` is a ``calibration_table`` (columns ``lam``, ``fraction``, ``prediction``,
    ``mc_samples`` and ``metric``): one panel for the "mean" rows, one for the "mc" rows where
    there are any. Raises ``KeyError`` for a metric that is not a column.
    """
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


def plot_criteria(curves: pd.DataFrame, comparison: CriterionComparison) -> Figure:
    """Left: each replicate's test accuracy against lambda, with the lambda each criterion picked.
    Right: each criterion's regret per replicate (dots) with its mean and confidence interval.

    ``curves`` are ``replicate_curves``' rows and ``comparison`` what ``compare_criteria`` made of
    them; regrets are drawn in points of accuracy (judge "test_accuracy") or nats ("test_nll").
    """
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
