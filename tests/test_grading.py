"""The assignment grader: passes good solutions, pinpoints broken ones, never crashes."""

import functools
import sys
from pathlib import Path

import pytest
import torch

import varhyper_mini as vh
from varhyper_mini import cli, grading

ROOT = Path(__file__).resolve().parents[1]
BROKEN = Path(__file__).resolve().parent / "broken_solutions"
SOLUTIONS = ROOT / "assignments" / "solutions"


def _load(path: Path):
    return grading.load_module(path)


def _names(report, status: str) -> set[str]:
    return {r.name for r in report if r.status == status}


# -- assignment 1: hypernetwork forms ----------------------------------------------------------
@pytest.mark.parametrize("form", [vh.ConstantHypernet, vh.LinearHypernet, vh.PiecewiseLinearHypernet])
def test_package_forms_pass_on_wine(form, capsys):
    report = grading.check_hypernet(form, target="wine")
    assert report.passed, str(report)
    assert len(report) == 11 and not report.failed
    assert report.n_stored == sum(p.numel() for p in form(vh.models.wine_logreg()).parameters())
    skipped = _names(report, "SKIP")
    assert skipped == ({"lambda matters"} if form is vh.ConstantHypernet else set())
    out = capsys.readouterr().out
    assert f"Grading {form.__name__}" in out and "11 of 11 checks passed" in out


def test_deterministic_form_and_factory_pass():
    report = grading.check_hypernet(
        functools.partial(vh.PiecewiseLinearHypernet, n_pieces=3, variational=False),
        target="wine",
        verbose=False,
    )
    assert report.passed, str(report)
    assert report.subject == "PiecewiseLinearHypernet"
    assert "loss='base'" in report["training reduces the loss"].message


def test_package_form_passes_on_mnist(data_root):
    report = grading.check_hypernet(vh.PiecewiseLinearHypernet, target="mnist", data_root=data_root, verbose=False)
    assert report.passed, str(report)
    assert report.n_stored == 12 * 39_760
    assert "39,760 parameters" in report.setting


def test_reference_mlp_hypernet_passes():
    sol = _load(SOLUTIONS / "mlp_hypernet.py")
    report = grading.check_hypernet(sol.MLPHypernet, target="wine", verbose=False)
    assert report.passed, str(report)
    # hidden = 5 matches the piecewise-linear budget with 5 pieces (plus 2 * hidden values)
    assert report.n_stored == 12 * 42 + 10


BROKEN_CASES = [
    # file, class, the checks that must fail, a phrase of the first failure's message
    (
        "wrong_shapes.py",
        "WrongShapesHypernet",
        {"output names and shapes"},
        "must return means of shape (3, 42)",
    ),
    ("nan_values.py", "OverUHypernet", {"finite values", "training reduces the loss"}, "non-finite"),
    ("ignores_lambda.py", "IgnoresLambdaHypernet", {"lambda matters"}, "ignores lambda"),
    (
        "non_differentiable.py",
        "DetachedHypernet",
        {"differentiable", "training reduces the loss"},
        "require grad",
    ),
    (
        "non_differentiable.py",
        "NoGradHypernet",
        {"differentiable", "training reduces the loss"},
        "require grad",
    ),
    ("raises.py", "WrongOrderHypernet", {"output names and shapes"}, "raised RuntimeError"),
    ("raises.py", "NeedsRankHypernet", {"builds"}, "missing 1 required positional argument: 'rank'"),
    ("no_lambda_check.py", "NoCheckHypernet", {"rejects bad lambda"}, "forward(nan) returned parameters"),
    ("jumps.py", "NearestKnotHypernet", {"continuous in lambda"}, "G jumps"),
    ("random_output.py", "NoisyHypernet", {"deterministic"}, "two calls of forward"),
]
# Files with one bug: exactly these checks fail, everything else passes.
EXACT = {"ignores_lambda.py", "no_lambda_check.py", "jumps.py"}


@pytest.mark.parametrize("case", BROKEN_CASES, ids=lambda c: c[1])
def test_broken_solutions_fail_with_a_clear_message(case):
    file, cls_name, must_fail, phrase = case
    cls = getattr(_load(BROKEN / file), cls_name)
    report = grading.check_hypernet(cls, target="wine", verbose=False)
    failed = {r.name for r in report.failed}
    assert not report.passed
    assert must_fail <= failed, str(report)
    if file in EXACT:
        assert failed == must_fail, str(report)
    first = next(r for r in report.results if r.name in must_fail)
    assert phrase in first.message, str(report)
    assert first.name in str(report) and "FAIL" in str(report)


