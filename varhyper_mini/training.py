"""Algorithm 1: training a hypernetwork (or a directly trained model) on sampled lambdas.

``train`` trains one hypernetwork. ``train_many`` trains several independent ones in a
single loop: their parameters are stacked along a leading dimension and the step runs
under ``torch.func.vmap``. Each model keeps its own random stream (data order, lambda
samples, weight noise) seeded by its own seed, so ``train_many`` gives the same result
as calling ``train`` once per model, only faster.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import losses
from ._checks import as_int, as_positive, check_target
from .data import TensorData, batches
from .evaluation import check_data, check_data_dtype
from .gaussian import GaussianParams, ParamSpec
from .hypernets import Hypernet, channels_last, check_lam, layout_free

__all__ = ["LogUniform", "History", "train", "train_many"]


class LogUniform:
    """The lambda prior of Algorithm 1: log lambda uniform on [ln lo, ln hi].

    ``lo`` and ``hi`` are real numbers with 0 < lo <= hi inside the float32 range.

    Raises:
        ValueError: ``lo`` or ``hi`` is not a positive real number inside the float32 range, or lo > hi.
    """

    def __init__(self, lo: float, hi: float) -> None:
        # Both bounds inside the float32 range: draws are float32, and a bound beyond it gives inf draws.
        lo, hi = as_positive(lo, "LogUniform lo", f32=True), as_positive(hi, "LogUniform hi", f32=True)
        if not lo <= hi:
            raise ValueError(f"LogUniform needs 0 < lo <= hi < inf, got ({lo}, {hi})")
        self.lo, self.hi = lo, hi

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws as a 1-d tensor of shape (n,), in the default dtype, on the generator's device."""
        dev = generator.device if generator is not None else "cpu"
        r = torch.rand(n, generator=generator, device=dev, dtype=torch.float64)
        return torch.exp(math.log(self.lo) + r * (math.log(self.hi) - math.log(self.lo))).to(torch.get_default_dtype())

    def __repr__(self) -> str:
        return f"LogUniform({self.lo:g}, {self.hi:g})"


@dataclass
class History:
    """Per-epoch means of the training loss and its two parts."""

    loss: list[float] = field(default_factory=list)
    nll: list[float] = field(default_factory=list)
    penalty: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[float]]:
        """The four lists by name (the lists themselves, not copies), e.g. for ``pandas.DataFrame``."""
        return {"loss": self.loss, "nll": self.nll, "penalty": self.penalty, "seconds": self.seconds}


class _Step(nn.Module):
    """The per-model loss of one step, written for ``torch.func.functional_call``."""

    def __init__(
        self, hypernet: Hypernet, target: nn.Module, loss: str, n_train: int, prior_var: float, amp: bool = False
    ):
        super().__init__()
        self.amp = amp  # bfloat16 autocast for the target's forward pass only; KL and lambda code stay float32
        self.hypernet = hypernet
        self.target = [target]  # a list, so the target's parameters are not registered here
        self.loss, self.n_train, self.prior_var = loss, n_train, prior_var
        self.spec = hypernet.spec
        # Under vmap, convolutions with one weight set per lambda sample become grouped
        # convolutions, which run slower on CPU than separate ones (benchmarks/results.json):
        # networks with convolutions loop over the samples instead.
        self.loop_over_lams = any(isinstance(m, nn.modules.conv._ConvNd) for m in target.modules())

    def forward(self, u: Tensor, lam: Tensor, eps: Tensor | None, x: Tensor, y: Tensor) -> Tensor:
        mean, log_sigma = self.hypernet.flat_params(u)  # (k, P)
        sigma = None if log_sigma is None else torch.exp(log_sigma)
        w = mean if sigma is None else torch.addcmul(mean, sigma, eps)
        target, k = self.target[0], u.shape[0]
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.amp):
            if k == 1:  # one weight set: plain views, no per-sample indexing in the graph
                logits = torch.func.functional_call(target, self.spec.unflatten(w.reshape(-1)), (x,))
            else:
                weights = self.spec.unflatten(w)
                if self.loop_over_lams:
                    calls = [
                        torch.func.functional_call(target, {n: t[i] for n, t in weights.items()}, (x,))
                        for i in range(k)
                    ]
                    logits = torch.stack(calls)
                else:
                    logits = torch.func.vmap(lambda p: torch.func.functional_call(target, p, (x,)))(weights)
        logits = logits.float()
        nll = F.cross_entropy(logits, y).reshape(1) if k == 1 else losses.nll_per_sample(logits, y)
        if callable(self.loss):  # a user-defined penalty (e.g. a course assignment's new prior)
            params = GaussianParams.from_flat(self.spec, mean, log_sigma)
            pen = self.loss(params, lam, self.n_train, self.prior_var)
        else:
            pen = losses.penalty_flat(self.loss, mean, log_sigma, lam, self.n_train, self.prior_var, sigma)
        return torch.stack([(nll + pen).mean(), nll.mean(), pen.mean()])


