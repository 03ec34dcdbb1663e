"""Chapter 1's checks of the ELBO (``evidence.checks``) and chapter 2's tempered likelihood (``evidence.tempering``)."""

import math

import pandas as pd
import pytest
import torch

from varhyper_mini import evidence as ev


def _model(prior_var=0.5, n=60, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    # Correlated columns, so that a mean-field q cannot match the posterior.
    x = z @ (torch.eye(d, dtype=torch.float64) + 0.8 * torch.ones(d, d, dtype=torch.float64)) / 2
    y = x @ torch.randn(d, generator=g, dtype=torch.float64) + 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
    return ev.BayesianLinearRegression(x, y, noise_var=0.25, prior_var=prior_var)


def test_bound_checks_obey_the_bound_and_the_identity():
    checks = ev.bound_checks(_model(), 20, torch.Generator().manual_seed(0))
    assert list(checks.columns) == ["kind", "gap", "kl", "rel_diff"]
    assert checks.kind.value_counts().to_dict() == {"random": 10, "near the posterior": 10}
    assert list(checks.kind[:2]) == ["random", "near the posterior"]
    assert (checks.gap > -1e-9).all()
    random = checks[checks.kind == "random"]
    assert (random.rel_diff < 1e-8).all()
    # Near the posterior the gap is small, far from it large.
    assert checks[checks.kind == "near the posterior"].gap.min() < 1e-3 < random.gap.min()
    again = ev.bound_checks(_model(), 20, torch.Generator().manual_seed(0))
    pd.testing.assert_frame_equal(checks, again)


def test_bound_checks_reject_a_batch_and_bad_counts():
    with pytest.raises(ValueError, match="one prior variance"):
        ev.bound_checks(_model(prior_var=torch.tensor([0.5, 1.0], dtype=torch.float64)), 4)
    with pytest.raises(ValueError, match="n_random"):
        ev.bound_checks(_model(), 0)


def test_bound_findings():
    checks = pd.DataFrame(
        {"kind": ["random", "near the posterior", "random"], "gap": [0.5, -2e-12, 3.0], "rel_diff": [1e-9, 0.1, 4e-9]}
    )
    found = ev.bound_findings(checks)
    assert found == {
        "n_random": 3,
        "min_gap": -2e-12,
        "n_positive": 2,
        "bound_verdict": "the others are within 2.0e-12 of zero, rounding error",
        "max_rel_identity": 4e-9,
    }
    assert ev.bound_findings(checks[checks.gap > 0])["bound_verdict"] == "no ELBO exceeded the log evidence"
    with pytest.raises(ValueError, match="empty"):
        ev.bound_findings(checks.iloc[:0])


def test_bound_findings_tells_a_violation_from_rounding():
    checks = pd.DataFrame({"kind": ["random", "random"], "gap": [-5.0, 1.0], "rel_diff": [1e-9, 1e-9]})
    verdict = ev.bound_findings(checks)["bound_verdict"]
    assert "the bound fails" in verdict and "rounding error" not in verdict and "5.0e+00" in verdict
    # The tolerance scales with the log evidence: -1e-8 is rounding next to |log p(D)| = 1e3 ...
    small = checks.assign(gap=[-1e-8, 1.0])
    assert "rounding error" in ev.bound_findings(small, log_evidence=-1e3)["bound_verdict"]
    # ... but not next to numbers of size 1.
    assert "the bound fails" in ev.bound_findings(small)["bound_verdict"]
    with pytest.raises(ValueError, match="log_evidence"):
        ev.bound_findings(small, log_evidence=float("nan"))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"gap": [float("nan"), 1.0]}, "gap holds NaN"),
        ({"rel_diff": [1e-9, float("inf")]}, "rel_diff holds NaN"),
        ({"kind": ["near the posterior"] * 2}, "no row of kind 'random'"),
    ],
)
def test_bound_findings_refuses_nan_and_missing_rows(change, match):
    checks = pd.DataFrame({"kind": ["random", "random"], "gap": [0.5, 1.0], "rel_diff": [1e-9, 1e-9]})
    with pytest.raises(ValueError, match=match):
        ev.bound_findings(checks.assign(**change))
    with pytest.raises(ValueError, match="lacks the column"):
        ev.bound_findings(checks.drop(columns="gap"))


