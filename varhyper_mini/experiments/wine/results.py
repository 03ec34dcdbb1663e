"""The Wine experiment's results tables: their checks, summaries, and how they are written and read.

A results folder (``results/wine`` is the committed one) holds ``sym_kl.csv`` (Figure 3),
``theorem2.csv`` (Theorem 2), ``pruning.csv`` (pruning curves) and ``provenance.json``.
``write_results`` writes them, ``load_results`` reads them back; ``validate_table`` checks a
``sym_kl.csv`` against its configuration; ``summarise``, ``theorem2_summary`` and
``pruning_distance`` reduce the tables to what the chapter and the figures show.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...provenance import atomic_write, check_output_folder, provenance_record, results_root, utc_now
from .config import CSV_COLUMNS, STAGES, WineConfig, lam_key, model_name
from .run import WineResults

__all__ = [
    "DEFAULT_COMMAND",
    "RESULT_FILES",
    "expected_keys",
    "validate_table",
    "summarise",
    "summary_table",
    "theorem2_summary",
    "pruning_distance",
    "results_dir",
    "write_results",
    "WineTables",
    "load_results",
    "config_from_provenance",
]

DEFAULT_COMMAND = "python -m varhyper_mini wine"
RESULT_FILES = ("sym_kl.csv", "theorem2.csv", "pruning.csv", "provenance.json")
DATA_NOTE = (
    "Wine (sklearn.datasets.load_wine), permutation with seed 42: 142 train / 36 test, "
    "standardised with the training mean and std"
)


def expected_keys(cfg: WineConfig) -> set[tuple[str, int, float, int, str]]:
    """Every (model, n_pieces, lam key, run, stage) that a complete ``sym_kl.csv`` holds.

    Direct models have one row per lambda and run at stage "trained" (sym_kl 0, the
    reference itself); the from-scratch baseline is model "scratch" at stage "scratch1";
    each hypernetwork has stages "trained" and "finetuned". n_pieces is 0 for the models
    without a hypernetwork, 1 for the linear one. The lambdas are ``lam_key``s.
    """
    keys = set()
    for run in range(cfg.runs):
        for lam in cfg.lams:
            lk = lam_key(lam)
            keys.add(("direct", 0, lk, run, "trained"))
            keys.add(("scratch", 0, lk, run, "scratch1"))
            for n in cfg.pieces:
                for stage in ("trained", "finetuned"):
                    keys.add((model_name(n), n, lk, run, stage))
    return keys


def validate_table(df: pd.DataFrame, cfg: WineConfig) -> None:
    """Check the schema and completeness of a ``sym_kl.csv`` table; returns None when it is valid.

    The columns must be ``CSV_COLUMNS``, the stages ``STAGES``, accuracies in [0, 1], D_KL finite
    and >= 0 (0 for the direct rows), and the rows exactly ``expected_keys(cfg)``, once each.

    Raises:
        ValueError: the first rule the table breaks, named (other columns, an unknown stage, a
            missing value, an accuracy outside [0, 1], a negative or non-finite D_KL, a direct row
            with D_KL != 0, duplicate rows, rows missing or unexpected for ``cfg``).
    """
    if list(df.columns) != CSV_COLUMNS:
        raise ValueError(f"columns must be exactly {CSV_COLUMNS}, got {list(df.columns)}")
    bad_stage = set(df.stage) - set(STAGES)
    if bad_stage:
        raise ValueError(f"unknown stage(s) {sorted(bad_stage)}; expected {STAGES}")
    if df[["accuracy", "sym_kl", "lam"]].isna().any().any():
        raise ValueError("the table has missing accuracy, sym_kl or lam values")
    if not ((df.accuracy >= 0) & (df.accuracy <= 1)).all():
        raise ValueError("accuracies must lie in [0, 1]")
    if not (np.isfinite(df.sym_kl) & (df.sym_kl >= 0)).all():
        raise ValueError("sym_kl must be finite and non-negative")
    if not (df.loc[df.model == "direct", "sym_kl"] == 0).all():
        raise ValueError("direct rows are the reference: their sym_kl must be 0")
    got = [
        (m, int(n), lam_key(lam), int(r), s) for m, n, lam, r, s in zip(df.model, df.n_pieces, df.lam, df.run, df.stage)
    ]
    if len(set(got)) != len(got):
        raise ValueError("the table has duplicate (model, n_pieces, lam, run, stage) rows")
    want = expected_keys(cfg)
    missing, extra = want - set(got), set(got) - want
    if missing or extra:
        raise ValueError(
            f"the table does not match the configuration: {len(missing)} rows missing "
            f"(e.g. {sorted(missing)[:3]}), {len(extra)} unexpected (e.g. {sorted(extra)[:3]})"
        )


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread (standard deviation over runs) of accuracy and log10 D_KL (Figure 3's points and bars).

    One row per model, n_pieces, stage and lambda. log10 D_KL is NaN for the direct models
    (their D_KL to themselves is 0).
    """
    d = table.assign(log10_sym_kl=np.log10(table.sym_kl.where(table.sym_kl > 0)))
    out = d.groupby(["model", "n_pieces", "stage", "lam"], as_index=False).agg(
        accuracy=("accuracy", "mean"),
        accuracy_spread=("accuracy", "std"),
        log10_sym_kl=("log10_sym_kl", "mean"),
        log10_sym_kl_spread=("log10_sym_kl", "std"),
        runs=("run", "nunique"),
    )
    return out


