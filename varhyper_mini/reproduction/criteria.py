"""Which parts of the pruning rule matter: where sigma ends up, |mu|/sigma against |mu|, and what does not matter.

The relative density ranks weights by |mu|/sigma (eq. 17); if training left sigma at its initial
value it would be the magnitude |mu| (eq. 18) divided by a constant. A study records where log sigma
ended up (``sigma.csv``) and evaluates every trained model under both criteria, with and without
pruning the biases and with Monte Carlo averaging, so chapter 06 can measure each choice's effect
on the same trained models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from ..experiments.study import summarise

__all__ = [
    "sigma_view",
    "sigma_findings",
    "criterion_gain",
    "criterion_gain_findings",
    "rule_variations",
    "variation_findings",
]

_SIGMA_COLUMNS = ["log_sigma_mean", "log_sigma_q05", "log_sigma_q95", "agreement_90"]


def sigma_view(sigma: pd.DataFrame, implementation: str = "variational-direct") -> pd.DataFrame:
    """Where log sigma ended up, per study, layer and lambda: means over runs of one implementation.

    ``sigma`` is one or more studies' ``sigma.csv`` (``study.load_sigma``) with a column pixels
    naming each study. Indexed by pixels, layer and lam; columns log_sigma_mean, log_sigma_q05,
    log_sigma_q95 (the quantiles over the layer's weights) and agreement_90 (the share of the
    weights deleted at 90 % by |mu|/sigma that |mu| deletes too). Source: eq. 17-18.

    Raises:
        KeyError: ``sigma`` lacks the pixels column or one of the statistics.
        AttributeError: ``sigma`` lacks the implementation column.
    """
    direct = sigma[sigma.implementation == implementation]
    return direct.groupby(["pixels", "layer", "lam"])[_SIGMA_COLUMNS].mean()


def sigma_findings(
    sigma: pd.DataFrame,
    init_log_sigma: float,
    study: str = "[-1, 1]",
    implementation: str = "variational-direct",
    first: str = "fc1.weight",
    last: str = "fc2.weight",
) -> dict[str, float]:
    """The numbers chapter 06 reads off where sigma ended up, by the names it glues them under.

    ``sigma`` as in ``sigma_view``; ``init_log_sigma`` is the study's initial log sigma. Returns
    init_log_sigma; ls_fc1_small and ls_fc1_100, the ``first`` layer's mean log sigma of
    ``implementation`` for lambda <= 0.1 and at lambda = 100; agree_small, the agreement at 90 %
    for lambda <= 0.1 (%); kept_disagree, the same disagreement among the kept weights (at 90 %
    deleted one weight in ten is kept, so it is nine times larger, %); agree_min, the lowest
    agreement of any variational model (%); and ls_gap_100, ``first``'s mean log sigma minus
    ``last``'s at lambda = 100 in ``study``. Log sigma in natural-log units.

    Raises:
        KeyError: lambda = 100 or one of the layers is missing for ``study``.
    """
    direct = sigma[sigma.implementation == implementation]
    small = direct[direct.lam <= 0.1]
    agree_small = float(small.agreement_90.mean())
    fc = direct[direct.pixels == study].groupby(["layer", "lam"]).log_sigma_mean.mean().unstack("layer")
    return {
        "init_log_sigma": float(init_log_sigma),
        "ls_fc1_small": float(small[small.layer == first].log_sigma_mean.mean()),
        "ls_fc1_100": float(direct[(direct.lam == 100) & (direct.layer == first)].log_sigma_mean.mean()),
        "agree_small": 100 * agree_small,
        "kept_disagree": 9 * (100 - 100 * agree_small),
        "agree_min": 100 * float(sigma[sigma.implementation.str.startswith("variational")].agreement_90.min()),
        "ls_gap_100": float(fc.loc[100.0, first] - fc.loc[100.0, last]),
    }


def criterion_gain(studies: Mapping[str, pd.DataFrame], lams: Sequence[float] | None = None) -> pd.DataFrame:
    """Accuracy with |mu|/sigma minus accuracy with |mu|, per study and scope, at 70 % and 90 % deleted (points).

    ``studies`` maps a label (the input scaling) to a study's ``pruning.csv`` frame; only the
    variational losses (L1, L2) have both criteria. Each difference is taken per implementation
    and fraction on Table 1's layout (``study.summarise`` over ``lams``), then averaged over the
    implementations. Indexed by pixels and scope; columns "at 70 %" and "at 90 %". Source: eq. 17
    against eq. 18.

    Raises:
        ValueError: a study lacks one of the rules.
    """
    rows = []
    for label, df in studies.items():
        var_df = df[df.loss != "base"]
        for scope in ("layer", "global"):
            by_sigma = summarise(var_df, lams, scope=scope, criterion="var")
            by_mu = summarise(var_df, lams, scope=scope, criterion="simple")
            d = (
                by_sigma.set_index(["implementation", "fraction"]).accuracy
                - by_mu.set_index(["implementation", "fraction"]).accuracy
            )
            rows.append({"pixels": label, "scope": scope, "at 70 %": 100 * float(d.xs(0.7, level=1).mean()),
                         "at 90 %": 100 * float(d.xs(0.9, level=1).mean())})  # fmt: skip
    return pd.DataFrame(rows).set_index(["pixels", "scope"])


def criterion_gain_findings(gain: pd.DataFrame) -> dict[str, float]:
    """``criterion_gain``'s verdict at 90 % deleted, by the names chapter 06 glues (points).

    crit_gain_layer_90: the largest |gain| per layer over the studies; crit_gain_global_90: the
    mean gain with one global threshold.

    Raises:
        KeyError: a scope is missing.
    """
    return {
        "crit_gain_layer_90": float(gain.xs("layer", level="scope")["at 90 %"].abs().max()),
        "crit_gain_global_90": float(gain.xs("global", level="scope")["at 90 %"].mean()),
    }


def rule_variations(
    studies: Mapping[str, pd.DataFrame], lams: Sequence[float] | None = None, mc_samples: int = 10
) -> pd.DataFrame:
    """What three variations of the paper's rule change, on the same trained variational models (points).

    The variations: |mu| instead of |mu|/sigma per layer, the biases pruned too, and predictions
    averaged over ``mc_samples`` Monte Carlo weight draws (the number the study used, for the
    label). For each study (label -> ``pruning.csv`` frame) the variation's Table 1 minus the paper
    rule's (``study.summarise`` over ``lams``, L1 and L2 only), at 0-50 % and at 70-90 % deleted.
    Columns: pixels, change, deleted, "mean difference (points)", "largest |difference|".
    Source: variations of Algorithm 2 that the paper does not state (the reproduction notes).

    Raises:
        ValueError: a study lacks a variation's rows.
    """
    variations = (
        ("|μ| instead of |μ|/σ, per layer", {"criterion": "simple"}),
        ("biases pruned too", {"biases": "pruned"}),
        (f"Monte Carlo, {mc_samples} draws", {"evaluation": "mc"}),
    )
    rows = []
    for label, df in studies.items():
        var = df[df.loss != "base"]
        for name, rule in variations:
            a = summarise(var, lams).set_index(["implementation", "fraction"]).accuracy
            b = summarise(var, lams, **rule).set_index(["implementation", "fraction"]).accuracy
            d = (b - a).dropna()
            for lo, hi, span in ((0.0, 0.5, "0–50 %"), (0.7, 0.9, "70–90 %")):
                sel = d[(d.index.get_level_values("fraction") >= lo) & (d.index.get_level_values("fraction") <= hi)]
                rows.append({"pixels": label, "change": name, "deleted": span,
                             "mean difference (points)": 100 * float(sel.mean()),
                             "largest |difference|": 100 * float(sel.abs().max())})  # fmt: skip
    return pd.DataFrame(rows)


def variation_findings(variations: pd.DataFrame) -> dict[str, float]:
    """The largest |difference| each variation of ``rule_variations`` makes in any cell, by chapter 06's glue names.

    nm_crit (|mu| instead of |mu|/sigma), nm_bias (biases pruned too), nm_mc (Monte Carlo), in
    points. A variation without rows gives NaN.

    Raises:
        KeyError: ``variations`` lacks the "largest |difference|" column.
    """
    out = {}
    for change, key in (("|μ| instead of |μ|/σ", "crit"), ("biases pruned too", "bias"), ("Monte Carlo", "mc")):
        sel = variations[variations.change.str.startswith(change)]
        out[f"nm_{key}"] = float(sel["largest |difference|"].max())
    return out
