"""One execution spec (issue 17, item 3): declared once, composed by submit's and the study's specs, filled by one
block of click options, and what ``evaluate`` takes."""

from __future__ import annotations

from typing import Any

import click
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from qmae_qiskit.cli.options import execution_options, execution_spec
from qmae_qiskit.cli.spellings import QMAECommand
from qmae_qiskit.evaluate.submit import SubmitOptions
from qmae_qiskit.hardware.spec import ExecutionSpec, QPUBudget
from qmae_qiskit.study.noise import StudySpec


def _parsed(args: list[str], **block: Any) -> ExecutionSpec:
    """The ExecutionSpec a command with ``execution_options(**block)`` builds from ``args``."""
    seen: list[ExecutionSpec] = []

    @click.command()
    @execution_options(**block)
    def cmd(**params: Any) -> None:
        seen.append(execution_spec(params))
        assert not params  # every execution option went into the spec

    res = CliRunner().invoke(cmd, args)
    assert res.exit_code == 0, res.output
    return seen[0]


def test_the_option_block_fills_the_spec():
    args = ["--backend", "fake_manila", "--shots", "100", "--transpiler-seed", "5", "--simulator-seed", "6"]
    args += ["--mask-seed", "7", "--optimization-level", "2", "--fidelity-circuit", "inverse", "--loader", "ladder:2"]
    args += ["--estimator-options", "resilience_level=1", "--readout-mitigation", "mthree"]
    args += ["--dry-run", "--max-qpu-seconds", "60", "--price-per-second", "0.5"]
    args += ["--idle-zz", "2000", "--idle-detuning", "300", "--placement", "noise-aware", "--rep-delay", "1e-4"]
    args += ["--task-seeds", "shared"]
    spec = _parsed(args)
    assert spec.budget == QPUBudget(dry_run=True, max_qpu_seconds=60, price_per_second=0.5)
    assert spec.model_dump(exclude={"mitigation", "budget"}) == {
        "backend": "fake_manila",
        "noise_model": None,
        "shots": 100,
        "fidelity_circuit": "inverse",
        "loader": "ladder:2",
        "optimization_level": 2,
        "seed_transpiler": 5,
        "seed": 6,
        "mask_seed": 7,
        "idle_zz_hz": 2000.0,
        "idle_detuning_hz": 300.0,
        "idle_relaxation": True,
        "task_seeds": "shared",
        "rep_delay": 1e-4,
        "placement": "noise-aware",
    }
    assert spec.mitigation.estimator == {"resilience_level": 1} and spec.mitigation.readout == "mthree"
    assert _parsed([]) == ExecutionSpec()  # the block's defaults are the spec's


def test_old_execution_spellings_fill_the_same_spec():
    new = _parsed(["--transpiler-seed", "3", "--simulator-seed", "4"])
    cmd_args = ["--seed-transpiler", "3", "--seed-simulator", "4"]

    @click.command(cls=QMAECommand)
    @execution_options()
    def cmd(**params: Any) -> None:
        click.echo(repr(execution_spec(params) == new))

    res = CliRunner().invoke(cmd, cmd_args)
    assert res.exit_code == 0 and res.stdout.strip() == "True", res.output
    assert "--seed-transpiler is deprecated" in res.stderr and "--seed-simulator is deprecated" in res.stderr


def test_composed_specs_are_flat_outside_and_strict():
    study = StudySpec(run="r", backend="fake_manila", samples=3, loader="ladder:4")
    assert study.execution.loader == "ladder:4" and study.execution.shots == 4000  # the study's own default
    assert study.model_dump()["backend"] == "fake_manila" and "execution" not in study.model_dump()
    assert StudySpec.model_validate(study.model_dump()) == study
    assert study.with_execution(loader=None).execution.loader is None
    with pytest.raises(ValidationError, match="bogus"):
        StudySpec(run="r", backend="fake_manila", bogus=1)
    with pytest.raises(ValidationError, match="bogus"):
        ExecutionSpec(bogus=1)
    with pytest.raises(ValidationError, match="optimization_level"):
        ExecutionSpec(optimization_level=4)
    sub = SubmitOptions(run="r", samples=2, execution=ExecutionSpec(backend="fake_manila", shots=8))
    assert sub.execution.shots == 8 and sub.shots == 8
    with pytest.raises(ValidationError, match="shots"):
        SubmitOptions(run="r", samples=2, execution=ExecutionSpec(backend="fake_manila"))
    assert SubmitOptions(run="r", samples=2, backend="b", shots=8).execution.seed is None  # submit: no seed


def test_the_qpu_budget_is_part_of_the_spec_and_left_out_of_records_at_its_default():
    """--dry-run, --max-qpu-seconds, --price-per-second live in ExecutionSpec.budget; a record keeps the budget only
    when one was set (as records written before it), and reads back the same either way."""
    study = StudySpec(run="r", backend="fake_manila", samples=3)
    assert "budget" not in study.model_dump() and study.budget == QPUBudget()
    capped = study.with_execution(budget=QPUBudget(max_qpu_seconds=30))
    assert capped.model_dump()["budget"]["max_qpu_seconds"] == 30
    assert StudySpec.model_validate(capped.model_dump()) == capped
    assert capped.with_execution(loader="ladder:2").budget.max_qpu_seconds == 30  # kept through a copy
    with pytest.raises(ValidationError, match="max_qpu_seconds"):
        ExecutionSpec(budget={"max_qpu_seconds": 0})
    assert ExecutionSpec(backend="fake_manila").on_planned_backend().backend == "fake_manila"  # no dry run


def test_evaluate_takes_the_spec_and_records_its_loader(mnist_dir, tmp_path):
    """evaluate(run, ExecutionSpec, EvalOptions) -> EvalResult, written as is; the loader is recorded when set."""
    import json
    from pathlib import Path

    from qmae_qiskit.evaluate.evaluation import EvalOptions, EvalResult, evaluate

    run = Path(__file__).resolve().parents[1] / "results" / "hardware" / "qmae-L4"
    opts = EvalOptions(limit=3, data_dir=str(mnist_dir), use_classifier=False, baselines=False)
    tree = evaluate(run, ExecutionSpec(), opts, out=tmp_path / "tree.json")
    ladder = evaluate(run, ExecutionSpec(loader="ladder:2"), opts, out=tmp_path / "ladder.json")
    assert isinstance(tree, EvalResult) and json.loads((tmp_path / "tree.json").read_text()) == tree.to_json()
    assert "loader" not in tree.to_json() and ladder.to_json()["loader"] == "ladder:2"
    assert ladder.metrics["fidelity"]["mean"] != tree.metrics["fidelity"]["mean"]  # another circuit ran
