"""`qmae-qiskit reproduce`: the paper's Table 1 and Figures 6-8 in one command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from qmae_qiskit.cli.app import main


@main.command("reproduce")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Folder for the classifier, the four runs, table1.md/json and fig6-8.png.",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder with torchvision's MNIST layout [default: $QMAE_DATA_DIR or data/].",
)
@click.option(
    "--test-limit",
    type=click.IntRange(min=1),
    default=None,
    help="Evaluate on the first N test images only [default: the whole test split].",
)
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the training epochs of every run.")
@click.option(
    "--train-samples", type=click.IntRange(min=1), default=None, help="Override the training images of every run."
)
@click.option("--classifier-epochs", type=click.IntRange(min=1), default=None, help="Override the classifier epochs.")
@click.option(
    "--classifier-limit",
    type=click.IntRange(min=2),
    default=None,
    help="Train the classifier on the first N training images only.",
)
@click.option("--mask-seed", type=int, default=0, show_default=True, help="Seed of the evaluation masks.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print table1.json instead of table1.md.")
def reproduce_cmd(
    out: Path,
    data_dir: Path | None,
    test_limit: int | None,
    epochs: int | None,
    train_samples: int | None,
    classifier_epochs: int | None,
    classifier_limit: int | None,
    mask_seed: int,
    progress: bool,
    as_json: bool,
) -> None:
    """Train the classifier, QMAE and QAE at 25 %, QMAE at 12.5 % and 50 %; evaluate; write Table 1 and figures."""
    from qmae_qiskit.evaluate.reproduce import reproduce, table_markdown

    data_dir = data_dir if data_dir is not None else Path(os.environ.get("QMAE_DATA_DIR", "data"))
    train = {k: v for k, v in (("epochs", epochs), ("train_samples", train_samples)) if v is not None}
    clf = {k: v for k, v in (("epochs", classifier_epochs), ("limit", classifier_limit)) if v is not None}
    log = (lambda msg: click.echo(msg, err=True)) if as_json else click.echo
    record = reproduce(
        out,
        data_dir,
        test_limit=test_limit,
        train=train,
        classifier_settings=clf,
        mask_seed=mask_seed,
        progress=progress and not as_json,
        log=log,
    )
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    click.echo(table_markdown(record))
    click.echo(f"wrote {out / 'table1.md'}, {out / 'table1.json'}, fig6.png, fig7.png, fig8.png in {out}")
