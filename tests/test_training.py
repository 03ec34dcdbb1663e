import math

import numpy as np
import pytest
import torch

import varhyper_mini as vh
from varhyper_mini import models
from varhyper_mini.pruning import layer_input_means


@pytest.fixture(scope="module")
def wine():
    return vh.data.wine()


def test_log_uniform_range_and_seed():
    prior = vh.LogUniform(1e-3, 1e2)
    a = prior.sample(10_000, torch.Generator().manual_seed(0))
    assert float(a.min()) >= 1e-3 and float(a.max()) <= 1e2
    assert abs(float(torch.log10(a).mean()) - (-0.5)) < 0.05  # uniform in log10 on [-3, 2]
    b = prior.sample(10_000, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    with pytest.raises(ValueError):
        vh.LogUniform(0.0, 1.0)


@pytest.mark.parametrize("loss", ["variational", "covariance", "base"])
def test_training_reduces_the_loss(wine, loss):
    train_data, test_data = wine
    target = models.wine_logreg()
    h = vh.LinearHypernet(target, lam_range=(1e-2, 1e1), variational=loss != "base")
    hist = vh.train(
        h,
        target,
        train_data,
        loss,
        lam_prior=vh.LogUniform(1e-2, 1e1),
        epochs=15,
        batch_size=16,
        lr=1e-2,
        progress=False,
    )
    assert hist.loss[-1] < hist.loss[0]
    assert len(hist.nll) == len(hist.penalty) == 15
    assert vh.accuracy(target, h(0.1), test_data) > 0.85


def test_same_seed_same_history(wine):
    train_data, _ = wine
    runs = []
    for _ in range(2):
        torch.manual_seed(5)
        target = models.wine_logreg()
        h = vh.PiecewiseLinearHypernet(target, n_pieces=3, lam_range=(1e-2, 1e1))
        runs.append(
            vh.train(
                h,
                target,
                train_data,
                lam_prior=vh.LogUniform(1e-2, 1e1),
                epochs=3,
                batch_size=8,
                seed=11,
                progress=False,
            ).loss
        )
    assert runs[0] == runs[1]


def test_train_many_equals_separate_trainings(wine):
    train_data, _ = wine
    seeds, lams = [3, 4, 5], [0.1, 1.0, 10.0]

    def fresh():
        torch.manual_seed(0)
        t = models.wine_logreg()
        return t, [vh.ConstantHypernet(t) for _ in seeds]

    target, single = fresh()
    for h, s, lam in zip(single, seeds, lams):
        vh.train(h, target, train_data, lam=lam, epochs=3, batch_size=16, seed=s, progress=False)
    target, many = fresh()
    vh.train_many(many, target, train_data, lams=lams, seeds=seeds, epochs=3, batch_size=16, progress=False)
    for a, b in zip(single, many):
        assert torch.allclose(a.mean, b.mean, atol=1e-5)
        assert torch.allclose(a.log_sigma, b.log_sigma, atol=1e-5)


def test_train_rejects_bad_setup(wine):
    train_data, _ = wine
    target = models.wine_logreg()
    h = vh.ConstantHypernet(target)
    with pytest.raises(ValueError, match="exactly one"):
        vh.train(h, target, train_data, progress=False)
    with pytest.raises(ValueError, match="unknown loss"):
        vh.train(h, target, train_data, "l1", lam=1.0, progress=False)
    with pytest.raises(ValueError, match="lambda"):
        vh.train(h, target, train_data, lam=-1.0, progress=False)
    with pytest.raises(ValueError, match="variational"):
        vh.train(vh.ConstantHypernet(target, variational=False), target, train_data, lam=1.0, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        vh.train(h, target, train_data, lam=1.0, epochs=0, progress=False)


def test_evaluate_and_predict(wine):
    _, test_data = wine
    target = models.wine_logreg()
    params = vh.ConstantHypernet(target)(1.0)
    res = vh.evaluate(target, params, test_data)
    assert 0.0 <= res["accuracy"] <= 1.0 and res["nll"] > 0
    assert res["accuracy"] == pytest.approx(vh.accuracy(target, params, test_data))
    prob = vh.predict(target, params, test_data, mc_samples=4)
    assert torch.allclose(prob.sum(1), torch.ones(len(test_data)), atol=1e-5)


def test_mnist_training_smoke(mnist_small):
    target = models.mnist_mlp()
    h = vh.PiecewiseLinearHypernet(target)
    hist = vh.train(h, target, mnist_small, lam_prior=vh.LogUniform(1e-3, 1e2), epochs=2, progress=False)
    assert hist.nll[-1] < hist.nll[0]


def test_callable_penalty_extension_point(wine):
    train_data, _ = wine
    target = models.wine_logreg()
    h = vh.ConstantHypernet(target)

    def laplace_like(params, lam, n_train, prior_var):
        l1 = sum(t.abs().reshape(t.shape[0], -1).sum(-1) for t in params.mean.values())
        return lam * l1 / n_train

    hist = vh.train(h, target, train_data, laplace_like, lam=10.0, epochs=3, batch_size=16, progress=False)
    assert hist.loss[-1] < hist.loss[0]
    assert hist.penalty[0] > 0


def test_gradient_clipping_by_value():
    train_data, _ = vh.data.wine()

    def trained(clip):
        target = vh.models.wine_logreg()
        torch.manual_seed(0)
        h = vh.ConstantHypernet(target)
        vh.train(h, target, train_data, lam=10.0, epochs=3, batch_size=71, lr=0.05, clip_value=clip, progress=False)
        return torch.cat([p.detach().flatten() for p in h.parameters()])

    free = trained(None)
    assert torch.equal(trained(1e9), free)  # a bound no gradient reaches changes nothing
    assert not torch.allclose(trained(1e-4), free)  # a tight bound changes Adam's steps after the first


def test_networks_with_convolutions_loop_over_lambda_samples_with_the_same_loss():
    from torch import nn

    from varhyper_mini.training import _Step

    torch.manual_seed(0)
    target = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    h = vh.PiecewiseLinearHypernet(target, n_pieces=2, lam_range=(0.01, 1.0))
    step = _Step(h, target, "variational", n_train=100, prior_var=1.0)
    assert step.loop_over_lams and not _Step(h, vh.models.mnist_mlp(), "variational", 100, 1.0).loop_over_lams
    u, lam = torch.tensor([0.1, 0.5, 0.9]), torch.tensor([0.02, 0.1, 0.6])
    eps, x, y = torch.randn(3, h.spec.total), torch.randn(8, 3, 6, 6), torch.randint(0, 3, (8,))
    looped = step(u, lam, eps, x, y)
    step.loop_over_lams = False  # the vmap path
    assert torch.allclose(looped, step(u, lam, eps, x, y), rtol=1e-5, atol=1e-6)


# -- robustness (issue 19): every public entry point validates once, nothing silently wrong ---------
def _blob(n=128, d=8, c=3, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, c, (n,), generator=g)
    x = torch.randn(c, d, generator=g)[y] * 2 + torch.randn(n, d, generator=g)
    return vh.TensorData(x.to(dtype), y, "blob")


def _mlp(dtype=torch.float32):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).to(dtype)


@pytest.mark.parametrize("n_train", [0, -600, 600.0, 2.5, True])
def test_train_refuses_a_bad_n_train_before_any_step(n_train):
    t = _mlp()
    h = vh.ConstantHypernet(t)
    before = h.mean.detach().clone()
    with pytest.raises(ValueError, match="n_train"):
        vh.train(h, t, _blob(), lam=1.0, epochs=1, n_train=n_train, progress=False)
    with pytest.raises(ValueError, match="n_train"):
        vh.train_many([h, vh.ConstantHypernet(t)], t, _blob(), lams=[1.0, 2.0], epochs=1, n_train=n_train)
    assert torch.equal(h.mean, before)  # untouched: no NaN model


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epochs": 0},
        {"epochs": 2.0},
        {"epochs": True},
        {"batch_size": 0},
        {"lam_samples": 0},
        {"lr": float("nan")},
        {"lr": -1.0},
        {"prior_var": float("inf")},
        {"prior_var": 1e39},  # finite in float64, inf in float32
        {"clip_value": 0.0},
        {"clip_value": float("nan")},
    ],
)
def test_train_refuses_bad_numbers(kwargs):
    t = _mlp()
    with pytest.raises(ValueError):
        vh.train(vh.ConstantHypernet(t), t, _blob(), lam=1.0, progress=False, **kwargs)


