"""Broken on purpose: stores two end points but always mixes them half and half."""

import torch
from torch import nn

import varhyper_mini as vh


class IgnoresLambdaHypernet(vh.Hypernet):
    def __init__(self, target: nn.Module, **kwargs) -> None:
        super().__init__(target, **kwargs)
        self.mean_ends = nn.Parameter(self.initial_mean(target).repeat(2, 1))
        self.log_sigma_ends = nn.Parameter(self.initial_log_sigma().repeat(2, 1)) if self.variational else None

    def flat_params(self, u):
        t = torch.full_like(u, 0.5)  # bug: should be u
        w = torch.stack([1 - t, t], dim=-1)
        return w @ self.mean_ends, None if self.log_sigma_ends is None else w @ self.log_sigma_ends
