"""The pruning studies of section 4.2: every implementation, lambda and run, as resumable jobs.

A study is a list of independent jobs. A job is one (implementation, lambda, run) for a
directly trained model, or one (implementation, run) for a hypernetwork, which is then
evaluated at every lambda of the grid. Each job has its own seed and writes its rows to
``<out>/jobs/<job>.json`` atomically, so an interrupted study resumes where it stopped.
Jobs of one implementation train together in one vectorised loop (``train_many``), which
gives the same result as training them one by one. ``merge`` combines the job files into
``pruning.csv`` and ``provenance.json``.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import json
import os
import platform
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from . import data as data_mod
from . import models
from .evaluation import accuracy, predict
from .hypernets import ConstantHypernet, Hypernet, LinearHypernet, PiecewiseLinearHypernet
from .losses import LOSSES
from .provenance import atomic_write, git_commit, hardware, load_average, results_root
from .pruning import (
    FRACTIONS,
    SCOPES,
    apply_masks,
    correct_biases,
    layer_input_means,
    prunable_names,
    pruning_masks,
)
from .training import LogUniform, train_many

CORRECTIONS = ("none", "bias")

__all__ = [
    "StudyConfig",
    "Job",
    "PRESETS",
    "IMPLEMENTATIONS",
    "preset",
    "plan_jobs",
    "run_study",
    "merge",
    "load_results",
    "CSV_COLUMNS",
    "RULE_COLUMNS",
    "SIGMA_COLUMNS",
    "CORRECTIONS",
    "summarise",
    "select_rule",
    "pruning_rules",
    "paper_criterion",
    "config_from_json",
    "load_sigma",
    "load_data",
    "training_passes",
    "seconds_per_epoch",
    "describe_provenance",
]

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
        if self.dataset not in ("mnist", "cifar10"):
            raise ValueError(f"unknown dataset {self.dataset!r}; choose mnist or cifar10")
        for impl in self.implementations:
            if impl not in IMPLEMENTATIONS:
                raise ValueError(f"unknown implementation {impl!r}; choose from {', '.join(IMPLEMENTATIONS)}")
        for lam in self.lams:
            if not (lam > 0 and lam < float("inf")):
                raise ValueError(f"every lambda must be positive and finite, got {lam!r}")
        lo, hi = self.lam_range
        if not 0 < lo < hi:
            raise ValueError(f"lam_range must satisfy 0 < lo < hi, got {self.lam_range}")
        for f in self.fractions:
            if not 0 <= f <= 1:
                raise ValueError(f"pruning fractions must be in [0, 1], got {f}")
        for name in ("runs", "epochs", "batch_size", "lam_samples", "n_pieces", "max_group"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
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
    """The named preset for ``dataset`` with ``overrides`` applied, validated."""
    if dataset not in PRESETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(PRESETS)}")
    if name not in PRESETS[dataset]:
        raise ValueError(f"unknown preset {name!r} for {dataset}; choose one of {sorted(PRESETS[dataset])}")
    values = {"dataset": dataset, **PRESETS[dataset][name]}
    values.update({k: v for k, v in overrides.items() if v is not None})
    fields = {f.name for f in dataclasses.fields(StudyConfig)}
    unknown = set(values) - fields
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(fields)}")
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
        return self.implementation.split("-")[0]

    @property
    def hypernet(self) -> str:
        return self.implementation.split("-")[1]

    @property
    def name(self) -> str:
        lam = "all" if self.lam is None else f"{self.lam:g}"
        return f"{self.implementation}__lam-{lam}__run-{self.run}"

    def seed(self, base: int) -> int:
        """A stable seed of its own: a checksum of the job's name plus the study's base seed."""
        return (zlib.crc32(self.name.encode()) + base) % (2**31 - 1)


def plan_jobs(cfg: StudyConfig) -> list[Job]:
    """All jobs of a study in a fixed order."""
    jobs = []
    for impl in cfg.implementations:
        direct = impl.endswith("-direct")
        for run in range(cfg.runs):
            for lam in cfg.lams if direct else [None]:
                jobs.append(Job(impl, lam, run))
    return jobs


def _shard(jobs: list[Job], shard: tuple[int, int] | None) -> list[Job]:
    if shard is None:
        return jobs
    i, n = shard
    if not (isinstance(n, int) and isinstance(i, int) and n >= 1 and 1 <= i <= n):
        raise ValueError(f"shard must be i/n with 1 <= i <= n, got {i}/{n}")
    return jobs[i - 1 :: n]


def _make_target(cfg: StudyConfig) -> torch.nn.Module:
    return models.mnist_mlp() if cfg.dataset == "mnist" else models.cifar_cnn(cfg.width)


def _make_hypernet(cfg: StudyConfig, kind: str, target: torch.nn.Module, variational: bool) -> Hypernet:
    kw = dict(lam_range=cfg.lam_range, variational=variational, init_log_sigma=cfg.init_log_sigma)
    if kind == "direct":
        return ConstantHypernet(target, **kw)
    if kind == "linear":
        return LinearHypernet(target, **kw)
    return PiecewiseLinearHypernet(target, n_pieces=cfg.n_pieces, **kw)


def _amp_available(cfg: StudyConfig, device: str) -> bool:
    """bfloat16 autocast when the config asks for it and the device is a GPU that has bfloat16."""
    return bool(cfg.amp) and device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def load_data(cfg: StudyConfig, root: str | os.PathLike | None = None, device: str = "cpu"):
    """The study's (train, test) data, subsets applied, on ``device``."""
    loader = data_mod.mnist if cfg.dataset == "mnist" else data_mod.cifar10
    kw = {"input_range": tuple(cfg.input_range)} if cfg.dataset == "mnist" else {}
    train = loader(root, train=True, subset=cfg.train_subset, seed=cfg.seed, **kw)
    test = loader(root, train=False, subset=cfg.test_subset, seed=cfg.seed, **kw)
    return train.to(device), test.to(device)


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


