"""The assignment grader: passes good solutions, pinpoints broken ones, never crashes.

Every pass must mean something: the wrong submissions in ``grading_cases/`` (issue 21, with a
README of their faults) each fail on their own fault, and so do other submissions of the same
kinds written here; the reference solutions pass.
"""

import functools
import math
import sys
from pathlib import Path

import pytest
import torch

import varhyper_mini as vh
from varhyper_mini import cli, grading

ROOT = Path(__file__).resolve().parents[1]
BROKEN = Path(__file__).resolve().parent / "broken_solutions"
CASES = Path(__file__).resolve().parent / "grading_cases"
SOLUTIONS = ROOT / "assignments" / "solutions"
GRADER = str(Path(grading.__file__).resolve().parent)  # the grader's own files, never in a student's traceback


def _load(path: Path):
    return grading.load_module(path)


def _names(report, status: str) -> set[str]:
    return {r.name for r in report if r.status == status}


# -- assignment 1: hypernetwork forms ----------------------------------------------------------
N_CHECKS = 14  # of check_hypernet


@pytest.mark.parametrize("form", [vh.ConstantHypernet, vh.LinearHypernet, vh.PiecewiseLinearHypernet])
def test_package_forms_pass_on_wine(form, capsys):
    # Only the caller can grade a form as one that ignores lambda; then G must really be constant.
    report = grading.check_hypernet(form, target="wine", lambda_free=form is vh.ConstantHypernet)
    assert report.passed, str(report)
    assert len(report) == N_CHECKS and not report.failed and not report.skipped
    assert report.n_stored == sum(p.numel() for p in form(vh.models.wine_logreg()).parameters())
    out = capsys.readouterr().out
    assert f"Grading {form.__name__}" in out and f"{N_CHECKS} of {N_CHECKS} checks passed" in out


def test_constant_form_fails_unless_the_caller_says_lambda_free():
    report = grading.check_hypernet(vh.ConstantHypernet, target="wine", verbose=False)
    assert not report.passed and {r.name for r in report.failed} == {"lambda matters"}
    report = grading.check_hypernet(vh.LinearHypernet, target="wine", lambda_free=True, verbose=False)
    assert "graded as a form that ignores lambda" in report["lambda matters"].message


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
    report = grading.check_mlp_hypernet(sol.MLPHypernet, target="wine", verbose=False)
    assert report.passed, str(report)
    assert "for hidden = 1, 5" in report["stored values"].message
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
    assert GRADER not in result.traceback
    # checks that would repeat the same error are not run
    assert grading.check_hypernet(cls, target="wine", verbose=False)["finite values"].message.startswith("not run")


def test_no_attribute_of_a_submission_switches_a_check_off():
    jumps = _load(BROKEN / "jumps.py").NearestKnotHypernet
    declared = type("DeclaredJumps", (jumps,), {"continuous": False})
    report = grading.check_hypernet(declared, target="wine", verbose=False)
    assert not report.passed and report["continuous in lambda"].status == "FAIL"
    assert "continuous = False" not in str(report)

    ignores = _load(BROKEN / "ignores_lambda.py").IgnoresLambdaHypernet
    declared = type("DeclaredConstant", (ignores,), {"depends_on_lambda": False})
    report = grading.check_hypernet(declared, target="wine", verbose=False)
    assert not report.passed and report["lambda matters"].status == "FAIL"
    assert "depends_on_lambda" not in str(report)


def test_a_check_the_caller_switches_off_is_not_graded(capsys):
    jumps = _load(BROKEN / "jumps.py").NearestKnotHypernet
    report = grading.check_hypernet(jumps, target="wine", allow_jumps=True)
    assert report["continuous in lambda"].skipped and not report.failed
    assert not report.passed and report.verdict == "1 skipped — not graded"
    assert "(1 skipped — not graded)" in capsys.readouterr().out


