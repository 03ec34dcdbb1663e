"""Reading the cost study's committed results (``results/choosing``) and the tables chapter 8 draws from them.

``load_choosing_results`` reads what ``run_cost_study`` wrote; ``gap_table`` pairs each directly
trained model with the hypernetwork at the same lambda, and ``selection_table`` judges each way of
choosing lambda on the test set. ``cost_findings``, ``gap_findings`` and ``classical_findings``
reduce these tables to the numbers and phrases that the chapter quotes (plain floats, ints and
strings, keyed by name).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..provenance import results_root
from .choose import CRITERIA, best_from_curve, match_lam
from .cost_study import CHOOSING_FILES

__all__ = [
    "GAP_METRICS",
    "ChoosingResults",
    "load_choosing_results",
    "gap_table",
    "selection_table",
    "accuracy_standard_error",
    "cost_findings",
    "gap_findings",
    "classical_findings",
]

#: The metrics of ``gap_table`` and ``plot_gap`` by default: columns of the cost study's ``curves.csv``.
GAP_METRICS = ("test_accuracy", "test_nll", "test_ece", "deletable")


@dataclass
class ChoosingResults:
    """The results of ``run_cost_study`` as ``load_choosing_results`` reads them.

    Attributes:
        cost: ``cost.csv``, one row per timed training (seconds of wall clock and CPU time).
        curves: ``curves.csv``, one row per (model, lambda): test accuracy, NLL (nats per
            example) and ECE, with mean weights and MC-averaged, the share deletable within
            ``tol``, validation accuracy and NLL, and the ELBO (nats).
        calibration: ``calibration.csv``, the hypernetwork's ``calibration_table``.
        provenance: ``provenance.json``: config, command, data, machine, commit, times.
        folder: the folder read.
    """

    cost: pd.DataFrame
    curves: pd.DataFrame
    calibration: pd.DataFrame
    provenance: dict
    folder: Path


def load_choosing_results(results_dir: str | os.PathLike | None = None, name: str = "choosing") -> ChoosingResults:
    """Read ``<results>/choosing`` (cost, curves, calibration, provenance).

    ``results_dir`` is the folder that holds ``choosing/``; by default the checkout's
    ``results/`` or, in an installed package, the copy shipped inside it (as
    ``varhyper_mini.experiments.study.load_results`` finds them; ``$VARHYPER_RESULTS`` first).

    Raises:
        FileNotFoundError: when a file of ``CHOOSING_FILES`` is missing; the message says how
            to make them.
    """
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


def gap_table(curves: pd.DataFrame, metrics: Sequence[str] = GAP_METRICS) -> pd.DataFrame:
    """Hypernetwork minus direct model at every lambda where a direct model was trained.

    One row per lambda (a lambda in several grids appears once); for each metric m the columns
    ``m_hyper``, ``m_direct`` and ``m_gap`` (hyper - direct, in the metric's units), and
    ``grids`` naming the grids. ``curves`` is the cost study's ``curves.csv`` (columns ``model``,
    ``grid``, ``lam`` and the metrics). Lambdas are matched in log lambda (``match_lam``).

    Raises:
        ValueError: when ``curves`` lacks hypernetwork or direct rows, or the hypernetwork was not
            evaluated at a direct model's lambda.
    """
    hyper = curves[curves.model == "hypernetwork"]
    direct = curves[curves.model == "direct"]
    if hyper.empty or direct.empty:
        raise ValueError("curves must hold rows of model 'hypernetwork' and 'direct'")
    rows = []
    for lam, grp in direct.groupby(direct.lam.round(12)):
        h = hyper[match_lam(hyper.lam, float(lam))]
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
    Accuracies are shares in [0, 1]; ties between lambdas go to the largest (``best_from_curve``).

    Raises:
        ValueError: when ``curves`` holds no hypernetwork rows, or lacks a criterion's column.
    """
    hyper = curves[curves.model == "hypernetwork"]
    direct = curves[curves.model == "direct"]
    if hyper.empty:
        raise ValueError("curves hold no hypernetwork rows")
    if direct_grid is None and not direct.empty:
        direct_grid = max(set(direct.grid), key=lambda g: (direct.grid == g).sum())
    oracle = best_from_curve(hyper, "accuracy", column="test_accuracy")
    picks = [(c, best_from_curve(hyper, c)) for c in CRITERIA] + [("test accuracy (oracle)", oracle)]
    best_test = float(hyper.loc[match_lam(hyper.lam, oracle), "test_accuracy"].iloc[0])
    rows = []
    for crit, lam in picks:
        h = hyper[match_lam(hyper.lam, lam)].iloc[0]
        d = direct[match_lam(direct.lam, lam)] if not direct.empty else direct
        rows.append({
            "approach": "hypernetwork", "criterion": crit, "lam": lam,
            "test_accuracy": float(h.test_accuracy), "test_nll": float(h.test_nll),
            "deletable": float(h.deletable), "regret": best_test - float(h.test_accuracy),
            "direct_test_accuracy": float(d.test_accuracy.iloc[0]) if len(d) else float("nan"),
        })  # fmt: skip
    if direct_grid is not None:
        dg = direct[direct.grid == direct_grid]
        lam = best_from_curve(dg, "accuracy")
        d = dg[match_lam(dg.lam, lam)].iloc[0]
        rows.append({
            "approach": f"direct models ({direct_grid})", "criterion": "accuracy", "lam": lam,
            "test_accuracy": float(d.test_accuracy), "test_nll": float(d.test_nll),
            "deletable": float(d.deletable), "regret": best_test - float(d.test_accuracy),
            "direct_test_accuracy": float(d.test_accuracy),
        })  # fmt: skip
    return pd.DataFrame(rows)