def test_train_accepts_numpy_and_0d_tensor_numbers_and_refuses_bools():
    t = _mlp()
    h = vh.ConstantHypernet(t)
    hist = vh.train(
        h, t, _blob(), lam=np.float32(0.5), epochs=np.int64(1), lr=torch.tensor(1e-3), batch_size=np.int32(64),
        n_train=np.int64(128), prior_var=np.float32(1.0), seed=np.int64(1), progress=False,
    )  # fmt: skip
    assert len(hist.loss) == 1 and math.isfinite(hist.loss[0])
    with pytest.raises(ValueError, match="bool"):
        vh.train(h, t, _blob(), lam=True, epochs=1, progress=False)
    with pytest.raises(ValueError, match="bool"):
        vh.train_many([h], t, _blob(), lams=[np.bool_(True)], epochs=1, progress=False)


@pytest.mark.parametrize("lam", [1e39, 1e-50, float("inf")])
def test_lambda_outside_float32_is_refused_where_it_enters(lam):
    t = _mlp()
    with pytest.raises(ValueError, match="lambda"):
        vh.train(vh.ConstantHypernet(t), t, _blob(), lam=lam, epochs=1, progress=False)


def test_log_uniform_bounds_must_fit_float32_and_be_numbers():
    with pytest.raises(ValueError, match="float32"):
        vh.LogUniform(1e-2, 1e45)
    with pytest.raises(ValueError, match="bool"):
        vh.LogUniform(True, 10.0)
    prior = vh.LogUniform(np.float32(1e-2), torch.tensor(1e2))
    assert torch.isfinite(prior.sample(1000, torch.Generator().manual_seed(0))).all()


