"""Calibration: how far a model's confidence is from its accuracy, against lambda and pruning.

The expected calibration error (ECE) follows Guo, Pleiss, Sun and Weinberger, "On Calibration of
Modern Neural Networks" (ICML 2017), eq. (3), with equal-width confidence bins; the paper
evaluates the mean weights only, and ``calibration_table`` adds Monte Carlo-averaged predictions.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import Tensor, nn

from .._checks import as_int
from ..data import TensorData
from ..evaluation import check_data, predict
from ..hypernets import Hypernet, check_lam
from ..pruning import check_fraction, prune

__all__ = ["expected_calibration_error", "prediction_metrics", "calibration_table"]

_EPS = 1e-12  # probabilities are clamped to this before the log of the NLL


def expected_calibration_error(probs: Tensor, labels: Tensor, n_bins: int = 15) -> float:
    """Expected calibration error of the top-class confidence, with ``n_bins`` equal-width bins.

    ECE = sum_b (|B_b| / n) * |accuracy(B_b) - mean confidence(B_b)| (Guo et al. 2017, eq. 3),
    where the confidence of an example is its largest class probability and bin b holds
    confidences in (b/n_bins, (b+1)/n_bins] (the first bin also holds 0). 0 means perfectly
    calibrated on these data; the value is a share in [0, 1], computed in float64.

    Args:
        probs: class probabilities, shape (N, C) with C >= 2 (softmax outputs, not logits).
        labels: true classes, shape (N,), integers in [0, C).
        n_bins: the number of equal-width confidence bins, a positive integer.
    Raises:
        ValueError: for wrong shapes, no examples, ``n_bins`` not a positive integer, or
            values of ``probs`` that are not finite probabilities in [0, 1].
    """
    probs = torch.as_tensor(probs)
    labels = torch.as_tensor(labels)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"probs must have shape (N, C) with C >= 2 classes, got {tuple(probs.shape)}")
    if labels.ndim != 1 or len(labels) != len(probs):
        raise ValueError(f"labels must have shape ({len(probs)},), got {tuple(labels.shape)}")
    if len(labels) == 0:
        raise ValueError("no examples: probs and labels are empty")
    n_bins = as_int(n_bins, "n_bins")
    p = probs.detach().to(torch.float64).cpu()
    if not bool(torch.all(torch.isfinite(p) & (p >= 0) & (p <= 1 + 1e-6))):
        raise ValueError("probs must be probabilities in [0, 1] (apply softmax to logits first)")
    conf, pred = p.max(1)
    correct = (pred == labels.cpu()).to(torch.float64)
    inner = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)[1:-1]
    idx = torch.bucketize(conf.clamp(0, 1), inner, right=False)  # (edge_b, edge_b+1]
    gap = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, idx, correct - conf)
    return float(gap.abs().sum() / len(labels))


def prediction_metrics(probs: Tensor, labels: Tensor, n_bins: int = 15) -> dict[str, float]:
    """Accuracy, mean negative log-likelihood and ECE of class probabilities.

    Args:
        probs: class probabilities, shape (N, C), e.g. from ``vh.predict``.
        labels: true classes, shape (N,).
        n_bins: bins of the ECE (see ``expected_calibration_error``).
    Returns:
        ``{"accuracy", "nll", "ece"}``: accuracy and ECE as shares in [0, 1], the NLL in nats per
        example (probabilities clamped at 1e-12 before the log), means taken in float64.
    Raises:
        ValueError: as ``expected_calibration_error``.
    """
    ece = expected_calibration_error(probs, labels, n_bins)
    labels = labels.to(probs.device)
    acc = float((probs.argmax(1) == labels).double().mean())
    nll = float(-torch.log(probs.gather(1, labels[:, None]).clamp_min(_EPS)).double().mean())
    return {"accuracy": acc, "nll": nll, "ece": ece}


def calibration_table(
    hypernet: Hypernet,
    target: nn.Module,
    data: TensorData,
    lams: Sequence[float],
    fractions: Sequence[float] = (0.0,),
    mc_samples: int = 8,
    criterion: str = "var",
    scope: str = "layer",
    n_bins: int = 15,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy, NLL and ECE against lambda and the share of deleted weights.

    Each lambda's model G(lambda) is pruned by Algorithm 2 (``vh.prune``, weight tensors only, as
    the paper) at every share of ``fractions``. Each (lambda, fraction) gives two rows:
    ``prediction="mean"`` (the mean weights, as the paper evaluates) and ``prediction="mc"``
    (class probabilities averaged over ``mc_samples`` weight draws, ``vh.predict(...,
    mc_samples=n)``; deleted weights stay at zero). A deterministic hypernetwork, or
    ``mc_samples=0``, gives only the "mean" rows. The draws for lambda number i use a generator
    seeded with ``seed + i``.

    Returns:
        One row per (lambda, fraction, prediction): ``lam``, ``fraction``, ``prediction``,
        ``mc_samples`` and the ``prediction_metrics`` columns ``accuracy``, ``nll``, ``ece``.
    Raises:
        ValueError: for an invalid lambda (outside (0, inf), a bool), a fraction outside
            [0, 1], ``mc_samples`` < 0, empty data, or the errors of ``vh.prune``.
    """
    check_data(data, "data")
    mc_samples = as_int(mc_samples, "mc_samples", minimum=0)
    lams = [float(check_lam(v)) for v in lams]
    fractions = [check_fraction(f, "fractions") for f in fractions]
    rows = []
    dev = hypernet.device
    with torch.no_grad():
        for i, lam in enumerate(lams):
            params = hypernet(lam)
            for f in fractions:
                pp = prune(params, f, criterion, scope)  # deleted weights have sigma 0: MC never resamples them
                kinds = [("mean", 0)]
                if mc_samples and params.variational:
                    kinds.append(("mc", mc_samples))
                for name, s in kinds:
                    g = torch.Generator(device=dev).manual_seed(seed + i)
                    probs = predict(target, pp, data, mc_samples=s, generator=g)
                    m = prediction_metrics(probs, data.y, n_bins)
                    rows.append({"lam": float(lam), "fraction": float(f), "prediction": name,
                                 "mc_samples": s, **m})  # fmt: skip
    return pd.DataFrame(rows)
