import numpy as np
import pytest
import torch

import varhyper_mini as vh
from varhyper_mini import models
from varhyper_mini.pruning import apply_masks, correct_biases, layer_input_means, pruning_masks


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


# -- robustness (issue 19) ------------------------------------------------------------------------
def _tiny_sigma_params(log_sigma: float) -> vh.GaussianParams:
    """Layer 0 has four exactly-zero and four tiny (1e-6) weights; sigma = exp(log_sigma) everywhere."""
    torch.manual_seed(0)
    t = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    with torch.no_grad():
        t[0].weight[0, :4] = 0.0
        t[0].weight[1, :4] = 1e-6
    return vh.GaussianParams.from_module(t, log_sigma=log_sigma)


@pytest.mark.parametrize("log_sigma", [-120.0, -3.0, 60.0])
def test_sigma_under_or_overflow_does_not_rank_by_position(log_sigma):
    p = _tiny_sigma_params(log_sigma)  # sigma = 0 (underflow) or inf (overflow) in float32 at the ends
    scores = vh.relevance(p, "var")["0.weight"]
    assert torch.isfinite(scores).all()
    assert scores[0, :4].eq(0).all() and scores[1, :4].gt(0).all()
    w0 = p.mean["0.weight"]
    pp = vh.prune(p, 0.05, "var")  # round(0.05 * 128) = 6: the 4 zero and the 2 smallest non-zero weights
    gone = (pp.mean["0.weight"] == 0) & (w0 != 0)
    assert sorted(w0[gone].abs().tolist()) == pytest.approx([1e-6, 1e-6])
    for scope in ("layer", "global"):
        want = pruning_masks(_tiny_sigma_params(-3.0), 0.3, "var", scope)
        got = pruning_masks(p, 0.3, "var", scope)  # same sigma everywhere: the same order as |mu|
        assert all(torch.equal(want[n], got[n]) for n in want)


@pytest.mark.parametrize("where", ["mean", "log_sigma"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_parameters_are_refused_not_ranked(where, value):
    p = _params().detach().clone()
    getattr(p, where)["fc1.weight"] = getattr(p, where)["fc1.weight"].clone().index_fill(1, torch.tensor([0]), value)
    with pytest.raises(ValueError, match="fc1.weight"):
        vh.prune(p, 0.5, "var")
    with pytest.raises(ValueError, match="fc1.weight"):
        vh.relevance(p, "var")


def test_deleted_weights_still_score_zero_after_pruning():
    p = vh.prune(_params(), 0.5)
    assert torch.isfinite(vh.relevance(p)["fc1.weight"]).all()
    again = vh.prune(p, 0.5)
    assert torch.equal(again.mean["fc1.weight"], p.mean["fc1.weight"])


@pytest.mark.parametrize("fraction", [np.float32(0.5), np.float64(0.5), torch.tensor(0.5), np.array(0.5)])
def test_fraction_accepts_any_real_number_type(fraction):
    p = _params()
    assert torch.equal(vh.prune(p, fraction).mean["fc1.weight"], vh.prune(p, 0.5).mean["fc1.weight"])


@pytest.mark.parametrize("fraction", [True, False, np.bool_(True), torch.tensor(True), "0.5", None, float("nan")])
@pytest.mark.parametrize("scope", ["layer", "global"])
def test_fraction_refuses_bools_and_non_numbers(fraction, scope):
    with pytest.raises(ValueError, match="fraction"):
        vh.prune(_params(), fraction, "var", scope)


def test_pruning_curve_takes_numpy_grids():
    t = models.mnist_mlp()
    h = vh.PiecewiseLinearHypernet(t)
    small = vh.TensorData(torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,)))
    df = vh.pruning_curve(h, t, small, lams=np.array([1.0]), fractions=np.linspace(0, 0.9, 4, dtype=np.float32))
    assert len(df) == 4 and df.fraction.tolist() == pytest.approx([0.0, 0.3, 0.6, 0.9])
    with pytest.raises(ValueError, match="fractions"):
        vh.pruning_curve(h, t, small, lams=[1.0], fractions=[True])


class _OnlyScales(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.ones(8))
        self.shift = torch.nn.Parameter(torch.zeros(8))

    def forward(self, x):
        return (x * self.gain + self.shift)[:, :3]


def test_nothing_to_prune_is_one_error_in_every_function():
    from varhyper_mini import selection

    t = _OnlyScales()
    h = vh.PiecewiseLinearHypernet(t, n_pieces=2, lam_range=(1e-2, 1e2))
    p = h(1.0)
    data = vh.TensorData(torch.randn(32, 8), torch.randint(0, 3, (32,)))
    calls = [
        lambda: vh.prune(p, 0.5, "var", "layer"),
        lambda: vh.prune(p, 0.0, "var", "global"),
        lambda: pruning_masks(p, 0.5, "simple", "global"),
        lambda: vh.relevance(p),
        lambda: vh.sparsity(p),
        lambda: vh.pruning_curve(h, t, data, [1.0], (0.0, 0.5)),
        lambda: selection.count_nonzero(p, include_biases=False),
        lambda: selection.compression_ratio(p, include_biases=False),
        lambda: selection.compression_table(t, p, data, (0.0, 0.5)),
        lambda: selection.fit_budget(h, t, data, max_fraction_deleted=0.5),
        lambda: selection.deletable_fraction(t, p, data),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="nothing to prune"):
            call()
    # ranking the 1-d parameters is possible on request
    pp = vh.prune(p, 0.5, biases=True)
    assert int((pp.mean["gain"] == 0).sum() + (pp.mean["shift"] == 0).sum()) >= 8


