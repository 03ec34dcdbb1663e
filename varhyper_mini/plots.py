"""Figures and tables of the pruning studies (the paper's Tables 1-2 and Figures 1, 4-8)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .experiments.study import HYPERNETS, LETTERS, select_rule, summarise

__all__ = [
    "paper_table",
    "compare_with_paper",
    "table1_view",
    "plot_pruning_grid",
    "plot_average_curves",
    "plot_surface",
    "plot_weight_scales",
    "plot_method_diagram",
]

LOSS_LABELS = {"variational": "variational (L1)", "covariance": "covariance (L2)", "base": "base (L3)"}
HYPERNET_LABELS = {"direct": "direct", "linear": "linear hypernet", "piecewise": "piecewise-linear hypernet"}


def paper_table(dataset: str) -> pd.DataFrame:
    """The paper's Table 1 (mnist) or Table 2 (cifar10): loss, hypernet, fraction, accuracy.

    Raises:
        ValueError: ``dataset`` is neither "mnist" nor "cifar10".
    """
    from .provenance import results_root

    df = pd.read_csv(results_root() / "paper" / "paper_tables.csv")
    if dataset not in set(df.dataset):
        raise ValueError(f"the paper has no table for {dataset!r}; choose mnist or cifar10")
    return df[df.dataset == dataset].drop(columns="dataset").reset_index(drop=True)


def _rule_rows(df: pd.DataFrame, rule: dict | None) -> pd.DataFrame:
    """The rows of one pruning rule (the paper's unless ``rule`` names another; see ``select_rule``)."""
    return select_rule(df, **(rule or {})) if "scope" in df.columns else df


def compare_with_paper(
    df: pd.DataFrame, dataset: str, lams: Sequence[float] | None = None, rule: dict | None = None
) -> pd.DataFrame:
    """Our Table beside the paper's: mean and spread over runs, the paper's value and the difference.

    ``rule`` picks the pruning rule (keyword arguments of ``study.select_rule``; the paper's by default).
    """
    ours = summarise(df, lams, **(rule or {}))
    paper = paper_table(dataset).rename(columns={"accuracy": "paper"})
    out = ours.merge(paper, on=["loss", "hypernet", "fraction"], how="left")
    out["difference"] = out["accuracy"] - out["paper"]
    out["letter"] = out["implementation"].map(LETTERS)
    return out


def table1_view(t: pd.DataFrame) -> pd.DataFrame:
    """``compare_with_paper``'s output as Table 1: one row per implementation, one column per level.

    Each cell reads "mean ± std (paper's value; difference)", accuracies in %.
    """
    view = t.assign(
        cell=lambda d: [
            f"{100 * a:.2f} ± {100 * s:.2f} ({100 * p:.2f}; {100 * x:+.2f})"
            for a, s, p, x in zip(d.accuracy, d.spread.fillna(0), d.paper, d.difference)
        ],
        name=lambda d: "(" + d.letter + ") " + d.implementation,
    )
    return view.pivot(index="name", columns="fraction", values="cell").rename(columns=lambda f: f"{100 * f:.0f} %")


def _lam_colors(lams):
    cmap = plt.get_cmap("viridis")
    return {lam: cmap(i / max(1, len(lams) - 1)) for i, lam in enumerate(sorted(lams))}


def plot_pruning_grid(
    df: pd.DataFrame, losses: Sequence[str] | None = None, title: str | None = None, rule: dict | None = None
):
    """Figure 4/6 layout: rows are losses, columns hypernet forms; accuracy against % deleted per lambda.

    Lines are means over runs; the shaded band is +- one standard deviation over runs. ``rule``
    picks the pruning rule (the paper's by default).
    """
    df = _rule_rows(df, rule)
    losses = list(losses or [v for v in LOSS_LABELS if v in set(df.loss)])
    hypers = [h for h in HYPERNETS if h in set(df.hypernet)]
    colors = _lam_colors(df.lam.unique())
    fig, axes = plt.subplots(len(losses), len(hypers), figsize=(3.4 * len(hypers), 2.8 * len(losses)),
                             sharex=True, sharey=True, squeeze=False)  # fmt: skip
    for i, loss in enumerate(losses):
        for j, h in enumerate(hypers):
            ax = axes[i, j]
            sub = df[(df.loss == loss) & (df.hypernet == h)]
            for lam, g in sub.groupby("lam"):
                s = g.groupby("fraction").accuracy.agg(["mean", "std"]).fillna(0.0)
                x = 100 * s.index.to_numpy()
                ax.plot(x, s["mean"], marker="o", ms=3, color=colors[lam], label=f"λ={lam:g}")
                ax.fill_between(x, s["mean"] - s["std"], s["mean"] + s["std"], color=colors[lam], alpha=0.15)
            ax.set_title(f"({LETTERS[f'{loss}-{h}']}) {LOSS_LABELS[loss]}\n{HYPERNET_LABELS[h]}", fontsize=9)
            ax.grid(alpha=0.3)
            if i == len(losses) - 1:
                ax.set_xlabel("% of weights deleted")
            if j == 0:
                ax.set_ylabel("test accuracy")
    axes[0, -1].legend(fontsize=7, loc="lower left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_average_curves(df: pd.DataFrame, lams: Sequence[float] | None = None, ax=None, rule: dict | None = None):
    """Figure 5/7 layout: every implementation's accuracy averaged over lambda (and runs)."""
    summary = summarise(df, lams, **(rule or {}))
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    styles = {"direct": "-", "linear": "--", "piecewise": ":"}
    colors = {"variational": "C0", "covariance": "C1", "base": "C2"}
    for impl, g in summary.groupby("implementation", sort=False):
        loss, h = impl.split("-")
        ax.errorbar(100 * g.fraction, g.accuracy, yerr=g.spread.fillna(0.0), ls=styles[h], color=colors[loss],
                    marker="o", ms=3, capsize=2, label=f"({LETTERS[impl]}) {loss}, {h}")  # fmt: skip
    ax.set_xlabel("% of weights deleted")
    ax.set_ylabel("accuracy, mean over λ and runs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return ax


def plot_surface(df: pd.DataFrame, implementation: str = "variational-piecewise", ax=None, rule: dict | None = None):
    """Figure 1: accuracy over log10 lambda and % deleted, for one hypernetwork (mean over runs).

    Returns the 3-d axes drawn into (a new figure's when ``ax`` is None).

    Raises:
        ValueError: ``df`` has no rows for ``implementation`` (under the pruning ``rule``).
    """
    df = _rule_rows(df, rule)
    sub = df[df.implementation == implementation]
    if sub.empty:
        raise ValueError(f"no rows for implementation {implementation!r}")
    grid = sub.groupby(["lam", "fraction"]).accuracy.mean().unstack("fraction")
    lam = np.log10(grid.index.to_numpy())
    frac = 100 * grid.columns.to_numpy()
    xx, yy = np.meshgrid(frac, lam)
    if ax is None:
        fig = plt.figure(figsize=(6, 4.5))
        ax = fig.add_subplot(projection="3d")
    ax.plot_surface(xx, yy, grid.to_numpy(), cmap="viridis", edgecolor="k", linewidth=0.3, alpha=0.9)
    ax.set_xlabel("% deleted")
    ax.set_ylabel("log10 λ")
    ax.set_zlabel("accuracy")
    ax.set_title(f"({LETTERS[implementation]}) {implementation}")
    return ax


def plot_weight_scales(scales: pd.DataFrame, ax=None):
    """Per layer, the typical |w| at initialisation and |mu| after training against sigma at initialisation.

    ``scales`` is ``reproduction.weight_scales``' output; the bars are the weights' scale (log
    axis), the horizontal lines sigma = exp(initial log sigma). Where a line is above a bar, a
    weight sampled from q at initialisation is mostly noise.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.6))
    x = np.arange(len(scales))
    has_trained = "trained_abs_mu" in scales.columns
    width = 0.4 if has_trained else 0.6
    ax.bar(x - (width / 2 if has_trained else 0), scales.init_abs_w, width, label="mean |w| at initialisation")
    if has_trained:
        ax.bar(x + width / 2, scales.trained_abs_mu, width, label="mean |μ| after training")
    for i, col in enumerate(c for c in scales.columns if c.startswith("sigma_")):
        v = float(scales[col].iloc[0])
        ax.axhline(v, color=f"C{i + 3}", ls="--", label=f"σ at initialisation, log σ = {col[6:]}")
    ax.set_xticks(x, scales.layer.str.replace(".weight", "", regex=False))
    ax.set_yscale("log")
    ax.set_ylabel("scale")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    return ax


def plot_method_diagram():
    """The method as a diagram: Algorithm 1 (training) above Algorithm 2 (choosing lambda, pruning).

    Algorithm 1 draws log lambda from its prior for every minibatch, generates the posterior
    q(w | lambda) = N(mu, diag sigma^2) with the hypernetwork G (eq. 12 or 13), draws one weight
    sample and takes a step on the loss at that lambda (eqs. 4-6). Algorithm 2 takes the trained G,
    picks lambda, scores each weight by the relative density |mu|/sigma (eq. 17; |w| for a
    deterministic model, eq. 18), deletes the lowest-scoring fraction and predicts with the means.
    Returns the figure (boxes and arrows, no data).
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = plt.subplots(figsize=(11, 4.6))
    ax.set_xlim(0, 1)
    ax.set_ylim(0.03, 1.01)
    ax.axis("off")
    w, h, x0, dx = 0.18, 0.2, 0.005, 0.2
    rows = {
        "train": (0.55, "#dbe9f6", [
            "prior over λ:\nlog λ uniform on Λ,\nnew draws every batch",
            "hypernetwork G(λ)\nlinear (12) or\npiecewise-linear (13)",
            "posterior q(w | λ)\nmeans μ, scales σ",
            "one weight draw\nw = μ + σ ⊙ ε",
            "loss at that λ\nL₁ = nll + λ·KL / N\n(or L₂, L₃)",
        ]),
        "prune": (0.06, "#fde5cc", [
            "choose λ\nvalidation NLL or\naccuracy, or a budget",
            "trained G(λ)\nμ and σ of\nevery weight",
            "score each weight\n|μ|/σ (17) or |w| (18)",
            "delete the lowest\nfraction: μ = σ = 0\n(biases kept)",
            "predict with the\nmean weights:\na small model",
        ]),
    }  # fmt: skip
    for y, color, labels in rows.values():
        for i, text in enumerate(labels):
            x = x0 + i * dx
            ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.005,rounding_size=0.015",
                                        fc=color, ec="0.3", lw=1))  # fmt: skip
            ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8.5)
            if i:
                ax.add_patch(FancyArrowPatch((x - dx + w, y + h / 2), (x, y + h / 2), arrowstyle="-|>",
                                             mutation_scale=12, color="0.2"))  # fmt: skip
    y_train, y_prune = rows["train"][0], rows["prune"][0]
    red = dict(arrowstyle="-|>", mutation_scale=12, color="C3", lw=1.3)
    # Algorithm 1's update closes the loop from the loss back to G.
    start, end = (x0 + 4 * dx + w / 2, y_train + h), (x0 + dx + w / 2, y_train + h)
    ax.add_patch(FancyArrowPatch(start, end, connectionstyle="arc3,rad=0.18", **red))
    ax.text(0.58, y_train + h + 0.025, "backpropagate, update G; next batch", color="C3", fontsize=8.5,
            ha="center", va="bottom")  # fmt: skip
    # Algorithm 2 starts from the G that Algorithm 1 trained.
    ax.add_patch(FancyArrowPatch((x0 + dx + w / 2, y_train), (x0 + dx + w / 2, y_prune + h), **red))
    ax.text(x0 + dx + w / 2 + 0.01, (y_train + y_prune + h) / 2, "after training", color="C3", fontsize=8.5,
            va="center")  # fmt: skip
    ax.text(0.5, 0.95, "Algorithm 1: train one hypernetwork for every λ at once", fontsize=11, weight="bold",
            ha="center")  # fmt: skip
    ax.text(0.5, y_prune + h + 0.05, "Algorithm 2: choose λ, then prune", fontsize=11, weight="bold", ha="center")
    return fig
