"""The Colab path, as far as it can be tested offline.

Build a wheel, install it into a fresh virtual environment outside the checkout, and execute one
chapter from a copy of the notebook in an empty folder. The fresh environment borrows the
already-installed dependencies (torch, jupyter) through a .pth file, so nothing is downloaded,
but it does not see the checkout: the package and its committed results come from the wheel.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "06_mnist_study.ipynb"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (whl,) = out.glob("varhyper_mini-*.whl")
    return whl


def test_wheel_ships_results_not_job_files(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "varhyper_mini/results/paper/paper_tables.csv" in names
    assert not [n for n in names if "/jobs/" in n or "checkpoints" in n or n.endswith(".pt")]
    if (ROOT / "results" / "mnist" / "pruning.csv").exists():
        assert "varhyper_mini/results/mnist/pruning.csv" in names


def test_chapter_runs_from_installed_wheel(wheel, tmp_path, data_root):
    if not (ROOT / "results" / "mnist" / "pruning.csv").exists():
        pytest.skip("results/mnist/pruning.csv is not committed yet")
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    py = env_dir / "bin" / "python"
    site = Path(
        subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       check=True, capture_output=True, text=True).stdout.strip()
    )  # fmt: skip
    # The wheel goes into the fresh environment's own site-packages...
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    # ...and the dependencies are borrowed from this environment, without its editable finder.
    (site / "zz_borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "empty"
    work.mkdir()
    shutil.copy(ROOT / "chapters" / CHAPTER, work / CHAPTER)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VARHYPER_RESULTS")}
    env.update(VARHYPER_QUICK="1", VARHYPER_DATA=str(data_root), VARHYPER_NO_DOWNLOAD="1")
    where = subprocess.run([py, "-c", "import varhyper_mini, sys; print(varhyper_mini.__file__)"],
                           cwd=work, env=env, check=True, capture_output=True, text=True).stdout  # fmt: skip
    assert str(site) in where and str(ROOT) not in where
    run = subprocess.run(
        [py, "-m", "nbconvert", "--to", "notebook", "--execute", "--output", "executed.ipynb",
         "--ExecutePreprocessor.timeout=600", CHAPTER],
        cwd=work, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    executed = json.loads((work / "executed.ipynb").read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
