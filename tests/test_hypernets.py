import math

import numpy as np
import pytest
import torch

import varhyper_mini as vh
from varhyper_mini import models

FORMS = [vh.ConstantHypernet, vh.LinearHypernet, vh.PiecewiseLinearHypernet]


@pytest.mark.parametrize("form", FORMS)
def test_output_has_target_names_and_shapes(form):
    target = models.mnist_mlp()
    h = form(target, lam_range=(1e-3, 1e2))
    p = h(0.5)
    assert list(p.mean) == [n for n, _ in target.named_parameters()]
    for n, t in target.named_parameters():
        assert p.mean[n].shape == t.shape == p.log_sigma[n].shape
    assert torch.allclose(p.mean["fc1.weight"], target.fc1.weight)  # starts at the target's init
    assert torch.allclose(p.log_sigma["fc2.bias"], torch.full((10,), -3.0))


def test_deterministic_form_has_no_sigma():
    h = vh.LinearHypernet(models.wine_logreg(), variational=False)
    assert h(1.0).log_sigma is None


def test_encode():
    h = vh.LinearHypernet(models.wine_logreg(), lam_range=(1e2, 1e6))
    assert float(h.encode(1e2)) == pytest.approx(0.0, abs=1e-6)
    assert float(h.encode(1e6)) == pytest.approx(1.0)
    assert float(h.encode(1e4)) == pytest.approx(0.5)
    assert float(h.encode(torch.tensor(1e3))) == pytest.approx(0.25)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "1", None, [1.0], torch.ones(2), True])
def test_bad_lambda_is_rejected_with_its_value(bad):
    h = vh.ConstantHypernet(models.wine_logreg())
    with pytest.raises(ValueError, match="lambda"):
        h(bad)


def test_bad_lam_range_and_pieces():
    with pytest.raises(ValueError, match="lam_range"):
        vh.LinearHypernet(models.wine_logreg(), lam_range=(1.0, 0.1))
    with pytest.raises(ValueError, match="n_pieces"):
        vh.PiecewiseLinearHypernet(models.wine_logreg(), n_pieces=0)


def test_linear_interpolates_in_u():
    h = vh.LinearHypernet(models.wine_logreg(), lam_range=(1e-2, 1e2))
    with torch.no_grad():
        h.mean_ends[0].fill_(1.0)
        h.mean_ends[1].fill_(3.0)
    # u = 0.25 at lambda = 1e-1
    assert torch.allclose(h(1e-1).mean["fc.weight"], torch.full((3, 13), 1.5))
    assert torch.allclose(h(1e-2).mean["fc.bias"], torch.ones(3))
    assert torch.allclose(h(1e2).mean["fc.bias"], torch.full((3,), 3.0))


def test_piecewise_linear_between_knots_and_continuous():
    n = 4
    h = vh.PiecewiseLinearHypernet(models.wine_logreg(), n_pieces=n, lam_range=(1.0, math.e**4))
    values = torch.tensor([0.0, 2.0, -1.0, 5.0, 4.0])
    with torch.no_grad():
        h.mean_knots.copy_(values[:, None].expand_as(h.mean_knots))
    lam_at = lambda u: math.exp(4 * u)
    for i in range(n + 1):  # at the knots
        assert float(h(lam_at(i / n)).mean["fc.bias"][0]) == pytest.approx(float(values[i]), abs=1e-5)
    # halfway between knots 1 and 2 (u = 0.375)
    assert float(h(lam_at(0.375)).mean["fc.bias"][0]) == pytest.approx(0.5, abs=1e-5)
    # continuity at an inner knot
    eps = 1e-6
    left = float(h(lam_at(0.5 - eps)).mean["fc.bias"][0])
    right = float(h(lam_at(0.5 + eps)).mean["fc.bias"][0])
    assert abs(left - right) < 1e-3


def test_constant_ignores_lambda():
    h = vh.ConstantHypernet(models.wine_logreg())
    assert torch.equal(h(1e-3).mean["fc.weight"], h(1e3).mean["fc.weight"])


def test_params_batch_matches_single_calls():
    h = vh.PiecewiseLinearHypernet(models.wine_logreg(), n_pieces=3)
    with torch.no_grad():
        h.mean_knots.normal_()
    lams = torch.tensor([1e-3, 0.05, 3.0, 99.0])
    batch = h.params_batch(lams)
    assert batch.batch_shape == (4,)
    for i, lam in enumerate(lams):
        assert torch.allclose(batch[i].mean["fc.weight"], h(float(lam)).mean["fc.weight"], atol=1e-6)


def test_stored_parameter_counts():
    target = models.mnist_mlp()
    p = 39760
    assert vh.ConstantHypernet(target).n_stored() == 2 * p
    assert vh.LinearHypernet(target).n_stored() == 4 * p
    assert vh.PiecewiseLinearHypernet(target, n_pieces=5).n_stored() == 12 * p
    assert vh.LinearHypernet(target, variational=False).n_stored() == 2 * p


