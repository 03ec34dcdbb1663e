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

import torch
from torch import Tensor, nn

from .gaussian import GaussianParams, ParamSpec

__all__ = [
    "Hypernet",
    "ConstantHypernet",
    "LinearHypernet",
    "PiecewiseLinearHypernet",
    "check_lam",
    "functional_forward",
]


def check_lam(lam: float | Tensor) -> Tensor:
    """Return lambda as a 0-d float tensor, or raise ``ValueError`` naming the bad value.

    Lambda must be one positive, finite number: a Python float/int or a 0-d tensor.
    """
    if isinstance(lam, bool) or not isinstance(lam, (int, float, Tensor)):
        raise ValueError(f"lambda must be a positive finite number, got {lam!r} ({type(lam).__name__})")
    if isinstance(lam, Tensor):
        if lam.ndim != 0:
            raise ValueError(
                f"lambda must be a single number (0-d tensor), got a tensor of shape {tuple(lam.shape)}; "
                "use Hypernet.params_batch for several lambdas"
            )
        t = lam.detach().to(torch.float64)
    else:
        t = torch.tensor(float(lam), dtype=torch.float64)
    if not bool(torch.isfinite(t)) or float(t) <= 0.0:
        raise ValueError(f"lambda must be positive and finite, got {float(t)!r}")
    return t


