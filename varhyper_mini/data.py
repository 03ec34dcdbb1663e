"""Datasets held as tensors in memory, and their loaders.

Training reads whole tensors and gathers batches by index: no per-item decoding, so data
loading costs a small share of an epoch. The loaders look for data in, in order: the
``root`` argument, the ``VARHYPER_DATA`` environment variable, a user cache folder.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ._checks import as_int

__all__ = [
    "TensorData",
    "DataNotFoundError",
    "DataCorruptError",
    "data_root",
    "wine",
    "mnist",
    "cifar10",
    "cifar_augment",
    "batches",
    "CIFAR_MEAN",
    "MNIST_RANGE_AUTHORS",
    "MNIST_RANGE_UNIT",
    "check_input_range",
    "CIFAR_STD",
]

# The authors' code normalises MNIST with Normalize(0.5, 0.5): pixels in [-1, 1].
MNIST_RANGE_AUTHORS = (-1.0, 1.0)
MNIST_RANGE_UNIT = (0.0, 1.0)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
CIFAR_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


class DataNotFoundError(FileNotFoundError):
    """The dataset is not on disk and could not be downloaded.

    ``problem`` is what was wrong, in one line, without the advice: which files were looked for
    where, and why no download happened (None when the message has no such part). The command
    line prints it with advice in its own terms (``--data-root``), the message with Python's.
    """

    def __init__(self, message: str, problem: str | None = None) -> None:
        super().__init__(message)
        self.problem = problem


class DataCorruptError(ValueError):
    """A dataset file is on disk but damaged: truncated, empty, or not decodable."""


# The raw MNIST files and their sizes in bytes (16- or 8-byte header, then one byte per pixel or label).
MNIST_FILES = {
    True: {"train-images-idx3-ubyte": 16 + 60_000 * 28 * 28, "train-labels-idx1-ubyte": 8 + 60_000},
    False: {"t10k-images-idx3-ubyte": 16 + 10_000 * 28 * 28, "t10k-labels-idx1-ubyte": 8 + 10_000},
}
MNIST_CLASSES = tuple(str(d) for d in range(10))
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp")


@dataclass
class TensorData:
    """A labelled dataset as two tensors.

    Attributes:
        x: inputs, first dimension the examples.
        y: integer class labels.
        name: a human-readable label, e.g. "MNIST (train)" or "CIFAR-10 (JPEG subset)".
        augment: optional batch transform ``f(x_batch, generator) -> x_batch`` applied only
            while training (random crops and flips for CIFAR-10).
        classes: the dataset's fixed class names (label i is ``classes[i]``), or None; the
            loaders set it, so ``n_classes`` does not depend on which labels a split holds.

    Raises:
        ValueError: ``x`` and ``y`` hold different numbers of examples.
    """

    x: Tensor
    y: Tensor
    name: str = "data"
    augment: Callable[[Tensor, torch.Generator | None], Tensor] | None = None
    classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} rows but y has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_classes(self) -> int:
        """The number of classes: ``len(classes)`` when known, else the largest label + 1."""
        if self.classes is not None:
            return len(self.classes)
        return int(self.y.max()) + 1

    def to(self, device: torch.device | str) -> TensorData:
        """A copy with ``x`` and ``y`` on ``device`` (the other fields shared)."""
        return replace(self, x=self.x.to(device), y=self.y.to(device))

    def take(self, index: Tensor) -> TensorData:
        """The examples at ``index``."""
        return replace(self, x=self.x[index], y=self.y[index])

    def subset(self, n: int | None, seed: int = 0) -> TensorData:
        """A stratified random subset of ``n`` examples (all of them when ``n`` is None)."""
        if n is None:
            return self
        n = as_int(n, "subset size")
        if n >= len(self):
            return self
        g = torch.Generator().manual_seed(seed)
        y = self.y.cpu()
        classes = torch.unique(y)
        picked = []
        for c in classes:
            idx = torch.nonzero(y == c).flatten()
            k = round(n * len(idx) / len(y))
            picked.append(idx[torch.randperm(len(idx), generator=g)[:k]])
        index = torch.cat(picked)
        index = index[torch.randperm(len(index), generator=g)]
        out = self.take(index.to(self.y.device))
        out.name = f"{self.name}, subset of {len(index)}"
        return out

    def split(self, n_holdout: int, seed: int = 0) -> tuple[TensorData, TensorData]:
        """Split into (rest, holdout) at random, e.g. a validation set carved from training.

        Raises:
            ValueError: ``n_holdout`` is not an integer with 1 <= ``n_holdout`` < ``len(self)``.
        """
        if not 0 < as_int(n_holdout, "n_holdout") < len(self):
            raise ValueError(f"n_holdout must be between 1 and {len(self) - 1}, got {n_holdout}")
        perm = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        rest, hold = self.take(perm[n_holdout:]), self.take(perm[:n_holdout])
        rest.name, hold.name = f"{self.name}, fit part", f"{self.name}, holdout"
        return rest, hold


def batches(
    n: int, batch_size: int, generator: torch.Generator | None = None, shuffle: bool = True
) -> Iterator[Tensor]:
    """Index tensors of consecutive batches over ``range(n)``; the last may be short."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    yield from torch.split(order, batch_size)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where datasets live: ``root``, else ``$VARHYPER_DATA``, else a user cache folder."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("VARHYPER_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "varhyper_mini"


def _download_allowed(download: bool | None) -> bool:
    if download is not None:
        return download
    return os.environ.get("VARHYPER_NO_DOWNLOAD", "") not in ("1", "true", "yes")


def _mnist_paths(train: bool) -> list[str]:
    return [f"MNIST/raw/{name}" for name in MNIST_FILES[bool(train)]]


def _cifar_paths(split: str) -> list[str]:
    return ["cifar-10-batches-py/", f"cifar10-jpg/{split}/<class>/"]


def _one_line(err: BaseException) -> str:
    """An exception's text in one short line: torchvision's download errors span several lines."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip() not in ("", ".")]
    text = lines[0].rstrip(":") if lines else type(err).__name__
    if len(lines) > 1:
        text += f": {lines[-1]}"  # the first line says what failed, the last why (e.g. no network)
    return text if len(text) <= 200 else text[:197] + "..."


def _not_found(what: str, root: Path, expected: list[str], cause: BaseException | None) -> DataNotFoundError:
    """The one-line error for a dataset that is missing; ``expected`` are the paths looked for, under ``root``."""
    why = (
        f"the download failed ({type(cause).__name__}: {_one_line(cause)})"
        if cause
        else "no download was tried (download=False, or VARHYPER_NO_DOWNLOAD=1 is set)"
    )
    problem = f"{what} was not found under {root} (looked for {', '.join(expected)}); {why}"
    return DataNotFoundError(
        f"{problem}. Put the files there, pass root=..., or set VARHYPER_DATA to a folder that holds them "
        f"(this repository's tests use ../shared/data); where there is internet, download=True fetches them.",
        problem=problem,
    )


def wine(seed: int = 42, n_train: int = 142) -> tuple[TensorData, TensorData]:
    """The paper's Wine split: 142 train / 36 test, standardised with training statistics.

    A permutation of the 178 examples from ``np.random.RandomState(seed)`` (seed 42, as in
    the authors' code); the first ``n_train`` are for training.
    """
    from sklearn.datasets import load_wine

    bunch = load_wine()
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    perm = np.random.RandomState(seed).permutation(len(y))
    tr, te = perm[:n_train], perm[n_train:]
    mu, sd = x[tr].mean(0), x[tr].std(0)
    xs = (x - mu) / sd
    dt = torch.get_default_dtype()
    classes = tuple(str(c) for c in bunch.target_names)
    train = TensorData(torch.tensor(xs[tr], dtype=dt), torch.tensor(y[tr]), "Wine (train)", classes=classes)
    test = TensorData(torch.tensor(xs[te], dtype=dt), torch.tensor(y[te]), "Wine (test)", classes=classes)
    return train, test


def check_input_range(input_range) -> tuple[float, float]:
    """``(lo, hi)`` as floats.

    Raises:
        ValueError: ``input_range`` is not two finite numbers with lo < hi.
    """
    try:
        if isinstance(input_range, (str, bytes)):
            raise TypeError
        lo, hi = (float(v) for v in input_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"input_range must be two numbers (lo, hi), e.g. (0, 1) or (-1, 1); got {input_range!r}"
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"input_range must be finite with lo < hi, got {input_range!r}")
    return lo, hi


def mnist(
    root: str | os.PathLike | None = None,
    train: bool = True,
    download: bool | None = None,
    subset: int | None = None,
    seed: int = 0,
    input_range: tuple[float, float] = MNIST_RANGE_AUTHORS,
) -> TensorData:
    """MNIST as tensors, x of shape (N, 1, 28, 28), pixels mapped linearly onto ``input_range``.

    ``input_range=(-1, 1)`` (the default) is the authors' ``Normalize(0.5, 0.5)``: background
    pixels are -1, so a first-layer weight on a background pixel adds a constant to its unit.
    ``(0, 1)`` is plain ``ToTensor()``: background pixels are 0 and such weights do nothing.
    Reads torchvision's layout ``<root>/MNIST/raw``; downloads there when allowed
    (``download=None`` allows it unless ``VARHYPER_NO_DOWNLOAD=1``).

    Raises:
        ValueError: ``input_range`` is not two finite numbers lo < hi.
        DataNotFoundError: the files are missing and cannot be downloaded.
        DataCorruptError: a file of the split is there but has the wrong size or cannot be read
            (the message names it, with the expected and actual size).
    """
    from torchvision.datasets import MNIST

    lo, hi = check_input_range(input_range)
    r = data_root(root)
    _check_sizes(r / "MNIST" / "raw", MNIST_FILES[bool(train)], "MNIST")
    try:
        ds = MNIST(str(r), train=train, download=False)
    except (ValueError, EOFError, OSError) as err:  # present but unreadable (sizes were right)
        raise DataCorruptError(
            f"cannot read MNIST from {r / 'MNIST' / 'raw'}: {type(err).__name__}: {err}. Delete the damaged "
            "files and download them again (download=True), or copy intact ones there."
        ) from err
    except RuntimeError:
        if not _download_allowed(download):
            raise _not_found("MNIST", r, _mnist_paths(train), None) from None
        try:
            ds = MNIST(str(r), train=train, download=True)
        except Exception as dl_err:  # any network or disk failure: one clear message
            raise _not_found("MNIST", r, _mnist_paths(train), dl_err) from dl_err
    x = ds.data.to(torch.get_default_dtype()).mul_((hi - lo) / 255.0).add_(lo).unsqueeze(1)
    name = f"MNIST ({'train' if train else 'test'}, pixels in [{lo:g}, {hi:g}])"
    data = TensorData(x, ds.targets.long(), name, classes=MNIST_CLASSES)
    return data.subset(subset, seed)


def cifar_augment(pad_value: Tensor | None = None) -> Callable[[Tensor, torch.Generator | None], Tensor]:
    """RandomCrop(32, padding=4) and a random horizontal flip, on a whole batch at once.

    ``pad_value`` is the per-channel value of a black pixel after normalisation, so the
    result equals torchvision's per-image transforms applied before ``Normalize``.
    """
    if pad_value is None:
        pad_value = -torch.tensor(CIFAR_MEAN) / torch.tensor(CIFAR_STD)

    def augment(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        b, c, h, w = x.shape
        pv = pad_value.to(x.device, x.dtype).view(1, c, 1, 1)
        padded = pv.expand(b, c, h + 8, w + 8).clone()
        padded[:, :, 4:-4, 4:-4] = x
        dev = generator.device if generator is not None else x.device
        oy = torch.randint(0, 9, (b,), generator=generator, device=dev).to(x.device)
        ox = torch.randint(0, 9, (b,), generator=generator, device=dev).to(x.device)
        flip = torch.rand(b, generator=generator, device=dev).to(x.device) < 0.5
        rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        bi = torch.arange(b, device=x.device)[:, None, None, None]
        ci = torch.arange(c, device=x.device)[None, :, None, None]
        out = padded[bi, ci, rows, cols]
        return torch.where(flip[:, None, None, None], out.flip(-1), out)

    return augment


def _normalise_uint8_images(images: Tensor) -> Tensor:
    """(N, 32, 32, 3) uint8 -> (N, 3, 32, 32) float, normalised with the CIFAR statistics."""
    x = images.permute(0, 3, 1, 2).to(torch.get_default_dtype()).div_(255.0)
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _check_sizes(folder: Path, expected: dict[str, int], what: str) -> None:
    """``DataCorruptError`` naming the first file in ``folder`` whose size differs from ``expected``."""
    for name, size in expected.items():
        f = folder / name
        if f.is_file() and (actual := f.stat().st_size) != size:
            raise DataCorruptError(
                f"corrupt {what} file {f}: expected {size:,} bytes, found {actual:,} (truncated or damaged). "
                "Delete it and download it again (download=True), or copy an intact file there."
            )


def _check_cifar_batches(folder: Path, files: list[list[str]]) -> None:
    """``DataCorruptError`` naming a CIFAR-10 batch file that is there but fails its MD5 check."""
    from torchvision.datasets.utils import check_integrity

    for name, md5 in files:
        f = folder / name
        if f.is_file() and not check_integrity(str(f), md5):
            raise DataCorruptError(
                f"corrupt CIFAR-10 file {f}: {f.stat().st_size:,} bytes whose MD5 is not the expected {md5} "
                "(truncated or damaged). Delete it and download again (download=True), or copy an intact file there."
            )


def _image_files(folder: Path) -> list[Path]:
    """The image files of ``folder``, by name: hidden files and folders, and files of other types, are skipped."""
    if not folder.is_dir():
        return []
    return sorted(
        f for f in folder.iterdir() if not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
    )


def _read_image_folder(folder: Path) -> tuple[Tensor, Tensor]:
    """Images of ``folder/<class>/`` with labels from the fixed ``CIFAR_CLASSES`` (a class may be absent)."""
    from PIL import Image

    xs, ys = [], []
    for label, cls in enumerate(CIFAR_CLASSES):
        for f in _image_files(folder / cls):
            try:
                with Image.open(f) as im:
                    arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
            except (OSError, ValueError, SyntaxError) as err:  # PIL's decode errors
                raise DataCorruptError(
                    f"cannot decode image {f}: {type(err).__name__}: {err}. Delete or replace the file."
                ) from err
            if arr.shape != (32, 32, 3):
                raise DataCorruptError(f"image {f} is {arr.shape[1]}x{arr.shape[0]} pixels; CIFAR-10 images are 32x32")
            xs.append(arr)
            ys.append(label)
    if not xs:
        raise DataNotFoundError(f"no images found in {folder}/<class>/ (classes {', '.join(CIFAR_CLASSES)})")
    return torch.from_numpy(np.stack(xs)), torch.tensor(ys, dtype=torch.long)


def cifar10(
    root: str | os.PathLike | None = None,
    train: bool = True,
    download: bool | None = None,
    subset: int | None = None,
    seed: int = 0,
) -> TensorData:
    """CIFAR-10 as normalised tensors (N, 3, 32, 32); training data carries the augmentation.

    Looks for torchvision's ``cifar-10-batches-py`` under the root first (downloading when
    allowed), then for the offline image-folder copy ``cifar10-jpg/{train,test}/<class>/``.
    Data from the image folder is named "CIFAR-10 (JPEG subset)": it is a lossy copy. Its
    labels come from the fixed class list (``n_classes`` is 10 even if a split lacks a
    class); hidden files and folders and files that are not images are skipped.

    Raises:
        DataNotFoundError: neither copy is there and none can be downloaded.
        DataCorruptError: a batch file fails its MD5 check, or an image cannot be decoded or
            is not 32x32 (the message names the file).
    """
    r = data_root(root)
    split = "train" if train else "test"
    jpg = r / "cifar10-jpg" / split
    if (r / "cifar-10-batches-py").is_dir() or not jpg.is_dir():
        from torchvision.datasets import CIFAR10

        try:
            ds = CIFAR10(str(r), train=train, download=False)
        except RuntimeError:
            _check_cifar_batches(r / CIFAR10.base_folder, CIFAR10.train_list if train else CIFAR10.test_list)
            if jpg.is_dir():
                ds = None
            elif not _download_allowed(download):
                raise _not_found("CIFAR-10", r, _cifar_paths(split), None) from None
            else:
                try:
                    ds = CIFAR10(str(r), train=train, download=True)
                except Exception as dl_err:
                    raise _not_found("CIFAR-10", r, _cifar_paths(split), dl_err) from dl_err
        if ds is not None:
            x = _normalise_uint8_images(torch.from_numpy(ds.data))
            y = torch.tensor(ds.targets, dtype=torch.long)
            name = f"CIFAR-10 ({split})"
            data = TensorData(x, y, name, cifar_augment() if train else None, classes=CIFAR_CLASSES)
            return data.subset(subset, seed)
    images, y = _read_image_folder(jpg)
    data = TensorData(
        _normalise_uint8_images(images),
        y,
        f"CIFAR-10 (JPEG subset, {split}, {len(y)} images)",
        cifar_augment() if train else None,
        classes=CIFAR_CLASSES,
    )
    return data.subset(subset, seed)