def _sigma_rows(cfg: StudyConfig, job: Job, lam: float, params) -> list[dict]:
    """How far sigma moved from its initial value, per weight tensor, at one lambda."""
    rows = []
    if not params.variational:
        return rows
    var90 = pruning_masks(params, 0.9, "var", "layer")
    mag90 = pruning_masks(params, 0.9, "simple", "layer")
    for n in prunable_names(params):
        ls = params.log_sigma[n].detach().double().flatten()
        q = torch.quantile(ls, torch.tensor([0.05, 0.95], dtype=ls.dtype))
        both = int((var90[n] & mag90[n]).sum())
        rows.append({
            "implementation": job.implementation, "run": job.run, "lam": float(lam), "layer": n,
            "init_log_sigma": cfg.init_log_sigma, "log_sigma_mean": float(ls.mean()),
            "log_sigma_std": float(ls.std()), "log_sigma_q05": float(q[0]), "log_sigma_q95": float(q[1]),
            "mean_abs_mu": float(params.mean[n].detach().abs().mean()),
            "agreement_90": both / max(1, int(var90[n].sum())),
        })  # fmt: skip
    return rows


def _evaluate_job(cfg, job, hypernet, target, train_data, test) -> tuple[list[dict], list[dict]]:
    """Algorithm 2 for one job under every pruning rule: one generated model per lambda.

    Returns the pruning rows (``CSV_COLUMNS``) and the sigma rows (``SIGMA_COLUMNS``).
    """
    rows, sigma_rows = [], []
    lams = [job.lam] if job.lam is not None else cfg.lams
    rules = pruning_rules(cfg, job.loss)
    gen = torch.Generator(device=test.x.device).manual_seed(job.seed(cfg.seed))
    label = {"implementation": job.implementation, "loss": job.loss, "hypernet": job.hypernet, "run": job.run}
    with torch.no_grad():
        for lam in lams:
            params = hypernet(lam)
            sigma_rows += _sigma_rows(cfg, job, lam, params)
            means = layer_input_means(target, params, train_data) if "bias" in cfg.corrections else {}
            for f in cfg.fractions:
                masks_cache: dict[tuple, dict] = {}
                for rule in rules:
                    key = (rule["scope"], rule["criterion"], rule["biases"])
                    if key not in masks_cache:
                        masks_cache[key] = pruning_masks(
                            params, f, rule["criterion"], rule["scope"], biases=rule["biases"] == "pruned"
                        )
                    masks = masks_cache[key]
                    pruned = apply_masks(params, masks)
                    if rule["correction"] == "bias":
                        pruned = correct_biases(params, pruned, masks, means)
                    if rule["evaluation"] == "mc":
                        prob = predict(target, pruned, test, mc_samples=cfg.mc_samples, generator=gen)
                        acc = float((prob.argmax(1) == test.y.to(prob.device)).float().mean())
                    else:
                        acc = accuracy(target, pruned, test)
                    rows.append({**label, "lam": float(lam), **rule, "fraction": float(f), "accuracy": acc})
    return rows, sigma_rows


