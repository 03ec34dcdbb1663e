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
