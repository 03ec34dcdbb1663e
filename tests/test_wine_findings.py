"""The numbers and phrases the Wine chapter quotes (``experiments.wine.findings`` and ``summary_table``).

The tables are made by hand, so that every answer is known: D_KL falls by a factor of ten per
step of lambda, the linear form is ten times further than N = 3 and a hundred times further than
N = 5, and fine-tuning lowers D_KL for N = 1 and N = 5 but raises it for N = 3.
"""

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from varhyper_mini.experiments import wine

LAMS = (1e2, 1e4, 1e6)
# log10 D_KL at the first lambda, as trained and after fine-tuning, per model.
LOGD = {("linear", 1): (1, 0), ("piecewise", 3): (0, 1), ("piecewise", 5): (-1, -2)}


def _table() -> pd.DataFrame:
    rows = []
    for i, lam in enumerate(LAMS):
        for run in (0, 1):
            direct_acc = (0.9, 0.8, 0.5)[i]
            rows.append(("direct", 0, lam, run, "trained", direct_acc, 0.0))
            rows.append(("scratch", 0, lam, run, "scratch1", 0.3, 10.0 ** (3 - i)))
            for (model, n), (trained, tuned) in LOGD.items():
                # the linear form's accuracy spreads over runs at the largest lambda only
                acc = 0.4 + 0.2 * run if (n == 1 and i == 2) else direct_acc - 0.1
                rows.append((model, n, lam, run, "trained", acc, 10.0 ** (trained - i)))
                rows.append((model, n, lam, run, "finetuned", direct_acc, 10.0 ** (tuned - i)))
    return pd.DataFrame(rows, columns=wine.CSV_COLUMNS)


def test_lam_markdown():
    assert wine.lam_markdown(1e4) == "$\\lambda = 10^{4}$"
    assert wine.lam_markdown(100.0) == "$\\lambda = 10^{2}$"
    with pytest.raises(ValueError, match="positive"):
        wine.lam_markdown(0.0)


def test_figure3_findings():
    f = wine.figure3_findings(_table())
    assert f["fig3_d_trend"] == "to the left at every step"
    assert f["fig3_acc_spread_hi"] == pytest.approx(0.2 / math.sqrt(2))
    assert f["fig3_acc_spread_lo"] == 0.0
    # D_KL rising at one step of one form: only "overall" to the left
    t = _table()
    bump = (t.model == "linear") & (t.lam == 1e6) & (t.stage == "trained")
    t.loc[bump, "sym_kl"] *= 30
    assert wine.figure3_findings(t)["fig3_d_trend"] == "to the left overall, though not at every step"
    t.loc[bump, "sym_kl"] *= 1e4
    assert wine.figure3_findings(t)["fig3_d_trend"] == "not steadily to the left"


def test_figure3_numbers():
    f = wine.figure3_numbers(_table(), LAMS)
    assert f["lam_lo"] == "$\\lambda = 10^{2}$" and f["lam_hi"] == "$\\lambda = 10^{6}$" and f["n_lams"] == 3
    assert f["direct_acc_lo"] == pytest.approx(0.9) and f["direct_acc_hi"] == pytest.approx(0.5)
    # mean over lambda of log10 D_KL = the first lambda's value - 1
    assert f["logd_1"] == pytest.approx(0) and f["logd_3"] == pytest.approx(-1) and f["logd_5"] == pytest.approx(-2)
    assert f["logd_ft_1"] == pytest.approx(-1) and f["logd_ft_3"] == pytest.approx(0)
    assert f["accgap_3"] == pytest.approx(0.1) and f["accgap_ft_5"] == pytest.approx(0)
    assert f["accgap_1"] == pytest.approx((0.1 + 0.1 + 0.0) / 3)  # at 1e6 the mean over runs is 0.5 too
    assert f["closer5"] == 3 and f["closer3"] == 3
    assert f["pw_vs_lin"] == "closer to" and f["pw_vs_paper"] == "This agrees with the paper"
    assert f["ft_down_1"] == 100 and f["ft_down_3"] == 0 and f["ft_down_5"] == 100
    assert f["ft_down_all"] == pytest.approx(200 / 3)
    assert f["ft_down_5_lo"] == 100 and f["ft_down_5_hi"] == 100
    assert f["ft_verdict"] == "mostly lowers" and f["ft_paper"].startswith("as the paper reports")
    assert f["ft_acc_verdict"] == "closer to"
    assert f["scratch_acc_min"] == pytest.approx(0.3) and f["scratch_logd"] == pytest.approx(2)
    assert f["ft5_acc_min"] == pytest.approx(0.5) and f["ft5_acc_max"] == pytest.approx(0.9)
    assert f["scratch_vs_ft"] == "further from"
    assert all(isinstance(v, float | int | str) for v in f.values())


