"""The cost study of chapter 8: one hypernetwork against K directly trained models, and the results it commits.

``run_cost_study`` times one variational hypernetwork G(lambda) (the paper's method) against K
directly trained models at K log-spaced lambdas (the classical recipe), trained one after another
and batched, and writes what each gives (test accuracy, NLL, calibration, prunability, the
selection criteria) into ``results/choosing``, which the chapter "Choosing lambda" reads
(``cost_results``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .._checks import check_lam_range, check_positive_ints
from ..data import TensorData, mnist
from ..evaluation import accuracy, predict
from ..hypernets import ConstantHypernet, Hypernet, PiecewiseLinearHypernet
from ..models import mnist_mlp
from ..provenance import (
    atomic_write,
    check_output_folder,
    git_commit,
    load_average,
    provenance_record,
    results_root,
    seed_from_name,
    utc_now,
)
from ..pruning import prune
from ..training import LogUniform, train, train_many
from .calibration import calibration_table, prediction_metrics
from .choose import CRITERIA, best_from_curve, elbo, lambda_grid
from .compression import compression_ratio, deletable_fraction

__all__ = [
    "CostConfig",
    "COST_PRESETS",
    "CHOOSING_FILES",
    "EVAL_SEEDS",
    "cost_data",
    "train_cost_hypernet",
    "run_cost_study",
]


@dataclass
class CostConfig:
    """Settings of ``run_cost_study``; the defaults are the committed CPU-scale run.

    Data: a stratified ``train_subset`` of the MNIST training set, split into a fit part and
    ``n_val`` validation images; the test set (``test_subset``: None = all 10,000) for the
    curves. One variational piecewise-linear hypernetwork (``n_pieces`` regions, ``lam_samples``
    lambdas per batch, log lambda uniform on ``lam_range``) against directly trained variational
    models at ``K`` log-spaced lambdas for each K in ``ks``, all trained for ``epochs`` epochs
    with the same optimiser settings, each K trained both in a plain loop and batched.
    """

    train_subset: int = 10_000
    n_val: int = 1_000
    test_subset: int | None = None
    epochs: int = 20
    batch_size: int = 256
    lr: float = 5e-4
    lam_samples: int = 5
    n_pieces: int = 5
    lam_range: tuple[float, float] = (1e-3, 1e2)
    ks: tuple[int, ...] = (6, 20)
    mc_samples: int = 5
    elbo_samples: int = 8
    tol: float = 0.01
    calibration_fractions: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9)
    calibration_k: int = 6
    threads: int | None = 1
    seed: int = 0

    def validate(self) -> None:
        """Check every setting; returns None when they are all valid.

        Raises:
            ValueError: the first setting out of range, named: a count (``epochs``, ``batch_size``,
                ``lam_samples``, ``n_pieces``, ``n_val``, ``train_subset``) that is not a positive
                integer, ``n_val`` >= ``train_subset``, ``ks`` not positive integers, a
                ``lam_range`` without 0 < lo < hi < inf, ``threads`` neither None nor a positive integer.
        """
        check_positive_ints(self, ("epochs", "batch_size", "lam_samples", "n_pieces", "n_val", "train_subset"))
        if self.n_val >= self.train_subset:
            raise ValueError(f"n_val ({self.n_val}) must be smaller than train_subset ({self.train_subset})")
        if not self.ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in self.ks):
            raise ValueError(f"ks must be positive integers, got {self.ks!r}")
        check_lam_range(self.lam_range)
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {self.threads!r}")


COST_PRESETS: dict[str, CostConfig] = {
    "cpu": CostConfig(),
    # A tiny slice of the same pipeline, for tests and the chapter's quick mode.
    "quick": CostConfig(
        train_subset=2000,
        n_val=400,
        test_subset=1000,
        epochs=4,
        ks=(3,),
        mc_samples=2,
        elbo_samples=1,
        calibration_fractions=(0.0, 0.5, 0.9),
        calibration_k=3,
    ),  # fmt: skip
}

CHOOSING_FILES = ("cost.csv", "curves.csv", "calibration.csv", "provenance.json")
# Base seeds of the Monte Carlo draws in the cost study's evaluation (lambda i adds i), so that
# ``select_lambda(..., seed=EVAL_SEEDS["hypernetwork"])`` on the study's grid repeats its curves.
EVAL_SEEDS = {"hypernetwork": 1000, "direct": 2000, "calibration": 3000}


def _direct_nets(lams: Sequence[float], cfg: CostConfig) -> list[ConstantHypernet]:
    nets = []
    for lam in lams:
        torch.manual_seed(seed_from_name(f"direct-{lam:.6g}", cfg.seed))
        target = mnist_mlp()
        nets.append(ConstantHypernet(target, lam_range=cfg.lam_range))
    return nets


def _model_rows(label: str, grid: str, hypernet: Hypernet, lams, target, cfg, fit, val, test, seed: int) -> list[dict]:
    rows = []
    dev = hypernet.device
    with torch.no_grad():
        for i, lam in enumerate(lams):
            params = hypernet(lam)
            g = torch.Generator(device=dev).manual_seed(seed + i)
            mean = prediction_metrics(predict(target, params, test), test.y)
            mc = prediction_metrics(predict(target, params, test, mc_samples=cfg.mc_samples, generator=g), test.y)
            valm = prediction_metrics(predict(target, params, val), val.y)
            e = elbo(target, params, fit, cfg.elbo_samples, seed=seed + i)
            d = deletable_fraction(target, params, test, tol=cfg.tol)
            pruned = prune(params, d["fraction"], "var")
            rows.append({
                "model": label, "grid": grid, "lam": float(lam),
                "test_accuracy": mean["accuracy"], "test_nll": mean["nll"], "test_ece": mean["ece"],
                "test_accuracy_mc": mc["accuracy"], "test_nll_mc": mc["nll"], "test_ece_mc": mc["ece"],
                "deletable": d["fraction"], "deletable_accuracy": d["accuracy"],
                "compression_at_deletable": compression_ratio(pruned),
                "val_accuracy": valm["accuracy"], "val_nll": valm["nll"],
                "elbo": e["elbo"], "train_nll": e["nll"], "kl": e["kl"],
            })  # fmt: skip
    return rows


class _Timer:
    """Wall-clock and process CPU seconds of a block (CPU time is what a busy machine cannot inflate)."""

    def __enter__(self) -> _Timer:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0


def cost_data(
    config: CostConfig | None = None, data_root: str | os.PathLike | None = None
) -> tuple[TensorData, TensorData, TensorData]:
    """The cost study's (fit, validation, test) MNIST data, read from ``data_root`` (see ``vh.data.mnist``).

    A stratified subset of ``train_subset`` training images (seed ``config.seed``) is split into a
    fit part and ``n_val`` validation images, carved from the training data; the test data are
    ``test_subset`` images of the test set (None: all 10,000). Images are (N, 1, 28, 28) float32,
    labels (N,) int64. Raises ``ValueError`` for an invalid config and
    ``vh.data.DataNotFoundError`` when MNIST is not found.
    """
    cfg = config or CostConfig()
    cfg.validate()
    full = mnist(data_root, train=True, subset=cfg.train_subset, seed=cfg.seed)
    fit, val = full.split(cfg.n_val, seed=cfg.seed)
    test = mnist(data_root, train=False, subset=cfg.test_subset, seed=cfg.seed)
    return fit, val, test


def train_cost_hypernet(
    config: CostConfig, fit: TensorData, progress: bool = False
) -> tuple[PiecewiseLinearHypernet, nn.Module]:
    """The cost study's hypernetwork, trained on ``fit`` exactly as ``run_cost_study`` trains it.

    A variational piecewise-linear hypernetwork (the paper's eq. 6) for the MNIST perceptron,
    trained on the variational loss L1 (eq. 4) with ``lam_samples`` lambdas per batch drawn
    log-uniformly from ``lam_range``; the initial weights and the batches are seeded from
    ``config.seed``, so one seed gives one replicate. Returns (hypernetwork, target module).
    """
    cfg = config
    seed = seed_from_name("hypernet", cfg.seed)
    torch.manual_seed(seed)
    target = mnist_mlp()
    hyper = PiecewiseLinearHypernet(target, n_pieces=cfg.n_pieces, lam_range=cfg.lam_range)
    train(hyper, target, fit, loss="variational", lam_prior=LogUniform(*cfg.lam_range),
          lam_samples=cfg.lam_samples, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
          seed=seed, progress=progress)  # fmt: skip
    return hyper, target


def run_cost_study(
    out_dir: str | os.PathLike | None = None,
    config: CostConfig | None = None,
    data_root: str | os.PathLike | None = None,
    command: str | None = None,
    progress: bool = False,
) -> dict[str, Path]:
    """Time one hypernetwork against K directly trained models, and compare what they give.

    Measured in one run on one machine (training time only, wall clock):
    the hypernetwork; for each K in ``config.ks``, K direct models trained one after another
    (``vh.train`` in a plain loop) and the same K models trained together (``vh.train_many``).
    The loop and the batched models start from the same initialisation and seeds.

    Writes into ``out_dir`` (default ``results/choosing``), each file atomically:
    ``cost.csv`` (one row per timed training), ``curves.csv`` (test accuracy, NLL, ECE with mean
    weights and MC-averaged, % deletable at <= ``tol`` accuracy loss, validation accuracy/NLL and
    ELBO, for the hypernetwork at every lambda of the grids and for every batched direct model),
    ``calibration.csv`` (hypernetwork: accuracy, NLL, ECE against lambda and % deleted) and
    ``provenance.json`` (the config, the command, the data, the machine, the commit, the
    times). ``config.threads`` sets torch's threads for the run (restored after). Returns the
    paths by file name (``CHOOSING_FILES``). The output folder is checked (not made) before any
    training and made only when the results are written.

    Raises:
        ValueError: an invalid config.
        PermissionError: ``out_dir`` (or a folder above it) is a file, or it cannot be made or written to.
        vh.data.DataNotFoundError: MNIST is not found.
    """

    cfg = config or CostConfig()
    cfg.validate()
    out = check_output_folder(out_dir if out_dir is not None else results_root() / "choosing")  # made at the end
    call = command or f"varhyper_mini.selection.run_cost_study(out_dir={str(out)!r}, config={cfg!r})"
    old_threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    started = utc_now()
    load_start = load_average()
    t_start, cpu_start = time.perf_counter(), time.process_time()
    commit = git_commit()
    try:
        fit, val, test = cost_data(cfg, data_root)
        common = dict(loss="variational", epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                      progress=progress)  # fmt: skip
        cost_rows = []

        # The hypernetwork: one training run covers every lambda of the range.
        with _Timer() as tm:
            hyper, target = train_cost_hypernet(cfg, fit, progress)
        cost_rows.append({"method": "hypernetwork", "k_lams": 0, "models": 1, "seconds": tm.wall,
                          "cpu_seconds": tm.cpu})  # fmt: skip

        grids = {k: lambda_grid(cfg.lam_range, k) for k in cfg.ks}
        direct: dict[int, list[ConstantHypernet]] = {}
        agreement: dict[int, float] = {}
        for k, lams in grids.items():
            seeds = [seed_from_name(f"direct-{lam:.6g}", cfg.seed) for lam in lams]
            loop_nets = _direct_nets(lams, cfg)
            with _Timer() as tm:
                for net, lam, s in zip(loop_nets, lams, seeds):
                    train(net, target, fit, lam=lam, seed=s, **common)
            cost_rows.append({"method": "direct-loop", "k_lams": k, "models": k, "seconds": tm.wall,
                              "cpu_seconds": tm.cpu})  # fmt: skip
            many_nets = _direct_nets(lams, cfg)
            with _Timer() as tm:
                train_many(many_nets, target, fit, lams=list(lams), seeds=seeds, desc=f"direct x{k}", **common)
            cost_rows.append({"method": "direct-batched", "k_lams": k, "models": k, "seconds": tm.wall,
                              "cpu_seconds": tm.cpu})  # fmt: skip
            with torch.no_grad():
                agreement[k] = max(
                    abs(accuracy(target, a(lam), test) - accuracy(target, b(lam), test))
                    for a, b, lam in zip(loop_nets, many_nets, lams)
                )
            direct[k] = many_nets
        train_end = time.perf_counter()

        # What each approach gives, on the same data.
        all_lams = sorted({round(v, 12) for lams in grids.values() for v in lams})
        curve_rows = _model_rows(
            "hypernetwork", "all", hyper, all_lams, target, cfg, fit, val, test, EVAL_SEEDS["hypernetwork"]
        )
        for k, nets in direct.items():
            for i, (net, lam) in enumerate(zip(nets, grids[k])):
                curve_rows += _model_rows(
                    "direct", f"K={k}", net, [lam], target, cfg, fit, val, test, EVAL_SEEDS["direct"] + i
                )
        curves = pd.DataFrame(curve_rows)
        cal_lams = lambda_grid(cfg.lam_range, cfg.calibration_k)
        calibration = calibration_table(
            hyper, target, test, cal_lams, cfg.calibration_fractions, cfg.mc_samples, seed=EVAL_SEEDS["calibration"]
        )
        calibration.insert(0, "model", "hypernetwork")

        cost = pd.DataFrame(cost_rows)
        cost["epochs"] = cfg.epochs
        hyper_row = cost.iloc[0]
        cost["seconds_per_model"] = cost.seconds / cost.models
        cost["ratio_to_hypernetwork"] = cost.seconds / hyper_row.seconds
        cost["cpu_ratio_to_hypernetwork"] = cost.cpu_seconds / hyper_row.cpu_seconds
        cost["max_accuracy_diff_loop_vs_batched"] = [
            agreement.get(k) if m == "direct-batched" else None for m, k in zip(cost.method, cost.k_lams)
        ]
        selections = {c: best_from_curve(curves[curves.model == "hypernetwork"], c) for c in CRITERIA}
    finally:
        torch.set_num_threads(old_threads)
    provenance = provenance_record(call, started, commit=commit, device="cpu", load_average_start=load_start)
    provenance["hardware"]["torch_threads"] = cfg.threads or old_threads  # the run's, not the restored count
    provenance |= {
        "function": "varhyper_mini.selection.run_cost_study",
        "config": dataclasses.asdict(cfg),
        "scale_note": (
            f"Reduced CPU scale: a stratified subset of the MNIST training set ({len(fit)} images to fit, "
            f"{len(val)} for validation), {len(test)} test images, {cfg.epochs} epochs for every model, "
            "one run. The paper uses 60000 training images, 50 epochs and 5 runs."
        ),
        "data": {
            "fit": fit.name,
            "validation": val.name,
            "test": test.name,
            "n_fit": len(fit),
            "n_val": len(val),
            "n_test": len(test),
        },  # fmt: skip
        "timing": (
            "training calls only, one after another in one process: 'seconds' is wall clock, "
            "'cpu_seconds' the process CPU time (with one thread, the compute actually spent; on a "
            "busy machine the wall clock also counts time spent waiting for a core)"
        ),
        "elbo_estimate": (
            f"ELBO at lambda = 1 on the fit split: -N*nll - KL(q||N(0,1)), nll averaged over "
            f"{cfg.elbo_samples} Monte Carlo weight draws"
            if cfg.elbo_samples
            else "ELBO at lambda = 1 on the fit split, nll at the mean weights (plug-in)"
        ),
        "selections_on_hypernetwork": selections,
        "train_seconds": train_end - t_start,
        "cpu_seconds": time.process_time() - cpu_start,
        "wall_seconds": time.perf_counter() - t_start,
    }
    texts = {
        "cost.csv": cost.to_csv(index=False),
        "curves.csv": curves.to_csv(index=False),
        "calibration.csv": calibration.to_csv(index=False),
        "provenance.json": json.dumps(provenance, indent=2),
    }
    paths = {}
    check_output_folder(out, create=True)
    for name, text in texts.items():
        atomic_write(out / name, text)  # readers see the old file or the new one, never a part
        paths[name] = out / name
    return paths
