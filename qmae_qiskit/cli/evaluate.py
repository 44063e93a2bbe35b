"""`qmae-qiskit evaluate RUN`: score a trained run (fidelity, CS, SSIM, accuracy) beside the no-circuit baselines."""

from __future__ import annotations

import json
from pathlib import Path

import click

from qmae_qiskit.cli.app import main
from qmae_qiskit.cli.options import execution_options, plan_printer, qpu_budget, qpu_options


@main.command("evaluate")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Score only the first N images of the split.")
@execution_options
@qpu_options
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="MNIST folder [default: the one the run was trained on].",
)
@click.option(
    "--classifier",
    "classifier_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Classifier folder [default: classifier/ beside the run, else runs/classifier].",
)
@click.option("--no-classifier", is_flag=True, help="Skip the accuracy column.")
@click.option(
    "--baselines/--no-baselines",
    default=True,
    show_default=True,
    help="Also score the no-circuit fills on the same images and masks.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the result [default: RUN/eval.json].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table.")
def evaluate_cmd(
    run: Path,
    split: str,
    limit: int | None,
    backend: str,
    noise_model: str | None,
    shots: int | None,
    estimator_options: str | None,
    readout_mitigation: str,
    fidelity_circuit: str,
    optimization_level: int,
    seed_transpiler: int,
    mask_seed: int,
    seed: int,
    dry_run: bool,
    max_qpu_seconds: float | None,
    price_per_second: float,
    data_dir: Path | None,
    classifier_dir: Path | None,
    no_classifier: bool,
    baselines: bool,
    out: Path | None,
    as_json: bool,
) -> None:
    """Evaluate the trained run in RUN on a split and write eval.json."""
    from qmae_qiskit.evaluate.evaluation import EVAL_FILE, evaluate
    from qmae_qiskit.evaluate.scoring import format_table
    from qmae_qiskit.hardware.mitigation import parse_mitigation

    mitigation = parse_mitigation(estimator_options, readout_mitigation)
    result = evaluate(
        run,
        split=split,
        limit=limit,
        backend=backend,
        shots=shots,
        data_dir=data_dir,
        classifier_dir=classifier_dir,
        use_classifier=not no_classifier,
        baselines=baselines,
        mask_seed=mask_seed,
        seed=seed,
        out=out,
        noise_model=noise_model,
        mitigation=mitigation,
        fidelity_circuit=fidelity_circuit,
        optimization_level=optimization_level,
        seed_transpiler=seed_transpiler,
        budget=qpu_budget(dry_run, max_qpu_seconds, price_per_second),
        say=plan_printer(dry_run and not as_json),
    )
    if result.get("dry_run"):
        if as_json:
            click.echo(json.dumps(result["qpu_plan"], indent=2))
        click.echo("dry run: nothing run, nothing written", err=as_json)
        return
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    where = result["executor"].get("name", backend)
    extra = f", {result['shots']} shots, {result['mitigation']}" if result["shots"] else ""
    click.echo(
        f"{result['model'].upper()} {run}: {result['n_images']} {split} images, {result['mask_ratio']:.1%} "
        f"mask, backend {where}{extra}"
    )
    click.echo(format_table(result))
    click.echo(f"wrote {out if out is not None else run / EVAL_FILE}")
