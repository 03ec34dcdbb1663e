import pytest
import torch

import varhyper_mini as vh


def test_wine_split_is_standardised():
    train, test = vh.data.wine()
    assert len(train) == 142 and len(test) == 36
    assert torch.allclose(train.x.mean(0), torch.zeros(13), atol=1e-5)
    assert torch.allclose(train.x.std(0, unbiased=False), torch.ones(13), atol=1e-4)
    assert set(train.y.tolist()) == {0, 1, 2}


def test_mnist_offline(data_root):
    d = vh.data.mnist(data_root, train=False, download=False)
    assert d.x.shape == (10_000, 1, 28, 28) and len(d.y) == 10_000
    assert float(d.x.min()) == -1.0 and float(d.x.max()) == 1.0


def test_mnist_subset_is_stratified(data_root):
    d = vh.data.mnist(data_root, train=True, subset=1000, download=False)
    assert abs(len(d) - 1000) <= 10
    counts = torch.bincount(d.y, minlength=10)
    assert int(counts.min()) >= 80


def test_missing_data_raises_one_clear_error(tmp_path):
    with pytest.raises(vh.DataNotFoundError) as err:
        vh.data.mnist(tmp_path, download=False)
    msg = str(err.value)
    assert str(tmp_path) in msg and "VARHYPER_DATA" in msg


def test_env_root(monkeypatch, tmp_path):
    monkeypatch.setenv("VARHYPER_DATA", str(tmp_path))
    assert vh.data.data_root() == tmp_path
    assert vh.data.data_root("/x") == vh.data.data_root("/x")


def test_cifar_jpeg_copy(data_root):
    d = vh.data.cifar10(data_root, train=False, download=False)
    assert d.x.shape == (1000, 3, 32, 32)
    assert "JPEG" in d.name
    assert torch.bincount(d.y).tolist() == [100] * 10