def test_grader_survives_anything_the_student_does():
    class ExplodingCount(vh.LinearHypernet):
        def n_stored(self):
            raise ZeroDivisionError("boom")

    report = grading.check_hypernet(ExplodingCount, target="wine", verbose=False)
    assert report["stored values"].status == "FAIL"
    assert "ZeroDivisionError: boom" in report["stored values"].message

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
    assert text.count("PASS") == N_CHECKS and "(all checks passed)" in text
    assert repr(report) == f"<GradeReport LinearHypernet: {N_CHECKS}/{N_CHECKS} checks passed>"
    assert [r.name for r in report][0] == "builds"
    with pytest.raises(KeyError, match="no check named"):
        report["nonsense"]


# -- assignment 2: priors ------------------------------------------------------------------------
def test_reference_laplace_prior_passes():
    sol = _load(SOLUTIONS / "laplace_prior.py")
    report = grading.check_laplace_prior(sol.kl_penalty, sol.log_prior, verbose=False)
    assert report.passed, str(report)
    assert "the asked-for prior" in {r.name for r in report}


def test_gaussian_prior_of_the_package_passes_the_generic_check_only():
    kl = lambda m, s: vh.gaussian.kl_to_prior(m, s, 1.0)  # noqa: E731
    lp = lambda w: -0.5 * w * w - 0.5 * torch.log(torch.tensor(2 * torch.pi, dtype=w.dtype))  # noqa: E731
    assert grading.check_prior(kl, lp, verbose=False).passed
    report = grading.check_laplace_prior(kl, lp, verbose=False)
    assert {r.name for r in report.failed} == {"the asked-for prior"}


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
    assert {r.name for r in summed.failed} == {"elementwise"} and len(summed.blocked) == 5


# -- assignment 3: structured pruning ------------------------------------------------------------
def test_reference_neuron_pruning_passes():
    sol = _load(SOLUTIONS / "neuron_pruning.py")
    report = grading.check_neuron_pruning(sol.prune_neurons, sol.count_macs, sol.neuron_scores, verbose=False)
    assert report.passed, str(report)
    assert not any(r.skipped for r in report)


def test_broken_pruning_fails():
    bad = _load(BROKEN / "bad_pruning.py")
    sol = _load(SOLUTIONS / "neuron_pruning.py")
    report = grading.check_neuron_pruning(bad.prune_neurons, sol.count_macs, sol.neuron_scores, verbose=False)
    assert "removes whole neurons" in {r.name for r in report.failed}
    assert "partly zeroed" in report["removes whole neurons"].message

    def count_nonzero(params):  # counts sparse work, not the dense layer's
        return int(sum((params.mean[n] != 0).sum() for n in ("fc1.weight", "fc2.weight")))

    report = grading.check_neuron_pruning(sol.prune_neurons, count_nonzero, sol.neuron_scores, verbose=False)
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

    nothing = tmp_path / "nothing.py"  # a package form re-exported is not a submission
    nothing.write_text("import varhyper_mini as vh\nLinear = vh.LinearHypernet\n")
    assert cli.main(["grade", str(nothing)]) == 2
    assert "defines nothing to grade" in capsys.readouterr().err

    assert cli.main(["grade", str(BROKEN / "ignores_lambda.py"), "--target", "wine"]) == 1
    out = capsys.readouterr().out
    assert "FAIL     lambda matters" in out

    assert cli.main(["grade", str(BROKEN / "ignores_lambda.py"), "--target", "imagenet"]) == 2
    assert "unknown target" in capsys.readouterr().err

    for name in ("laplace_prior.py", "neuron_pruning.py"):
        assert cli.main(["grade", str(SOLUTIONS / name)]) == 0, capsys.readouterr().out
    assert "all checks passed" in capsys.readouterr().out
    assert str(tmp_path) not in sys.path


