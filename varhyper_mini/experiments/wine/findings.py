"""What the Wine chapter says about its results: the numbers and phrases that its prose quotes.

Each function reduces the results tables (``load_results`` or ``run_wine_experiment``) to a dict
``{name: value}`` whose values are plain ``float``, ``int`` or ``str``: the chapter glues each
under its name, so that the prose quotes the computation rather than typed numbers. The phrases
(``str``) are Markdown, and a phrase is chosen by a condition computed from the same tables.

- ``figure3_findings``: the trend of Figure 3's points along lambda and the accuracy spreads;
- ``figure3_numbers``: the means behind Figure 3 (paper section 4.1): D_KL, accuracy differences,
  what fine-tuning does, and the one-epoch baseline;
- ``theorem2_findings``: the loss gap, the pruning-score distance and their rank correlation
  (the numerical test of Theorem 2);
- ``pruning_findings``: where the hypernetworks' pruning curves are nearest and farthest;
- ``mode_note``: one sentence saying which settings made the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .config import WineConfig, model_name
from .results import summarise

__all__ = [
    "lam_markdown",
    "figure3_findings",
    "figure3_numbers",
    "theorem2_findings",
    "pruning_findings",
    "mode_note",
]


def lam_markdown(lam: float) -> str:
    """``lam`` as Markdown math rounded to a power of ten: 1e4 -> ``$\\lambda = 10^{4}$``.

    Raises:
        ValueError: for a lambda that is not positive (its exponent is undefined).
    """
    if not lam > 0:
        raise ValueError(f"lambda must be positive, got {lam!r}")
    return f"$\\lambda = 10^{{{np.log10(lam):.0f}}}$"


def figure3_findings(table: pd.DataFrame, pieces: Sequence[int] = (1, 3, 5)) -> dict[str, float | str]:
    """How Figure 3's points move along lambda, and the accuracy spreads at its ends.

    ``table`` is ``sym_kl.csv`` (columns ``CSV_COLUMNS``); only the trained hypernetworks with
    N in ``pieces`` count. Returns ``fig3_d_trend`` (a phrase: whether mean log10 D_KL falls at
    every step of lambda for every N, only overall, or not), and ``fig3_acc_spread_hi`` /
    ``fig3_acc_spread_lo``: the largest standard deviation of accuracy over runs (a share) at
    the largest and smallest lambda. Source: the paper's Figure 3 (section 4.1).

    Raises:
        KeyError: when ``table`` lacks a column of ``CSV_COLUMNS``.
    """
    fig3 = summarise(table)
    fig3 = fig3[(fig3.stage == "trained") & fig3.n_pieces.isin(list(pieces))].sort_values("lam")
    steps = fig3.groupby("n_pieces").log10_sym_kl.apply(lambda v: np.diff(v.to_numpy()))
    if all((s < 0).all() for s in steps):
        trend = "to the left at every step"
    elif all(s.sum() < 0 for s in steps):
        trend = "to the left overall, though not at every step"
    else:
        trend = "not steadily to the left"
    hi = fig3[fig3.lam == fig3.lam.max()]
    return {
        "fig3_d_trend": trend,
        "fig3_acc_spread_hi": float(hi.accuracy_spread.max()),
        "fig3_acc_spread_lo": float(fig3[fig3.lam == fig3.lam.min()].accuracy_spread.max()),
    }


def _phrase(condition: bool, yes: str, no: str) -> str:
    """One of two phrases, chosen by a condition computed from the results."""
    return yes if condition else no


def figure3_numbers(table: pd.DataFrame, lams: Sequence[float], pieces: Sequence[int] = (1, 3, 5)) -> dict:
    """The numbers and phrases behind Figure 3: closeness to the direct posteriors, fine-tuning, baseline.

    ``table`` is ``sym_kl.csv`` (every lambda of ``lams`` and every N of ``pieces``, with 1 and 5
    among them); ``lams`` are the config's lambdas in increasing order. All means are over runs
    first (per model, N, stage and lambda), then over lambda. Returns:

    - ``lam_lo``, ``lam_hi`` (Markdown), ``n_lams``; ``direct_acc_lo``/``_hi``: the direct
      models' mean test accuracy (share) at the smallest and largest lambda;
    - per N in ``pieces``: ``logd_{N}`` and ``logd_ft_{N}``, the mean log10 D_KL (D_KL in nats)
      as trained and after fine-tuning, and ``accgap_{N}``/``accgap_ft_{N}``, the mean absolute
      accuracy difference to the direct models;
    - ``closer5``, ``closer3``: at how many lambdas N = 5 (N = 3) is closer than N = 1;
    - ``ft_down_all``, ``ft_down_{N}``, ``ft_down_5_lo``/``_hi``: the share (in %) of (N, lambda,
      run) cases where fine-tuning lowered D_KL;
    - ``scratch_acc_min``/``_max``, ``scratch_logd``, ``ft5_acc_min``/``_max``: the one-epoch
      baseline against the fine-tuned N = 5 models;
    - the phrases ``pw_vs_lin``, ``pw_vs_paper``, ``ft_verdict``, ``ft_paper``,
      ``ft_acc_verdict``, ``scratch_vs_ft`` (Markdown).

    Source: the paper's section 4.1 and Figure 3 (the comparison of eq. (12) with eq. (13)).

    Raises:
        KeyError: when ``table`` lacks a model, N or stage that the numbers need.
    """
    lams = list(lams)
    m = table.assign(logd=np.log10(table.sym_kl.where(table.sym_kl > 0)))
    per = m.groupby(["model", "n_pieces", "stage", "lam"]).agg(acc=("accuracy", "mean"), logd=("logd", "mean"))

    def logd(n: int, stage: str) -> pd.Series:
        return per.loc[(model_name(n), n, stage)].logd

    def acc(n: int, stage: str) -> pd.Series:
        return per.loc[(model_name(n), n, stage)].acc

    direct_acc = per.loc[("direct", 0, "trained")].acc
    scratch = per.loc[("scratch", 0, "scratch1")]
    out: dict = {
        "lam_lo": lam_markdown(lams[0]),
        "lam_hi": lam_markdown(lams[-1]),
        "direct_acc_lo": float(direct_acc.iloc[0]),
        "direct_acc_hi": float(direct_acc.iloc[-1]),
    }
    for n in pieces:
        out[f"logd_{n}"] = float(logd(n, "trained").mean())
        out[f"logd_ft_{n}"] = float(logd(n, "finetuned").mean())
        out[f"accgap_{n}"] = float((acc(n, "trained") - direct_acc).abs().mean())
        out[f"accgap_ft_{n}"] = float((acc(n, "finetuned") - direct_acc).abs().mean())
    out["closer5"] = int((logd(5, "trained") < logd(1, "trained")).sum())
    out["closer3"] = int((logd(3, "trained") < logd(1, "trained")).sum())
    out["n_lams"] = len(lams)
    pw_closer = logd(5, "trained").mean() < logd(1, "trained").mean()
    out["pw_vs_lin"] = _phrase(pw_closer, "closer to", "farther from")
    out["pw_vs_paper"] = _phrase(pw_closer, "This agrees with the paper", "This differs from the paper")

    # Does one epoch of fine-tuning reduce D_KL? Per (N, lambda, run).
    pair = table[table.model.isin(["linear", "piecewise"])].pivot_table(
        index=["n_pieces", "lam", "run"], columns="stage", values="sym_kl"
    )
    pair["down"] = pair.finetuned < pair.trained
    down_by_n = pair.groupby("n_pieces").down.mean()
    down_by_lam = pair.xs(5, level="n_pieces").groupby("lam").down.mean()
    out["ft_down_all"] = 100 * float(pair.down.mean())
    for n in pieces:
        out[f"ft_down_{n}"] = 100 * float(down_by_n.loc[n])
    out["ft_down_5_lo"] = 100 * float(down_by_lam.iloc[0])
    out["ft_down_5_hi"] = 100 * float(down_by_lam.iloc[-1])
    out["ft_verdict"] = _phrase(pair.down.mean() > 0.5, "mostly lowers", "mostly does not lower")
    out["ft_paper"] = _phrase(
        down_by_n.loc[5] > 0.5,
        "as the paper reports for its piecewise-linear hypernetwork",
        "unlike the paper, where fine-tuning brought the piecewise-linear hypernetwork closer",
    )
    acc_better5 = float((acc(5, "finetuned") - direct_acc).abs().mean()) < float(
        (acc(5, "trained") - direct_acc).abs().mean()
    )
    out["ft_acc_verdict"] = _phrase(acc_better5, "closer to", "not closer to")

    # The one-epoch-from-scratch baseline.
    out["scratch_acc_min"] = float(scratch.acc.min())
    out["scratch_acc_max"] = float(scratch.acc.max())
    out["scratch_logd"] = float(scratch.logd.mean())
    out["ft5_acc_min"] = float(acc(5, "finetuned").min())
    out["ft5_acc_max"] = float(acc(5, "finetuned").max())
    out["scratch_vs_ft"] = _phrase(scratch.logd.mean() > logd(5, "finetuned").mean(), "further from", "closer to")
    return out


def mode_note(cfg: WineConfig, quick: bool) -> str:
    """One Markdown sentence saying whether the numbers come from quick mode or the full settings."""
    if quick:
        return (
            "These numbers come from **quick mode** (few runs and epochs) and say little about the method; "
            "the full build uses the paper's settings."
        )
    return f"These numbers come from the full settings: {cfg.runs} runs of {cfg.epochs} epochs."


def _extremes(summary: pd.DataFrame, col: str, digits: int) -> str:
    """'from v (N = a) to w (N = b)': the smallest and largest value of a column over N."""
    lo, hi = summary.loc[summary[col].idxmin()], summary.loc[summary[col].idxmax()]
    return f"from {lo[col]:.{digits}f} ($N = {int(lo.n_pieces)}$) to {hi[col]:.{digits}f} ($N = {int(hi.n_pieces)}$)"


def _spearman(a: pd.Series, b: pd.Series) -> float:
    """Spearman's rank correlation; NaN, without a warning, when either column is constant."""
    if a.nunique() < 2 or b.nunique() < 2:
        return float("nan")
    return float(a.corr(b, method="spearman"))


