import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

import varhyper_mini as vh
from varhyper_mini import families, models

matplotlib.use("Agg")

LAM_RANGE = (1e2, 1e6)
DIRECT = [1e2, 1e4]


@pytest.fixture(scope="module")
def wine():
    return vh.data.wine()


@pytest.fixture(scope="module")
def fam(wine):
    return families.train_families(
        models.wine_logreg, wine[0], LAM_RANGE, DIRECT, epochs=2, lr=1e-2, batch_size=32, n_pieces=2,
        losses=("variational", "base"),
    )  # fmt: skip


def test_train_families_trains_each_form_as_train_and_train_many_would(fam, wine):
    assert list(fam.hypers) == [("variational", "linear"), ("variational", "piecewise"), ("base", "linear"),
                                ("base", "piecewise")]  # fmt: skip
    assert isinstance(fam.hypers["variational", "piecewise"], vh.PiecewiseLinearHypernet)
    assert fam.hypers["variational", "linear"].variational and not fam.hypers["base", "linear"].variational
    assert [len(fam.directs[k]) for k in ("variational", "base")] == [2, 2] and fam.direct_lams == DIRECT
    # the same model, trained by hand from the same seed: identical parameters
    torch.manual_seed(0)
    h = vh.LinearHypernet(models.wine_logreg(), lam_range=LAM_RANGE)
    vh.train(h, models.wine_logreg(), wine[0], lam_prior=vh.LogUniform(*LAM_RANGE), epochs=2, lr=1e-2,
             batch_size=32, seed=0, progress=False)  # fmt: skip
    for a, b in zip(h.parameters(), fam.hypers["variational", "linear"].parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.manual_seed(0)
    start = vh.ConstantHypernet(models.wine_logreg(), lam_range=LAM_RANGE)
    assert not torch.equal(start.mean, fam.directs["variational"][0].mean)  # it was trained
    # each direct model trained at its own lambda: the two differ
    assert not torch.equal(fam.directs["base"][0].mean, fam.directs["base"][1].mean)


def test_train_families_rejects_an_unknown_loss(wine):
    with pytest.raises(ValueError, match="unknown loss"):
        families.train_families(models.wine_logreg, wine[0], LAM_RANGE, DIRECT, epochs=1, lr=1e-2, batch_size=32,
                                losses=("l4",))  # fmt: skip


def test_describe_variational_and_deterministic(wine):
    target = models.wine_logreg()
    q = vh.ConstantHypernet(target, init_log_sigma=-1.0)(1.0)
    row = families.describe(target, q, wine[1])
    assert 0.0 <= row["accuracy"] <= 1.0
    assert row["mean sigma"] == pytest.approx(math.exp(-1.0))
    assert row["complexity"] == pytest.approx(float(q.detach().to(dtype=torch.float64).kl(1.0)))
    d = vh.ConstantHypernet(target, variational=False)(1.0)
    row = families.describe(target, d, wine[1])
    assert math.isnan(row["mean sigma"]) and row["complexity"] == pytest.approx(float(d.detach().sq_norm()))


def test_family_table_has_a_row_per_model_and_lambda(fam, wine):
    table = families.family_table(fam, models.wine_logreg(), wine[1], [1e2, 1e3, 1e6])
    assert list(table.columns) == ["loss", "form", "lambda", "accuracy", "complexity", "mean sigma"]
    assert len(table) == 4 * 3 + 2 * 2
    direct = table[table.form == "direct"]
    assert list(direct["lambda"]) == DIRECT * 2
    assert table[table.loss == "base"]["mean sigma"].isna().all()
    assert table[table.loss == "variational"]["mean sigma"].notna().all()


def test_gap_table_is_zero_for_copies_of_the_direct_models(fam, wine):
    target = models.wine_logreg()
    same = families.Families(
        hypers={("variational", "linear"): fam.directs["variational"][0]},
        directs={"variational": [fam.directs["variational"][0]] * 2},
        direct_lams=DIRECT,
    )
    gaps = families.gap_table(same, target, wine[1])
    assert gaps.loc[("L1 (variational)", "linear")].tolist() == [0.0, 0.0]
    gaps = families.gap_table(fam, target, wine[1])
    assert gaps.index.tolist() == [("L1 (variational)", "linear"), ("L1 (variational)", "piecewise"),
                                   ("L3 (base)", "linear"), ("L3 (base)", "piecewise")]  # fmt: skip
    assert math.isnan(gaps.loc[("L3 (base)", "linear"), "mean symmetrised KL"])
    assert gaps.loc[("L1 (variational)", "linear"), "mean symmetrised KL"] > 0


def _tables(skl_linear, skl_piecewise):
    rows = []
    for loss in ("variational", "covariance"):
        for form, base in (("linear", 10.0), ("piecewise", 20.0), ("direct", 30.0)):
            for i, lam in enumerate([1e2, 1e6]):
                sigma = base / 1000 + i + (loss == "covariance")
                row = {"accuracy": base / 100 + i / 100, "complexity": base + i, "mean sigma": sigma}
                rows.append({"loss": loss, "form": form, "lambda": lam, **row})
    idx = pd.MultiIndex.from_tuples([("L1 (variational)", "linear"), ("L1 (variational)", "piecewise")])
    gaps = pd.DataFrame({"mean symmetrised KL": [skl_linear, skl_piecewise]}, index=idx)
    return pd.DataFrame(rows), gaps


def test_findings_reads_the_right_rows():
    out = families.findings(*_tables(2.0, 1.0))
    assert out["l1_acc_lo"] == 0.2 and out["l1_acc_hi"] == pytest.approx(0.21)
    assert (out["l1_kl_lo"], out["l1_kl_hi"], out["l1_kl_lin_lo"]) == (20.0, 21.0, 10.0)
    assert (out["l1_kl_direct_lo"], out["l1_kl_direct_hi"]) == (30.0, 31.0)
    assert (out["l1_sigma_hi"], out["l2_sigma_hi"]) == pytest.approx((1.02, 2.02))
    assert (out["skl_l1_linear"], out["skl_l1_piecewise"]) == (2.0, 1.0)
    assert out["piecewise_closer"] == "closer to"
    assert families.findings(*_tables(1.0, 2.0))["piecewise_closer"] == "not closer to"
    assert all(isinstance(v, float) for k, v in out.items() if k != "piecewise_closer")


def test_plot_families_draws_a_row_per_loss(fam, wine):
    table = families.family_table(fam, models.wine_logreg(), wine[1], [1e2, 1e6])
    fig = families.plot_families(table)
    assert len(fig.axes) == 6
    assert fig.axes[0].get_ylabel().startswith("L1 (variational)")
    assert fig.axes[5].texts and "deterministic" in fig.axes[5].texts[0].get_text()


def test_compare_forms_starts_every_form_from_the_same_initialisation(wine):
    train_data, test_data = wine
    forms = {
        "linear": lambda t: vh.LinearHypernet(t, lam_range=LAM_RANGE),
        "linear again": lambda t: vh.LinearHypernet(t, lam_range=LAM_RANGE),
        "piecewise": lambda t: vh.PiecewiseLinearHypernet(t, n_pieces=2, lam_range=LAM_RANGE),
    }
    curves, stored = families.compare_forms(forms, models.wine_logreg, train_data, test_data, [1e2, 1e6],
                                            (0.0, 0.5), lam_prior=vh.LogUniform(*LAM_RANGE), epochs=2)  # fmt: skip
    assert list(curves.columns) == ["lam", "fraction", "accuracy", "form"] and len(curves) == 3 * 2 * 2
    by = {name: g.accuracy.to_numpy() for name, g in curves.groupby("form", sort=False)}
    np.testing.assert_array_equal(by["linear"], by["linear again"])
    assert stored == {"linear": 4 * 42, "linear again": 4 * 42, "piecewise": 6 * 42}
    with pytest.raises(ValueError, match="at least one form"):
        families.compare_forms({}, models.wine_logreg, train_data, test_data, [1.0],
                               lam_prior=vh.LogUniform(*LAM_RANGE), epochs=1)  # fmt: skip


def _train(wine, **change):
    args = {"make_target": models.wine_logreg, "data": wine[0], "lam_range": LAM_RANGE, "direct_lams": DIRECT,
            "epochs": 1, "lr": 1e-2, "batch_size": 32, "losses": ("variational",)}  # fmt: skip
    return families.train_families(**{**args, **change})


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"direct_lams": []}, "direct_lams is empty"),
        ({"direct_lams": [1e2, 1e7]}, r"outside lam_range"),
        ({"direct_lams": [-1.0]}, "positive"),
        ({"losses": ()}, "losses is empty"),
        ({"losses": ("base", "base")}, "twice"),
        ({"make_target": models.wine_logreg()}, "not a module"),
        ({"make_target": lambda: "a model"}, "must return an nn.Module"),
        ({"data": vh.TensorData(torch.zeros(4, 7), torch.zeros(4, dtype=torch.long))}, r"shape \(7,\)"),
        ({"data": vh.TensorData(torch.zeros(4, 13), torch.full((4,), 5))}, "labels run from 5 to 5"),
    ],
)
def test_train_families_refuses_bad_arguments_before_training(wine, change, match, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained before refusing")

    monkeypatch.setattr(families, "train", no_training)
    monkeypatch.setattr(families, "train_many", no_training)
    with pytest.raises(ValueError, match=match):
        _train(wine, **change)


def test_train_families_takes_one_loss_as_a_str(wine):
    fam = _train(wine, losses="variational", direct_lams=[1e3])
    assert list(fam.hypers) == [("variational", "linear"), ("variational", "piecewise")]
    assert list(fam.directs) == ["variational"]


def test_family_table_refuses_data_that_do_not_fit(fam):
    bad = vh.TensorData(torch.zeros(3, 7), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"do not fit the target: inputs of shape \(7,\)"):
        families.family_table(fam, models.wine_logreg(), bad, [1e2])
