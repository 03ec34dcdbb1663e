"""Broken on purpose: divides by u, which is 0 at the lower end of the lambda range."""

import torch
from torch import nn

import varhyper_mini as vh


class OverUHypernet(vh.Hypernet):
    def __init__(self, target: nn.Module, **kwargs) -> None:
        super().__init__(target, **kwargs)
        self.base = nn.Parameter(self.initial_mean(target))
        self.slope = nn.Parameter(torch.zeros(self.spec.total))
        self.log_sigma = nn.Parameter(self.initial_log_sigma())

    def flat_params(self, u):
        mean = self.base + self.slope / u[:, None]  # bug: 0 / 0 at u = 0
        return mean, self.log_sigma.expand_as(mean)
