"""Our studies against the paper: Table 1's gaps under each pruning rule, the claims, the mechanism.

The paper reports one number per (implementation, pruning level); how it pruned and how it scaled
MNIST are not stated (see the reproduction notes). A study here evaluates every trained model under
several pruning rules (``study.pruning_rules``) and is run for two input scalings, so the paper's
table can be compared with each combination. One module per concept:

- ``rules``: the pruning rules compared (``RULES``, ``rule_label``, ``rule_of``);
- ``verdicts``: counting cases and verdicts, and the Wine claims (Figure 3);
- ``mnist``: Table 1's gaps and the two MNIST claims (chapter 06);
- ``criteria``: where sigma ends up, |mu|/sigma against |mu|, and what does not matter (chapter 06);
- ``mechanism``: what deleting first-layer weights does to the hidden units (chapter 06);
- ``cifar``: the CIFAR-10 claims, the study's scale and the initial sigma (chapter 07);
- ``report``: the reproducibility report's verdicts and checklist.

Every public name is re-exported here: ``from varhyper_mini import reproduction``.
"""

from __future__ import annotations

from .cifar import PAPER_SCALE, cifar_claims, scale_table, sweep_accuracy, weight_scales
from .criteria import (
    criterion_gain,
    criterion_gain_findings,
    rule_variations,
    sigma_findings,
    sigma_view,
    variation_findings,
)
from .mechanism import background_pixels, fit_direct, hidden_shift, plot_unit_weights
from .mnist import (
    PIXEL_KEYS,
    accuracy_by_loss,
    authors_row,
    by_loss_findings,
    claims,
    closest_row,
    gap_findings,
    gap_table,
    gap_view,
)
from .report import WHERE, checklist, cifar_report_findings, claim2_split_findings, report_findings, verdict_table
from .rules import RULES, rule_label, rule_of
from .verdicts import claim_summary, count_holding, table_verdict, verdict, wine_claims

__all__ = [
    "WHERE",
    "PAPER_SCALE",
    "PIXEL_KEYS",
    "RULES",
    "accuracy_by_loss",
    "authors_row",
    "background_pixels",
    "by_loss_findings",
    "checklist",
    "cifar_claims",
    "cifar_report_findings",
    "claim2_split_findings",
    "claim_summary",
    "claims",
    "closest_row",
    "count_holding",
    "criterion_gain",
    "criterion_gain_findings",
    "fit_direct",
    "gap_findings",
    "gap_table",
    "gap_view",
    "hidden_shift",
    "plot_unit_weights",
    "report_findings",
    "rule_label",
    "rule_of",
    "rule_variations",
    "scale_table",
    "sigma_findings",
    "sigma_view",
    "sweep_accuracy",
    "table_verdict",
    "variation_findings",
    "verdict",
    "verdict_table",
    "weight_scales",
    "wine_claims",
]
