"""`reproduce --seeds N`: every number of the multi-seed Table 1 equals a recomputation from the runs' eval.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from scipy import stats as sps

from qmae_qiskit.cli import main

pytestmark = pytest.mark.timeout(900)
METRICS = ("fidelity", "cs", "ssim", "accuracy")


def _interval(values: list[float]) -> tuple[float, list[float]]:
    n, mean = len(values), sum(values) / len(values)
    half = sps.t.ppf(0.975, n - 1) * math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / math.sqrt(n)
    return mean, [mean - half, mean + half]


def _check(stat: dict, values: list[float]) -> None:
    mean, ci = _interval(values)
    assert stat["n"] == len(values)
    assert stat["mean"] == pytest.approx(mean, abs=1e-12) and stat["ci95"] == pytest.approx(ci, abs=1e-12)


def test_scheduler_without_seeds_is_one_line(tmp_path):
    # --workers alone is the single-seed pool's size; a scheduler only serves --seeds
    res = CliRunner().invoke(main, ["reproduce", "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "--seeds" in res.output
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_two_seeds_table_matches_the_runs(tmp_path, mnist_dir):
    out = tmp_path / "seeds"
    args = ["reproduce", "--seeds", "2", "--epochs", "1", "--train-images", "64", "--images", "50"]
    args += ["--classifier-epochs", "1", "--classifier-train-images", "100", "--workers", "2", "--out", str(out)]
    res = CliRunner().invoke(main, [*args, "--data-dir", str(mnist_dir)])
    assert res.exit_code == 0, res.output
    table = json.loads((out / "table1.json").read_text())
    ev = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/eval.json")}
    assert set(ev) == {f"{r}-s{s}" for r in ("qmae-m25", "qae-m25", "qmae-m12.5", "qmae-m50") for s in (0, 1)}
    for s in (0, 1):  # seed s trains with seed s and is judged by classifier seed s
        cfg = json.loads((out / f"qae-m25-s{s}" / "config.json").read_text())["settings"]
        assert cfg["seed"] == s and Path(ev[f"qae-m25-s{s}"]["classifier"]["path"]).name == f"L16-c{s}"
        assert json.loads((out / "classifiers" / f"L16-c{s}" / "classifier.json").read_text())["seed"] == s
    for run in ("qmae-m25", "qae-m25", "qmae-m12.5", "qmae-m50"):
        for m in METRICS:
            _check(table["runs"][run][m], [ev[f"{run}-s{s}"]["metrics"][m]["mean"] for s in (0, 1)])
    for m in METRICS:
        diffs = [ev[f"qmae-m25-s{s}"]["metrics"][m]["mean"] - ev[f"qae-m25-s{s}"]["metrics"][m]["mean"] for s in (0, 1)]
        _check(table["qmae_minus_qae"][m], diffs)
    # baselines vary with the classifier seed only: accuracy over the two classifiers
    acc = [ev[f"qmae-m25-s{s}"]["baselines"]["masked"]["accuracy"]["mean"] for s in (0, 1)]
    assert table["baselines"]["0.25"]["masked"]["accuracy"]["mean"] == pytest.approx(sum(acc) / 2, abs=1e-12)
    assert any("QMAE - QAE accuracy" in c for c in table["claims"])
    assert "Table 1 over 2 seeds" in (out / "table1.md").read_text()
