"""Gaussian parameters q(w) = N(mu, sigma^2) of a model, and their KL divergence.

The paper's variational models keep a mean and a standard deviation per weight. We
store ``log_sigma``, the log of the **standard deviation** (not the variance), as the
authors' code does; the prior is N(0, ``prior_var`` * I) with ``prior_var`` a
**variance**. A deterministic model is a ``GaussianParams`` with ``log_sigma=None``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

__all__ = ["GaussianParams", "ParamSpec", "kl_to_prior", "check_prior_var"]


@dataclass(frozen=True)
class ParamSpec:
    """Names and shapes of a module's parameters, and the map to one flat vector.

    Hypernetworks produce one flat vector of length ``total`` per lambda; ``unflatten``
    turns it (or a batch of them) into the dict that ``torch.func.functional_call`` takes.
    """

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]

    @classmethod
    def from_module(cls, module: nn.Module) -> ParamSpec:
        """The spec of ``module.named_parameters()``, in their order."""
        named = list(module.named_parameters())
        if not named:
            raise ValueError(f"{type(module).__name__} has no parameters to generate.")
        return cls(tuple(n for n, _ in named), tuple(p.shape for _, p in named))

    @property
    def numels(self) -> tuple[int, ...]:
        return tuple(math.prod(s) for s in self.shapes)

    @property
    def total(self) -> int:
        return sum(self.numels)

    def unflatten(self, flat: Tensor) -> dict[str, Tensor]:
        """Split ``flat`` of shape ``(..., total)`` into views of shape ``(..., *shape)``."""
        if flat.shape[-1] != self.total:
            raise ValueError(f"expected a last dimension of {self.total}, got {tuple(flat.shape)}")
        lead = flat.shape[:-1]
        pieces = torch.split(flat, self.numels, dim=-1)
        return {n: p.reshape(*lead, *s) for n, p, s in zip(self.names, pieces, self.shapes)}

    def flatten(self, tensors: dict[str, Tensor], batch_dims: int = 0) -> Tensor:
        """Concatenate a dict in this spec's order into shape ``(*batch, total)``."""
        self.check_names(tensors.keys())
        parts = []
        for n, s in zip(self.names, self.shapes):
            t = tensors[n]
            if tuple(t.shape[batch_dims:]) != tuple(s):
                raise ValueError(f"parameter {n!r} has shape {tuple(t.shape[batch_dims:])}, expected {tuple(s)}")
            parts.append(t.reshape(*t.shape[:batch_dims], -1))
        return torch.cat(parts, dim=-1)

    def check_names(self, names) -> None:
        """Raise ``ValueError`` naming the missing and unexpected parameter names."""
        given, wanted = set(names), set(self.names)
        if given != wanted:
            missing = sorted(wanted - given)
            extra = sorted(given - wanted)
            raise ValueError(
                f"parameter names do not match the module: missing {missing}, unexpected {extra}. "
                f"Use the names of module.named_parameters(): {list(self.names)}"
            )


def check_prior_var(prior_var: float | Tensor) -> None:
    """Reject a prior variance that is not positive and finite."""
    t = prior_var if isinstance(prior_var, Tensor) else torch.as_tensor(prior_var, dtype=torch.float64)
    if not bool(torch.all(torch.isfinite(t) & (t > 0))):
        raise ValueError(f"prior_var must be positive and finite, got {prior_var!r}")


def kl_to_prior(mean: Tensor, log_sigma: Tensor, prior_var: float | Tensor = 1.0) -> Tensor:
    """KL(N(mean, sigma^2) || N(0, prior_var)), elementwise.

    Closed form: 0.5*log(prior_var) - log_sigma + (sigma^2 + mean^2) / (2*prior_var) - 0.5.
    ``prior_var`` may be a tensor that broadcasts against ``mean``.
    """
    prior_var = torch.as_tensor(prior_var, dtype=mean.dtype, device=mean.device)
    var = torch.exp(2.0 * log_sigma)
    return 0.5 * torch.log(prior_var) - log_sigma + (var + mean * mean) / (2.0 * prior_var) - 0.5


