"""Deprecated: the Wine experiment moved to ``varhyper_mini.experiments.wine`` (issue 18).

This module re-exports its public names for one release and warns on import; it will be
removed in the next one. Write ``from varhyper_mini.experiments import wine`` instead of
``from varhyper_mini import wine``: every name below is there, unchanged.
"""

from __future__ import annotations

import warnings

from .experiments.wine import *  # noqa: F403
from .experiments.wine import __all__  # noqa: F401

warnings.warn(
    "varhyper_mini.wine is deprecated and will be removed in the next release; "
    "use varhyper_mini.experiments.wine (from varhyper_mini.experiments import wine), which has the same names",
    DeprecationWarning,
    stacklevel=2,
)