def _adam(params: list[Tensor], lr: float) -> torch.optim.Optimizer:
    """Adam, with the fused kernel where this torch build has one for the device."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


def _check_setup(hypernets, target, data, loss, lams, lam_prior, epochs, lr, batch_size, lam_samples, prior_var):
    """Validate every argument of ``train_many`` once, before anything is changed; returns the normalised numbers."""
    if not callable(loss):
        losses.check_loss_name(loss)
    if not hypernets:
        raise ValueError("no hypernetworks to train")
    for h in hypernets:
        if not isinstance(h, Hypernet):
            raise ValueError(f"expected Hypernet instances, got {type(h).__name__}")
        if isinstance(loss, str) and loss != "base" and not h.variational:
            raise ValueError(
                f"the {loss} loss needs a variational hypernetwork; build it with variational=True "
                "or train with loss='base'"
            )
    devices = {p.device for h in hypernets for p in h.parameters()}
    if any(d.type == "meta" for d in devices) or len(devices) > 1:
        raise ValueError(
            f"the hypernetworks' parameters are on {sorted(map(str, devices))}; they must all be on one real device "
            "(the meta device holds no values). Move them with hypernet.to(device)."
        )
    check_target(target)
    spec = ParamSpec.from_module(target)
    for h in hypernets:
        if spec != h.spec:
            raise ValueError(
                f"the target's parameters {dict(zip(spec.names, map(tuple, spec.shapes)))} differ from those the "
                f"hypernetwork generates {dict(zip(h.spec.names, map(tuple, h.spec.shapes)))}; pass the module it was "
                "built for"
            )
    check_data(data)
    check_data_dtype(data, hypernets[0].dtype)
    if (lams is None) == (lam_prior is None):
        raise ValueError("give exactly one of a fixed lambda (lam=...) or a prior (lam_prior=...)")
    if lams is not None:
        lams = [float(check_lam(v)) for v in lams]
    if lam_prior is not None and not hasattr(lam_prior, "sample"):
        raise ValueError(f"lam_prior must have a .sample(n, generator) method, got {lam_prior!r}")
    # A float32 model computes with the prior variance, and the covariance loss's prior_var / lambda,
    # in float32: both must be float32 numbers there, not inf or 0.
    f32 = hypernets[0].dtype != torch.float64
    prior_var = as_positive(prior_var, "prior_var", f32=f32)
    if loss == "covariance":
        ends = lams if lams is not None else [getattr(lam_prior, "lo", 1.0), getattr(lam_prior, "hi", 1.0)]
        for v in ends:
            as_positive(
                prior_var / v, f"prior_var / lambda (= {prior_var:g} / {v:g}, the covariance loss's prior)", f32
            )
    return (
        lams,
        as_int(epochs, "epochs"),
        as_positive(lr, "lr"),
        as_int(batch_size, "batch_size"),
        as_int(lam_samples, "lam_samples"),
        prior_var,
    )


def _on_device(target: nn.Module, device: torch.device) -> nn.Module:
    """``target`` when its tensors are on ``device``, else a copy there: the caller's module is never moved."""
    tensors = [*target.parameters(), *target.buffers()]
    if all(t.device == device for t in tensors):
        return target
    return copy.deepcopy(target).to(device)


def _non_finite_error(epoch, batch_losses, batch_lams, n_models) -> FloatingPointError:
    """The error for a non-finite training loss, naming the first epoch, batch, model and lambdas."""
    bad = torch.nonzero(~torch.isfinite(batch_losses.cpu()))  # (n_batches, M) -> indices of bad entries
    bi, mi = (int(v) for v in bad[0]) if len(bad) else (len(batch_losses) - 1, 0)
    lam = batch_lams[bi, mi].cpu().flatten().tolist()
    which = f", model {mi} of {n_models}" if n_models > 1 else ""
    return FloatingPointError(
        f"the training loss became {float(batch_losses[bi, mi])} in epoch {epoch + 1}, batch {bi + 1}{which}, at "
        f"lambda = {[float(f'{v:.4g}') for v in lam]}. The hypernetwork's parameters are no longer usable: rebuild it "
        "and train with a smaller lr, a smaller lambda range or prior, a larger prior_var, or clip_value set."
    )


