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

from ._checks import as_positive, as_real

__all__ = ["GaussianParams", "ParamSpec", "kl_to_prior", "kl_to_prior_flat", "check_prior_var"]


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
        """The spec of ``module.named_parameters()``, in their order.

        Raises:
            ValueError: ``module`` has no parameters.
        """
        named = list(module.named_parameters())
        if not named:
            raise ValueError(f"{type(module).__name__} has no parameters to generate.")
        return cls(tuple(n for n, _ in named), tuple(p.shape for _, p in named))

    @property
    def numels(self) -> tuple[int, ...]:
        """The number of elements of each parameter, in the spec's order."""
        return tuple(math.prod(s) for s in self.shapes)

    @property
    def total(self) -> int:
        """The length of the flat vector: the number of scalar parameters of the module."""
        return sum(self.numels)

    def unflatten(self, flat: Tensor) -> dict[str, Tensor]:
        """Split ``flat`` of shape ``(..., total)`` into views of shape ``(..., *shape)``.

        Raises:
            ValueError: the last dimension of ``flat`` is not ``total``.
        """
        if flat.shape[-1] != self.total:
            raise ValueError(f"expected a last dimension of {self.total}, got {tuple(flat.shape)}")
        lead = flat.shape[:-1]
        pieces = torch.split(flat, self.numels, dim=-1)
        return {n: p.reshape(*lead, *s) for n, p, s in zip(self.names, pieces, self.shapes)}

    def flatten(self, tensors: dict[str, Tensor], batch_dims: int = 0) -> Tensor:
        """Concatenate a dict in this spec's order into shape ``(*batch, total)``.

        ``batch_dims``: the number of leading batch dimensions of every tensor (``len(batch)``).

        Raises:
            ValueError: the names are not the spec's, or a tensor's shape after the batch
                dimensions is not its parameter's.
        """
        self.check_names(tensors.keys())
        parts = []
        for n, s in zip(self.names, self.shapes):
            t = tensors[n]
            if tuple(t.shape[batch_dims:]) != tuple(s):
                raise ValueError(f"parameter {n!r} has shape {tuple(t.shape[batch_dims:])}, expected {tuple(s)}")
            parts.append(t.reshape(*t.shape[:batch_dims], -1))
        return torch.cat(parts, dim=-1)

    def check_names(self, names) -> None:
        """Check that ``names`` are exactly the spec's parameter names (in any order).

        Raises:
            ValueError: names are missing or unexpected (the message lists both).
        """
        given, wanted = set(names), set(self.names)
        if given != wanted:
            missing = sorted(wanted - given)
            extra = sorted(given - wanted)
            raise ValueError(
                f"parameter names do not match the module: missing {missing}, unexpected {extra}. "
                f"Use the names of module.named_parameters(): {list(self.names)}"
            )


def check_prior_var(prior_var: float | Tensor) -> None:
    """Reject a prior variance that is not positive and finite.

    A real number (Python, NumPy, 0-d tensor; not a bool) or a tensor of such values. Training
    a float32 model also needs it inside the float32 range (``train`` checks that).

    Raises:
        ValueError: ``prior_var`` is not a positive finite real number or a tensor of them.
    """
    if isinstance(prior_var, float) and math.isfinite(prior_var) and prior_var > 0:
        return  # the common case, checked without building a tensor: this runs every training step
    if isinstance(prior_var, Tensor) and prior_var.ndim > 0:
        if prior_var.dtype == torch.bool or not bool(torch.all(torch.isfinite(prior_var) & (prior_var > 0))):
            raise ValueError(f"prior_var must be positive and finite, got {prior_var!r}")
        return
    as_positive(prior_var, "prior_var")


def kl_to_prior(mean: Tensor, log_sigma: Tensor, prior_var: float | Tensor = 1.0) -> Tensor:
    """KL(N(mean, sigma^2) || N(0, prior_var)), elementwise.

    Closed form: 0.5*log(prior_var) - log_sigma + (sigma^2 + mean^2) / (2*prior_var) - 0.5.
    ``prior_var`` may be a tensor that broadcasts against ``mean``. Returns the broadcast shape
    of ``mean``, ``log_sigma`` and ``prior_var``, in nats.
    """
    prior_var = torch.as_tensor(prior_var, dtype=mean.dtype, device=mean.device)
    var = torch.exp(2.0 * log_sigma)
    return 0.5 * torch.log(prior_var) - log_sigma + (var + mean * mean) / (2.0 * prior_var) - 0.5


