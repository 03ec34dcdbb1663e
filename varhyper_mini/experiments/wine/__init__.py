"""Section 4.1 on Wine: how close do hypernetworks come to the directly trained posteriors?

The experiment of the paper's Figure 3, plus a numerical look at Theorem 2:

1. Directly trained variational logistic regressions (``ConstantHypernet``) at every lambda
   of a grid, for several runs (the reference posteriors q2).
2. Hypernetworks trained with log lambda uniform on Lambda: the linear form (eq. (12)) and
   piecewise-linear forms (eq. (13)) with N regions. The linear form is the piecewise-linear
   form with one region, so it is listed here as N = 1.
3. For every hypernetwork, lambda and run: the test accuracy of G(lambda) and the symmetrised
   KL D(q1, q2) = KL(q1 || q2) + KL(q2 || q1) to the direct model of the same lambda and run;
   the same after fine-tuning G(lambda) for one epoch at that lambda; and, as a baseline, a
   model trained from scratch for one epoch.
4. Theorem 2: the expected loss gap E_lambda[L(G(lambda)) - L(w*(lambda))] to the direct
   models, the distance between the pruning scores g(w) = |mu| / sigma (eq. (17)), and the
   pruning curves, for hypernetworks of growing capacity N.

Every group of models of one shape trains in one vectorised loop (``train_many``). The
hypernetworks of different N are padded to one shape (``PaddedPiecewiseHypernet``) so that
they train together too; this gives the same result as training each form on its own.

The modules, in the order of the pipeline: ``config`` (settings, names, seeds), ``training``
(the models, and the timing of the vectorised loop), ``run`` (``run_wine_experiment``),
``results`` (checks, summaries, writing and reading the results folder), ``findings`` (the
numbers and phrases the chapter quotes), ``plots`` (the figures). This package re-exports
their public names: ``from varhyper_mini.experiments import wine`` then
``wine.run_wine_experiment(...)``. The measures live in ``experiments.metrics``
(re-exported here: ``expected_loss``, ``relevance_distance``).
"""

from __future__ import annotations

from ..metrics import expected_loss, relevance_distance
from .config import CSV_COLUMNS, STAGES, WineConfig, model_name, run_target
from .findings import (
    figure3_findings,
    figure3_numbers,
    lam_markdown,
    mode_note,
    pruning_findings,
    theorem2_findings,
)
from .plots import plot_figure3, plot_pruning_curves, plot_theorem2
from .results import (
    DEFAULT_COMMAND,
    RESULT_FILES,
    WineTables,
    config_from_provenance,
    expected_keys,
    load_results,
    pruning_distance,
    results_dir,
    summarise,
    summary_table,
    theorem2_summary,
    validate_table,
    write_results,
)
from .run import WineResults, run_wine_experiment
from .training import (
    PaddedPiecewiseHypernet,
    finetune_and_scratch,
    time_vectorised,
    train_direct,
    train_direct_loop,
    train_hypernets,
)

__all__ = [
    "WineConfig",
    "WineResults",
    "WineTables",
    "PaddedPiecewiseHypernet",
    "CSV_COLUMNS",
    "STAGES",
    "DEFAULT_COMMAND",
    "RESULT_FILES",
    "model_name",
    "run_target",
    "train_direct",
    "train_hypernets",
    "finetune_and_scratch",
    "expected_loss",
    "relevance_distance",
    "run_wine_experiment",
    "expected_keys",
    "validate_table",
    "summarise",
    "theorem2_summary",
    "pruning_distance",
    "write_results",
    "load_results",
    "config_from_provenance",
    "train_direct_loop",
    "results_dir",
    "time_vectorised",
    "plot_figure3",
    "plot_theorem2",
    "plot_pruning_curves",
    "summary_table",
    "lam_markdown",
    "figure3_findings",
    "figure3_numbers",
    "theorem2_findings",
    "pruning_findings",
    "mode_note",
]
