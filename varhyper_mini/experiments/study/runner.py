"""Running a study: train each pending job, evaluate it under every pruning rule, write it atomically; merge.

Each job writes its rows to ``<out>/jobs/<job>.json`` atomically, so an interrupted study resumes
where it stopped, and ``--shard i/n`` splits it over machines. ``merge`` combines the job files
into ``pruning.csv``, ``sigma.csv`` and ``provenance.json``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from ... import data as data_mod
from ... import models
from ...evaluation import accuracy, predict
from ...hypernets import ConstantHypernet, Hypernet, LinearHypernet, PiecewiseLinearHypernet
from ...provenance import atomic_write, check_output_folder, git_commit, hardware, load_average, provenance_record
from ...pruning import (
    apply_masks,
    correct_biases,
    layer_input_means,
    prunable_names,
    pruning_masks,
)
from ...training import LogUniform, train_many
from .config import (
    CSV_COLUMNS,
    RULE_COLUMNS,
    SIGMA_COLUMNS,
    Job,
    StudyConfig,
    config_from_json,
    departures_from_paper,
    plan_jobs,
    pruning_rules,
    upgrade_rows,
)

__all__ = ["load_data", "run_study", "merge"]


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

    Every setting, the shard, the output folder and the data are checked before anything is
    written into ``out``: a refused call leaves it as it was.

    Raises:
        ValueError: ``cfg`` does not validate, ``shard`` is not (i, n) with 1 <= i <= n, or ``out``
            holds results of another configuration.
        PermissionError: the output folder (or a folder above it) is a file, or it cannot be
            created or written to.
        DataNotFoundError: the dataset is not under ``data_root`` and cannot be downloaded.
    """
    # Every check that can refuse the run comes before the first write into ``out``: a refused
    # command leaves the folder as it was (or absent), so the corrected command can run there.
    cfg.validate()
    all_jobs = _shard(plan_jobs(cfg), shard)
    out = check_output_folder(out)
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
    pending = [j for j in all_jobs if not (out / "jobs" / f"{j.name}.json").exists()]
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    load_start = load_average()
    t_start = time.perf_counter()
    commit = git_commit()  # the code that runs: taken at the start, before anything can change
    summary = {"total": len(all_jobs), "skipped": len(all_jobs) - len(pending), "ran": 0}
    train_data = test = None
    if pending:  # missing data is refused here, before the folder is made
        train_data, test = load_data(cfg, data_root, device)
    check_output_folder(out / "jobs", create=True)
    if not config_path.exists():
        atomic_write(config_path, json.dumps(cfg_dict, indent=2))
    if pending:
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
    """Combine the job files under ``out/jobs`` into ``pruning.csv`` and ``provenance.json``.

    Jobs without a file are listed in the provenance's ``jobs_missing``. Returns the merged table.

    Raises:
        FileNotFoundError: ``out`` holds no study (no ``config.json``).
    """
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
        rows.extend(upgrade_rows(rec["rows"], cfg))
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
    runs = _run_records(out)
    lo, hi = cfg.input_range
    data_note = {
        "mnist": f"MNIST, the standard 60,000/10,000 split (byte-exact copy), pixels mapped onto [{lo:g}, {hi:g}]",
        "cifar10": "CIFAR-10; see data_source",
    }[cfg.dataset]
    provenance = provenance_record(
        runs[-1]["command"] if runs else None,
        min((r["started"] for r in runs), default=None),
        max((r["ended"] for r in runs), default=None),
        commit=runs[-1]["git_commit"] if runs else "unknown",
    )
    provenance |= {
        "config": dataclasses.asdict(cfg),
        "data": data_note,
        "runs": runs,
        "jobs_total": len(plan_jobs(cfg)),
        "jobs_missing": missing,
        "seconds_per_job": seconds,
        "rows": len(df),
        "departures_from_paper": departures_from_paper(cfg),
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


def _cifar_source_note(out: Path) -> str:
    note = out / "data_source.txt"
    return note.read_text().strip() if note.exists() else "unknown"
