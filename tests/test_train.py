import pytest
import torch

import varhyper_mini as vh
from varhyper_mini import models


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

    from varhyper_mini.train import _Step

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