def kl_to_prior_flat(
    mean: Tensor, log_sigma: Tensor, prior_var: float | Tensor = 1.0, sigma: Tensor | None = None
) -> Tensor:
    """KL(N(mean, sigma^2) || N(0, prior_var)) summed over the last dimension.

    ``mean`` and ``log_sigma`` have shape ``(..., P)``; ``prior_var`` is a Python float or a
    tensor of shape ``(...)`` (one prior per leading entry); ``sigma = exp(log_sigma)`` may be
    passed when it is already computed. Returns shape ``(...)``. No value checks (it runs
    under ``torch.func.vmap`` in training). Same closed form as ``kl_to_prior``, summed first:
    0.5 * P * (log prior_var - 1) - sum(log_sigma) + sum(sigma^2 + mean^2) / (2 * prior_var).
    """
    n = mean.shape[-1]
    sigma = torch.exp(log_sigma) if sigma is None else sigma
    sq = (sigma * sigma + mean * mean).sum(-1)
    if not isinstance(prior_var, Tensor):  # a Python float: exact in double precision
        return (0.5 * n * (math.log(prior_var) - 1.0)) - log_sigma.sum(-1) + sq / (2.0 * prior_var)
    pv = prior_var.to(mean.dtype)
    return 0.5 * n * (torch.log(pv) - 1.0) - log_sigma.sum(-1) + sq / (2.0 * pv)


