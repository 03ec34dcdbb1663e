"""Broken on purpose: the outputs are cut from the stored parameters' autograd graph."""

import torch
from torch import nn

import varhyper_mini as vh


class _Ends(vh.Hypernet):
    def __init__(self, target: nn.Module, **kwargs) -> None:
        super().__init__(target, **kwargs)
        self.mean_ends = nn.Parameter(self.initial_mean(target).repeat(2, 1))
        self.log_sigma_ends = nn.Parameter(self.initial_log_sigma().repeat(2, 1))

    def _mix(self, u):
        w = torch.stack([1 - u, u], dim=-1)
        return w @ self.mean_ends, w @ self.log_sigma_ends


class DetachedHypernet(_Ends):
    def flat_params(self, u):
        mean, log_sigma = self._mix(u)
        return mean.detach(), log_sigma.detach()  # bug


class NoGradHypernet(_Ends):
    def flat_params(self, u):
        with torch.no_grad():  # bug
            return self._mix(u)