class Hypernet(nn.Module):
    """Base class: maps lambda to ``GaussianParams`` for a ``target`` module.

    Args:
        target: the model whose parameters are generated. Its current parameters are the
            initial means of every form (so all forms start at the direct model's init).
        lam_range: (lo, hi), the lambda interval Lambda; lambda is encoded as
            u = (ln lambda - ln lo) / (ln hi - ln lo), so u is in [0, 1] on Lambda.
        variational: produce log standard deviations too (q(w) = N(mu, sigma^2)).
        init_log_sigma: initial log standard deviation (-3 gives sigma ~ 0.05).
    """

    def __init__(
        self,
        target: nn.Module,
        lam_range: tuple[float, float] = (1e-3, 1e2),
        variational: bool = True,
        init_log_sigma: float = -3.0,
    ) -> None:
        super().__init__()
        lo, hi = (float(v) for v in lam_range)
        if not (0 < lo < hi < math.inf):
            raise ValueError(f"lam_range must satisfy 0 < lo < hi < inf, got {lam_range!r}")
        self.spec = ParamSpec.from_module(target)
        self.lam_range = (lo, hi)
        self.variational = bool(variational)
        self.init_log_sigma = float(init_log_sigma)
        self._log_lo, self._log_span = math.log(lo), math.log(hi) - math.log(lo)

    # -- helpers for subclasses -------------------------------------------------------
    def initial_mean(self, target: nn.Module) -> Tensor:
        """The target's current parameters as one flat vector (detached copy)."""
        return self.spec.flatten({n: p.detach() for n, p in target.named_parameters()}).clone()

    def initial_log_sigma(self) -> Tensor:
        """A flat vector filled with ``init_log_sigma``."""
        return torch.full((self.spec.total,), self.init_log_sigma)

    # -- the public interface ---------------------------------------------------------
    def encode(self, lam: float | Tensor) -> Tensor:
        """u = (ln lambda - ln lo) / (ln hi - ln lo), a 0-d tensor (0 at lo, 1 at hi)."""
        t = check_lam(lam)
        return ((torch.log(t) - self._log_lo) / self._log_span).to(torch.get_default_dtype())

    def encode_batch(self, lams: Tensor) -> Tensor:
        """``encode`` for a 1-d tensor of positive lambdas."""
        lams = torch.as_tensor(lams)
        if lams.ndim != 1 or not bool(torch.all(torch.isfinite(lams) & (lams > 0))):
            raise ValueError(f"lams must be a 1-d tensor of positive finite values, got {lams!r}")
        return (torch.log(lams) - self._log_lo) / self._log_span

    def forward(self, lam: float | Tensor) -> GaussianParams:
        """G(lambda): the target's parameters at one lambda."""
        u = self.encode(lam)
        return self._to_params(*self.flat_params(u.reshape(1).to(self._device())))[0]

    def params_batch(self, lams: Tensor) -> GaussianParams:
        """G at several lambdas at once: ``GaussianParams`` with ``batch_shape == (k,)``."""
        u = self.encode_batch(lams).to(self._device(), torch.get_default_dtype())
        return self._to_params(*self.flat_params(u))

    def flat_params(self, u: Tensor) -> tuple[Tensor, Tensor | None]:
        """Means and log sigmas, each ``(k, P)``, for encoded values ``u`` of shape ``(k,)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement flat_params(u)")

    def n_stored(self) -> int:
        """Number of values this hypernetwork stores (its own trainable parameters)."""
        return sum(p.numel() for p in self.parameters())

    # -- internals --------------------------------------------------------------------
    def _device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def _to_params(self, mean: Tensor, log_sigma: Tensor | None) -> GaussianParams:
        gp = GaussianParams(
            self.spec.unflatten(mean),
            None if log_sigma is None else self.spec.unflatten(log_sigma),
            batch_shape=tuple(mean.shape[:-1]),
            _flat=(mean, log_sigma),
        )
        return gp

    def extra_repr(self) -> str:
        return (
            f"params={self.spec.total}, lam_range={self.lam_range}, "
            f"variational={self.variational}, stored={self.n_stored()}"
        )


class ConstantHypernet(Hypernet):
    """A directly trained model: the same parameters for every lambda (paper eq. (9))."""

    def __init__(self, target: nn.Module, **kwargs) -> None:
        super().__init__(target, **kwargs)
        self.mean = nn.Parameter(self.initial_mean(target))
        self.log_sigma = nn.Parameter(self.initial_log_sigma()) if self.variational else None

    def flat_params(self, u: Tensor) -> tuple[Tensor, Tensor | None]:
        k = u.shape[0]
        mean = self.mean.expand(k, -1)
        ls = None if self.log_sigma is None else self.log_sigma.expand(k, -1)
        return mean, ls


class LinearHypernet(Hypernet):
    """Eq. (12): parameters affine in u, G(u) = u * A + (1 - u) * B.

    Stored as the two end points B = G(lo) and A = G(hi); both start at the target's init.
    """

    def __init__(self, target: nn.Module, **kwargs) -> None:
        super().__init__(target, **kwargs)
        init = self.initial_mean(target)
        self.mean_ends = nn.Parameter(torch.stack([init, init]))  # rows: u=0, u=1
        if self.variational:
            ls = self.initial_log_sigma()
            self.log_sigma_ends = nn.Parameter(torch.stack([ls, ls]))
        else:
            self.log_sigma_ends = None

    @staticmethod
    def _mix(ends: Tensor, u: Tensor) -> Tensor:
        u = u.unsqueeze(-1)
        return ends[0] + u * (ends[1] - ends[0])

    def flat_params(self, u: Tensor) -> tuple[Tensor, Tensor | None]:
        mean = self._mix(self.mean_ends, u)
        ls = None if self.log_sigma_ends is None else self._mix(self.log_sigma_ends, u)
        return mean, ls


class PiecewiseLinearHypernet(Hypernet):
    """Eq. (13): continuous and linear in u between knots at u = i / n_pieces.

    ``n_pieces`` regions need ``n_pieces + 1`` stored knots; all start at the target's init.
    Outside [0, 1] the end segments extend linearly.
    """

    def __init__(self, target: nn.Module, n_pieces: int = 5, **kwargs) -> None:
        if not isinstance(n_pieces, int) or isinstance(n_pieces, bool) or n_pieces < 1:
            raise ValueError(f"n_pieces must be a positive integer, got {n_pieces!r}")
        super().__init__(target, **kwargs)
        self.n_pieces = n_pieces
        init = self.initial_mean(target)
        self.mean_knots = nn.Parameter(init.repeat(n_pieces + 1, 1))
        if self.variational:
            self.log_sigma_knots = nn.Parameter(self.initial_log_sigma().repeat(n_pieces + 1, 1))
        else:
            self.log_sigma_knots = None

    def _interp(self, knots: Tensor, u: Tensor) -> Tensor:
        t = u * self.n_pieces
        i = torch.clamp(torch.floor(t), 0, self.n_pieces - 1).long()
        w = (t - i.to(t.dtype)).unsqueeze(-1)
        left, right = knots[i], knots[i + 1]
        return left + w * (right - left)

    def flat_params(self, u: Tensor) -> tuple[Tensor, Tensor | None]:
        mean = self._interp(self.mean_knots, u)
        ls = None if self.log_sigma_knots is None else self._interp(self.log_sigma_knots, u)
        return mean, ls

    def extra_repr(self) -> str:
        return f"n_pieces={self.n_pieces}, " + super().extra_repr()


def functional_forward(module: nn.Module, params: GaussianParams | dict[str, Tensor], x: Tensor) -> Tensor:
    """Run a plain ``nn.Module`` on ``x`` with external weights.

    ``params`` is a dict keyed by ``module.named_parameters()`` names, or ``GaussianParams``
    (its means are used). Works for any architecture via ``torch.func.functional_call``.
    """
    tensors = params.mean if isinstance(params, GaussianParams) else params
    if not isinstance(tensors, dict):
        raise ValueError(f"params must be a dict or GaussianParams, got {type(params).__name__}")
    ParamSpec.from_module(module).check_names(tensors.keys())
    return torch.func.functional_call(module, tensors, (x,))