def _groups(cfg: StudyConfig, jobs: list[Job]) -> list[list[Job]]:
    """Pending jobs of one implementation, in chunks of at most ``max_group``.

    Directly trained models (one lambda sample per step) train together under vmap. A
    hypernetwork draws several lambdas per step and is already batched over them; measured on 2
    CPU cores, a vmapped group of five MNIST hypernetworks cost 4.4-6.7 ms per model and step
    against 4.1-5.1 ms one at a time, so hypernetworks train one at a time.
    """
    by_impl: dict[str, list[Job]] = {}
    for j in jobs:
        by_impl.setdefault(j.implementation, []).append(j)
    out = []
    for js in by_impl.values():
        size = cfg.max_group if js[0].hypernet == "direct" or cfg.lam_samples == 1 else 1
        out.extend(js[i : i + size] for i in range(0, len(js), size))
    return out


def _check_out_dir(out: Path) -> Path:
    out = Path(out)
    try:
        (out / "jobs").mkdir(parents=True, exist_ok=True)
        probe = out / "jobs" / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"cannot write to the output folder {out}: {err.strerror or err}") from None
    return out


def run_study(
    cfg: StudyConfig,
    out: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    shard: tuple[int, int] | None = None,
    device: str | None = None,
    command: str | None = None,
    progress: bool = True,
    save_checkpoints: bool = False,
) -> dict:
    """Run the pending jobs of ``cfg`` (or of one shard), writing one file per job.

    Finished jobs (their file exists with the same config) are skipped. When the study is
    not sharded the results are merged at the end. Returns a summary dict.
    """
    cfg.validate()
    out = _check_out_dir(Path(out))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    cfg_dict = dataclasses.asdict(cfg)
    config_path = out / "config.json"
    if config_path.exists():
        old = json.loads(config_path.read_text())
        if old != json.loads(json.dumps(cfg_dict)):
            raise ValueError(
                f"{out} holds results of a different configuration; use another --out folder or delete "
                f"{config_path} and {out / 'jobs'} to start over"
            )
    else:
        atomic_write(config_path, json.dumps(cfg_dict, indent=2))
    all_jobs = _shard(plan_jobs(cfg), shard)
    pending = [j for j in all_jobs if not (out / "jobs" / f"{j.name}.json").exists()]
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    load_start = load_average()
    t_start = time.perf_counter()
    commit = git_commit()  # the code that runs: taken at the start, before anything can change
    summary = {"total": len(all_jobs), "skipped": len(all_jobs) - len(pending), "ran": 0}
    if pending:
        train_data, test = load_data(cfg, data_root, device)
        if cfg.dataset == "cifar10":
            atomic_write(out / "data_source.txt", f"train: {train_data.name}; test: {test.name}")
        bar = tqdm(total=len(all_jobs), initial=summary["skipped"], desc=f"{cfg.dataset} jobs",
                   disable=not progress, unit="job")  # fmt: skip
        for group in _groups(cfg, pending):
            t0 = time.perf_counter()
            impl = group[0].implementation
            loss, kind = group[0].loss, group[0].hypernet
            nets, target = [], None
            for job in group:
                torch.manual_seed(job.seed(cfg.seed))
                target = _make_target(cfg).to(device)
                nets.append(_make_hypernet(cfg, kind, target, loss != "base").to(device))
            fixed = [j.lam for j in group] if kind == "direct" else None
            histories = train_many(
                nets, target, train_data, loss,
                lams=fixed, lam_prior=None if fixed else LogUniform(*cfg.lam_range),
                seeds=[j.seed(cfg.seed) for j in group], epochs=cfg.epochs, lr=cfg.lr,
                batch_size=cfg.batch_size, lam_samples=cfg.lam_samples, prior_var=cfg.prior_var,
                clip_value=cfg.clip_value, progress=progress, desc=f"{impl} x{len(group)}",
                amp=_amp_available(cfg, device),
            )  # fmt: skip
            train_seconds = (time.perf_counter() - t0) / len(group)
            for job, net, hist in zip(group, nets, histories):
                t1 = time.perf_counter()
                rows, sigma_rows = _evaluate_job(cfg, job, net, target, train_data, test)
                record = {
                    "job": job.name,
                    "seed": job.seed(cfg.seed),
                    "train_seconds": train_seconds,
                    "eval_seconds": time.perf_counter() - t1,
                    "group_size": len(group),
                    "history": hist.as_dict(),
                    "rows": rows,
                    "sigma": sigma_rows,
                }
                if save_checkpoints:
                    (out / "checkpoints").mkdir(exist_ok=True)
                    torch.save(net.state_dict(), out / "checkpoints" / f"{job.name}.pt")
                atomic_write(out / "jobs" / f"{job.name}.json", json.dumps(record))
            summary["ran"] += len(group)
            bar.update(len(group))
        bar.close()
    ended = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    run_info = {
        "command": command or " ".join(sys.argv),
        "shard": None if shard is None else f"{shard[0]}/{shard[1]}",
        "started": started,
        "ended": ended,
        "jobs_ran": summary["ran"],
        "wall_seconds": time.perf_counter() - t_start,
        # The machine's 1, 5 and 15 minute load averages: a study timed alone starts near 0.
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "hardware": hardware(device),
        "bf16_autocast": _amp_available(cfg, device),
        "git_commit": commit,
    }
    if shard is None:
        runs_path = out / "runs.json"
        runs = json.loads(runs_path.read_text()) if runs_path.exists() else []
        atomic_write(runs_path, json.dumps([*runs, run_info], indent=2))
    else:
        # Shards may finish at the same moment on a cluster: each writes a file of its own
        # (no read-modify-write of a shared file); merge collects them.
        (out / "runs").mkdir(exist_ok=True)
        stamp = started.replace(":", "").replace("+", "Z")
        atomic_write(out / "runs" / f"shard-{shard[0]}-of-{shard[1]}-{stamp}.json", json.dumps(run_info, indent=2))
    if shard is None:
        merge(out)
    return summary


