"""Where results live and what they record about their making: atomic writes, the commit, the machine, the seeds.

Every command that writes committed results (the studies, Wine, the cost study, the benchmarks)
records the same provenance through these functions: ``provenance_record`` builds the keys that every
``provenance.json`` shares, and ``seed_from_name`` gives each trained model its own stable seed.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import zlib
from pathlib import Path

import torch

__all__ = [
    "atomic_write",
    "check_output_folder",
    "git_commit",
    "load_average",
    "hardware",
    "results_root",
    "utc_now",
    "seed_from_name",
    "provenance_record",
    "PROVENANCE_KEYS",
    "MACHINE_KEYS",
]

#: The keys that ``provenance_record`` always writes, in this order (as ``study.merge`` and
#: ``selection.run_cost_study`` name them).
PROVENANCE_KEYS = (
    "package",
    "package_version",
    "torch_version",
    "python",
    "git_commit",
    "command",
    "started",
    "ended",
)
#: The keys that it adds when it is given the device a run computed on.
MACHINE_KEYS = ("hardware", "load_average_start", "load_average_end")


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def check_output_folder(folder: str | os.PathLike, create: bool = False) -> Path:
    """Refuse an output folder that cannot be made or written to, before a run writes or trains anything.

    ``folder`` must be a writable folder, or not exist yet below a writable folder. With
    ``create=False`` (for the check before a run) nothing is created or written; with
    ``create=True`` the folder is then made (with its parents) and a probe file written into it
    and removed. Returns ``folder`` as a ``Path``.

    Raises:
        PermissionError: ``folder`` (or a folder above it) is an existing file, or the folder that
            would hold it is not writable, or making it or writing into it failed; the message names
            the path and what to do.
    """
    folder = Path(folder)
    for p in (folder, *folder.parents):
        if p.is_dir():
            break
        if p.exists() or p.is_symlink():
            where = "is an existing file" if p == folder else f"cannot be made: {p} is an existing file"
            raise PermissionError(
                f"the output folder {folder} {where}, not a folder; choose another output folder (--out)"
            )
    else:
        p = Path(".")
    if not os.access(p, os.W_OK | os.X_OK):
        raise PermissionError(
            f"cannot write to the output folder {folder}: {p} is not writable; choose another output folder (--out)"
        )
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # os.access is not enough (root, read-only mounts): write and remove one file.
            probe = folder / f".write-test-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as err:
            raise PermissionError(f"cannot write to the output folder {folder}: {err.strerror or err}") from None
    return folder


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


def _cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: str) -> dict:
    """The device, platform, CPU model, CPU count, torch threads and torch's CPU kernel level.

    ``cpu_capability`` (``torch.backends.cpu.get_cpu_capability()``, e.g. ``"AVX2"``, ``"AVX512"``)
    is recorded because it picks the vectorised kernels: two hosts with different levels can round
    float sums differently, so a CPU result is bit-reproducible only on a host of the same level and
    thread count. On CUDA the GPU's name is added.
    """
    info = {
        "device": device,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
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


def utc_now() -> str:
    """The current time in UTC, ISO 8601 to the second, e.g. ``"2026-11-26T12:11:16+00:00"``.

    The format of every ``started``, ``ended`` and ``written`` stamp of a ``provenance.json``.
    """
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def seed_from_name(name: str, base: int = 0) -> int:
    """A job's seed from its name: ``(zlib.crc32(name.encode()) + base) % (2**31 - 1)``.

    Every model of a study or an experiment gets a stable seed of its own from a name that says what
    it is (``"direct__lam-100__run-0"``), so that adding, removing or reordering jobs changes no other
    job's numbers, and a rerun repeats them on any machine (unlike ``hash``, which is salted per
    process). ``base`` is the run's base seed (a config's ``seed``), added before the modulus. The
    result is an int in [0, 2**31 - 2], a valid ``torch.manual_seed``.

    This is the one formula behind ``study.Job.seed``, the Wine experiment's models and the cost
    study's models in ``selection`` (all three used it before it moved here), so their committed
    results keep their seeds.

    Raises:
        TypeError: ``name`` is not a ``str``, or ``base`` is not an ``int`` (a bool is refused).
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if isinstance(base, bool) or not isinstance(base, int):
        raise TypeError(f"base must be an int, got {base!r}")
    return (zlib.crc32(name.encode()) + base) % (2**31 - 1)


def provenance_record(
    command: str | None,
    started: str | None,
    ended: str | None = None,
    *,
    commit: str | None = None,
    device: str | None = None,
    load_average_start: list[float] | None = None,
) -> dict:
    """The part of a ``provenance.json`` that every results folder shares; the caller adds its own keys.

    Returns a new dict with the keys ``PROVENANCE_KEYS``, in that order: ``package``
    ("varhyper_mini"), ``package_version``, ``torch_version``, ``python`` (e.g. "3.11.7"),
    ``git_commit`` (``commit``, default the current ``git_commit()``; take it when the run starts and
    pass it in, so that a checkout that changes meanwhile is not recorded), ``command``, ``started``
    and ``ended`` (ISO 8601 stamps as ``utc_now`` makes them; ``ended`` defaults to now). With a
    ``device`` ("cpu", "cuda", ...) the run's machine follows (``MACHINE_KEYS``): ``hardware``
    (``hardware(device)``) and the 1, 5 and 15 minute load averages at the start (as passed in,
    from ``load_average()`` when the run began) and now. The names and formats are those that
    ``study.merge`` and ``selection.run_cost_study`` write, so readers of either read these too.
    Nothing is checked; it raises nothing.
    """
    from . import __version__

    record = {
        "package": "varhyper_mini",
        "package_version": __version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "git_commit": git_commit() if commit is None else commit,
        "command": command,
        "started": started,
        "ended": utc_now() if ended is None else ended,
    }
    if device is not None:
        record["hardware"] = hardware(device)
        record["load_average_start"] = load_average_start
        record["load_average_end"] = load_average()
    return record
