"""Reading a study's results: the tables of the paper's layout, the pruning rules' rows, times and provenance.

``load_results`` reads a committed study (``results/<name>``); ``select_rule`` and ``summarise``
give Table 1/2's layout under one pruning rule; the rest turn the provenance into what chapters
report (seconds per epoch, a text summary) and size a study's compute.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from ...hypernets import lambda_key
from ...provenance import results_root
from .config import (
    CSV_COLUMNS,
    IMPLEMENTATIONS,
    RULE_COLUMNS,
    config_from_json,
    paper_criterion,
    upgrade_rows,
)

__all__ = [
    "load_results",
    "load_sigma",
    "select_rule",
    "summarise",
    "flops_per_training_image",
    "seconds_per_epoch",
    "describe_provenance",
    "wall_minutes",
    "elapsed_minutes",
]


def load_results(name: str, results_dir: str | os.PathLike | None = None) -> tuple[pd.DataFrame, dict]:
    """A committed study's ``pruning.csv`` and ``provenance.json``, e.g. ``load_results("mnist")``.

    Raises:
        FileNotFoundError: the study has no ``pruning.csv`` (the message says how to run it).
    """
    base = Path(results_dir) if results_dir else results_root()
    folder = base / name
    csv = folder / "pruning.csv"
    if not csv.exists():
        raise FileNotFoundError(
            f"no results at {csv}; run `python -m varhyper_mini study {name} --preset paper --out {folder}`"
        )
    prov = json.loads((folder / "provenance.json").read_text())
    df = pd.read_csv(csv)
    if "scope" not in df.columns:  # written before the pruning rules: one rule, the paper's
        cfg = config_from_json(prov["config"])
        df = pd.DataFrame(upgrade_rows(df.to_dict("records"), cfg), columns=CSV_COLUMNS)
    return df, prov


def load_sigma(name: str, results_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """A committed study's ``sigma.csv``: where log sigma ended up, per weight tensor and lambda.

    Raises:
        FileNotFoundError: the study did not record it (older than the rules).
    """
    base = Path(results_dir) if results_dir else results_root()
    csv = base / name / "sigma.csv"
    if not csv.exists():
        raise FileNotFoundError(f"no sigma statistics at {csv}; rerun the study with this version to record them")
    return pd.read_csv(csv)


def select_rule(
    df: pd.DataFrame,
    scope: str = "layer",
    criterion: str = "paper",
    correction: str = "none",
    biases: str = "kept",
    evaluation: str = "mean",
) -> pd.DataFrame:
    """The rows of one pruning rule; ``criterion="paper"`` is |mu|/sigma for L1/L2 and |w| for L3.

    Raises:
        ValueError: no row matches (for example |mu|/sigma asked of base models only).
    """
    crit = df.loss.map(paper_criterion) if criterion == "paper" else criterion
    keep = (
        (df.scope == scope) & (df.criterion == crit) & (df.correction == correction)
        & (df.biases == biases) & (df.evaluation == evaluation)
    )  # fmt: skip
    out = df[keep]
    if out.empty:
        raise ValueError(
            f"no rows for scope={scope}, criterion={criterion}, correction={correction}, biases={biases}, "
            f"evaluation={evaluation}; this table has {df[RULE_COLUMNS].drop_duplicates().to_dict('records')}"
        )
    return out


def summarise(df: pd.DataFrame, lams: Sequence[float] | None = None, **rule) -> pd.DataFrame:
    """Table 1/2 layout: mean and spread over runs of the accuracy averaged over ``lams``.

    For each implementation and fraction: average the accuracy over lambda within a run,
    then report the mean and standard deviation of that over runs. Rows of one pruning rule
    are used: the paper's by default, or the one ``rule`` names (the arguments of ``select_rule``).
    """
    d = select_rule(df, **rule) if "scope" in df.columns else df
    if lams is not None:  # lambdas equal under the package's rule (hypernets.lambda_key)
        keys = {lambda_key(lam) for lam in lams}
        d = d[[lambda_key(v) in keys for v in d.lam]]
    per_run = d.groupby(["implementation", "loss", "hypernet", "fraction", "run"], as_index=False).accuracy.mean()
    out = per_run.groupby(["implementation", "loss", "hypernet", "fraction"], as_index=False).accuracy.agg(
        ["mean", "std", "count"]
    )
    return out.rename(columns={"mean": "accuracy", "std": "spread", "count": "runs"})


def flops_per_training_image(target: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Floating-point operations of one training pass (forward and backward) per input, counted.

    Uses ``torch.utils.flop_counter`` on a batch of two (the count is per image, so any batch
    size gives the same value). With a device's sustained FLOP/s it gives an images-per-second
    estimate where no measurement is possible.
    """
    from torch.utils.flop_counter import FlopCounterMode

    model = copy.deepcopy(target)
    x = torch.zeros(2, *input_shape)
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        out.float().sum().backward()
    return counter.get_total_flops() / 2