def accuracy_standard_error(accuracy: float, n_test: int) -> float:
    """The binomial standard error sqrt(p (1 - p) / n) of an accuracy ``p`` (a share) measured on ``n_test`` examples.

    Raises:
        ValueError: for an accuracy outside [0, 1] or ``n_test`` < 1.
    """
    if not 0 <= accuracy <= 1:
        raise ValueError(f"accuracy must be a share in [0, 1], got {accuracy!r}")
    if n_test < 1:
        raise ValueError(f"n_test must be a positive number of examples, got {n_test!r}")
    return math.sqrt(accuracy * (1 - accuracy) / n_test)


_COST_METHODS = ("hypernetwork", "direct-loop", "direct-batched")
_COST_COLUMNS = ("method", "k_lams", "seconds", "cpu_seconds", "ratio_to_hypernetwork", "cpu_ratio_to_hypernetwork",
                 "max_accuracy_diff_loop_vs_batched")  # fmt: skip


def _check_cost(cost: pd.DataFrame) -> None:
    """Refuse a cost table ``cost_findings`` cannot read, with a ValueError saying what is wrong."""
    if not isinstance(cost, pd.DataFrame) or cost.empty:
        raise ValueError("cost is empty; pass cost.csv as load_choosing_results reads it (run_cost_study writes it)")
    missing = [c for c in _COST_COLUMNS if c not in cost.columns]
    if missing:
        raise ValueError(f"cost lacks the column(s) {missing} that run_cost_study writes")
    other = sorted(set(cost.method) - set(_COST_METHODS))
    if other:
        raise ValueError(f"cost has unknown method(s) {other}; expected {list(_COST_METHODS)}")
    dup = cost[cost.duplicated(["method", "k_lams"], keep=False)]
    if not dup.empty:
        pairs = sorted({(m, int(k)) for m, k in zip(dup.method, dup.k_lams)})
        raise ValueError(f"cost has more than one row for (method, K) {pairs}: one row per method and K")
    n_hyper = int((cost.method == "hypernetwork").sum())
    loop_k = set(cost.k_lams[cost.method == "direct-loop"])
    many_k = set(cost.k_lams[cost.method == "direct-batched"])
    if n_hyper != 1 or not loop_k:
        raise ValueError("cost needs a 'hypernetwork' row and 'direct-loop' rows, as run_cost_study writes them")
    if loop_k != many_k:
        raise ValueError(
            f"cost has direct-loop rows at K = {sorted(loop_k)} but direct-batched rows at K = {sorted(many_k)}; "
            "each K needs both"
        )
    if not all(float(k).is_integer() and k > 0 for k in loop_k):
        raise ValueError(f"k_lams must be positive whole numbers of models, got {sorted(loop_k)}")
    for col in ("seconds", "cpu_seconds"):
        v = pd.to_numeric(cost[col], errors="coerce")
        if not bool((v > 0).all() and np.isfinite(v).all()):
            raise ValueError(f"cost.{col} must be positive and finite in every row, got {cost[col].tolist()}")
    direct = cost[cost.method != "hypernetwork"]
    cols = ["ratio_to_hypernetwork", "cpu_ratio_to_hypernetwork"]
    values = [direct[cols], cost.loc[cost.method == "direct-batched", ["max_accuracy_diff_loop_vs_batched"]]]
    if not all(np.isfinite(v.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)).all() for v in values):
        raise ValueError("cost has NaN or non-numeric ratios or accuracy differences in its direct rows")