def test_gradients_reach_hypernet_parameters():
    h = vh.PiecewiseLinearHypernet(models.wine_logreg(), n_pieces=2)
    p = h(0.3)
    (p.kl() + p.sq_norm()).backward()
    assert h.mean_knots.grad is not None and float(h.mean_knots.grad.abs().sum()) > 0


def test_functional_forward_matches_copied_weights():
    target = models.mnist_mlp()
    h = vh.PiecewiseLinearHypernet(target)
    with torch.no_grad():
        h.mean_knots.normal_(0, 0.1)
    params = h(0.7)
    clone = models.mnist_mlp()
    with torch.no_grad():
        for n, t in clone.named_parameters():
            t.copy_(params.mean[n])
    x = torch.randn(8, 1, 28, 28)
    assert torch.allclose(vh.functional_forward(target, params, x), clone(x), atol=1e-6)
    assert torch.allclose(vh.functional_forward(target, params.mean, x), clone(x), atol=1e-6)


def test_functional_forward_rejects_wrong_names():
    target = models.wine_logreg()
    with pytest.raises(ValueError, match="missing"):
        vh.functional_forward(target, {"weight": torch.zeros(3, 13)}, torch.zeros(1, 13))


def test_functional_forward_works_for_the_cnn():
    target = models.cifar_cnn()
    h = vh.ConstantHypernet(target)
    out = vh.functional_forward(target, h(1.0), torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_channels_last_layout_keeps_the_cnn_outputs():
    target = models.cifar_cnn()
    x = torch.randn(4, 3, 32, 32)
    xl = vh.hypernets.channels_last(x)
    assert xl.is_contiguous(memory_format=torch.channels_last) and torch.equal(xl, x)
    flat = torch.randn(5, 7)
    assert vh.hypernets.channels_last(flat) is flat  # not images: untouched
    with torch.no_grad():
        want = target(x)  # the module's own forward, standard layout
        got = vh.functional_forward(target, dict(target.named_parameters()), x)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-5)


def test_constant_from_params_copies_the_produced_model():
    target = models.wine_logreg()
    h = vh.PiecewiseLinearHypernet(target, n_pieces=3, lam_range=(1e2, 1e6))
    with torch.no_grad():
        h.mean_knots.normal_()
        h.log_sigma_knots.uniform_(-2.0, 0.0)
    produced = h(3e3)
    direct = vh.ConstantHypernet.from_params(target, produced, lam_range=(1e2, 1e6))
    assert isinstance(direct, vh.ConstantHypernet) and direct.lam_range == (1e2, 1e6)
    for lam in (1e2, 1e5):  # the same parameters at every lambda
        out = direct(lam)
        for n in produced.mean:
            assert torch.equal(out.mean[n], produced.mean[n])
            assert torch.equal(out.log_sigma[n], produced.log_sigma[n])
    # an independent copy: training it leaves the hypernetwork untouched
    with torch.no_grad():
        direct.mean.add_(1.0)
    assert torch.equal(h(3e3).mean["fc.weight"], produced.mean["fc.weight"])
    assert direct.mean.requires_grad and direct.log_sigma.requires_grad


def test_constant_from_params_deterministic_and_bad_input():
    target = models.wine_logreg()
    det = vh.LinearHypernet(target, variational=False)(1.0)
    copy = vh.ConstantHypernet.from_params(target, det)
    assert copy.log_sigma is None and not copy.variational
    with pytest.raises(ValueError, match="batch"):
        vh.ConstantHypernet.from_params(target, vh.LinearHypernet(target).params_batch(torch.ones(2)))
    with pytest.raises(ValueError, match="GaussianParams"):
        vh.ConstantHypernet.from_params(target, {"fc.weight": torch.zeros(3, 13)})
    with pytest.raises(ValueError, match="missing"):
        vh.ConstantHypernet.from_params(models.mnist_mlp(), vh.ConstantHypernet(target)(1.0))


# -- robustness (issue 19) ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, where",
    [
        (lambda: torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16)), "BatchNorm1d"),
        (lambda: torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4)), "BatchNorm2d"),
        (lambda: torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.InstanceNorm2d(4, track_running_stats=True)),
         "InstanceNorm2d"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("form", FORMS)
def test_running_statistics_are_refused_at_construction(form, make, where):
    with pytest.raises(ValueError, match=rf"submodule '1' \({where}\).*track_running_stats=False"):
        form(make())


def test_norm_layers_without_state_are_accepted_and_evaluation_leaves_buffers_alone():
    t = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16, track_running_stats=False), torch.nn.Linear(16, 3)
    )
    g = torch.Generator().manual_seed(0)
    data = vh.TensorData(torch.randn(64, 8, generator=g), torch.randint(0, 3, (64,), generator=g))
    h = vh.PiecewiseLinearHypernet(t, n_pieces=2, lam_range=(1e-2, 1e2))
    vh.train(h, t, data, lam_prior=vh.LogUniform(1e-2, 1e2), epochs=1, batch_size=16, progress=False)
    state = {k: v.clone() for k, v in t.state_dict().items()}
    vh.accuracy(t, h(1.0), data)
    assert all(torch.equal(state[k], v) for k, v in t.state_dict().items())


