"""`qmae-qiskit figure8`: the paper's Figure 8 as drawn -- per-sample (batch size 1) training losses -- beside
the batch-trained curves, with the numbers that tell per-sample spread from not converging."""

from __future__ import annotations

from pathlib import Path

import click

from qmae_qiskit.cli.app import main


@main.command("figure8")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results/fig8"),
    show_default=True,
    help="Folder for the two batch-size-1 runs, fig8-per-sample.png and .json.",
)
@click.option(
    "--batch-runs",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Folder holding reproduce's qmae-m25 and qae-m25 (the batch curves); 'none' to leave them out.",
)
@click.option("--samples", type=click.IntRange(min=1), default=4500, show_default=True, help="Training images.")
@click.option("--epochs", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=0.001, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--held-out", type=click.IntRange(min=1), default=1000, show_default=True, help="Test images scored.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="MNIST folder [$QMAE_DATA_DIR].")
@click.option("--progress/--no-progress", default=True, show_default=True)
def figure8_cmd(
    out: Path,
    batch_runs: Path,
    samples: int,
    epochs: int,
    lr: float,
    seed: int,
    held_out: int,
    data_dir: Path | None,
    progress: bool,
) -> None:
    """Train QMAE and QAE with one image per Adam step (paper Algorithm 1); draw and quantify Figure 8."""
    from qmae_qiskit.data import resolve_data_dir
    from qmae_qiskit.evaluate.fig8 import make_fig8, summary_text

    data_dir = resolve_data_dir(data_dir)
    runs = None if str(batch_runs).lower() == "none" else batch_runs
    record = make_fig8(out, data_dir, samples, epochs, lr, seed, runs, held_out, progress=progress, log=click.echo)
    click.echo(summary_text(record))
    click.echo(f"wrote {out / 'fig8-per-sample.png'} and {out / 'fig8-per-sample.json'}")
