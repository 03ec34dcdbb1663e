"""The Wine experiment's figures, drawn from its results tables (``results.load_results``).

``plot_figure3`` is the paper's Figure 3 (accuracy against D_KL to the direct models),
``plot_theorem2`` the Theorem 2 check (expected loss gap and pruning-score distance against N),
``plot_pruning_curves`` the pruning curves of every N against the direct models'. matplotlib is
imported when a figure is drawn, not with the package.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

from ...hypernets import same_lambda
from .results import summarise, theorem2_summary

__all__ = ["plot_figure3", "plot_theorem2", "plot_pruning_curves"]


def _lam_label(lam: float) -> str:
    e = math.log10(lam)
    return f"$10^{{{e:g}}}$" if abs(e - round(e)) < 1e-9 else f"{lam:g}"


def plot_figure3(table: pd.DataFrame, pieces: Sequence[int] = (1, 5, 3), axes: Sequence[Axes] | None = None) -> Figure:
    """Figure 3: test accuracy against log10 D_KL (nats), one point per lambda (means over runs, bars: spread).

    ``table``: a ``sym_kl.csv`` table; ``pieces``: the hypernetworks' N to draw (N absent from
    the table are skipped). Left: the models the hypernetworks produce; right: after
    fine-tuning, with the one-epoch from-scratch baseline. Grey lines: the direct models'
    accuracies. ``axes``: two axes to draw into (default: a new 1 x 2 figure). Returns the figure.
    """
    import matplotlib.pyplot as plt

    s = summarise(table)
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True, sharex=True)
    fig = axes[0].figure
    direct = s[s.model == "direct"]
    colors = plt.get_cmap("tab10")
    panels = [("trained", "produced by the hypernetwork"), ("finetuned", "after one epoch of fine-tuning")]
    for ax, (stage, title) in zip(axes, panels):
        for _, r in direct.iterrows():
            ax.axhline(r.accuracy, color="0.6", lw=1, ls="--", zorder=0)
        for i, n in enumerate(pieces):
            d = s[(s.n_pieces == n) & (s.stage == stage) & (s.model != "direct")].sort_values("lam")
            if d.empty:
                continue
            label = "linear" if n == 1 else f"piecewise-linear, N = {n}"
            ax.errorbar(
                d.log10_sym_kl, d.accuracy, xerr=d.log10_sym_kl_spread.fillna(0),
                yerr=d.accuracy_spread.fillna(0), marker="o", ms=5, lw=1.2, capsize=2,
                color=colors(i), label=label,
            )  # fmt: skip
            for _, r in d.iterrows():
                ax.annotate(_lam_label(r.lam), (r.log10_sym_kl, r.accuracy), fontsize=7,
                            textcoords="offset points", xytext=(4, 3), color=colors(i))  # fmt: skip
        if stage == "finetuned":
            d = s[s.stage == "scratch1"].sort_values("lam")
            ax.errorbar(
                d.log10_sym_kl, d.accuracy, xerr=d.log10_sym_kl_spread.fillna(0),
                yerr=d.accuracy_spread.fillna(0), marker="x", ls=":", lw=1, capsize=2, color="k",
                label="one epoch from scratch",
            )  # fmt: skip
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(r"$\log_{10} \bar D_{KL}(q_1, q_2)$")
    axes[0].set_ylabel("test accuracy")
    axes[0].plot([], [], color="0.6", ls="--", label="direct models")
    axes[1].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_theorem2(theorem2: pd.DataFrame, measure: str = "rel_gap", axes: Sequence[Axes] | None = None) -> Figure:
    """Theorem 2 on Wine. Left: the expected loss gap against N. Right: the pruning-score distance
    (eq. (17)) against the gap, one point per N and run (small) and their means (large).

    ``theorem2``: a ``theorem2.csv`` table. ``measure`` is "rel_gap" (the gap relative to the
    direct model's loss, unitless) or "gap" (absolute, nats per example). ``axes``: two axes to
    draw into (default: a new 1 x 2 figure). Returns the figure.

    Raises:
        ValueError: ``measure`` is neither "rel_gap" nor "gap".
    """
    import matplotlib.pyplot as plt

    if measure not in ("gap", "rel_gap"):
        raise ValueError(f"measure must be 'gap' or 'rel_gap', got {measure!r}")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    fig = axes[0].figure
    per_run = theorem2.groupby(["n_pieces", "run"], as_index=False)[[measure, "g_distance"]].mean()
    summ = theorem2_summary(theorem2)
    label = {
        "gap": r"$E_\lambda[L(G(\lambda)) - L(w^*(\lambda))]$",
        "rel_gap": r"$E_\lambda[(L(G(\lambda)) - L(w^*(\lambda))) / L(w^*(\lambda))]$",
    }[measure]
    axes[0].errorbar(summ.n_pieces, summ[measure], yerr=summ[f"{measure}_spread"].fillna(0), marker="o", capsize=3)
    axes[0].scatter(per_run.n_pieces, per_run[measure], s=10, color="0.5", zorder=3)
    axes[0].axhline(0, color="0.7", lw=0.8)
    axes[0].set_xlabel("N (linear pieces; N = 1 is the linear hypernetwork)")
    axes[0].set_ylabel(label)
    axes[0].set_xticks(list(summ.n_pieces))
    cmap = plt.get_cmap("viridis")
    ns = list(summ.n_pieces)
    for i, n in enumerate(ns):
        c = cmap(i / max(1, len(ns) - 1))
        d = per_run[per_run.n_pieces == n]
        axes[1].scatter(d[measure], d.g_distance, s=12, color=c, alpha=0.6)
        r = summ[summ.n_pieces == n].iloc[0]
        axes[1].scatter([r[measure]], [r.g_distance], s=60, color=c, edgecolor="k", label=f"N = {n}", zorder=3)
    axes[1].set_xlabel("expected relative loss gap" if measure == "rel_gap" else "expected loss gap")
    axes[1].set_ylabel(r"distance of the scores $g = |\mu|/\sigma$")
    if (per_run[measure] > 0).all():
        axes[1].set_xscale("log")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_pruning_curves(
    pruning: pd.DataFrame, lams: Sequence[float] | None = None, axes: Sequence[Axes] | None = None
) -> Figure:
    """Test accuracy against the share of weights deleted (%, means over runs), one panel per lambda.

    Every hypernetwork N (colours) and the direct models (black, dashed). ``pruning``: a
    ``pruning.csv`` table; ``lams``: the panels (default: every lambda of the table); ``axes``:
    one axis per lambda to draw into (default: a new 1 x len(lams) figure). Returns the figure.
    """
    import matplotlib.pyplot as plt

    lams = sorted(pruning.lam.unique()) if lams is None else list(lams)
    if axes is None:
        fig, axes = plt.subplots(1, len(lams), figsize=(2.6 * len(lams), 3), sharey=True, squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    mean = pruning.groupby(["model", "n_pieces", "lam", "fraction"], as_index=False).accuracy.mean()
    ns = sorted(n for n in mean.n_pieces.unique() if n > 0)
    cmap = plt.get_cmap("viridis")
    for ax, lam in zip(axes, lams):
        d = mean[same_lambda(mean.lam, lam)]
        for i, n in enumerate(ns):
            e = d[(d.n_pieces == n) & (d.model != "direct")]
            ax.plot(
                100 * e.fraction,
                e.accuracy,
                color=cmap(i / max(1, len(ns) - 1)),
                marker=".",
                label=f"N = {n}",
            )
        e = d[d.model == "direct"]
        ax.plot(100 * e.fraction, e.accuracy, color="k", ls="--", lw=2, label="direct")
        ax.set_title(rf"$\lambda$ = {_lam_label(lam)}", fontsize=10)
        ax.set_xlabel("% of weights deleted")
    axes[0].set_ylabel("test accuracy")
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    return fig
