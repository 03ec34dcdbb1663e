"""Where results live and what they record about their making: atomic writes, the commit, the machine.

Every command that writes committed results (the studies, Wine, the cost study, the benchmarks)
records the same provenance through these functions.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch

__all__ = ["atomic_write", "git_commit", "load_average", "hardware", "results_root"]


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def git_commit() -> str:
    """The package's commit, with "+dirty" when the package folder has uncommitted changes; "unknown" off git."""
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "."], cwd=here, capture_output=True, text=True
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def load_average() -> list[float] | None:
    """The machine's 1, 5 and 15 minute load averages (None where the platform has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def hardware(device: str) -> dict:
    """The device, platform, CPU count and torch threads (and the GPU's name on CUDA)."""
    info = {
        "device": device,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def results_root() -> Path:
    """``results/`` of a checkout, else the copy shipped inside the installed package (``$VARHYPER_RESULTS`` first)."""
    env = os.environ.get("VARHYPER_RESULTS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for cand in (here.parent / "results", here / "results"):
        if (cand / "paper" / "paper_tables.csv").is_file():  # ours, not another package's folder
            return cand
    return here.parent / "results"
