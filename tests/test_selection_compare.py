"""varhyper_mini.selection.compare: choosing lambda over several seeds, judged with standard errors."""

import math

import numpy as np
import pandas as pd
import pytest

from varhyper_mini import selection


# -- choosing lambda over several seeds -------------------------------------------------------------
def _replicates(regrets_acc: list[float], regrets_nll: list[float]) -> pd.DataFrame:
    """Three lambdas per seed: validation accuracy picks 1e-2, validation NLL picks 1.0, and the
    test optimum is 1e2 with accuracy 0.95; the two picks lose the given regrets against it."""
    rows = []
    for seed, (ra, rn) in enumerate(zip(regrets_acc, regrets_nll)):
        for lam, va, vn, test in [(1e-2, 0.9, 0.40, 0.95 - ra), (1.0, 0.8, 0.30, 0.95 - rn), (1e2, 0.7, 0.50, 0.95)]:
            rows.append({"seed": seed, "lam": lam, "val_accuracy": va, "val_nll": vn, "test_accuracy": test,
                         "test_nll": 1 - test})  # fmt: skip
    return pd.DataFrame(rows)


def test_compare_criteria_judges_each_seed_against_its_own_optimum():
    from scipy.stats import t as student_t

    comp = selection.compare_criteria(_replicates([0.01, 0.02, 0.03], [0.0, 0.01, 0.02]))
    assert set(comp.picks[comp.picks.criterion == "accuracy"].lam) == {1e-2}
    assert set(comp.picks[comp.picks.criterion == "nll"].lam) == {1.0}
    s = comp.summary.set_index("criterion")
    assert s.loc["accuracy"].regret == pytest.approx(0.02)
    assert s.loc["accuracy"].se == pytest.approx(0.01 / math.sqrt(3))
    half = student_t.ppf(0.975, 2) * 0.01 / math.sqrt(3)
    assert (s.loc["accuracy"].ci_low, s.loc["accuracy"].ci_high) == pytest.approx((0.02 - half, 0.02 + half))
    # Paired over seeds: validation NLL is better by 0.01 on every seed, so the difference is certain.
    d = comp.differences.iloc[0]
    assert (d.a, d.b) == ("accuracy", "nll")
    assert d.difference == pytest.approx(0.01) and d.se == pytest.approx(0.0, abs=1e-12)
    assert not d.within_noise


def test_compare_criteria_calls_a_difference_inside_its_interval_noise():
    comp = selection.compare_criteria(_replicates([0.01, 0.0, 0.02], [0.0, 0.02, 0.01]))
    d = comp.differences.iloc[0]
    assert d.difference == pytest.approx(0.0)
    assert d.ci_low < 0 < d.ci_high and bool(d.within_noise)
    # One seed: no standard error, so nothing can be ranked.
    one = selection.compare_criteria(_replicates([0.05], [0.0]))
    assert math.isnan(one.summary.se.iloc[0]) and bool(one.differences.within_noise.iloc[0])


def test_compare_criteria_judges_by_test_nll_the_other_way_round():
    comp = selection.compare_criteria(_replicates([0.01, 0.02], [0.0, 0.01]), judge="test_nll")
    s = comp.summary.set_index("criterion")
    # test_nll = 1 - accuracy, so the regrets in NLL equal those in accuracy, still >= 0.
    assert s.loc["accuracy"].regret == pytest.approx(0.015)
    assert (comp.picks.regret >= 0).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"judge": "val_nll"}, "unknown judge"),
        ({"criteria": ("elbo",)}, "criteria"),
        ({"criteria": ()}, "criteria"),
        ({"level": 1.5}, "level"),
    ],
)
def test_compare_criteria_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        selection.compare_criteria(_replicates([0.01], [0.0]), **kwargs)
    with pytest.raises(ValueError, match="columns"):
        selection.compare_criteria(_replicates([0.01], [0.0]).drop(columns="val_nll"))


def test_replicate_curves_trains_one_hypernetwork_per_seed(data_root):
    import matplotlib

    matplotlib.use("Agg")
    cfg = selection.CostConfig(train_subset=300, n_val=100, test_subset=200, epochs=1, ks=(2,))
    curves = selection.replicate_curves(cfg, [0, 1], lams=[1e-3, 1.0, 1e2], data_root=data_root)
    assert len(curves) == 6 and sorted(set(curves.seed)) == [0, 1]
    assert curves[["val_accuracy", "val_nll", "test_accuracy", "test_nll"]].notna().all().all()
    # Different seeds are different replicates (data split and initial weights).
    a, b = (curves[curves.seed == s].val_nll.to_numpy() for s in (0, 1))
    assert not np.allclose(a, b)
    fig = selection.plot_criteria(curves, selection.compare_criteria(curves))
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="seeds"):
        selection.replicate_curves(cfg, [0, 0], data_root=data_root)


# -- what the chapter quotes --------------------------------------------------------------------------
def test_criteria_findings_in_points_and_nats():
    reps = _replicates([0.01, 0.02, 0.03], [0.0, 0.01, 0.02])
    f = selection.criteria_findings(
        selection.compare_criteria(reps), selection.compare_criteria(reps, judge="test_nll")
    )
    assert f["rep_accuracy_regret"] == pytest.approx(2.0) and f["rep_nll_regret"] == pytest.approx(1.0)
    assert f["rep_accuracy_se"] == pytest.approx(100 * 0.01 / math.sqrt(3))
    assert f["rep_accuracy_lam"] == pytest.approx(1e-2) and f["rep_nll_lam"] == pytest.approx(1.0)
    assert f["diff_acc_difference"] == pytest.approx(1.0)  # points of accuracy
    assert f["diff_nll_difference"] == pytest.approx(0.01)  # nats: test NLL is 1 - accuracy here
    assert f["diff_acc_verdict"].endswith("validation NLL picks the better λ on these replicates")
    assert f["diff_acc_z"] > 100  # a certain difference (its standard error is zero or rounding)
    assert f["rep_test_sd"] == pytest.approx(1.0)  # NLL's picks: test accuracies 0.95, 0.94, 0.93


def test_criteria_findings_within_noise():
    reps = _replicates([0.01, 0.03, 0.02], [0.02, 0.01, 0.03])  # differences -1, +2, -1 points
    comp = selection.compare_criteria(reps)
    f = selection.criteria_findings(comp, comp)
    assert f["diff_acc_difference"] == pytest.approx(0.0, abs=1e-9) and f["diff_acc_z"] == pytest.approx(0, abs=1e-6)
    assert f["diff_acc_verdict"].startswith("within noise")
    assert f["diff_acc_ci_low"] < 0 < f["diff_acc_ci_high"]


def test_difference_verdict_names_the_better_criterion():
    better_acc = pd.Series({"difference": -0.02, "within_noise": False})
    assert "so validation accuracy picks" in selection.difference_verdict(better_acc)
    assert "so validation NLL picks" in selection.difference_verdict(better_acc.replace(-0.02, 0.02))