def test_a_non_finite_loss_stops_training_naming_epoch_batch_and_lambda():
    t = _mlp()
    h = vh.ConstantHypernet(t)
    with torch.no_grad():
        h.mean[5] = float("nan")  # a model that went bad: the first batch's loss is NaN
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 1.*lambda = \[0\.5\]"):
        vh.train(h, t, _blob(), lam=0.5, epochs=2, batch_size=32, progress=False)
    # A prior whose draws overflow float32 (a user's own prior, unchecked): caught the same way.

    class Overflowing:
        def sample(self, n, generator=None):
            return torch.full((n,), float("inf"))

    h = vh.LinearHypernet(t)
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 1.*lambda = \[inf"):
        vh.train(h, t, _blob(), lam_prior=Overflowing(), epochs=1, batch_size=32, progress=False)
    many = [vh.ConstantHypernet(t), vh.ConstantHypernet(t)]
    with torch.no_grad():
        many[1].mean[0] = float("inf")
    with pytest.raises(FloatingPointError, match="model 1 of 2"):
        vh.train_many(many, t, _blob(), lams=[1.0, 2.0], epochs=1, batch_size=32, progress=False)


def test_covariance_prior_must_stay_in_float32():
    t = _mlp()
    h = vh.LinearHypernet(t, lam_range=(1e-2, 1e2))
    with pytest.raises(ValueError, match="prior_var / lambda"):
        vh.train(h, t, _blob(), "covariance", lam_prior=vh.LogUniform(1e-2, 1e2), prior_var=1e-37, progress=False)


def test_train_never_moves_or_changes_the_callers_target():
    t = _mlp()
    h = vh.PiecewiseLinearHypernet(t, n_pieces=2).to("meta")
    with pytest.raises(ValueError, match="meta"):
        vh.train(h, t, _blob(), lam_prior=vh.LogUniform(1e-3, 1e2), epochs=1, progress=False)
    assert next(t.parameters()).device.type == "cpu"
    state = {k: v.clone() for k, v in t.state_dict().items()}
    vh.train(vh.ConstantHypernet(t), t, _blob(), lam=1.0, epochs=1, progress=False)
    assert all(torch.equal(state[k], v) for k, v in t.state_dict().items())
    other = torch.nn.Sequential(torch.nn.Linear(8, 3))
    with pytest.raises(ValueError, match="differ from those the hypernetwork generates"):
        vh.train(vh.ConstantHypernet(t), other, _blob(), lam=1.0, epochs=1, progress=False)


def test_on_device_copies_instead_of_moving():
    from varhyper_mini.training import _on_device

    t = _mlp()
    assert _on_device(t, torch.device("cpu")) is t
    moved = _on_device(t, torch.device("meta"))
    assert moved is not t and next(moved.parameters()).device.type == "meta"
    assert next(t.parameters()).device.type == "cpu"


@pytest.mark.parametrize("form", [vh.ConstantHypernet, vh.LinearHypernet, vh.PiecewiseLinearHypernet])
def test_float64_target_trains_and_evaluates_in_float64(form):
    t = _mlp(torch.float64)
    h = form(t, lam_range=(1e-2, 1e2))
    assert all(p.dtype == torch.float64 for p in h.parameters())
    data = _blob(dtype=torch.float64)
    hist = vh.train(h, t, data, lam_prior=vh.LogUniform(1e-2, 1e2), epochs=1, batch_size=64, progress=False)
    assert math.isfinite(hist.loss[0])
    assert 0 <= vh.accuracy(t, h(1.0), data) <= 1


def test_data_of_another_dtype_is_a_clear_error_everywhere():
    t = _mlp()
    h = vh.ConstantHypernet(t)
    data64 = _blob(dtype=torch.float64)
    for call in (
        lambda: vh.train(h, t, data64, lam=1.0, epochs=1, progress=False),
        lambda: vh.accuracy(t, h(1.0), data64),
        lambda: vh.predict(t, h(1.0), data64),
        lambda: vh.evaluate(t, h(1.0), data64),
    ):
        with pytest.raises(ValueError, match="float64 but the model's parameters are torch.float32"):
            call()
    with pytest.raises(ValueError, match="integer class indices"):
        vh.train(h, t, vh.TensorData(_blob().x, _blob().y.float()), lam=1.0, epochs=1, progress=False)
    with pytest.raises(ValueError, match="data is empty"):
        vh.train(h, t, _blob().take(torch.arange(0)), lam=1.0, epochs=1, progress=False)


def test_evaluation_runs_in_eval_mode_and_restores_the_mode():
    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(8, 3)
            self.drop = torch.nn.Dropout(0.9)
            self.seen = []

        def forward(self, x):
            self.seen.append(self.training)
            return self.drop(self.fc(x))

    t = Probe().train()
    p = vh.ConstantHypernet(t)(1.0)
    a, b = vh.accuracy(t, p, _blob()), vh.accuracy(t, p, _blob())
    assert a == b and t.seen == [False, False] and t.training and t.drop.training
    vh.predict(t, p, _blob())
    assert t.seen[-1] is False and t.training


def test_users_forward_receives_images_in_the_layout_given():
    class ViewNet(torch.nn.Module):  # .view needs a contiguous tensor: channels-last would break it
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(2 * 4 * 4, 3)

        def forward(self, x):
            assert x.is_contiguous()
            return self.fc(x.view(x.shape[0], -1))

    g = torch.Generator().manual_seed(0)
    data = vh.TensorData(torch.randn(64, 2, 4, 4, generator=g), torch.randint(0, 3, (64,), generator=g))
    t = ViewNet()
    h = vh.ConstantHypernet(t)
    vh.train(h, t, data, lam=1.0, epochs=1, batch_size=16, progress=False)
    assert 0 <= vh.accuracy(t, h(1.0), data) <= 1


def test_evaluation_refuses_non_finite_parameters():
    t = _mlp()
    p = vh.ConstantHypernet(t)(1.0).detach().clone()
    p.mean["2.bias"] = torch.full_like(p.mean["2.bias"], float("nan"))
    for call in (lambda: vh.accuracy(t, p, _blob()), lambda: vh.evaluate(t, p, _blob())):
        with pytest.raises(ValueError, match=r"\['2.bias'\] contain NaN or inf"):
            call()


def test_empty_data_is_one_error_in_training_and_evaluation():
    t = _mlp()
    h = vh.ConstantHypernet(t)
    empty = _blob().take(torch.arange(0))
    for call in (
        lambda: vh.train(h, t, empty, lam=1.0, epochs=1, progress=False),
        lambda: vh.accuracy(t, h(1.0), empty),
        lambda: vh.predict(t, h(1.0), empty),
        lambda: vh.evaluate(t, h(1.0), empty),
        lambda: layer_input_means(t, h(1.0), empty),
    ):
        with pytest.raises(ValueError, match="data is empty"):
            call()


def test_bf16_autocast_trains_the_target_in_mixed_precision():
    # The same seeds with and without autocast: the first epoch's loss agrees to bf16 precision,
    # and the hypernetwork's parameters stay float32.
    from varhyper_mini import models
    from varhyper_mini.data import TensorData
    from varhyper_mini.hypernets import LinearHypernet
    from varhyper_mini.training import LogUniform, train

    x, y = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(1)), torch.arange(64) % 10
    losses = []
    for amp in (False, True):
        torch.manual_seed(0)
        target = models.cifar_cnn(0.125)
        h = LinearHypernet(target, lam_range=(0.01, 1.0), variational=True, init_log_sigma=-6.0)
        hist = train(h, target, TensorData(x, y, "random"), "variational", lam_prior=LogUniform(0.01, 1.0),
                     epochs=1, batch_size=32, lam_samples=2, progress=False, amp=amp)  # fmt: skip
        losses.append(hist.nll[0])
        assert all(p.dtype == torch.float32 for p in h.parameters())
    assert losses[0] == pytest.approx(losses[1], rel=0.02)
