"""The pruning studies, at their old path: ``varhyper_mini.study`` is ``varhyper_mini.experiments.study``.

The study moved into ``experiments/`` (config, runner, results); this module re-exports every public
name of it and warns, for one release. Import ``from varhyper_mini.experiments import study``.
"""

from __future__ import annotations

import warnings

from .experiments.study import *  # noqa: F403
from .experiments.study import __all__  # noqa: F401

warnings.warn(
    "varhyper_mini.study is now varhyper_mini.experiments.study; import it from there (the old path goes in 0.2)",
    DeprecationWarning,
    stacklevel=2,
)
