"""Reference solution of assignment 1: a small MLP hypernetwork on u.

G(u) = c + tanh(u * a + b) @ V, for means and log standard deviations alike: a hidden layer of
``hidden`` tanh units reads the encoded lambda u, and a linear layer maps them to the target's
parameters. It stores 2 * P * (hidden + 1) + 2 * hidden values (P the target's parameter count),
so ``hidden = n_pieces`` matches the budget of a piecewise-linear hypernetwork with
``n_pieces`` regions, and ``hidden = 1`` that of the linear one (up to 2 * hidden values).

Grade it with ``python -m varhyper_mini grade assignments/solutions/mlp_hypernet.py``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

import varhyper_mini as vh


class MLPHypernet(vh.Hypernet):
    """A one-hidden-layer network from u to the target's means (and log sigmas).

    Args:
        target: the model whose parameters are generated.
        hidden: number of tanh units reading u.
        **kwargs: ``lam_range``, ``variational``, ``init_log_sigma`` of ``Hypernet``.

    The output layer starts at zero, so at initialisation every lambda gives the target's own
    parameters, as the package's forms do. The hidden units' centres -b/a are spread evenly over
    [0, 1], so that each unit bends the curve at a different lambda, much like the knots of the
    piecewise-linear form, but they can move during training.
    """

    def __init__(self, target: nn.Module, hidden: int = 5, **kwargs) -> None:
        if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden < 1:
            raise ValueError(f"hidden must be a positive integer, got {hidden!r}")
        super().__init__(target, **kwargs)
        self.hidden = hidden
        p = self.spec.total
        slope = 2.0 * hidden  # steep enough that each unit turns within about 1/hidden of u
        centres = (torch.arange(hidden, dtype=torch.get_default_dtype()) + 0.5) / hidden
        self.in_weight = nn.Parameter(torch.full((hidden,), slope))
        self.in_bias = nn.Parameter(-slope * centres)
        self.mean_base = nn.Parameter(self.initial_mean(target))
        self.mean_out = nn.Parameter(torch.zeros(hidden, p))
        if self.variational:
            self.log_sigma_base = nn.Parameter(self.initial_log_sigma())
            self.log_sigma_out = nn.Parameter(torch.zeros(hidden, p))
        else:
            self.log_sigma_base = self.log_sigma_out = None

    def features(self, u: Tensor) -> Tensor:
        """The hidden layer, shape (k, hidden), for u of shape (k,)."""
        return torch.tanh(u[:, None] * self.in_weight + self.in_bias)

    def flat_params(self, u: Tensor) -> tuple[Tensor, Tensor | None]:
        z = self.features(u.to(self.mean_out.dtype))
        mean = self.mean_base + z @ self.mean_out
        if self.log_sigma_out is None:
            return mean, None
        return mean, self.log_sigma_base + z @ self.log_sigma_out

    def extra_repr(self) -> str:
        return f"hidden={self.hidden}, " + super().extra_repr()
