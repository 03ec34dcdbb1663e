"""The whole Wine experiment: train every model, then measure them into three tables.

``run_wine_experiment`` trains (``training``) and evaluates: the accuracy and the symmetrised KL
to the direct model of every model of Figure 3 (``sym_kl.csv``), Theorem 2's expected loss gap and
pruning-score distance (``theorem2.csv``), and the pruning curves (``pruning.csv``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from ... import data as data_mod
from ...data import TensorData
from ...evaluation import accuracy
from ...hypernets import ConstantHypernet, Hypernet
from ...provenance import load_average, utc_now
from ...pruning import pruning_curve
from ..metrics import expected_loss, relevance_distance, sym_kl_float64
from .config import CSV_COLUMNS, WineConfig, lam_key, model_name, model_seed, run_target
from .training import finetune_and_scratch, train_direct, train_hypernets

__all__ = ["WineResults", "run_wine_experiment"]


@dataclass
class WineResults:
    """Everything ``run_wine_experiment`` computes.

    Attributes:
        config: the settings it ran with.
        table: the rows of ``sym_kl.csv`` (columns ``CSV_COLUMNS``): accuracy on the test set
            (a fraction in [0, 1]) and D(q1, q2) in nats to the direct model of the same lambda and run.
        theorem2: per hypernetwork N, run and lambda of ``cfg.gap_lams``: the expected loss
            (nats per example) of G(lambda) and of the direct model, their gap (absolute, and
            relative to the direct model's loss), the distance of the pruning scores and D_KL.
        pruning: pruning curves: model, n_pieces, run, lam, fraction, accuracy.
        seconds: wall time of each phase (direct, hypernets, finetune_and_scratch, evaluation, total).
        direct, hypernets, finetuned, scratch: the trained models, keyed by ``(lam, run)``,
            ``(n_pieces, run)``, ``(n_pieces, lam, run)`` and ``(lam, run)``.
        target: a module of the right shape, to run any of them with.
        started, ended: when the run began and finished (``provenance.utc_now`` stamps; None
            for results put together by hand).
        load_average_start: the machine's load averages when the run began (``provenance.load_average``).
    """

    config: WineConfig
    table: pd.DataFrame
    theorem2: pd.DataFrame
    pruning: pd.DataFrame
    seconds: dict[str, float]
    direct: dict[tuple[float, int], ConstantHypernet]
    hypernets: dict[tuple[int, int], Hypernet]
    finetuned: dict[tuple[int, float, int], ConstantHypernet]
    scratch: dict[tuple[float, int], ConstantHypernet]
    target: nn.Module
    started: str | None = None
    ended: str | None = None
    load_average_start: list[float] | None = None


def _direct_at(direct: dict, lam: float, run: int) -> ConstantHypernet:
    key = lam_key(lam)
    for (dl, dr), net in direct.items():
        if dr == run and lam_key(dl) == key:
            return net
    raise KeyError(f"no direct model at lambda={lam:g}, run={run}")


def _sym_kl_rows(cfg, target, test, direct, hypernets, finetuned, scratch) -> list[dict]:
    rows = []

    def add(model, n, lam, run, stage, params, reference):
        d = 0.0 if reference is None else sym_kl_float64(params, reference)
        acc = accuracy(target, params, test)
        rows.append(dict(model=model, n_pieces=n, lam=float(lam), run=run, stage=stage, accuracy=acc, sym_kl=d))

    with torch.no_grad():
        for run in range(cfg.runs):
            for lam in cfg.lams:
                q2 = _direct_at(direct, lam, run)(lam)
                add("direct", 0, lam, run, "trained", q2, None)
                add("scratch", 0, lam, run, "scratch1", scratch[(lam, run)](lam), q2)
                for n in cfg.pieces:
                    add(model_name(n), n, lam, run, "trained", hypernets[(n, run)](lam), q2)
                    add(model_name(n), n, lam, run, "finetuned", finetuned[(n, lam, run)](lam), q2)
    return rows


def _theorem2_rows(cfg, target, train_data, direct, hypernets) -> list[dict]:
    rows = []
    with torch.no_grad():
        for run in range(cfg.runs):
            for lam in cfg.gap_lams:
                q2 = _direct_at(direct, lam, run)(lam)
                seed = model_seed(cfg, f"loss__lam-{lam:g}__run-{run}")
                kw = dict(n_train=len(train_data), prior_var=cfg.prior_var, samples=cfg.loss_samples, seed=seed)
                l_direct = expected_loss(target, q2, train_data, lam, **kw)
                for n in cfg.pieces:
                    q1 = hypernets[(n, run)](lam)
                    l_hyper = expected_loss(target, q1, train_data, lam, **kw)
                    rows.append(
                        dict(
                            n_pieces=n, run=run, lam=float(lam), loss_hyper=l_hyper, loss_direct=l_direct,
                            gap=l_hyper - l_direct, rel_gap=(l_hyper - l_direct) / l_direct,
                            g_distance=relevance_distance(q1, q2),
                            sym_kl=sym_kl_float64(q1, q2),
                        )
                    )  # fmt: skip
    return rows


def _pruning_rows(cfg, target, test, direct, hypernets) -> pd.DataFrame:
    frames = []
    for run in range(cfg.runs):
        for n in cfg.pieces:
            d = pruning_curve(hypernets[(n, run)], target, test, cfg.lams, cfg.fractions)
            frames.append(d.assign(model=model_name(n), n_pieces=n, run=run))
        for lam in cfg.lams:
            d = pruning_curve(_direct_at(direct, lam, run), target, test, [lam], cfg.fractions)
            frames.append(d.assign(model="direct", n_pieces=0, run=run))
    out = pd.concat(frames, ignore_index=True)
    return out[["model", "n_pieces", "run", "lam", "fraction", "accuracy"]]


def run_wine_experiment(
    cfg: WineConfig | None = None,
    data: tuple[TensorData, TensorData] | None = None,
    progress: bool = True,
) -> WineResults:
    """The whole section 4.1 experiment (Figure 3) and the Theorem 2 measurements.

    1. Directly trained variational logistic regressions at every lambda of ``cfg.direct_lams``,
       for ``cfg.runs`` runs (the reference posteriors q2).
    2. Hypernetworks trained with log lambda uniform on Lambda: linear (eq. (12), N = 1) and
       piecewise-linear (eq. (13)) with N regions, each N of ``cfg.pieces``.
    3. For every hypernetwork, lambda of ``cfg.lams`` and run: the test accuracy of G(lambda) and
       D(q1, q2) = KL(q1 || q2) + KL(q2 || q1) to the direct model of the same lambda and run;
       the same after fine-tuning G(lambda) for ``cfg.finetune_epochs`` epochs at that lambda;
       and, as a baseline, a model trained from scratch for as long.
    4. Theorem 2: the expected loss gap E_lambda[L(G(lambda)) - L(w*(lambda))] over
       ``cfg.gap_lams``, the distance between the pruning scores g(w) = |mu| / sigma (eq. (17)),
       and the pruning curves at ``cfg.fractions``.

    ``cfg`` defaults to ``WineConfig()`` (the paper's settings: a few minutes on a 2-core CPU,
    441 s for the committed results). ``data`` is (train, test); by default ``data.wine()``, the paper's 142/36 split.
    Raises ``ValueError`` for a bad configuration (``WineConfig.validate``) before training.
    """
    cfg = WineConfig() if cfg is None else cfg
    cfg.validate()
    started, load_start = utc_now(), load_average()
    train_data, test = data_mod.wine() if data is None else data
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    direct = train_direct(cfg, train_data, progress=progress)
    seconds["direct"] = time.perf_counter() - t0
    t = time.perf_counter()
    hypernets = train_hypernets(cfg, train_data, progress=progress)
    seconds["hypernets"] = time.perf_counter() - t
    t = time.perf_counter()
    finetuned, scratch = finetune_and_scratch(cfg, train_data, hypernets, progress=progress)
    seconds["finetune_and_scratch"] = time.perf_counter() - t
    t = time.perf_counter()
    target = run_target(cfg, 0)
    table = pd.DataFrame(_sym_kl_rows(cfg, target, test, direct, hypernets, finetuned, scratch), columns=CSV_COLUMNS)
    theorem2 = pd.DataFrame(_theorem2_rows(cfg, target, train_data, direct, hypernets))
    pruning = _pruning_rows(cfg, target, test, direct, hypernets)
    seconds["evaluation"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    return WineResults(
        cfg, table, theorem2, pruning, seconds, direct, hypernets, finetuned, scratch, target,
        started=started, ended=utc_now(), load_average_start=load_start,
    )  # fmt: skip
