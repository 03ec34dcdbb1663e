"""Reference solution of assignment 2: a Laplace prior in place of the Gaussian one.

The prior is p(w) = exp(-|w| / b) / (2 b) for every weight, with b = 1 / sqrt(2), so that its
variance 2 b^2 equals the variance 1 of the book's Gaussian prior N(0, 1). With
q(w) = N(mu, sigma^2) the KL divergence has a closed form:

    KL(q || p) = E_q[log q] - E_q[log p] = -(1/2) log(2 pi e sigma^2) + log(2 b) + E_q|w| / b,

where E_q|w| = sigma sqrt(2/pi) exp(-mu^2 / (2 sigma^2)) + mu erf(mu / (sigma sqrt 2)) is the
mean of a folded normal distribution.

Grade it with ``python -m varhyper_mini grade assignments/solutions/laplace_prior.py``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

SCALE = 1 / math.sqrt(2)


def log_prior(w: Tensor) -> Tensor:
    """log p(w) of the Laplace prior with scale ``SCALE``, elementwise."""
    return -math.log(2 * SCALE) - w.abs() / SCALE


def expected_abs(mean: Tensor, log_sigma: Tensor) -> Tensor:
    """E|w| for w ~ N(mean, exp(log_sigma)^2): the mean of a folded normal distribution."""
    sigma = torch.exp(log_sigma)
    z = mean / sigma
    return sigma * math.sqrt(2 / math.pi) * torch.exp(-0.5 * z * z) + mean * torch.erf(z / math.sqrt(2))


def kl_penalty(mean: Tensor, log_sigma: Tensor) -> Tensor:
    """KL(N(mean, exp(log_sigma)^2) || Laplace(0, SCALE)), elementwise."""
    neg_entropy = -0.5 * math.log(2 * math.pi * math.e) - log_sigma
    return neg_entropy + math.log(2 * SCALE) + expected_abs(mean, log_sigma) / SCALE
