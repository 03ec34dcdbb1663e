import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import varhyper_mini as vh
from varhyper_mini import models, selection
from varhyper_mini.selection import (
    best_from_curve,
    count_nonzero,
    fit_budget,
    load_pruned,
    save_pruned,
    select_lambda,
)


# -- choosing lambda --------------------------------------------------------------------------------
def test_best_from_curve_reads_the_right_column_and_direction():
    curve = pd.DataFrame(
        {
            "lam": [0.01, 0.1, 1.0, 10.0],
            "val_accuracy": [0.90, 0.95, 0.95, 0.80],
            "val_nll": [0.30, 0.20, 0.25, 0.50],
            "elbo": [-900.0, -400.0, -300.0, -350.0],
            "test_accuracy": [0.97, 0.91, 0.90, 0.80],
        }
    )
    assert best_from_curve(curve, "accuracy") == 1.0  # a tie between 0.1 and 1 goes to the larger lambda
    assert best_from_curve(curve, "nll") == 0.1
    assert best_from_curve(curve, "elbo") == 1.0
    assert best_from_curve(curve, "accuracy", column="test_accuracy") == 0.01
    with pytest.raises(ValueError, match="unknown criterion"):
        best_from_curve(curve, "aic")
    with pytest.raises(ValueError, match="columns"):
        best_from_curve(curve.drop(columns="elbo"), "elbo")
    with pytest.raises(ValueError, match="no finite"):
        best_from_curve(curve.assign(val_nll=float("nan")), "nll")


class ThresholdHypernet(vh.Hypernet):
    """A known curve: a 1-d classifier whose threshold is 2u - 1, exact only at u = 1/2."""

    def __init__(self, target: nn.Module, **kw) -> None:
        super().__init__(target, variational=False, **kw)
        self.dummy = nn.Parameter(torch.zeros(1))

    def flat_params(self, u):
        t = 2 * u - 1
        w = torch.stack([-10 * torch.ones_like(u), 10 * torch.ones_like(u)], 1)  # weight (2, 1)
        b = torch.stack([10 * t, -10 * t], 1)  # logit difference 20 (x - t)
        return torch.cat([w, b], 1) + 0 * self.dummy, None


def test_select_lambda_picks_the_maximum_of_a_known_curve():
    x = torch.linspace(-1, 1, 401)[:, None]
    data = vh.TensorData(x, (x[:, 0] > 0).long(), "toy (validation)")
    target = nn.Linear(1, 2)
    hyper = ThresholdHypernet(target, lam_range=(1e-2, 1e2))
    lams = selection.lambda_grid((1e-2, 1e2), 9)  # u = 0, 1/8, ..., 1; u = 1/2 is lambda = 1
    sel = select_lambda(hyper, target, data, "accuracy", lams=lams)
    assert sel.best_lam == pytest.approx(1.0)
    assert sel.curve.loc[sel.curve.chosen, "lam"].item() == pytest.approx(1.0)
    # Accuracy falls off on both sides: the curve is the known one, 1 - |t| / 2.
    expected = [1 - abs(2 * float(hyper.encode(lam)) - 1) / 2 for lam in lams]
    assert sel.curve.val_accuracy.tolist() == pytest.approx(expected, abs=0.01)
    assert select_lambda(hyper, target, data, "nll", lams=lams).best_lam == pytest.approx(1.0)
    assert "mean weights" in sel.note


@pytest.fixture(scope="module")
def wine_hyper():
    """A small variational hypernetwork trained on Wine, and a validation split from the training set."""
    train_data, _ = vh.data.wine()
    fit, val = train_data.split(40, seed=0)
    torch.manual_seed(0)
    target = models.wine_logreg()
    hyper = vh.PiecewiseLinearHypernet(target, n_pieces=2, lam_range=(1e-1, 1e3))
    vh.train(hyper, target, fit, lam_prior=vh.LogUniform(1e-1, 1e3), epochs=40, batch_size=51, lr=5e-2,
             seed=0, progress=False)  # fmt: skip
    return hyper, target, fit, val