def train_many(
    hypernets: Sequence[Hypernet],
    target: nn.Module,
    data: TensorData,
    loss: str = "variational",
    lams: Sequence[float] | None = None,
    lam_prior: LogUniform | None = None,
    seeds: Sequence[int] | None = None,
    epochs: int = 50,
    lr: float = 5e-4,
    batch_size: int = 256,
    lam_samples: int = 5,
    n_train: int | None = None,
    prior_var: float = 1.0,
    clip_value: float | None = 1.0,
    progress: bool = True,
    desc: str = "training",
    amp: bool = False,
) -> list[History]:
    """Train independent hypernetworks of the same form in one vectorised loop.

    Args:
        hypernets: models of one class and size; trained in place.
        target: the plain module they parametrise (its own weights are not used).
        data: training data held in memory.
        loss: "variational" (L1), "covariance" (L2) or "base" (L3); or a callable
            ``penalty(params, lam, n_train, prior_var) -> Tensor`` of shape (k,) that is added
            to the cross-entropy (it runs under ``torch.func.vmap``, so no Python branching on
            tensor values).
        lams: one fixed lambda per model (directly trained models), or
        lam_prior: a prior to draw ``lam_samples`` lambdas per batch from (Algorithm 1).
        seeds: one seed per model, for its data order, lambda draws and weight noise.
        epochs, lr, batch_size: Adam with learning rate ``lr`` (paper: 5e-4).
        lam_samples: lambdas per batch with a prior; losses are averaged over them.
        n_train: the N that scales the penalty; defaults to ``len(data)``.
        prior_var: the prior variance alpha_pr.
        clip_value: gradient clipping by value, as in the authors' code (None: off).
        amp: automatic mixed precision: the target's forward pass in bfloat16 under
            ``torch.autocast`` (the hypernetwork, KL and optimiser stay in float32). For GPUs
            with bfloat16 (compute capability 8.0 or later); raises ``ValueError`` elsewhere
            on CUDA. On CPU it runs but is rarely faster.
    Returns:
        One ``History`` per model.
    Raises:
        ValueError: before any step, for any bad argument: a count that is not a positive
            integer (``epochs``, ``batch_size``, ``lam_samples``, ``n_train``; bools refused),
            a lambda, ``lr``, ``prior_var`` or ``clip_value`` that is not a positive finite
            number (lambda and, for float32 models, the prior variance inside the float32
            range), a target the hypernetworks were not built for or whose state they do not
            model (running statistics, frozen parameters), hypernetworks on the meta device or
            on several devices, empty data, data of another floating dtype than the model.
        FloatingPointError: the loss became inf or NaN; raised at the end of that epoch, naming
            the epoch, the first bad batch, the model and its lambdas.
    The caller's ``target`` is never moved or changed: when it is on another device than the
    hypernetworks, a copy is used.
    """
    hypernets = list(hypernets)
    m = len(hypernets)
    seeds = list(range(m)) if seeds is None else [as_int(s, "seed", minimum=0) for s in seeds]
    if lams is not None:
        lams = list(lams)
        if len(lams) != m:
            raise ValueError(f"got {len(lams)} fixed lambdas for {m} models")
    if len(seeds) != m:
        raise ValueError(f"got {len(seeds)} seeds for {m} models")
    lams, epochs, lr, batch_size, lam_samples, prior_var = _check_setup(
        hypernets, target, data, loss, lams, lam_prior, epochs, lr, batch_size, lam_samples, prior_var
    )
    n_train = len(data) if n_train is None else as_int(n_train, "n_train (the training-set size)")
    if clip_value is not None:
        clip_value = as_positive(clip_value, "clip_value")
    device = next(hypernets[0].parameters()).device
    if amp and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("amp=True needs a GPU with bfloat16 (compute capability 8.0 or later); train with amp=False")
    data = data.to(device)
    target = _on_device(target, device)

    k = 1 if lams is not None else lam_samples
    p = hypernets[0].spec.total
    variational = hypernets[0].variational
    gens = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
    step = _Step(hypernets[0], target, loss, n_train, prior_var, amp=bool(amp))
    if m == 1:
        # One model: train its own parameters directly, no stacking or vmap needed.
        params = {f"hypernet.{n}": t for n, t in hypernets[0].named_parameters()}
        buffers = {f"hypernet.{n}": t for n, t in hypernets[0].named_buffers()}
    else:
        params, buffers = torch.func.stack_module_state(list(hypernets))
        params = {f"hypernet.{n}": t for n, t in params.items()}
        buffers = {f"hypernet.{n}": t for n, t in buffers.items()}
    opt = _adam(list(params.values()), lr)
    grads_of = list(params.values())
    dtype = next(iter(params.values())).dtype
    if lams is not None:  # fixed lambdas: encoded once, not every step
        fixed_lam = torch.tensor(lams, device=device).view(m, 1)
        fixed_u = hypernets[0].encode_batch(fixed_lam.flatten()).view(m, 1).to(dtype)

    def per_model(pm, bm, u, lam, eps, x, y):
        return torch.func.functional_call(step, (pm, bm), (u, lam, eps, x, y))

    vstep = torch.func.vmap(per_model)
    # Decided once: channels-last images only for targets made of built-in layers (see channels_last).
    xb_layout = channels_last if layout_free(target) else nn.Identity()

    histories = [History() for _ in range(m)]
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        t0 = time.perf_counter()
        sums = torch.zeros(m, 3, device=device)
        count = 0
        orders = [list(batches(len(data), batch_size, g)) for g in gens]
        # Each batch's losses and lambdas, kept on the device (no sync per step): when the epoch's
        # sums are not finite, they name the first bad batch.
        batch_losses = torch.empty(len(orders[0]), m, device=device)
        batch_lams = torch.empty(len(orders[0]), m, k, device=device)
        for bi in range(len(orders[0])):
            # Per step only what must change: a batch, lambdas, noise. Each model draws from
            # its own generator, so a model's stream does not depend on the others.
            if m == 1:
                idx = orders[0][bi]
                xb, yb = data.x[idx], data.y[idx]
                if data.augment is not None:
                    xb = data.augment(xb, gens[0])
            else:
                idx = torch.stack([o[bi] for o in orders])  # (M, B)
                xb, yb = data.x[idx], data.y[idx]
                if data.augment is not None:
                    xb = torch.stack([data.augment(xb[i], gens[i]) for i in range(m)])
            if lams is not None:
                lam, u = fixed_lam, fixed_u
            else:
                lam = torch.stack([lam_prior.sample(k, g) for g in gens]).to(device)
                u = hypernets[0].encode_unchecked(lam).to(dtype)
            if variational:
                if m == 1:
                    eps = torch.randn(k, p, generator=gens[0], device=device, dtype=dtype)
                else:
                    eps = torch.stack([torch.randn(k, p, generator=g, device=device, dtype=dtype) for g in gens])
            else:
                eps = None if m == 1 else torch.zeros(m, 1, 1, device=device, dtype=dtype)
            if m == 1:
                parts = step(u[0], lam[0], eps, xb_layout(xb), yb).unsqueeze(0)
            else:
                parts = vstep(params, buffers, u, lam, eps, xb, yb)
            opt.zero_grad(set_to_none=True)
            parts[:, 0].sum().backward()  # models are independent: the sum's gradient is per model
            if clip_value is not None:
                # One in-place pass per tensor; clip_grad_value_ makes two (min, then max), same values.
                for t in grads_of:
                    if t.grad is not None:
                        t.grad.clamp_(-clip_value, clip_value)
            opt.step()
            n_batch = yb.shape[-1]
            sums.add_(parts.detach(), alpha=n_batch)
            batch_losses[bi] = parts[:, 0].detach()
            batch_lams[bi] = lam.detach().reshape(m, k)
            count += n_batch
        means = (sums / count).cpu()
        if not bool(torch.isfinite(means).all()):
            raise _non_finite_error(epoch, batch_losses, batch_lams, m)
        dt = time.perf_counter() - t0
        for i, h in enumerate(histories):
            h.loss.append(float(means[i, 0]))
            h.nll.append(float(means[i, 1]))
            h.penalty.append(float(means[i, 2]))
            h.seconds.append(dt)
        bar.set_postfix(loss=f"{float(means[:, 0].mean()):.4f}")
    if m == 1:
        return histories
    with torch.no_grad():
        for i, h in enumerate(hypernets):
            for n, t in h.named_parameters():
                t.copy_(params[f"hypernet.{n}"][i])
    return histories


