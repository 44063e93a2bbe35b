"""`qmae-qiskit reproduce`: the paper's Table 1 and Figures 6-8 in one command."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from qmae_qiskit.cli.options import (
    data_dir_option,
    data_dir_or_default,
    device_option,
    echo_json,
    images_option,
    json_option,
    mask_seed_option,
    out_dir_option,
)
from qmae_qiskit.cli.spellings import QMAECommand, renamed
from qmae_qiskit.device import resolve_device
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.experiments.multiseed import gap_text, reproduce_seeds, to_markdown
from qmae_qiskit.experiments.reproduce import Execution, reproduce, table_markdown


@click.command("reproduce", cls=QMAECommand)
@out_dir_option("Folder for the classifier, the four runs, table1.md/json and fig6-8.png.", default=Path("results"))
@data_dir_option()
@images_option(help="Evaluate on the first N test images only [default: the whole test split].")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the training epochs of every run.")
@click.option(
    "--train-images", type=click.IntRange(min=1), default=None, help="Override the training images of every run."
)
@click.option("--classifier-epochs", type=click.IntRange(min=1), default=None, help="Override the classifier epochs.")
@click.option(
    "--classifier-train-images",
    type=click.IntRange(min=2),
    default=None,
    help="Train the classifier on the first N training images only.",
)
@mask_seed_option
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
@json_option("table1.json")
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=None,
    help="Train every run and the classifier with seeds 0..N-1 on Dask; Table 1 with 95 % intervals "
    "[default --out: results/sweeps/table1-<N>seeds].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="One-thread processes for the classifier, trainings and evaluations [cores, at most 5; 1: all in this "
    "process, one after another]; with --seeds: local Dask workers [cores].",
)
@click.option("--scheduler", default=None, help="--seeds: address of a running dask.distributed scheduler.")
@renamed(
    {
        "--test-limit": "--images",
        "--train-samples": "--train-images",
        "--classifier-limit": "--classifier-train-images",
    }
)
@device_option
def reproduce_cmd(
    out: Path,
    data_dir: Path | None,
    images: int | None,
    epochs: int | None,
    train_images: int | None,
    classifier_epochs: int | None,
    classifier_train_images: int | None,
    mask_seed: int,
    progress: bool,
    as_json: bool,
    seeds: int | None,
    workers: int | None,
    scheduler: str | None,
    device: str,
) -> None:
    """Train the classifier, QMAE and QAE at 25 %, QMAE at 12.5 % and 50 %; evaluate; write Table 1 and figures.

    With --seeds N: the same for seeds 0..N-1 (training and classifier), as cells on Dask, and Table 1 with
    mean +- 95 % Student-t intervals, the paired QMAE - QAE gap and the baselines' intervals.
    """

    if scheduler is not None and seeds is None:  # checked before the data is looked for (or downloaded)
        raise QMAEError("--scheduler goes with --seeds N (the single-seed reproduction runs on local processes)")
    dev = resolve_device(device).type  # --device cuda without a GPU: one line, nothing written
    data_dir = data_dir_or_default(data_dir)
    train = {k: v for k, v in (("epochs", epochs), ("train_samples", train_images)) if v is not None}
    clf = {k: v for k, v in (("epochs", classifier_epochs), ("limit", classifier_train_images)) if v is not None}
    log = (lambda msg: click.echo(msg, err=True)) if as_json else click.echo
    if seeds is not None:
        where = (workers, scheduler, dev)
        _reproduce_seeds(out, seeds, data_dir, images, train, clf, mask_seed, where, as_json, log)
        return
    record = reproduce(
        out,
        data_dir,
        test_limit=images,
        train=train,
        classifier_settings=clf,
        mask_seed=mask_seed,
        execution=Execution(workers=workers, device=device, progress=progress and not as_json, log=log),
    )
    if as_json:
        echo_json(record)
        return
    click.echo(table_markdown(record))
    click.echo(f"wrote {out / 'table1.md'}, {out / 'table1.json'}, fig6.png, fig7.png, fig8.png in {out}")


def _reproduce_seeds(out, seeds, data_dir, images, train, clf, mask_seed, where, as_json, log) -> None:

    workers, scheduler, device = where
    ctx = click.get_current_context()
    if ctx.get_parameter_source("out") in (ParameterSource.DEFAULT, None):
        out = Path("results") / "sweeps" / f"table1-{seeds}seeds"
    execution = Execution(workers=workers, device=device, log=log, scheduler=scheduler)
    record = reproduce_seeds(out, seeds, data_dir, images, train, clf, mask_seed, execution)
    if as_json:
        echo_json(record)
        return
    click.echo(to_markdown(record))
    click.echo(gap_text(record))
    click.echo(f"wrote {out / 'table1.md'}, {out / 'table1.json'} and {out / 'summary.json'}")
    if record.failed:
        raise SystemExit(1)
