"""The study runner: jobs, resume, shards and merge, and the command line's error messages."""

import dataclasses
import json

import pandas as pd
import pytest
import torch

from varhyper_mini import cli, models
from varhyper_mini.experiments import study

TINY = dict(
    implementations=("variational-direct", "base-linear"),
    lams=(0.01, 1.0),
    fractions=(0.0, 0.5),
    runs=2,
    epochs=1,
    train_subset=300,
    test_subset=300,
    lam_samples=2,
)


def test_plan_and_seeds_are_stable():
    cfg = study.preset("mnist", "quick", **TINY)
    jobs = study.plan_jobs(cfg)
    assert len(jobs) == 2 * 2 + 2  # direct: lams x runs; hypernet: runs
    assert len({j.seed(0) for j in jobs}) == len(jobs)
    assert [j.seed(0) for j in jobs] == [j.seed(0) for j in study.plan_jobs(cfg)]


def test_run_resume_and_sharded_merge_agree(tmp_path, data_root):
    cfg = study.preset("mnist", "quick", **TINY)
    full = tmp_path / "full"
    summary = study.run_study(cfg, full, data_root, progress=False)
    assert summary["ran"] == 6
    df = pd.read_csv(full / "pruning.csv")
    assert list(df.columns) == study.CSV_COLUMNS
    # rows: jobs x lambdas x fractions x rules; the variational loss has 2 scopes x 2 criteria
    # x 2 corrections + biases pruned + Monte Carlo = 10 rules, the base loss 2 x 1 x 2 + 1 = 5
    assert len(df) == 4 * 2 * 10 + 2 * 2 * 2 * 5
    assert set(df.correction) == {"none", "bias"} and set(df.scope) == {"layer", "global"}
    assert set(df[df.loss == "base"].criterion) == {"simple"}
    paper = study.select_rule(df)
    assert len(paper) == (4 + 2 * 2) * 2  # the paper's rule: one row per (job, lambda, fraction)
    sigma = pd.read_csv(full / "sigma.csv")
    assert list(sigma.columns) == study.SIGMA_COLUMNS
    assert set(sigma.layer) == {"fc1.weight", "fc2.weight"} and (sigma.implementation == "variational-direct").all()
    assert study.run_study(cfg, full, data_root, progress=False)["ran"] == 0  # resumes: nothing left
    sharded = tmp_path / "sharded"
    for i in (1, 2):
        study.run_study(cfg, sharded, data_root, shard=(i, 2), progress=False)
    merged = study.merge(sharded)
    pd.testing.assert_frame_equal(
        merged.reset_index(drop=True), df.sort_values(list(merged.columns[:5])).reset_index(drop=True),
        check_exact=False, atol=1e-6,
    )  # fmt: skip
    prov = json.loads((sharded / "provenance.json").read_text())
    assert prov["jobs_missing"] == [] and len(prov["runs"]) == 2


@pytest.mark.parametrize("input_range", [(-1.0, 1.0), (0.0, 1.0)])
def test_both_input_scalings_run_end_to_end(tmp_path, data_root, input_range):
    cfg = study.preset("mnist", "quick", **{**TINY, "runs": 1, "input_range": input_range})
    study.run_study(cfg, tmp_path, data_root, progress=False)
    df, prov = study.load_results(tmp_path.name, tmp_path.parent)
    assert f"[{input_range[0]:g}, {input_range[1]:g}]" in prov["data"]
    assert json.loads((tmp_path / "config.json").read_text())["input_range"] == list(input_range)
    assert df.accuracy.between(0, 1).all() and len(study.summarise(df)) > 0


