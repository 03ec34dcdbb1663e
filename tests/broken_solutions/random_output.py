"""Broken on purpose: adds fresh noise to the means on every call."""

import torch
from torch import nn

import varhyper_mini as vh


class NoisyHypernet(vh.Hypernet):
    def __init__(self, target: nn.Module, **kwargs) -> None:
        super().__init__(target, **kwargs)
        self.mean_ends = nn.Parameter(self.initial_mean(target).repeat(2, 1))
        self.log_sigma_ends = nn.Parameter(self.initial_log_sigma().repeat(2, 1))

    def flat_params(self, u):
        w = torch.stack([1 - u, u], dim=-1)
        mean = w @ self.mean_ends
        return mean + 0.01 * torch.randn_like(mean), w @ self.log_sigma_ends  # bug: sampling in G