def _theorem2_checks(theorem2: pd.DataFrame, summary: pd.DataFrame) -> None:
    """Refuse tables ``theorem2_findings`` cannot read, with a ValueError saying what is wrong."""
    for name, table, cols in (
        ("theorem2", theorem2, ("n_pieces", "run", "rel_gap", "g_distance")),
        ("summary", summary, ("n_pieces", "gap", "rel_gap", "g_distance", "curve_distance")),
    ):
        missing = [c for c in cols if c not in table.columns]
        if missing:
            hint = " (merge pruning_distance(pruning) on n_pieces)" if "curve_distance" in missing else ""
            raise ValueError(f"{name} lacks the column(s) {missing}{hint}")
        if table.empty:
            raise ValueError(f"{name} is empty: it needs rows for at least two N")
        values = table[list(cols)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        if not np.isfinite(values).all():
            raise ValueError(f"{name} holds NaN, infinite or non-numeric values in {list(cols)}")
    n = summary.n_pieces
    if n.duplicated().any():
        raise ValueError(f"summary has more than one row for N = {sorted(set(n[n.duplicated()]))}: one row per N")
    if len(n) < 2:
        raise ValueError(f"summary has one N ({int(n.iloc[0])}); the trend over N needs at least two")
    if not (n == 1).any():
        raise ValueError("summary has no row for N = 1, the linear hypernetwork the gaps are compared with")


def theorem2_findings(theorem2: pd.DataFrame, summary: pd.DataFrame) -> dict[str, float | int | str]:
    """The numerical test of Theorem 2: loss gaps over N, and whether a smaller gap goes with closer scores.

    ``theorem2`` is ``theorem2.csv`` (one row per N, run and lambda: ``gap``, ``rel_gap``,
    ``g_distance``); ``summary`` is ``theorem2_summary(theorem2)`` merged with
    ``pruning_distance(pruning)`` on ``n_pieces`` (one row per N, with ``curve_distance``).
    Returns the Markdown phrases ``th_gap_text`` (where the relative gap is smallest, its range
    over N unless that range runs from the smallest value to the linear form's, and whether it is
    monotone in N), ``th_abs_gap_text``, ``th_g_text``, ``th_curve_text`` (each
    "from v (N = a) to w (N = b)"), and ``th_verdict``; the Spearman rank correlations ``th_rho``
    (relative gap against score distance over the ``th_n_points`` (N, run) means) and
    ``th_rho_curve`` (relative gap against curve distance over N). Source: the paper's Theorem 2.

    A rank correlation is undefined (NaN) when one of its two columns does not vary; for
    ``th_rho`` the verdict then says so ("cannot be judged here: ..."); ``th_rho_curve`` is NaN
    when the relative gaps or the curve distances are the same at every N.

    Raises:
        ValueError: when a needed column is missing (``theorem2``: n_pieces, run, rel_gap,
            g_distance; ``summary``: n_pieces, gap, rel_gap, g_distance, curve_distance), a
            table is empty or holds NaN or infinite values there, ``summary`` has fewer than two
            N, more than one row for an N, or no row for N = 1.
    """
    _theorem2_checks(theorem2, summary)
    per_run = theorem2.groupby(["n_pieces", "run"], as_index=False)[["rel_gap", "g_distance"]].mean()
    rho = _spearman(per_run.rel_gap, per_run.g_distance)
    rho_curve = _spearman(summary.rel_gap, summary.curve_distance)
    gaps = summary.set_index("n_pieces").rel_gap
    best_n = int(gaps.idxmin())
    if best_n == 1:
        gap_text = (
            f"The relative loss gap is smallest for the linear hypernetwork, {gaps.loc[1]:.4f} at $N = 1$: "
            f"after the same training, the larger forms end further from the direct models. Over $N$ the gap "
            f"ranges {_extremes(summary, 'rel_gap', 4)}."
        )
    else:
        gap_text = (
            f"The relative loss gap goes from {gaps.loc[1]:.4f} for the linear hypernetwork ($N = 1$) to its "
            f"smallest value, {gaps.loc[best_n]:.4f}, at $N = {best_n}$"
        )
        if int(gaps.idxmax()) == 1:  # the range's ends are the two values just named
            gap_text += "."
        else:
            gap_text += f"; over $N$ it ranges {_extremes(summary, 'rel_gap', 4)}."
    steps = np.diff(gaps.to_numpy())
    if np.all(steps < 0):
        gap_text += " It falls at every step of $N$."
    elif np.all(steps > 0):
        gap_text += " It grows at every step of $N$."
    else:
        gap_text += " It is not monotone in $N$."
    if np.isnan(rho):
        verdict = (
            "So the ordering that Theorem 2 predicts cannot be judged here: the rank correlation is undefined, "
            "because the loss gaps or the score distances are the same for every (N, run)."
        )
    elif rho > 0.5:
        verdict = (
            "So here the hypernetworks that come closer to the direct models in loss also come closer in the "
            "quantity that pruning uses: the ordering that Theorem 2 predicts."
        )
    elif rho > 0:
        verdict = (
            "So the ordering that Theorem 2 predicts, a smaller gap going with closer pruning scores, "
            "shows only weakly here."
        )
    else:
        verdict = (
            "So the ordering that Theorem 2 predicts, a smaller gap going with closer pruning scores, "
            "does not show at this training budget."
        )
    return {
        "th_gap_text": gap_text,
        "th_abs_gap_text": _extremes(summary, "gap", 3),
        "th_g_text": _extremes(summary, "g_distance", 3),
        "th_curve_text": _extremes(summary, "curve_distance", 3),
        "th_rho": rho,
        "th_rho_curve": rho_curve,
        "th_n_points": len(per_run),
        "th_verdict": verdict,
    }


def pruning_findings(pruning: pd.DataFrame) -> dict[str, float | str]:
    """Where the hypernetworks' run-averaged pruning curves are nearest to and farthest from the direct models'.

    ``pruning`` is ``pruning.csv`` (columns ``model``, ``n_pieces``, ``run``, ``lam``, ``fraction``,
    ``accuracy``). The curves are averaged over runs, then the absolute accuracy difference to
    the direct models' curve (a share) is averaged over the forms and fractions at each lambda.
    Returns ``prune_near_lam``/``prune_far_lam`` (Markdown) and ``prune_near_dist``/
    ``prune_far_dist``. Source: Algorithm 2's pruning curves (the paper's section 4.1).

    Raises:
        ValueError: when ``pruning`` has no direct or no hypernetwork rows.
    """
    mean_curves = pruning.groupby(["model", "n_pieces", "lam", "fraction"]).accuracy.mean().reset_index()
    ref = mean_curves[mean_curves.model == "direct"][["lam", "fraction", "accuracy"]]
    hyp = mean_curves[mean_curves.model != "direct"].merge(ref, on=["lam", "fraction"], suffixes=("", "_direct"))
    if ref.empty or hyp.empty:
        raise ValueError("pruning must hold rows of the direct models and of at least one hypernetwork")
    by_lam = (hyp.accuracy - hyp.accuracy_direct).abs().groupby(hyp.lam).mean()
    return {
        "prune_far_lam": lam_markdown(float(by_lam.idxmax())),
        "prune_far_dist": float(by_lam.max()),
        "prune_near_lam": lam_markdown(float(by_lam.idxmin())),
        "prune_near_dist": float(by_lam.min()),
    }
