import dataclasses
import json
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import varhyper_mini as vh
from varhyper_mini import models, provenance
from varhyper_mini.experiments import wine
from varhyper_mini.hypernets import piecewise_knot_weights

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "results" / "wine"

SMALL = wine.WineConfig(
    lams=(1e2, 1e4, 1e6),
    gap_lams=(1e2, 1e3, 1e4, 1e5, 1e6),
    pieces=(1, 2),
    runs=2,
    epochs=1,
    batch_size=32,
    loss_samples=16,
    fractions=(0.0, 0.5),
)


@pytest.fixture(scope="module")
def wine_data():
    return vh.data.wine()


@pytest.fixture(scope="module")
def small_results(wine_data):
    return wine.run_wine_experiment(SMALL, data=wine_data, progress=False)


@pytest.mark.parametrize("n", [1, 3])
def test_padded_form_produces_the_plain_form(n):
    target = models.wine_logreg()
    padded = wine.PaddedPiecewiseHypernet(target, n, 8, lam_range=(1e2, 1e6))
    with torch.no_grad():
        padded.mean_knots.normal_()
        padded.log_sigma_knots.normal_()
    plain = padded.to_hypernet(target)
    assert isinstance(plain, vh.LinearHypernet if n == 1 else vh.PiecewiseLinearHypernet)
    lams = torch.tensor([1e2, 3e2, 2e3, 1e4, 7.7e4, 1e6])
    a, b = padded.params_batch(lams), plain.params_batch(lams)
    for name in a.mean:
        assert torch.allclose(a.mean[name], b.mean[name], atol=1e-6)
        assert torch.allclose(a.log_sigma[name], b.log_sigma[name], atol=1e-6)


@pytest.mark.parametrize("n", [1, 3, 8])
def test_padded_form_is_the_plain_form_with_zero_columns(n):
    # The same knots, interpolation and init as PiecewiseLinearHypernet(n), bit for bit; only the storage is padded.
    target = models.wine_logreg()
    padded = wine.PaddedPiecewiseHypernet(target, n, 8, lam_range=(1e2, 1e6), init_log_sigma=-4.0)
    plain = vh.PiecewiseLinearHypernet(target, n_pieces=n, lam_range=(1e2, 1e6), init_log_sigma=-4.0)
    assert isinstance(padded, vh.PiecewiseLinearHypernet) and padded.n_pieces == n
    u = torch.tensor([-0.2, 0.0, 0.1, 1 / 3, 0.5, 0.99, 1.0, 1.3])
    w = padded.knot_weights(u)
    assert w.shape == (len(u), 9)
    assert torch.equal(w[:, : n + 1], plain.knot_weights(u)) and not w[:, n + 1 :].any()
    assert padded.mean_knots.shape == (9, plain.mean_knots.shape[1])
    assert torch.equal(padded.mean_knots[: n + 1], plain.mean_knots)
    assert torch.equal(padded.log_sigma_knots[: n + 1], plain.log_sigma_knots)
    assert [name for name, _ in padded.named_parameters()] == ["mean_knots", "log_sigma_knots"]
    with pytest.raises(ValueError, match="n_knots"):  # a tensor N cannot give the shape
        piecewise_knot_weights(u, padded.pieces)


def test_the_old_module_is_a_deprecated_alias():
    sys.modules.pop("varhyper_mini.wine", None)
    vars(vh).pop("wine", None)
    with pytest.warns(DeprecationWarning, match="varhyper_mini.experiments.wine") as record:
        from varhyper_mini import wine as old
    assert record[0].filename == __file__  # stacklevel=2: the warning names the importing line
    assert sorted(old.__all__) == sorted(wine.__all__)
    for name in wine.__all__:
        assert getattr(old, name) is getattr(wine, name), name


def test_padded_form_rejects_bad_sizes():
    target = models.wine_logreg()
    with pytest.raises(ValueError, match="max_pieces"):
        wine.PaddedPiecewiseHypernet(target, 5, 3)
    with pytest.raises(ValueError, match="n_pieces"):
        wine.PaddedPiecewiseHypernet(target, 0, 3)


