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
from varhyper_mini.study import _git_commit  # the commit, marked +dirty when the package has changes

HERE = Path(__file__).resolve().parent
GROUPS = ("mlp", "lambda", "cnn", "layout", "models", "data", "study", "wall")


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


def plain_steps(target: torch.nn.Module, data: vh.TensorData, steps: int, batch: int) -> Callable[[], None]:
    """A plain deterministic module trained with Adam: the baseline step."""
    opt = torch.optim.Adam(target.parameters(), lr=5e-4)
    g = torch.Generator().manual_seed(0)

    def run() -> None:
        for i, idx in enumerate(vh.data.batches(len(data), batch, g)):
            if i == steps:
                break
            x, y = data.x[idx], data.y[idx]
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
    sub = data.take(torch.arange(min(len(data), steps * batch)))
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
    rows = []
    plain = measure(plain_steps(make_target(), data, steps, batch), repeats)
    base = plain["median"] / steps
    rows.append({"bench": f"{name} step", "variant": "plain module", "seconds_per_step": base, "ratio": 1.0,
                 "samples_per_s": batch / base, **plain})  # fmt: skip
    for loss in ("variational", "covariance", "base"):
        for kind in ("direct", "linear", "piecewise"):
            for k in ks:
                if kind == "direct" and k > 1:
                    continue
                r = measure(hyper_steps(make_target, kind, loss, k, data, steps, batch), repeats)
                per = r["median"] / steps
                rows.append({"bench": f"{name} step", "variant": f"{loss}-{kind}, k={k}", "seconds_per_step": per,
                             "ratio": per / base, "ratio_per_k": per / base / k, "samples_per_s": batch / per,
                             **r})  # fmt: skip
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
    """The committed full MNIST study's own wall time, from its provenance (written by the study)."""
    prov = json.loads((HERE.parent / "results" / "mnist" / "provenance.json").read_text())
    runs = prov.get("runs") or [prov]
    start = min(dt.datetime.fromisoformat(r["started"]) for r in runs)
    end = max(dt.datetime.fromisoformat(r["ended"]) for r in runs)
    shards = (
        f"{len(runs)} shard(s) side by side, {runs[0].get('hardware', {}).get('torch_threads', '?')} thread(s) each"
    )
    return [{"bench": "wall", "variant": f"mnist study, paper preset (committed run; {shards})",
             "seconds": (end - start).total_seconds(), "command": runs[0].get("command"),
             "git_commit": prov.get("git_commit")}]  # fmt: skip


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
    mnist = vh.data.mnist(train=True, subset=None if not quick else 4096) if groups & {"mlp", "lambda"} else None
    cifar = vh.data.cifar10(train=True) if groups & {"cnn", "layout"} else None
    make = ["make", "--no-print-directory"]
    runners: dict[str, Callable[[], list[dict]]] = {
        "mlp": lambda: bench_training("mnist-mlp", models.mnist_mlp, mnist, 256, 8 if quick else 40, reps),
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
            "git_commit": _git_commit(),
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