def test_elbo_equals_its_definition(wine_hyper):
    hyper, target, fit, _ = wine_hyper
    with torch.no_grad():
        params = hyper(1.0)
        logits = vh.functional_forward(target, params, fit.x)
        nll = float(torch.nn.functional.cross_entropy(logits, fit.y))
        kl = float(params.kl())
    e = selection.elbo(target, params, fit, samples=0)
    assert e["elbo"] == pytest.approx(-len(fit) * nll - kl, rel=1e-5)
    assert e["kl"] == pytest.approx(kl, rel=1e-6)
    mc = selection.elbo(target, params, fit, samples=3)
    assert mc["nll"] >= 0 and mc["samples"] == 3 and mc["elbo"] < 0


def test_select_lambda_by_elbo_and_its_errors(wine_hyper):
    hyper, target, fit, val = wine_hyper
    sel = select_lambda(hyper, target, None, "elbo", train_data=fit, n_lams=9, elbo_samples=0)
    assert sel.best_lam == pytest.approx(sel.curve.lam[sel.curve.elbo.idxmax()])
    assert "ELBO" in sel.note and "mean weights" in sel.note
    with pytest.raises(ValueError, match="train_data"):
        select_lambda(hyper, target, val, "elbo")
    with pytest.raises(ValueError, match="val_data"):
        select_lambda(hyper, target, None, "accuracy")
    with pytest.raises(ValueError, match="unknown criterion"):
        select_lambda(hyper, target, val, "bic")
    with pytest.warns(UserWarning, match="test set"):
        select_lambda(hyper, target, vh.data.wine()[1], "accuracy", n_lams=3)


# -- budgets ----------------------------------------------------------------------------------------
def test_fit_budget_meets_an_accuracy_floor_with_the_smallest_model(wine_hyper):
    hyper, target, _, val = wine_hyper
    fit = fit_budget(hyper, target, val, min_accuracy=0.9, lams=selection.lambda_grid(hyper.lam_range, 7))
    assert fit.accuracy >= 0.9
    feasible = fit.grid[fit.grid.accuracy >= 0.9]
    assert fit.nonzero == feasible.nonzero.min()  # the smallest model that meets the floor
    # The returned model is a plain module that holds exactly the pruned means.
    assert type(fit.model) is type(target)
    assert count_nonzero(fit.model) == (fit.nonzero, fit.total)
    with torch.no_grad():
        got = fit.model(val.x).argmax(1)
    assert float((got == val.y).float().mean()) == pytest.approx(fit.accuracy)


def test_fit_budget_meets_a_size_budget_with_the_best_accuracy(wine_hyper):
    hyper, target, _, val = wine_hyper
    fit = fit_budget(hyper, target, val, max_nonzero=12)
    assert fit.nonzero <= 12
    assert fit.accuracy == fit.grid[fit.grid.nonzero <= 12].accuracy.max()
    capped = fit_budget(hyper, target, val, max_fraction_deleted=0.3, min_fraction_deleted=0.2)
    assert 0.2 <= capped.fraction <= 0.3
    assert capped.compression == pytest.approx(capped.total / capped.nonzero)


def test_fit_budget_raises_on_an_impossible_budget_naming_the_closest_point(wine_hyper):
    hyper, target, _, val = wine_hyper
    # Three biases are never pruned, so fewer than 3 non-zero parameters cannot be reached.
    with pytest.raises(ValueError, match=r"closest achievable point is lambda = .*fraction deleted = 0.99"):
        fit_budget(hyper, target, val, max_nonzero=2)
    with pytest.raises(ValueError, match="meets the budget"):
        fit_budget(hyper, target, val, min_accuracy=1.0, max_nonzero=3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "give a budget"),
        ({"min_accuracy": 1.5}, "min_accuracy"),
        ({"max_nonzero": -1}, "max_nonzero"),
        ({"max_fraction_deleted": 0.2, "min_fraction_deleted": 0.5}, "exceeds"),
        ({"max_nonzero": 10, "objective": "speed"}, "objective"),
    ],
)
def test_fit_budget_rejects_bad_budgets(wine_hyper, kwargs, match):
    hyper, target, _, val = wine_hyper
    with pytest.raises(ValueError, match=match):
        fit_budget(hyper, target, val, **kwargs)