def cost_findings(cost: pd.DataFrame) -> dict[str, float]:
    """What training one hypernetwork costs against K directly trained models, from ``cost.csv``.

    ``cost`` has one row for ``method`` "hypernetwork" and, per K (``k_lams``), one for
    "direct-loop" and one for "direct-batched", with ``seconds`` (wall clock), ``cpu_seconds``,
    their ratios to the hypernetwork's, and ``max_accuracy_diff_loop_vs_batched``. Returns
    ``hyper_cpu``, ``hyper_wall`` (seconds); per K: ``loop{K}_cpu`` (seconds), ``loop{K}_ratio``,
    ``loop{K}_wall_ratio``, ``many{K}_ratio``, ``many{K}_wall_ratio``; ``break_even``, the number of
    direct models whose CPU time (mean per model of the loop) equals the hypernetwork's; and
    ``loop_batched_diff``, the largest accuracy difference (a share) between the loop and the
    batched training of the same models, and ``batching``, a phrase saying at which K the batched
    training took less CPU time than the loop, and ``wall_over_cpu``, the training runs' total wall
    time over their CPU time (near 1 when the process never waited for a core).

    Raises:
        ValueError: when ``cost`` is empty or lacks a column; has a method other than these three,
            more than one row for a method and K, not exactly one hypernetwork row, no direct-loop
            rows, or not the same K for the loop and the batched training; or when a time is not
            positive and finite, or a ratio or accuracy difference is NaN.
    """
    _check_cost(cost)
    hyper = cost[cost.method == "hypernetwork"]
    loop = cost[cost.method == "direct-loop"].set_index("k_lams")
    many = cost[cost.method == "direct-batched"].set_index("k_lams")
    hyper_row = hyper.iloc[0]
    per_model_cpu = (loop.cpu_seconds / loop.index).mean()
    out = {"hyper_cpu": float(hyper_row.cpu_seconds), "hyper_wall": float(hyper_row.seconds)}
    for k in loop.index:
        out[f"loop{k}_cpu"] = float(loop.cpu_seconds[k])
        out[f"loop{k}_ratio"] = float(loop.cpu_ratio_to_hypernetwork[k])
        out[f"loop{k}_wall_ratio"] = float(loop.ratio_to_hypernetwork[k])
        out[f"many{k}_ratio"] = float(many.cpu_ratio_to_hypernetwork[k])
        out[f"many{k}_wall_ratio"] = float(many.ratio_to_hypernetwork[k])
    out["break_even"] = float(hyper_row.cpu_seconds / per_model_cpu)
    out["loop_batched_diff"] = float(many.max_accuracy_diff_loop_vs_batched.max())
    out["wall_over_cpu"] = float(cost.seconds.sum() / cost.cpu_seconds.sum())  # 1: never waited for a core
    cheaper = [int(k) for k in loop.index if many.cpu_seconds[k] < loop.cpu_seconds[k]]
    if len(cheaper) == len(loop.index):
        out["batching"] = "costs less CPU time than the loop at every K"
    elif not cheaper:
        out["batching"] = "costs no less CPU time than the loop here"
    else:
        out["batching"] = "costs less CPU time than the loop only at K = " + ", ".join(map(str, cheaper))
    return out