@dataclass
class GaussianParams:
    """q(w) = N(mean, exp(log_sigma)^2), keyed by the target module's parameter names.

    Attributes:
        mean: dict from parameter name to the mean tensor (mu).
        log_sigma: dict of the same keys and shapes holding log standard deviations, or
            ``None`` for a deterministic model (then ``sample`` returns the mean).
        batch_shape: leading dimensions shared by every tensor, e.g. ``(k,)`` for k
            lambda samples; reductions such as ``kl`` keep them.
    """

    mean: dict[str, Tensor]
    log_sigma: dict[str, Tensor] | None = None
    batch_shape: tuple[int, ...] = ()
    _flat: tuple[Tensor, Tensor | None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.mean, dict) or not self.mean:
            raise ValueError("mean must be a non-empty dict from parameter names to tensors")
        if self.log_sigma is not None:
            if set(self.log_sigma) != set(self.mean):
                raise ValueError(f"log_sigma keys {sorted(self.log_sigma)} differ from mean keys {sorted(self.mean)}")
            for name, m in self.mean.items():
                if self.log_sigma[name].shape != m.shape:
                    raise ValueError(
                        f"log_sigma[{name!r}] has shape {tuple(self.log_sigma[name].shape)}, mean has {tuple(m.shape)}"
                    )

    @property
    def variational(self) -> bool:
        """True when the parameters carry a standard deviation."""
        return self.log_sigma is not None

    @property
    def sigma(self) -> dict[str, Tensor]:
        """Standard deviations exp(log_sigma)."""
        self._require_variational("sigma")
        return {k: torch.exp(v) for k, v in self.log_sigma.items()}

    def _require_variational(self, what: str) -> None:
        if self.log_sigma is None:
            raise ValueError(
                f"{what} needs a variational model, but log_sigma is None (a deterministic model). "
                "Build the hypernetwork with variational=True, or use the base loss."
            )

    def numel(self) -> int:
        """Number of model parameters (one per weight; sigma is not counted twice)."""
        n = sum(m.numel() for m in self.mean.values())
        return n // max(1, math.prod(self.batch_shape))

    def sample(self, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """A reparametrised, differentiable draw w = mean + sigma * eps, eps ~ N(0, I)."""
        if self.log_sigma is None:
            return dict(self.mean)
        out = {}
        for k, m in self.mean.items():
            eps = torch.randn(m.shape, generator=generator, dtype=m.dtype, device=m.device)
            out[k] = m + torch.exp(self.log_sigma[k]) * eps
        return out

    def kl(self, prior_var: float | Tensor = 1.0) -> Tensor:
        """KL(q || N(0, prior_var * I)), summed over all weights (keeps ``batch_shape``).

        ``prior_var`` is a variance; a tensor of ``batch_shape`` gives one prior per batch entry.
        """
        self._require_variational("kl")
        check_prior_var(prior_var)
        return self._kl(prior_var)

    def _kl(self, prior_var: float | Tensor) -> Tensor:
        # No value checks here: this runs inside torch.func.vmap during training.
        # float64 for a Python float, so float64 parameters see the prior variance unrounded.
        pv = prior_var if isinstance(prior_var, Tensor) else torch.as_tensor(prior_var, dtype=torch.float64)
        nb = len(self.batch_shape)
        if self._flat is not None:
            # Sum first, then combine with the prior: the prior variance is one number per
            # batch entry, so the per-weight work is a few reductions over (..., P).
            mean, log_sigma = self._flat
            pv = pv.to(mean.dtype)
            n = mean.shape[-1]
            sq = (torch.exp(2.0 * log_sigma) + mean * mean).sum(-1)
            return 0.5 * n * (torch.log(pv) - 1.0) - log_sigma.sum(-1) + sq / (2.0 * pv)
        total = 0.0
        for k, m in self.mean.items():
            p = pv.to(m.dtype)
            p = p.reshape(*p.shape, *([1] * (m.ndim - nb))) if p.ndim else p
            total = total + kl_to_prior(m, self.log_sigma[k], p).reshape(*self.batch_shape, -1).sum(-1)
        return total

    def sq_norm(self) -> Tensor:
        """Sum of squared means, ||w||^2 (the base loss penalty), keeping ``batch_shape``."""
        if self._flat is not None:
            return (self._flat[0] ** 2).sum(-1)
        total = 0.0
        for m in self.mean.values():
            total = total + (m * m).reshape(*self.batch_shape, -1).sum(-1)
        return total

    def detach(self) -> GaussianParams:
        """A copy cut from the autograd graph."""
        ls = None if self.log_sigma is None else {k: v.detach() for k, v in self.log_sigma.items()}
        return GaussianParams({k: v.detach() for k, v in self.mean.items()}, ls, self.batch_shape)

    def clone(self) -> GaussianParams:
        """A deep copy of the tensors."""
        ls = None if self.log_sigma is None else {k: v.clone() for k, v in self.log_sigma.items()}
        return GaussianParams({k: v.clone() for k, v in self.mean.items()}, ls, self.batch_shape)

    def to(self, device: torch.device | str) -> GaussianParams:
        """The same parameters on ``device``."""
        ls = None if self.log_sigma is None else {k: v.to(device) for k, v in self.log_sigma.items()}
        return GaussianParams({k: v.to(device) for k, v in self.mean.items()}, ls, self.batch_shape)

    def __getitem__(self, i: int) -> GaussianParams:
        """Entry ``i`` of the first batch dimension, e.g. the model at one lambda sample."""
        if not self.batch_shape:
            raise IndexError("these GaussianParams have no batch dimension")
        ls = None if self.log_sigma is None else {k: v[i] for k, v in self.log_sigma.items()}
        return GaussianParams({k: v[i] for k, v in self.mean.items()}, ls, self.batch_shape[1:])

    @classmethod
    def from_module(cls, module: nn.Module, log_sigma: float | None = None) -> GaussianParams:
        """The module's current parameters as means; a constant ``log_sigma`` if given."""
        mean = {n: p.detach().clone() for n, p in module.named_parameters()}
        ls = None if log_sigma is None else {n: torch.full_like(m, log_sigma) for n, m in mean.items()}
        return cls(mean, ls)
