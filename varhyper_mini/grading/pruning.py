"""Assignment 3's checker: structured pruning of the MNIST MLP's hidden neurons.

``check_neuron_pruning(prune_neurons, count_macs, neuron_scores)`` runs the three functions on
random variational parameters of ``models.mnist_mlp`` with 50 and 20 hidden neurons: whole neurons
are removed, the right number of them (rounded to the nearest), the least relevant first, nested
as the fraction grows; ``count_macs`` counts a dense layer that skips removed neurons.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .. import models
from ..gaussian import GaussianParams
from .report import CheckFailed, CheckRunner, GradeReport, call_student, refusal_problems

__all__ = ["PRUNE_FRACTIONS", "check_neuron_pruning"]


def _mlp_params(hidden: int, seed: int) -> GaussianParams:
    """Random variational parameters of ``models.mnist_mlp(hidden)``."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = models.mnist_mlp(hidden)
    mean = {n: p.detach().clone() for n, p in module.named_parameters()}
    ls = {n: -3.0 + 0.5 * torch.randn(t.shape, generator=g) for n, t in mean.items()}
    return GaussianParams(mean, ls)


#: Fractions of neurons to remove; for 0.234 and 0.666, fraction x hidden (50 and 20) is not whole,
#: and rounding down, up or to the nearest give different counts for some of them.
PRUNE_FRACTIONS = (0.1, 0.234, 0.5, 0.666, 0.9)


def _dead(p: GaussianParams) -> Tensor:
    """Hidden neurons whose row of fc1.weight, fc1.bias entry and column of fc2.weight are zero."""
    m = p.mean
    return (m["fc1.weight"] == 0).all(1) & (m["fc1.bias"] == 0) & (m["fc2.weight"] == 0).all(0)


def _macs(p: GaussianParams) -> int:
    alive = int((~_dead(p)).sum())
    return alive * (p.mean["fc1.weight"].shape[1] + p.mean["fc2.weight"].shape[0])