def test_cifar_augment_shapes_and_flip():
    aug = vh.data.cifar_augment(pad_value=torch.zeros(3))
    x = torch.randn(16, 3, 32, 32)
    out = aug(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    # a crop at offset (4, 4) without flip is the identity; some outputs must differ from x
    assert not torch.equal(out, x)


def test_split_and_bad_subset():
    train, _ = vh.data.wine()
    fit, hold = train.split(20)
    assert len(fit) == 122 and len(hold) == 20
    with pytest.raises(ValueError):
        train.subset(0)


def test_mnist_input_range(data_root):
    a = vh.data.mnist(data_root, train=False, subset=500)
    b = vh.data.mnist(data_root, train=False, subset=500, input_range=(0, 1))
    assert float(a.x.min()) == -1.0 and float(a.x.max()) == 1.0  # the authors' Normalize(0.5, 0.5)
    assert float(b.x.min()) == 0.0 and float(b.x.max()) == 1.0  # plain ToTensor()
    assert torch.allclose((a.x + 1) / 2, b.x, atol=1e-6) and torch.equal(a.y, b.y)
    for bad in [(1, 0), (0, float("inf")), "01", (0,)]:
        with pytest.raises(ValueError, match="input_range"):
            vh.data.mnist(data_root, train=False, input_range=bad)


# -- robustness (issue 19): corrupt versus missing, stray files, the fixed class list --------------
def _mnist_copy(data_root, tmp_path, name, cut):
    """A copy of the raw MNIST folder (links) in which file ``name`` keeps only ``cut`` bytes."""
    src, raw = data_root / "MNIST" / "raw", tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in src.iterdir():
        if f.name != name:
            (raw / f.name).symlink_to(f)
    blob = (src / name).read_bytes()
    (raw / name).write_bytes(blob[:cut])
    return raw / name


@pytest.mark.parametrize(
    "name, cut, size",
    [
        ("train-images-idx3-ubyte", 1_000_000, 47_040_016),
        ("train-images-idx3-ubyte", 0, 47_040_016),
        ("train-labels-idx1-ubyte", -8, 60_008),
    ],
)
@pytest.mark.parametrize("download", [False, True])
def test_truncated_mnist_is_reported_as_corrupt_not_missing(data_root, tmp_path, name, cut, size, download):
    path = _mnist_copy(data_root, tmp_path, name, cut)
    actual = path.stat().st_size
    with pytest.raises(vh.DataCorruptError) as err:
        vh.data.mnist(tmp_path, train=True, download=download)
    msg = str(err.value)
    assert not isinstance(err.value, vh.DataNotFoundError)
    assert str(path) in msg and f"{size:,}" in msg and f"found {actual:,}" in msg and "download" in msg
    assert len(vh.data.mnist(tmp_path, train=False, download=False)) == 10_000  # the intact split loads


def _cifar_folder(data_root, tmp_path, drop=None, per_class=3):
    src = data_root / "cifar10-jpg"
    for split in ("train", "test"):
        for c in vh.data.CIFAR_CLASSES:
            if split == "test" and c == drop:
                continue
            out = tmp_path / "cifar10-jpg" / split / c
            out.mkdir(parents=True)
            for f in sorted((src / split / c).glob("*.jpg"))[:per_class]:
                (out / f.name).symlink_to(f)
    return tmp_path / "cifar10-jpg" / "test"


@pytest.mark.parametrize("drop", ["truck", "airplane"])
def test_image_folder_labels_and_n_classes_come_from_the_class_list(data_root, tmp_path, drop):
    _cifar_folder(data_root, tmp_path, drop)
    te = vh.data.cifar10(tmp_path, train=False, download=False)
    counts = torch.bincount(te.y, minlength=10).tolist()
    gone = vh.data.CIFAR_CLASSES.index(drop)
    assert counts == [0 if i == gone else 3 for i in range(10)]
    assert te.n_classes == 10 and te.classes == vh.data.CIFAR_CLASSES
    assert te.subset(20).n_classes == 10


def test_image_folder_ignores_hidden_and_non_image_files(data_root, tmp_path):
    test = _cifar_folder(data_root, tmp_path)
    (test / "cat" / ".DS_Store").write_bytes(b"\0\1junk")
    (test / "cat" / "Thumbs.db").write_bytes(b"junk")
    (test / "cat" / "notes.txt").write_text("not an image")
    (test / "cat" / ".hidden").mkdir()
    (test / "cat" / ".hidden" / "x.jpg").write_bytes(b"junk")
    (test / ".ipynb_checkpoints").mkdir()
    te = vh.data.cifar10(tmp_path, train=False, download=False)
    assert len(te) == 30


def test_an_undecodable_image_names_the_file(data_root, tmp_path):
    test = _cifar_folder(data_root, tmp_path)
    bad = test / "dog" / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(vh.DataCorruptError, match="broken.jpg"):
        vh.data.cifar10(tmp_path, train=False, download=False)


def test_n_classes_of_loaders_is_fixed():
    train, test = vh.data.wine()
    assert train.n_classes == test.n_classes == 3
    assert vh.TensorData(torch.zeros(2, 1), torch.tensor([0, 4])).n_classes == 5  # no class list: largest label + 1


def test_subset_and_split_sizes_are_integers():
    import numpy as np

    train, _ = vh.data.wine()
    assert abs(len(train.subset(np.int64(30))) - 30) <= 3
    assert len(train.split(np.int32(20))[1]) == 20
    for bad in (True, 20.0):
        with pytest.raises(ValueError, match="subset size"):
            train.subset(bad)
        with pytest.raises(ValueError, match="n_holdout"):
            train.split(bad)


def test_failed_download_gives_a_one_line_error_naming_the_files(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    def offline(self):
        raise RuntimeError(
            "Error downloading train-images-idx3-ubyte.gz:\nTried https://example.org/mnist/, got:\n"
            "<urlopen error [Errno -2] Name or service not known>\n"
        )

    monkeypatch.setattr(MNIST, "download", offline)
    with pytest.raises(vh.DataNotFoundError) as err:
        vh.data.mnist(tmp_path, download=True)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path) in msg and "VARHYPER_DATA" in msg
    assert "MNIST/raw/train-images-idx3-ubyte" in msg and "MNIST/raw/train-labels-idx1-ubyte" in msg
    assert "download failed" in msg and "Name or service not known" in msg and "https://" not in msg
    assert "\n" not in err.value.problem and "download=True" not in err.value.problem
