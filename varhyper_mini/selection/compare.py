"""Judging the ways of choosing lambda over independently trained hypernetworks, with standard errors.

One trained hypernetwork gives one choice of lambda per criterion, and one test accuracy at it:
too little to rank the criteria. ``replicate_curves`` trains the cost study's hypernetwork once per
seed (``train_cost_hypernet``); ``compare_criteria`` lets each criterion choose on each replicate's
validation split and judges the choices on the test set, with the mean regret, its standard error
and a Student-t confidence interval over seeds, and paired differences between criteria.
``criteria_findings`` and ``difference_verdict`` say what a comparison shows, in numbers and words.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .._checks import as_int, as_real
from ..evaluation import predict
from ..hypernets import check_lam
from .calibration import prediction_metrics
from .choose import best_from_curve, lambda_grid, match_lam
from .cost_study import CostConfig, cost_data, train_cost_hypernet

__all__ = ["replicate_curves", "CriterionComparison", "compare_criteria", "difference_verdict", "criteria_findings"]

# What each judge column prefers: larger test accuracy, smaller test NLL.
_JUDGES = {"test_accuracy": True, "test_nll": False}


def replicate_curves(
    config: CostConfig,
    seeds: Sequence[int],
    lams: Sequence[float] | None = None,
    n_lams: int = 21,
    data_root: str | os.PathLike | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Independent replicates of the cost study's hypernetwork, each evaluated at every lambda.

    Replicate ``s`` sets ``CostConfig.seed = s``: it redraws the training subset, the validation
    split carved from it and the initial weights, and trains the hypernetwork exactly as
    ``train_cost_hypernet`` does (so the seed of ``config`` repeats the committed run). Each
    replicate is then evaluated with the mean weights on its validation split and on the test
    data at ``lams`` (default ``n_lams`` values log-spaced over ``config.lam_range``).

    Returns one row per (seed, lambda): ``seed``, ``lam``, ``val_accuracy``, ``val_nll``,
    ``test_accuracy``, ``test_nll`` (accuracies as shares, NLL in nats per example); what
    ``compare_criteria`` reads. ``config.threads`` sets torch's threads (restored after).

    Raises:
        ValueError: for an invalid config, seeds that are not distinct non-negative integers
            (or none), or an empty or invalid ``lams``; ``vh.data.DataNotFoundError`` when MNIST
            is not found.
    """
    config.validate()
    seeds = [as_int(s, "a seed", minimum=0) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct non-negative integers, at least one, got {seeds!r}")
    lams = lambda_grid(config.lam_range, n_lams) if lams is None else [float(check_lam(v)) for v in lams]
    if not lams:
        raise ValueError("lams is empty; give at least one lambda")
    old_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    rows = []
    try:
        for s in seeds:
            cfg = dataclasses.replace(config, seed=s)
            fit, val, test = cost_data(cfg, data_root)
            hyper, target = train_cost_hypernet(cfg, fit, progress)
            with torch.no_grad():
                for lam in lams:
                    params = hyper(lam)
                    v = prediction_metrics(predict(target, params, val), val.y)
                    t = prediction_metrics(predict(target, params, test), test.y)
                    rows.append({"seed": s, "lam": float(lam), "val_accuracy": v["accuracy"], "val_nll": v["nll"],
                                 "test_accuracy": t["accuracy"], "test_nll": t["nll"]})  # fmt: skip
    finally:
        torch.set_num_threads(old_threads)
    return pd.DataFrame(rows)


@dataclass
class CriterionComparison:
    """What ``compare_criteria`` found; every difference comes with its standard error.

    Attributes:
        picks: one row per (seed, criterion): the chosen ``lam``, its test accuracy and NLL, and
            ``regret`` (how much worse than the seed's test-set optimum, in the judge's units).
        summary: one row per criterion: ``seeds``, mean ``regret`` with its standard deviation
            over seeds, standard error ``se`` and confidence interval ``ci_low``/``ci_high``; the
            mean test accuracy and NLL of the picks; the median chosen lambda.
        differences: one row per pair of criteria (a, b): mean of regret(a) - regret(b) over the
            seeds (paired: both choose on the same replicate), its ``se``, interval, and
            ``within_noise``: True when the interval contains 0, or with fewer than two seeds.
        judge: the test-set column the choices are judged by.
        level: the confidence level of the intervals.
    """

    picks: pd.DataFrame
    summary: pd.DataFrame
    differences: pd.DataFrame
    judge: str
    level: float


def _mean_se_ci(values: np.ndarray, level: float) -> dict[str, float]:
    """Mean, standard deviation, standard error and Student-t interval of ``values`` (NaN but the mean for n < 2)."""
    n = len(values)
    mean = float(np.mean(values))
    if n < 2:
        return {"mean": mean, "sd": float("nan"), "se": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    from scipy.stats import t as student_t  # scipy comes with scikit-learn

    sd = float(np.std(values, ddof=1))
    se = sd / math.sqrt(n)
    half = float(student_t.ppf(0.5 + level / 2, n - 1)) * se
    return {"mean": mean, "sd": sd, "se": se, "ci_low": mean - half, "ci_high": mean + half}


def compare_criteria(
    curves: pd.DataFrame,
    criteria: Sequence[str] = ("accuracy", "nll"),
    judge: str = "test_accuracy",
    level: float = 0.95,
) -> CriterionComparison:
    """Judge ways of choosing lambda over independent replicates, with standard errors.

    ``curves`` has one row per (seed, lambda), as ``replicate_curves`` returns. For each seed,
    each criterion picks a lambda from the validation columns (``best_from_curve``: largest
    ``val_accuracy``, smallest ``val_nll``; ties to the largest lambda), and the pick is judged
    by ``judge`` on the test data against the seed's own test-set optimum (the regret, >= 0).
    The regrets are then averaged over seeds, with a Student-t interval at ``level``; criteria
    are compared pairwise on the same seeds. A difference whose interval contains zero is
    reported as ``within_noise``: it does not rank the criteria. The interval is
    mean +- t_{(1 + level) / 2, n - 1} * sd / sqrt(n) over the n seeds (Student's t; NaN for one
    seed). Regrets are in the judge's units: accuracy as a share, NLL in nats per example.

    Raises:
        ValueError: for an unknown judge, ``level`` outside (0, 1), criteria other than
            "accuracy" and "nll" (or none), or ``curves`` without the needed columns.
    """
    if judge not in _JUDGES:
        raise ValueError(f"unknown judge {judge!r}; choose one of {tuple(_JUDGES)}")
    level = as_real(level, "level")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95, got {level!r}")
    criteria = list(criteria)
    bad = [c for c in criteria if c not in ("accuracy", "nll")]
    if not criteria or bad:
        raise ValueError(f"criteria must be among ('accuracy', 'nll'), got {criteria!r}")
    need = {"seed", "lam", "val_accuracy", "val_nll", judge}
    if not isinstance(curves, pd.DataFrame) or not need <= set(curves.columns):
        have = list(curves.columns) if isinstance(curves, pd.DataFrame) else type(curves).__name__
        raise ValueError(f"curves need the columns {sorted(need)}; they have {have}")
    larger = _JUDGES[judge]
    rows = []
    for seed, c in curves.groupby("seed"):
        best = c[judge].max() if larger else c[judge].min()
        for crit in criteria:
            lam = best_from_curve(c, crit)
            row = c[match_lam(c.lam, lam)].iloc[0]
            value = float(row[judge])
            rows.append({"seed": int(seed), "criterion": crit, "lam": lam,
                         "test_accuracy": float(row.get("test_accuracy", float("nan"))),
                         "test_nll": float(row.get("test_nll", float("nan"))),
                         "regret": float(best - value) if larger else float(value - best)})  # fmt: skip
    picks = pd.DataFrame(rows)
    summary = []
    for crit in criteria:
        p = picks[picks.criterion == crit]
        stats = _mean_se_ci(p.regret.to_numpy(), level)
        summary.append({"criterion": crit, "seeds": len(p), "regret": stats["mean"], "sd": stats["sd"],
                        "se": stats["se"], "ci_low": stats["ci_low"], "ci_high": stats["ci_high"],
                        "test_accuracy": float(p.test_accuracy.mean()), "test_nll": float(p.test_nll.mean()),
                        "median_lam": float(np.exp(np.median(np.log(p.lam))))})  # fmt: skip
    diffs = []
    by_seed = picks.pivot(index="seed", columns="criterion", values="regret")
    for i, a in enumerate(criteria):
        for b in criteria[i + 1 :]:
            stats = _mean_se_ci((by_seed[a] - by_seed[b]).to_numpy(), level)
            noise = bool(math.isnan(stats["se"]) or stats["ci_low"] <= 0 <= stats["ci_high"])
            diffs.append({"a": a, "b": b, "difference": stats["mean"], "se": stats["se"],
                          "ci_low": stats["ci_low"], "ci_high": stats["ci_high"], "within_noise": noise})  # fmt: skip
    differences = pd.DataFrame(diffs, columns=["a", "b", "difference", "se", "ci_low", "ci_high", "within_noise"])
    return CriterionComparison(picks, pd.DataFrame(summary), differences, judge, level)


def difference_verdict(difference: pd.Series) -> str:
    """Rank two criteria only when the interval of their paired difference excludes zero.

    ``difference`` is a row of ``CriterionComparison.differences`` (``difference`` = regret of
    validation accuracy minus regret of validation NLL, and ``within_noise``). Returns a phrase.
    """
    if difference.within_noise:
        return "within noise (the interval contains zero), so these replicates do not rank the two criteria"
    better = "validation NLL" if difference.difference > 0 else "validation accuracy"
    return f"the interval excludes zero, so {better} picks the better λ on these replicates"


def criteria_findings(by_accuracy: CriterionComparison, by_nll: CriterionComparison) -> dict[str, float | str]:
    """What the replicates say about validation accuracy against validation NLL, as numbers and phrases.

    ``by_accuracy`` and ``by_nll`` are ``compare_criteria`` of the same replicates, judged by
    test accuracy and by test NLL, with criteria ("accuracy", "nll"). Returns, per criterion:
    ``rep_{crit}_regret`` and ``rep_{crit}_se`` (points of accuracy) and ``rep_{crit}_lam`` (the
    median lambda chosen); for the paired difference (accuracy minus NLL) judged by accuracy
    (key "acc", in points) and by NLL (key "nll", in nats): ``diff_{key}_difference``, ``_se``,
    ``_ci_low``, ``_ci_high``, ``_verdict`` (``difference_verdict``) and ``_z`` (|difference| / se;
    inf when se is 0); and ``rep_test_sd``, the standard deviation over seeds of the test accuracy
    at the lambda validation NLL picks (points).

    Raises:
        KeyError: when a comparison lacks the criteria "accuracy" or "nll".
        IndexError: when a comparison holds no difference (one criterion only).
    """
    s = by_accuracy.summary.set_index("criterion")
    out: dict[str, float | str] = {}
    for crit in ("accuracy", "nll"):
        out[f"rep_{crit}_regret"] = 100 * float(s.loc[crit, "regret"])
        out[f"rep_{crit}_se"] = 100 * float(s.loc[crit, "se"])
        out[f"rep_{crit}_lam"] = float(s.loc[crit, "median_lam"])
    for key, c, scale in (("acc", by_accuracy, 100), ("nll", by_nll, 1)):
        d = c.differences.iloc[0]
        for field in ("difference", "se", "ci_low", "ci_high"):
            out[f"diff_{key}_{field}"] = scale * float(d[field])
        out[f"diff_{key}_verdict"] = difference_verdict(d)
        out[f"diff_{key}_z"] = abs(float(d.difference / d.se)) if d.se > 0 else float("inf")
    picks = by_accuracy.picks
    out["rep_test_sd"] = 100 * float(picks[picks.criterion == "nll"].test_accuracy.std())
    return out