def check_neuron_pruning(
    prune_neurons: Callable[[GaussianParams, float], GaussianParams],
    count_macs: Callable[[GaussianParams], int] | None = None,
    neuron_scores: Callable[[GaussianParams], Tensor] | None = None,
    *,
    seed: int = 0,
    verbose: bool = True,
) -> GradeReport:
    """Check structured pruning of the MNIST MLP's hidden neurons (assignment 3); print a report.

    The assignment asks for all three functions: a missing one (None) fails its check.

    Args:
        prune_neurons: ``prune_neurons(params, fraction)`` returns new ``GaussianParams`` of
            ``models.mnist_mlp`` with ``round(fraction * hidden)`` hidden neurons removed: their
            row of ``fc1.weight``, entry of ``fc1.bias`` and column of ``fc2.weight`` set to 0.
            The fractions tested include some whose neuron count is not a whole number.
        count_macs: ``count_macs(params)``, the multiply-accumulates per image of a dense
            implementation that skips removed neurons: ``alive * (784 + 10)``.
        neuron_scores: ``neuron_scores(params)``, one relevance score per hidden neuron, shape
            ``(hidden,)``; ``prune_neurons`` must remove the neurons of lowest score.
        seed: seeds every check; the caller's random state is left untouched.
        verbose: print the report.

    Returns:
        A ``GradeReport``; ``report.passed`` is True when every check ran and passed. Nothing the
        student's functions raise or return escapes: it is recorded as a failed check.
    """
    name = " / ".join(
        getattr(f, "__name__", default)
        for f, default in (
            (prune_neurons, "prune_neurons"),
            (count_macs, "count_macs"),
            (neuron_scores, "neuron_scores"),
        )
        if f is not None
    )
    report = GradeReport(name, "random variational parameters of the MNIST MLP, 50 and 20 hidden neurons")
    runner = CheckRunner(report, seed)

    def run(p: GaussianParams, f: float) -> GaussianParams:
        out = call_student(f"prune_neurons(params, {f:g})", prune_neurons, p, f)
        if not isinstance(out, GaussianParams):
            raise CheckFailed(f"prune_neurons must return GaussianParams; got {type(out).__name__}")
        for n, t in p.mean.items():
            if n not in out.mean or out.mean[n].shape != t.shape:
                raise CheckFailed(f"the result must keep every tensor with its shape; {n!r} is missing or reshaped")
        return out

    def c_returns() -> str:
        p = _mlp_params(50, seed)
        keep = p.clone()
        run(p, 0.5)
        for n in p.mean:
            if not torch.equal(p.mean[n], keep.mean[n]) or not torch.equal(p.log_sigma[n], keep.log_sigma[n]):
                raise CheckFailed(f"prune_neurons changed its input ({n!r}); return a new GaussianParams")
        return "new GaussianParams with the same names and shapes; the input is unchanged"

    def c_zero() -> str:
        p = _mlp_params(50, seed)
        out = run(p, 0.0)
        for n in p.mean:
            if not torch.equal(out.mean[n], p.mean[n]):
                raise CheckFailed(f"fraction 0 changed {n!r}")
        return "fraction 0 leaves the means unchanged"

    def c_whole() -> str:
        for hidden in (50, 20):
            p = _mlp_params(hidden, seed)
            for f in PRUNE_FRACTIONS:
                out = run(p, f)
                dead = _dead(out)
                want = round(f * hidden)
                m = out.mean
                partly = ((m["fc1.weight"] == 0).any(1) | (m["fc1.bias"] == 0) | (m["fc2.weight"] == 0).any(0)) & ~dead
                found = int(dead.sum())
                if found != want:
                    hint = ""
                    for how, value in (
                        ("rounded down (int)", math.floor(f * hidden)),
                        ("rounded up", math.ceil(f * hidden)),
                    ):
                        if found == value != want:
                            hint = f". {found} is {f * hidden:.4g} {how}: round to the nearest whole number, round()"
                    raise CheckFailed(
                        f"with {hidden} hidden neurons and fraction {f:g}, round({f:g} x {hidden}) = "
                        f"round({f * hidden:.4g}) = {want} neurons should be removed (fc1.weight row, fc1.bias "
                        f"entry and fc2.weight column all zero); found {found} removed and "
                        f"{int(partly.sum())} partly zeroed{hint}"
                    )
                alive = ~dead
                same = (
                    torch.equal(m["fc1.weight"][alive], p.mean["fc1.weight"][alive])
                    and torch.equal(m["fc1.bias"][alive], p.mean["fc1.bias"][alive])
                    and torch.equal(m["fc2.weight"][:, alive], p.mean["fc2.weight"][:, alive])
                    and torch.equal(m["fc2.bias"], p.mean["fc2.bias"])
                )
                if not same:
                    raise CheckFailed(
                        f"at fraction {f:g} the kept neurons (or fc2.bias) were changed; keep them as they are"
                    )
        fracs = ", ".join(f"{f:g}" for f in PRUNE_FRACTIONS)
        return f"removes exactly round(fraction x hidden) whole neurons and keeps the rest (50 and 20 hidden; {fracs})"

    def c_nested() -> str:
        p = _mlp_params(50, seed)
        prev, prev_f = None, None
        for f in (0.1, 0.3, 0.5, 0.7, 0.9):
            dead = _dead(run(p, f))
            if prev is not None and bool((prev & ~dead).any()):
                raise CheckFailed(
                    f"neurons removed at fraction {prev_f:g} are kept at {f:g}: rank the neurons once by a "
                    "relevance score and remove the lowest"
                )
            prev, prev_f = dead, f
        return "the neurons removed at a smaller fraction are also removed at a larger one"

    def c_least() -> str:
        p = _mlp_params(50, seed)
        with torch.no_grad():
            p.mean["fc1.weight"][7] = 0.0
            p.mean["fc1.bias"][7] = 0.0
            p.mean["fc2.weight"][:, 7] = 0.0
            p.mean["fc1.weight"][3] *= 100.0
            p.mean["fc2.weight"][:, 3] *= 100.0
        first = _dead(run(p, 1 / 50))
        if not bool(first[7]) or int(first.sum()) != 1:
            raise CheckFailed(
                "at fraction 1/50, neuron 7, whose weights are all zero, should be the one removed; removed: "
                f"{first.nonzero().flatten().tolist()}"
            )
        most = _dead(run(p, 0.98))
        if bool(most[3]):
            raise CheckFailed("at fraction 0.98, neuron 3, whose weights were scaled up 100 times, was removed")
        return "a neuron with zero weights goes first; one with large weights is kept"

    def c_bad() -> str:
        p = _mlp_params(20, seed)
        bad_fractions = (-0.1, 1.5, float("nan"))
        problems = refusal_problems(
            lambda f: prune_neurons(p, f), bad_fractions, lambda f: f"fraction {f}", "was accepted"
        )
        if problems:
            raise CheckFailed("; ".join(problems))
        return "ValueError for fractions -0.1, 1.5 and nan"

    def c_scores() -> str:
        if neuron_scores is None:
            raise CheckFailed(
                "neuron_scores is missing: the assignment asks for neuron_scores(params), one score per neuron"
            )
        p = _mlp_params(50, seed)
        with torch.no_grad():
            scores = call_student("neuron_scores(params)", neuron_scores, p)
        if not isinstance(scores, Tensor) or tuple(scores.shape) != (50,):
            got = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
            raise CheckFailed(f"neuron_scores(params) must return one score per hidden neuron, shape (50,); got {got}")
        if not bool(torch.isfinite(scores).all()):
            raise CheckFailed("neuron_scores(params) returns values that are not finite")
        for f in (0.3, 0.7):
            dead = _dead(run(p, f))
            if bool(dead.any()) and bool((~dead).any()) and float(scores[dead].max()) > float(scores[~dead].min()):
                raise CheckFailed(
                    f"at fraction {f:g}, prune_neurons removes a neuron scored {float(scores[dead].max()):.4g} by "
                    f"neuron_scores and keeps one scored {float(scores[~dead].min()):.4g}: remove the neurons of "
                    "lowest score"
                )
        return "one finite score per neuron; prune_neurons removes the lowest-scored neurons"

    def c_macs() -> str:
        if count_macs is None:
            raise CheckFailed("count_macs is missing: the assignment asks for count_macs(params), the MACs per image")
        p = _mlp_params(50, seed)
        cases = [("the full model", p)]
        g = torch.Generator().manual_seed(3)
        scattered = p.clone()
        for n in ("fc1.weight", "fc2.weight"):
            scattered.mean[n][torch.rand(scattered.mean[n].shape, generator=g) < 0.3] = 0.0
        cases.append(("a model with scattered zero weights (no neuron removed)", scattered))
        manual = p.clone()
        for j in (0, 5, 9, 30):
            manual.mean["fc1.weight"][j] = 0.0
            manual.mean["fc1.bias"][j] = 0.0
            manual.mean["fc2.weight"][:, j] = 0.0
        cases.append(("a model with 4 neurons removed", manual))
        for what, q in cases:
            got = call_student("count_macs(params)", count_macs, q)
            want = _macs(q)
            if isinstance(got, Tensor) and got.numel() == 1:
                got = got.item()
            if isinstance(got, bool) or not isinstance(got, (int, float)):
                raise CheckFailed(f"count_macs(params) must return one number (an int); got {type(got).__name__}")
            if got != want:
                raise CheckFailed(
                    f"count_macs gives {got} for {what}; a dense layer that skips removed neurons needs "
                    f"{want} = alive neurons x (784 inputs + 10 outputs)"
                )
        return f"counts {_macs(p):,} multiply-accumulates for the full model, fewer per removed neuron only"

    runner.run("returns new parameters", c_returns)
    runner.run("fraction 0 keeps the model", c_zero)
    runner.run("removes whole neurons", c_whole)
    runner.run("nested removals", c_nested)
    runner.run("least relevant first", c_least)
    runner.run("rejects bad fraction", c_bad)
    runner.run("neuron_scores", c_scores)
    runner.run("count_macs", c_macs)
    if verbose:
        print(report)
    return report
