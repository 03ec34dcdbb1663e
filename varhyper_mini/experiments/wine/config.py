"""The Wine experiment's settings, names and seeds (paper section 4.1, Figure 3, Theorem 2).

``WineConfig`` holds every setting; ``model_name`` and ``lam_key`` name the rows of the results
tables (``CSV_COLUMNS``, ``STAGES``); ``model_seed`` and ``run_target`` fix every model's randomness.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ... import models
from ..._checks import check_fractions, check_lam_range, check_positive_ints
from ...hypernets import lambda_key
from ...provenance import seed_from_name
from ...pruning import FRACTIONS

__all__ = ["WineConfig", "CSV_COLUMNS", "STAGES", "lam_key", "model_name", "model_seed", "run_target"]

#: The columns of ``sym_kl.csv``, in order.
CSV_COLUMNS = ["model", "n_pieces", "lam", "run", "stage", "accuracy", "sym_kl"]
#: The stages of a model in ``sym_kl.csv``: as trained, after fine-tuning, one epoch from scratch.
STAGES = ("trained", "finetuned", "scratch1")


def _half_decades() -> tuple[float, ...]:
    return tuple(float(10 ** (2 + 0.5 * i)) for i in range(9))


@dataclass
class WineConfig:
    """Every setting of the Wine experiment; the defaults are the paper's section 4.1.

    Attributes:
        lams: the lambdas of Figure 3 (direct models, accuracies, D_KL, fine-tuning).
        gap_lams: the lambdas over which the expected loss gap of Theorem 2 is averaged
            (a grid even in log lambda, so its mean approximates E over log-uniform lambda).
            Direct models are trained at ``lams`` and ``gap_lams`` together.
        lam_range: Lambda, the hypernetworks' training range (log-uniform prior).
        pieces: the piecewise-linear hypernetworks' numbers of regions N (eq. (13)); N = 1 is
            the linear hypernetwork of eq. (12).
        runs: independent repetitions (own init, data order, lambda draws, noise).
        epochs, batch_size, lr: Adam training of every model (paper: 200, 1, 5e-4).
        lam_samples: lambdas drawn per batch for the hypernetworks (authors' code: 5).
        finetune_epochs: epochs of fine-tuning at fixed lambda, and of the from-scratch baseline.
        init_log_sigma, prior_var, clip_value: the initial log sigma, the prior variance and
            the gradient clipping of ``train``.
        loss_samples: Monte Carlo draws of w ~ q for the expected loss of Theorem 2.
        fractions: pruning fractions of the pruning curves, in [0, 1].
        seed: the base seed that every model's seed adds (``model_seed``).
    """

    lams: tuple[float, ...] = (1e2, 1e3, 1e4, 1e5, 1e6)
    gap_lams: tuple[float, ...] = field(default_factory=_half_decades)
    lam_range: tuple[float, float] = (1e2, 1e6)
    pieces: tuple[int, ...] = (1, 2, 3, 5, 8)
    runs: int = 5
    epochs: int = 200
    batch_size: int = 1
    lr: float = 5e-4
    lam_samples: int = 5
    finetune_epochs: int = 1
    init_log_sigma: float = -3.0
    prior_var: float = 1.0
    clip_value: float | None = 1.0
    loss_samples: int = 512
    fractions: tuple[float, ...] = FRACTIONS
    seed: int = 0

    def validate(self) -> None:
        """Check every setting; returns None when they are all valid.

        Raises:
            ValueError: the first bad setting, named: a ``lam_range`` without 0 < lo < hi < inf; empty
                ``lams`` or ``gap_lams``, or a lambda of them outside ``lam_range``; ``pieces`` that
                are not distinct positive integers; a count (``runs``, ``epochs``, ``batch_size``,
                ``lam_samples``, ``finetune_epochs``, ``loss_samples``) that is not a positive
                integer; ``lr`` not positive; a pruning fraction outside [0, 1].
        """
        lo, hi = check_lam_range(self.lam_range)
        for name in ("lams", "gap_lams"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name} must not be empty")
            for lam in values:
                if not lo * (1 - 1e-9) <= lam <= hi * (1 + 1e-9):
                    raise ValueError(f"every lambda of {name} must lie in lam_range {self.lam_range}, got {lam}")
        if not self.pieces or len(set(self.pieces)) != len(self.pieces):
            raise ValueError(f"pieces must be distinct positive integers, got {self.pieces!r}")
        for n in self.pieces:
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"pieces must be distinct positive integers, got {self.pieces!r}")
        check_positive_ints(self, ("runs", "epochs", "batch_size", "lam_samples", "finetune_epochs", "loss_samples"))
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        check_fractions(self.fractions)

    @property
    def direct_lams(self) -> tuple[float, ...]:
        """``lams`` and ``gap_lams`` together, sorted, without duplicates."""
        out: dict[float, float] = {}
        for lam in (*self.lams, *self.gap_lams):
            out.setdefault(lam_key(lam), float(lam))
        return tuple(out[k] for k in sorted(out))


lam_key = lambda_key  # the package's one rule for lambda equality (``hypernets.lambda_key``)


def model_name(n_pieces: int) -> str:
    """The CSV's model name of a hypernetwork with ``n_pieces`` regions: "linear" for N = 1, else "piecewise"."""
    return "linear" if n_pieces == 1 else "piecewise"


def model_seed(cfg: WineConfig, name: str) -> int:
    """The seed of the model (or Monte Carlo estimate) called ``name``: ``seed_from_name(name, cfg.seed)``.

    The names are ``"init__run-{run}"``, ``"direct__lam-{lam:g}__run-{run}"``, ``"hyper-{n}__run-{run}"``,
    ``"finetune-{n}__lam-{lam:g}__run-{run}"``, ``"scratch__lam-{lam:g}__run-{run}"`` and
    ``"loss__lam-{lam:g}__run-{run}"``; the formula is the study's, so the committed results keep their seeds.
    """
    return seed_from_name(name, cfg.seed)


def run_target(cfg: WineConfig, run: int) -> nn.Module:
    """The logistic regression 13 -> 3 whose init all models of ``run`` start from (a fresh module each call).

    Its init comes from ``model_seed(cfg, f"init__run-{run}")``; the global RNG is left as it was.
    """
    with torch.random.fork_rng():
        torch.manual_seed(model_seed(cfg, f"init__run-{run}"))
        return models.wine_logreg()
