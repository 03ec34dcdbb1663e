"""Broken on purpose: uses the nearest knot (piecewise constant) without declaring it."""

import torch
from torch import nn

import varhyper_mini as vh


class NearestKnotHypernet(vh.Hypernet):
    def __init__(self, target: nn.Module, n_knots: int = 4, **kwargs) -> None:
        super().__init__(target, **kwargs)
        self.n_knots = n_knots
        self.mean_knots = nn.Parameter(self.initial_mean(target).repeat(n_knots, 1))
        self.log_sigma_knots = nn.Parameter(self.initial_log_sigma().repeat(n_knots, 1)) if self.variational else None

    def flat_params(self, u):
        i = torch.clamp(torch.round(u * (self.n_knots - 1)), 0, self.n_knots - 1).long()
        return self.mean_knots[i], None if self.log_sigma_knots is None else self.log_sigma_knots[i]