def test_compare_fits_and_fit_findings():
    m = _model()
    full, mf = ev.fit_full_cov(m, steps=400), ev.fit_mean_field(m, steps=400)
    table = ev.compare_fits(m, full, mf)
    assert tuple(table.index) == ev.FIT_ROWS
    assert (table["log evidence"] == float(m.log_evidence())).all()
    found = ev.fit_findings(table, full, mf)
    assert set(found) == {"gap_full", "gap_mf", "trace_excess", "kl_mf", "rel_mf", "mf_vs_exact"}
    assert all(type(v) is float for v in found.values())
    assert found["gap_full"] < 1e-3 < 0.05 < found["gap_mf"]  # the posterior is in the full family only
    assert found["gap_mf"] == pytest.approx(found["kl_mf"], rel=1e-6)
    assert found["rel_mf"] < 1e-6
    assert 0.0 <= found["trace_excess"] < 1e-9
    assert found["mf_vs_exact"] > -1e-9  # the closed-form optimum is at least as good as the fit
    with pytest.raises(KeyError):
        ev.fit_findings(table.drop(ev.FIT_ROWS[2]), full, mf)


def test_compare_fits_gives_nan_for_a_kl_at_rounding_level():
    m = _model()
    post = m.posterior()  # q is the posterior: KL 0, the gap rounding error
    exact = ev.FitResult(post, elbo_trace=ev.elbo(post, m).reshape(1))
    mf = ev.fit_mean_field(m, steps=50)
    table = ev.compare_fits(m, exact, mf)
    rel = table["|gap - KL| / KL"]
    assert table.loc[ev.FIT_ROWS[0], "KL(q || posterior)"] <= ev.BOUND_REL_TOL * max(1.0, abs(float(m.log_evidence())))
    assert math.isnan(rel[ev.FIT_ROWS[0]])
    assert math.isfinite(rel[ev.FIT_ROWS[1]]) and math.isfinite(rel[ev.FIT_ROWS[2]])
    assert math.isfinite(ev.fit_findings(table, exact, mf)["rel_mf"])


def test_scan_findings():
    scan = pd.DataFrame(
        {
            "prior_var": [0.1, 1.0, 10.0],
            "log_evidence": [-5.0, -3.0, -4.0],
            "elbo_full": [-5.0, -3.0 - 1e-7, -4.0],
            "elbo_mean_field": [-6.0, -5.0, -4.5],
            "gap_mean_field": [1.0, 2.0, 0.5],
        }
    )
    found = ev.scan_findings(scan, log_evidence_at_one=-3.5)
    assert found["best_alpha"] == 1.0 and found["best_alpha_mf"] == 10.0
    assert found["mf_moved"] == "1.00 decades away from the evidence's choice"
    assert found["scan_full_gap"] == pytest.approx(1e-7)
    assert found["gain_vs_one"] == 0.5
    assert (found["gap_small"], found["gap_large"]) == (1.0, 0.5)
    scan["elbo_mean_field"] = [-6.0, -4.0, -4.5]
    assert ev.scan_findings(scan, -3.0)["mf_moved"] == "the same grid point as the evidence"
    with pytest.raises(ValueError, match="empty"):
        ev.scan_findings(scan.iloc[:0], -3.0)


def test_tempering_checks_both_readings_hold():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(80, 3, generator=g, dtype=torch.float64)
    y = x @ torch.randn(3, generator=g, dtype=torch.float64) + 0.5 * torch.randn(80, generator=g, dtype=torch.float64)
    qs = [ev.random_gaussian(3, g) for _ in range(5)]
    temper = ev.tempering_checks(x, y, 0.25, 1.0, (0.01, 1.0, 10.0), qs)
    assert list(temper.index) == [0.01, 1.0, 10.0]
    assert (temper.iloc[:, 0] < 1e-8).all()  # (N / lambda) L1 - (-ELBO of the tempered model) is a constant
    assert (temper.iloc[:, 1] < 1e-10).all() and (temper.iloc[:, 2] < 1e-10).all()
    sd = temper["posterior sd / sd at lambda = 1"]
    assert sd[1.0] == pytest.approx(1.0)
    assert sd[0.01] == pytest.approx(math.sqrt(0.01), rel=0.1)  # data-dominated: sd scales as sqrt(lambda)
    assert sd[0.01] < 1.0 < sd[10.0]


def test_tempering_checks_reject_bad_input():
    x, y = torch.randn(10, 2, dtype=torch.float64), torch.randn(10, dtype=torch.float64)
    with pytest.raises(ValueError, match="at least one"):
        ev.tempering_checks(x, y, 1.0, 1.0, (1.0,), [])
    with pytest.raises(ValueError, match="positive"):
        ev.tempering_checks(x, y, 1.0, 1.0, (0.0,), [ev.random_gaussian(2)])
