"""Deprecated: the Wine experiment moved to ``varhyper_mini.experiments.wine`` (issue 18).

This module re-exports its public names and warns on import, until 0.2, when it is removed.
Write ``from varhyper_mini.experiments import wine`` instead of ``from varhyper_mini import wine``:
every name below is there, unchanged.
"""

from __future__ import annotations

import warnings

from .experiments.wine import *  # noqa: F403
from .experiments.wine import __all__  # noqa: F401

warnings.warn(
    "varhyper_mini.wine is now varhyper_mini.experiments.wine; import it from there, it has the same names "
    "(from varhyper_mini.experiments import wine; the old path goes in 0.2)",
    DeprecationWarning,
    stacklevel=2,
)