def test_results_written_before_the_rules_still_load(tmp_path):
    old_cfg = {**json.loads(json.dumps(dataclasses.asdict(study.preset("mnist", "quick"))))}
    for key in ("input_range", "scopes", "corrections", "mc_samples", "width", "amp"):
        old_cfg.pop(key)
    old_cfg["scope"] = "layer"
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "provenance.json").write_text(json.dumps({"config": old_cfg}))
    rows = "implementation,loss,hypernet,lam,run,fraction,accuracy\nbase-direct,base,direct,1.0,0,0.9,0.5\n"
    (folder / "pruning.csv").write_text(rows)
    df, _ = study.load_results("old", tmp_path)
    assert list(df.columns) == study.CSV_COLUMNS
    assert df.iloc[0][study.RULE_COLUMNS].tolist() == ["layer", "simple", "none", "kept", "mean"]
    assert study.config_from_json(old_cfg).scopes == ("layer",)


def test_changed_config_is_refused(tmp_path, data_root):
    cfg = study.preset("mnist", "quick", **{**TINY, "implementations": ("base-direct",), "runs": 1})
    study.run_study(cfg, tmp_path, data_root, progress=False)
    other = study.preset("mnist", "quick", **{**TINY, "implementations": ("base-direct",), "runs": 1, "epochs": 2})
    with pytest.raises(ValueError, match="different configuration"):
        study.run_study(other, tmp_path, data_root, progress=False)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["study", "mnist", "--preset", "nope"], "unknown preset"),
        (["study", "imagenet"], "unknown dataset"),
        (["study", "mnist", "--implementations", "foo"], "unknown implementation"),
        (["study", "mnist", "--lams=-1,2"], "positive"),
        (["merge", "/nonexistent/folder"], "no study"),
        (["study", "mnist", "--input-range", "1,0"], "lo < hi"),
        (["study", "cifar10", "--input-range", "0,1"], "MNIST only"),
        (["study", "mnist", "--scopes", "neuron"], "scopes"),
    ],
)
def test_cli_errors_are_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_missing_data(tmp_path, capsys):
    argv = ["study", "mnist", "--preset", "quick", "--data-root", str(tmp_path / "none"), "--out", str(tmp_path / "o")]
    import os

    os.environ["VARHYPER_NO_DOWNLOAD"] = "1"
    try:
        assert cli.main(argv) == 2
    finally:
        del os.environ["VARHYPER_NO_DOWNLOAD"]
    assert "MNIST was not found" in capsys.readouterr().err


def test_flops_per_training_image_counts_a_linear_layer():
    # Forward x @ W^T is 2*in*out FLOPs per image; backward computes the gradients of W (2*in*out)
    # and, for the input, nothing (an input needs no gradient): 4*in*out in all.
    flops = study.flops_per_training_image(torch.nn.Linear(13, 3, bias=False), (13,))
    assert flops == 4 * 13 * 3
    cnn = study.flops_per_training_image(models.cifar_cnn(), (3, 32, 32))
    assert 1.0e9 < cnn < 1.5e9  # about 0.42 GFLOP forward, twice that backward


