"""Beyond the paper: choosing lambda, hitting a budget, calibration and the cost of a hypernetwork.

The paper trains one hypernetwork G(lambda) and leaves the choice of lambda to the user. This
subpackage turns that choice into procedures, one concept per module (every public name is also
available here, as ``varhyper_mini.selection.<name>``):

- ``choose``: ``select_lambda`` sweeps lambda on one trained hypernetwork and picks the best value
  by a validation criterion (accuracy or NLL on a split carved from the training data) or by the
  evidence lower bound at lambda = 1, ELBO = E_q log p(D|w) - KL(q || p) = -N * L1(1) (``elbo``).
  For L1 the ELBO cannot choose lambda: a converged hypernetwork minimises L1(1) at lambda = 1,
  so its ELBO curve peaks there whatever the data; read it as a convergence check.
- ``compare``: ``replicate_curves`` and ``compare_criteria`` judge the validation criteria over
  several independently trained hypernetworks, with standard errors and confidence intervals.
- ``calibration``: ``expected_calibration_error`` and ``calibration_table`` measure calibration
  against lambda and the share of deleted weights, for mean weights and Monte Carlo-averaged
  predictions.
- ``compression``: ``count_nonzero``, ``compression_ratio`` (total / non-zero parameters) and
  ``sparsity``, with one rule for biases; ``deletable_fraction``, the share Algorithm 2 can delete.
- ``export``: ``pruned_module``, ``save_pruned`` and ``load_pruned`` (``weights_only``).
- ``budget``: ``fit_budget`` searches (lambda, pruning fraction) for the model that meets a size
  and/or accuracy budget, and returns it as a ready, pruned plain ``nn.Module``.
- ``cost_study``: ``run_cost_study`` times one hypernetwork against K directly trained models and
  writes the committed results that the chapter "Choosing lambda" reads; ``cost_results`` reads
  them (``load_choosing_results``, ``gap_table``, ``selection_table``) and reduces them to what
  the chapter quotes (``cost_findings``, ``gap_findings``, ``classical_findings``; for the
  replicates, ``compare.criteria_findings``); ``plots`` draws them.

Imports go downwards: these modules build on data, models, gaussian, hypernets, train, prune
and provenance, and no module below imports this subpackage.
"""

from __future__ import annotations

from .budget import BudgetFit, fit_budget
from .calibration import calibration_table, expected_calibration_error, prediction_metrics
from .choose import CRITERIA, Selection, best_from_curve, elbo, lambda_curve, lambda_grid, match_lam, select_lambda
from .compare import CriterionComparison, compare_criteria, criteria_findings, difference_verdict, replicate_curves
from .compression import compression_ratio, compression_table, count_nonzero, deletable_fraction, sparsity
from .cost_results import (
    GAP_METRICS,
    ChoosingResults,
    accuracy_standard_error,
    classical_findings,
    cost_findings,
    gap_findings,
    gap_table,
    load_choosing_results,
    selection_table,
)
from .cost_study import (
    CHOOSING_FILES,
    COST_PRESETS,
    EVAL_SEEDS,
    CostConfig,
    cost_data,
    run_cost_study,
    train_cost_hypernet,
)
from .export import load_pruned, pruned_module, save_pruned
from .plots import plot_calibration, plot_cost, plot_criteria, plot_gap

__all__ = [
    "CRITERIA",
    "Selection",
    "lambda_grid",
    "elbo",
    "lambda_curve",
    "best_from_curve",
    "select_lambda",
    "expected_calibration_error",
    "prediction_metrics",
    "calibration_table",
    "count_nonzero",
    "compression_ratio",
    "deletable_fraction",
    "BudgetFit",
    "fit_budget",
    "pruned_module",
    "save_pruned",
    "load_pruned",
    "CostConfig",
    "EVAL_SEEDS",
    "COST_PRESETS",
    "run_cost_study",
    "cost_data",
    "train_cost_hypernet",
    "ChoosingResults",
    "gap_table",
    "selection_table",
    "plot_gap",
    "plot_calibration",
    "load_choosing_results",
    "replicate_curves",
    "CriterionComparison",
    "compare_criteria",
    "plot_criteria",
    # public before, now listed too
    "CHOOSING_FILES",
    "compression_table",
    # new public names: shared between the modules, or the bias rule's other count
    "GAP_METRICS",
    "match_lam",
    "sparsity",
    # what chapter 8 quotes: numbers and phrases computed from the tables above
    "cost_findings",
    "gap_findings",
    "classical_findings",
    "accuracy_standard_error",
    "criteria_findings",
    "difference_verdict",
    "plot_cost",
]