def test_student_traceback_points_at_the_student_line():
    cls = _load(BROKEN / "raises.py").WrongOrderHypernet
    result = grading.check_hypernet(cls, target="wine", verbose=False)["output names and shapes"]
    assert "raises.py" in result.traceback and "self.mean_ends @ w" in result.traceback
    assert "grading.py" not in result.traceback
    # checks that would repeat the same error are not run
    assert grading.check_hypernet(cls, target="wine", verbose=False)["finite values"].message.startswith("not run")


def test_declared_jumps_and_lambda_independence_are_accepted():
    jumps = _load(BROKEN / "jumps.py").NearestKnotHypernet
    declared = type("DeclaredJumps", (jumps,), {"continuous": False})
    report = grading.check_hypernet(declared, target="wine", verbose=False)
    assert report.passed and report["continuous in lambda"].skipped

    ignores = _load(BROKEN / "ignores_lambda.py").IgnoresLambdaHypernet
    declared = type("DeclaredConstant", (ignores,), {"depends_on_lambda": False})
    report = grading.check_hypernet(declared, target="wine", verbose=False)
    assert report.passed and report["lambda matters"].skipped


def test_grader_survives_anything_the_student_does():
    class ExplodingCount(vh.LinearHypernet):
        def n_stored(self):
            raise ZeroDivisionError("boom")

    report = grading.check_hypernet(ExplodingCount, target="wine", verbose=False)
    assert report["parameter count"].status == "FAIL"
    assert "ZeroDivisionError: boom" in report["parameter count"].message

    not_a_hypernet = grading.check_hypernet(torch.nn.Linear, target="wine", verbose=False)
    assert "not a subclass of varhyper_mini.Hypernet" in not_a_hypernet["builds"].message

    returns_junk = grading.check_hypernet(lambda target, lam_range: 42, target="wine", verbose=False)
    assert "not a varhyper_mini.Hypernet" in returns_junk["builds"].message

    instance = grading.check_hypernet(vh.LinearHypernet(vh.models.wine_logreg()), target="wine", verbose=False)
    assert "pass the class itself, check_hypernet(LinearHypernet)" in instance["builds"].message


def test_grader_leaves_the_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    grading.check_hypernet(vh.LinearHypernet, target="wine", verbose=False)
    assert torch.equal(torch.rand(3), expected)


def test_bad_grader_arguments():
    with pytest.raises(ValueError, match="unknown target"):
        grading.check_hypernet(vh.LinearHypernet, target="cifar")
    with pytest.raises(ValueError, match="data="):
        grading.check_hypernet(vh.LinearHypernet, target=vh.models.wine_logreg())


