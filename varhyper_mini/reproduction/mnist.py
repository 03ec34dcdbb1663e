"""The MNIST study against the paper's Table 1 (section 4.2): the gap under each pruning rule, and the claims.

The paper reports one number per (implementation, pruning level); how it pruned and how it scaled
MNIST are not stated (see the reproduction notes). A study here evaluates every trained model under
several pruning rules (``study.pruning_rules``) and is run for two input scalings, so the paper's
table can be compared with each combination. These functions turn the committed results into the
comparisons of chapter 06 and the reproducibility report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from ..experiments.study import summarise
from ..plots import compare_with_paper
from .rules import RULES, rule_label

__all__ = [
    "PIXEL_KEYS",
    "gap_table",
    "gap_view",
    "authors_row",
    "closest_row",
    "gap_findings",
    "accuracy_by_loss",
    "by_loss_findings",
    "claims",
]

#: The two committed MNIST studies, by the label of their input scaling, and the short key that the
#: chapters' glued names use for each ("gap_m1_layer_none" is pixels in [-1, 1]).
PIXEL_KEYS: dict[str, str] = {"[-1, 1]": "m1", "[0, 1]": "01"}

_SCOPES = ("layer", "global")
_CORRECTIONS = ("none", "bias")


def gap_table(
    studies: Mapping[str, pd.DataFrame],
    dataset: str = "mnist",
    lams: Sequence[float] | None = None,
    rules: Sequence[Mapping] = RULES,
) -> pd.DataFrame:
    """Table 1's gap for every (study, rule): mean absolute and signed differences, in points.

    ``studies`` maps a label (e.g. the input scaling) to a study's ``pruning.csv`` frame. For each
    rule the study's Table 1 (``plots.compare_with_paper``, averaged over ``lams``) is compared
    cell by cell with the paper's, separately at 0-50 % and at 70-90 % deleted. A rule that a
    study has no rows for (base models have no |mu|/sigma) is skipped. Columns: study, scope,
    criterion, correction, rule, gap_low (mean |difference| at 0-50 %, points), gap_high (70-90 %),
    signed_high (mean difference at 70-90 %; negative: below the paper), worst_high (the largest
    |difference| at 70-90 %), cells.
    """
    rows = []
    for label, df in studies.items():
        for rule in rules:
            try:
                t = compare_with_paper(df, dataset, lams, rule=dict(rule))
            except ValueError:
                continue
            t = t.dropna(subset=["paper"])
            low, high = t[t.fraction <= 0.5], t[t.fraction >= 0.7]
            rows.append(
                {
                    "study": label,
                    "scope": rule.get("scope", "layer"),
                    "criterion": rule.get("criterion", "paper"),
                    "correction": rule.get("correction", "none"),
                    "rule": rule_label(rule),
                    "gap_low": 100 * float(low.difference.abs().mean()),
                    "gap_high": 100 * float(high.difference.abs().mean()),
                    "signed_high": 100 * float(high.difference.mean()),
                    "worst_high": 100 * float(high.difference.abs().max()),
                    "cells": len(t),
                }
            )
    return pd.DataFrame(rows)


def gap_view(gaps: pd.DataFrame) -> pd.DataFrame:
    """``gap_table``'s output for reading: one row per rule, the three gaps (points) per study as columns.

    Rows are indexed by scope, criterion and correction; columns are (gap, study) with the gaps
    "0–50 %" (mean |difference|), "70–90 %" and "70–90 %, signed", in points of accuracy.

    Raises:
        AttributeError: ``gaps`` lacks gap_low, gap_high or signed_high.
    """
    view = gaps.assign(**{"0–50 %": gaps.gap_low, "70–90 %": gaps.gap_high, "70–90 %, signed": gaps.signed_high})
    return view.pivot_table(
        index=["scope", "criterion", "correction"], columns="study", values=["0–50 %", "70–90 %", "70–90 %, signed"]
    )


def authors_row(gaps: pd.DataFrame, study: str = "[-1, 1]") -> pd.Series:
    """The ``gap_table`` row of the authors' code's choices: per layer, the paper's criterion, no correction.

    ``study`` is the label of the study with the authors' input scaling (``Normalize(0.5, 0.5)``
    in the authors' code). Returns the row (a Series with ``gap_table``'s columns).

    Raises:
        ValueError: ``gaps`` has no such row.
    """
    sel = gaps[
        (gaps.study == study) & (gaps.scope == "layer") & (gaps.criterion == "paper") & (gaps.correction == "none")
    ]
    if sel.empty:
        raise ValueError(
            f"no row for study {study!r} under the paper's rule per layer; the studies are {set(gaps.study)}"
        )
    return sel.iloc[0]


def closest_row(gaps: pd.DataFrame) -> pd.Series:
    """The ``gap_table`` row closest to Table 1 at 70-90 % deleted: the smallest mean |difference| there.

    The first such row on a tie. Returns the row (a Series with ``gap_table``'s columns).

    Raises:
        ValueError: ``gaps`` is empty.
    """
    if gaps.empty:
        raise ValueError("the gap table is empty: no study had rows for any rule")
    return gaps.loc[gaps.gap_high.idxmin()]


def _gap_high(gaps: pd.DataFrame, study: str, scope: str, correction: str, criterion: str = "paper") -> float:
    """The 70-90 % gap of one (study, rule) of ``gap_table``'s output, in points."""
    row = gaps[
        (gaps.study == study) & (gaps.scope == scope) & (gaps.correction == correction) & (gaps.criterion == criterion)
    ]
    return float(row.gap_high.iloc[0])


def gap_findings(
    gaps: pd.DataFrame, gaps_all: pd.DataFrame, keys: Mapping[str, str] = PIXEL_KEYS
) -> dict[str, float | str]:
    """The numbers chapter 06 reads off Table 1's gaps, by the names it glues them under (points, or text).

    ``gaps`` is ``gap_table`` over lambda up to 10, ``gaps_all`` over every lambda; ``keys`` maps
    each study's label to its short key (the first is the authors' scaling). Returns
    authors_gap_low/high, authors_signed_high (``authors_row``); best_study, best_rule,
    best_gap_low/high, best_signed_high (``closest_row``); best_all_rule and best_all_gap_high
    (closest with every lambda); and gap_<key>_<scope>_<correction>, the 70-90 % gap under the
    paper's criterion. Source: the paper's Table 1.

    Raises:
        ValueError: the authors' row is missing (see ``authors_row``) or a table is empty.
        IndexError: a study of ``keys`` lacks one of the four rules.
    """
    authors, best, best_all = authors_row(gaps, next(iter(keys))), closest_row(gaps), closest_row(gaps_all)
    out: dict[str, float | str] = {
        "authors_gap_low": float(authors.gap_low),
        "authors_gap_high": float(authors.gap_high),
        "authors_signed_high": float(authors.signed_high),
        "best_study": str(best.study),
        "best_rule": str(best.rule),
        "best_gap_low": float(best.gap_low),
        "best_gap_high": float(best.gap_high),
        "best_signed_high": float(best.signed_high),
        "best_all_rule": f"{best_all.study}, {best_all.rule}",
        "best_all_gap_high": float(best_all.gap_high),
    }
    for label, key in keys.items():
        for scope in _SCOPES:
            for corr in _CORRECTIONS:
                out[f"gap_{key}_{scope}_{corr}"] = _gap_high(gaps, label, scope, corr)
    return out


def accuracy_by_loss(
    studies: Mapping[str, pd.DataFrame],
    lams: Sequence[float] | None = None,
    fraction: float = 0.9,
    dataset: str = "mnist",
) -> pd.DataFrame:
    """Accuracy at one pruning level per loss, ours and the paper's, under each scope and bias correction (%).

    For every study (label -> ``pruning.csv`` frame), scope and correction (paper's criterion), the
    study's Table 1 (``plots.compare_with_paper`` over ``lams``) at ``fraction`` deleted is averaged
    over the three forms (direct, linear, piecewise) per loss. Indexed by pixels (the study's
    label), scope and correction; columns "<loss>, ours" and "<loss>, paper" for the three losses,
    in percent. Source: the paper's Table 1 (``fraction`` one of its columns).

    Raises:
        ValueError: a study lacks a rule's rows.
    """
    by_loss = []
    for label, df in studies.items():
        for scope in _SCOPES:
            for corr in _CORRECTIONS:
                t = compare_with_paper(df, dataset, lams, rule={"scope": scope, "correction": corr})
                t = t[t.fraction == fraction]
                row = {"pixels": label, "scope": scope, "correction": corr}
                for loss in ("variational", "covariance", "base"):
                    sel = t[t.loss == loss]
                    row[f"{loss}, ours"] = 100 * float(sel.accuracy.mean())
                    row[f"{loss}, paper"] = 100 * float(sel.paper.mean())
                by_loss.append(row)
    return pd.DataFrame(by_loss).set_index(["pixels", "scope", "correction"])


def by_loss_findings(by_loss: pd.DataFrame, keys: Mapping[str, str] = PIXEL_KEYS) -> dict[str, float]:
    """Claim 2's margin at heavy pruning, read off ``accuracy_by_loss``, by the names chapter 06 glues (points, %).

    For each study (``keys``: label -> short key), scope and correction: l1_l3_90_<key>_<scope>_<corr>,
    L1's accuracy minus L3's, and l3_90_<key>_<scope>_<corr>, L3's; and the paper's own,
    l1_l3_90_paper and l3_90_paper (the same in every row). Source: claim 2 on Table 1.

    Raises:
        KeyError: a (study, scope, correction) row is missing.
    """
    out = {}
    for label, key in keys.items():
        for scope in _SCOPES:
            for corr in _CORRECTIONS:
                r = by_loss.loc[(label, scope, corr)]
                out[f"l1_l3_90_{key}_{scope}_{corr}"] = float(r["variational, ours"] - r["base, ours"])
                out[f"l3_90_{key}_{scope}_{corr}"] = float(r["base, ours"])
    out["l1_l3_90_paper"] = float(by_loss.iloc[0]["variational, paper"] - by_loss.iloc[0]["base, paper"])
    out["l3_90_paper"] = float(by_loss.iloc[0]["base, paper"])
    return out


def claims(df: pd.DataFrame, lams: Sequence[float] | None = None, **rule) -> pd.DataFrame:
    """The paper's two MNIST claims, case by case, under one pruning rule.

    1. Models from a hypernetwork are at least as accurate as directly trained ones with nothing
       deleted (within 0.1 point), per loss and hypernetwork form.
    2. Variational models (L1) are more accurate than base models (L3) at 70 % and 90 % deleted,
       per form. The comparison mixes the loss with the criterion (|mu|/sigma against |w|) unless
       ``criterion="simple"`` puts both on |mu|.
    Returns columns claim, case, difference (points), holds.
    """
    s = summarise(df, lams, **rule).set_index(["loss", "hypernet", "fraction"]).accuracy
    out = []
    for loss in ("variational", "covariance", "base"):
        for h in ("linear", "piecewise"):
            if (loss, h, 0.0) in s and (loss, "direct", 0.0) in s:
                d = s[(loss, h, 0.0)] - s[(loss, "direct", 0.0)]
                out.append({"claim": "1: hypernet ≥ direct at 0 %", "case": f"{loss}, {h}",
                            "difference": 100 * d, "holds": bool(d >= -0.001)})  # fmt: skip
    for h in ("direct", "linear", "piecewise"):
        for f in (0.7, 0.9):
            if ("variational", h, f) in s and ("base", h, f) in s:
                d = s[("variational", h, f)] - s[("base", h, f)]
                out.append({"claim": f"2: L1 > L3 at {100 * f:.0f} %", "case": h,
                            "difference": 100 * d, "holds": bool(d > 0)})  # fmt: skip
    return pd.DataFrame(out, columns=["claim", "case", "difference", "holds"])
