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
import subprocess
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
from .hypernets import ConstantHypernet, Hypernet, LinearHypernet, PiecewiseLinearHypernet
from .losses import LOSSES
from .prune import FRACTIONS, pruning_curve
from .train import LogUniform, train_many

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
    "summarise",
    "load_data",
    "training_passes",
]

HYPERNETS = ("direct", "linear", "piecewise")
IMPLEMENTATIONS = tuple(f"{loss}-{h}" for loss in LOSSES for h in HYPERNETS)
# The paper's letters (a)-(i) of section 4.2, in its order.
LETTERS = dict(zip(IMPLEMENTATIONS, "abcdefghi"))
CSV_COLUMNS = ["implementation", "loss", "hypernet", "lam", "run", "fraction", "accuracy"]


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
    scope: str = "layer"
    seed: int = 0
    max_group: int = 30

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
        # The paper's network and pipeline at a scale that 2 CPU cores finish in well under an
        # hour: a stratified subset, few epochs, two runs and one lambda sample per batch.
        "cpu": {
            "dataset": "cifar10",
            "lams": (0.01, 0.1, 1.0),
            "lam_range": (0.01, 1.0),
            "runs": 2,
            "epochs": 2,
            "train_subset": 600,
            "test_subset": 300,
            "lam_samples": 1,
            "max_group": 1,  # a vmapped CNN group needs far more memory and was not faster on CPU
        },
        "quick": {
            "dataset": "cifar10",
            "implementations": ("variational-direct", "variational-linear", "base-piecewise"),
            "lams": (0.01, 1.0),
            "lam_range": (0.01, 1.0),
            "fractions": (0.0, 0.9),
            "runs": 1,
            "epochs": 1,
            "train_subset": 200,
            "test_subset": 200,
            "batch_size": 64,
            "lam_samples": 2,
            "max_group": 2,
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
    for key in ("implementations", "lams", "fractions", "lam_range"):
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


def _make_target(dataset: str) -> torch.nn.Module:
    return models.mnist_mlp() if dataset == "mnist" else models.cifar_cnn()


def _make_hypernet(cfg: StudyConfig, kind: str, target: torch.nn.Module, variational: bool) -> Hypernet:
    kw = dict(lam_range=cfg.lam_range, variational=variational, init_log_sigma=cfg.init_log_sigma)
    if kind == "direct":
        return ConstantHypernet(target, **kw)
    if kind == "linear":
        return LinearHypernet(target, **kw)
    return PiecewiseLinearHypernet(target, n_pieces=cfg.n_pieces, **kw)


def load_data(cfg: StudyConfig, root: str | os.PathLike | None = None, device: str = "cpu"):
    """The study's (train, test) data, subsets applied, on ``device``."""
    loader = data_mod.mnist if cfg.dataset == "mnist" else data_mod.cifar10
    train = loader(root, train=True, subset=cfg.train_subset, seed=cfg.seed)
    test = loader(root, train=False, subset=cfg.test_subset, seed=cfg.seed)
    return train.to(device), test.to(device)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _git_commit() -> str:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "."], cwd=here, capture_output=True, text=True
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _hardware(device: str) -> dict:
    info = {
        "device": device,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _evaluate_job(cfg, job, hypernet, target, test) -> list[dict]:
    """Algorithm 2 for one job: ``pruning_curve`` at the job's lambdas, labelled with the job."""
    criterion = "simple" if job.loss == "base" else "var"
    lams = [job.lam] if job.lam is not None else cfg.lams
    curve = pruning_curve(hypernet, target, test, lams, cfg.fractions, criterion, cfg.scope)
    curve = curve.assign(implementation=job.implementation, loss=job.loss, hypernet=job.hypernet, run=job.run)
    return curve[CSV_COLUMNS].to_dict("records")


def _groups(cfg: StudyConfig, jobs: list[Job]) -> list[list[Job]]:
    """Pending jobs of one implementation, in chunks of at most ``max_group``."""
    by_impl: dict[str, list[Job]] = {}
    for j in jobs:
        by_impl.setdefault(j.implementation, []).append(j)
    out = []
    for js in by_impl.values():
        out.extend(js[i : i + cfg.max_group] for i in range(0, len(js), cfg.max_group))
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
        _atomic_write(config_path, json.dumps(cfg_dict, indent=2))
    all_jobs = _shard(plan_jobs(cfg), shard)
    pending = [j for j in all_jobs if not (out / "jobs" / f"{j.name}.json").exists()]
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    commit = _git_commit()  # the code that runs: taken at the start, before anything can change
    summary = {"total": len(all_jobs), "skipped": len(all_jobs) - len(pending), "ran": 0}
    if pending:
        train_data, test = load_data(cfg, data_root, device)
        if cfg.dataset == "cifar10":
            _atomic_write(out / "data_source.txt", f"train: {train_data.name}; test: {test.name}")
        bar = tqdm(total=len(all_jobs), initial=summary["skipped"], desc=f"{cfg.dataset} jobs",
                   disable=not progress, unit="job")  # fmt: skip
        for group in _groups(cfg, pending):
            t0 = time.perf_counter()
            impl = group[0].implementation
            loss, kind = group[0].loss, group[0].hypernet
            nets, target = [], None
            for job in group:
                torch.manual_seed(job.seed(cfg.seed))
                target = _make_target(cfg.dataset).to(device)
                nets.append(_make_hypernet(cfg, kind, target, loss != "base").to(device))
            fixed = [j.lam for j in group] if kind == "direct" else None
            histories = train_many(
                nets, target, train_data, loss,
                lams=fixed, lam_prior=None if fixed else LogUniform(*cfg.lam_range),
                seeds=[j.seed(cfg.seed) for j in group], epochs=cfg.epochs, lr=cfg.lr,
                batch_size=cfg.batch_size, lam_samples=cfg.lam_samples, prior_var=cfg.prior_var,
                clip_value=cfg.clip_value, progress=progress, desc=f"{impl} x{len(group)}",
            )  # fmt: skip
            train_seconds = (time.perf_counter() - t0) / len(group)
            for job, net, hist in zip(group, nets, histories):
                t1 = time.perf_counter()
                rows = _evaluate_job(cfg, job, net, target, test)
                record = {
                    "job": job.name,
                    "seed": job.seed(cfg.seed),
                    "train_seconds": train_seconds,
                    "eval_seconds": time.perf_counter() - t1,
                    "group_size": len(group),
                    "history": hist.as_dict(),
                    "rows": rows,
                }
                if save_checkpoints:
                    (out / "checkpoints").mkdir(exist_ok=True)
                    torch.save(net.state_dict(), out / "checkpoints" / f"{job.name}.pt")
                _atomic_write(out / "jobs" / f"{job.name}.json", json.dumps(record))
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
        "hardware": _hardware(device),
        "git_commit": commit,
    }
    runs_path = out / "runs.json"
    runs = json.loads(runs_path.read_text()) if runs_path.exists() else []
    _atomic_write(runs_path, json.dumps([*runs, run_info], indent=2))
    if shard is None:
        merge(out)
    return summary