def gap_findings(gap: pd.DataFrame, curves: pd.DataFrame, split_lam: float = 1.0) -> dict[str, float | int]:
    """How far the hypernetwork is from the directly trained models: the numbers of ``gap_table``.

    ``gap`` is ``gap_table(curves)`` (hypernetwork minus direct, per lambda) and ``curves`` the
    cost study's ``curves.csv``. Returns, in points of accuracy (x 100): ``gap_mean``, ``gap_low``
    and ``gap_high`` (mean test accuracy gap at lambda <= ``split_lam`` and above), ``gap_min``,
    ``gap_max``, ``del_direct_more`` (how many more points of the weights the direct models can
    delete, on average), the ranges ``direct_del_min``/``_max`` and ``hyper_del_min``/``_max`` of
    the share deletable (in %); ``gap_min_lam``; ``nll_lower`` (how much lower the hypernetwork's
    test NLL is, nats per example) and ``ece_gap_mean``; the counts ``n_gap`` (lambdas),
    ``n_better`` (lambdas where the hypernetwork is more accurate) and ``nll_better``.

    Raises:
        KeyError: when a column of ``gap_table`` or ``curves`` is missing.
        ValueError: when ``gap`` is empty.
    """
    if gap.empty:
        raise ValueError("gap is empty: the cost study trained no direct model")
    low = gap[gap.lam <= split_lam + 1e-9]
    high = gap[gap.lam > split_lam + 1e-9]
    dd = curves[curves.model == "direct"].deletable
    hd = curves[curves.model == "hypernetwork"].deletable
    return {
        "gap_mean": 100 * float(gap.test_accuracy_gap.mean()),
        "gap_low": 100 * float(low.test_accuracy_gap.mean()),
        "gap_high": 100 * float(high.test_accuracy_gap.mean()),
        "gap_min": 100 * float(gap.test_accuracy_gap.min()),
        "gap_max": 100 * float(gap.test_accuracy_gap.max()),
        "gap_min_lam": float(gap.lam[gap.test_accuracy_gap.idxmin()]),
        "del_direct_more": -100 * float(gap.deletable_gap.mean()),
        "nll_lower": -float(gap.test_nll_gap.mean()),
        "ece_gap_mean": float(gap.test_ece_gap.mean()),
        "n_gap": len(gap),
        "n_better": int((gap.test_accuracy_gap > 0).sum()),
        "nll_better": int((gap.test_nll_gap < 0).sum()),
        "direct_del_min": 100 * float(dd.min()),
        "direct_del_max": 100 * float(dd.max()),
        "hyper_del_min": 100 * float(hd.min()),
        "hyper_del_max": 100 * float(hd.max()),
    }


def classical_findings(table: pd.DataFrame, gap: pd.DataFrame, test_sd: float, n_test: int) -> dict[str, float | str]:
    """Are the differences of one run larger than the noise? The classical recipe and the mean gap.

    ``table`` is ``selection_table`` (the hypernetwork's rows, with "nll" and "test accuracy
    (oracle)", and a "direct models" row), ``gap`` is ``gap_table``, ``test_sd`` the standard
    deviation over replicates of the test accuracy at the lambda validation NLL picks (in points;
    ``criteria_findings``' ``rep_test_sd``) and ``n_test`` the size of the test set. Returns
    ``classical_diff``, the classical recipe's test accuracy minus the hypernetwork's at its
    NLL-chosen lambda (points), ``classical_verdict`` ("within" or "larger than" ``test_sd``),
    and ``gap_verdict``: "consistent with" when the mean accuracy gap is at least minus one
    binomial standard error of the best test accuracy (``accuracy_standard_error``), else "below".

    Raises:
        ValueError: when ``table`` has no "direct models" row.
        KeyError: when it lacks the hypernetwork's "nll" or oracle row.
    """
    direct = table[table.approach.str.startswith("direct")]
    if direct.empty:
        raise ValueError("table has no 'direct models' row: give selection_table curves with direct models")
    classical = direct.iloc[0]
    hyp = table.set_index(["approach", "criterion"]).loc["hypernetwork"]
    p_best = float(hyp.loc["test accuracy (oracle)", "test_accuracy"])
    diff = 100 * float(classical.test_accuracy - hyp.loc["nll", "test_accuracy"])
    mean_gap = 100 * float(gap.test_accuracy_gap.mean())
    return {
        "classical_diff": diff,
        "classical_verdict": "within" if abs(diff) <= test_sd else "larger than",
        "gap_verdict": "consistent with" if mean_gap >= -100 * accuracy_standard_error(p_best, n_test) else "below",
    }