@pytest.mark.parametrize("masks", [False, True])
def test_save_and_load_round_trip_with_weights_only(wine_hyper, tmp_path, masks):
    hyper, target, _, val = wine_hyper
    fit = fit_budget(hyper, target, val, max_nonzero=15, masks=masks)
    if masks:
        assert hasattr(fit.model.fc, "weight_mask")
        assert torch.equal(fit.model.fc.weight_mask, (fit.model.fc.weight != 0).float())
    path = fit.save(tmp_path / "sub" / "model.pt")
    state = torch.load(path, weights_only=True)
    assert set(state) == {"fc.weight", "fc.bias"}
    loaded = load_pruned(path, models.wine_logreg())
    with torch.no_grad():
        assert torch.equal(loaded(val.x), fit.model(val.x))
    assert count_nonzero(loaded) == (fit.nonzero, fit.total)
    assert not list(tmp_path.glob("sub/.*.tmp"))
    with pytest.raises(ValueError, match="does not fit"):
        load_pruned(path, models.mnist_mlp())
    with pytest.raises(FileNotFoundError):
        load_pruned(tmp_path / "missing.pt", models.wine_logreg())
    with pytest.raises(ValueError, match="nn.Module"):
        save_pruned(fit.params, tmp_path / "params.pt")


# -- deletion and calibration -----------------------------------------------------------------------
def test_deletable_fraction_stays_within_the_tolerance(wine_hyper):
    hyper, target, _, val = wine_hyper
    with torch.no_grad():
        params = hyper(1.0)
    d = selection.deletable_fraction(target, params, val, tol=0.01)
    assert d["accuracy"] >= d["base_accuracy"] - 0.01
    acc = vh.accuracy(target, vh.prune(params, d["fraction"]), val)
    assert acc == pytest.approx(d["accuracy"])
    with pytest.raises(ValueError, match="tol"):
        selection.deletable_fraction(target, params, val, tol=2)


def test_compression_table_counts_each_level(wine_hyper):
    hyper, target, _, val = wine_hyper
    with torch.no_grad():
        params = hyper(1.0)
    table = selection.compression_table(target, params, val, fractions=(0.0, 0.5, 0.9))
    n_weights, n_bias = 13 * 3, 3  # wine_logreg: 13 features, 3 classes
    assert table.total.tolist() == [n_weights + n_bias] * 3
    # Exact counts: pruning deletes round(f * weights) weights and never a bias.
    want_nz = [n_weights - round(f * n_weights) + n_bias for f in (0.0, 0.5, 0.9)]
    assert table.nonzero.tolist() == want_nz
    assert table.compression.tolist() == pytest.approx([(n_weights + n_bias) / nz for nz in want_nz])
    assert table.compression_weights.iloc[-1] == pytest.approx(n_weights / (n_weights - round(0.9 * n_weights)))
    assert table.accuracy.iloc[0] == pytest.approx(vh.accuracy(target, params, val))
    with pytest.raises(ValueError, match="fractions"):
        selection.compression_table(target, params, val, fractions=(1.5,))
    with pytest.raises(ValueError, match="one model"):
        selection.compression_table(target, hyper.params_batch(torch.tensor([1.0, 2.0])), val)


def test_deleted_weights_are_not_resampled():
    h = vh.ConstantHypernet(models.mnist_mlp())
    p = vh.prune(h(1.0), 0.5)
    w = p.sample(torch.Generator().manual_seed(0))
    zero = p.mean["fc1.weight"] == 0
    assert int(zero.sum()) == round(0.5 * 784 * 50)
    assert torch.all(w["fc1.weight"][zero] == 0)
    assert torch.all(w["fc1.weight"][~zero] != p.mean["fc1.weight"][~zero])  # the rest is sampled


def test_calibration_table_has_mean_and_mc_rows(wine_hyper):
    hyper, target, _, val = wine_hyper
    t = selection.calibration_table(hyper, target, val, [1.0, 100.0], [0.0, 0.5], mc_samples=3)
    assert len(t) == 2 * 2 * 2
    assert set(t.prediction) == {"mean", "mc"}
    assert t[["accuracy", "ece"]].stack().between(0, 1).all()
    assert (t.nll > 0).all()


# -- the cost study ---------------------------------------------------------------------------------
TINY = selection.CostConfig(
    train_subset=400, n_val=100, test_subset=300, epochs=1, ks=(2, 3), mc_samples=2, elbo_samples=1,
    calibration_fractions=(0.0, 0.5), calibration_k=2,
)  # fmt: skip


