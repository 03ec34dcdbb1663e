"""Training every model of the Wine experiment, each group of one shape in one vectorised loop.

Direct models (eq. (9)) at every lambda and run, hypernetworks (eqs. (12) and (13)) of every N and
run, and the fine-tuned and from-scratch models of Figure 3's right panel: each group trains in
one call of ``train_many``. Hypernetworks of different N are padded to one shape
(``PaddedPiecewiseHypernet``) so that they stack too. ``time_vectorised`` measures what the
vectorised loop saves against training the same models one by one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pandas as pd
import torch
from torch import Tensor, nn

from ...data import TensorData
from ...hypernets import ConstantHypernet, Hypernet, LinearHypernet, PiecewiseLinearHypernet, piecewise_knot_weights
from ...training import LogUniform, train, train_many
from .config import WineConfig, model_seed, run_target

__all__ = [
    "PaddedPiecewiseHypernet",
    "train_direct",
    "train_hypernets",
    "finetune_and_scratch",
    "train_direct_loop",
    "time_vectorised",
]


class PaddedPiecewiseHypernet(PiecewiseLinearHypernet):
    """A piecewise-linear hypernetwork (eq. (13)) with N regions, stored with room for more.

    The map is ``PiecewiseLinearHypernet(n_pieces)``'s (``LinearHypernet``'s for N = 1): the same
    knots at u = i / N, the same interpolation (``piecewise_knot_weights``), the same initial knots
    (the target's init; ``init_log_sigma``), the same parameter names ``mean_knots`` and
    ``log_sigma_knots``. Only the storage differs: ``max_pieces + 1`` knot rows, of which the
    first ``n_pieces + 1`` are used, and N is a buffer (``pieces``), so that hypernetworks of
    different N have the same shapes and ``train_many`` stacks them into one vectorised loop.
    The unused rows get a zero weight, hence a zero gradient, and Adam leaves them as they are;
    the produced parameters, the losses and the training are those of the plain form, which
    ``to_hypernet`` returns (the committed results are tables, no checkpoints, so no stored
    names depend on the padding). Why not train the plain forms: of different N they have
    different shapes and cannot stack, and trained apart they reach the same parameters only up
    to float rounding (``time_vectorised`` measures it), so the committed ``results/wine``
    would change in the last digits.

    Raises:
        ValueError: ``n_pieces`` or ``max_pieces`` is not a positive integer, ``n_pieces`` exceeds
            ``max_pieces``, or a ``Hypernet`` argument is rejected.
    """

    def __init__(self, target: nn.Module, n_pieces: int, max_pieces: int, **kwargs) -> None:
        for name, v in (("n_pieces", n_pieces), ("max_pieces", max_pieces)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if n_pieces > max_pieces:
            raise ValueError(f"n_pieces ({n_pieces}) must not exceed max_pieces ({max_pieces})")
        super().__init__(target, n_pieces=max_pieces, **kwargs)  # max_pieces + 1 knot rows
        self.n_pieces, self.max_pieces = n_pieces, max_pieces
        self.register_buffer("pieces", torch.tensor(float(n_pieces)))

    def knot_weights(self, u: Tensor) -> Tensor:
        """W(u), shape (k, max_pieces + 1): ``piecewise_knot_weights`` with N from the buffer, zero past N."""
        return piecewise_knot_weights(u, self.pieces, self.max_pieces + 1)

    def to_hypernet(self, target: nn.Module) -> Hypernet:
        """The same map as a plain ``LinearHypernet`` (N = 1) or ``PiecewiseLinearHypernet``, on this one's device."""
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
        """The module's repr details: ``max_pieces``, then those of ``PiecewiseLinearHypernet``."""
        return f"max_pieces={self.max_pieces}, " + super().extra_repr()


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

    Returns a dict keyed by ``(lam, run)``. ``lams`` defaults to ``cfg.direct_lams``; ``epochs``
    to ``cfg.epochs``. Raises what ``train_many`` raises.
    """
    lams = cfg.direct_lams if lams is None else tuple(float(v) for v in lams)
    keys = [(lam, run) for run in range(cfg.runs) for lam in lams]
    targets = {run: run_target(cfg, run) for run in range(cfg.runs)}
    kw = dict(lam_range=cfg.lam_range, init_log_sigma=cfg.init_log_sigma)
    nets = [ConstantHypernet(targets[run], **kw) for _, run in keys]
    train_many(
        nets, targets[0], data, lams=[lam for lam, _ in keys],
        seeds=[model_seed(cfg, f"direct__lam-{lam:g}__run-{run}") for lam, run in keys],
        epochs=cfg.epochs if epochs is None else epochs, desc=f"direct x{len(nets)}",
        **_train_kwargs(cfg, data, progress),
    )  # fmt: skip
    return dict(zip(keys, nets))


def train_hypernets(
    cfg: WineConfig, data: TensorData, epochs: int | None = None, progress: bool = True
) -> dict[tuple[int, int], Hypernet]:
    """Every hypernetwork (each N of ``cfg.pieces``, each run) in one vectorised loop.

    log lambda is drawn uniformly on ``cfg.lam_range`` (``cfg.lam_samples`` per batch). Returns
    plain ``LinearHypernet`` (N = 1) and ``PiecewiseLinearHypernet`` objects keyed by
    ``(n_pieces, run)``. Raises what ``train_many`` raises.
    """
    keys = [(n, run) for n in cfg.pieces for run in range(cfg.runs)]
    targets = {run: run_target(cfg, run) for run in range(cfg.runs)}
    top = max(cfg.pieces)
    kw = dict(lam_range=cfg.lam_range, init_log_sigma=cfg.init_log_sigma)
    nets = [PaddedPiecewiseHypernet(targets[run], n, top, **kw) for n, run in keys]
    train_many(
        nets, targets[0], data, lam_prior=LogUniform(*cfg.lam_range), lam_samples=cfg.lam_samples,
        seeds=[model_seed(cfg, f"hyper-{n}__run-{run}") for n, run in keys],
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
    """Fine-tune every G(lambda) at its lambda, and train the from-scratch baseline (Figure 3, right).

    Both are ``cfg.finetune_epochs`` epochs of direct training at a fixed lambda of ``cfg.lams``,
    one starting from the produced parameters (``ConstantHypernet.from_params``) and one from
    the run's init; all of them train in one vectorised loop. ``hypernets`` is keyed by
    ``(n_pieces, run)`` as ``train_hypernets`` returns it. Returns
    ``({(n_pieces, lam, run): model}, {(lam, run): model})``.
    """
    targets = {run: run_target(cfg, run) for run in range(cfg.runs)}
    nets, lams, seeds, tags = [], [], [], []
    with torch.no_grad():
        for (n, run), h in hypernets.items():
            for lam in cfg.lams:
                nets.append(ConstantHypernet.from_params(targets[run], h(lam).detach(), lam_range=cfg.lam_range))
                lams.append(lam)
                seeds.append(model_seed(cfg, f"finetune-{n}__lam-{lam:g}__run-{run}"))
                tags.append(("finetuned", (n, lam, run)))
    for run in range(cfg.runs):
        for lam in cfg.lams:
            kw = dict(lam_range=cfg.lam_range, init_log_sigma=cfg.init_log_sigma)
            nets.append(ConstantHypernet(targets[run], **kw))
            lams.append(lam)
            seeds.append(model_seed(cfg, f"scratch__lam-{lam:g}__run-{run}"))
            tags.append(("scratch1", (lam, run)))
    train_many(
        nets, targets[0], data, lams=lams, seeds=seeds, epochs=cfg.finetune_epochs,
        desc=f"one epoch x{len(nets)}", **_train_kwargs(cfg, data, progress),
    )  # fmt: skip
    finetuned = {key: net for (stage, key), net in zip(tags, nets) if stage == "finetuned"}
    scratch = {key: net for (stage, key), net in zip(tags, nets) if stage == "scratch1"}
    return finetuned, scratch


# -- speed -----------------------------------------------------------------------------------


def time_vectorised(cfg: WineConfig, data: TensorData, epochs: int = 1) -> pd.DataFrame:
    """Seconds of ``train_many`` against a plain Python loop of ``train``, same models.

    Two groups: the direct models at ``cfg.lams`` x runs, and the hypernetworks of every N
    x runs (the loop trains the plain ``LinearHypernet``/``PiecewiseLinearHypernet``; the
    vectorised version the padded forms, stacked). ``epochs`` replaces ``cfg.epochs``.
    Returns one row per group with the columns group, models, epochs, loop_s and many_s
    (wall seconds), max_abs_diff (the largest difference between the parameters the two ways
    reach) and speedup (loop_s / many_s).
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
                seed=model_seed(cfg, f"hyper-{n}__run-{run}"), epochs=epochs, progress=False, **kw,
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
        dict(group="hypernets", models=len(hyp_many), epochs=epochs, loop_s=loop_s, many_s=many_s, max_abs_diff=diff)
    )
    out = pd.DataFrame(rows)
    out["speedup"] = out.loop_s / out.many_s
    return out


def train_direct_loop(
    cfg: WineConfig, data: TensorData, lams: Sequence[float], epochs: int, kw: dict
) -> tuple[dict[tuple[float, int], ConstantHypernet], float]:
    """The direct models of ``train_direct``, trained one by one with ``train``; and the seconds.

    ``kw`` are the further keyword arguments of ``train`` (loss, lr, batch size, ...). Returns
    ``({(lam, run): model}, seconds spent in train)``.
    """
    out, seconds = {}, 0.0
    for run in range(cfg.runs):
        for lam in lams:
            target = run_target(cfg, run)
            h = ConstantHypernet(target, lam_range=cfg.lam_range, init_log_sigma=cfg.init_log_sigma)
            t = time.perf_counter()
            train(
                h, target, data, lam=lam, seed=model_seed(cfg, f"direct__lam-{lam:g}__run-{run}"),
                epochs=epochs, progress=False, **kw,
            )  # fmt: skip
            seconds += time.perf_counter() - t
            out[(float(lam), run)] = h
    return out, seconds
