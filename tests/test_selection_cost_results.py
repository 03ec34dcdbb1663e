"""varhyper_mini.selection.cost_results: what chapter 8 quotes from the cost study's tables (and ``plot_cost``)."""

import math

import pandas as pd
import pytest

from varhyper_mini import selection


def _cost() -> pd.DataFrame:
    """A hypernetwork of 10 CPU seconds; direct models at 4 CPU seconds each in the loop, K = 2 and 4."""
    rows = [
        ("hypernetwork", 0, 12.0, 10.0, 1.0, 1.0, None),
        ("direct-loop", 2, 9.0, 8.0, 0.75, 0.8, None),
        ("direct-batched", 2, 7.2, 5.0, 0.6, 0.5, 0.001),
        ("direct-loop", 4, 18.0, 16.0, 1.5, 1.6, None),
        ("direct-batched", 4, 8.4, 6.0, 0.7, 0.6, 0.002),
    ]
    cols = ["method", "k_lams", "seconds", "cpu_seconds", "ratio_to_hypernetwork", "cpu_ratio_to_hypernetwork",
            "max_accuracy_diff_loop_vs_batched"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def _curves() -> pd.DataFrame:
    """The hypernetwork at three lambdas; direct models (grids K=2 and K=3) with a lower test NLL of 0.05
    and 10 points more weights deletable. Validation NLL ties, so it picks the largest lambda."""
    lams = [1e-3, 1e-1, 10.0]
    base = {"test_ece": 0.02, "val_nll": 0.3, "elbo": -1e4}
    rows = [
        {"model": "hypernetwork", "grid": "all", "lam": lam, "test_accuracy": acc, "val_accuracy": v,
         "test_nll": 0.3, "deletable": d, **base}
        for lam, acc, v, d in zip(lams, [0.90, 0.95, 0.93], [0.91, 0.92, 0.94], [0.4, 0.5, 0.7])
    ]  # fmt: skip
    rows += [
        {"model": "direct", "grid": g, "lam": lam, "test_accuracy": acc, "val_accuracy": acc, "test_nll": 0.35,
         "deletable": d + 0.1, **base}
        for g, lam, acc, d in [("K=2", 1e-3, 0.92, 0.4), ("K=2", 10.0, 0.91, 0.7), ("K=3", 1e-3, 0.92, 0.4),
                               ("K=3", 1e-1, 0.96, 0.5), ("K=3", 10.0, 0.91, 0.7)]
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_accuracy_standard_error():
    assert selection.accuracy_standard_error(0.5, 100) == pytest.approx(0.05)
    assert selection.accuracy_standard_error(1.0, 10) == 0.0
    with pytest.raises(ValueError, match="share"):
        selection.accuracy_standard_error(1.5, 10)
    with pytest.raises(ValueError, match="n_test"):
        selection.accuracy_standard_error(0.5, 0)


def test_cost_findings():
    f = selection.cost_findings(_cost())
    assert f["hyper_cpu"] == 10.0 and f["hyper_wall"] == 12.0
    assert f["loop2_cpu"] == 8.0 and f["loop4_cpu"] == 16.0
    assert f["loop4_ratio"] == 1.6 and f["loop4_wall_ratio"] == 1.5
    assert f["many2_ratio"] == 0.5 and f["many2_wall_ratio"] == 0.6
    assert f["break_even"] == pytest.approx(2.5)  # 10 CPU seconds / 4 per direct model
    assert f["loop_batched_diff"] == pytest.approx(0.002)
    assert all(type(v) is float for k, v in f.items() if k != "batching")
    assert f["batching"] == "costs less CPU time than the loop at every K"
    assert f["wall_over_cpu"] == pytest.approx((12 + 9 + 7.2 + 18 + 8.4) / (10 + 8 + 5 + 16 + 6))
    slow = _cost()
    slow.loc[2, "cpu_seconds"] = 9.0  # K = 2 batched now slower than its loop (8 s)
    assert selection.cost_findings(slow)["batching"] == "costs less CPU time than the loop only at K = 4"
    slow.loc[4, "cpu_seconds"] = 16.0  # K = 4 batched as slow as its loop
    assert selection.cost_findings(slow)["batching"] == "costs no less CPU time than the loop here"
    with pytest.raises(ValueError, match="hypernetwork"):
        selection.cost_findings(_cost().iloc[1:])


def test_gap_findings():
    curves = _curves()
    f = selection.gap_findings(selection.gap_table(curves), curves)
    # accuracy gaps -2, -1 and +2 points at 1e-3, 0.1 and 10
    assert f["gap_mean"] == pytest.approx(-1 / 3) and f["gap_low"] == pytest.approx(-1.5)
    assert f["gap_high"] == pytest.approx(2.0)
    assert (f["gap_min"], f["gap_max"], f["gap_min_lam"]) == pytest.approx((-2.0, 2.0, 1e-3))
    assert f["n_gap"] == 3 and f["n_better"] == 1 and f["nll_better"] == 3
    assert f["del_direct_more"] == pytest.approx(10.0) and f["nll_lower"] == pytest.approx(0.05)
    assert f["ece_gap_mean"] == 0.0
    assert (f["direct_del_min"], f["direct_del_max"]) == pytest.approx((50.0, 80.0))
    assert (f["hyper_del_min"], f["hyper_del_max"]) == pytest.approx((40.0, 70.0))
    assert f["gap_low"] == selection.gap_findings(selection.gap_table(curves), curves, split_lam=0.1)["gap_low"]
    with pytest.raises(ValueError, match="empty"):
        selection.gap_findings(selection.gap_table(curves).iloc[:0], curves)


def test_classical_findings():
    curves = _curves()
    table, gap = selection.selection_table(curves), selection.gap_table(curves)
    # the classical recipe picks K=3's 0.96 at 0.1; validation NLL ties and picks 10.0 (test 0.93)
    f = selection.classical_findings(table, gap, test_sd=5.0, n_test=100)
    assert f["classical_diff"] == pytest.approx(3.0) and f["classical_verdict"] == "within"
    assert f["gap_verdict"] == "consistent with"  # -1/3 point against a standard error of 2.2 points
    f = selection.classical_findings(table, gap, test_sd=1.0, n_test=10**6)
    assert f["classical_verdict"] == "larger than" and f["gap_verdict"] == "below"
    with pytest.raises(ValueError, match="direct models"):
        selection.classical_findings(table[table.approach == "hypernetwork"], gap, 1.0, 100)


def test_plot_cost_draws_one_bar_per_row():
    import matplotlib

    matplotlib.use("Agg")
    fig = selection.plot_cost(_cost())
    ax = fig.axes[0]
    assert len(ax.patches) == 5
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["hypernetwork", "direct-loop, K = 2"]
    assert [p.get_width() for p in ax.patches] == [10.0, 8.0, 5.0, 16.0, 6.0]
    assert not math.isclose(*[p.get_facecolor()[0] for p in ax.patches[:2]])  # the hypernetwork stands out


def _edit(change):
    cost = _cost()
    change(cost)
    return cost


@pytest.mark.parametrize(
    ("cost", "match"),
    [
        (_cost().iloc[:0], "cost is empty"),
        (_cost().drop(columns="cpu_seconds"), "lacks the column"),
        (_cost()[_cost().method != "direct-batched"], "each K needs both"),
        (pd.concat([_cost(), _cost().iloc[1:2]]), "more than one row"),
        (_edit(lambda c: c.__setitem__("cpu_seconds", [10.0, 0.0, 5.0, 16.0, 6.0])), "positive and finite"),
        (_edit(lambda c: c.__setitem__("seconds", [12.0, 9.0, float("nan"), 18.0, 8.4])), "positive and finite"),
        (
            _edit(lambda c: c.__setitem__("method", ["hypernetwork", "loop", "direct-batched"] + list(c.method[3:]))),
            "unknown method",
        ),
        (_edit(lambda c: c.loc.__setitem__((2, "max_accuracy_diff_loop_vs_batched"), float("nan"))), "NaN"),
    ],
)
def test_cost_findings_refuse_tables_they_cannot_read(cost, match):
    with pytest.raises(ValueError, match=match):
        selection.cost_findings(cost)