def summary_table(table: pd.DataFrame, n_pieces: Sequence[int] = (0, 1, 3, 5)) -> pd.DataFrame:
    """Figure 3's numbers as text, "mean ± spread" over runs: one row per model, N and stage, two columns per lambda.

    ``table`` is ``sym_kl.csv``; ``n_pieces`` selects the rows (0: the direct models and the
    one-epoch baseline). The columns are "accuracy at λ=..." (a share, 3 decimals) and "log10 D at
    λ=..." (log10 of D_KL in nats, 2 decimals; "—" for the direct models, the reference), built
    from ``summarise``; a missing spread (one run) shows as 0. Rows are ordered direct, linear,
    piecewise, scratch, then by N, and "trained" before "finetuned" (the order ``pivot_table``
    leaves them in).

    Raises:
        KeyError: when ``table`` lacks a column of ``CSV_COLUMNS``.
    """
    summ = summarise(table)
    summ = summ[summ.n_pieces.isin(list(n_pieces))]

    def mean_pm(mean: pd.Series, spread: pd.Series, digits: int) -> pd.Series:
        return mean.map(lambda v: f"{v:.{digits}f}") + " ± " + spread.fillna(0).map(lambda v: f"{v:.{digits}f}")

    summ = summ.assign(
        acc=mean_pm(summ.accuracy, summ.accuracy_spread, 3),
        logd=mean_pm(summ.log10_sym_kl, summ.log10_sym_kl_spread, 2).where(summ.model != "direct", "—"),
    )
    order = {"direct": 0, "linear": 1, "piecewise": 2, "scratch": 3}
    summ = summ.sort_values(["model", "n_pieces", "stage"], key=lambda c: c.map(order) if c.name == "model" else c)
    wide = summ.pivot_table(
        index=["model", "n_pieces", "stage"], columns="lam", values=["acc", "logd"], aggfunc="first", sort=False
    )
    wide.columns = [f"{'accuracy' if v == 'acc' else 'log10 D'} at λ={lam:g}" for v, lam in wide.columns]
    return wide


def theorem2_summary(theorem2: pd.DataFrame) -> pd.DataFrame:
    """Per N: the loss gap (absolute and relative), the pruning-score distance and log10 D_KL
    averaged over lambda (the expectation over log-uniform lambda of Theorem 2), then their mean
    and spread over runs. One row per N with the column ``runs`` counting them."""
    cols = ["gap", "rel_gap", "g_distance", "log10_sym_kl"]
    per_run = (
        theorem2.assign(log10_sym_kl=np.log10(theorem2.sym_kl))
        .groupby(["n_pieces", "run"], as_index=False)[cols]
        .mean()
    )
    out = per_run.groupby("n_pieces").agg(
        gap=("gap", "mean"),
        gap_spread=("gap", "std"),
        rel_gap=("rel_gap", "mean"),
        rel_gap_spread=("rel_gap", "std"),
        g_distance=("g_distance", "mean"),
        g_distance_spread=("g_distance", "std"),
        log10_sym_kl=("log10_sym_kl", "mean"),
        runs=("run", "nunique"),
    )
    return out.reset_index()


def pruning_distance(pruning: pd.DataFrame) -> pd.DataFrame:
    """Per N: the mean absolute accuracy difference between the hypernetwork's pruning curves
    and the direct models' (same run, lambda and fraction); columns n_pieces, curve_distance."""
    d = pruning[pruning.model == "direct"].set_index(["run", "lam", "fraction"]).accuracy
    h = pruning[pruning.model != "direct"].copy()
    ref = d.reindex(pd.MultiIndex.from_frame(h[["run", "lam", "fraction"]])).to_numpy()
    h["diff"] = (h.accuracy.to_numpy() - ref).__abs__()
    return h.groupby("n_pieces", as_index=False)["diff"].mean().rename(columns={"diff": "curve_distance"})


