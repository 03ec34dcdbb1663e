import numpy as np
import pytest
import torch

import varhyper_mini as vh
from varhyper_mini import losses


def _params():
    mean = {"w": torch.randn(4, 3), "b": torch.randn(3)}
    ls = {k: -1.0 + 0.2 * torch.randn_like(v) for k, v in mean.items()}
    return vh.GaussianParams(mean, ls)


def test_variational_formula():
    p, nll = _params(), torch.tensor(0.7)
    got = losses.variational(nll, p, 3.0, 50, prior_var=2.0)
    assert torch.allclose(got, nll + 3.0 * p.kl(2.0) / 50)


def test_covariance_formula():
    p, nll = _params(), torch.tensor(0.7)
    got = losses.covariance(nll, p, 3.0, 50, prior_var=2.0)
    assert torch.allclose(got, nll + p.kl(2.0 / 3.0) / 50)


def test_base_formula_includes_biases():
    p, nll = _params(), torch.tensor(0.7)
    sq = (p.mean["w"] ** 2).sum() + (p.mean["b"] ** 2).sum()
    assert torch.allclose(losses.base(nll, p, 3.0, 50), nll + 3.0 * sq / 50)


def test_batched_lambda_averages_over_samples():
    h = vh.LinearHypernet(vh.models.wine_logreg())
    lams = torch.tensor([0.01, 1.0, 50.0])
    batch = h.params_batch(lams)
    nll = torch.tensor([0.1, 0.2, 0.3])
    got = losses.variational(nll, batch, lams, 10)
    want = torch.stack([losses.variational(nll[i], batch[i], float(lams[i]), 10) for i in range(3)]).mean()
    assert torch.allclose(got, want)


def test_variational_kl_weight_is_monotone_in_lambda():
    p, nll = _params(), torch.tensor(0.0)
    vals = [float(losses.variational(nll, p, lam, 1)) for lam in (0.1, 1.0, 10.0)]
    assert vals[0] < vals[1] < vals[2]


# 1e39 and 1e-50 are finite in float64 but inf and 0 in float32; bools are not numbers
@pytest.mark.parametrize("bad", [0.0, -2.0, float("nan"), 1e39, 1e300, 1e-50, True, torch.tensor([1.0, 1e39])])
def test_bad_lambda(bad):
    with pytest.raises(ValueError, match="lambda"):
        losses.variational(torch.tensor(0.0), _params(), bad, 10)


def test_bad_n_train_and_name_and_deterministic():
    with pytest.raises(ValueError, match="n_train"):
        losses.base(torch.tensor(0.0), _params(), 1.0, 0)
    with pytest.raises(ValueError, match="unknown loss"):
        losses.penalty("l4", _params(), 1.0, 10)
    det = vh.GaussianParams({"w": torch.zeros(2)})
    with pytest.raises(ValueError, match="variational"):
        losses.variational(torch.tensor(0.0), det, 1.0, 10)
    assert float(losses.base(torch.tensor(0.0), det, 1.0, 10)) == 0.0


@pytest.mark.parametrize("name", ["variational", "covariance", "base"])
def test_python_float_lambda_is_not_rounded_for_float64_params(name):
    # lambda = 1/3 and prior variance 0.7 are not float32 numbers: float64 parameters must see them exactly.
    mean = {"w": torch.randn(5, 3, dtype=torch.float64)}
    p = vh.GaussianParams(mean, {"w": torch.full((5, 3), -1.3, dtype=torch.float64)})
    lam, pv, n = 1.0 / 3.0, 0.7, 7
    sigma2 = torch.exp(torch.tensor(-2.6, dtype=torch.float64))
    w2 = mean["w"] ** 2

    def kl(v):
        return (0.5 * torch.log(torch.tensor(v, dtype=torch.float64)) + 1.3 + (sigma2 + w2) / (2 * v) - 0.5).sum()

    want = {"variational": lam * kl(pv) / n, "covariance": kl(pv / lam) / n, "base": lam * w2.sum() / n}[name]
    got = losses.penalty(name, p, lam, n, prior_var=pv)
    assert got.dtype == torch.float64
    assert abs(float(got / want) - 1.0) < 1e-13


# -- robustness (issue 19) ------------------------------------------------------------------------
def test_a_penalty_that_overflows_is_an_error_not_inf():
    with pytest.raises(ValueError, match="not finite.*smaller lambda"):
        losses.variational(torch.tensor(1.0), _params(), 3e38, 1)
    assert torch.isfinite(losses.variational(torch.tensor(1.0), _params(), 1e30, 256))


@pytest.mark.parametrize("n_train", [0, -1, 2.5, 10.0, True])
def test_n_train_must_be_a_positive_integer(n_train):
    with pytest.raises(ValueError, match="n_train"):
        losses.penalty("variational", _params(), 1.0, n_train)


def test_numpy_and_0d_tensor_numbers_are_accepted():
    p = _params()
    want = losses.penalty("covariance", p, 2.0, 10, 1.0)
    for lam, n, pv in [(np.float32(2.0), np.int64(10), np.float32(1.0)), (torch.tensor(2.0), torch.tensor(10), 1)]:
        assert torch.allclose(losses.penalty("covariance", p, lam, n, pv), want)
