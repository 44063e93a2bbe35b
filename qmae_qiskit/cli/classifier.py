"""`qmae-qiskit classifier train`: the ResNet18 that scores reconstructions (weights cached, not committed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from qmae_qiskit.cli.app import main
from qmae_qiskit.cli.options import device_option


@main.group("classifier")
def classifier_group() -> None:
    """The 16x16 MNIST ResNet18 that judges reconstructions."""


@classifier_group.command("train")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder with torchvision's MNIST layout [default: $QMAE_DATA_DIR or data/].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/classifier"),
    show_default=True,
    help="Folder for classifier.pt and classifier.json.",
)
@click.option("--image-size", type=int, default=16, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=128, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--augment-shift",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Random shift of each training image by up to this many pixels (0: none).",
)
@click.option("--limit", type=click.IntRange(min=2), default=None, help="Use only the first N training images.")
@click.option("--test-limit", type=click.IntRange(min=1), default=None, help="Score only the first N test images.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@device_option
def classifier_train(
    data_dir: Path | None,
    out: Path,
    image_size: int,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    augment_shift: int,
    limit: int | None,
    test_limit: int | None,
    as_json: bool,
    device: str,
) -> None:
    """Train the classifier on clean MNIST and report its accuracy on the clean test set."""
    from qmae_qiskit.evaluate.classifier import train_and_cache

    data_dir = data_dir if data_dir is not None else Path(os.environ.get("QMAE_DATA_DIR", "data"))
    info = train_and_cache(
        data_dir,
        out,
        image_size=image_size,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        augment_shift=augment_shift,
        limit=limit,
        test_limit=test_limit,
        progress=not as_json,
        device=device,
    )
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"classifier: {info['n_train']} training images, {epochs} epochs, {info['train_seconds']} s")
    click.echo(f"clean test accuracy: {100 * info['test_accuracy']:.2f} % on {info['n_test']} images")
    click.echo(f"wrote {out / 'classifier.pt'} and {out / 'classifier.json'}")