def results_dir() -> Path:
    """Where the committed Wine results live: ``results/wine`` of the checkout (see ``provenance.results_root``)."""
    return results_root() / "wine"


def write_results(
    results: WineResults,
    folder: str | os.PathLike,
    note: str = "",
    command: str = DEFAULT_COMMAND,
    git_commit: str | None = None,
) -> dict[str, Path]:
    """Write ``sym_kl.csv``, ``theorem2.csv``, ``pruning.csv`` and ``provenance.json``, each atomically.

    The table is checked with ``validate_table`` first (``ValueError`` for an incomplete one),
    so an incomplete table is never written. The provenance is written last: a folder with a
    provenance file is complete. It holds ``provenance.provenance_record`` (package and torch
    versions, Python, commit, command, started/ended, hardware, load averages), then
    ``written`` (when this call wrote it), ``seconds``, ``config``, ``data``, ``rows`` and ``note``.
    ``git_commit`` is the commit the run started from (default: the current one).
    Returns the paths written, keyed "csv", "theorem2", "pruning" and "provenance". (The command
    line checks the folder with ``provenance.check_output_folder`` before it trains.)

    Raises:
        ValueError: the table is incomplete (``validate_table``).
        PermissionError: ``folder`` (or a folder above it) is a file, or it cannot be made or written to.
    """
    validate_table(results.table, results.config)
    folder = check_output_folder(folder, create=True)
    table = results.table.sort_values(["model", "n_pieces", "stage", "lam", "run"])
    paths = {"csv": folder / "sym_kl.csv", "theorem2": folder / "theorem2.csv", "pruning": folder / "pruning.csv"}
    atomic_write(paths["csv"], table.to_csv(index=False))
    atomic_write(paths["theorem2"], results.theorem2.to_csv(index=False))
    atomic_write(paths["pruning"], results.pruning.to_csv(index=False))
    device = str(next(iter(results.direct.values())).mean.device)
    common = provenance_record(
        command, results.started, results.ended, commit=git_commit, device=device,
        load_average_start=results.load_average_start,
    )  # fmt: skip
    provenance = {
        **common,
        "written": utc_now(),
        "seconds": {k: round(v, 2) for k, v in results.seconds.items()},
        "config": dataclasses.asdict(results.config),
        "data": DATA_NOTE,
        "rows": len(table),
        "note": note,
    }
    paths["provenance"] = folder / "provenance.json"
    atomic_write(paths["provenance"], json.dumps(provenance, indent=2))
    return paths


@dataclass
class WineTables:
    """The Wine experiment's written results, as ``load_results`` reads them back.

    The same tables as ``WineResults`` (``table``, ``theorem2``, ``pruning``, ``seconds``),
    without the trained models, plus the run's ``provenance`` (the dict of ``provenance.json``).
    """

    config: WineConfig
    table: pd.DataFrame
    theorem2: pd.DataFrame
    pruning: pd.DataFrame
    seconds: dict[str, float]
    provenance: dict


def load_results(folder: str | os.PathLike | None = None) -> WineTables:
    """Read the results that ``write_results`` wrote (default: the committed ``results/wine``).

    Raises:
        FileNotFoundError: a result file is missing (the message names them and the command that
            makes them).
        ValueError: ``sym_kl.csv`` does not match the recorded configuration.
    """
    folder = results_dir() if folder is None else Path(folder)
    missing = [name for name in RESULT_FILES if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"no complete Wine results in {folder} (missing {', '.join(missing)}); make them with "
            f"`{DEFAULT_COMMAND} --out {folder}` (about 10 minutes on 2 CPU cores)"
        )
    provenance = json.loads((folder / "provenance.json").read_text())
    cfg = config_from_provenance(folder / "provenance.json")
    table = pd.read_csv(folder / "sym_kl.csv")
    validate_table(table, cfg)
    return WineTables(
        config=cfg,
        table=table,
        theorem2=pd.read_csv(folder / "theorem2.csv"),
        pruning=pd.read_csv(folder / "pruning.csv"),
        seconds=provenance.get("seconds", {}),
        provenance=provenance,
    )


def config_from_provenance(path: str | os.PathLike) -> WineConfig:
    """The ``WineConfig`` recorded in a ``provenance.json`` (lists read back as tuples).

    Raises ``KeyError`` when the file records no config, ``TypeError`` for unknown settings.
    """
    raw = json.loads(Path(path).read_text())["config"]
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return WineConfig(**values)
