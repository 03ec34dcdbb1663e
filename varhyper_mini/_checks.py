"""Argument checks shared by the public entry points (one place, one wording).

Every public function that takes a number accepts Python numbers, NumPy scalars and 0-d
tensors, and refuses bools; values that feed float32 arithmetic (lambda, prior variances)
must lie inside the float32 range, so that a value checked in double precision cannot
become inf or 0 where it is used.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch import Tensor, nn

# Positive values that float32 represents as normal numbers: lambda and prior variances must
# lie in this range, or they become inf or 0 (then log 0 = -inf) in float32 training.
F32_TINY = float(torch.finfo(torch.float32).tiny)
F32_MAX = float(torch.finfo(torch.float32).max)
# init_log_sigma: sigma = exp(log sigma) and sigma^2 stay finite and non-zero in float32.
LOG_SIGMA_RANGE = (-30.0, 10.0)


def as_real(value, name: str) -> float:
    """``value`` as a Python float: a real number (int, float, NumPy scalar, 0-d tensor), not a bool.

    Raises ``ValueError`` naming ``name`` otherwise. Non-finite values are returned as they are.
    """
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a number, got the bool {value!r}")
    if isinstance(value, Tensor):
        if value.ndim != 0 or value.dtype == torch.bool or value.is_complex() or value.device.type == "meta":
            raise ValueError(
                f"{name} must be a single real number, got a {value.dtype} tensor of shape {tuple(value.shape)} "
                f"on {value.device}"
            )
        return float(value.detach().cpu())
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        return float(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise ValueError(
        f"{name} must be a real number (int, float, NumPy scalar or 0-d tensor), got {value!r} ({type(value).__name__})"
    )


def as_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as a Python int >= ``minimum``: an int, NumPy integer or 0-d integer tensor, not a bool or float."""
    ok = isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))
    if isinstance(value, Tensor) and value.ndim == 0 and not value.is_floating_point() and value.dtype != torch.bool:
        ok, value = True, int(value)
    if not ok or int(value) < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {kind}, got {value!r} ({type(value).__name__})")
    return int(value)


def as_positive(value, name: str, f32: bool = False) -> float:
    """A positive finite real number; with ``f32`` also a normal float32 number (no overflow, no underflow)."""
    v = as_real(value, name)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be positive and finite, got {v!r}")
    if f32 and not (F32_TINY <= v <= F32_MAX):
        raise ValueError(
            f"{name} = {v!r} is outside the float32 range [{F32_TINY:.3g}, {F32_MAX:.3g}] in which training computes; "
            "use a value inside it"
        )
    return v


def check_target(target: nn.Module) -> None:
    """Refuse target modules whose state the hypernetwork does not model (raises ``ValueError``).

    - running statistics (BatchNorm, InstanceNorm with ``track_running_stats=True``): one set of
      buffers cannot serve every lambda, and updating it would mix the models of all lambdas;
    - frozen parameters (``requires_grad=False``): the hypernetwork generates, and trains, every
      parameter of the target;
    - parameters on the ``meta`` device: they hold no values to start from;
    - parameters of several dtypes, or of a dtype other than float32 and float64.
    """
    if not isinstance(target, nn.Module):
        raise ValueError(f"target must be a torch.nn.Module, got {type(target).__name__}")
    for mname, mod in target.named_modules():
        if getattr(mod, "track_running_stats", False) and getattr(mod, "running_mean", None) is not None:
            where = mname or "the target itself"
            raise ValueError(
                f"submodule {where!r} ({type(mod).__name__}) keeps running statistics, which one hypernetwork cannot "
                f"keep per lambda. Build it with track_running_stats=False (batch statistics in training and "
                f"evaluation), or use a normalisation without state such as nn.LayerNorm or nn.GroupNorm."
            )
    dtypes = {p.dtype for p in target.parameters()}
    if len(dtypes) > 1 or not dtypes <= {torch.float32, torch.float64}:
        raise ValueError(
            f"the target's parameters are {sorted(map(str, dtypes))}; hypernetworks support one dtype, float32 or "
            "float64, for all of them: convert the target with target.float() or target.double()"
        )
    for pname, p in target.named_parameters():
        if not p.requires_grad:
            raise ValueError(
                f"parameter {pname!r} of the target has requires_grad=False (frozen), but the hypernetwork generates "
                f"and trains every parameter. Apply the frozen part outside the target (e.g. to the data first), "
                f"or unfreeze it with requires_grad_(True)."
            )
        if p.device.type == "meta":
            raise ValueError(
                f"parameter {pname!r} of the target is on the meta device and holds no values; build the target "
                f"on a real device (e.g. call target.to_empty(device='cpu') and initialise it)"
            )


def check_has_values(tensors, what: str = "the parameters") -> None:
    """``ValueError`` when any of ``tensors`` is on the meta device (a tensor without values)."""
    if any(t.device.type == "meta" for t in tensors):
        raise ValueError(f"{what} are on the meta device and hold no values; move them to a real device first")


def check_positive_ints(config, names) -> None:
    """Raise ``ValueError`` for the first field of ``config`` in ``names`` that is not an int >= 1 (bools refused).

    The one rule behind the study's, the Wine experiment's and the cost study's ``validate``.
    """
    for name in names:
        v = getattr(config, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def check_lam_range(lam_range) -> tuple[float, float]:
    """``(lo, hi)`` of a lambda prior's support, as floats: two numbers with 0 < lo < hi, both normal float32 numbers.

    The one rule behind the hypernetworks' ``lam_range`` and the study, Wine and cost-study configs.
    Raises ``ValueError`` naming ``lam_range`` otherwise.
    """
    try:
        lo, hi = lam_range
    except (TypeError, ValueError):
        raise ValueError(f"lam_range must be two numbers (lo, hi), got {lam_range!r}") from None
    lo, hi = as_positive(lo, "lam_range", f32=True), as_positive(hi, "lam_range", f32=True)
    if not lo < hi:
        raise ValueError(f"lam_range must satisfy 0 < lo < hi < inf, got {lam_range!r}")
    return lo, hi


def check_fractions(fractions) -> None:
    """Raise ``ValueError`` for the first pruning fraction (share of weights deleted) outside [0, 1]."""
    for f in fractions:
        if not 0 <= f <= 1:
            raise ValueError(f"pruning fractions must be in [0, 1], got {f}")
