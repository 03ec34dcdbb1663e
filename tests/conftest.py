import os
from pathlib import Path

import pytest
import torch

# The tests run many tiny tensor operations, for which one thread is faster than two and
# does not fight other work on a small machine.
torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = Path(os.environ.get("VARHYPER_DATA", SHARED_DATA))
    if not (root / "MNIST" / "raw").is_dir():
        pytest.skip(f"offline data not found at {root}; set VARHYPER_DATA")
    return root


@pytest.fixture(scope="session")
def mnist_small(data_root):
    import varhyper_mini as vh

    return vh.data.mnist(data_root, train=True, subset=1000, download=False)
