"""The benchmark harness runs (a smoke test: quick mode measures nothing it keeps)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)


def test_quick_bench_runs_and_never_writes(tmp_path, capsys, data_root):  # the layout group reads CIFAR-10
    out = tmp_path / "results.json"
    assert bench.main(["--quick", "--only", "layout", "study", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "cifar-cnn layout" in printed and "study mnist --preset paper" in printed
    assert not out.exists()  # quick runs are smoke tests, never results


def test_unknown_group_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--only", "gpu"])
    assert "unknown bench group" in capsys.readouterr().err


def test_measure_reports_median_and_spread():
    calls = []
    r = bench.measure(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and r["repeats"] == 3 and r["min"] <= r["median"] <= r["max"]


def test_measure_paired_alternates_and_takes_the_ratio_of_medians():
    order = []
    r = bench.measure_paired(lambda: order.append("a"), lambda: order.append("b"), repeats=3, warmup=1)
    assert order == ["b", "a"] * 4  # warm-up pair, then base and fn in turn
    assert r["ratio"] == pytest.approx(r["median"] / r["base_median"])
