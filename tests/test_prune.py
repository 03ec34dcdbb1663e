import pytest
import torch

import varhyper_mini as vh
from varhyper_mini import models


def _params():
    h = vh.ConstantHypernet(models.mnist_mlp())
    with torch.no_grad():
        h.mean.normal_()
        h.log_sigma.normal_(-2, 0.5)
    return h(1.0)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0])
def test_exact_counts_per_layer(fraction):
    p = _params()
    out = vh.prune(p, fraction, "var", "layer")
    for n in ("fc1.weight", "fc2.weight"):
        assert int((out.mean[n] == 0).sum()) == round(fraction * p.mean[n].numel())
    for n in ("fc1.bias", "fc2.bias"):  # biases are never pruned
        assert torch.equal(out.mean[n], p.mean[n])


def test_exact_count_global_and_uneven_layers():
    p = _params()
    out = vh.prune(p, 0.5, "simple", "global")
    total = p.mean["fc1.weight"].numel() + p.mean["fc2.weight"].numel()
    zeros = int((out.mean["fc1.weight"] == 0).sum() + (out.mean["fc2.weight"] == 0).sum())
    assert zeros == round(0.5 * total)
    assert vh.sparsity(out) == pytest.approx(zeros / total)


def test_prunes_the_least_relevant():
    mean = {"w": torch.tensor([[1.0, 2.0, 3.0, 4.0]])}
    ls = {"w": torch.log(torch.tensor([[0.1, 10.0, 1.0, 1.0]]))}
    p = vh.GaussianParams(mean, ls)
    # |mu|/sigma = 10, 0.2, 3, 4: "var" drops the 2; |mu| drops the 1
    assert vh.prune(p, 0.25, "var").mean["w"].tolist() == [[1.0, 0.0, 3.0, 4.0]]
    assert vh.prune(p, 0.25, "simple").mean["w"].tolist() == [[0.0, 2.0, 3.0, 4.0]]


def test_does_not_mutate_input():
    p = _params()
    before = p.mean["fc1.weight"].clone()
    vh.prune(p, 0.9)
    assert torch.equal(p.mean["fc1.weight"], before)


def test_bad_input():
    p = _params()
    with pytest.raises(ValueError, match="fraction"):
        vh.prune(p, 1.5)
    with pytest.raises(ValueError, match="criterion"):
        vh.prune(p, 0.5, "magnitude")
    with pytest.raises(ValueError, match="scope"):
        vh.prune(p, 0.5, scope="neuron")
    det = vh.GaussianParams({n: t for n, t in p.mean.items()})
    with pytest.raises(ValueError, match="variational"):
        vh.prune(det, 0.5, "var")
    assert vh.sparsity(vh.prune(det, 0.5, "simple")) == pytest.approx(0.5, abs=1e-3)


def test_pruning_curve_is_tidy():
    train_data, test_data = vh.data.wine()
    target = models.wine_logreg()
    h = vh.LinearHypernet(target, lam_range=(1e2, 1e6))
    curve = vh.pruning_curve(h, target, test_data, [1e2, 1e4], fractions=(0.0, 0.5))
    assert list(curve.columns) == ["lam", "fraction", "accuracy"]
    assert len(curve) == 4
    assert curve.accuracy.between(0, 1).all()
