"""varhyper_mini: one hypernetwork G(lambda) for a whole family of (variational) models.

A small PyTorch package behind the book on "Deep Learning Model Selection With Parametric
Complexity Control" (Grebenkova, Bakhteev, Strijov, ICAART 2023). The modules follow the
pipeline: data -> models -> gaussian -> hypernets -> losses -> train -> prune -> theory;
``evidence`` holds the exact-evidence toy model of chapter 1 and ``selection`` the tools for choosing lambda.
"""

from __future__ import annotations

from . import data, evidence, losses, models, selection, theory
from .config import pick, quick_mode
from .data import DataCorruptError, DataNotFoundError, TensorData
from .gaussian import GaussianParams, ParamSpec
from .hypernets import (
    ConstantHypernet,
    Hypernet,
    LinearHypernet,
    PiecewiseLinearHypernet,
    functional_forward,
)
from .prune import FRACTIONS, prune, pruning_curve, relevance, sparsity
from .train import History, LogUniform, accuracy, evaluate, predict, train, train_many

__version__ = "0.1.0"

__all__ = [
    "ConstantHypernet",
    "DataCorruptError",
    "DataNotFoundError",
    "FRACTIONS",
    "GaussianParams",
    "History",
    "Hypernet",
    "LinearHypernet",
    "LogUniform",
    "ParamSpec",
    "PiecewiseLinearHypernet",
    "TensorData",
    "accuracy",
    "data",
    "evaluate",
    "evidence",
    "functional_forward",
    "losses",
    "models",
    "pick",
    "predict",
    "prune",
    "pruning_curve",
    "quick_mode",
    "relevance",
    "selection",
    "sparsity",
    "theory",
    "train",
    "train_many",
]
