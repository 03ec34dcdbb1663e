"""varhyper_mini: one hypernetwork G(lambda) for a whole family of (variational) models.

A small PyTorch package behind the book on "Deep Learning Model Selection With Parametric
Complexity Control" (Grebenkova, Bakhteev, Strijov, ICAART 2023). The modules follow the
pipeline: data -> models -> gaussian -> hypernets -> losses -> training, evaluation -> pruning -> theory;
``evidence`` holds the exact-evidence toy model of chapter 1, ``families`` the comparison of hypernetwork
forms against directly trained models (chapter 3) and ``selection`` the tools for choosing lambda.

The functions ``train`` (Algorithm 1) and ``prune`` (Algorithm 2) are the package's front door, so
their modules are ``training`` and ``pruning``. The old module paths ``varhyper_mini.train`` and
``varhyper_mini.prune`` still import, with a ``DeprecationWarning``, for one release.
"""

from __future__ import annotations

import sys as _sys
import types as _types
import warnings as _warnings

from . import data, evaluation, evidence, families, losses, models, pruning, selection, theory, training
from .config import pick, quick_mode
from .data import DataCorruptError, DataNotFoundError, TensorData
from .evaluation import accuracy, evaluate, predict
from .gaussian import GaussianParams, ParamSpec
from .hypernets import (
    ConstantHypernet,
    Hypernet,
    LinearHypernet,
    PiecewiseLinearHypernet,
    functional_forward,
)
from .pruning import FRACTIONS, prune, pruning_curve, relevance, sparsity
from .training import History, LogUniform, train, train_many

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
    "evaluation",
    "evidence",
    "families",
    "functional_forward",
    "losses",
    "models",
    "pick",
    "predict",
    "prune",
    "pruning",
    "pruning_curve",
    "quick_mode",
    "relevance",
    "selection",
    "sparsity",
    "theory",
    "train",
    "train_many",
    "training",
]


class _MovedModule(_types.ModuleType):
    """The old path of a renamed module: every attribute comes from the new one, with a DeprecationWarning."""

    def __init__(self, old: str, names: tuple[str, ...], *new: _types.ModuleType):
        super().__init__(f"varhyper_mini.{old}")
        self._new = new
        # The old module's public names: ``from varhyper_mini.prune import *`` imports them (each with the warning).
        self.__all__ = list(names)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        for module in self._new:
            if hasattr(module, name):
                _warnings.warn(
                    f"{self.__name__} is now {module.__name__}; import {name} from there (the old path goes in 0.2)",
                    DeprecationWarning,
                    stacklevel=2,
                )
                return getattr(module, name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")


# Registered in _sys.modules only: the package attributes ``train`` and ``prune`` stay the functions.
# Known limit: ``import varhyper_mini.prune as p`` binds the function ``vh.prune`` (Python resolves
# ``as`` by attribute); ``from varhyper_mini.prune import ...`` and ``import varhyper_mini.prune`` get the shim.
_OLD_TRAIN = ("LogUniform", "History", "train", "train_many", "accuracy", "evaluate", "predict")
_OLD_PRUNE = ("prune", "pruning_masks", "apply_masks", "layer_input_means", "correct_biases", "relevance",
              "prunable_names", "pruning_curve", "FRACTIONS", "CRITERIA", "SCOPES", "sparsity", "check_fraction",
              "nothing_to_prune")  # fmt: skip
_sys.modules.setdefault("varhyper_mini.train", _MovedModule("train", _OLD_TRAIN, training, evaluation))
_sys.modules.setdefault("varhyper_mini.prune", _MovedModule("prune", _OLD_PRUNE, pruning))
