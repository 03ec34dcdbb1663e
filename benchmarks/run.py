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
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

import varhyper_mini as vh
from varhyper_mini import models

HERE = Path(__file__).resolve().parent


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
            loss = F.cross_entropy(target(x), y)
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


def bench_models_batching(data, repeats: int, m: int = 25, epochs: int = 2) -> list[dict]:
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
    p.add_argument("--only", nargs="*", help="bench groups: mlp cnn lambda models data")
    args = p.parse_args(argv)
    quick = args.quick or vh.quick_mode()
    groups = set(args.only or ["mlp", "cnn", "lambda", "models", "data"])
    reps = 2 if quick else 5
    rows: list[dict] = []
    mnist = vh.data.mnist(train=True, subset=None if not quick else 4096)
    if "mlp" in groups:
        rows += bench_training("mnist-mlp", models.mnist_mlp, mnist, 256, 8 if quick else 40, reps)
    if "lambda" in groups:
        rows += bench_lambda_batching(mnist, 256, 8 if quick else 40, reps)
    if "cnn" in groups:
        cifar = vh.data.cifar10(train=True)
        rows += bench_training("cifar-cnn", models.cifar_cnn, cifar, 256 if not quick else 32, 2 if quick else 4,
                               reps if not quick else 1, ks=(1,) if quick else (1, 5))  # fmt: skip
    if "models" in groups:
        rows += bench_models_batching(None, 1 if quick else 3, m=5 if quick else 25, epochs=1 if quick else 2)
    if "data" in groups:
        rows += bench_loading(reps)
    result = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "quick": quick,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "processor": platform.processor(),
        },
        "rows": rows,
    }
    if not quick:
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2))
        os.replace(tmp, args.out)
    for r in rows:
        extra = f"ratio {r['ratio']:.2f}" if "ratio" in r else ""
        t = r.get("seconds_per_step", r.get("seconds"))
        print(f"{r['bench']:<16} {r['variant']:<42} {t * 1e3:10.2f} ms  {extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