def test_cli_grades_the_reference_on_mnist(data_root, capsys, monkeypatch):
    monkeypatch.setenv("VARHYPER_DATA", str(data_root))
    assert cli.main(["grade", str(SOLUTIONS / "mlp_hypernet.py")]) == 0
    out = capsys.readouterr().out
    assert "Grading MLPHypernet" in out and f"{N_CHECKS} of {N_CHECKS} checks passed" in out


def test_make_hypernet_factory_is_preferred(tmp_path, capsys):
    sol = tmp_path / "factory.py"
    sol.write_text(
        "import varhyper_mini as vh\n\n\n"
        "class Unused(vh.Hypernet):\n    pass\n\n\n"
        "def make_hypernet(target, variational=True, init_log_sigma=-3.0):\n"
        "    return vh.PiecewiseLinearHypernet(target, n_pieces=2, variational=variational, "
        "init_log_sigma=init_log_sigma)\n"
    )
    assert grading.grade_cli(sol, target="wine") == 0
    out = capsys.readouterr().out
    assert "Grading make_hypernet" in out and "Unused" not in out
    # make_hypernet(target) without lam_range: the range is read from the hypernetwork
    assert "lambda range (0.001, 100.0)" in out

    # a factory that cannot pass variational / init_log_sigma on cannot be checked: a failure
    sol.write_text("import varhyper_mini as vh\n\n\ndef make_hypernet(target):\n    return vh.LinearHypernet(target)\n")
    assert grading.grade_cli(sol, target="wine") == 1
    out = capsys.readouterr().out
    assert "FAIL     initial state" in out and "take **kwargs and pass them on" in out


# -- issue 21: every pass means something ---------------------------------------------------------
GRADING_CASES = [
    # file in grading_cases/, label, exactly the checks that fail, a phrase of the first one's message
    ("m3_logvar.py", "A1", {"initial state"}, "that is the log variance"),
    ("m5_novariational.py", "A1", {"variational=False"}, "flat_params must return (mean, None)"),
    ("m6_not_parameter.py", "A1", {"stored tensors are parameters"}, "V, V_ls are tensors"),
    ("c1_constant_subclass.py", "A1", {"stored values", "lambda matters"}, "the assignment's form stores"),
    ("c2_declares_no_lambda.py", "A1", {"variational=False", "lambda matters"}, "flat_params must return"),
    ("c5_gaussian_prior.py", "A2", {"the asked-for prior"}, "that is the Gaussian N(0, 1) log density"),
    ("c6_only_prune.py", "A3", {"neuron_scores", "count_macs"}, "neuron_scores is missing"),
    ("k3_sum.py", "A2", {"elementwise"}, "must be elementwise (one KL per weight)"),
    ("p2_int.py", "A3", {"removes whole neurons"}, "rounded down (int)"),
]


@pytest.mark.parametrize("case", GRADING_CASES, ids=lambda c: c[0])
def test_grading_cases_fail_on_their_own_fault(case):
    file, label, must_fail, phrase = case
    graded = grading.grade_module(_load(CASES / file), target="wine")
    assert [lab for lab, _ in graded] == [label]
    report = graded[0][1]
    assert not report.passed and {r.name for r in report.failed} == must_fail, str(report)
    first = next(r for r in report if r.name in must_fail)
    assert phrase in first.message, str(report)
    text = str(report)
    # no grader-internal error, and no message that teaches an opt-out
    assert "IndexError" not in text and GRADER not in text
    assert "depends_on_lambda" not in text and "continuous = False" not in text


def test_unregistered_tensors_are_not_blamed_on_lambda():
    report = grading.grade_module(_load(CASES / "m6_not_parameter.py"), target="wine")[0][1]
    assert report["lambda matters"].status == "NOT RUN" and report["stored values"].status == "NOT RUN"
    assert "ignores lambda" not in str(report)


def test_grading_cases_fail_from_the_command_line(capsys):
    for file in ("c5_gaussian_prior.py", "c6_only_prune.py", "k3_sum.py", "p2_int.py"):
        assert cli.main(["grade", str(CASES / file)]) == 1, file
    out = capsys.readouterr().out
    assert "all checks passed" not in out and "not run" in out


