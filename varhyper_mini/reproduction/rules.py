"""The pruning rules compared with the paper's tables, and their short names.

A study evaluates every trained model under several pruning rules (``study.pruning_rules``): the
scope (per layer or one global threshold), the criterion (the paper's, or the magnitude |mu| for
every loss) and the bias correction. The paper states none of these; its authors' code prunes
per layer by the paper's criterion, without correction.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

__all__ = ["RULES", "rule_label", "rule_of"]

# The rules compared with Table 1: scope x bias correction, each with the paper's criterion
# (|mu|/sigma for L1 and L2, |w| for L3), and |mu| for every loss as the magnitude baseline.
RULES: tuple[dict, ...] = tuple(
    {"scope": s, "correction": c, "criterion": k}
    for s in ("layer", "global")
    for c in ("none", "bias")
    for k in ("paper", "simple")
)


def rule_label(rule: Mapping) -> str:
    """A short name for a rule, e.g. "layer, |mu|/sigma, bias-corrected"."""
    crit = {"paper": "paper's criterion", "simple": "|μ| (magnitude)", "var": "|μ|/σ"}[rule.get("criterion", "paper")]
    corr = "bias-corrected" if rule.get("correction", "none") == "bias" else "no correction"
    extra = []
    if rule.get("biases", "kept") == "pruned":
        extra.append("biases pruned too")
    if rule.get("evaluation", "mean") == "mc":
        extra.append("Monte Carlo")
    return ", ".join([rule.get("scope", "layer"), crit, corr, *extra])


def rule_of(row: pd.Series | Mapping) -> dict[str, str]:
    """The pruning rule of a ``gap_table`` row, as ``study.select_rule``'s keyword arguments.

    Returns {"scope", "criterion", "correction"}, e.g. the closest combination's rule to pass as
    ``rule=`` to ``plots.compare_with_paper`` or as ``**rule`` to ``study.summarise``. Source: the
    pruning rules of Algorithm 2 (eq. 17-18) that the paper leaves open (the reproduction notes).

    Raises:
        KeyError: the row lacks one of the three columns.
    """
    return {"scope": row["scope"], "criterion": row["criterion"], "correction": row["correction"]}