def seconds_per_epoch(provenance: dict) -> pd.DataFrame:
    """Training seconds per epoch and evaluation seconds per job, per implementation, from a study's provenance.

    One row per implementation: mean and spread over its jobs of ``train_seconds / epochs`` (a
    job's wall time, including batching and augmentation; for jobs trained together in a vmapped
    group, the group's time divided by its size) and of the evaluation of every pruning rule.

    Raises:
        ValueError: the provenance has no timed jobs.
    """
    per_job = provenance.get("seconds_per_job") or {}
    if not per_job:
        raise ValueError("this provenance records no job times; it was written before the study finished a job")
    epochs = provenance["config"]["epochs"]
    rows = [
        {"implementation": name.split("__")[0], "epoch": t["train"] / epochs, "eval": t["eval"]}
        for name, t in per_job.items()
    ]
    df = pd.DataFrame(rows)
    out = df.groupby("implementation", sort=False).agg(
        seconds_per_epoch=("epoch", "mean"),
        spread=("epoch", "std"),
        eval_seconds=("eval", "mean"),
        jobs=("epoch", "size"),
    )
    order = [i for i in IMPLEMENTATIONS if i in out.index]
    return out.loc[order].reset_index()


def describe_provenance(provenance: dict) -> str:
    """A study's provenance as a few lines of text: command, commit, versions, data, hardware, wall time and load.

    ``provenance`` is the dict ``load_results`` returns. The wall time is the sum over the
    study's runs (a resumed or sharded study has several; shards that ran side by side count
    each).
    """
    runs = provenance.get("runs") or []
    wall = sum(r.get("wall_seconds", 0.0) for r in runs)
    lines = [
        f"command: {provenance.get('command')}",
        f"commit {provenance.get('git_commit')}; package {provenance.get('package_version')}; "
        f"torch {provenance.get('torch_version')}; Python {provenance.get('python')}",
        f"data: {provenance.get('data_source') or provenance.get('data')}",
        f"{provenance.get('started')} to {provenance.get('ended')}: {len(runs)} run(s), {wall / 60:.1f} min of "
        f"wall time summed over them; jobs missing: {len(provenance.get('jobs_missing', []))}",
    ]
    for r in runs:
        lines.append(
            f"  run {r.get('shard') or 'whole'}: {r.get('jobs_ran')} jobs, {r.get('wall_seconds', 0.0) / 60:.1f} min, "
            f"load average {r.get('load_average_start')} -> {r.get('load_average_end')}, hardware {r.get('hardware')}"
        )
    return "\n".join(lines)


def wall_minutes(provenance: dict) -> float:
    """A study's wall time in minutes: the sum of its runs' ``wall_seconds`` / 60.

    ``provenance`` is the dict ``load_results`` returns. A resumed or sharded study has several
    runs; shards that ran side by side each count, so this is the compute spent, not the time
    from start to end (``elapsed_minutes``). A run without a time counts 0.

    Raises:
        KeyError: ``provenance`` has no ``runs``.
    """
    return sum(r.get("wall_seconds", 0.0) for r in provenance["runs"]) / 60


def elapsed_minutes(provenance: dict) -> float:
    """Minutes from a study's first job to its last: ``provenance["ended"] - provenance["started"]``.

    For shards that ran side by side this is shorter than ``wall_minutes``.

    Raises:
        KeyError: either time is missing.
        ValueError: one is not a timestamp pandas can parse.
    """
    elapsed = pd.Timestamp(provenance["ended"]) - pd.Timestamp(provenance["started"])
    return elapsed.total_seconds() / 60
