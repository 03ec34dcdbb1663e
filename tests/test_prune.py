import pytest
import torch

import varhyper_mini as vh
from varhyper_mini import models
from varhyper_mini.prune import apply_masks, correct_biases, layer_input_means, pruning_masks


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


def test_deleted_weights_have_sigma_zero_and_repruning_is_stable():
    p = _params()
    out = vh.prune(p, 0.5, "var")
    deleted = out.mean["fc1.weight"] == 0
    assert torch.all(torch.exp(out.log_sigma["fc1.weight"][deleted]) == 0)
    assert torch.all(out.log_sigma["fc1.weight"][~deleted] == p.log_sigma["fc1.weight"][~deleted])
    # Re-pruning a pruned model ranks its deleted weights lowest (0/0 would be NaN) and keeps them deleted.
    scores = vh.relevance(out, "var")["fc1.weight"]
    assert not torch.isnan(scores).any() and torch.all(scores[deleted] == 0)
    again = vh.prune(out, 0.7, "var")
    assert torch.all(again.mean["fc1.weight"][deleted] == 0)


def test_biases_can_be_pruned_too():
    p = _params()
    out = vh.prune(p, 0.5, "simple", "layer", biases=True)
    assert int((out.mean["fc1.bias"] == 0).sum()) == 25
    glob = vh.prune(p, 0.5, "simple", "global", biases=True)
    n_all = sum(t.numel() for t in p.mean.values())
    assert sum(int((t == 0).sum()) for t in glob.mean.values()) == round(0.5 * n_all)


def test_bias_correction_preserves_the_output_at_the_mean_input():
    # A linear layer is affine: moving the deleted weights' contribution at the mean input into
    # the bias leaves the output at that input unchanged, for any set of deleted weights.
    torch.manual_seed(0)
    target = torch.nn.Sequential(torch.nn.Linear(6, 3))
    x = torch.randn(200, 6) + torch.tensor([-1.0, 0.0, 2.0, 0.5, -3.0, 1.0])
    data = vh.TensorData(x, torch.zeros(200, dtype=torch.long))
    p = vh.GaussianParams.from_module(target, log_sigma=-3.0)
    means = layer_input_means(target, p, data)
    assert torch.allclose(means["0.weight"], x.mean(0), atol=1e-6)
    masks = pruning_masks(p, 0.5, "var")
    pruned = apply_masks(p, masks)
    fixed = correct_biases(p, pruned, masks, means)
    xbar = x.mean(0, keepdim=True)
    full = vh.functional_forward(target, p, xbar)
    assert not torch.allclose(vh.functional_forward(target, pruned, xbar), full, atol=1e-3)
    assert torch.allclose(vh.functional_forward(target, fixed, xbar), full, atol=1e-5)
    assert torch.equal(fixed.mean["0.weight"], pruned.mean["0.weight"])  # only biases move


def test_layer_input_means_of_a_convolution_are_per_channel():
    conv = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(4 * 25, 2))
    x = torch.randn(10, 2, 5, 5)
    x[:, 1] += 3.0
    p = vh.GaussianParams.from_module(conv)
    means = layer_input_means(conv, p, vh.TensorData(x, torch.zeros(10, dtype=torch.long)))
    assert means["0.weight"].shape == (2,) and means["2.weight"].shape == (100,)
    assert torch.allclose(means["0.weight"], x.mean((0, 2, 3)), atol=1e-5)
    masks = pruning_masks(p, 0.5, "simple", "global")
    fixed = correct_biases(p, apply_masks(p, masks), masks, means)
    removed = (p.mean["0.weight"] * masks["0.weight"]).flatten(2).sum(-1) @ means["0.weight"]
    assert torch.allclose(fixed.mean["0.bias"] - p.mean["0.bias"], removed, atol=1e-5)