def test_cifar_cnn_width_scales_every_layer():
    narrow, full = models.cifar_cnn(0.25), models.cifar_cnn()
    assert narrow(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert narrow.conv1.out_channels == 12 and narrow.fc1.in_features == 64 * 8 * 8 and narrow.fc2.out_features == 16
    assert full.conv1.out_channels == 48 and full.fc1.out_features == 512  # 1.0 is the paper's network
    with pytest.raises(ValueError, match="width must be a positive number"):
        models.cifar_cnn(0)


def test_cifar_presets_state_their_scale():
    cpu, gpu, paper = (study.preset("cifar10", n) for n in ("cpu", "gpu", "paper"))
    assert cpu.width == 0.25 and cpu.runs >= 3 and cpu.lams == (0.01, 0.1, 1.0)
    assert set(cpu.implementations) == set(study.IMPLEMENTATIONS)  # Table 2's six and Figure 8's covariance
    assert gpu.width == 1.0 and gpu.train_subset is None and gpu.amp
    assert (paper.init_log_sigma, paper.epochs, paper.runs, paper.width) == (-3.0, 50, 5, 1.0)
    quick = study.preset("cifar10", "quick")
    for name in ("width", "lr", "init_log_sigma", "batch_size"):  # quick mode only shrinks sizes
        assert getattr(quick, name) == getattr(cpu, name)
    with pytest.raises(ValueError, match="CIFAR-10 network only"):
        study.preset("mnist", "quick", width=0.5)


def test_cifar_quick_slice_on_the_jpeg_images(tmp_path, data_root):
    cfg = study.preset("cifar10", "quick")
    study.run_study(cfg, tmp_path, data_root, progress=False)
    df, prov = study.load_results(tmp_path.name, tmp_path.parent)
    assert list(df.columns) == study.CSV_COLUMNS
    assert set(df.scope) == {"layer", "global"} and set(df.correction) == {"none", "bias"}
    assert df.accuracy.between(0, 1).all()
    assert "JPEG subset" in prov["data_source"] and prov["config"]["width"] == 0.25
    assert prov["runs"][0]["bf16_autocast"] is False  # CPU: full precision
    sigma = pd.read_csv(tmp_path / "sigma.csv")
    assert {"conv1.weight", "fc3.weight"} <= set(sigma.layer)
    assert (sigma.init_log_sigma == -6.0).all()


def test_slurm_scripts_map_array_tasks_onto_shards(tmp_path):
    import os
    import subprocess
    from pathlib import Path

    slurm = Path(__file__).resolve().parent.parent / "tools" / "slurm"
    env = {**os.environ, "PYTHON": "echo"}
    seen = []
    for task in (0, 1, 2):  # an array submitted as --array=0-2
        out = subprocess.run(
            ["bash", str(slurm / "study.sbatch"), "cifar10", "gpu", "res"], capture_output=True, text=True,
            env={**env, "SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "3"},
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        seen.append(out.stdout.split("--shard ")[1].split()[0])
    assert seen == ["1/3", "2/3", "3/3"]
    # submit.sh queues the array, then the merge with a dependency on the array's id
    fake = tmp_path / "sbatch"
    fake.write_text('#!/bin/bash\necho "$@" >> "$LOG"\necho 4242\n')
    fake.chmod(0o755)
    log = tmp_path / "log"
    out = subprocess.run(["bash", str(slurm / "submit.sh"), "mnist", "paper", "res", "4"], capture_output=True,
                         text=True, env={**env, "SBATCH": str(fake), "LOG": str(log)})  # fmt: skip
    assert out.returncode == 0, out.stderr
    calls = log.read_text().splitlines()
    assert calls[0].startswith("--parsable --array=1-4") and "mnist paper res" in calls[0]
    assert calls[1].startswith("--dependency=afterok:4242") and calls[1].endswith("merge.sbatch res")


def test_seconds_per_epoch_per_implementation():
    prov = {"config": {"epochs": 10}, "seconds_per_job": {
        "base-direct__lam-0.01__run-0": {"train": 20.0, "eval": 1.0, "group": 1},
        "base-direct__lam-1__run-0": {"train": 40.0, "eval": 3.0, "group": 1},
        "variational-linear__lam-all__run-0": {"train": 50.0, "eval": 5.0, "group": 1}}}  # fmt: skip
    t = study.seconds_per_epoch(prov).set_index("implementation")
    assert list(t.index) == ["variational-linear", "base-direct"]  # the package's order
    assert t.loc["base-direct", "seconds_per_epoch"] == pytest.approx(3.0) and t.loc["base-direct", "jobs"] == 2
    assert t.loc["variational-linear", "eval_seconds"] == pytest.approx(5.0)
    with pytest.raises(ValueError, match="no job times"):
        study.seconds_per_epoch({"config": {"epochs": 1}, "seconds_per_job": {}})


def test_describe_provenance_names_command_commit_and_each_run():
    _, prov = study.load_results("cifar10-init-sigma/init-log-sigma-6")
    text = study.describe_provenance(prov)
    assert prov["command"] in text and prov["git_commit"] in text and "JPEG subset" in text
    assert text.count("\n  run ") == len(prov["runs"]) and "min of wall time" in text


def test_departures_from_paper_name_what_a_scaled_run_changed():
    d = study.departures_from_paper(study.preset("cifar10", "cpu"))
    assert d["init_log_sigma"] == {"this": -6.0, "paper": -3.0}
    assert d["width"] == {"this": 0.25, "paper": 1.0} and d["epochs"]["paper"] == 50
    assert {"train_subset", "runs", "lr", "batch_size", "lam_samples"} <= set(d)
    assert "max_group" not in d and "amp" not in d  # bookkeeping, not the method's settings
    assert study.departures_from_paper(study.preset("mnist", "paper")) == {}


def test_wall_and_elapsed_minutes_of_a_provenance():
    prov = {"runs": [{"wall_seconds": 60.0}, {"wall_seconds": 30.0}, {}],
            "started": "2024-01-01T10:00:00", "ended": "2024-01-01T10:45:30"}  # fmt: skip
    assert study.wall_minutes(prov) == pytest.approx(1.5)  # shards side by side each count; no time counts 0
    assert study.elapsed_minutes(prov) == pytest.approx(45.5)
    with pytest.raises(KeyError):
        study.wall_minutes({})
    with pytest.raises(KeyError):
        study.elapsed_minutes({"started": "2024-01-01T10:00:00"})


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--train-subset", "-5"], "train_subset"),
        (["--test-subset", "0"], "test_subset"),
        (["--shard", "3/2"], "shard"),
        (["--shard", "0/2"], "shard"),
        (["--init-log-sigma", "50"], "init_log_sigma"),
        (["--prior-var", "0"], "prior_var"),
    ],
)
@pytest.mark.parametrize("exists", [False, True])
def test_cli_refusals_leave_the_output_folder_untouched(tmp_path, capsys, extra, message, exists):
    out = tmp_path / "o"
    if exists:  # a folder the user made, with a file of their own: unchanged afterwards
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    argv = ["study", "mnist", "--preset", "quick", "--quiet", "--out", str(out), "--data-root", str(tmp_path / "no")]
    assert cli.main(argv + extra) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    if exists:
        assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    else:
        assert not out.exists()
    assert not (tmp_path / "no").exists()  # refused before the data is looked for


def test_validate_names_each_late_setting():
    for key, value in [("train_subset", -5), ("test_subset", 0), ("init_log_sigma", 50.0), ("prior_var", 0.0),
                       ("clip_value", -1.0), ("seed", -1), ("train_subset", True)]:  # fmt: skip
        with pytest.raises(ValueError, match=key):
            dataclasses.replace(study.StudyConfig(), **{key: value}).validate()


def test_cli_output_folder_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert cli.main(["study", "mnist", "--preset", "quick", "--out", str(f)]) == 2
    err = capsys.readouterr().err
    assert "is an existing file" in err and err.count("\n") == 1
    assert f.read_text() == "x"


def test_help_lists_every_preset_and_errors_list_them_comma_separated(capsys):
    with pytest.raises(SystemExit):
        cli.main(["study", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for dataset, presets in study.PRESETS.items():
        assert f"{', '.join(presets)} ({dataset})" in text
    with pytest.raises(ValueError) as err:
        study.preset("cifar10", "nope")
    assert "choose one of " + ", ".join(study.PRESETS["cifar10"]) in str(err.value) and "[" not in str(err.value)


def test_cli_missing_data_is_one_line_naming_the_files(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VARHYPER_NO_DOWNLOAD", "1")
    out = tmp_path / "o"
    argv = ["study", "mnist", "--preset", "quick", "--data-root", str(tmp_path / "none"), "--out", str(out)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train-images-idx3-ubyte" in err and str(tmp_path / "none") in err
    assert "--data-root" in err and "VARHYPER_DATA" in err and "download" in err
    assert not out.exists()
