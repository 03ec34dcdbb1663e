"""Benchmarks: ``make bench`` (``python benchmarks/run.py``).

Each measurement warms up, repeats, and reports the median and the spread (min-max) of the
repeats. Ratios are taken between measurements made in the same run, since absolute times on a
shared machine drift. Results go to ``benchmarks/results.json`` and a table is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

import varhyper_mini as vh
from varhyper_mini import models
from varhyper_mini.provenance import git_commit  # the commit, marked +dirty when the package has changes

HERE = Path(__file__).resolve().parent
EPOCH_STEPS = 235  # batches of 256 in one MNIST epoch (60,000 images)
GROUPS = ("mlp", "lambda", "cnn", "layout", "models", "data", "study", "peers", "wall")


def measure(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> dict:
    """Median and spread of ``repeats`` timed calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "repeats": repeats}


def measure_paired(fn: Callable[[], object], base: Callable[[], object], repeats: int = 5, warmup: int = 1) -> dict:
    """``fn`` and ``base`` timed alternately, so that both see the same machine; ratio of medians.

    On a shared machine the speed drifts between minutes; interleaving the two keeps the ratio
    honest where two separate measurements would not.
    """
    for _ in range(warmup):
        base()
        fn()
    ta, tb = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        base()
        tb.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fn()
        ta.append(time.perf_counter() - t0)
    med_a, med_b = statistics.median(ta), statistics.median(tb)
    return {"median": med_a, "min": min(ta), "max": max(ta), "repeats": repeats, "base_median": med_b,
            "ratio": med_a / med_b}  # fmt: skip


def first_batches(data: vh.TensorData, steps: int, batch: int, g: torch.Generator):
    """The first ``steps`` shuffled batches (x, y) of ``data``, drawn with ``g``."""
    for _, idx in zip(range(steps), vh.data.batches(len(data), batch, g)):
        yield data.x[idx], data.y[idx]


