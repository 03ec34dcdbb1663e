"""Command line: ``python -m varhyper_mini study|merge|wine|choosing|grade ...``.

Bad input ends with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .data import DataNotFoundError
from .experiments.study.config import PRESETS

__all__ = ["main"]


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected --shard i/n, e.g. 1/4, got {text!r}") from None
    return i, n


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m varhyper_mini", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("study", help="run (or resume) a pruning study")
    s.add_argument("dataset", help="mnist or cifar10")
    s.add_argument("--preset", default="paper", help="; ".join(f"{', '.join(p)} ({d})" for d, p in PRESETS.items()))
    s.add_argument("--out", type=Path, help="output folder (default: results/<dataset>)")
    s.add_argument("--data-root", help="data folder (default: $VARHYPER_DATA or the user cache)")
    s.add_argument("--shard", type=_shard, help="run only shard i of n (then use `merge`)")
    s.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    s.add_argument("--implementations", type=lambda t: tuple(t.split(",")), help="comma-separated names")
    s.add_argument("--lams", type=_floats, help="lambda grid, comma-separated")
    s.add_argument("--lam-range", type=_floats, help="lo,hi of the lambda prior")
    s.add_argument("--fractions", type=_floats, help="pruning fractions, comma-separated")
    s.add_argument("--input-range", type=_floats, help="MNIST pixels mapped onto lo,hi: -1,1 (authors' code) or 0,1")
    s.add_argument("--scopes", type=lambda t: tuple(t.split(",")), help="pruning scopes: layer,global")
    s.add_argument("--corrections", type=lambda t: tuple(t.split(",")), help="bias corrections: none,bias")
    int_settings = ["runs", "epochs", "batch-size", "lam-samples", "n-pieces", "train-subset", "test-subset",
                    "seed", "max-group", "mc-samples"]  # fmt: skip
    float_settings = ["lr", "prior-var", "init-log-sigma", "width"]
    for name, typ in [(n, int) for n in int_settings] + [(n, float) for n in float_settings]:
        s.add_argument(f"--{name}", type=typ)
    s.add_argument("--checkpoints", action="store_true", help="also save each trained model (not committed)")
    s.add_argument("--quiet", action="store_true", help="no progress bars")

    m = sub.add_parser("merge", help="combine job files into pruning.csv and provenance.json")
    m.add_argument("out", type=Path, help="the study's output folder")

    w = sub.add_parser("wine", help="run the Wine experiment (Figure 3, Theorem 2) and write its results")
    w.add_argument("--out", type=Path, help="output folder (default: results/wine)")
    w.add_argument("--runs", type=int, help="independent runs (paper: 5)")
    w.add_argument("--epochs", type=int, help="epochs per model (paper: 200)")
    w.add_argument("--quiet", action="store_true", help="no progress bars")

    c = sub.add_parser("choosing", help="run the cost study of chapter 08 (hypernetwork vs direct models)")
    c.add_argument("--preset", default="cpu", help="cpu (the committed study) or quick")
    c.add_argument("--out", type=Path, help="output folder (default: results/choosing)")
    c.add_argument("--data-root", help="data folder (default: $VARHYPER_DATA or the user cache)")
    c.add_argument("--quiet", action="store_true", help="no progress bars")

    g = sub.add_parser(
        "grade",
        help="grade a solution file, or a class: several files or folders of .py files",
        description=(
            "Grade assignment solutions. One file: a report per assignment it answers; exit status 0 when "
            "every check passed, 1 when some failed or were not graded, 2 when the file cannot be graded. "
            "Several files or a FOLDER (its .py files, one per student): a table with one row per submission "
            "and a column per check, a class summary, and with --csv the same table as CSV; a submission "
            "that fails to import is reported on its own row. Exit status 0 when every submission passed, "
            "1 when any failed or could not be graded, 2 when there is nothing to grade."
        ),
    )
    g.add_argument("solution", type=Path, nargs="+", help="the student's .py file(s), or folder(s) of them")
    g.add_argument("--target", default="mnist", help="target model for assignment 1: wine or mnist")
    g.add_argument("--csv", type=Path, help="also write the class table to this CSV file")
    return p


def _study(args: argparse.Namespace) -> int:
    from .experiments.study import preset, run_study

    overrides = {
        k: getattr(args, k)
        for k in (
            "implementations",
            "lams",
            "lam_range",
            "fractions",
            "runs",
            "epochs",
            "batch_size",
            "lam_samples",
            "n_pieces",
            "train_subset",
            "test_subset",
            "seed",
            "max_group",
            "lr",
            "prior_var",
            "init_log_sigma",
            "input_range",
            "scopes",
            "corrections",
            "mc_samples",
            "width",
        )  # fmt: skip
    }
    for key in ("lams", "lam_range"):
        vals = overrides.get(key)
        if vals is not None and any(v <= 0 for v in vals):
            raise ValueError(f"--{key.replace('_', '-')} must be positive, got {','.join(map(str, vals))}")
    cfg = preset(args.dataset, args.preset, **overrides)
    out = args.out or Path("results") / args.dataset
    command = "python -m varhyper_mini " + " ".join(args.argv)
    summary = run_study(cfg, out, args.data_root, args.shard, args.device, command, not args.quiet, args.checkpoints)
    print(f"{summary['ran']} jobs ran, {summary['skipped']} already done, {summary['total']} in all -> {out}")
    if args.shard is None:
        print(f"wrote {out / 'pruning.csv'} and {out / 'provenance.json'}")
    else:
        print(f"shard done; when all shards are in {out}, run: python -m varhyper_mini merge {out}")
    return 0


def _wine(args: argparse.Namespace) -> int:
    import dataclasses

    from .experiments import wine
    from .provenance import check_output_folder, git_commit

    overrides = {k: getattr(args, k) for k in ("runs", "epochs") if getattr(args, k) is not None}
    cfg = dataclasses.replace(wine.WineConfig(), **overrides)
    cfg.validate()
    out = check_output_folder(args.out or wine.results_dir())  # before the training, which takes minutes
    command = "python -m varhyper_mini wine" + "".join(f" --{k} {v}" for k, v in overrides.items())
    command += f" --out {out}" if args.out else ""
    commit = git_commit()  # the code that runs, even if the checkout changes meanwhile
    results = wine.run_wine_experiment(cfg, progress=not args.quiet)
    note = "the paper's settings" if not overrides else f"settings changed from the paper's: {overrides}"
    paths = wine.write_results(results, out, note=note, command=command, git_commit=commit)
    print(f"{results.seconds['total']:.0f} s; wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _choosing(args: argparse.Namespace) -> int:
    from .selection import COST_PRESETS, run_cost_study

    if args.preset not in COST_PRESETS:
        raise ValueError(f"unknown --preset {args.preset!r}; choose one of {', '.join(COST_PRESETS)}")
    out = args.out or Path("results") / "choosing"
    command = "python -m varhyper_mini " + " ".join(args.argv)
    paths = run_cost_study(out, COST_PRESETS[args.preset], args.data_root, progress=not args.quiet, command=command)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _data_advice(err: DataNotFoundError) -> str:
    """The missing-data error in one line, with the command line's ways to fix it."""
    if err.problem is None:
        return str(err)
    return (
        f"{err.problem}. Put the files there, or pass --data-root (or set VARHYPER_DATA) to a folder that holds "
        "them; or run once where there is internet, without VARHYPER_NO_DOWNLOAD=1, to download them."
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    args.argv = argv  # recorded as the command in provenance, also when called from Python
    try:
        if args.command == "study":
            return _study(args)
        if args.command == "wine":
            return _wine(args)
        if args.command == "choosing":
            return _choosing(args)
        if args.command == "grade":
            from .grading import grade_cli

            return grade_cli(args.solution, target=args.target, csv_path=args.csv)
        if args.command == "merge":
            from .experiments.study import merge

            df = merge(args.out)
            print(f"merged {len(df)} rows into {args.out / 'pruning.csv'}")
            return 0
    except DataNotFoundError as err:
        print(f"error: {_data_advice(err)}", file=sys.stderr)
        return 2
    except (ValueError, PermissionError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished jobs are kept; run the same command to resume", file=sys.stderr)
        return 130
    return 2