def test_custom_target_module_with_data():
    train_data, _ = vh.data.wine()
    target = torch.nn.Sequential(torch.nn.Linear(13, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    report = grading.check_hypernet(vh.LinearHypernet, target=target, data=train_data, verbose=False)
    assert report.passed, str(report)
    assert "Sequential" in report.setting


def test_report_formatting():
    report = grading.check_hypernet(vh.LinearHypernet, target="wine", verbose=False)
    text = str(report)
    assert text.splitlines()[0] == "Grading LinearHypernet"
    assert text.count("PASS") == 11 and "(all checks passed)" in text
    assert repr(report) == "<GradeReport LinearHypernet: 11/11 checks passed>"
    assert [r.name for r in report][0] == "builds"
    with pytest.raises(KeyError, match="no check named"):
        report["nonsense"]


# -- assignment 2: priors ------------------------------------------------------------------------
def test_reference_laplace_prior_passes():
    sol = _load(SOLUTIONS / "laplace_prior.py")
    report = grading.check_prior(sol.kl_penalty, sol.log_prior, verbose=False)
    assert report.passed, str(report)


def test_gaussian_prior_of_the_package_passes():
    report = grading.check_prior(
        lambda m, s: vh.gaussian.kl_to_prior(m, s, 1.0),
        lambda w: -0.5 * w * w - 0.5 * torch.log(torch.tensor(2 * torch.pi, dtype=w.dtype)),
        verbose=False,
    )
    assert report.passed, str(report)


def test_broken_priors_fail():
    bad = _load(BROKEN / "bad_prior.py")
    report = grading.check_prior(bad.kl_penalty, bad.log_prior, verbose=False)
    assert {r.name for r in report.failed} == {"matches Monte Carlo", "non-negative"}
    assert "Monte Carlo estimate" in report["matches Monte Carlo"].message

    unnormalised = grading.check_prior(bad.kl_penalty, lambda w: -w.abs(), verbose=False)
    assert "integrates to" in unnormalised["log_prior is a density"].message

    def raising(mean, log_sigma):
        raise NotImplementedError("TODO: the KL divergence")

    report = grading.check_prior(raising, bad.log_prior, verbose=False)
    assert report["elementwise"].status == "FAIL"
    assert "NotImplementedError: TODO" in report["elementwise"].message

    summed = grading.check_prior(lambda m, s: vh.gaussian.kl_to_prior(m, s).sum(), bad.log_prior, verbose=False)
    assert "elementwise" in summed["elementwise"].message


# -- assignment 3: structured pruning ------------------------------------------------------------
def test_reference_neuron_pruning_passes():
    sol = _load(SOLUTIONS / "neuron_pruning.py")
    report = grading.check_neuron_pruning(sol.prune_neurons, sol.count_macs, verbose=False)
    assert report.passed, str(report)
    assert not any(r.skipped for r in report)


def test_broken_pruning_fails():
    bad = _load(BROKEN / "bad_pruning.py")
    report = grading.check_neuron_pruning(bad.prune_neurons, verbose=False)
    assert {r.name for r in report.failed} == {"removes whole neurons"}
    assert "partly zeroed" in report["removes whole neurons"].message
    assert report["count_macs"].skipped

    sol = _load(SOLUTIONS / "neuron_pruning.py")

    def count_nonzero(params):  # counts sparse work, not the dense layer's
        return int(sum((params.mean[n] != 0).sum() for n in ("fc1.weight", "fc2.weight")))

    report = grading.check_neuron_pruning(sol.prune_neurons, count_nonzero, verbose=False)
    assert {r.name for r in report.failed} == {"count_macs"}

    def random_neurons(params, fraction):
        drop = torch.randperm(params.mean["fc1.bias"].numel())[: round(fraction * params.mean["fc1.bias"].numel())]
        out = params.detach().clone()
        out.mean["fc1.weight"][drop] = 0.0
        out.mean["fc1.bias"][drop] = 0.0
        out.mean["fc2.weight"][:, drop] = 0.0
        return out

    report = grading.check_neuron_pruning(random_neurons, verbose=False)
    assert {"nested removals", "least relevant first", "rejects bad fraction"} <= {r.name for r in report.failed}


# -- loading files and the command line -----------------------------------------------------------
def test_cli_exit_codes(tmp_path, capsys):
    assert cli.main(["grade", str(tmp_path / "missing.py")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: no such file: {tmp_path / 'missing.py'}"

    bad_syntax = tmp_path / "bad_syntax.py"
    bad_syntax.write_text("import torch\n\ndef f(:\n    pass\n")
    assert cli.main(["grade", str(bad_syntax)]) == 2
    err = capsys.readouterr().err
    assert "SyntaxError" in err and "(line 3)" in err and len(err.strip().splitlines()) == 1

    raising = tmp_path / "raising.py"
    raising.write_text("x = 1\nraise RuntimeError('no data here')\n")
    assert cli.main(["grade", str(raising)]) == 2
    err = capsys.readouterr().err
    assert "(line 2): RuntimeError: no data here" in err and "Traceback" not in err

    exits = tmp_path / "exits.py"
    exits.write_text("import sys\nsys.exit(3)\n")
    assert cli.main(["grade", str(exits)]) == 2

    nothing = tmp_path / "nothing.py"
    nothing.write_text("import varhyper_mini as vh\nLinear = vh.LinearHypernet\n")
    assert cli.main(["grade", str(nothing)]) == 2
    assert "defines nothing to grade" in capsys.readouterr().err

    assert cli.main(["grade", str(BROKEN / "ignores_lambda.py"), "--target", "wine"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  lambda matters" in out

    assert cli.main(["grade", str(BROKEN / "ignores_lambda.py"), "--target", "imagenet"]) == 2
    assert "unknown target" in capsys.readouterr().err

    for name in ("laplace_prior.py", "neuron_pruning.py"):
        assert cli.main(["grade", str(SOLUTIONS / name)]) == 0
    assert "all checks passed" in capsys.readouterr().out
    assert str(tmp_path) not in sys.path


def test_cli_grades_the_reference_on_mnist(data_root, capsys, monkeypatch):
    monkeypatch.setenv("VARHYPER_DATA", str(data_root))
    assert cli.main(["grade", str(SOLUTIONS / "mlp_hypernet.py")]) == 0
    out = capsys.readouterr().out
    assert "Grading MLPHypernet" in out and "11 of 11 checks passed" in out


def test_make_hypernet_factory_is_preferred(tmp_path, capsys):
    sol = tmp_path / "factory.py"
    sol.write_text(
        "import varhyper_mini as vh\n\n\n"
        "class Unused(vh.Hypernet):\n    pass\n\n\n"
        "def make_hypernet(target):\n    return vh.PiecewiseLinearHypernet(target, n_pieces=2)\n"
    )
    assert grading.grade_cli(sol, target="wine") == 0
    out = capsys.readouterr().out
    assert "Grading make_hypernet" in out and "Unused" not in out
    # make_hypernet(target) without lam_range: the range is read from the hypernetwork
    assert "lambda range (0.001, 100.0)" in out