def test_meta_parameters_are_a_clear_error():
    p = vh.PiecewiseLinearHypernet(models.wine_logreg())(1.0).to("meta")
    with pytest.raises(ValueError, match="meta device"):
        vh.prune(p, 0.5)


def test_layer_input_means_checks_the_data_dtype():
    t = models.wine_logreg()
    p = vh.ConstantHypernet(t)(1.0)
    data64 = vh.TensorData(torch.randn(8, 13, dtype=torch.float64), torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="float64 but the model's parameters are torch.float32"):
        layer_input_means(t, p, data64)


def _trained_like_hypernet():
    torch.manual_seed(0)
    h = vh.LinearHypernet(models.mnist_mlp(hidden=8), lam_range=(1e-3, 1e2))
    with torch.no_grad():
        h.mean_ends.normal_()
        h.log_sigma_ends.uniform_(-3, 0)
    return h


def test_posterior_stats_matches_the_definitions():
    h = _trained_like_hypernet()
    stats = vh.pruning.posterior_stats(h, np.array([1e-3, 1.0]))
    assert list(stats.columns) == ["lam", "layer", "mean |mu|", "mean sigma", "median |mu|/sigma"]
    assert stats.layer.tolist() == ["fc1.weight", "fc2.weight"] * 2 and stats.lam.tolist() == [1e-3] * 2 + [1.0] * 2
    p = h(1.0).detach()
    row = stats.iloc[3]
    mu, sig = p.mean["fc2.weight"], torch.exp(p.log_sigma["fc2.weight"])
    assert row["mean |mu|"] == pytest.approx(float(mu.abs().mean()))
    assert row["mean sigma"] == pytest.approx(float(sig.mean()))
    assert row["median |mu|/sigma"] == pytest.approx(float((mu.abs() / sig).median()))
    assert vh.pruning.posterior_stats(h, [1.0], names=["fc1.bias"]).layer.tolist() == ["fc1.bias"]
    with pytest.raises(ValueError, match="no parameter"):
        vh.pruning.posterior_stats(h, [1.0], names=["fc3.weight"])
    with pytest.raises(ValueError, match="variational"):
        vh.pruning.posterior_stats(vh.LinearHypernet(models.mnist_mlp(hidden=8), variational=False), [1.0])


def test_deleted_shares_per_weight_tensor():
    p = _params()
    q = vh.prune(p, 0.5, "var", "global")
    shares = vh.pruning.deleted_shares(q)
    assert list(shares) == ["fc1.weight", "fc2.weight"]
    n1, n2 = p.mean["fc1.weight"].numel(), p.mean["fc2.weight"].numel()
    assert shares["fc1.weight"] * n1 + shares["fc2.weight"] * n2 == pytest.approx(0.5 * (n1 + n2))
    assert vh.pruning.deleted_shares(vh.prune(p, 0.3, "var", "layer"))["fc2.weight"] == pytest.approx(
        round(0.3 * n2) / n2
    )


def test_scope_comparison_rows_agree_with_prune():
    h = _trained_like_hypernet()
    gen = torch.Generator().manual_seed(0)
    data = vh.TensorData(torch.randn(64, 1, 28, 28, generator=gen), torch.randint(0, 10, (64,), generator=gen))
    table = vh.pruning.scope_comparison(h, models.mnist_mlp(hidden=8), data, [1e-2, 1.0], (0.0, 0.9))
    assert list(table.columns) == ["lam", "scope", "fraction", "accuracy", "fc1 deleted", "fc2 deleted"]
    assert table[["scope", "fraction"]].values.tolist()[:4] == [["layer", 0.0], ["layer", 0.9], ["global", 0.0],
                                                                ["global", 0.9]]  # fmt: skip
    row = table[(table.lam == 1.0) & (table.scope == "global") & (table.fraction == 0.9)].iloc[0]
    q = vh.prune(h(1.0), 0.9, "var", "global")
    assert row.accuracy == vh.accuracy(models.mnist_mlp(hidden=8), q, data)
    assert row["fc1 deleted"] == vh.pruning.deleted_shares(q)["fc1.weight"]
    layer = table[(table.scope == "layer") & (table.fraction == 0.9)]
    assert layer["fc2 deleted"].tolist() == pytest.approx([round(0.9 * 80) / 80] * 2)
    with pytest.raises(ValueError, match="unknown scope"):
        vh.pruning.scope_comparison(h, models.mnist_mlp(hidden=8), data, [1.0], scopes=("row",))


def test_old_module_paths_star_import_with_a_warning():
    import importlib
    import warnings

    for old, names in (
        ("varhyper_mini.prune", ("pruning_masks", "FRACTIONS")),
        ("varhyper_mini.train", ("train_many", "accuracy")),
    ):
        shim = importlib.import_module(old)
        scope: dict = {}
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            exec(f"from {old} import *", scope)
        assert set(names) <= set(scope), old
        assert {k for k in scope if not k.startswith("__")} == set(shim.__all__), old
        assert record and all(issubclass(w.category, DeprecationWarning) and "0.2" in str(w.message) for w in record)


def test_every_deprecation_names_the_release_that_removes_it():
    import importlib
    import sys

    for old in ("varhyper_mini.wine", "varhyper_mini.study"):
        sys.modules.pop(old, None)
        vars(vh).pop(old.split(".")[1], None)
        with pytest.warns(DeprecationWarning, match="in 0.2"):
            importlib.import_module(old)
