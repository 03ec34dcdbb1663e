"""Reading the cost study's committed results (``results/choosing``) and the tables chapter 8 draws from them.

``load_choosing_results`` reads what ``run_cost_study`` wrote; ``gap_table`` pairs each directly
trained model with the hypernetwork at the same lambda, and ``selection_table`` judges each way of
choosing lambda on the test set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..provenance import results_root
from .choose import CRITERIA, best_from_curve, match_lam
from .cost_study import CHOOSING_FILES

__all__ = ["GAP_METRICS", "ChoosingResults", "load_choosing_results", "gap_table", "selection_table"]

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