def merge(out: str | os.PathLike) -> pd.DataFrame:
    """Combine the job files under ``out/jobs`` into ``pruning.csv`` and ``provenance.json``."""
    out = Path(out)
    config_path = out / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{out} holds no study (no config.json); run a study there first")
    cfg = config_from_json(json.loads(config_path.read_text()))
    rows, sigma_rows, seconds, missing = [], [], {}, []
    for job in plan_jobs(cfg):
        f = out / "jobs" / f"{job.name}.json"
        if not f.exists():
            missing.append(job.name)
            continue
        rec = json.loads(f.read_text())
        rows.extend(_upgrade_rows(rec["rows"], cfg))
        sigma_rows.extend(rec.get("sigma", []))
        seconds[job.name] = {
            "train": rec["train_seconds"],
            "eval": rec["eval_seconds"],
            "group": rec["group_size"],
        }
    df = pd.DataFrame(rows, columns=CSV_COLUMNS).sort_values(
        ["implementation", "lam", "run", *RULE_COLUMNS, "fraction"], kind="stable"
    )
    atomic_write(out / "pruning.csv", df.to_csv(index=False))
    if sigma_rows:
        sig = pd.DataFrame(sigma_rows, columns=SIGMA_COLUMNS).sort_values(["implementation", "lam", "run", "layer"])
        atomic_write(out / "sigma.csv", sig.to_csv(index=False))
    from . import __version__

    runs = _run_records(out)
    lo, hi = cfg.input_range
    data_note = {
        "mnist": f"MNIST, the standard 60,000/10,000 split (byte-exact copy), pixels mapped onto [{lo:g}, {hi:g}]",
        "cifar10": "CIFAR-10; see data_source",
    }[cfg.dataset]
    provenance = {
        "package": "varhyper_mini",
        "package_version": __version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "config": dataclasses.asdict(cfg),
        "data": data_note,
        "runs": runs,
        "command": runs[-1]["command"] if runs else None,
        "git_commit": runs[-1]["git_commit"] if runs else None,
        "started": min((r["started"] for r in runs), default=None),
        "ended": max((r["ended"] for r in runs), default=None),
        "jobs_total": len(plan_jobs(cfg)),
        "jobs_missing": missing,
        "seconds_per_job": seconds,
        "rows": len(df),
    }
    if cfg.dataset == "cifar10":
        provenance["data_source"] = _cifar_source_note(out)
    atomic_write(out / "provenance.json", json.dumps(provenance, indent=2))
    return df


