import math

import pytest
import torch

import varhyper_mini as vh


def _g(mu, sigma):
    return vh.GaussianParams({"w": torch.tensor(mu)}, {"w": torch.log(torch.tensor(sigma))})


def test_sym_kl_closed_form_1d():
    p, q = _g([0.5], [1.0]), _g([-0.5], [2.0])
    kl_pq = math.log(2.0 / 1.0) + (1.0 + 1.0) / (2 * 4.0) - 0.5
    kl_qp = math.log(1.0 / 2.0) + (4.0 + 1.0) / (2 * 1.0) - 0.5
    assert float(vh.theory.sym_kl(p, q)) == pytest.approx(kl_pq + kl_qp, rel=1e-5)
    assert float(vh.theory.sym_kl(p, q)) == pytest.approx(float(vh.theory.sym_kl(q, p)))


def test_sym_kl_zero_for_equal():
    p = _g([0.1, 2.0], [0.3, 0.5])
    assert abs(float(vh.theory.sym_kl(p, p))) < 1e-6


def test_sym_kl_rejects_deterministic():
    with pytest.raises(ValueError, match="deterministic"):
        vh.theory.sym_kl(_g([0.0], [1.0]), vh.GaussianParams({"w": torch.zeros(1)}))


# ---- Theorem 1 and eq. (8) ------------------------------------------------------------------


def _wine64(n=40):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 13, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (n,), generator=g)
    return vh.TensorData(x, y)


def _q(log_sigma, seed=0):
    target = vh.models.wine_logreg()
    g = torch.Generator().manual_seed(seed)
    mean = {n: torch.randn(p.shape, generator=g, dtype=torch.float64) for n, p in target.named_parameters()}
    ls = {n: torch.full_like(v, log_sigma) for n, v in mean.items()}
    return target, vh.GaussianParams(mean, ls)


@pytest.mark.parametrize("loss", ["variational", "covariance"])
@pytest.mark.parametrize("prior_var", [1.0, 0.25])
def test_theorem1_gradient_gap_vanishes_with_sigma(loss, prior_var):
    data = _wine64()
    eps = vh.theory.antithetic_noise(4, 42, torch.Generator().manual_seed(1))
    gaps = []
    for s in (1e-1, 1e-3, 1e-7):
        target, q = _q(math.log(s))
        gaps.append(vh.theory.theorem1_gap(loss, target, q, data, 50.0, 40, prior_var, eps))
    assert gaps[0] > 1e-5  # a large sigma really does change the gradient
    assert gaps[1] < gaps[0] * 1e-2  # O(sigma^2): two decades of sigma give four of the gap
    assert gaps[2] < 1e-12


def test_theorem1_needs_the_factor_two_alpha():
    data = _wine64()
    eps = vh.theory.antithetic_noise(4, 42, torch.Generator().manual_seed(1))
    target, q = _q(math.log(1e-7))
    naive = vh.theory.theorem1_gap("variational", target, q, data, 50.0, 40, 1.0, eps, base_lam=50.0)
    assert naive > 0.01