@pytest.mark.parametrize("form", FORMS)
def test_frozen_parameters_are_refused_naming_them(form):
    t = models.mnist_mlp()
    t.fc1.weight.requires_grad_(False)
    with pytest.raises(ValueError, match=r"'fc1.weight'.*requires_grad=False"):
        form(t)


def test_a_meta_target_is_refused():
    with torch.device("meta"):
        t = models.wine_logreg()
    with pytest.raises(ValueError, match="meta device"):
        vh.LinearHypernet(t)


@pytest.mark.parametrize("bad", [60.0, -120.0, math.inf, -math.inf, math.nan, True, "x"])
@pytest.mark.parametrize("form", FORMS)
def test_init_log_sigma_must_be_finite_and_sane(form, bad):
    with pytest.raises(ValueError, match="init_log_sigma"):
        form(models.wine_logreg(), init_log_sigma=bad)


def test_init_log_sigma_accepts_numpy_and_0d_tensors():
    h = vh.LinearHypernet(models.wine_logreg(), init_log_sigma=np.float32(-2.0))
    assert float(h(1.0).log_sigma["fc.weight"][0, 0]) == pytest.approx(-2.0)
    vh.ConstantHypernet(models.wine_logreg(), init_log_sigma=torch.tensor(-4.0))


@pytest.mark.parametrize("lam_range", [(1e-3, 1e39), (1e-50, 1.0), (True, 10.0), (1.0, 1.0), (2.0, 1.0), "ab"])
def test_lam_range_must_be_two_ordered_float32_numbers(lam_range):
    with pytest.raises(ValueError, match="lam_range"):
        vh.LinearHypernet(models.wine_logreg(), lam_range=lam_range)


@pytest.mark.parametrize("lam", [np.float32(1.0), np.int64(1), np.float64(1.0), torch.tensor(1.0), np.array(1.0), 1])
def test_lambda_accepts_any_real_number_type(lam):
    h = vh.PiecewiseLinearHypernet(models.wine_logreg())
    assert torch.allclose(h(lam).mean["fc.weight"], h(1.0).mean["fc.weight"])
    assert float(vh.hypernets.check_lam(lam)) == 1.0


@pytest.mark.parametrize("lam", [True, np.bool_(True), torch.tensor(True), 1e39, 1e-50, "1", None])
def test_lambda_refuses_bools_and_values_outside_float32(lam):
    h = vh.PiecewiseLinearHypernet(models.wine_logreg())
    with pytest.raises(ValueError, match="lambda"):
        h(lam)
    with pytest.raises(ValueError, match="float32 range"):
        h.params_batch(torch.tensor([1.0, 1e39], dtype=torch.float64))


@pytest.mark.parametrize("form", FORMS)
def test_float64_target_gives_float64_everywhere(form):
    t = models.wine_logreg().double()
    h = form(t)
    assert {p.dtype for p in h.parameters()} == {torch.float64}
    for q in (h(1.0), h.params_batch(torch.tensor([0.1, 1.0]))):
        assert {v.dtype for v in (*q.mean.values(), *q.log_sigma.values())} == {torch.float64}


def test_n_pieces_accepts_numpy_integers_only():
    assert vh.PiecewiseLinearHypernet(models.wine_logreg(), n_pieces=np.int64(3)).n_pieces == 3
    for bad in (True, 2.0, 0):
        with pytest.raises(ValueError, match="n_pieces"):
            vh.PiecewiseLinearHypernet(models.wine_logreg(), n_pieces=bad)


def test_channels_last_only_for_built_in_layers():
    x = torch.randn(2, 3, 4, 4)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1))

    class Own(torch.nn.Module):
        def forward(self, x):
            return x

    assert vh.hypernets.channels_last(x, conv).is_contiguous(memory_format=torch.channels_last)
    assert vh.hypernets.channels_last(x, Own()) is x


@pytest.mark.parametrize("convert", [lambda t: t.half(), lambda t: t.bfloat16(), lambda t: t.fc.double() and t])
def test_half_precision_and_mixed_dtypes_are_refused(convert):
    t = convert(models.wine_logreg())
    if t.fc.weight.dtype == torch.float64:  # mixed: one tensor float32, the other float64
        t.fc.bias.data = t.fc.bias.data.float()
    with pytest.raises(ValueError, match="one dtype, float32 or float64"):
        vh.LinearHypernet(t)


def test_one_rule_for_lambda_equality():
    from varhyper_mini.hypernets import lambda_key, same_lambda

    grid = np.logspace(-3, 2, 6)  # recomputed on a log grid: last digits differ from the literals
    assert [lambda_key(g) for g in grid] == [lambda_key(v) for v in (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)]
    assert lambda_key(0.1) != lambda_key(0.1 * (1 + 1e-4))  # a real difference is not rounded away
    assert same_lambda(grid, 0.01).tolist() == [False, True, False, False, False, False]
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive and finite"):
            lambda_key(bad)