def test_stacked_hypernets_equal_separate_training_and_padding_stays_put(wine_data):
    train_data, _ = wine_data
    cfg = dataclasses.replace(SMALL, pieces=(1, 3), runs=2, epochs=2, batch_size=16)
    timing = wine.time_vectorised(cfg, train_data, epochs=2)
    assert list(timing.group) == ["direct", "hypernets"]
    assert (timing.max_abs_diff < 1e-5).all(), timing
    assert (timing.models == [len(cfg.lams) * cfg.runs, len(cfg.pieces) * cfg.runs]).all()
    assert (timing.speedup > 0).all()
    # The unused knot rows of a padded N = 1 hypernetwork never move.
    target = wine.run_target(cfg, 0)
    padded = [wine.PaddedPiecewiseHypernet(target, 1, 3, lam_range=cfg.lam_range) for _ in range(2)]
    start = padded[0].mean_knots.detach().clone()
    vh.train_many(padded, target, train_data, lam_prior=vh.LogUniform(*cfg.lam_range), epochs=1,
                  batch_size=16, progress=False)  # fmt: skip
    assert torch.equal(padded[0].mean_knots[2:], start[2:])
    assert not torch.equal(padded[0].mean_knots[:2], start[:2])


def test_experiment_table_is_complete_and_consistent(small_results):
    r = small_results
    wine.validate_table(r.table, SMALL)  # raises on a missing or extra row
    assert list(r.table.columns) == wine.CSV_COLUMNS
    n_rows = SMALL.runs * len(SMALL.lams) * (2 + 2 * len(SMALL.pieces))
    assert len(r.table) == n_rows
    direct = r.table[r.table.model == "direct"]
    assert (direct.sym_kl == 0).all() and (direct.stage == "trained").all()
    hyper = r.table[r.table.model.isin(["linear", "piecewise"])]
    # (with one short epoch, the KL term dominates at lambda = 1e6 and models can coincide exactly)
    assert (hyper.sym_kl >= 0).all() and (hyper.sym_kl > 0).mean() > 0.5
    assert set(r.table[r.table.model == "linear"].n_pieces) == {1}
    # the sym_kl column is D(G(lambda), direct) of the stored models
    row = hyper[(hyper.n_pieces == 2) & (hyper.stage == "trained")].iloc[0]
    q1 = r.hypernets[(2, int(row.run))](row.lam)
    q2 = r.direct[(row.lam, int(row.run))](row.lam)
    assert float(vh.theory.sym_kl(q1, q2)) == pytest.approx(row.sym_kl, rel=1e-3, abs=1e-6)
    assert vh.accuracy(r.target, q1, vh.data.wine()[1]) == pytest.approx(row.accuracy)