def test_mu_gradients_of_l1_and_l2_are_identical():
    data = _wine64()
    eps = vh.theory.antithetic_noise(4, 42, torch.Generator().manual_seed(1))
    target, q = _q(-1.0)
    g1 = vh.theory.mu_gradient("variational", target, q, data, 7.0, 40, 0.5, eps)
    g2 = vh.theory.mu_gradient("covariance", target, q, data, 7.0, 40, 0.5, eps)
    assert torch.allclose(g1, g2, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("lam", [0.01, 0.37, 1.0, 25.0, 1e4])
@pytest.mark.parametrize("prior_var", [1.0, 0.25, 0.3])
def test_l1_minus_l2_identity(lam, prior_var):
    g = torch.Generator().manual_seed(2)
    mean = {
        "w": torch.randn(4, 3, generator=g, dtype=torch.float64),
        "b": torch.randn(3, generator=g, dtype=torch.float64),
    }
    ls = {k: -3 + 2 * torch.rand(v.shape, generator=g, dtype=torch.float64) for k, v in mean.items()}
    q = vh.GaussianParams(mean, ls)
    nll = torch.tensor(0.8, dtype=torch.float64)
    lam_t = torch.tensor(lam, dtype=torch.float64)
    direct = vh.losses.variational(nll, q, lam_t, 30, prior_var) - vh.losses.covariance(nll, q, lam_t, 30, prior_var)
    formula = vh.theory.l1_minus_l2(q, lam, 30, prior_var)
    if lam == 1.0:
        # L1(1) and L2(1) are the same loss: the difference vanishes (up to rounding of the loss).
        assert float(formula) == 0.0
        assert abs(float(direct)) <= 1e-6 * float(vh.losses.variational(nll, q, lam_t, 30, prior_var))
    else:
        assert float(formula) == pytest.approx(float(direct), rel=1e-6)
    if prior_var in (1.0, 0.25):
        # Exactly representable in float32 (the losses pass prior_var through a float32 tensor):
        # then the identity holds to float64 rounding.
        assert float(formula) == pytest.approx(float(direct), rel=1e-12, abs=1e-13)


def test_l1_minus_l2_does_not_depend_on_the_means():
    _, q1 = _q(-1.0, seed=0)
    _, q2 = _q(-1.0, seed=1)
    assert float(vh.theory.l1_minus_l2(q1, 5.0, 10)) == pytest.approx(float(vh.theory.l1_minus_l2(q2, 5.0, 10)))


def test_log_det_cov():
    _, q = _q(-0.5)
    assert float(vh.theory.log_det_cov(q)) == pytest.approx(42 * 2 * -0.5)


def test_antithetic_noise_pairs():
    eps = vh.theory.antithetic_noise(3, 5)
    assert eps.shape == (6, 5)
    assert torch.allclose(eps[:3], -eps[3:])
    with pytest.raises(ValueError, match="n_pairs"):
        vh.theory.antithetic_noise(0, 5)


def test_fit_at_lams_kl_is_monotone_for_l1():
    g = torch.Generator().manual_seed(0)
    data = vh.TensorData(torch.randn(60, 13, generator=g), torch.randint(0, 3, (60,), generator=g))
    lams = [0.1, 1.0, 10.0, 100.0]
    fit = vh.theory.fit_at_lams(vh.models.wine_logreg(), data, "variational", lams, steps=200, n_pairs=2)
    assert fit.params.batch_shape == (4,)
    kls = [float(fit.params[i].kl(1.0)) for i in range(4)]
    assert all(a > b for a, b in zip(kls, kls[1:]))
    # The optimisation made progress on every model.
    assert bool(torch.all(fit.trace[-1] < fit.trace[0]))


def test_fit_at_lams_rejects_bad_input():
    data = _wine64()
    with pytest.raises(ValueError, match="lams"):
        vh.theory.fit_at_lams(vh.models.wine_logreg(), data, "variational", [])
    with pytest.raises(ValueError, match="unknown loss"):
        vh.theory.fit_at_lams(vh.models.wine_logreg(), data, "l4", [1.0])
    with pytest.raises(ValueError, match="positive"):
        vh.theory.fit_at_lams(vh.models.wine_logreg(), data, "variational", [0.0])


# ---- Theorem 1, statement 3 -------------------------------------------------------------------


def test_subsample_elbo_mean_matches_scaled_l1():
    g = torch.Generator().manual_seed(3)
    loglik = -torch.rand(500, generator=g, dtype=torch.float64) * 3
    kl = 40.0
    for m0 in (10, 100):
        full = float(vh.theory.scaled_l1_objective(loglik, kl, lam=500 / m0))
        subs = vh.theory.subsample_elbos(loglik, kl, m0, 4000, g)
        se = float(subs.std()) / math.sqrt(len(subs))
        assert abs(float(subs.mean()) - full) < 5 * se
        predicted = float(loglik.std()) * math.sqrt((1 - m0 / 500) / m0)
        assert float(subs.std()) == pytest.approx(predicted, rel=0.1)
    # The whole sample is the whole sample: no spread, exact equality.
    whole = vh.theory.subsample_elbos(loglik, kl, 500, 3, g)
    assert torch.allclose(whole, vh.theory.scaled_l1_objective(loglik, kl, 1.0).expand(3))


def test_subsample_elbos_rejects_bad_sizes():
    with pytest.raises(ValueError, match="m0"):
        vh.theory.subsample_elbos(torch.zeros(5), 1.0, 6, 2)
    with pytest.raises(ValueError, match="n_repeats"):
        vh.theory.subsample_elbos(torch.zeros(5), 1.0, 2, 0)


def test_expected_loglik_of_a_point_mass_is_the_log_softmax():
    target = vh.models.wine_logreg()
    q = vh.GaussianParams.from_module(target, log_sigma=-30.0)
    data = _wine64(10)
    data = vh.TensorData(data.x.float(), data.y)
    ll = vh.theory.expected_loglik(target, q, data, n_samples=2)
    ref = torch.log_softmax(target(data.x), -1).gather(1, data.y[:, None]).squeeze(1)
    assert torch.allclose(ll, ref.detach(), atol=1e-5)