def _mlp_variant(name: str, **methods):
    """A subclass of the reference MLPHypernet with some methods replaced: a wrong submission."""
    return type(name, (_load(SOLUTIONS / "mlp_hypernet.py").MLPHypernet,), methods)


def _init_then(fix):
    def __init__(self, target, hidden=5, **kwargs):
        super(type(self), self).__init__(target, hidden=hidden, **kwargs)
        with torch.no_grad():
            fix(self)

    return __init__


def _failed(report) -> set[str]:
    return {r.name for r in report.failed}


def test_initial_state_kind():
    # log sigma fixed at -3 whatever init_log_sigma says
    def fixed(self):
        if self.log_sigma_base is not None:
            self.log_sigma_base.fill_(-3.0)

    report = grading.check_mlp_hypernet(_mlp_variant("FixedSigma", __init__=_init_then(fixed)), "wine", verbose=False)
    assert _failed(report) == {"initial state"} and "built with init_log_sigma=-2" in report["initial state"].message

    # means that do not start at the direct model's parameters
    def zeros(self):
        self.mean_base.zero_()

    report = grading.check_mlp_hypernet(_mlp_variant("ZeroMeans", __init__=_init_then(zeros)), "wine", verbose=False)
    assert "initial state" in _failed(report) and "target's own parameters" in report["initial state"].message

    # an output layer that does not start at zero: the model depends on lambda before training
    def random_out(self):
        self.mean_out.normal_(0, 0.1)

    report = grading.check_mlp_hypernet(
        _mlp_variant("RandomOut", __init__=_init_then(random_out)), "wine", verbose=False
    )
    assert "initial state" in _failed(report)


def test_contract_flag_kind():
    def __init__(self, target, hidden=5, **kwargs):  # swallows variational
        kwargs.pop("variational", None)
        super(type(self), self).__init__(target, hidden=hidden, **kwargs)

    report = grading.check_mlp_hypernet(_mlp_variant("AlwaysVariational", __init__=__init__), "wine", verbose=False)
    assert _failed(report) == {"variational=False"}
    assert "built with variational=False, the hypernetwork has variational=True" in report["variational=False"].message

    def fixed_range(self, target, hidden=5, **kwargs):  # swallows lam_range
        kwargs.pop("lam_range", None)
        super(type(self), self).__init__(target, hidden=hidden, **kwargs)

    report = grading.check_mlp_hypernet(_mlp_variant("FixedRange", __init__=fixed_range), "wine", verbose=False)
    assert _failed(report) == {"builds"} and "built with lam_range=(100.0, 1000000.0)" in report["builds"].message


def test_stored_count_kind():
    def extra(self):
        self.register_parameter("spare", torch.nn.Parameter(torch.zeros(7)))

    report = grading.check_mlp_hypernet(_mlp_variant("Extra", __init__=_init_then(extra)), "wine", verbose=False)
    assert _failed(report) == {"stored values"} and "2P(H + 1) + 2H" in report["stored values"].message

    def plain_ab(self):  # a and b kept as plain tensors without grad: not trained, not counted
        a, b = self.in_weight.detach().clone(), self.in_bias.detach().clone()
        del self.in_weight, self.in_bias
        self.in_weight, self.in_bias = a, b

    report = grading.check_mlp_hypernet(_mlp_variant("PlainAB", __init__=_init_then(plain_ab)), "wine", verbose=False)
    assert "stored values" in _failed(report)

    lying = _mlp_variant("Lying", __init__=_init_then(extra), n_stored=lambda self: 2 * self.spec.total * 6 + 10)
    report = grading.check_mlp_hypernet(lying, "wine", verbose=False)
    assert "leave n_stored to the base class" in report["stored values"].message


