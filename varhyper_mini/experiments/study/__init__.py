"""The pruning studies of sections 4.2-4.4 (MNIST, CIFAR-10): every implementation, lambda and run.

``config`` holds the settings, presets and the plan of jobs; ``runner`` trains and evaluates them,
resumably and in shards, and merges the job files; ``results`` reads what a study wrote. Every
public name is re-exported here: ``from varhyper_mini.experiments import study``.
"""

from __future__ import annotations

from .config import (
    CORRECTIONS,
    CSV_COLUMNS,
    HYPERNETS,
    IMPLEMENTATIONS,
    LETTERS,
    PRESETS,
    RULE_COLUMNS,
    SIGMA_COLUMNS,
    Job,
    StudyConfig,
    config_from_json,
    departures_from_paper,
    paper_criterion,
    plan_jobs,
    preset,
    pruning_rules,
    training_passes,
    upgrade_rows,
)
from .results import (
    describe_provenance,
    elapsed_minutes,
    flops_per_training_image,
    load_results,
    load_sigma,
    seconds_per_epoch,
    select_rule,
    summarise,
    wall_minutes,
)
from .runner import load_data, merge, run_study

__all__ = [
    "CORRECTIONS",
    "CSV_COLUMNS",
    "HYPERNETS",
    "IMPLEMENTATIONS",
    "LETTERS",
    "PRESETS",
    "RULE_COLUMNS",
    "SIGMA_COLUMNS",
    "Job",
    "StudyConfig",
    "config_from_json",
    "departures_from_paper",
    "describe_provenance",
    "elapsed_minutes",
    "flops_per_training_image",
    "load_data",
    "load_results",
    "load_sigma",
    "merge",
    "paper_criterion",
    "plan_jobs",
    "preset",
    "pruning_rules",
    "run_study",
    "seconds_per_epoch",
    "select_rule",
    "summarise",
    "training_passes",
    "upgrade_rows",
    "wall_minutes",
]