def test_cost_study_writes_complete_results(data_root, tmp_path):
    paths = selection.run_cost_study(tmp_path / "choosing", TINY, data_root=data_root)
    assert set(paths) == set(selection.CHOOSING_FILES)
    assert not list((tmp_path / "choosing").glob(".*"))  # no temporary files left
    r = selection.load_choosing_results(tmp_path)
    assert list(r.cost.method) == ["hypernetwork", "direct-loop", "direct-batched", "direct-loop", "direct-batched"]
    assert (r.cost.seconds > 0).all() and (r.cost.cpu_seconds > 0).all()
    assert r.cost.ratio_to_hypernetwork.iloc[0] == pytest.approx(1.0)
    # The loop and the batched direct models are the same models.
    assert (r.cost.max_accuracy_diff_loop_vs_batched.dropna() < 0.02).all()
    hyper = r.curves[r.curves.model == "hypernetwork"]
    assert len(hyper) == 3  # the union of {1e-3, 1e2} and {1e-3, ~0.32, 1e2}
    assert len(r.curves[r.curves.model == "direct"]) == 5
    cols = ["test_accuracy", "test_nll", "test_ece", "test_ece_mc", "deletable", "val_accuracy", "elbo"]
    assert r.curves[cols].notna().all().all()
    assert r.curves.deletable.between(0, 1).all()
    assert set(r.calibration.prediction) == {"mean", "mc"}
    prov = json.loads(paths["provenance.json"].read_text())
    for key in ("command", "config", "torch_version", "hardware", "started", "ended", "scale_note"):
        assert key in prov
    assert prov["config"]["epochs"] == 1


def test_cost_study_rejects_bad_configs(tmp_path):
    with pytest.raises(ValueError, match="n_val"):
        selection.run_cost_study(tmp_path, selection.CostConfig(train_subset=100, n_val=100))
    with pytest.raises(ValueError, match="ks"):
        selection.run_cost_study(tmp_path, selection.CostConfig(ks=()))


def test_load_choosing_results_says_how_to_make_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="run_cost_study"):
        selection.load_choosing_results(tmp_path)


# -- reading the results ----------------------------------------------------------------------------
def _fake_curves() -> pd.DataFrame:
    lams = [1e-3, 1e-1, 10.0]
    base = {"test_nll": 0.3, "test_ece": 0.02, "deletable": 0.5, "val_nll": 0.3, "elbo": -1e4}
    rows = [
        {"model": "hypernetwork", "grid": "all", "lam": lam, "test_accuracy": acc, "val_accuracy": v, **base}
        for lam, acc, v in zip(lams, [0.90, 0.95, 0.93], [0.91, 0.92, 0.94])
    ]
    rows += [
        {"model": "direct", "grid": g, "lam": lam, "test_accuracy": acc, "val_accuracy": acc, **base}
        for g, lam, acc in [
            ("K=2", 1e-3, 0.92),
            ("K=2", 10.0, 0.91),
            ("K=3", 1e-3, 0.92),
            ("K=3", 1e-1, 0.96),
            ("K=3", 10.0, 0.91),
        ]  # fmt: skip
    ]
    return pd.DataFrame(rows)


def test_gap_table_pairs_each_direct_model_with_the_hypernetwork():
    gap = selection.gap_table(_fake_curves())
    assert gap.lam.tolist() == pytest.approx([1e-3, 1e-1, 10.0])  # 1e-3 and 10 appear in two grids, once here
    assert gap.grids.tolist() == ["K=2, K=3", "K=3", "K=2, K=3"]
    assert gap.test_accuracy_gap.tolist() == pytest.approx([0.90 - 0.92, 0.95 - 0.96, 0.93 - 0.91])
    with pytest.raises(ValueError, match="not evaluated"):
        selection.gap_table(_fake_curves().query("not (model == 'hypernetwork' and lam == 0.1)"))


