"""`qmae-qiskit evaluate RUN`: score a trained run (fidelity, CS, SSIM, accuracy) beside the no-circuit baselines."""

from __future__ import annotations

from pathlib import Path

import click

from qmae_qiskit.cli.app import main
from qmae_qiskit.cli.options import (
    data_dir_option,
    echo_dry_run,
    echo_json,
    execution_options,
    images_option,
    json_option,
    out_dir_option,
    out_file,
    plan_printer,
    qpu_budget,
    renamed,
)


@main.command("evaluate")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True)
@images_option(help="Score only the first N images of the split [default: all].")
@execution_options()
@data_dir_option("$QMAE_DATA_DIR, else the one the run was trained on")
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
@out_dir_option("Folder for eval.json [default: RUN].")
@json_option("eval.json")
@renamed({"--limit": "--images", "--seed": "--simulator-seed"})
def evaluate_cmd(
    run: Path,
    split: str,
    images: int | None,
    backend: str,
    noise_model: str | None,
    shots: int | None,
    estimator_options: str | None,
    readout_mitigation: str,
    fidelity_circuit: str,
    optimization_level: int,
    transpiler_seed: int,
    simulator_seed: int,
    mask_seed: int,
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
    path = out_file(out, run, EVAL_FILE)
    result = evaluate(
        run,
        split=split,
        limit=images,
        backend=backend,
        shots=shots,
        data_dir=data_dir,
        classifier_dir=classifier_dir,
        use_classifier=not no_classifier,
        baselines=baselines,
        mask_seed=mask_seed,
        seed=simulator_seed,
        out=path,
        noise_model=noise_model,
        mitigation=mitigation,
        fidelity_circuit=fidelity_circuit,
        optimization_level=optimization_level,
        seed_transpiler=transpiler_seed,
        budget=qpu_budget(dry_run, max_qpu_seconds, price_per_second),
        say=plan_printer(dry_run and not as_json),
    )
    if result.get("dry_run"):
        echo_dry_run(result["qpu_plan"], as_json)
        return
    if as_json:
        echo_json(result)
        return
    where = result["executor"].get("name", backend)
    extra = f", {result['shots']} shots, {result['mitigation']}" if result["shots"] else ""
    click.echo(
        f"{result['model'].upper()} {run}: {result['n_images']} {split} images, {result['mask_ratio']:.1%} "
        f"mask, backend {where}{extra}"
    )
    click.echo(format_table(result))
    click.echo(f"wrote {path}")
