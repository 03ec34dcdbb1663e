"""Chapter 2's checks of Theorem 1 in ``theory``: loss tables, gradient gaps, eq. (8), the KL term, statement 3."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import varhyper_mini as vh
from varhyper_mini import theory as th


def _wine64(n=30):
    g = torch.Generator().manual_seed(0)
    return vh.TensorData(torch.randn(n, 13, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g))


def _mean(seed=0):
    target = vh.models.wine_logreg()
    g = torch.Generator().manual_seed(seed)
    return target, {n: torch.randn(p.shape, generator=g, dtype=torch.float64) for n, p in target.named_parameters()}


# ---- estimates: same_sigma, loss_table ------------------------------------------------------


def test_same_sigma():
    _, mean = _mean()
    q = th.same_sigma(mean, math.log(0.1))
    assert set(q.log_sigma) == set(mean)
    for n, v in mean.items():
        assert torch.equal(q.mean[n], v)
        assert q.log_sigma[n].dtype == torch.float64
        assert torch.all(q.log_sigma[n] == math.log(0.1))


def test_loss_table():
    target, mean = _mean()
    data = _wine64()
    eps = th.antithetic_noise(2, 42, torch.Generator().manual_seed(0))
    q = th.same_sigma(mean, math.log(0.1))
    table = th.loss_table(target, q, data, (0.1, 1.0, 10.0), 30, 1.0, eps)
    assert list(table.columns) == ["E_q[nll]", "L1", "L2", "L3 (at w = mu)"]
    assert table.index.name == "lambda" and list(table.index) == [0.1, 1.0, 10.0]
    assert table["E_q[nll]"].nunique() == 1
    assert table.loc[1.0, "L1"] == pytest.approx(table.loc[1.0, "L2"], rel=1e-12)  # L1(1) = L2(1)
    assert table["L1"].is_monotonic_increasing and table["L3 (at w = mu)"].is_monotonic_increasing
    l3 = float(th.loss_value("base", target, q, data, 10.0, 30))
    assert table.loc[10.0, "L3 (at w = mu)"] == pytest.approx(l3)
    with pytest.raises(ValueError, match="eps"):
        th.loss_table(target, q, data, (1.0,), 30)
    with pytest.raises(ValueError, match="one model"):
        th.loss_table(target, vh.GaussianParams(mean), data, (1.0,), 30, eps=eps)


# ---- theorem1: theorem1_gaps, theorem1_findings ---------------------------------------------


def test_theorem1_gaps_and_findings():
    target, mean = _mean()
    eps = th.antithetic_noise(2, 42, torch.Generator().manual_seed(1))
    sigmas = np.array([1e-1, 1e-2, 1e-3, 1e-7])
    gaps = th.theorem1_gaps(target, mean, _wine64(), 50.0, 30, sigmas, eps)
    assert list(gaps.columns) == ["prior_var", "loss", "sigma", "scaling", "gap"]
    assert len(gaps) == 2 * 2 * 4 * 2
    assert list(gaps.scaling[:2]) == [th.THEOREM_SCALING, th.NAIVE_SCALING]
    one = gaps[(gaps.prior_var == 0.25) & (gaps.loss == "covariance") & (gaps.sigma == 1e-3)]
    q = th.same_sigma(mean, math.log(1e-3))
    assert one.gap.iloc[0] == th.theorem1_gap("covariance", target, q, _wine64(), 50.0, 30, 0.25, eps)
    found = th.theorem1_findings(gaps)
    assert found["sigma_smallest"] == 1e-7
    assert found["gap_smallest"] < 1e-12 < 0.01 < found["gap_naive"]
    assert found["l1_l2_same"] < 1e-12  # L1 and L2 have the same mu-gradients
    assert found["slope"] == pytest.approx(2.0, abs=0.2)  # O(sigma^2)
    with pytest.raises(ValueError, match="both losses"):
        th.theorem1_findings(gaps[gaps.loss == "variational"])
    with pytest.raises(ValueError, match="two gaps"):
        th.theorem1_findings(gaps[gaps.sigma < 1e-2])


# ---- eq8 -------------------------------------------------------------------------------------


def test_l1_minus_l2_from_losses_matches_the_formula():
    _, mean = _mean()
    q = th.same_sigma(mean, -1.5)
    for lam in (0.3, 4.0):
        assert float(th.l1_minus_l2_from_losses(q, lam, 30, 0.25)) == pytest.approx(
            float(th.l1_minus_l2(q, lam, 30, 0.25)), rel=1e-10
        )
    assert abs(float(th.l1_minus_l2_from_losses(q, 1.0, 30))) < 1e-12


def test_eq8_checks_and_findings():
    like = {"w": torch.zeros(4, 3), "b": torch.zeros(3)}
    checks = th.eq8_checks(like, 30, n_trials=6, generator=torch.Generator().manual_seed(1))
    assert list(checks.columns) == [
        "lambda", "prior_var", "log det A^-1", "formula", "rel_err", "rel_err_python", "rel_err_f32",
        "L1 - L2 (losses)",
    ]  # fmt: skip
    assert checks.prior_var.tolist() == [1.0, 0.25] * 3  # trial t uses prior_vars[t % 2]
    assert len(checks) == 6 and checks["lambda"].between(1e-2, 1e4).all()
    assert (checks.rel_err < 1e-10).all() and (checks.rel_err_python < 1e-10).all()
    assert checks.rel_err_f32.max() > checks.rel_err.max()  # lambda rounded to float32 costs precision
    assert np.allclose(checks["L1 - L2 (losses)"], checks.formula, rtol=1e-10)
    again = th.eq8_checks(like, 30, n_trials=6, generator=torch.Generator().manual_seed(1))
    pd.testing.assert_frame_equal(checks, again)
    found = th.eq8_findings(checks)
    assert found["eq8_n"] == 6 and found["eq8_max_rel"] == checks.rel_err.max()
    assert found["eq8_py_same"] in ("identical to", "not identical to")
    assert th.eq8_findings(checks.assign(rel_err_python=checks.rel_err + 1))["eq8_py_same"] == "not identical to"
    with pytest.raises(ValueError, match="n_trials"):
        th.eq8_checks(like, 30, n_trials=0)
    with pytest.raises(ValueError, match="prior_vars"):
        th.eq8_checks(like, 30, n_trials=2, prior_vars=())
    with pytest.raises(ValueError, match="empty"):
        th.eq8_findings(checks.iloc[:0])


# ---- complexity: kl_vs_lambda, is_monotone, kl_findings -------------------------------------


def test_kl_vs_lambda():
    g = torch.Generator().manual_seed(0)
    train = vh.TensorData(torch.randn(40, 13, generator=g), torch.randint(0, 3, (40,), generator=g))
    test = vh.TensorData(torch.randn(20, 13, generator=g), torch.randint(0, 3, (20,), generator=g))
    table = th.kl_vs_lambda(vh.models.wine_logreg(), train, test, [0.1, 10.0], steps=60, n_pairs=1)
    assert list(table.loss) == ["variational", "variational", "covariance", "covariance"]
    l1 = table[table.loss == "variational"]["KL to N(0, alpha_pr)"].values
    assert l1[0] > l1[1]  # L1: the KL term falls as lambda grows
    assert table["test accuracy"].between(0, 1).all() and (table["mean sigma"] > 0).all()

    class BiasOnly(nn.Module):
        def __init__(self):
            super().__init__()
            self.b = nn.Parameter(torch.zeros(3))

    with pytest.raises(ValueError, match="weight tensors"):
        th.kl_vs_lambda(BiasOnly(), train, test, [1.0])


def test_is_monotone():
    assert th.is_monotone([3.0, 2.0, 2.0, 1.0]) and th.is_monotone(np.array([1, 2, 3]))
    assert not th.is_monotone([1.0, 3.0, 2.0])


def test_kl_findings():
    kl, own = "KL to N(0, alpha_pr)", "KL to N(0, alpha_pr / lambda)"
    table = pd.DataFrame(
        {
            "loss": ["variational"] * 3 + ["covariance"] * 3,
            "lambda": [0.1, 1.0, 10.0] * 2,
            kl: [40.0, 10.0, 1.0, 30.0, 5.0, 20.0],
            own: [0.0] * 3 + [9.0, 5.0, 7.0],
            "mean sigma": [0.1, 0.5, 0.9, 0.2, 0.1, 0.05],
        }
    )
    found = th.kl_findings(table)
    assert found["l1_monotone"] == "decreases monotonically"
    assert (found["l1_kl_first"], found["l1_kl_last"]) == (40.0, 1.0)
    assert (found["l2_kl_min_lam"], found["l2_kl_min"], found["l2_kl_last"]) == (1.0, 5.0, 20.0)
    assert found["l2_own_monotone"] == "is not monotone either"
    assert (found["l1_sigma_last"], found["l2_sigma_last"]) == (0.9, 0.05)
    table.loc[:2, kl] = [1.0, 2.0, 3.0]
    assert th.kl_findings(table)["l1_monotone"] == "increases monotonically"
    with pytest.raises(ValueError, match="both"):
        th.kl_findings(table[table.loss == "covariance"])


# ---- subsample: statement3_table, statement3_findings ---------------------------------------


def test_statement3_table_and_findings():
    g = torch.Generator().manual_seed(3)
    loglik = -3 * torch.rand(400, generator=g, dtype=torch.float64)
    table = th.statement3_table(loglik, 20.0, [10, 100], 2000, g)
    assert list(table.m0) == [10, 100] and list(table["lambda = m/m0"]) == [40.0, 4.0]
    assert table["(1/m) L1"].iloc[0] == pytest.approx(float(th.scaled_l1_objective(loglik, 20.0, 40.0)))
    found = th.statement3_findings(table)
    assert found["max_z"] < 5  # the subsample ELBO is unbiased for (1/m) L1(m / m0)
    assert found["sd_first"] > found["sd_last"]
    assert (found["m0_first"], found["m0_last"]) == (10, 100)
    assert found["sd_ratio"] < 0.1  # the finite-population formula
    whole = th.statement3_table(loglik, 20.0, [400], 3, g)
    assert whole["sd predicted"].iloc[0] == 0.0 and whole["sd of difference"].iloc[0] < 1e-12
    with pytest.raises(ValueError, match="1-d"):
        th.statement3_table(loglik[None], 20.0, [10], 5)
    with pytest.raises(ValueError, match="m0"):
        th.statement3_table(loglik, 20.0, [401], 5)
    with pytest.raises(ValueError, match="empty"):
        th.statement3_findings(table.iloc[:0])


def _fake_theorem1_gaps() -> pd.DataFrame:
    """Gaps ~ sigma^2 with the theorem's scaling (L1 = L2), 0.5 with the naive one, at two prior variances."""
    rows = [
        {"prior_var": pv, "loss": loss, "sigma": s, "scaling": sc, "gap": s**2 if sc == th.THEOREM_SCALING else 0.5}
        for pv in (1.0, 0.25)
        for loss in ("variational", "covariance")
        for s in (1e-1, 1e-2, 1e-3)
        for sc in (th.THEOREM_SCALING, th.NAIVE_SCALING)
    ]
    return pd.DataFrame(rows)


def test_theorem1_findings_on_a_made_table():
    found = th.theorem1_findings(_fake_theorem1_gaps())
    assert found["slope"] == pytest.approx(2.0) and found["l1_l2_same"] == 0.0
    assert found["gap_naive"] == 0.5 and found["sigma_smallest"] == 1e-3


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda g: g[~((g.loss == "covariance") & (g.sigma == 1e-2))], "needs one row per loss"),
        (lambda g: pd.concat([g, g.iloc[:1]]), "needs one row per loss"),
        (lambda g: g.assign(gap=np.where(g.index == 3, np.nan, g.gap)), "finite and >= 0"),
        (lambda g: g.drop(columns="sigma"), "lacks the column"),
        (lambda g: g.iloc[:0], "empty"),
    ],
)
def test_theorem1_findings_refuse_tables_they_cannot_read(edit, match):
    with pytest.raises(ValueError, match=match):
        th.theorem1_findings(edit(_fake_theorem1_gaps()))
