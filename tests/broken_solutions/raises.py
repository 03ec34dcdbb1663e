"""Broken on purpose: one class multiplies in the wrong order, one needs an argument."""

import torch
from torch import nn

import varhyper_mini as vh


class WrongOrderHypernet(vh.Hypernet):
    def __init__(self, target: nn.Module, **kwargs) -> None:
        super().__init__(target, **kwargs)
        self.mean_ends = nn.Parameter(self.initial_mean(target).repeat(2, 1))
        self.log_sigma_ends = nn.Parameter(self.initial_log_sigma().repeat(2, 1))

    def flat_params(self, u):
        w = torch.stack([1 - u, u], dim=-1)
        return self.mean_ends @ w, self.log_sigma_ends @ w  # bug: (2, P) @ (k, 2)


class NeedsRankHypernet(vh.Hypernet):
    def __init__(self, target: nn.Module, rank: int, **kwargs) -> None:  # no default for rank
        super().__init__(target, **kwargs)
        self.factors = nn.Parameter(torch.zeros(rank, self.spec.total))

    def flat_params(self, u):
        raise NotImplementedError