def merge(out: str | os.PathLike) -> pd.DataFrame:
    """Combine the job files under ``out/jobs`` into ``pruning.csv`` and ``provenance.json``."""
    out = Path(out)
    config_path = out / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{out} holds no study (no config.json); run a study there first")
    cfg = StudyConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(config_path.read_text()).items()}
    )
    rows, seconds, missing = [], {}, []
    for job in plan_jobs(cfg):
        f = out / "jobs" / f"{job.name}.json"
        if not f.exists():
            missing.append(job.name)
            continue
        rec = json.loads(f.read_text())
        rows.extend(rec["rows"])
        seconds[job.name] = {
            "train": rec["train_seconds"],
            "eval": rec["eval_seconds"],
            "group": rec["group_size"],
        }
    df = pd.DataFrame(rows, columns=CSV_COLUMNS).sort_values(["implementation", "lam", "run", "fraction"])
    _atomic_write(out / "pruning.csv", df.to_csv(index=False))
    from . import __version__

    runs = json.loads((out / "runs.json").read_text()) if (out / "runs.json").exists() else []
    data_note = {
        "mnist": "MNIST, the standard 60,000/10,000 split (byte-exact copy)",
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
    _atomic_write(out / "provenance.json", json.dumps(provenance, indent=2))
    return df


def _cifar_source_note(out: Path) -> str:
    note = out / "data_source.txt"
    return note.read_text().strip() if note.exists() else "unknown"


def load_results(name: str, results_dir: str | os.PathLike | None = None) -> tuple[pd.DataFrame, dict]:
    """A committed study's ``pruning.csv`` and ``provenance.json``, e.g. ``load_results("mnist")``."""
    base = Path(results_dir) if results_dir else _results_root()
    folder = base / name
    csv = folder / "pruning.csv"
    if not csv.exists():
        raise FileNotFoundError(
            f"no results at {csv}; run `python -m varhyper_mini study {name} --preset paper --out {folder}`"
        )
    prov = json.loads((folder / "provenance.json").read_text())
    return pd.read_csv(csv), prov


def _results_root() -> Path:
    """``results/`` of a checkout, else the copy shipped inside the installed package."""
    env = os.environ.get("VARHYPER_RESULTS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for cand in (here.parent / "results", here / "results"):
        if (cand / "paper" / "paper_tables.csv").is_file():  # ours, not another package's folder
            return cand
    return here.parent / "results"


def summarise(df: pd.DataFrame, lams: Sequence[float] | None = None) -> pd.DataFrame:
    """Table 1/2 layout: mean and spread over runs of the accuracy averaged over ``lams``.

    For each implementation and fraction: average the accuracy over lambda within a run,
    then report the mean and standard deviation of that over runs.
    """
    d = df if lams is None else df[df.lam.isin(list(lams))]
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