def test_figure3_numbers_phrases_turn_with_the_results():
    t = _table()
    five = t.model.eq("piecewise") & t.n_pieces.eq(5)
    t.loc[five & t.stage.eq("trained"), "sym_kl"] *= 1e3  # N = 5 now further than the linear form
    t.loc[t.model.isin(["linear", "piecewise"]) & t.stage.eq("finetuned"), "sym_kl"] *= 1e6  # tuning hurts
    t.loc[t.model.eq("scratch"), "sym_kl"] = 1e-9
    f = wine.figure3_numbers(t, LAMS)
    assert f["pw_vs_lin"] == "farther from" and f["pw_vs_paper"] == "This differs from the paper"
    assert f["closer5"] == 0 and f["ft_down_all"] == 0
    assert f["ft_verdict"] == "mostly does not lower" and f["ft_paper"].startswith("unlike the paper")
    assert f["scratch_vs_ft"] == "closer to"


def test_mode_note():
    cfg = wine.WineConfig(runs=3, epochs=7)
    assert "quick mode" in wine.mode_note(cfg, True)
    assert wine.mode_note(cfg, False) == "These numbers come from the full settings: 3 runs of 7 epochs."


def _theorem2(rel_gaps: dict, g: dict, g_step: float = 0.01) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per N, run and lambda; run 1 adds 0.01 to the relative gap and ``g_step`` to the score distance."""
    rows = [
        {"n_pieces": n, "run": run, "lam": lam, "gap": 10 * rel_gaps[n], "rel_gap": rel_gaps[n] + 0.01 * run,
         "g_distance": g[n] + g_step * run}
        for n, run, lam in itertools.product(rel_gaps, (0, 1), (1e2, 1e6))
    ]  # fmt: skip
    th = pd.DataFrame(rows)
    summary = th.groupby("n_pieces", as_index=False)[["gap", "rel_gap", "g_distance"]].mean()
    return th, summary.assign(curve_distance=[0.1 * n for n in summary.n_pieces])


def test_theorem2_findings_when_the_gap_falls_with_n():
    th, summary = _theorem2({1: 0.3, 2: 0.2, 3: 0.1}, {1: 0.9, 2: 0.5, 3: 0.2})
    f = wine.theorem2_findings(th, summary)
    assert f["th_n_points"] == 6
    assert f["th_rho"] == pytest.approx(1.0) and f["th_rho_curve"] == pytest.approx(-1.0)
    assert f["th_gap_text"].startswith("The relative loss gap goes from 0.3050 for the linear hypernetwork")
    assert "at $N = 3$" in f["th_gap_text"] and f["th_gap_text"].endswith("It falls at every step of $N$.")
    assert f["th_g_text"] == "from 0.205 ($N = 3$) to 0.905 ($N = 1$)"
    assert f["th_abs_gap_text"] == "from 1.000 ($N = 3$) to 3.000 ($N = 1$)"
    assert f["th_curve_text"] == "from 0.100 ($N = 1$) to 0.300 ($N = 3$)"
    assert f["th_verdict"].startswith("So here the hypernetworks")


def test_theorem2_findings_name_the_range_over_n_only_when_it_adds_something():
    # the largest gap is the linear form's: the range would repeat the two values already named
    th, summary = _theorem2({1: 0.3, 2: 0.2, 3: 0.1}, {1: 0.9, 2: 0.5, 3: 0.2})
    text = wine.theorem2_findings(th, summary)["th_gap_text"]
    assert text.startswith("The relative loss gap goes from 0.3050 for the linear hypernetwork ($N = 1$) to its "
                           "smallest value, 0.1050, at $N = 3$. It falls")  # fmt: skip
    assert "ranges" not in text
    # the largest gap is at N = 2, not at N = 1: the range names it
    th, summary = _theorem2({1: 0.3, 2: 0.4, 3: 0.1}, {1: 0.9, 2: 0.5, 3: 0.2})
    text = wine.theorem2_findings(th, summary)["th_gap_text"]
    assert "at $N = 3$; over $N$ it ranges from 0.1050 ($N = 3$) to 0.4050 ($N = 2$)." in text
    assert text.endswith("It is not monotone in $N$.")


def test_theorem2_findings_when_the_linear_form_is_closest():
    th, summary = _theorem2({1: 0.1, 2: 0.2, 3: 0.3}, {1: 0.9, 2: 0.5, 3: 0.2})
    f = wine.theorem2_findings(th, summary)
    assert f["th_gap_text"].startswith("The relative loss gap is smallest for the linear hypernetwork, 0.1050")
    assert f["th_gap_text"].endswith("It grows at every step of $N$.")
    assert f["th_rho"] < 0 and "does not show" in f["th_verdict"]
    th, summary = _theorem2({1: 0.1, 2: 0.3, 3: 0.2}, {1: 0.5, 2: 0.9, 3: 0.2}, g_step=-0.01)
    f = wine.theorem2_findings(th, summary)
    assert f["th_gap_text"].endswith("It is not monotone in $N$.")
    assert f["th_rho"] == pytest.approx(1 - 6 * 22 / (6 * 35))  # Spearman: 1 - 6 sum(d^2) / (n (n^2 - 1))
    assert "shows only weakly" in f["th_verdict"]


def test_pruning_findings():
    rows = []
    for model, n in (("direct", 0), ("linear", 1), ("piecewise", 5)):
        for lam, run, frac in itertools.product((1e2, 1e4), (0, 1), (0.0, 0.5)):
            offset = 0.0 if model == "direct" else (0.1 if lam == 1e2 else 0.3)
            rows.append({"model": model, "n_pieces": n, "run": run, "lam": lam, "fraction": frac,
                         "accuracy": 0.5 + offset + 0.1 * run})  # fmt: skip
    f = wine.pruning_findings(pd.DataFrame(rows))
    assert f["prune_near_lam"] == "$\\lambda = 10^{2}$" and f["prune_near_dist"] == pytest.approx(0.1)
    assert f["prune_far_lam"] == "$\\lambda = 10^{4}$" and f["prune_far_dist"] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="direct"):
        wine.pruning_findings(pd.DataFrame(rows[8:]))


def test_summary_table():
    wide = wine.summary_table(_table(), n_pieces=(0, 1, 5))
    assert list(wide.index) == [
        ("direct", 0, "trained"),
        ("linear", 1, "trained"),
        ("linear", 1, "finetuned"),
        ("piecewise", 5, "trained"),
        ("piecewise", 5, "finetuned"),
        ("scratch", 0, "scratch1"),
    ]
    assert list(wide.columns) == [f"accuracy at λ={lam:g}" for lam in LAMS] + [f"log10 D at λ={lam:g}" for lam in LAMS]
    assert wide.loc[("direct", 0, "trained"), "accuracy at λ=100"] == "0.900 ± 0.000"
    assert wide.loc[("direct", 0, "trained"), "log10 D at λ=100"] == "—"
    assert wide.loc[("linear", 1, "trained"), "accuracy at λ=1e+06"] == "0.500 ± 0.141"
    assert wide.loc[("piecewise", 5, "trained"), "log10 D at λ=10000"] == "-2.00 ± 0.00"


def test_theorem2_findings_with_constant_distances_says_the_correlation_is_undefined():
    th, summary = _theorem2({1: 0.3, 2: 0.2, 3: 0.1}, {1: 0.5, 2: 0.5, 3: 0.5}, g_step=0.0)
    f = wine.theorem2_findings(th, summary)
    assert np.isnan(f["th_rho"])
    assert "cannot be judged" in f["th_verdict"] and "undefined" in f["th_verdict"]
    assert "does not show" not in f["th_verdict"]


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda th, s: (th, s[s.n_pieces == 1]), "at least two"),
        (lambda th, s: (th.iloc[:0], s), "theorem2 is empty"),
        (lambda th, s: (th, s.iloc[:0]), "summary is empty"),
        (lambda th, s: (th, s.drop(columns="curve_distance")), "curve_distance"),
        (lambda th, s: (th.drop(columns="g_distance"), s), "theorem2 lacks"),
        (lambda th, s: (th, s[s.n_pieces != 1]), "no row for N = 1"),
        (lambda th, s: (th, pd.concat([s, s.iloc[:1]])), "more than one row"),
        (lambda th, s: (th.assign(rel_gap=np.nan), s), "NaN"),
    ],
)
def test_theorem2_findings_refuses_tables_it_cannot_read(edit, match):
    th, summary = _theorem2({1: 0.3, 2: 0.2, 3: 0.1}, {1: 0.9, 2: 0.5, 3: 0.2})
    with pytest.raises(ValueError, match=match):
        wine.theorem2_findings(*edit(th, summary))
