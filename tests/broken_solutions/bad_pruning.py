"""Broken on purpose (assignment 3): zeroes the incoming weights only, so neurons stay half alive."""

import torch


def prune_neurons(params, fraction):
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    scores = params.mean["fc1.weight"].abs().sum(1)
    drop = torch.argsort(scores)[: round(fraction * scores.numel())]
    out = params.detach().clone()
    out.mean["fc1.weight"][drop] = 0.0  # bug: fc1.bias and the fc2.weight columns are kept
    return out