def test_fixed_lambda_dependence_kind():
    class FixedOffset(vh.ConstantHypernet):  # depends on lambda, but not by a learned amount
        def flat_params(self, u):
            mean, ls = super().flat_params(u)
            return mean + 0.1 * u[:, None], ls

    report = grading.check_hypernet(FixedOffset, target="wine", verbose=False)
    assert "lambda matters" in _failed(report)
    assert "fixed rather than learned" in report["lambda matters"].message


def test_asked_for_prior_kind():
    sol = _load(SOLUTIONS / "laplace_prior.py")
    b = 1.0  # a Laplace prior, but not with the scale the assignment asks for

    def log_prior(w):
        return -math.log(2 * b) - w.abs() / b

    def kl_penalty(mean, log_sigma):
        return (
            -0.5 * math.log(2 * math.pi * math.e) - log_sigma + math.log(2 * b) + sol.expected_abs(mean, log_sigma) / b
        )

    report = grading.check_laplace_prior(kl_penalty, log_prior, verbose=False)
    assert _failed(report) == {"the asked-for prior"}
    assert "scale b = 1/sqrt(2)" in report["the asked-for prior"].message


def test_one_cause_one_failure_kind():
    sol = _load(SOLUTIONS / "laplace_prior.py")
    keepdim = grading.check_laplace_prior(
        lambda m, s: sol.kl_penalty(m, s).sum(-1, keepdim=True), sol.log_prior, verbose=False
    )
    assert _failed(keepdim) == {"elementwise"} and len(keepdim.blocked) == 5

    scalar_prior = grading.check_laplace_prior(sol.kl_penalty, lambda w: 0.0, verbose=False)
    assert _failed(scalar_prior) == {"log_prior is a density"}, str(scalar_prior)
    assert "one log density per entry" in scalar_prior["log_prior is a density"].message

    pruning = _load(SOLUTIONS / "neuron_pruning.py")
    report = grading.check_neuron_pruning(
        pruning.prune_neurons, lambda p: torch.tensor([1, 2]), lambda p: torch.zeros(3), verbose=False
    )
    assert _failed(report) == {"count_macs", "neuron_scores"}
    assert "one number" in report["count_macs"].message and "shape (50,)" in report["neuron_scores"].message
    assert GRADER not in str(report)


def test_rounding_kind():
    sol = _load(SOLUTIONS / "neuron_pruning.py")

    def ceil_prune(params, fraction):
        if not 0 <= fraction <= 1:
            raise ValueError(fraction)
        scores = sol.neuron_scores(params)
        drop = torch.argsort(scores, stable=True)[: math.ceil(fraction * scores.numel())]
        out = params.detach().clone()
        out.mean["fc1.weight"][drop] = 0.0
        out.mean["fc1.bias"][drop] = 0.0
        out.mean["fc2.weight"][:, drop] = 0.0
        return out

    report = grading.check_neuron_pruning(ceil_prune, sol.count_macs, sol.neuron_scores, verbose=False)
    assert "removes whole neurons" in _failed(report) and "rounded up" in report["removes whole neurons"].message


def test_every_function_of_an_assignment_is_required(tmp_path, capsys):
    only_kl = tmp_path / "only_kl.py"
    only_kl.write_text((SOLUTIONS / "laplace_prior.py").read_text().replace("def log_prior", "def _log_prior"))
    assert cli.main(["grade", str(only_kl)]) == 1
    out = capsys.readouterr().out
    assert "FAIL     defines what is asked" in out and "log_prior and kl_penalty" in out

    report = grading.check_neuron_pruning(_load(SOLUTIONS / "neuron_pruning.py").prune_neurons, verbose=False)
    assert _failed(report) == {"count_macs", "neuron_scores"} and not report.skipped


