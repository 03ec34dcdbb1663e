"""provenance: the seeds derived from names, and the provenance keys every results folder shares."""

import datetime as dt
import platform
import zlib

import pytest
import torch

import varhyper_mini as vh
from varhyper_mini import provenance
from varhyper_mini.experiments import study
from varhyper_mini.experiments.wine import WineConfig
from varhyper_mini.experiments.wine.config import model_seed

# Seeds of known names, computed once: a change of the formula changes the committed results' seeds.
KNOWN_SEEDS = [
    ("variational-piecewise__lam-all__run-0", 0, 652173235),  # a study job (MNIST, the hypernetwork)
    ("variational-direct__lam-100__run-2", 3, 11947303),  # a study job with base seed 3
    ("init__run-0", 0, 1692846356),  # the Wine experiment's init of run 0
    ("direct__lam-100__run-0", 0, 679000893),  # a Wine direct model
    ("hypernet", 0, 162635930),  # the cost study's hypernetwork (selection)
]


@pytest.mark.parametrize(("name", "base", "seed"), KNOWN_SEEDS)
def test_seed_from_name_keeps_the_known_seeds(name, base, seed):
    assert provenance.seed_from_name(name, base) == seed


@pytest.mark.parametrize(("implementation", "lam", "run", "base"), [("variational-piecewise", None, 0, 0),
                                                                     ("variational-direct", 1e-2, 4, 7),
                                                                     ("base-linear", None, 2, 123)])  # fmt: skip
def test_seed_from_name_is_the_study_jobs_seed(implementation, lam, run, base):
    job = study.Job(implementation, lam, run)
    assert provenance.seed_from_name(job.name, base) == job.seed(base)


def test_the_wine_models_seeds_come_from_their_names():
    cfg = WineConfig(seed=5)
    name = "hyper-3__run-1"
    assert model_seed(cfg, name) == provenance.seed_from_name(name, 5) == (zlib.crc32(name.encode()) + 5) % (2**31 - 1)


def test_seed_from_name_range_and_arguments():
    top = 2**31 - 1
    assert provenance.seed_from_name("") == 0
    assert provenance.seed_from_name("init__run-0", -5) == 1692846356 - 5  # the base is added, then reduced
    assert provenance.seed_from_name("a", -(2**40)) in range(top)  # always a valid torch seed
    assert provenance.seed_from_name("a", top) == provenance.seed_from_name("a")
    assert provenance.seed_from_name("run-1") != provenance.seed_from_name("run-2")
    with pytest.raises(TypeError, match="name"):
        provenance.seed_from_name(b"init__run-0")
    with pytest.raises(TypeError, match="base"):
        provenance.seed_from_name("init__run-0", True)
    with pytest.raises(TypeError, match="base"):
        provenance.seed_from_name("init__run-0", 1.0)


def test_utc_now_is_an_iso_stamp_to_the_second():
    stamp = provenance.utc_now()
    t = dt.datetime.fromisoformat(stamp)
    assert t.utcoffset() == dt.timedelta(0) and t.microsecond == 0 and stamp.endswith("+00:00")
    assert abs((dt.datetime.now(dt.timezone.utc) - t).total_seconds()) < 60


def test_provenance_record_holds_the_shared_keys():
    rec = provenance.provenance_record("python -m varhyper_mini wine", "2026-01-02T03:04:05+00:00", commit="abc123")
    assert tuple(rec) == provenance.PROVENANCE_KEYS  # no machine keys without a device
    assert rec["package"] == "varhyper_mini" and rec["package_version"] == vh.__version__
    assert rec["torch_version"] == torch.__version__ and rec["python"] == platform.python_version()
    assert rec["git_commit"] == "abc123" and rec["command"] == "python -m varhyper_mini wine"
    assert rec["started"] == "2026-01-02T03:04:05+00:00"
    assert dt.datetime.fromisoformat(rec["ended"]) >= dt.datetime.fromisoformat(rec["started"])  # ended: now
    assert provenance.provenance_record(None, None, "2026-01-02T03:04:06+00:00", commit="x")["ended"].endswith(
        "06+00:00"
    )


def test_provenance_record_with_a_device_adds_the_machine():
    rec = provenance.provenance_record(
        "cmd", "2026-01-02T03:04:05+00:00", device="cpu", load_average_start=[1.0, 2.0, 3.0]
    )
    assert tuple(rec) == provenance.PROVENANCE_KEYS + provenance.MACHINE_KEYS
    assert (
        rec["hardware"]["device"] == "cpu" and rec["hardware"]["cpu_count"] == provenance.hardware("cpu")["cpu_count"]
    )
    assert rec["load_average_start"] == [1.0, 2.0, 3.0]
    assert rec["load_average_end"] is None or len(rec["load_average_end"]) == 3
    assert rec["git_commit"] == provenance.git_commit()  # the current commit when none is given


def test_provenance_record_reads_like_the_study_and_cost_study_provenance():
    # The key names that study.merge and selection.run_cost_study write today, and the study's reader.
    study_keys = {"package", "package_version", "torch_version", "python", "command", "git_commit", "started", "ended"}
    cost_keys = study_keys | {"hardware", "load_average_start", "load_average_end"}
    rec = provenance.provenance_record("cmd", "2026-01-02T03:04:05+00:00", commit="abc", device="cpu")
    assert study_keys <= set(provenance.PROVENANCE_KEYS) and cost_keys <= set(rec)
    text = study.describe_provenance(rec)
    assert "command: cmd" in text and "commit abc" in text and f"torch {torch.__version__}" in text
    assert "2026-01-02T03:04:05+00:00 to " in text


def test_hardware_names_the_cpu_and_its_kernel_level():
    # Bit-reproducibility on CPU depends on the vector kernels torch picks, so both are recorded.
    info = provenance.hardware("cpu")
    assert info["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert isinstance(info["cpu_model"], str) and info["cpu_model"]
