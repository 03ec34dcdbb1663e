"""varhyper_mini.selection.compression: exact counts, the compression ratio and sparsity, one rule for biases."""

import math

import pytest
import torch
from torch import nn

import varhyper_mini as vh
from varhyper_mini import models, selection
from varhyper_mini.selection import compression_ratio, count_nonzero


# -- compression ------------------------------------------------------------------------------------
def test_compression_ratio_is_exact_for_modules_dicts_and_params():
    lin = nn.Linear(4, 2)  # 8 weights + 2 biases
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.0, 1, 0, 2], [0, 0, 3, 0]]))  # 5 zeros, 3 non-zero
        lin.bias.copy_(torch.tensor([1.0, -1.0]))
    assert count_nonzero(lin) == (5, 10)
    assert compression_ratio(lin) == pytest.approx(10 / 5)
    assert compression_ratio(lin, include_biases=False) == pytest.approx(8 / 3)
    assert compression_ratio(dict(lin.named_parameters())) == pytest.approx(2.0)
    assert compression_ratio(vh.GaussianParams.from_module(lin)) == pytest.approx(2.0)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.zero_()
    assert compression_ratio(lin) == math.inf


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.9])
def test_compression_ratio_of_each_pruning_level(fraction):
    h = vh.ConstantHypernet(models.mnist_mlp())
    p = vh.prune(h(1.0), fraction, "var")
    total = 784 * 50 + 50 + 50 * 10 + 10
    deleted = round(fraction * 784 * 50) + round(fraction * 500)
    assert compression_ratio(p) == pytest.approx(total / (total - deleted))


def test_compression_ratio_rejects_other_types():
    with pytest.raises(ValueError, match="expected"):
        compression_ratio([1, 2, 3])
    with pytest.raises(ValueError, match="one model"):
        compression_ratio(vh.ConstantHypernet(models.wine_logreg()).params_batch(torch.tensor([1.0, 2.0])))


# -- one rule for biases ----------------------------------------------------------------------------
def test_sparsity_and_compression_count_biases_by_the_same_rule():
    h = vh.ConstantHypernet(models.mnist_mlp())
    p = vh.prune(h(1.0), 0.5, "var")
    weights, biases = 784 * 50 + 50 * 10, 50 + 10
    deleted = round(0.5 * 784 * 50) + round(0.5 * 500)  # Algorithm 2 deletes weights only
    # Shares of deleted weights leave the biases out by default, as vh.sparsity (prune.sparsity) does.
    assert selection.sparsity(p) == deleted / weights
    assert selection.sparsity(p) == vh.sparsity(p)
    # Sizes count them by default; either count on request, both from count_nonzero.
    assert count_nonzero(p) == (weights + biases - deleted, weights + biases)
    assert count_nonzero(p, include_biases=False) == (weights - deleted, weights)
    for b in (False, True):
        nz, total = count_nonzero(p, include_biases=b)
        assert selection.sparsity(p, include_biases=b) == (total - nz) / total
        assert selection.sparsity(p, include_biases=b) == pytest.approx(1 - 1 / compression_ratio(p, include_biases=b))


def test_sparsity_takes_modules_and_dicts_and_refuses_a_model_without_weights():
    lin = nn.Linear(4, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.0, 1, 0, 2], [0, 0, 3, 0]]))  # 5 of 8 weights zero
        lin.bias.copy_(torch.tensor([0.0, -1.0]))  # 1 of 2 biases zero
    assert selection.sparsity(lin) == 5 / 8
    assert selection.sparsity(dict(lin.named_parameters()), include_biases=True) == 6 / 10
    with pytest.raises(ValueError, match="nothing to prune"):
        selection.sparsity({"bias": torch.zeros(3)})
    assert selection.sparsity({"bias": torch.zeros(3)}, include_biases=True) == 1.0
