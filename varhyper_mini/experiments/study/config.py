"""A study's settings and plan: the config, its presets, the jobs and the pruning rules each job is evaluated under.

A study is a list of independent jobs. A job is one (implementation, lambda, run) for a directly
trained model, or one (implementation, run) for a hypernetwork, which is then evaluated at every
lambda of the grid. Each job has its own seed, from its name (``provenance.seed_from_name``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from ... import data as data_mod
from ..._checks import LOG_SIGMA_RANGE, as_positive, as_real, check_fractions, check_lam_range, check_positive_ints
from ...losses import LOSSES
from ...provenance import seed_from_name
from ...pruning import (
    FRACTIONS,
    SCOPES,
)

__all__ = [
    "HYPERNETS",
    "IMPLEMENTATIONS",
    "LETTERS",
    "RULE_COLUMNS",
    "CSV_COLUMNS",
    "SIGMA_COLUMNS",
    "CORRECTIONS",
    "StudyConfig",
    "PRESETS",
    "preset",
    "Job",
    "plan_jobs",
    "paper_criterion",
    "pruning_rules",
    "config_from_json",
    "upgrade_rows",
    "training_passes",
    "departures_from_paper",
]


CORRECTIONS = ("none", "bias")

HYPERNETS = ("direct", "linear", "piecewise")
IMPLEMENTATIONS = tuple(f"{loss}-{h}" for loss in LOSSES for h in HYPERNETS)
# The paper's letters (a)-(i) of section 4.2, in its order.
LETTERS = dict(zip(IMPLEMENTATIONS, "abcdefghi"))
# One row per (job, lambda, pruning rule, fraction). The rule: scope (layer | global), criterion
# (var = |mu|/sigma, simple = |mu|), correction (none | bias), biases (kept | pruned) and
# evaluation (mean weights | mc = Monte Carlo average). The paper's rule is layer, var for the
# variational losses and simple for the base loss, none, kept, mean.
RULE_COLUMNS = ["scope", "criterion", "correction", "biases", "evaluation"]
CSV_COLUMNS = ["implementation", "loss", "hypernet", "lam", "run", *RULE_COLUMNS, "fraction", "accuracy"]
SIGMA_COLUMNS = ["implementation", "run", "lam", "layer", "init_log_sigma", "log_sigma_mean", "log_sigma_std",
                 "log_sigma_q05", "log_sigma_q95", "mean_abs_mu", "agreement_90"]  # fmt: skip


@dataclass
class StudyConfig:
    """Every setting of a study. Presets fill it; the command line may override any field."""

    dataset: str = "mnist"
    implementations: tuple[str, ...] = IMPLEMENTATIONS
    lams: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
    lam_range: tuple[float, float] = (1e-3, 1e2)
    fractions: tuple[float, ...] = FRACTIONS
    runs: int = 5
    epochs: int = 50
    batch_size: int = 256
    lr: float = 5e-4
    lam_samples: int = 5
    n_pieces: int = 5
    init_log_sigma: float = -3.0
    prior_var: float = 1.0
    clip_value: float = 1.0
    train_subset: int | None = None
    test_subset: int | None = None
    input_range: tuple[float, float] = data_mod.MNIST_RANGE_AUTHORS
    scopes: tuple[str, ...] = SCOPES
    corrections: tuple[str, ...] = CORRECTIONS
    mc_samples: int = 10
    seed: int = 0
    max_group: int = 30
    width: float = 1.0
    amp: bool = False

    def validate(self) -> None:
        """Check every setting; returns None when they are all valid.

        Raises:
            ValueError: the first invalid setting, named: an unknown dataset, implementation,
                scope or correction; a lambda that is not positive and finite; a ``lam_range``
                without 0 < lo < hi < inf; a pruning fraction outside [0, 1]; a count (``runs``,
                ``epochs``, ``batch_size``, ``lam_samples``, ``n_pieces``, ``max_group``) that is
                not a positive integer, or ``mc_samples`` not a non-negative one; ``lr`` not
                positive; a ``train_subset`` or ``test_subset`` that is neither None nor a positive
                integer; an ``init_log_sigma`` outside [-30, 10]; a ``prior_var`` or ``clip_value``
                that is not positive and finite in float32 (``clip_value`` may be None); a ``seed``
                that is not an integer in [0, 2**63); a bad ``input_range`` (or one set for
                CIFAR-10); a ``width`` that is not a positive number (or not 1.0 for MNIST).
        """
        if self.dataset not in ("mnist", "cifar10"):
            raise ValueError(f"unknown dataset {self.dataset!r}; choose mnist or cifar10")
        for impl in self.implementations:
            if impl not in IMPLEMENTATIONS:
                raise ValueError(f"unknown implementation {impl!r}; choose from {', '.join(IMPLEMENTATIONS)}")
        for lam in self.lams:
            if not (lam > 0 and lam < float("inf")):
                raise ValueError(f"every lambda must be positive and finite, got {lam!r}")
        check_lam_range(self.lam_range)
        check_fractions(self.fractions)
        check_positive_ints(self, ("runs", "epochs", "batch_size", "lam_samples", "n_pieces", "max_group"))
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        # Checked here, not first where they are used (data loading, model building, training):
        # a study refuses them before it writes anything into its output folder.
        for name in ("train_subset", "test_subset"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be a positive number of images (unset: all of them), got {v!r}")
        ls = as_real(self.init_log_sigma, "init_log_sigma")
        if not LOG_SIGMA_RANGE[0] <= ls <= LOG_SIGMA_RANGE[1]:
            raise ValueError(
                f"init_log_sigma must be a finite log standard deviation in {list(LOG_SIGMA_RANGE)}, got {ls!r} "
                "(sigma = exp(init_log_sigma) would overflow or underflow); -3 gives sigma ~ 0.05"
            )
        as_positive(self.prior_var, "prior_var", f32=True)
        if self.clip_value is not None:
            as_positive(self.clip_value, "clip_value")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be an integer in [0, 2**63), got {self.seed!r}")
        data_mod.check_input_range(self.input_range)
        if not (isinstance(self.width, (int, float)) and 0 < self.width < float("inf")):
            raise ValueError(f"width must be a positive number (1.0 is the paper's network), got {self.width!r}")
        if self.dataset != "cifar10" and self.width != 1.0:
            raise ValueError("width applies to the CIFAR-10 network only; the MNIST network is the paper's 784-50-10")
        if self.dataset != "mnist" and tuple(self.input_range) != data_mod.MNIST_RANGE_AUTHORS:
            raise ValueError("input_range applies to MNIST only; CIFAR-10 is normalised with its channel statistics")
        for name, values, allowed in (("scopes", self.scopes, SCOPES), ("corrections", self.corrections, CORRECTIONS)):
            if not values or any(v not in allowed for v in values):
                raise ValueError(f"{name} must be a non-empty subset of {allowed}, got {values!r}")
        if not isinstance(self.mc_samples, int) or self.mc_samples < 0:
            raise ValueError(
                f"mc_samples must be a non-negative integer (0: no Monte Carlo rule), got {self.mc_samples!r}"
            )


# A study with signal on 2 CPU cores (about an hour): the paper's network at a quarter of
# its width, on the 5,000/1,000 JPEG subset, 30 epochs, Adam lr 1e-3, batch 128, one
# lambda sample per batch. Initial log sigma = -6 instead of the paper's -3: measured,
# sigma = 0.05 exceeds the typical weight of the wide layers and the variational models
# stay far below the plain one (results/cifar10-init-sigma, chapter 07).
_CIFAR_CPU: dict = {
    "dataset": "cifar10",
    "lams": (0.01, 0.1, 1.0),
    "lam_range": (0.01, 1.0),
    "width": 0.25,
    "runs": 3,
    "epochs": 30,
    "batch_size": 128,
    "lr": 1e-3,
    "train_subset": 5000,
    "test_subset": 1000,
    "lam_samples": 1,
    "init_log_sigma": -6.0,
    "max_group": 1,  # a vmapped CNN group needs far more memory and was not faster on CPU
}

PRESETS: dict[str, dict[str, dict]] = {
    "mnist": {
        "paper": {},
        "quick": {
            "runs": 1,
            "epochs": 1,
            "lams": (1e-2, 1.0, 100.0),
            "fractions": (0.0, 0.5, 0.9),
            "train_subset": 2000,
            "test_subset": 2000,
        },
    },
    "cifar10": {
        "paper": {
            "dataset": "cifar10",
            "implementations": IMPLEMENTATIONS,
            "lams": (0.01, 0.1, 1.0),
            "lam_range": (0.01, 1.0),
            "epochs": 50,
            "batch_size": 256,
            "max_group": 5,
        },
        "code": {
            "dataset": "cifar10",
            "lams": (0.01, 0.1, 1.0),
            "lam_range": (0.01, 1.0),
            "epochs": 75,
            "batch_size": 128,
            "n_pieces": 2,
            "max_group": 5,
        },
        "cpu": _CIFAR_CPU,
        # The settings of the first CPU run (600 images, 2 epochs): every variational model at chance.
        "tiny": {
            "dataset": "cifar10",
            "lams": (0.01, 0.1, 1.0),
            "lam_range": (0.01, 1.0),
            "runs": 2,
            "epochs": 2,
            "train_subset": 600,
            "test_subset": 300,
            "lam_samples": 1,
            "max_group": 1,
        },
        # The paper's network on the full 50,000 images, sized for about 10 minutes of one
        # data-centre GPU (estimated from the FLOP count, not measured: see chapter 07): one run,
        # 15 epochs, bfloat16 autocast where the GPU has it, the three lambdas of a direct model
        # in one vmapped group. Initial log sigma -6 as in the cpu preset: with about 3,000 Adam
        # steps log sigma cannot travel from -3 to below the weights' scale.
        "gpu": {
            "dataset": "cifar10",
            "lams": (0.01, 0.1, 1.0),
            "lam_range": (0.01, 1.0),
            "runs": 1,
            "epochs": 15,
            "batch_size": 256,
            "init_log_sigma": -6.0,
            "amp": True,
            "max_group": 3,
        },
        # The cpu preset, shrunk for tests and quick mode: fewer images, one epoch, one run.
        "quick": {
            **_CIFAR_CPU,
            "implementations": ("variational-direct", "variational-linear", "base-piecewise"),
            "lams": (0.01, 1.0),
            "fractions": (0.0, 0.9),
            "runs": 1,
            "epochs": 1,
            "train_subset": 256,
            "test_subset": 200,
        },
    },
}


def preset(dataset: str, name: str, **overrides) -> StudyConfig:
    """The named preset for ``dataset`` with ``overrides`` applied, validated.

    Overrides that are None are ignored (they keep the preset's value).

    Raises:
        ValueError: an unknown dataset, preset or setting name, or settings that
            ``StudyConfig.validate`` refuses.
    """
    if dataset not in PRESETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(PRESETS)}")
    if name not in PRESETS[dataset]:
        raise ValueError(f"unknown preset {name!r} for {dataset}; choose one of {', '.join(PRESETS[dataset])}")
    values = {"dataset": dataset, **PRESETS[dataset][name]}
    values.update({k: v for k, v in overrides.items() if v is not None})
    fields = {f.name for f in dataclasses.fields(StudyConfig)}
    unknown = set(values) - fields
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(fields))}")
    for key in ("implementations", "lams", "fractions", "lam_range", "input_range", "scopes", "corrections"):
        if key in values:
            values[key] = tuple(values[key])
    cfg = StudyConfig(**values)
    cfg.validate()
    return cfg


@dataclass(frozen=True)
class Job:
    """One independent unit of a study; ``lam`` is None for a hypernetwork."""

    implementation: str
    lam: float | None
    run: int

    @property
    def loss(self) -> str:
        """The loss of the implementation, before the "-": "variational", "covariance" or "base"."""
        return self.implementation.split("-")[0]

    @property
    def hypernet(self) -> str:
        """The hypernetwork form of the implementation, after the "-": "direct", "linear" or "piecewise"."""
        return self.implementation.split("-")[1]

    @property
    def name(self) -> str:
        """``<implementation>__lam-<lambda or all>__run-<run>``: the stem of its job and checkpoint files."""
        lam = "all" if self.lam is None else f"{self.lam:g}"
        return f"{self.implementation}__lam-{lam}__run-{self.run}"

    def seed(self, base: int) -> int:
        """A stable seed of its own: a checksum of the job's name plus the study's base seed."""
        return seed_from_name(self.name, base)


def plan_jobs(cfg: StudyConfig) -> list[Job]:
    """All jobs of a study in a fixed order."""
    jobs = []
    for impl in cfg.implementations:
        direct = impl.endswith("-direct")
        for run in range(cfg.runs):
            for lam in cfg.lams if direct else [None]:
                jobs.append(Job(impl, lam, run))
    return jobs


def paper_criterion(loss: str) -> str:
    """The paper's pruning criterion for a loss: |mu|/sigma ("var") for L1 and L2, |w| for L3."""
    return "simple" if loss == "base" else "var"


def pruning_rules(cfg: StudyConfig, loss: str) -> list[dict]:
    """The pruning rules a job of ``loss`` is evaluated under (dicts of ``RULE_COLUMNS``).

    Every scope x criterion x correction of ``cfg`` (|mu| is added for the variational losses),
    then two variations of the paper's rule: biases pruned too, and (variational losses) a
    Monte Carlo average over ``cfg.mc_samples`` weight draws instead of the mean weights.
    """
    criteria = [paper_criterion(loss)] + (["simple"] if loss != "base" else [])
    rules = [
        {"scope": s, "criterion": c, "correction": k, "biases": "kept", "evaluation": "mean"}
        for s in cfg.scopes
        for c in criteria
        for k in cfg.corrections
    ]
    paper = {"scope": "layer", "criterion": paper_criterion(loss), "correction": "none"}
    rules.append({**paper, "biases": "pruned", "evaluation": "mean"})
    if loss != "base" and cfg.mc_samples > 0:
        rules.append({**paper, "biases": "kept", "evaluation": "mc"})
    return rules


def config_from_json(values: dict) -> StudyConfig:
    """A ``StudyConfig`` from a ``config.json``; configs written before the pruning rules load too.

    Older studies had one ``scope`` and MNIST in [-1, 1]: they become ``scopes=(scope,)``, no
    bias correction and no Monte Carlo rule, which is what they evaluated. The config is not
    validated here.

    Raises:
        ValueError: ``values`` hold a setting that ``StudyConfig`` does not have.
    """
    values = dict(values)
    if "scope" in values:
        values["scopes"] = [values.pop("scope")]
        values.setdefault("corrections", ["none"])
        values.setdefault("mc_samples", 0)
    fields = {f.name for f in dataclasses.fields(StudyConfig)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(
            f"config.json has settings this version does not know: {', '.join(unknown)}; "
            f"known: {', '.join(sorted(fields))}"
        )
    return StudyConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def upgrade_rows(rows: list[dict], cfg: StudyConfig) -> list[dict]:
    """Rows of job files written before the pruning rules: the paper's rule, named."""
    if not rows or "scope" in rows[0]:
        return rows
    return [
        {**r, "scope": cfg.scopes[0], "criterion": paper_criterion(r["loss"]), "correction": "none",
         "biases": "kept", "evaluation": "mean"}
        for r in rows
    ]  # fmt: skip


def training_passes(cfg: StudyConfig, n_train: int) -> int:
    """Forward-backward passes of single images that a study's training needs.

    A direct model sees ``n_train`` images per epoch; a hypernetwork with k lambda samples per
    batch runs every image through k generated models. Divide by a measured throughput
    (images per second) to estimate the wall time.
    """
    total = 0
    for job in plan_jobs(cfg):
        k = 1 if job.hypernet == "direct" else cfg.lam_samples
        total += cfg.epochs * n_train * k
    return total


# Bookkeeping, not a setting of the method: where the study runs and how its work is grouped.
_NOT_SETTINGS = ("max_group", "amp", "seed", "mc_samples", "scopes", "corrections")


def departures_from_paper(cfg: StudyConfig) -> dict[str, dict]:
    """Every setting of ``cfg`` that differs from the dataset's ``paper`` preset: {name: {"this": v, "paper": p}}.

    The ``paper`` preset holds the paper's settings (the authors' code's where the paper is silent;
    see the reproduction notes). Settings of the evaluation and the machine (``_NOT_SETTINGS``) are
    left out. Written into each study's ``provenance.json`` by ``merge``, so a scaled-down run says
    plainly what it changed (for the CIFAR-10 ``cpu`` preset: width, images, epochs, runs, batch,
    learning rate, lambda samples and the initial log sigma).
    """
    ours, paper = dataclasses.asdict(cfg), dataclasses.asdict(preset(cfg.dataset, "paper"))
    return {
        k: {"this": ours[k], "paper": paper[k]}
        for k in ours
        if k not in _NOT_SETTINGS and json.loads(json.dumps(ours[k])) != json.loads(json.dumps(paper[k]))
    }
