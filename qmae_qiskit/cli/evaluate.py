"""`qmae-qiskit evaluate RUN`: score a trained run (fidelity, CS, SSIM, accuracy) beside the no-circuit baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from qmae_qiskit.cli.options import (
    data_dir_option,
    device_option,
    echo_dry_run,
    echo_json,
    execution_options,
    execution_spec,
    images_option,
    json_option,
    out_dir_option,
    out_file,
    plan_printer,
)
from qmae_qiskit.cli.spellings import QMAECommand, renamed
from qmae_qiskit.evaluate.evaluation import EVAL_FILE, EvalOptions, evaluate
from qmae_qiskit.evaluate.scoring import format_table
from qmae_qiskit.hardware.qpu_time import QPUPlan


@click.command("evaluate", cls=QMAECommand)
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
@device_option
def evaluate_cmd(
    run: Path,
    split: str,
    images: int | None,
    data_dir: Path | None,
    classifier_dir: Path | None,
    no_classifier: bool,
    baselines: bool,
    out: Path | None,
    as_json: bool,
    device: str,
    **execution: Any,
) -> None:
    """Evaluate the trained run in RUN on a split and write eval.json."""

    spec = execution_spec(execution)
    options = EvalOptions(
        split=split,
        limit=images,
        data_dir=None if data_dir is None else str(data_dir),
        classifier_dir=None if classifier_dir is None else str(classifier_dir),
        use_classifier=not no_classifier,
        baselines=baselines,
        device=device,
    )
    path = out_file(out, run, EVAL_FILE)
    result = evaluate(run, spec, options, out=path, say=plan_printer(spec.budget.dry_run and not as_json))
    if isinstance(result, QPUPlan):
        echo_dry_run(result, as_json)
        return
    if as_json:
        echo_json(result)
        return
    where = result.executor.get("name", spec.backend)
    extra = f", {result.shots} shots, {result.mitigation}" if result.shots else ""
    click.echo(
        f"{result.model.upper()} {run}: {result.n_images} {split} images, {result.mask_ratio:.1%} "
        f"mask, backend {where}{extra}"
    )
    click.echo(format_table(result.to_json()))
    click.echo(f"wrote {path}")
