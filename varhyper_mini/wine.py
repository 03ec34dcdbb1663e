"""Deprecated: the Wine experiment moved to ``varhyper_mini.experiments.wine`` (issue 18).

This module re-exports its public names for one release and warns on import; it will be
removed in the next one. Write ``from varhyper_mini.experiments import wine`` instead of
``from varhyper_mini import wine``: every name below is there, unchanged.
"""

from __future__ import annotations

import warnings

from .experiments.wine import (
    CSV_COLUMNS,
    DEFAULT_COMMAND,
    RESULT_FILES,
    STAGES,
    PaddedPiecewiseHypernet,
    WineConfig,
    WineResults,
    WineTables,
    config_from_provenance,
    expected_keys,
    expected_loss,
    finetune_and_scratch,
    load_results,
    model_name,
    plot_figure3,
    plot_pruning_curves,
    plot_theorem2,
    pruning_distance,
    relevance_distance,
    results_dir,
    run_target,
    run_wine_experiment,
    summarise,
    theorem2_summary,
    time_vectorised,
    train_direct,
    train_direct_loop,
    train_hypernets,
    validate_table,
    write_results,
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
]

warnings.warn(
    "varhyper_mini.wine is deprecated and will be removed in the next release; "
    "use varhyper_mini.experiments.wine (from varhyper_mini.experiments import wine), which has the same names",
    DeprecationWarning,
    stacklevel=2,
)
