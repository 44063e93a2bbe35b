"""`qmae-qiskit figure8`: the paper's Figure 8 as drawn -- per-sample (batch size 1) training losses -- beside
the batch-trained curves, with the numbers that tell per-sample spread from not converging."""

from __future__ import annotations

from pathlib import Path

import click

from qmae_qiskit.cli.options import (
    data_dir_option,
    data_dir_or_default,
    echo_json,
    images_option,
    json_option,
    out_dir_option,
)
from qmae_qiskit.cli.spellings import QMAECommand, renamed
from qmae_qiskit.experiments.fig8 import Fig8Settings, make_fig8, summary_text


@click.command("figure8", cls=QMAECommand)
@out_dir_option("Folder for the two batch-size-1 runs, fig8-per-sample.png and .json.", default=Path("results/fig8"))
@click.option(
    "--batch-runs",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Folder holding reproduce's qmae-m25 and qae-m25 (the batch curves); 'none' to leave them out.",
)
@click.option("--train-images", type=click.IntRange(min=1), default=4500, show_default=True, help="Training images.")
@click.option("--epochs", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=0.001, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@images_option(1000, help="Test images scored (the first N).")
@data_dir_option()
@click.option("--progress/--no-progress", default=True, show_default=True)
@json_option("fig8-per-sample.json")
@renamed({"--samples": "--train-images", "--held-out": "--images"})
def figure8_cmd(
    out: Path,
    batch_runs: Path,
    train_images: int,
    epochs: int,
    lr: float,
    seed: int,
    images: int,
    data_dir: Path | None,
    progress: bool,
    as_json: bool,
) -> None:
    """Train QMAE and QAE with one image per Adam step (paper Algorithm 1); draw and quantify Figure 8."""

    runs = None if str(batch_runs).lower() == "none" else batch_runs
    log = (lambda msg: click.echo(msg, err=True)) if as_json else click.echo
    settings = Fig8Settings(samples=train_images, epochs=epochs, lr=lr, seed=seed, held_out=images)
    record = make_fig8(out, data_dir_or_default(data_dir), settings, runs, progress=progress, log=log)
    if as_json:
        echo_json(record)
        return
    click.echo(summary_text(record))
    click.echo(f"wrote {out / 'fig8-per-sample.png'} and {out / 'fig8-per-sample.json'}")
