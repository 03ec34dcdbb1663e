"""Broken on purpose: sizes the stored vectors by the weight matrices only, forgetting the biases."""

import torch
from torch import nn

import varhyper_mini as vh


class WrongShapesHypernet(vh.Hypernet):
    def __init__(self, target: nn.Module, **kwargs) -> None:
        super().__init__(target, **kwargs)
        n_weights = sum(p.numel() for p in target.parameters() if p.ndim > 1)  # bug: no biases
        self.mean_ends = nn.Parameter(0.01 * torch.randn(2, n_weights))
        self.log_sigma_ends = nn.Parameter(torch.full((2, n_weights), -3.0))

    def flat_params(self, u):
        w = torch.stack([1 - u, u], dim=-1)
        return w @ self.mean_ends, w @ self.log_sigma_ends