def _run_records(out: Path) -> list[dict]:
    """Every run of a study: ``runs.json`` (unsharded runs) and ``runs/*.json`` (one per shard run), by start."""
    runs = json.loads((out / "runs.json").read_text()) if (out / "runs.json").exists() else []
    runs += (
        [json.loads(f.read_text()) for f in sorted((out / "runs").glob("*.json"))] if (out / "runs").is_dir() else []
    )
    return sorted(runs, key=lambda r: r["started"])


def config_from_json(values: dict) -> StudyConfig:
    """A ``StudyConfig`` from a ``config.json``; configs written before the pruning rules load too.

    Older studies had one ``scope`` and MNIST in [-1, 1]: they become ``scopes=(scope,)``, no
    bias correction and no Monte Carlo rule, which is what they evaluated.
    """
    values = dict(values)
    if "scope" in values:
        values["scopes"] = [values.pop("scope")]
        values.setdefault("corrections", ["none"])
        values.setdefault("mc_samples", 0)
    fields = {f.name for f in dataclasses.fields(StudyConfig)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"config.json has settings this version does not know: {unknown}; known: {sorted(fields)}")
    return StudyConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _upgrade_rows(rows: list[dict], cfg: StudyConfig) -> list[dict]:
    """Rows of job files written before the pruning rules: the paper's rule, named."""
    if not rows or "scope" in rows[0]:
        return rows
    return [
        {**r, "scope": cfg.scopes[0], "criterion": paper_criterion(r["loss"]), "correction": "none",
         "biases": "kept", "evaluation": "mean"}
        for r in rows
    ]  # fmt: skip


def _cifar_source_note(out: Path) -> str:
    note = out / "data_source.txt"
    return note.read_text().strip() if note.exists() else "unknown"


def load_results(name: str, results_dir: str | os.PathLike | None = None) -> tuple[pd.DataFrame, dict]:
    """A committed study's ``pruning.csv`` and ``provenance.json``, e.g. ``load_results("mnist")``."""
    base = Path(results_dir) if results_dir else results_root()
    folder = base / name
    csv = folder / "pruning.csv"
    if not csv.exists():
        raise FileNotFoundError(
            f"no results at {csv}; run `python -m varhyper_mini study {name} --preset paper --out {folder}`"
        )
    prov = json.loads((folder / "provenance.json").read_text())
    df = pd.read_csv(csv)
    if "scope" not in df.columns:  # written before the pruning rules: one rule, the paper's
        cfg = config_from_json(prov["config"])
        df = pd.DataFrame(_upgrade_rows(df.to_dict("records"), cfg), columns=CSV_COLUMNS)
    return df, prov


