"""Hypernetworks G(lambda): a complexity value in, a model's parameters out.

Every form stores flat parameter vectors (one entry per weight of the target module) and
returns ``GaussianParams`` keyed by the target's parameter names, so any plain
``nn.Module`` can run with them through ``functional_forward``.

To add a form, subclass ``Hypernet`` and implement ``flat_params(u)``: given a batch of
encoded values u of shape ``(k,)`` return the means, shape ``(k, P)``, and the log
standard deviations, shape ``(k, P)`` (or ``None`` for a deterministic model).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor, nn

from ._checks import F32_MAX, F32_TINY, LOG_SIGMA_RANGE, as_int, as_positive, as_real, check_lam_range, check_target
from .gaussian import GaussianParams, ParamSpec

__all__ = [
    "lambda_key",
    "same_lambda",
    "Hypernet",
    "ConstantHypernet",
    "LinearHypernet",
    "PiecewiseLinearHypernet",
    "piecewise_knot_weights",
    "check_lam",
    "functional_forward",
]


def lambda_key(lam: float) -> float:
    """The package's one rule for lambda equality: log10 lambda rounded to 6 decimals.

    Lambdas read back from a CSV file or recomputed on a log grid differ in their last digits; two
    lambdas are the same when their keys are equal (a relative difference below about 1e-6), and the
    key serves as a dict key.

    Raises:
        ValueError: ``lam`` is not positive and finite.
    """
    value = float(lam)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"lambda must be positive and finite, got {lam!r}")
    return round(math.log10(value), 6)


def same_lambda(values, lam: float) -> np.ndarray:
    """Which entries of ``values`` (a sequence, array or Series of lambdas) equal ``lam`` under ``lambda_key``.

    Returns a boolean array of shape ``(len(values),)``.

    Raises:
        ValueError: ``lam`` or an entry of ``values`` is not positive and finite.
    """
    key = lambda_key(lam)
    return np.array([lambda_key(v) == key for v in np.asarray(values, dtype=float).ravel()], dtype=bool)


def check_lam(lam: float | Tensor) -> Tensor:
    """Return lambda as a 0-d float64 tensor.

    Lambda must be one positive, finite real number (a Python or NumPy number, or a 0-d
    tensor; not a bool) inside the float32 range [1.2e-38, 3.4e38], where training computes.

    Raises:
        ValueError: ``lam`` is not such a number (a tensor that is not 0-d included); the
            message names the bad value.
    """
    if isinstance(lam, Tensor) and lam.ndim != 0:
        raise ValueError(
            f"lambda must be a single number (0-d tensor), got a tensor of shape {tuple(lam.shape)}; "
            "use Hypernet.params_batch for several lambdas"
        )
    return torch.tensor(as_positive(lam, "lambda", f32=True), dtype=torch.float64)


class Hypernet(nn.Module):
    """Base class: maps lambda to ``GaussianParams`` for a ``target`` module.

    Args:
        target: the model whose parameters are generated. Its current parameters are the
            initial means of every form (so all forms start at the direct model's init).
        lam_range: (lo, hi), the lambda interval Lambda; lambda is encoded as
            u = (ln lambda - ln lo) / (ln hi - ln lo), so u is in [0, 1] on Lambda.
        variational: produce log standard deviations too (q(w) = N(mu, sigma^2)).
        init_log_sigma: initial log standard deviation (-3 gives sigma ~ 0.05), a finite
            number in [-30, 10] (so that sigma and sigma^2 neither overflow nor underflow).

    The generated parameters, and every tensor the hypernetwork stores, have the target's
    dtype.

    Raises:
        ValueError: a bad ``lam_range`` (two numbers 0 < lo < hi, both inside the float32 range)
            or ``init_log_sigma``; a target without parameters, or whose state the method does
            not model: submodules with running statistics (BatchNorm), frozen parameters,
            parameters on the meta device, parameters of several dtypes or of one other than
            float32 and float64.
    """

    def __init__(
        self,
        target: nn.Module,
        lam_range: tuple[float, float] = (1e-3, 1e2),
        variational: bool = True,
        init_log_sigma: float = -3.0,
    ) -> None:
        super().__init__()
        lo, hi = check_lam_range(lam_range)
        self.spec = ParamSpec.from_module(target)
        check_target(target)
        ls = as_real(init_log_sigma, "init_log_sigma")
        if not LOG_SIGMA_RANGE[0] <= ls <= LOG_SIGMA_RANGE[1]:
            raise ValueError(
                f"init_log_sigma must be a finite log standard deviation in {list(LOG_SIGMA_RANGE)}, got {ls!r} "
                "(sigma = exp(init_log_sigma) would overflow or underflow); -3 gives sigma ~ 0.05"
            )
        self.lam_range = (lo, hi)
        self.variational = bool(variational)
        self.init_log_sigma = ls
        self.dtype = next(target.parameters()).dtype
        self._log_lo, self._log_span = math.log(lo), math.log(hi) - math.log(lo)

    # -- helpers for subclasses -------------------------------------------------------
    def initial_mean(self, target: nn.Module) -> Tensor:
        """The target's current parameters as one flat vector (detached copy)."""
        return self.spec.flatten({n: p.detach() for n, p in target.named_parameters()}).clone()

    def initial_log_sigma(self) -> Tensor:
        """A flat vector filled with ``init_log_sigma``."""
        return torch.full((self.spec.total,), self.init_log_sigma, dtype=self.dtype)

    # -- the public interface ---------------------------------------------------------
    def encode(self, lam: float | Tensor) -> Tensor:
        """u = (ln lambda - ln lo) / (ln hi - ln lo), a 0-d tensor of the hypernetwork's dtype (0 at lo, 1 at hi)."""
        lam = float(check_lam(lam))  # raises for a bad value; the arithmetic stays in double precision
        return torch.tensor((math.log(lam) - self._log_lo) / self._log_span, dtype=self.dtype)

    def encode_batch(self, lams: Tensor) -> Tensor:
        """``encode`` for a 1-d tensor (or sequence) of positive lambdas in the float32 range.

        Computed in double precision; returns shape ``(k,)`` in the hypernetwork's dtype.

        Raises:
            ValueError: ``lams`` is not 1-d and real, or holds a value that is not positive,
                finite and inside the float32 range.
        """
        lams = torch.as_tensor(lams)
        if lams.ndim != 1 or lams.dtype == torch.bool or lams.is_complex():
            raise ValueError(f"lams must be a 1-d tensor of positive finite values, got {lams!r}")
        lams64 = lams.detach().to(torch.float64)
        if not bool(torch.all((lams64 >= F32_TINY) & (lams64 <= F32_MAX))):
            raise ValueError(
                f"lams must be positive, finite and inside the float32 range [{F32_TINY:.3g}, {F32_MAX:.3g}], "
                f"got {lams!r}"
            )
        return ((torch.log(lams64) - self._log_lo) / self._log_span).to(self.dtype)

    def encode_unchecked(self, lams: Tensor) -> Tensor:
        """``encode_batch`` without the value checks, for lambdas drawn from a valid prior (any shape)."""
        return (torch.log(lams) - self._log_lo) / self._log_span

    def forward(self, lam: float | Tensor) -> GaussianParams:
        """G(lambda): the target's parameters at one lambda."""
        u = self.encode(lam)
        mean, log_sigma = self.flat_params(u.reshape(1).to(self.device))
        return GaussianParams.from_flat(self.spec, mean[0], None if log_sigma is None else log_sigma[0])

    def params_batch(self, lams: Tensor) -> GaussianParams:
        """G at several lambdas at once: ``GaussianParams`` with ``batch_shape == (k,)``."""
        u = self.encode_batch(lams).to(self.device, self.dtype)
        return self._to_params(*self.flat_params(u))

    def flat_params(self, u: Tensor) -> tuple[Tensor, Tensor | None]:
        """Means and log sigmas, each ``(k, P)``, for encoded values ``u`` of shape ``(k,)``.

        P is ``spec.total``; log sigmas are None for a deterministic hypernetwork
        (``variational=False``). Every form implements it.

        Raises:
            NotImplementedError: always, here in the base class.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement flat_params(u)")

    def n_stored(self) -> int:
        """Number of values this hypernetwork stores (its own trainable parameters)."""
        return sum(p.numel() for p in self.parameters())

    # -- internals --------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """The device of the hypernetwork's parameters (CPU for one without parameters)."""
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def _to_params(self, mean: Tensor, log_sigma: Tensor | None) -> GaussianParams:
        return GaussianParams.from_flat(self.spec, mean, log_sigma)

    def extra_repr(self) -> str:
        """The module's repr details: the target's parameter count, lam_range, variational, stored values."""
        return (
            f"params={self.spec.total}, lam_range={self.lam_range}, "
            f"variational={self.variational}, stored={self.n_stored()}"
        )


class ConstantHypernet(Hypernet):
    """A directly trained model: the same parameters for every lambda (paper eq. (9))."""

    depends_on_lambda = False

    def __init__(self, target: nn.Module, **kwargs) -> None:
        super().__init__(target, **kwargs)
        self.mean = nn.Parameter(self.initial_mean(target))
        self.log_sigma = nn.Parameter(self.initial_log_sigma()) if self.variational else None

    @classmethod
    def from_params(
        cls,
        target: nn.Module,
        params: GaussianParams,
        lam_range: tuple[float, float] = (1e-3, 1e2),
    ) -> ConstantHypernet:
        """A directly trained model that starts at ``params`` instead of the target's init.

        Used to fine-tune a model that a hypernetwork produced, G(lambda), at a fixed lambda
        (section 4.1): ``ConstantHypernet.from_params(target, hyper(lam))`` then ``train(...,
        lam=lam)``. The copy is independent of ``params``; it is variational exactly when
        ``params`` is, and it lives on the device of ``params``.

        Raises:
            ValueError: ``params`` are not ``GaussianParams`` of one model (no batch), their names
                or shapes are not the target's, or the ``Hypernet`` arguments are rejected.
        """
        if not isinstance(params, GaussianParams):
            raise ValueError(f"params must be GaussianParams, got {type(params).__name__}")
        if params.batch_shape:
            raise ValueError(f"params hold a batch of shape {params.batch_shape}; pick one model with params[i]")
        net = cls(target, lam_range=lam_range, variational=params.variational)
        mean = net.spec.flatten(params.mean)  # raises ValueError on other names or shapes
        net = net.to(mean.device)
        with torch.no_grad():
            net.mean.copy_(mean)
            if params.variational:
                net.log_sigma.copy_(net.spec.flatten(params.log_sigma))
        return net

    def flat_params(self, u: Tensor) -> tuple[Tensor, Tensor | None]:
        """The stored mean (and log sigma) repeated for each of the k values of ``u``: shape (k, P), expanded views."""
        k = u.shape[0]
        mean = self.mean.expand(k, -1)
        ls = None if self.log_sigma is None else self.log_sigma.expand(k, -1)
        return mean, ls


class _KnotHypernet(Hypernet):
    """Forms that mix stored knot vectors with weights that depend on u.

    The parameters at u are ``W(u) @ knots``, with ``W(u)`` of shape (k, n_knots); one small
    matrix product replaces a gather, and its backward pass is a matrix product too.
    """

    def _init_knots(self, target: nn.Module, n_knots: int, mean_name: str, log_sigma_name: str) -> None:
        self._names = (mean_name, log_sigma_name)
        setattr(self, mean_name, nn.Parameter(self.initial_mean(target).repeat(n_knots, 1)))
        ls = nn.Parameter(self.initial_log_sigma().repeat(n_knots, 1)) if self.variational else None
        setattr(self, log_sigma_name, ls)

    def knot_weights(self, u: Tensor) -> Tensor:
        """W(u), shape (k, n_knots): the interpolation weights of each knot."""
        raise NotImplementedError

    def flat_params(self, u: Tensor) -> tuple[Tensor, Tensor | None]:
        w = self.knot_weights(u).to(getattr(self, self._names[0]).dtype)
        mean = w @ getattr(self, self._names[0])
        ls_knots = getattr(self, self._names[1])
        return mean, None if ls_knots is None else w @ ls_knots


class LinearHypernet(_KnotHypernet):
    """Eq. (12): parameters affine in u, G(u) = (1 - u) * B + u * A.

    Stored as the two end points, rows of ``mean_ends`` (and ``log_sigma_ends``): row 0 is
    G at lambda = lo (u = 0), row 1 is G at lambda = hi (u = 1). Both start at the target's
    init. Outside [0, 1] the line extends.
    """

    def __init__(self, target: nn.Module, **kwargs) -> None:
        super().__init__(target, **kwargs)
        self._init_knots(target, 2, "mean_ends", "log_sigma_ends")

    def knot_weights(self, u: Tensor) -> Tensor:
        """W(u) = [1 - u, u], shape (k, 2), for ``u`` of shape (k,): the weights of rows 0 and 1."""
        return torch.stack([1 - u, u], dim=-1)


class PiecewiseLinearHypernet(_KnotHypernet):
    """Eq. (13): continuous and linear in u between knots at u = i / n_pieces.

    ``n_pieces`` regions need ``n_pieces + 1`` stored knots (rows of ``mean_knots`` and
    ``log_sigma_knots``); all start at the target's init. Outside [0, 1] the end segments
    extend linearly.
    """

    def __init__(self, target: nn.Module, n_pieces: int = 5, **kwargs) -> None:
        n_pieces = as_int(n_pieces, "n_pieces")
        super().__init__(target, **kwargs)
        self.n_pieces = n_pieces
        self._init_knots(target, n_pieces + 1, "mean_knots", "log_sigma_knots")

    def knot_weights(self, u: Tensor) -> Tensor:
        """W(u), shape (k, n_pieces + 1), for ``u`` of shape (k,): ``piecewise_knot_weights``."""
        return piecewise_knot_weights(u, self.n_pieces)

    def extra_repr(self) -> str:
        """The module's repr details: ``n_pieces``, then those of ``Hypernet``."""
        return f"n_pieces={self.n_pieces}, " + super().extra_repr()


def piecewise_knot_weights(u: Tensor, n_pieces: int | Tensor, n_knots: int | None = None) -> Tensor:
    """W(u) of eq. (13): the weights of the knots at u = i / N, i = 0..N, shape ``(k, n_knots)``.

    Row r holds 1 - f at the left knot i = floor(u_r * N) (clamped to 0..N-1) and f = u_r * N - i at
    the right one, 0 elsewhere; u outside [0, 1] extends the end segments linearly. ``u``: encoded
    lambdas, shape ``(k,)``. ``n_pieces``: N >= 1, a Python int, or a 0-d tensor (a buffer, so that
    forms of different N can stack under ``vmap``). ``n_knots``: the number of columns, at least
    N + 1 (default N + 1); the columns past N stay 0 (room for padding). Written with comparisons
    rather than scatter so that it also runs under ``vmap``.
    The values of ``u`` and N are not checked.

    Raises:
        ValueError: ``n_pieces`` is a tensor and ``n_knots`` is not given (the shape cannot
            depend on a tensor's value).
    """
    if isinstance(n_pieces, Tensor):
        if n_knots is None:
            raise ValueError("n_knots is needed when n_pieces is a tensor")
        n = n_pieces.to(u.dtype)
        t = (u * n).unsqueeze(-1)  # (k, 1)
        left = torch.minimum(torch.clamp(torch.floor(t), min=0), n - 1)
    else:
        n_knots = n_pieces + 1 if n_knots is None else n_knots
        t = (u * n_pieces).unsqueeze(-1)  # (k, 1)
        left = torch.clamp(torch.floor(t), 0, n_pieces - 1)
    frac = t - left
    j = torch.arange(n_knots, device=u.device, dtype=u.dtype)
    return (1 - frac) * (j == left).to(u.dtype) + frac * (j == left + 1).to(u.dtype)


def functional_forward(module: nn.Module, params: GaussianParams | dict[str, Tensor], x: Tensor) -> Tensor:
    """Run a plain ``nn.Module`` on ``x`` with external weights.

    ``params`` is a dict keyed by ``module.named_parameters()`` names, or ``GaussianParams``
    (its means are used). Works for any architecture via ``torch.func.functional_call``.
    The module runs in its current mode; to evaluate, use ``accuracy``/``predict``, or wrap
    the call in ``evaluation(module)``, so that no running statistics are updated. Returns
    ``module``'s output for ``x`` (logits of shape (N, n_classes) for this package's models).

    Raises:
        ValueError: ``params`` is neither a dict nor ``GaussianParams``, or its names are not
            those of ``module.named_parameters()``.
    """
    tensors = params.mean if isinstance(params, GaussianParams) else params
    if not isinstance(tensors, dict):
        raise ValueError(f"params must be a dict or GaussianParams, got {type(params).__name__}")
    ParamSpec.from_module(module).check_names(tensors.keys())
    return call_with(module, tensors, x)


def call_with(module: nn.Module, weights: dict[str, Tensor], x: Tensor) -> Tensor:
    """``module(x)`` with external ``weights`` (names already checked); see ``channels_last`` for the layout."""
    return torch.func.functional_call(module, weights, (channels_last(x, module),))


def layout_free(module: nn.Module) -> bool:
    """True when every submodule is a built-in ``torch.nn`` layer, whose result does not depend on the memory layout.

    A user's own ``forward`` may call ``x.view(...)``, which fails (or differs) on a channels-last tensor.
    """
    return all(type(m).__module__.startswith("torch.nn.modules.") for m in module.modules())


def channels_last(x: Tensor, module: nn.Module | None = None) -> Tensor:
    """Images (N, C, H, W) in channels-last memory layout; any other tensor unchanged.

    The same values, laid out so that CPU (oneDNN) and GPU convolutions run faster: on this
    book's 2-core CPU a CIFAR-10 step is measurably quicker (see benchmarks/results.json).
    Given the ``module`` that will receive ``x``, the layout changes only when it is made of
    built-in ``torch.nn`` layers: a user's own ``forward`` gets ``x`` as it is.
    """
    if x.ndim == 4 and (module is None or layout_free(module)):
        return x.contiguous(memory_format=torch.channels_last)
    return x


@contextmanager
def evaluation(module: nn.Module):
    """Run ``module`` in eval mode (no dropout, no updates of running statistics); restore every submodule's mode."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, mode in modes:
            m.training = mode
