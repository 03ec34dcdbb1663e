import math

import pytest
import torch

from varhyper_mini import GaussianParams, ParamSpec, models
from varhyper_mini.gaussian import kl_to_prior


def _params(scale=1.0, log_sigma=-1.0):
    mean = {"a": scale * torch.randn(3, 4), "b": scale * torch.randn(4)}
    ls = {k: torch.full_like(v, log_sigma) + 0.1 * torch.randn_like(v) for k, v in mean.items()}
    return GaussianParams(mean, ls)


def test_kl_matches_closed_form_per_entry():
    p = _params()
    prior_var = 2.5
    expected = 0.0
    for k in p.mean:
        mu, s = p.mean[k].double(), torch.exp(p.log_sigma[k].double())
        expected += (0.5 * math.log(prior_var) - torch.log(s) + (s**2 + mu**2) / (2 * prior_var) - 0.5).sum()
    assert torch.allclose(p.kl(prior_var).double(), expected, rtol=1e-5)


def test_kl_matches_torch_distributions():
    p = _params()
    q = torch.distributions.Normal(
        torch.cat([v.flatten() for v in p.mean.values()]),
        torch.cat([torch.exp(v).flatten() for v in p.log_sigma.values()]),
    )
    prior = torch.distributions.Normal(0.0, math.sqrt(0.7))
    assert torch.allclose(p.kl(0.7), torch.distributions.kl_divergence(q, prior).sum(), rtol=1e-5)


def test_kl_matches_monte_carlo():
    torch.manual_seed(1)
    p = _params(scale=0.5, log_sigma=-0.5)
    prior_var = 1.3
    n = 200_000
    total = 0.0
    for k in p.mean:
        mu, s = p.mean[k].flatten(), torch.exp(p.log_sigma[k]).flatten()
        w = mu + s * torch.randn(n, mu.numel())
        log_q = torch.distributions.Normal(mu, s).log_prob(w)
        log_p = torch.distributions.Normal(0.0, math.sqrt(prior_var)).log_prob(w)
        total += (log_q - log_p).mean(0).sum()
    assert abs(float(p.kl(prior_var)) - float(total)) < 0.05


def test_kl_is_zero_when_q_equals_prior():
    prior_var = 0.3
    mean = {"w": torch.zeros(5, 2)}
    ls = {"w": torch.full((5, 2), 0.5 * math.log(prior_var))}
    assert abs(float(GaussianParams(mean, ls).kl(prior_var))) < 1e-6


def test_kl_rejects_deterministic_and_bad_prior():
    det = GaussianParams({"w": torch.zeros(2)})
    with pytest.raises(ValueError, match="variational"):
        det.kl()
    with pytest.raises(ValueError, match="prior_var"):
        _params().kl(-1.0)


def test_sample_is_reparametrised_and_differentiable():
    mean = {"w": torch.zeros(1000, requires_grad=True)}
    ls = {"w": torch.full((1000,), math.log(2.0), requires_grad=True)}
    p = GaussianParams(mean, ls)
    w = p.sample(torch.Generator().manual_seed(0))["w"]
    assert 1.8 < float(w.detach().std()) < 2.2
    w.sum().backward()
    assert mean["w"].grad is not None and ls["w"].grad is not None


def test_sample_is_seeded():
    p = _params()
    a = p.sample(torch.Generator().manual_seed(3))
    b = p.sample(torch.Generator().manual_seed(3))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_numel_and_sigma():
    p = _params()
    assert p.numel() == 16
    assert torch.allclose(p.sigma["a"], torch.exp(p.log_sigma["a"]))


def test_mismatched_log_sigma_is_rejected():
    with pytest.raises(ValueError, match="keys"):
        GaussianParams({"a": torch.zeros(2)}, {"b": torch.zeros(2)})
    with pytest.raises(ValueError, match="shape"):
        GaussianParams({"a": torch.zeros(2)}, {"a": torch.zeros(3)})


