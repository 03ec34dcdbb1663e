import math

import pytest
import torch

from varhyper_mini import evidence as ev


def _model(prior_var=0.5, n=60, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    # Correlated columns, so that a mean-field q cannot match the posterior.
    x = z @ (torch.eye(d, dtype=torch.float64) + 0.8 * torch.ones(d, d, dtype=torch.float64)) / 2
    w = torch.randn(d, generator=g, dtype=torch.float64)
    y = x @ w + 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
    return ev.BayesianLinearRegression(x, y, noise_var=0.25, prior_var=prior_var)


def test_log_evidence_matches_multivariate_normal_and_bayes_rule():
    m = _model()
    cov = m.prior_var * m.x @ m.x.T + m.noise_var * torch.eye(m.n, dtype=torch.float64)
    ref = torch.distributions.MultivariateNormal(torch.zeros(m.n, dtype=torch.float64), cov).log_prob(m.y)
    assert float(m.log_evidence()) == pytest.approx(float(ref), rel=1e-10)
    assert float(m.log_evidence_via_posterior()) == pytest.approx(float(ref), rel=1e-10)


def test_kl_gaussian_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    q, p = ev.random_gaussian(5, g), ev.random_gaussian(5, g)
    mq = torch.distributions.MultivariateNormal(q.mean, q.cov)
    mp = torch.distributions.MultivariateNormal(p.mean, p.cov)
    assert float(ev.kl_gaussian(q, p)) == pytest.approx(float(torch.distributions.kl_divergence(mq, mp)), rel=1e-9)
    assert abs(float(ev.kl_gaussian(q, q))) < 1e-10


def test_elbo_never_exceeds_evidence_for_random_q():
    m = _model()
    g = torch.Generator().manual_seed(2)
    log_ev = float(m.log_evidence())
    post = m.posterior()
    for _ in range(50):
        q = ev.random_gaussian(m.dim, g)
        gap = log_ev - float(ev.elbo(q, m))
        assert gap > 0
        # The gap is exactly KL(q || posterior).
        assert gap == pytest.approx(float(ev.kl_gaussian(q, post)), rel=1e-8)


def test_posterior_as_q_attains_the_evidence():
    m = _model()
    assert float(ev.elbo(m.posterior(), m)) == pytest.approx(float(m.log_evidence()), abs=1e-9)


def test_full_cov_optimum_reaches_the_evidence():
    m = _model()
    fit = ev.fit_full_cov(m, steps=500, lr=0.05)
    gap = float(m.log_evidence() - ev.elbo(fit.q, m))
    assert 0 <= gap < 1e-4
    assert fit.elbo_trace.shape == (500,)
    assert bool(torch.all(fit.elbo_trace <= m.log_evidence() + 1e-9))


def test_mean_field_gap_equals_kl_to_posterior():
    m = _model()
    fit = ev.fit_mean_field(m, steps=500, lr=0.05)
    gap = float(m.log_evidence() - ev.elbo(fit.q, m))
    kl = float(ev.kl_gaussian(fit.q, m.posterior()))
    assert gap > 0.05  # correlated features: a diagonal q cannot reach the evidence
    assert gap == pytest.approx(kl, rel=1e-6)
    best = ev.optimal_mean_field(m)
    assert torch.allclose(fit.q.mean, best.mean, atol=1e-4)
    assert torch.allclose(fit.q.cov, best.cov, rtol=1e-3, atol=1e-8)
    assert float(ev.elbo(best, m)) >= float(ev.elbo(fit.q, m)) - 1e-9


def test_batched_prior_vars_match_one_at_a_time():
    pvs = [0.01, 0.5, 20.0]
    mb = _model().with_prior_var(torch.tensor(pvs, dtype=torch.float64))
    assert mb.batch_shape == (3,)
    evs = mb.log_evidence()
    post = mb.posterior()
    for i, pv in enumerate(pvs):
        mi = _model(prior_var=pv)
        assert float(evs[i]) == pytest.approx(float(mi.log_evidence()), rel=1e-10)
        assert torch.allclose(post[i].mean, mi.posterior().mean)
        assert float(ev.elbo(post[i], mi)) == pytest.approx(float(mi.log_evidence()), abs=1e-8)


def test_sweep_prior_var_columns_and_bounds():
    df = ev.sweep_prior_var(_model(), [0.05, 1.0, 10.0], steps=500)
    assert list(df.prior_var) == [0.05, 1.0, 10.0]
    assert (df.elbo_full <= df.log_evidence + 1e-9).all()
    assert (df.elbo_mean_field <= df.elbo_mean_field_exact + 1e-9).all()
    assert (df.log_evidence - df.elbo_full).abs().max() < 1e-3
    assert (df.gap_mean_field > 0).all()


def test_prior_var_is_a_variance():
    m = _model(prior_var=4.0)
    assert torch.allclose(m.prior().cov, 4.0 * torch.eye(m.dim, dtype=torch.float64))
    # With a huge prior variance the posterior mean tends to least squares.
    wide = _model(prior_var=1e8)
    ls = torch.linalg.lstsq(wide.x, wide.y.unsqueeze(-1)).solution.squeeze(-1)
    assert torch.allclose(wide.posterior().mean, ls, atol=1e-6)
    assert math.isclose(float(m.prior_var), 4.0)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_variances_raise(bad):
    x, y = torch.zeros(3, 2, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="prior_var"):
        ev.BayesianLinearRegression(x, y, 1.0, bad)
    with pytest.raises(ValueError, match="noise_var"):
        ev.BayesianLinearRegression(x, y, bad, 1.0)


def test_bad_shapes_and_steps_raise():
    with pytest.raises(ValueError, match="shape"):
        ev.BayesianLinearRegression(torch.zeros(3, 2), torch.zeros(4), 1.0, 1.0)
    with pytest.raises(ValueError, match="shape"):
        ev.FullGaussian(torch.zeros(3), torch.eye(2))
    with pytest.raises(ValueError, match="steps"):
        ev.fit_full_cov(_model(), steps=0)
    with pytest.raises(ValueError, match="dimension"):
        ev.elbo(ev.random_gaussian(2), _model())


def test_isotropic_kl_matches_general_kl():
    m = _model(prior_var=torch.tensor([0.3, 2.0], dtype=torch.float64))
    q = ev.random_gaussian(m.dim, torch.Generator().manual_seed(5))
    assert torch.allclose(m.kl_to_prior(q), ev.kl_gaussian(q, m.prior()), rtol=1e-10)