def plain_steps(target: torch.nn.Module, data: vh.TensorData, steps: int, batch: int) -> Callable[[], None]:
    """A plain deterministic module trained with Adam: the baseline step."""
    opt = torch.optim.Adam(target.parameters(), lr=5e-4)
    g = torch.Generator().manual_seed(0)

    def run() -> None:
        for x, y in first_batches(data, steps, batch, g):
            if data.augment is not None:
                x = data.augment(x, g)
            # The same memory layout as the package's training step, so that the ratio compares like with like.
            loss = F.cross_entropy(target(vh.hypernets.channels_last(x)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return run


def hyper_steps(make_target, kind: str, loss: str, k: int, data, steps: int, batch: int, m: int = 1):
    """``steps`` training steps of ``m`` hypernetworks of one kind through ``train_many``."""
    sub = data if steps * batch >= len(data) else data.take(torch.arange(steps * batch))
    target = make_target()
    variational = loss != "base"
    make = {
        "direct": lambda: vh.ConstantHypernet(target, variational=variational),
        "linear": lambda: vh.LinearHypernet(target, variational=variational),
        "piecewise": lambda: vh.PiecewiseLinearHypernet(target, variational=variational),
    }[kind]
    nets = [make() for _ in range(m)]
    if kind == "direct" and k == 1:
        kw = {"lams": [1.0] * m}
    else:
        kw = {"lam_prior": vh.LogUniform(1e-3, 1e2), "lam_samples": k}

    def run() -> None:
        vh.train_many(nets, target, sub, loss, epochs=1, batch_size=batch, progress=False, **kw)

    return run


def bench_training(name: str, make_target, data, batch: int, steps: int, repeats: int, ks=(1, 5)) -> list[dict]:
    """Every implementation's ``train_many`` step, each timed alternately with the plain step."""
    rows = []
    plain_fn = plain_steps(make_target(), data, steps, batch)
    plain = measure(plain_fn, repeats)
    base = plain["median"] / steps
    rows.append({"bench": f"{name} step", "variant": "plain module", "seconds_per_step": base, "ratio": 1.0,
                 "samples_per_s": batch / base, **plain})  # fmt: skip
    for loss in ("variational", "covariance", "base"):
        for kind in ("direct", "linear", "piecewise"):
            for k in ks:
                if kind == "direct" and k > 1:
                    continue
                r = measure_paired(hyper_steps(make_target, kind, loss, k, data, steps, batch), plain_fn, repeats)
                per = r["median"] / steps
                rows.append({"bench": f"{name} step", "variant": f"{loss}-{kind}, k={k}", "seconds_per_step": per,
                             "ratio_per_k": r["ratio"] / k, "samples_per_s": batch / per, **r})  # fmt: skip
    return rows


def hand_composed_steps(data: vh.TensorData, steps: int, batch: int) -> Callable[[], None]:
    """The step chapter 3 teaches, from the public pieces: hyper(lam) -> sample -> forward -> loss."""
    target = models.mnist_mlp()
    hyper = vh.LinearHypernet(target)
    opt = torch.optim.Adam(hyper.parameters(), lr=5e-4)
    prior = vh.LogUniform(1e-3, 1e2)
    g = torch.Generator().manual_seed(0)

    def run() -> None:
        for x, y in first_batches(data, steps, batch, g):
            lam = float(prior.sample(1, g))
            q = hyper(lam)
            nll = F.cross_entropy(vh.functional_forward(target, q.sample(g), x), y)
            loss = vh.losses.variational(nll, q, lam, n_train=len(data))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return run


def eager_floor_steps(data: vh.TensorData, steps: int, batch: int) -> Callable[[], None]:
    """The least a variational direct step does in eager PyTorch, written by hand: the floor.

    One flat mean and log sigma, one noise draw, the reparametrised weights through the plain
    module, the closed-form KL, gradient clipping and fused Adam; nothing else.
    """
    target = models.mnist_mlp()
    spec = vh.gaussian.ParamSpec.from_module(target)
    mean = torch.nn.Parameter(spec.flatten({n: p.detach() for n, p in target.named_parameters()}).clone())
    log_sigma = torch.nn.Parameter(torch.full_like(mean, -3.0))
    opt = torch.optim.Adam([mean, log_sigma], lr=5e-4, fused=True)
    g = torch.Generator().manual_seed(0)
    n_train = len(data)

    def run() -> None:
        for x, y in first_batches(data, steps, batch, g):
            sigma = torch.exp(log_sigma)
            w = torch.addcmul(mean, sigma, torch.randn(mean.shape, generator=g))
            nll = F.cross_entropy(torch.func.functional_call(target, spec.unflatten(w), (x,)), y)
            kl = -0.5 * mean.numel() - log_sigma.sum() + 0.5 * (sigma * sigma + mean * mean).sum()
            opt.zero_grad(set_to_none=True)
            (nll + kl / n_train).backward()
            mean.grad.clamp_(-1.0, 1.0)
            log_sigma.grad.clamp_(-1.0, 1.0)
            opt.step()

    return run


def bench_steps_by_hand(data, batch: int, steps: int, repeats: int) -> list[dict]:
    """The hand-composed public step and the eager floor, each timed alternately with the plain step."""
    plain_fn = plain_steps(models.mnist_mlp(), data, steps, batch)
    rows = []
    for variant, fn in (
        ("hand-composed public step (chapter 3), variational-linear, k=1", hand_composed_steps(data, steps, batch)),
        ("eager floor: a variational direct step by hand, k=1", eager_floor_steps(data, steps, batch)),
    ):
        r = measure_paired(fn, plain_fn, repeats)
        rows.append({"bench": "mnist-mlp step", "variant": variant, "seconds_per_step": r["median"] / steps, **r})
    return rows


def bench_peers(data, batch: int, steps: int, repeats: int) -> list[dict]:
    """bayesian-torch's reparametrised MLP against ``vh.train``'s variational direct model.

    The same 784-50-10 network, batch, initial sigma (exp(-3)), KL / N and Adam; each timed
    alternately with the plain step. Needs the ``bench`` extra (``pip install -e ".[bench]"``).
    """
    try:
        from bayesian_torch.layers import LinearReparameterization
    except ImportError:
        print("peers: bayesian-torch is not installed (pip install -e '.[bench]'); group skipped", flush=True)
        return []
    import math

    import bayesian_torch

    rho = math.log(math.expm1(math.exp(-3.0)))  # softplus(rho) = sigma = exp(-3), as our init_log_sigma=-3

    class BayesMLP(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = LinearReparameterization(784, 50, posterior_rho_init=rho)
            self.fc2 = LinearReparameterization(50, 10, posterior_rho_init=rho)

        def forward(self, x):
            h, kl1 = self.fc1(x.flatten(1))
            out, kl2 = self.fc2(torch.relu(h))
            return out, kl1 + kl2

    model = BayesMLP()
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, fused=True)
    g = torch.Generator().manual_seed(0)
    n_train = len(data)

    def peer() -> None:
        for x, y in first_batches(data, steps, batch, g):
            out, kl = model(x)
            loss = F.cross_entropy(out, y) + kl / n_train
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_value_(model.parameters(), 1.0)
            opt.step()

    plain_fn = plain_steps(models.mnist_mlp(), data, steps, batch)
    ours_fn = hyper_steps(models.mnist_mlp, "direct", "variational", 1, data, steps, batch)
    version = getattr(bayesian_torch, "__version__", "0.5")
    rows = []
    for variant, fn in ((f"bayesian-torch {version} LinearReparameterization MLP", peer),
                        ("varhyper_mini vh.train, variational-direct, k=1", ours_fn)):  # fmt: skip
        r = measure_paired(fn, plain_fn, repeats)
        rows.append({"bench": "peer step", "variant": variant, "seconds_per_step": r["median"] / steps, **r})
    head = measure_paired(ours_fn, peer, repeats)
    rows.append({"bench": "peer step", "variant": "varhyper_mini against bayesian-torch (ratio < 1: faster)",
                 "seconds_per_step": head["median"] / steps, **head})  # fmt: skip
    return rows


def bench_lambda_batching(data, batch: int, steps: int, repeats: int, k: int = 5) -> list[dict]:
    """k lambda samples batched under vmap against a Python loop of k single-sample steps."""
    batched = measure(hyper_steps(models.mnist_mlp, "piecewise", "variational", k, data, steps, batch), repeats)
    single = measure(hyper_steps(models.mnist_mlp, "piecewise", "variational", 1, data, steps, batch), repeats)
    loop = single["median"] * k  # k separate forward/backward passes cost k single-sample steps
    return [
        {
            "bench": "lambda batching",
            "variant": f"k={k} batched vs loop of {k}",
            "seconds_per_step": batched["median"] / steps,
            "ratio": loop / batched["median"],
            **batched,
        }
    ]


def bench_models_batching(repeats: int, m: int = 25, epochs: int = 2) -> list[dict]:
    """Wine: train_many over m direct models against a Python loop of train (batch size 1)."""
    train, _ = vh.data.wine()
    lams = [10.0 ** (2 + i % 5) for i in range(m)]

    def many() -> None:
        t = models.wine_logreg()
        vh.train_many([vh.ConstantHypernet(t) for _ in range(m)], t, train, lams=lams, seeds=list(range(m)),
                      epochs=epochs, batch_size=1, progress=False)  # fmt: skip

    def loop() -> None:
        t = models.wine_logreg()
        for i in range(m):
            vh.train(vh.ConstantHypernet(t), t, train, lam=lams[i], seed=i, epochs=epochs, batch_size=1,
                     progress=False)  # fmt: skip

    a, b = measure(many, repeats, 0), measure(loop, max(1, repeats // 2), 0)
    return [{"bench": "wine models", "variant": f"train_many over {m} models vs loop", "seconds": a["median"],
             "loop_seconds": b["median"], "ratio": b["median"] / a["median"], **a}]  # fmt: skip


def bench_layout(data, batch: int, steps: int, repeats: int) -> list[dict]:
    """The CIFAR-10 CNN's plain training step with standard (NCHW) against channels-last input."""
    rows = []
    base = None
    for layout in ("contiguous (NCHW)", "channels-last"):
        target = models.cifar_cnn()
        opt = torch.optim.Adam(target.parameters(), lr=5e-4)
        x = data.x[:batch]
        x = vh.hypernets.channels_last(x) if layout == "channels-last" else x.contiguous()
        y = data.y[:batch]

        def run(target=target, opt=opt, x=x, y=y) -> None:
            for _ in range(steps):
                loss = F.cross_entropy(target(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

        r = measure(run, repeats)
        per = r["median"] / steps
        base = per if base is None else base
        rows.append({"bench": "cifar-cnn layout", "variant": f"plain step, {layout}, batch {batch}",
                     "seconds_per_step": per, "ratio": per / base,
                     "seconds_per_epoch_50k": per * 50_000 / batch, **r})  # fmt: skip
    return rows


def bench_wall(commands: dict[str, list[str]]) -> list[dict]:
    """Wall time of whole commands (run once each, in a subprocess, from the repository root)."""
    rows = []
    for name, cmd in commands.items():
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed (exit {proc.returncode}); its output ends:\n{proc.stdout[-2000:]}")
        rows.append({"bench": "wall", "variant": name, "seconds": seconds, "command": " ".join(cmd)})
    return rows


def bench_study_record() -> list[dict]:
    """The committed full MNIST studies' own wall times, from their provenance (written by the study).

    With the load average the study saw at its start and end (near 0 at the start: timed alone),
    and the share of the time spent evaluating the pruning rules rather than training.
    """
    rows = []
    for name in ("mnist", "mnist-01"):
        path = HERE.parent / "results" / name / "provenance.json"
        if not path.exists():
            continue
        prov = json.loads(path.read_text())
        runs = prov.get("runs") or [prov]
        start = min(dt.datetime.fromisoformat(r["started"]) for r in runs)
        end = max(dt.datetime.fromisoformat(r["ended"]) for r in runs)
        jobs = prov.get("seconds_per_job", {}).values()
        # Training time is per group: each job of a group of g carries train / g of it.
        train = sum(j["train"] for j in jobs)
        evaluation = sum(j["eval"] for j in jobs)
        threads = runs[0].get("hardware", {}).get("torch_threads", "?")
        lo, hi = prov["config"].get("input_range", (-1, 1))
        rows.append({"bench": "wall", "variant": f"study mnist --preset paper, pixels in [{lo:g}, {hi:g}] "
                     f"({len(runs)} run(s), {threads} thread(s))", "seconds": (end - start).total_seconds(),
                     "train_seconds": train, "eval_seconds": evaluation,
                     "eval_share": evaluation / max(train + evaluation, 1e-9),
                     "load_average_start": runs[0].get("load_average_start"),
                     "load_average_end": runs[-1].get("load_average_end"),
                     "command": runs[0].get("command"), "git_commit": prov.get("git_commit")})  # fmt: skip
    return rows


def bench_loading(repeats: int) -> list[dict]:
    """An MNIST epoch through the package's loader against indexing a tensor already in memory."""
    t0 = time.perf_counter()
    data = vh.data.mnist(train=True)
    load = time.perf_counter() - t0
    g = torch.Generator().manual_seed(0)

    def epoch() -> None:
        for idx in vh.data.batches(len(data), 256, g):
            data.x[idx], data.y[idx]

    r = measure(epoch, repeats)
    return [
        {"bench": "mnist data", "variant": "one epoch of batches from memory", "seconds": r["median"], **r},
        {"bench": "mnist data", "variant": "loading the 60,000 images once", "seconds": load},
    ]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer steps and repeats (a smoke test)")
    p.add_argument("--out", type=Path, default=HERE / "results.json")
    p.add_argument("--only", nargs="*", help=f"bench groups: {' '.join(GROUPS)} (default: all but wall)")
    args = p.parse_args(argv)
    quick = args.quick or vh.quick_mode()
    groups = set(args.only or [g for g in GROUPS if g != "wall"])
    unknown = groups - set(GROUPS)
    if unknown:
        p.error(f"unknown bench group(s) {sorted(unknown)}; choose from {GROUPS}")
    reps = 2 if quick else 5
    load_start = os.getloadavg()
    need_mnist = groups & {"mlp", "lambda", "peers"}
    mnist = vh.data.mnist(train=True, subset=None if not quick else 4096) if need_mnist else None
    cifar = vh.data.cifar10(train=True) if groups & {"cnn", "layout"} else None
    make = ["make", "--no-print-directory"]
    runners: dict[str, Callable[[], list[dict]]] = {
        # Whole epochs over the 60,000 images: the same data, batches and memory traffic as a study.
        "mlp": lambda: (
            bench_training("mnist-mlp", models.mnist_mlp, mnist, 256, 8 if quick else EPOCH_STEPS, reps)
            + bench_steps_by_hand(mnist, 256, 8 if quick else EPOCH_STEPS, reps)
        ),
        "peers": lambda: bench_peers(mnist, 256, 8 if quick else EPOCH_STEPS, reps),
        "lambda": lambda: bench_lambda_batching(mnist, 256, 8 if quick else 40, reps),
        # A CNN step takes seconds on 2 cores: a smaller batch keeps the suite short; the ratios hold.
        "cnn": lambda: bench_training(
            "cifar-cnn",
            models.cifar_cnn,
            cifar,
            16 if quick else 64,
            2,
            1 if quick else 3,
            ks=(1,) if quick else (1, 5),
        ),  # fmt: skip
        "layout": lambda: bench_layout(cifar, 16 if quick else 64, 2, 1 if quick else 3),
        "models": lambda: bench_models_batching(
            None, 1 if quick else 3, m=5 if quick else 25, epochs=1 if quick else 2
        ),
        "data": lambda: bench_loading(reps),
        "study": bench_study_record,
        # About half an hour: the README's two commands, each run once.
        # `make clean book`: a build from scratch, since Sphinx skips unchanged pages otherwise.
        "wall": lambda: bench_wall(
            {"make test": [*make, "test"], "make book (full mode, from scratch)": [*make, "clean", "book"]}
        ),
    }
    # Each group keeps its own record, so one group can be rerun without losing the others.
    stored = json.loads(args.out.read_text()) if args.out.exists() else {}
    stored = stored if "groups" in stored else {"groups": {}}
    for group in [g for g in GROUPS if g in groups]:
        t0 = time.perf_counter()
        rows = runners[group]()
        stored["groups"][group] = {
            "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name, *(argv if argv is not None else sys.argv)]),
            "git_commit": git_commit(),
            "quick": quick,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "machine": {
                "platform": platform.platform(),
                "cpu_count": os.cpu_count(),
                "processor": platform.processor(),
            },  # fmt: skip
            "load_average_start": load_start,
            "load_average_end": os.getloadavg(),
            "seconds": time.perf_counter() - t0,
            "rows": rows,
        }
        for r in rows:
            extra = f"ratio {r['ratio']:.2f}" if "ratio" in r else ""
            t = r.get("seconds_per_step", r.get("seconds"))
            print(f"{r['bench']:<18} {r['variant']:<58} {t * 1e3:12.2f} ms  {extra}", flush=True)
        if not quick:  # quick runs are smoke tests: they never overwrite measured results
            tmp = args.out.with_suffix(".tmp")
            tmp.write_text(json.dumps(stored, indent=2))
            os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
