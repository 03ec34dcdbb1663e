"""Broken on purpose: computes u itself in forward and lets nan and inf through."""

import math

import torch
from torch import nn

import varhyper_mini as vh


class NoCheckHypernet(vh.Hypernet):
    def __init__(self, target: nn.Module, **kwargs) -> None:
        super().__init__(target, **kwargs)
        self.mean_ends = nn.Parameter(self.initial_mean(target).repeat(2, 1))
        self.log_sigma_ends = nn.Parameter(self.initial_log_sigma().repeat(2, 1)) if self.variational else None

    def flat_params(self, u):
        w = torch.stack([1 - u, u], dim=-1)
        return w @ self.mean_ends, None if self.log_sigma_ends is None else w @ self.log_sigma_ends

    def forward(self, lam):
        lo, hi = self.lam_range
        u = (math.log(lam) - math.log(lo)) / (math.log(hi) - math.log(lo))  # bug: no check
        return self._to_params(*self.flat_params(torch.tensor([u])))[0]
