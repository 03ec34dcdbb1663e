"""Reference solution of assignment 3: structured pruning of the MNIST MLP's hidden neurons.

A hidden neuron j of ``models.mnist_mlp`` owns row j of ``fc1.weight``, entry j of
``fc1.bias`` and column j of ``fc2.weight``; removing it zeroes all three, and a dense
implementation can then drop it: 784 + 10 multiply-accumulates fewer per image.

The relevance of a neuron extends the relative density |mu| / sigma of the paper's eq. (17) to a
group: the Euclidean norm of |mu| / sigma over the neuron's incoming weights times the norm over
its outgoing weights. A neuron matters only when it both reads something and passes it on.

Grade it with ``python -m varhyper_mini grade assignments/solutions/neuron_pruning.py``.
"""

from __future__ import annotations

import torch
from torch import Tensor

import varhyper_mini as vh


def neuron_scores(params: vh.GaussianParams) -> Tensor:
    """One relevance score per hidden neuron, shape (hidden,); larger means more relevant."""
    w_in, w_out = params.mean["fc1.weight"].detach().abs(), params.mean["fc2.weight"].detach().abs()
    if params.variational:
        w_in = w_in / torch.exp(params.log_sigma["fc1.weight"].detach())
        w_out = w_out / torch.exp(params.log_sigma["fc2.weight"].detach())
    return w_in.norm(dim=1) * w_out.norm(dim=0)


def prune_neurons(params: vh.GaussianParams, fraction: float) -> vh.GaussianParams:
    """Remove the ``round(fraction * hidden)`` least relevant hidden neurons (new object)."""
    if not isinstance(fraction, (int, float)) or not 0.0 <= float(fraction) <= 1.0:
        raise ValueError(f"fraction must be a number in [0, 1], got {fraction!r}")
    scores = neuron_scores(params)
    count = round(fraction * scores.numel())
    drop = torch.argsort(scores, stable=True)[:count]
    out = params.detach().clone()
    out.mean["fc1.weight"][drop] = 0.0
    out.mean["fc1.bias"][drop] = 0.0
    out.mean["fc2.weight"][:, drop] = 0.0
    return out


def count_macs(params: vh.GaussianParams) -> int:
    """Multiply-accumulates per image of a dense MLP that skips the removed neurons."""
    m = params.mean
    dead = (m["fc1.weight"] == 0).all(1) & (m["fc1.bias"] == 0) & (m["fc2.weight"] == 0).all(0)
    alive = int((~dead).sum())
    return alive * (m["fc1.weight"].shape[1] + m["fc2.weight"].shape[0])