def test_finetuned_models_start_from_the_produced_ones(small_results):
    r = small_results
    steps = SMALL.finetune_epochs * -(-142 // SMALL.batch_size)
    bound = 4 * SMALL.lr * steps  # an Adam step moves a parameter by about lr at most
    for (n, lam, run), ft in r.finetuned.items():
        start = r.hypernets[(n, run)](lam)
        spec = vh.ParamSpec.from_module(r.target)
        moved = (ft.mean - spec.flatten(start.mean)).abs().max().item()
        assert 0 < moved < bound
    assert set(r.finetuned) == {(n, lam, run) for n in SMALL.pieces for lam in SMALL.lams for run in range(2)}
    assert set(r.scratch) == {(lam, run) for lam in SMALL.lams for run in range(SMALL.runs)}


def test_theorem2_and_pruning_tables(small_results):
    r = small_results
    assert len(r.theorem2) == SMALL.runs * len(SMALL.gap_lams) * len(SMALL.pieces)
    assert torch.allclose(
        torch.tensor(r.theorem2.gap.to_numpy()),
        torch.tensor((r.theorem2.loss_hyper - r.theorem2.loss_direct).to_numpy()),
    )
    rel = r.theorem2.gap / r.theorem2.loss_direct
    assert torch.allclose(torch.tensor(r.theorem2.rel_gap.to_numpy()), torch.tensor(rel.to_numpy()))
    assert (r.theorem2.g_distance >= 0).all() and (r.theorem2.sym_kl >= 0).all()
    summ = wine.theorem2_summary(r.theorem2)
    assert list(summ.n_pieces) == list(SMALL.pieces) and (summ.runs == SMALL.runs).all()
    n_models = len(SMALL.pieces) + 1
    assert len(r.pruning) == n_models * SMALL.runs * len(SMALL.lams) * len(SMALL.fractions)
    dist = wine.pruning_distance(r.pruning)
    assert list(dist.n_pieces) == list(SMALL.pieces) and (dist.curve_distance >= 0).all()
    s = wine.summarise(r.table)
    assert s[s.model == "direct"].log10_sym_kl.isna().all()
    assert (s.runs == SMALL.runs).all()


def test_expected_loss_matches_the_training_loss_at_tiny_sigma(wine_data):
    train_data, _ = wine_data
    target = models.wine_logreg()
    params = vh.GaussianParams.from_module(target, log_sigma=-12.0)
    lam = 1e3
    got = wine.expected_loss(target, params, train_data, lam, samples=8, seed=1)
    logits = vh.functional_forward(target, params, train_data.x)
    ce = torch.nn.functional.cross_entropy(logits, train_data.y)
    want = ce + lam * params.kl() / len(train_data)
    assert got == pytest.approx(float(want), rel=1e-4)
    # common random numbers: the same seed gives the same estimate, another seed another one
    p2 = vh.GaussianParams.from_module(target, log_sigma=0.0)
    a = wine.expected_loss(target, p2, train_data, lam, samples=8, seed=3)
    assert a == wine.expected_loss(target, p2, train_data, lam, samples=8, seed=3)
    assert a != wine.expected_loss(target, p2, train_data, lam, samples=8, seed=4)
    with pytest.raises(ValueError, match="variational"):
        wine.expected_loss(target, vh.GaussianParams.from_module(target), train_data, lam)


def test_relevance_distance():
    target = models.wine_logreg()
    p = vh.GaussianParams.from_module(target, log_sigma=-1.0)
    assert wine.relevance_distance(p, p) == 0.0
    # mu and sigma scaled together leave g, hence the distance, unchanged
    scaled = vh.GaussianParams(
        {k: 3 * v for k, v in p.mean.items()}, {k: v + math.log(3.0) for k, v in p.log_sigma.items()}
    )
    assert wine.relevance_distance(scaled, p) == pytest.approx(0.0, abs=1e-6)
    # doubling every g: |2g - g| / (2g + g) = 1/3, in either order
    doubled = vh.GaussianParams({k: 2 * v for k, v in p.mean.items()}, p.log_sigma)
    assert wine.relevance_distance(doubled, p) == pytest.approx(1 / 3, rel=1e-6)
    assert wine.relevance_distance(p, doubled) == pytest.approx(1 / 3, rel=1e-6)
    # disjoint supports give the maximum, 1
    zero = vh.GaussianParams({k: 0 * v for k, v in p.mean.items()}, p.log_sigma)
    assert wine.relevance_distance(zero, p) == pytest.approx(1.0)


def test_validate_table_names_what_is_wrong(small_results):
    t = small_results.table
    with pytest.raises(ValueError, match="missing"):
        wine.validate_table(t.iloc[1:], SMALL)
    with pytest.raises(ValueError, match="duplicate"):
        wine.validate_table(pd.concat([t, t.iloc[:1]]), SMALL)
    with pytest.raises(ValueError, match="columns"):
        wine.validate_table(t.rename(columns={"sym_kl": "kl"}), SMALL)
    with pytest.raises(ValueError, match="stage"):
        wine.validate_table(t.assign(stage="tuned"), SMALL)
    bad = t.copy()
    bad.loc[bad.model == "direct", "sym_kl"] = 1.0
    with pytest.raises(ValueError, match="reference"):
        wine.validate_table(bad, SMALL)


def test_write_results_is_atomic_and_round_trips(small_results, tmp_path):
    paths = wine.write_results(small_results, tmp_path, note="test", command="python -m varhyper_mini wine --runs 2")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(wine.RESULT_FILES)  # no tmp left
    loaded = wine.load_results(tmp_path)
    assert loaded.config == SMALL and loaded.provenance["command"].endswith("--runs 2")
    pd.testing.assert_frame_equal(loaded.theorem2, small_results.theorem2, check_dtype=False)
    pd.testing.assert_frame_equal(loaded.pruning, small_results.pruning.reset_index(drop=True), check_dtype=False)
    assert loaded.seconds["total"] == pytest.approx(small_results.seconds["total"], abs=0.01)
    back = pd.read_csv(paths["csv"])
    cfg = wine.config_from_provenance(paths["provenance"])
    assert cfg == SMALL
    wine.validate_table(back, cfg)
    prov = json.loads(paths["provenance"].read_text())
    assert prov["torch_version"] == torch.__version__ and prov["rows"] == len(back)
    assert "total" in prov["seconds"] and "cpu_count" in prov["hardware"]
    assert list(prov)[: len(provenance.PROVENANCE_KEYS)] == list(provenance.PROVENANCE_KEYS)
    assert set(provenance.MACHINE_KEYS) <= set(prov) and prov["note"] == "test"
    assert prov["started"] <= prov["ended"] <= prov["written"]  # ISO stamps in UTC sort as times
    # an incomplete table is refused and nothing is overwritten
    broken = dataclasses.replace(small_results, table=small_results.table.iloc[2:])
    before = paths["csv"].read_text()
    with pytest.raises(ValueError):
        wine.write_results(broken, tmp_path)
    assert paths["csv"].read_text() == before


def test_load_results_says_how_to_make_missing_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m varhyper_mini wine --out"):
        wine.load_results(tmp_path)


def test_wine_command_line_rejects_bad_settings(capsys):
    from varhyper_mini import cli

    assert cli.main(["wine", "--runs", "0", "--out", "unused"]) == 2
    assert "runs must be a positive integer" in capsys.readouterr().err


def test_config_validation():
    with pytest.raises(ValueError, match="lam_range"):
        wine.WineConfig(lams=(10.0,)).validate()
    with pytest.raises(ValueError, match="pieces"):
        wine.WineConfig(pieces=(1, 1)).validate()
    with pytest.raises(ValueError, match="runs"):
        wine.WineConfig(runs=0).validate()
    assert wine.WineConfig().direct_lams == tuple(10 ** (2 + 0.5 * i) for i in range(9))
    assert len(wine.WineConfig(gap_lams=(1e2, 1e6)).direct_lams) == 5


def test_committed_results_are_complete():
    csv = COMMITTED / "sym_kl.csv"
    res = wine.load_results(COMMITTED)  # all four files, the table validated against its config
    cfg = res.config
    assert len(res.theorem2) == len(cfg.pieces) * cfg.runs * len(cfg.gap_lams)
    assert set(res.pruning.fraction) == set(cfg.fractions)
    # the committed table is the paper's full configuration
    assert cfg.lams == (1e2, 1e3, 1e4, 1e5, 1e6) and cfg.lam_range == (1e2, 1e6)
    assert cfg.runs == 5 and cfg.epochs == 200 and cfg.batch_size == 1
    assert {1, 3, 5} <= set(cfg.pieces)
    df = pd.read_csv(csv)
    wine.validate_table(df, cfg)  # every model x lambda x run x stage, nothing else
    assert set(df.stage) == set(wine.STAGES)


def test_wine_command_line_refuses_a_file_as_output_folder_before_training(tmp_path, capsys, monkeypatch):
    from varhyper_mini import cli

    def never(*args, **kwargs):
        raise AssertionError("trained before the output folder was checked")

    monkeypatch.setattr(wine, "run_wine_experiment", never)
    f = tmp_path / "file"
    f.write_text("x")
    for out in (f, f / "sub"):
        assert cli.main(["wine", "--runs", "1", "--epochs", "1", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "is an existing file" in err and err.count("\n") == 1 and "Traceback" not in err
    assert f.read_text() == "x"
