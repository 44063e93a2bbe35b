"""`qmae-qiskit evaluate RUN`: score a trained run (fidelity, CS, SSIM, accuracy) beside the no-circuit baselines."""

from __future__ import annotations

import json
from pathlib import Path

import click

from qmae_qiskit.cli.app import main


@main.command("evaluate")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Score only the first N images of the split.")
@click.option(
    "--backend",
    type=click.Choice(["exact", "aer_simulator"]),
    default="exact",
    show_default=True,
    help="exact: output density matrix and <Z> exactly; aer_simulator: sampled counts.",
)
@click.option(
    "--shots",
    type=click.IntRange(min=1),
    default=4096,
    show_default=True,
    help="Shots per circuit for --backend aer_simulator.",
)
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
    "--mask-seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the evaluation masks (same seed = same mask per image for every model).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Simulator seed for aer_simulator.")
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
    shots: int,
    data_dir: Path | None,
    classifier_dir: Path | None,
    no_classifier: bool,
    baselines: bool,
    mask_seed: int,
    seed: int,
    out: Path | None,
    as_json: bool,
) -> None:
    """Evaluate the trained run in RUN on a split and write eval.json."""
    from qmae_qiskit.evaluate.evaluation import EVAL_FILE, evaluate, format_table

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
        progress=not as_json,
    )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"{result['model'].upper()} {run}: {result['n_images']} {split} images, "
        f"{result['mask_ratio']:.1%} mask, "
        f"backend {backend}" + (f" ({shots} shots)" if backend != "exact" else "")
    )
    click.echo(format_table(result))
    click.echo(f"wrote {out if out is not None else run / EVAL_FILE}")