def load_sigma(name: str, results_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """A committed study's ``sigma.csv``: where log sigma ended up, per weight tensor and lambda.

    Raises ``FileNotFoundError`` for a study that did not record it (older than the rules).
    """
    base = Path(results_dir) if results_dir else results_root()
    csv = base / name / "sigma.csv"
    if not csv.exists():
        raise FileNotFoundError(f"no sigma statistics at {csv}; rerun the study with this version to record them")
    return pd.read_csv(csv)


def select_rule(
    df: pd.DataFrame,
    scope: str = "layer",
    criterion: str = "paper",
    correction: str = "none",
    biases: str = "kept",
    evaluation: str = "mean",
) -> pd.DataFrame:
    """The rows of one pruning rule; ``criterion="paper"`` is |mu|/sigma for L1/L2 and |w| for L3.

    Raises ``ValueError`` when no row matches (for example |mu|/sigma asked of base models only).
    """
    crit = df.loss.map(paper_criterion) if criterion == "paper" else criterion
    keep = (
        (df.scope == scope) & (df.criterion == crit) & (df.correction == correction)
        & (df.biases == biases) & (df.evaluation == evaluation)
    )  # fmt: skip
    out = df[keep]
    if out.empty:
        raise ValueError(
            f"no rows for scope={scope}, criterion={criterion}, correction={correction}, biases={biases}, "
            f"evaluation={evaluation}; this table has {df[RULE_COLUMNS].drop_duplicates().to_dict('records')}"
        )
    return out


def summarise(df: pd.DataFrame, lams: Sequence[float] | None = None, **rule) -> pd.DataFrame:
    """Table 1/2 layout: mean and spread over runs of the accuracy averaged over ``lams``.

    For each implementation and fraction: average the accuracy over lambda within a run,
    then report the mean and standard deviation of that over runs. Rows of one pruning rule
    are used: the paper's by default, or the one ``rule`` names (the arguments of ``select_rule``).
    """
    d = select_rule(df, **rule) if "scope" in df.columns else df
    d = d if lams is None else d[d.lam.isin(list(lams))]
    per_run = d.groupby(["implementation", "loss", "hypernet", "fraction", "run"], as_index=False).accuracy.mean()
    out = per_run.groupby(["implementation", "loss", "hypernet", "fraction"], as_index=False).accuracy.agg(
        ["mean", "std", "count"]
    )
    return out.rename(columns={"mean": "accuracy", "std": "spread", "count": "runs"})


def flops_per_training_image(target: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Floating-point operations of one training pass (forward and backward) per input, counted.

    Uses ``torch.utils.flop_counter`` on a batch of two (the count is per image, so any batch
    size gives the same value). With a device's sustained FLOP/s it gives an images-per-second
    estimate where no measurement is possible.
    """
    from torch.utils.flop_counter import FlopCounterMode

    model = copy.deepcopy(target)
    x = torch.zeros(2, *input_shape)
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        out.float().sum().backward()
    return counter.get_total_flops() / 2


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


def seconds_per_epoch(provenance: dict) -> pd.DataFrame:
    """Training seconds per epoch and evaluation seconds per job, per implementation, from a study's provenance.

    One row per implementation: mean and spread over its jobs of ``train_seconds / epochs`` (a
    job's wall time, including batching and augmentation; for jobs trained together in a vmapped
    group, the group's time divided by its size) and of the evaluation of every pruning rule.
    Raises ``ValueError`` when the provenance has no timed jobs.
    """
    per_job = provenance.get("seconds_per_job") or {}
    if not per_job:
        raise ValueError("this provenance records no job times; it was written before the study finished a job")
    epochs = provenance["config"]["epochs"]
    rows = [
        {"implementation": name.split("__")[0], "epoch": t["train"] / epochs, "eval": t["eval"]}
        for name, t in per_job.items()
    ]
    df = pd.DataFrame(rows)
    out = df.groupby("implementation", sort=False).agg(
        seconds_per_epoch=("epoch", "mean"),
        spread=("epoch", "std"),
        eval_seconds=("eval", "mean"),
        jobs=("epoch", "size"),
    )
    order = [i for i in IMPLEMENTATIONS if i in out.index]
    return out.loc[order].reset_index()


def describe_provenance(provenance: dict) -> str:
    """A study's provenance as a few lines of text: command, commit, versions, data, hardware, wall time and load.

    ``provenance`` is the dict ``load_results`` returns. The wall time is the sum over the
    study's runs (a resumed or sharded study has several; shards that ran side by side count
    each).
    """
    runs = provenance.get("runs") or []
    wall = sum(r.get("wall_seconds", 0.0) for r in runs)
    lines = [
        f"command: {provenance.get('command')}",
        f"commit {provenance.get('git_commit')}; package {provenance.get('package_version')}; "
        f"torch {provenance.get('torch_version')}; Python {provenance.get('python')}",
        f"data: {provenance.get('data_source') or provenance.get('data')}",
        f"{provenance.get('started')} to {provenance.get('ended')}: {len(runs)} run(s), {wall / 60:.1f} min of "
        f"wall time summed over them; jobs missing: {len(provenance.get('jobs_missing', []))}",
    ]
    for r in runs:
        lines.append(
            f"  run {r.get('shard') or 'whole'}: {r.get('jobs_ran')} jobs, {r.get('wall_seconds', 0.0) / 60:.1f} min, "
            f"load average {r.get('load_average_start')} -> {r.get('load_average_end')}, hardware {r.get('hardware')}"
        )
    return "\n".join(lines)