@dataclass
class GaussianParams:
    """q(w) = N(mean, exp(log_sigma)^2), keyed by the target module's parameter names.

    Attributes:
        mean: dict from parameter name to the mean tensor (mu).
        log_sigma: dict of the same keys and shapes holding log standard deviations, or
            ``None`` for a deterministic model (then ``sample`` returns the mean).
        batch_shape: leading dimensions shared by every tensor, e.g. ``(k,)`` for k
            lambda samples; reductions such as ``kl`` keep them.

    Raises:
        ValueError: ``mean`` is not a non-empty dict, or ``log_sigma`` has other keys or shapes.
    """

    mean: dict[str, Tensor]
    log_sigma: dict[str, Tensor] | None = None
    batch_shape: tuple[int, ...] = ()
    # Optional (mean, log_sigma) as flat (*batch_shape, P) tensors whose views fill the dicts.
    # Whole-model work (noise, KL, norms) then runs as a few passes over one tensor.
    _flat: tuple[Tensor, Tensor | None] | None = field(default=None, repr=False, compare=False)
    _views: tuple[Tensor, ...] = field(default=(), init=False, repr=False, compare=False)
    # Built on first use from the flat tensors: the layout and sigma = exp(log_sigma), shared by
    # sample() and kl() so that a training step computes the exponential once.
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

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
        if self._flat is not None:
            # The dict entries the flat tensors stand for: if one is replaced later (as pruning
            # does), the flat copy is stale and the per-tensor code path is used instead.
            self._views = self._entries()

    @classmethod
    def from_flat(cls, spec: ParamSpec, mean: Tensor, log_sigma: Tensor | None = None) -> GaussianParams:
        """Parameters from flat vectors of shape ``(*batch, spec.total)`` (views, no copy).

        Raises:
            ValueError: the last dimension is not ``spec.total``, or ``log_sigma`` and ``mean``
                have different shapes.
        """
        if log_sigma is not None and log_sigma.shape != mean.shape:
            raise ValueError(f"log_sigma has shape {tuple(log_sigma.shape)}, mean has {tuple(mean.shape)}")
        ls = None if log_sigma is None else spec.unflatten(log_sigma)
        out = cls(spec.unflatten(mean), ls, tuple(mean.shape[:-1]), _flat=(mean, log_sigma))
        out._cache["spec"] = spec
        return out

    def _entries(self) -> tuple[Tensor, ...]:
        return (*self.mean.values(), *(() if self.log_sigma is None else self.log_sigma.values()))

    def _flat_or_none(self) -> tuple[Tensor, Tensor | None] | None:
        """The flat (mean, log_sigma) when they still back the dicts, else None."""
        if self._flat is None:
            return None
        now = self._entries()
        if len(now) != len(self._views) or any(a is not b for a, b in zip(now, self._views)):
            return None
        return self._flat

    def _flat_sigma(self, log_sigma: Tensor) -> Tensor:
        # Reused only while it is still right: same grad mode (a sigma made under no_grad must
        # not cut the KL's gradient) and log_sigma not modified in place since.
        try:
            key = (torch.is_grad_enabled(), log_sigma._version)
        except (RuntimeError, AttributeError):  # tensors inside torch.func transforms have no version
            return torch.exp(log_sigma)
        cached = self._cache.get("sigma")
        if cached is None or cached[0] != key:
            cached = (key, torch.exp(log_sigma))
            self._cache["sigma"] = cached
        return cached[1]

    def _spec(self) -> ParamSpec:
        if "spec" in self._cache:
            return self._cache["spec"]
        nb = len(self.batch_shape)
        return ParamSpec(tuple(self.mean), tuple(m.shape[nb:] for m in self.mean.values()))

    def _rebuild(self, fn) -> GaussianParams:
        """``fn`` applied to every tensor, keeping the flat layout when there is one."""
        flat = self._flat_or_none()
        if flat is not None:
            mean, ls = flat
            return GaussianParams.from_flat(self._spec(), fn(mean), None if ls is None else fn(ls))
        ls = None if self.log_sigma is None else {k: fn(v) for k, v in self.log_sigma.items()}
        return GaussianParams({k: fn(v) for k, v in self.mean.items()}, ls, self.batch_shape)

    @property
    def variational(self) -> bool:
        """True when the parameters carry a standard deviation."""
        return self.log_sigma is not None

    @property
    def sigma(self) -> dict[str, Tensor]:
        """Standard deviations exp(log_sigma)."""
        self.require_variational("sigma")
        return {k: torch.exp(v) for k, v in self.log_sigma.items()}

    def require_variational(self, what: str) -> None:
        """Check that these parameters have a sigma; ``what`` (e.g. "the ELBO") names the caller's need.

        Raises:
            ValueError: ``log_sigma`` is None (a deterministic model).
        """
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
        flat = self._flat_or_none()
        if flat is not None:  # one draw for the whole model
            mean, ls = flat
            eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
            return self._spec().unflatten(torch.addcmul(mean, self._flat_sigma(ls), eps))
        out = {}
        for k, m in self.mean.items():
            eps = torch.randn(m.shape, generator=generator, dtype=m.dtype, device=m.device)
            out[k] = m + torch.exp(self.log_sigma[k]) * eps
        return out

    def kl(self, prior_var: float | Tensor = 1.0) -> Tensor:
        """KL(q || N(0, prior_var * I)), summed over all weights (keeps ``batch_shape``).

        ``prior_var`` is a variance; a tensor of ``batch_shape`` gives one prior per batch entry.
        """
        self.require_variational("kl")
        check_prior_var(prior_var)
        return self._kl(prior_var)

    def _kl(self, prior_var: float | Tensor) -> Tensor:
        # No value checks here: this runs inside torch.func.vmap during training.
        nb = len(self.batch_shape)
        flat = self._flat_or_none()
        if flat is not None:
            # Sum first, then combine with the prior: the prior variance is one number per
            # batch entry, so the per-weight work is a few reductions over (..., P).
            return kl_to_prior_flat(flat[0], flat[1], prior_var, self._flat_sigma(flat[1]))
        # float64 for a Python float, so float64 parameters see the prior variance unrounded.
        pv = prior_var if isinstance(prior_var, Tensor) else torch.as_tensor(prior_var, dtype=torch.float64)
        total = 0.0
        for k, m in self.mean.items():
            p = pv.to(m.dtype)
            p = p.reshape(*p.shape, *([1] * (m.ndim - nb))) if p.ndim else p
            total = total + kl_to_prior(m, self.log_sigma[k], p).reshape(*self.batch_shape, -1).sum(-1)
        return total

    def sq_norm(self) -> Tensor:
        """Sum of squared means, ||w||^2 (the base loss penalty), keeping ``batch_shape``."""
        flat = self._flat_or_none()
        if flat is not None:
            return (flat[0] * flat[0]).sum(-1)
        total = 0.0
        for m in self.mean.values():
            total = total + (m * m).reshape(*self.batch_shape, -1).sum(-1)
        return total

    def detach(self) -> GaussianParams:
        """A copy cut from the autograd graph (the tensors are shared, not copied)."""
        return self._rebuild(Tensor.detach)

    def clone(self) -> GaussianParams:
        """A deep copy of the tensors."""
        return self._rebuild(Tensor.clone)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> GaussianParams:
        """The same parameters on ``device`` and/or in the floating ``dtype`` (e.g. ``torch.float64``).

        A new object; the tensors are detached only if ``Tensor.to`` copies them.

        Raises:
            ValueError: ``dtype`` is not floating point (log sigma must stay real).
        """
        if dtype is not None and not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating-point dtype such as torch.float64, got {dtype}")
        return self._rebuild(lambda t: t.to(device=device, dtype=dtype))

    def __getitem__(self, i: int) -> GaussianParams:
        """Entry ``i`` of the first batch dimension, e.g. the model at one lambda sample.

        Raises ``IndexError`` when there is no batch dimension.
        """
        if not self.batch_shape:
            raise IndexError("these GaussianParams have no batch dimension")
        flat = self._flat_or_none()
        if flat is not None:
            mean, ls = flat
            return GaussianParams.from_flat(self._spec(), mean[i], None if ls is None else ls[i])
        ls = None if self.log_sigma is None else {k: v[i] for k, v in self.log_sigma.items()}
        return GaussianParams({k: v[i] for k, v in self.mean.items()}, ls, self.batch_shape[1:])

    @classmethod
    def from_module(cls, module: nn.Module, log_sigma: float | None = None) -> GaussianParams:
        """The module's current parameters as means; a constant ``log_sigma`` if given."""
        mean = {n: p.detach().clone() for n, p in module.named_parameters()}
        ls = None if log_sigma is None else as_real(log_sigma, "log_sigma")
        ls = None if ls is None else {n: torch.full_like(m, ls) for n, m in mean.items()}
        return cls(mean, ls)
