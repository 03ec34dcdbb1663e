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
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import data as data_mod
from . import losses, models
from .data import TensorData
from .gaussian import GaussianParams
from .hypernets import ConstantHypernet, Hypernet, LinearHypernet, PiecewiseLinearHypernet
from .provenance import atomic_write, hardware, results_root
from .provenance import git_commit as current_commit
from .prune import FRACTIONS, pruning_curve, relevance
from .theory import sym_kl
from .train import LogUniform, accuracy, train, train_many

__all__ = [
    "WineConfig",
    "WineResults",
    "PaddedPiecewiseHypernet",
    "CSV_COLUMNS",
    "STAGES",
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
    "config_from_provenance",
    "train_direct_loop",
    "results_dir",
    "time_vectorised",
    "plot_figure3",
    "plot_theorem2",
    "plot_pruning_curves",
]

CSV_COLUMNS = ["model", "n_pieces", "lam", "run", "stage", "accuracy", "sym_kl"]
STAGES = ("trained", "finetuned", "scratch1")


def _half_decades() -> tuple[float, ...]:
    return tuple(float(10 ** (2 + 0.5 * i)) for i in range(9))


@dataclass
class WineConfig:
    """Every setting of the Wine experiment; the defaults are the paper's section 4.1.

    Attributes:
        lams: the lambdas of Figure 3 (direct models, accuracies, D_KL, fine-tuning).
        gap_lams: the lambdas over which the expected loss gap of Theorem 2 is averaged
            (a grid even in log lambda, so its mean approximates E over log-uniform lambda).
            Direct models are trained at ``lams`` and ``gap_lams`` together.
        lam_range: Lambda, the hypernetworks' training range (log-uniform prior).
        pieces: the piecewise-linear hypernetworks' numbers of regions N; N = 1 is the
            linear hypernetwork of eq. (12).
        runs: independent repetitions (own init, data order, lambda draws, noise).
        epochs, batch_size, lr: Adam training of every model (paper: 200, 1, 5e-4).
        lam_samples: lambdas drawn per batch for the hypernetworks (authors' code: 5).
        finetune_epochs: epochs of fine-tuning at fixed lambda, and of the from-scratch baseline.
        loss_samples: Monte Carlo draws of w ~ q for the expected loss of Theorem 2.
        fractions: pruning fractions of the pruning curves.
    """

    lams: tuple[float, ...] = (1e2, 1e3, 1e4, 1e5, 1e6)
    gap_lams: tuple[float, ...] = field(default_factory=_half_decades)
    lam_range: tuple[float, float] = (1e2, 1e6)
    pieces: tuple[int, ...] = (1, 2, 3, 5, 8)
    runs: int = 5
    epochs: int = 200
    batch_size: int = 1
    lr: float = 5e-4
    lam_samples: int = 5
    finetune_epochs: int = 1
    init_log_sigma: float = -3.0
    prior_var: float = 1.0
    clip_value: float | None = 1.0
    loss_samples: int = 512
    fractions: tuple[float, ...] = FRACTIONS
    seed: int = 0

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        lo, hi = self.lam_range
        if not 0 < lo < hi < math.inf:
            raise ValueError(f"lam_range must satisfy 0 < lo < hi < inf, got {self.lam_range}")
        for name in ("lams", "gap_lams"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name} must not be empty")
            for lam in values:
                if not lo * (1 - 1e-9) <= lam <= hi * (1 + 1e-9):
                    raise ValueError(f"every lambda of {name} must lie in lam_range {self.lam_range}, got {lam}")
        if not self.pieces or len(set(self.pieces)) != len(self.pieces):
            raise ValueError(f"pieces must be distinct positive integers, got {self.pieces!r}")
        for n in self.pieces:
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"pieces must be distinct positive integers, got {self.pieces!r}")
        for name in ("runs", "epochs", "batch_size", "lam_samples", "finetune_epochs", "loss_samples"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        for f in self.fractions:
            if not 0 <= f <= 1:
                raise ValueError(f"pruning fractions must be in [0, 1], got {f}")

    @property
    def direct_lams(self) -> tuple[float, ...]:
        """``lams`` and ``gap_lams`` together, sorted, without duplicates."""
        out: dict[float, float] = {}
        for lam in (*self.lams, *self.gap_lams):
            out.setdefault(_lam_key(lam), float(lam))
        return tuple(out[k] for k in sorted(out))


def _lam_key(lam: float) -> float:
    """A key that matches lambdas equal up to rounding (e.g. read back from a CSV)."""
    return round(math.log10(float(lam)), 6)


def model_name(n_pieces: int) -> str:
    """The CSV's model name of a hypernetwork with ``n_pieces`` regions."""
    return "linear" if n_pieces == 1 else "piecewise"


def _seed(cfg: WineConfig, name: str) -> int:
    """A stable seed of its own for every model: a checksum of its name plus the base seed."""
    return (zlib.crc32(name.encode()) + cfg.seed) % (2**31 - 1)


def run_target(cfg: WineConfig, run: int) -> nn.Module:
    """The logistic regression 13 -> 3 whose init all models of ``run`` start from."""
    with torch.random.fork_rng():
        torch.manual_seed(_seed(cfg, f"init__run-{run}"))
        return models.wine_logreg()


class PaddedPiecewiseHypernet(Hypernet):
    """A piecewise-linear hypernetwork (eq. (13)) with N regions, stored with room for more.

    It keeps ``max_pieces + 1`` knot rows, of which the first ``n_pieces + 1`` are used; N is
    a buffer, so hypernetworks of different N have the same shapes and ``train_many`` can
    stack them. The unused rows get a zero weight, hence a zero gradient, and Adam leaves
    them as they are; the produced parameters, the losses and the training are those of
    ``PiecewiseLinearHypernet(n_pieces)`` (``LinearHypernet`` for N = 1). ``to_hypernet``
    returns that plain form.
    """

    def __init__(self, target: nn.Module, n_pieces: int, max_pieces: int, **kwargs) -> None:
        for name, v in (("n_pieces", n_pieces), ("max_pieces", max_pieces)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if n_pieces > max_pieces:
            raise ValueError(f"n_pieces ({n_pieces}) must not exceed max_pieces ({max_pieces})")
        super().__init__(target, **kwargs)
        self.n_pieces, self.max_pieces = n_pieces, max_pieces
        self.register_buffer("pieces", torch.tensor(float(n_pieces)))
        self.mean_knots = nn.Parameter(self.initial_mean(target).repeat(max_pieces + 1, 1))
        ls = self.initial_log_sigma().repeat(max_pieces + 1, 1)
        self.log_sigma_knots = nn.Parameter(ls) if self.variational else None

    def knot_weights(self, u: Tensor) -> Tensor:
        """W(u), shape (k, max_pieces + 1); the same formula as ``PiecewiseLinearHypernet``."""
        n = self.pieces.to(u.dtype)
        t = (u * n).unsqueeze(-1)
        left = torch.minimum(torch.clamp(torch.floor(t), min=0), n - 1)
        frac = t - left
        j = torch.arange(self.max_pieces + 1, device=u.device, dtype=u.dtype)
        return (1 - frac) * (j == left).to(u.dtype) + frac * (j == left + 1).to(u.dtype)

    def flat_params(self, u: Tensor) -> tuple[Tensor, Tensor | None]:
        w = self.knot_weights(u).to(self.mean_knots.dtype)
        mean = w @ self.mean_knots
        return mean, None if self.log_sigma_knots is None else w @ self.log_sigma_knots

    def to_hypernet(self, target: nn.Module) -> Hypernet:
        """The same map as a plain ``LinearHypernet`` (N = 1) or ``PiecewiseLinearHypernet``."""
        kw = dict(lam_range=self.lam_range, variational=self.variational, init_log_sigma=self.init_log_sigma)
        n = self.n_pieces
        if n == 1:
            out: Hypernet = LinearHypernet(target, **kw)
            names = ("mean_ends", "log_sigma_ends")
        else:
            out = PiecewiseLinearHypernet(target, n_pieces=n, **kw)
            names = ("mean_knots", "log_sigma_knots")
        out = out.to(self.mean_knots.device)
        with torch.no_grad():
            getattr(out, names[0]).copy_(self.mean_knots[: n + 1])
            if self.variational:
                getattr(out, names[1]).copy_(self.log_sigma_knots[: n + 1])
        return out

    def extra_repr(self) -> str:
        return f"n_pieces={self.n_pieces}, max_pieces={self.max_pieces}, " + super().extra_repr()


def _train_kwargs(cfg: WineConfig, data: TensorData, progress: bool) -> dict:
    return dict(
        loss="variational", lr=cfg.lr, batch_size=cfg.batch_size, n_train=len(data),
        prior_var=cfg.prior_var, clip_value=cfg.clip_value, progress=progress,
    )  # fmt: skip


def train_direct(
    cfg: WineConfig,
    data: TensorData,
    lams: Sequence[float] | None = None,
    epochs: int | None = None,
    progress: bool = True,
) -> dict[tuple[float, int], ConstantHypernet]:
    """Directly trained models (eq. (9)) at every lambda and run, in one vectorised loop.

    Returns a dict keyed by ``(lam, run)``. ``lams`` defaults to ``cfg.direct_lams``.
    """
    lams = cfg.direct_lams if lams is None else tuple(float(v) for v in lams)
    keys = [(lam, run) for run in range(cfg.runs) for lam in lams]
    targets = {run: run_target(cfg, run) for run in range(cfg.runs)}
    kw = dict(lam_range=cfg.lam_range, init_log_sigma=cfg.init_log_sigma)
    nets = [ConstantHypernet(targets[run], **kw) for _, run in keys]
    train_many(
        nets, targets[0], data, lams=[lam for lam, _ in keys],
        seeds=[_seed(cfg, f"direct__lam-{lam:g}__run-{run}") for lam, run in keys],
        epochs=cfg.epochs if epochs is None else epochs, desc=f"direct x{len(nets)}",
        **_train_kwargs(cfg, data, progress),
    )  # fmt: skip
    return dict(zip(keys, nets))


def train_hypernets(
    cfg: WineConfig, data: TensorData, epochs: int | None = None, progress: bool = True
) -> dict[tuple[int, int], Hypernet]:
    """Every hypernetwork (each N of ``cfg.pieces``, each run) in one vectorised loop.

    Returns plain ``LinearHypernet`` (N = 1) and ``PiecewiseLinearHypernet`` objects keyed
    by ``(n_pieces, run)``.
    """
    keys = [(n, run) for n in cfg.pieces for run in range(cfg.runs)]
    targets = {run: run_target(cfg, run) for run in range(cfg.runs)}
    top = max(cfg.pieces)
    kw = dict(lam_range=cfg.lam_range, init_log_sigma=cfg.init_log_sigma)
    nets = [PaddedPiecewiseHypernet(targets[run], n, top, **kw) for n, run in keys]
    train_many(
        nets, targets[0], data, lam_prior=LogUniform(*cfg.lam_range), lam_samples=cfg.lam_samples,
        seeds=[_seed(cfg, f"hyper-{n}__run-{run}") for n, run in keys],
        epochs=cfg.epochs if epochs is None else epochs, desc=f"hypernets x{len(nets)}",
        **_train_kwargs(cfg, data, progress),
    )  # fmt: skip
    return {key: net.to_hypernet(targets[key[1]]) for key, net in zip(keys, nets)}


def finetune_and_scratch(
    cfg: WineConfig,
    data: TensorData,
    hypernets: dict[tuple[int, int], Hypernet],
    progress: bool = True,
) -> tuple[dict[tuple[int, float, int], ConstantHypernet], dict[tuple[float, int], ConstantHypernet]]:
    """Fine-tune every G(lambda) at its lambda, and train the from-scratch baseline.

    Both are ``cfg.finetune_epochs`` epochs of direct training at a fixed lambda, one
    starting from the produced parameters (``ConstantHypernet.from_params``) and one from
    the run's init; all of them train in one vectorised loop. Returns
    ``({(n_pieces, lam, run): model}, {(lam, run): model})``.
    """
    targets = {run: run_target(cfg, run) for run in range(cfg.runs)}
    nets, lams, seeds, tags = [], [], [], []
    with torch.no_grad():
        for (n, run), h in hypernets.items():
            for lam in cfg.lams:
                nets.append(ConstantHypernet.from_params(targets[run], h(lam).detach(), lam_range=cfg.lam_range))
                lams.append(lam)
                seeds.append(_seed(cfg, f"finetune-{n}__lam-{lam:g}__run-{run}"))
                tags.append(("finetuned", (n, lam, run)))
    for run in range(cfg.runs):
        for lam in cfg.lams:
            kw = dict(lam_range=cfg.lam_range, init_log_sigma=cfg.init_log_sigma)
            nets.append(ConstantHypernet(targets[run], **kw))
            lams.append(lam)
            seeds.append(_seed(cfg, f"scratch__lam-{lam:g}__run-{run}"))
            tags.append(("scratch1", (lam, run)))
    train_many(
        nets, targets[0], data, lams=lams, seeds=seeds, epochs=cfg.finetune_epochs,
        desc=f"one epoch x{len(nets)}", **_train_kwargs(cfg, data, progress),
    )  # fmt: skip
    finetuned = {key: net for (stage, key), net in zip(tags, nets) if stage == "finetuned"}
    scratch = {key: net for (stage, key), net in zip(tags, nets) if stage == "scratch1"}
    return finetuned, scratch


@torch.no_grad()
def expected_loss(
    target: nn.Module,
    params: GaussianParams,
    data: TensorData,
    lam: float,
    n_train: int | None = None,
    prior_var: float = 1.0,
    samples: int = 512,
    seed: int = 0,
) -> float:
    """The variational loss L1 at ``lam`` as minimised in training, on all of ``data``.

    E_{w ~ q}[mean cross-entropy] + lam * KL(q || N(0, prior_var)) / n_train, the
    expectation estimated with ``samples`` draws. The draws come from ``seed``, so two
    models compared with the same seed see the same noise (common random numbers).
    """
    if not isinstance(params, GaussianParams) or not params.variational or params.batch_shape:
        raise ValueError("expected_loss needs the variational parameters of one model (GaussianParams)")
    from .gaussian import ParamSpec

    spec = ParamSpec.from_module(target)
    mean = spec.flatten(params.mean)
    log_sigma = spec.flatten(params.log_sigma)
    g = torch.Generator(device=mean.device).manual_seed(int(seed))
    eps = torch.randn(samples, spec.total, generator=g, device=mean.device, dtype=mean.dtype)
    weights = spec.unflatten(mean + torch.exp(log_sigma) * eps)
    x, y = data.x.to(mean.device), data.y.to(mean.device)
    logits = torch.func.vmap(lambda p: torch.func.functional_call(target, p, (x,)))(weights)
    s, b, c = logits.shape
    nll = F.cross_entropy(logits.reshape(s * b, c), y.repeat(s))
    n_train = len(data) if n_train is None else n_train
    return float(nll + losses.penalty("variational", params, lam, n_train, prior_var))


def _sym_kl64(p: GaussianParams, q: GaussianParams) -> float:
    """``theory.sym_kl`` in float64: nearly equal posteriors give a small positive number,
    not float32 rounding noise (a negative remainder of rounding is reported as 0)."""

    def f64(g: GaussianParams) -> GaussianParams:
        return GaussianParams(
            {k: v.detach().double() for k, v in g.mean.items()},
            {k: v.detach().double() for k, v in g.log_sigma.items()},
        )

    return max(0.0, float(sym_kl(f64(p), f64(q))))


def relevance_distance(p: GaussianParams, q: GaussianParams) -> float:
    """How far apart the pruning scores g = |mu| / sigma (eq. (17)) of two models are.

    sum |g_p - g_q| / (sum g_p + sum g_q) over the prunable weights (the Bray-Curtis
    dissimilarity): 0 for equal scores, at most 1, symmetric, and scale-free, so that
    lambdas with large scores (weak prior) and near-zero scores (strong prior) weigh alike.
    """
    gp, gq = relevance(p, "var"), relevance(q, "var")
    a = torch.cat([gp[n].flatten() for n in gq]).double()
    b = torch.cat([gq[n].flatten() for n in gq]).double()
    return float((a - b).abs().sum() / (a.sum() + b.sum()).clamp_min(1e-300))


@dataclass
class WineResults:
    """Everything ``run_wine_experiment`` computes.

    Attributes:
        table: the rows of ``sym_kl.csv`` (columns ``CSV_COLUMNS``).
        theorem2: per hypernetwork N, run and lambda of ``cfg.gap_lams``: the expected loss
            of G(lambda) and of the direct model, their gap (absolute, and relative to the
            direct model's loss), the distance of the pruning scores and D_KL.
        pruning: pruning curves: model, n_pieces, run, lam, fraction, accuracy.
        seconds: wall time of each phase.
        direct, hypernets, finetuned, scratch: the trained models.
        target: a module of the right shape, to run any of them with.
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


def _direct_at(direct: dict, lam: float, run: int) -> ConstantHypernet:
    key = _lam_key(lam)
    for (dl, dr), net in direct.items():
        if dr == run and _lam_key(dl) == key:
            return net
    raise KeyError(f"no direct model at lambda={lam:g}, run={run}")


def _sym_kl_rows(cfg, target, test, direct, hypernets, finetuned, scratch) -> list[dict]:
    rows = []

    def add(model, n, lam, run, stage, params, reference):
        d = 0.0 if reference is None else _sym_kl64(params, reference)
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
                seed = _seed(cfg, f"loss__lam-{lam:g}__run-{run}")
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
                            sym_kl=_sym_kl64(q1, q2),
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
    """The whole section 4.1 experiment and the Theorem 2 measurements; see the module docstring.

    ``data`` is (train, test); by default ``data.wine()``, the paper's 142/36 split.
    """
    cfg = WineConfig() if cfg is None else cfg
    cfg.validate()
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
    return WineResults(cfg, table, theorem2, pruning, seconds, direct, hypernets, finetuned, scratch, target)


# -- the committed table --------------------------------------------------------------------


def expected_keys(cfg: WineConfig) -> set[tuple[str, int, float, int, str]]:
    """Every (model, n_pieces, lam key, run, stage) that a complete ``sym_kl.csv`` holds.

    Direct models have one row per lambda and run at stage "trained" (sym_kl 0, the
    reference itself); the from-scratch baseline is model "scratch" at stage "scratch1";
    each hypernetwork has stages "trained" and "finetuned". n_pieces is 0 for the models
    without a hypernetwork, 1 for the linear one.
    """
    keys = set()
    for run in range(cfg.runs):
        for lam in cfg.lams:
            lk = _lam_key(lam)
            keys.add(("direct", 0, lk, run, "trained"))
            keys.add(("scratch", 0, lk, run, "scratch1"))
            for n in cfg.pieces:
                for stage in ("trained", "finetuned"):
                    keys.add((model_name(n), n, lk, run, stage))
    return keys


def validate_table(df: pd.DataFrame, cfg: WineConfig) -> None:
    """Check the schema and completeness of a ``sym_kl.csv`` table; raise ``ValueError`` if not."""
    if list(df.columns) != CSV_COLUMNS:
        raise ValueError(f"columns must be exactly {CSV_COLUMNS}, got {list(df.columns)}")
    bad_stage = set(df.stage) - set(STAGES)
    if bad_stage:
        raise ValueError(f"unknown stage(s) {sorted(bad_stage)}; expected {STAGES}")
    if df[["accuracy", "sym_kl", "lam"]].isna().any().any():
        raise ValueError("the table has missing accuracy, sym_kl or lam values")
    if not ((df.accuracy >= 0) & (df.accuracy <= 1)).all():
        raise ValueError("accuracies must lie in [0, 1]")
    if not (np.isfinite(df.sym_kl) & (df.sym_kl >= 0)).all():
        raise ValueError("sym_kl must be finite and non-negative")
    if not (df.loc[df.model == "direct", "sym_kl"] == 0).all():
        raise ValueError("direct rows are the reference: their sym_kl must be 0")
    got = [
        (m, int(n), _lam_key(lam), int(r), s)
        for m, n, lam, r, s in zip(df.model, df.n_pieces, df.lam, df.run, df.stage)
    ]
    if len(set(got)) != len(got):
        raise ValueError("the table has duplicate (model, n_pieces, lam, run, stage) rows")
    want = expected_keys(cfg)
    missing, extra = want - set(got), set(got) - want
    if missing or extra:
        raise ValueError(
            f"the table does not match the configuration: {len(missing)} rows missing "
            f"(e.g. {sorted(missing)[:3]}), {len(extra)} unexpected (e.g. {sorted(extra)[:3]})"
        )


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread (standard deviation over runs) of accuracy and log10 D_KL.

    One row per model, n_pieces, stage and lambda. log10 D_KL is NaN for the direct models
    (their D_KL to themselves is 0).
    """
    d = table.assign(log10_sym_kl=np.log10(table.sym_kl.where(table.sym_kl > 0)))
    out = d.groupby(["model", "n_pieces", "stage", "lam"], as_index=False).agg(
        accuracy=("accuracy", "mean"),
        accuracy_spread=("accuracy", "std"),
        log10_sym_kl=("log10_sym_kl", "mean"),
        log10_sym_kl_spread=("log10_sym_kl", "std"),
        runs=("run", "nunique"),
    )
    return out


def theorem2_summary(theorem2: pd.DataFrame) -> pd.DataFrame:
    """Per N: the loss gap (absolute and relative), the pruning-score distance and log10 D_KL
    averaged over lambda (the expectation over log-uniform lambda), then their mean and
    spread over runs."""
    cols = ["gap", "rel_gap", "g_distance", "log10_sym_kl"]
    per_run = (
        theorem2.assign(log10_sym_kl=np.log10(theorem2.sym_kl))
        .groupby(["n_pieces", "run"], as_index=False)[cols]
        .mean()
    )
    out = per_run.groupby("n_pieces").agg(
        gap=("gap", "mean"),
        gap_spread=("gap", "std"),
        rel_gap=("rel_gap", "mean"),
        rel_gap_spread=("rel_gap", "std"),
        g_distance=("g_distance", "mean"),
        g_distance_spread=("g_distance", "std"),
        log10_sym_kl=("log10_sym_kl", "mean"),
        runs=("run", "nunique"),
    )
    return out.reset_index()


def pruning_distance(pruning: pd.DataFrame) -> pd.DataFrame:
    """Per N: the mean absolute accuracy difference between the hypernetwork's pruning curves
    and the direct models' (same run, lambda and fraction)."""
    d = pruning[pruning.model == "direct"].set_index(["run", "lam", "fraction"]).accuracy
    h = pruning[pruning.model != "direct"].copy()
    ref = d.reindex(pd.MultiIndex.from_frame(h[["run", "lam", "fraction"]])).to_numpy()
    h["diff"] = (h.accuracy.to_numpy() - ref).__abs__()
    return h.groupby("n_pieces", as_index=False)["diff"].mean().rename(columns={"diff": "curve_distance"})


def results_dir() -> Path:
    """Where the committed Wine results live: ``results/wine`` of the checkout."""
    return results_root() / "wine"


DEFAULT_COMMAND = "python -m varhyper_mini wine"
RESULT_FILES = ("sym_kl.csv", "theorem2.csv", "pruning.csv", "provenance.json")


def write_results(
    results: WineResults,
    folder: str | os.PathLike,
    note: str = "",
    command: str = DEFAULT_COMMAND,
    git_commit: str | None = None,
) -> dict[str, Path]:
    """Write ``sym_kl.csv``, ``theorem2.csv``, ``pruning.csv`` and ``provenance.json``, each atomically.

    The table is checked with ``validate_table`` first, so an incomplete table is never
    written. The provenance is written last: a folder with a provenance file is complete.
    ``git_commit`` is the commit the run started from (default: the current one).
    Returns the paths written.
    """
    from . import __version__

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    validate_table(results.table, results.config)
    table = results.table.sort_values(["model", "n_pieces", "stage", "lam", "run"])
    paths = {"csv": folder / "sym_kl.csv", "theorem2": folder / "theorem2.csv", "pruning": folder / "pruning.csv"}
    atomic_write(paths["csv"], table.to_csv(index=False))
    atomic_write(paths["theorem2"], results.theorem2.to_csv(index=False))
    atomic_write(paths["pruning"], results.pruning.to_csv(index=False))
    provenance = {
        "package": "varhyper_mini",
        "package_version": __version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "git_commit": git_commit or current_commit(),
        "command": command,
        "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": {k: round(v, 2) for k, v in results.seconds.items()},
        "hardware": hardware(str(next(iter(results.direct.values())).mean.device)),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "config": dataclasses.asdict(results.config),
        "data": "Wine (sklearn.datasets.load_wine), permutation with seed 42: 142 train / 36 test, "
        "standardised with the training mean and std",
        "rows": len(table),
        "note": note,
    }
    paths["provenance"] = folder / "provenance.json"
    atomic_write(paths["provenance"], json.dumps(provenance, indent=2))
    return paths


@dataclass
class WineTables:
    """The Wine experiment's written results, as ``load_results`` reads them back.

    The same tables as ``WineResults`` (``table``, ``theorem2``, ``pruning``, ``seconds``),
    without the trained models, plus the run's ``provenance``.
    """

    config: WineConfig
    table: pd.DataFrame
    theorem2: pd.DataFrame
    pruning: pd.DataFrame
    seconds: dict[str, float]
    provenance: dict


def load_results(folder: str | os.PathLike | None = None) -> WineTables:
    """Read the results that ``write_results`` wrote (default: the committed ``results/wine``)."""
    folder = results_dir() if folder is None else Path(folder)
    missing = [name for name in RESULT_FILES if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"no complete Wine results in {folder} (missing {', '.join(missing)}); make them with "
            f"`{DEFAULT_COMMAND} --out {folder}` (about 10 minutes on 2 CPU cores)"
        )
    provenance = json.loads((folder / "provenance.json").read_text())
    cfg = config_from_provenance(folder / "provenance.json")
    table = pd.read_csv(folder / "sym_kl.csv")
    validate_table(table, cfg)
    return WineTables(
        config=cfg,
        table=table,
        theorem2=pd.read_csv(folder / "theorem2.csv"),
        pruning=pd.read_csv(folder / "pruning.csv"),
        seconds=provenance.get("seconds", {}),
        provenance=provenance,
    )


def config_from_provenance(path: str | os.PathLike) -> WineConfig:
    """The ``WineConfig`` recorded in a ``provenance.json``."""
    raw = json.loads(Path(path).read_text())["config"]
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return WineConfig(**values)


# -- speed -----------------------------------------------------------------------------------


def time_vectorised(cfg: WineConfig, data: TensorData, epochs: int = 1) -> pd.DataFrame:
    """Seconds of ``train_many`` against a plain Python loop of ``train``, same models.

    Two groups: the direct models at ``cfg.lams`` x runs, and the hypernetworks of every N
    x runs (the loop trains the plain ``LinearHypernet``/``PiecewiseLinearHypernet``; the
    vectorised version the padded forms, stacked). ``epochs`` replaces ``cfg.epochs``.
    The column ``max_abs_diff`` is the largest difference between the parameters the two
    ways reach.
    """
    rows = []
    lams = list(cfg.lams)
    kw = _train_kwargs(cfg, data, progress=False)
    kw.pop("progress")
    # Direct models.
    loop = train_direct_loop(cfg, data, lams, epochs, kw)
    t = time.perf_counter()
    many = train_direct(cfg, data, lams=lams, epochs=epochs, progress=False)
    many_s = time.perf_counter() - t
    diff = max(
        float(torch.cat([(a.mean - b.mean).flatten(), (a.log_sigma - b.log_sigma).flatten()]).detach().abs().max())
        for a, b in ((loop[0][k], many[k]) for k in many)
    )
    rows.append(dict(group="direct", models=len(many), epochs=epochs, loop_s=loop[1], many_s=many_s, max_abs_diff=diff))
    # Hypernetworks.
    hyp_loop, loop_s = {}, 0.0
    for n in cfg.pieces:
        for run in range(cfg.runs):
            target = run_target(cfg, run)
            hk = dict(lam_range=cfg.lam_range, init_log_sigma=cfg.init_log_sigma)
            h = LinearHypernet(target, **hk) if n == 1 else PiecewiseLinearHypernet(target, n_pieces=n, **hk)
            t = time.perf_counter()
            train(
                h, target, data, lam_prior=LogUniform(*cfg.lam_range), lam_samples=cfg.lam_samples,
                seed=_seed(cfg, f"hyper-{n}__run-{run}"), epochs=epochs, progress=False, **kw,
            )  # fmt: skip
            loop_s += time.perf_counter() - t
            hyp_loop[(n, run)] = h
    t = time.perf_counter()
    hyp_many = train_hypernets(cfg, data, epochs=epochs, progress=False)
    many_s = time.perf_counter() - t
    diff = 0.0
    for key, h in hyp_many.items():
        for (_, a), (_, b) in zip(h.named_parameters(), hyp_loop[key].named_parameters()):
            diff = max(diff, float((a - b).detach().abs().max()))
    rows.append(
        dict(
            group="hypernets",
            models=len(hyp_many),
            epochs=epochs,
            loop_s=loop_s,
            many_s=many_s,
            max_abs_diff=diff,
        )
    )
    out = pd.DataFrame(rows)
    out["speedup"] = out.loop_s / out.many_s
    return out


def train_direct_loop(
    cfg: WineConfig, data: TensorData, lams: Sequence[float], epochs: int, kw: dict
) -> tuple[dict[tuple[float, int], ConstantHypernet], float]:
    """The direct models of ``train_direct``, trained one by one with ``train``; and the seconds."""
    out, seconds = {}, 0.0
    for run in range(cfg.runs):
        for lam in lams:
            target = run_target(cfg, run)
            h = ConstantHypernet(target, lam_range=cfg.lam_range, init_log_sigma=cfg.init_log_sigma)
            t = time.perf_counter()
            train(
                h, target, data, lam=lam, seed=_seed(cfg, f"direct__lam-{lam:g}__run-{run}"),
                epochs=epochs, progress=False, **kw,
            )  # fmt: skip
            seconds += time.perf_counter() - t
            out[(float(lam), run)] = h
    return out, seconds


# -- figures ---------------------------------------------------------------------------------


def _lam_label(lam: float) -> str:
    e = math.log10(lam)
    return f"$10^{{{e:g}}}$" if abs(e - round(e)) < 1e-9 else f"{lam:g}"


def plot_figure3(table: pd.DataFrame, pieces: Sequence[int] = (1, 5, 3), axes=None):
    """Figure 3: accuracy against log10 D_KL, one point per lambda (means over runs, bars: spread).

    Left: the models the hypernetworks produce; right: after fine-tuning, with the one-epoch
    from-scratch baseline. Grey lines: the direct models' accuracies. Returns the figure.
    """
    import matplotlib.pyplot as plt

    s = summarise(table)
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True, sharex=True)
    fig = axes[0].figure
    direct = s[s.model == "direct"]
    colors = plt.get_cmap("tab10")
    panels = [("trained", "produced by the hypernetwork"), ("finetuned", "after one epoch of fine-tuning")]
    for ax, (stage, title) in zip(axes, panels):
        for _, r in direct.iterrows():
            ax.axhline(r.accuracy, color="0.6", lw=1, ls="--", zorder=0)
        for i, n in enumerate(pieces):
            d = s[(s.n_pieces == n) & (s.stage == stage) & (s.model != "direct")].sort_values("lam")
            if d.empty:
                continue
            label = "linear" if n == 1 else f"piecewise-linear, N = {n}"
            ax.errorbar(
                d.log10_sym_kl, d.accuracy, xerr=d.log10_sym_kl_spread.fillna(0),
                yerr=d.accuracy_spread.fillna(0), marker="o", ms=5, lw=1.2, capsize=2,
                color=colors(i), label=label,
            )  # fmt: skip
            for _, r in d.iterrows():
                ax.annotate(_lam_label(r.lam), (r.log10_sym_kl, r.accuracy), fontsize=7,
                            textcoords="offset points", xytext=(4, 3), color=colors(i))  # fmt: skip
        if stage == "finetuned":
            d = s[s.stage == "scratch1"].sort_values("lam")
            ax.errorbar(
                d.log10_sym_kl, d.accuracy, xerr=d.log10_sym_kl_spread.fillna(0),
                yerr=d.accuracy_spread.fillna(0), marker="x", ls=":", lw=1, capsize=2, color="k",
                label="one epoch from scratch",
            )  # fmt: skip
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(r"$\log_{10} \bar D_{KL}(q_1, q_2)$")
    axes[0].set_ylabel("test accuracy")
    axes[0].plot([], [], color="0.6", ls="--", label="direct models")
    axes[1].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_theorem2(theorem2: pd.DataFrame, measure: str = "rel_gap", axes=None):
    """Left: the expected loss gap against N. Right: the pruning-score distance against the
    gap, one point per N and run (small) and their means (large). ``measure`` is "rel_gap"
    (the gap relative to the direct model's loss) or "gap" (absolute). Returns the figure."""
    import matplotlib.pyplot as plt

    if measure not in ("gap", "rel_gap"):
        raise ValueError(f"measure must be 'gap' or 'rel_gap', got {measure!r}")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    fig = axes[0].figure
    per_run = theorem2.groupby(["n_pieces", "run"], as_index=False)[[measure, "g_distance"]].mean()
    summ = theorem2_summary(theorem2)
    label = {
        "gap": r"$E_\lambda[L(G(\lambda)) - L(w^*(\lambda))]$",
        "rel_gap": r"$E_\lambda[(L(G(\lambda)) - L(w^*(\lambda))) / L(w^*(\lambda))]$",
    }[measure]
    axes[0].errorbar(summ.n_pieces, summ[measure], yerr=summ[f"{measure}_spread"].fillna(0), marker="o", capsize=3)
    axes[0].scatter(per_run.n_pieces, per_run[measure], s=10, color="0.5", zorder=3)
    axes[0].axhline(0, color="0.7", lw=0.8)
    axes[0].set_xlabel("N (linear pieces; N = 1 is the linear hypernetwork)")
    axes[0].set_ylabel(label)
    axes[0].set_xticks(list(summ.n_pieces))
    cmap = plt.get_cmap("viridis")
    ns = list(summ.n_pieces)
    for i, n in enumerate(ns):
        c = cmap(i / max(1, len(ns) - 1))
        d = per_run[per_run.n_pieces == n]
        axes[1].scatter(d[measure], d.g_distance, s=12, color=c, alpha=0.6)
        r = summ[summ.n_pieces == n].iloc[0]
        axes[1].scatter([r[measure]], [r.g_distance], s=60, color=c, edgecolor="k", label=f"N = {n}", zorder=3)
    axes[1].set_xlabel("expected relative loss gap" if measure == "rel_gap" else "expected loss gap")
    axes[1].set_ylabel(r"distance of the scores $g = |\mu|/\sigma$")
    if (per_run[measure] > 0).all():
        axes[1].set_xscale("log")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_pruning_curves(pruning: pd.DataFrame, lams: Sequence[float] | None = None, axes=None):
    """Accuracy against the share of weights deleted (means over runs), one panel per lambda:
    every hypernetwork N (colours) and the direct models (black, dashed). Returns the figure."""
    import matplotlib.pyplot as plt

    lams = sorted(pruning.lam.unique()) if lams is None else list(lams)
    if axes is None:
        fig, axes = plt.subplots(1, len(lams), figsize=(2.6 * len(lams), 3), sharey=True, squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    mean = pruning.groupby(["model", "n_pieces", "lam", "fraction"], as_index=False).accuracy.mean()
    ns = sorted(n for n in mean.n_pieces.unique() if n > 0)
    cmap = plt.get_cmap("viridis")
    for ax, lam in zip(axes, lams):
        d = mean[np.isclose(mean.lam, lam)]
        for i, n in enumerate(ns):
            e = d[(d.n_pieces == n) & (d.model != "direct")]
            ax.plot(
                100 * e.fraction,
                e.accuracy,
                color=cmap(i / max(1, len(ns) - 1)),
                marker=".",
                label=f"N = {n}",
            )
        e = d[d.model == "direct"]
        ax.plot(100 * e.fraction, e.accuracy, color="k", ls="--", lw=2, label="direct")
        ax.set_title(rf"$\lambda$ = {_lam_label(lam)}", fontsize=10)
        ax.set_xlabel("% of weights deleted")
    axes[0].set_ylabel("test accuracy")
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    return fig
