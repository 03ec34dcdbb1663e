"""The one switch that shrinks the work: ``VARHYPER_QUICK=1`` (quick mode).

Quick mode only shrinks data subsets, epochs, runs and grids; the same code runs.
"""

from __future__ import annotations

import os

__all__ = ["quick_mode", "pick"]


def quick_mode() -> bool:
    """True when the environment variable ``VARHYPER_QUICK`` is set to 1 (as ``make test`` does)."""
    return os.environ.get("VARHYPER_QUICK", "0").strip().lower() in ("1", "true", "yes")


def pick(full, quick):
    """``quick`` in quick mode, else ``full``: one place to read each setting from."""
    return quick if quick_mode() else full