def train(
    hypernet: Hypernet,
    target: nn.Module,
    data: TensorData,
    loss: str = "variational",
    lam: float | None = None,
    lam_prior: LogUniform | None = None,
    epochs: int = 50,
    lr: float = 5e-4,
    batch_size: int = 256,
    lam_samples: int = 5,
    seed: int = 0,
    n_train: int | None = None,
    prior_var: float = 1.0,
    clip_value: float | None = 1.0,
    progress: bool = True,
    amp: bool = False,
) -> History:
    """Algorithm 1 for one hypernetwork: minimise E_lambda[loss(G(lambda))] with Adam.

    Give either a fixed ``lam`` (a directly trained model at one lambda) or a ``lam_prior``
    such as ``LogUniform(lo, hi)``; with a prior, each batch draws ``lam_samples`` lambdas
    and averages their losses. Returns the per-epoch ``History`` (loss, nll, penalty).
    See ``train_many`` for the other arguments and the errors raised.
    """
    lams = None if lam is None else [lam]
    return train_many(
        [hypernet], target, data, loss, lams=lams, lam_prior=lam_prior, seeds=[seed],
        epochs=epochs, lr=lr, batch_size=batch_size, lam_samples=lam_samples, n_train=n_train,
        prior_var=prior_var, clip_value=clip_value, progress=progress, amp=amp,
    )[0]  # fmt: skip