def test_selection_table_judges_each_choice_on_the_test_set():
    table = selection.selection_table(_fake_curves())
    t = table[table.approach == "hypernetwork"].set_index("criterion")
    assert t.loc["accuracy"].lam == pytest.approx(10.0)  # best validation accuracy 0.94
    assert t.loc["test accuracy (oracle)"].lam == pytest.approx(0.1)
    assert t.loc["accuracy"].regret == pytest.approx(0.95 - 0.93)
    assert t.loc["accuracy"].direct_test_accuracy == pytest.approx(0.91)
    classical = table[table.approach.str.startswith("direct")].iloc[0]
    assert classical.lam == pytest.approx(0.1) and classical.approach == "direct models (K=3)"


def test_plots_draw_one_panel_per_metric():
    import matplotlib

    matplotlib.use("Agg")
    fig = selection.plot_gap(_fake_curves())
    assert len(fig.axes) == 4
    cal = pd.DataFrame(
        [
            {"lam": lam, "fraction": f, "prediction": p, "mc_samples": 0 if p == "mean" else 3, "ece": 0.1}
            for lam in (0.1, 1.0)
            for f in (0.0, 0.5)
            for p in ("mean", "mc")
        ]  # fmt: skip
    )
    fig = selection.plot_calibration(cal)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2


def test_selection_takes_numpy_numbers_and_refuses_bools(wine_hyper):

    hyper, target, fit, val = wine_hyper
    curve = vh.selection.lambda_curve(hyper, target, val, np.array([0.5, 5.0], dtype=np.float32))
    assert curve.lam.tolist() == pytest.approx([0.5, 5.0])
    table = vh.selection.calibration_table(hyper, target, val, [np.float64(1.0)], (np.float32(0.5),), np.int64(2))
    assert set(table.fraction) == {0.5}
    fit_ = vh.selection.fit_budget(hyper, target, val, max_fraction_deleted=np.float32(0.5), max_nonzero=np.int64(40))
    assert fit_.fraction <= 0.5
    assert vh.selection.lambda_grid((np.float32(0.1), np.float64(10.0)), np.int64(3)) == pytest.approx((0.1, 1.0, 10.0))
    for call in (
        lambda: vh.selection.lambda_curve(hyper, target, val, [True]),
        lambda: vh.selection.calibration_table(hyper, target, val, [1.0], (True,)),
        lambda: vh.selection.fit_budget(hyper, target, val, max_fraction_deleted=True),
        lambda: vh.selection.fit_budget(hyper, target, val, min_accuracy=0.1, fractions=[0.1, True]),
        lambda: vh.selection.lambda_grid((0.1, 10.0), True),
    ):
        with pytest.raises(ValueError, match="bool|integer"):
            call()


def test_cost_study_command_line(data_root, tmp_path, capsys):
    from varhyper_mini import cli

    assert cli.main(["choosing", "--preset", "huge", "--out", str(tmp_path)]) == 2
    assert "unknown --preset 'huge'" in capsys.readouterr().err
    assert not (tmp_path / "cost.csv").exists()
    out = tmp_path / "quick"
    assert cli.main(["choosing", "--preset", "quick", "--out", str(out), "--data-root", str(data_root), "--quiet"]) == 0
    rec = json.loads((out / "provenance.json").read_text())
    assert rec["command"].startswith("python -m varhyper_mini choosing --preset quick") and rec["config"]["epochs"] == 4
    assert set(selection.CHOOSING_FILES) <= {p.name for p in out.iterdir()}


def test_cost_study_command_line_refuses_a_file_as_output_folder(tmp_path, capsys, monkeypatch):
    from varhyper_mini import cli
    from varhyper_mini.selection import cost_study

    def never(*args, **kwargs):
        raise AssertionError("loaded data before the output folder was checked")

    monkeypatch.setattr(cost_study, "cost_data", never)
    f = tmp_path / "file"
    f.write_text("x")
    assert cli.main(["choosing", "--preset", "quick", "--out", str(f)]) == 2
    err = capsys.readouterr().err
    assert "is an existing file" in err and err.count("\n") == 1 and "Traceback" not in err
    assert f.read_text() == "x"


def test_cost_study_missing_data_leaves_no_output_folder(tmp_path, capsys, monkeypatch):
    from varhyper_mini import cli

    monkeypatch.setenv("VARHYPER_NO_DOWNLOAD", "1")
    out = tmp_path / "o"
    assert cli.main(["choosing", "--preset", "quick", "--out", str(out), "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "MNIST was not found" in err and err.count("\n") == 1 and "--data-root" in err
    assert not out.exists()