def test_param_spec_round_trip():
    m = models.mnist_mlp()
    spec = ParamSpec.from_module(m)
    flat = spec.flatten(dict(m.named_parameters()))
    assert flat.shape == (spec.total,) == (39760,)
    back = spec.unflatten(flat)
    for n, p in m.named_parameters():
        assert torch.equal(back[n], p)


def test_param_spec_names_error():
    spec = ParamSpec.from_module(models.wine_logreg())
    with pytest.raises(ValueError, match="missing"):
        spec.check_names(["fc.weight", "oops"])


def test_kl_to_prior_elementwise_nonnegative():
    mu = torch.randn(100)
    ls = torch.randn(100)
    assert bool((kl_to_prior(mu, ls, 1.0) >= -1e-6).all())


def test_kl_with_python_float_prior_is_float64_exact_and_tiny_priors_are_valid():
    mean = {"w": torch.randn(4, dtype=torch.float64), "b": torch.randn(2, dtype=torch.float64)}
    ls = {k: torch.full_like(v, -0.5) for k, v in mean.items()}
    pv = 0.1  # not a float32 number
    want = sum(kl_to_prior(m, ls[k], torch.tensor(pv, dtype=torch.float64)).sum() for k, m in mean.items())
    flat = (torch.cat([m for m in mean.values()]), torch.cat([v for v in ls.values()]))
    for p in (GaussianParams(mean, ls), GaussianParams(mean, ls, _flat=flat)):  # both code paths
        assert abs(float(p.kl(pv) / want) - 1.0) < 1e-14
    # 1e-50 underflows to zero in float32; as a float64 it is a valid (if extreme) prior variance.
    assert torch.isfinite(GaussianParams(mean, ls).kl(1e-50))


def test_sigma_reused_by_kl_is_never_stale():
    from varhyper_mini import LinearHypernet

    h = LinearHypernet(models.wine_logreg())
    q = h(10.0)
    with torch.no_grad():
        q.sample()  # caches sigma without a graph
    q.kl().backward()  # the KL must still reach log sigma through sigma^2
    fresh = LinearHypernet(models.wine_logreg())
    fresh.load_state_dict(h.state_dict())
    fresh(10.0).kl().backward()
    assert torch.allclose(h.log_sigma_ends.grad, fresh.log_sigma_ends.grad)
    p = GaussianParams.from_flat(ParamSpec(("w",), (torch.Size([3]),)), torch.zeros(3), torch.zeros(3))
    before = p.kl()
    p.log_sigma["w"].fill_(-1.0)  # in place, through the dict's view
    assert not torch.allclose(p.kl(), before)
    assert torch.allclose(p.kl(), kl_to_prior(torch.zeros(3), torch.full((3,), -1.0)).sum())


def test_prior_var_accepts_real_number_types_and_refuses_bools():
    import numpy as np

    p = GaussianParams({"w": torch.zeros(3)}, {"w": torch.zeros(3)})
    want = p.kl(2.0)
    for pv in (np.float32(2.0), np.int64(2), torch.tensor(2.0), 2):
        assert torch.allclose(p.kl(pv), want)
    for bad in (True, np.bool_(True), float("nan"), -1.0, "2"):
        with pytest.raises(ValueError, match="prior_var"):
            p.kl(bad)


def test_to_changes_dtype_and_keeps_values():
    import torch

    from varhyper_mini.gaussian import GaussianParams

    p = GaussianParams({"w": torch.randn(3, 2)}, {"w": torch.full((3, 2), -3.0)})
    q = p.to(dtype=torch.float64)
    assert q.mean["w"].dtype == torch.float64 and q.log_sigma["w"].dtype == torch.float64
    assert torch.equal(q.mean["w"].float(), p.mean["w"]) and p.mean["w"].dtype == torch.float32
    assert p.to("cpu").mean["w"].dtype == torch.float32  # a device alone keeps the dtype
    import pytest

    with pytest.raises(ValueError, match="floating-point dtype"):
        p.to(dtype=torch.int64)