# -- grading a class ------------------------------------------------------------------------------------
def test_grading_a_class_folder_with_csv(tmp_path, capsys):
    import csv

    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "alice.py").write_text((SOLUTIONS / "laplace_prior.py").read_text())
    (folder / "bob.py").write_text((CASES / "k3_sum.py").read_text())
    (folder / "carol.py").write_text("print('hello from carol')\nraise RuntimeError('half done')\n")
    (folder / "dave.py").write_text((SOLUTIONS / "neuron_pruning.py").read_text())
    (folder / "notes.txt").write_text("not a submission")
    out_csv = tmp_path / "grades.csv"
    assert cli.main(["grade", str(folder), "--csv", str(out_csv)]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    row = {name: next(line for line in lines if line.startswith(name)) for name in ("alice", "bob", "carol", "dave")}
    assert "passed" in row["alice"] and "1 failed" not in row["alice"]
    assert "1 failed, 5 not run" in row["bob"] and " F " in row["bob"]
    assert "not graded" in row["carol"] and "RuntimeError: half done" in row["carol"]
    assert "hello from carol" not in out
    assert "Class summary: 4 submissions; 2 passed, 1 failed, 1 could not be graded." in out
    with open(out_csv, newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [Path(r["submission"]).name for r in table] == ["alice.py", "bob.py", "carol.py", "dave.py"]
    assert [r["passed"] for r in table] == ["1", "0", "0", "1"]
    assert table[1]["A2 elementwise"] == "FAIL" and table[1]["A2 finite values"] == "NOT RUN"
    assert table[1]["first problem"].startswith("A2 elementwise: kl_penalty(mean, log_sigma) must be elementwise")
    assert table[0]["A3 count_macs"] == "" and table[3]["A3 count_macs"] == "PASS"


def test_grading_several_files_and_the_reference_solutions(capsys):
    files = [str(SOLUTIONS / "laplace_prior.py"), str(SOLUTIONS / "neuron_pruning.py")]
    assert cli.main(["grade", *files]) == 0
    assert "Class summary: 2 submissions; 2 passed, 0 failed, 0 could not be graded." in capsys.readouterr().out
    assert cli.main(["grade", str(CASES), "--target", "wine"]) == 1
    out = capsys.readouterr().out
    assert "Class summary: 9 submissions; 0 passed, 9 failed, 0 could not be graded." in out


def test_grading_an_empty_folder(tmp_path, capsys):
    assert cli.main(["grade", str(tmp_path)]) == 2
    assert "no .py files to grade" in capsys.readouterr().err


def test_a_notebook_export_runs_only_its_definitions(tmp_path, capsys):
    export = tmp_path / "exported.py"
    export.write_text(
        "#!/usr/bin/env python\n# coding: utf-8\n\n# In[ ]:\n\n\nimport torch\n\n# In[ ]:\n\n\n"
        + (SOLUTIONS / "laplace_prior.py").read_text().split('"""', 2)[2]
        + "\n\n# In[ ]:\n\n\nreport = check_prior(kl_penalty, log_prior)\ndisplay(report)\n"
        + "for epoch in range(10**9):\n    pass\n"
    )
    assert cli.main(["grade", str(export)]) == 0
    out = capsys.readouterr().out
    assert "is a notebook export: the grader ran only its imports, functions, classes" in out
    assert "all checks passed" in out

    broken = tmp_path / "broken_export.py"
    broken.write_text("# %%\nimport torch\nfrom nowhere import something\n")
    assert cli.main(["grade", str(broken)]) == 2
    assert "a notebook export: only its imports, functions, classes" in capsys.readouterr().err


def test_refusal_problems_names_each_input_that_was_not_refused():
    from varhyper_mini.grading import report

    def strict(x):
        if x < 0:
            raise ValueError("negative")
        if x == 0:
            raise ZeroDivisionError("zero")
        return x

    found = report.refusal_problems(strict, (-1, 0, 2), lambda x: f"f({x})", "was accepted")
    assert found == ["f(0) raised ZeroDivisionError instead of ValueError", "f(2) was accepted"]
    assert report.refusal_problems(strict, (-1, -2), str, "was accepted") == []
