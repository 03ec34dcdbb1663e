"""The old paths of renamed modules, kept importable for one release (imported first by the package).

``varhyper_mini.train`` became ``training`` and ``varhyper_mini.prune`` became ``pruning``, so that
the package attributes ``train`` and ``prune`` are the functions of Algorithms 1 and 2, not
modules. The old paths are registered in ``sys.modules`` only; reading a name through them warns.
"""

from __future__ import annotations

import sys
import types
import warnings

from . import evaluation, pruning, training


class _MovedModule(types.ModuleType):
    """The old path of a renamed module: every attribute comes from the new one, with a DeprecationWarning."""

    def __init__(self, old: str, *new: types.ModuleType):
        super().__init__(f"varhyper_mini.{old}")
        self._new = new

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        for module in self._new:
            if hasattr(module, name):
                warnings.warn(
                    f"{self.__name__} is now {module.__name__}; import {name} from there (the old path goes in 0.2)",
                    DeprecationWarning,
                    stacklevel=2,
                )
                return getattr(module, name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")


# Registered in sys.modules only: the package attributes ``train`` and ``prune`` stay the functions.
sys.modules.setdefault("varhyper_mini.train", _MovedModule("train", training, evaluation))
sys.modules.setdefault("varhyper_mini.prune", _MovedModule("prune", pruning))
