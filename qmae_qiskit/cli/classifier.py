"""`qmae-qiskit classifier train`: the ResNet18 that scores reconstructions (weights cached, not committed)."""

from __future__ import annotations

from pathlib import Path

import click

from qmae_qiskit.cli.app import QMAEGroup
from qmae_qiskit.cli.options import (
    data_dir_option,
    data_dir_or_default,
    device_option,
    echo_json,
    images_option,
    json_option,
    out_dir_option,
)
from qmae_qiskit.cli.spellings import renamed
from qmae_qiskit.evaluate.classifier import INFO, ClassifierInfo, train_and_cache
from qmae_qiskit.records import load_record


@click.group("classifier", cls=QMAEGroup)
def classifier_group() -> None:
    """The 16x16 MNIST ResNet18 that judges reconstructions."""


@classifier_group.command("train")
@data_dir_option()
@out_dir_option("Folder for classifier.pt and classifier.json.", default=Path("runs/classifier"))
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
@click.option("--train-images", type=click.IntRange(min=2), default=None, help="Use only the first N training images.")
@click.option(
    "--recipe",
    type=click.IntRange(2, 3),
    default=3,
    show_default=True,
    help="3: one-pixel convolutions as matrix products (the same network, faster); 2: the earlier recipe.",
)
@images_option(help="Score only the first N test images [default: all].")
@json_option("classifier.json")
@renamed({"--limit": "--train-images", "--test-limit": "--images"})
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
    train_images: int | None,
    recipe: int,
    images: int | None,
    as_json: bool,
    device: str,
) -> None:
    """Train the classifier on clean MNIST and report its accuracy on the clean test set."""

    info = train_and_cache(
        data_dir_or_default(data_dir),
        out,
        image_size=image_size,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        augment_shift=augment_shift,
        limit=train_images,
        recipe=recipe,
        test_limit=images,
        progress=not as_json,
        device=device,
    )
    if as_json:
        echo_json(load_record(ClassifierInfo, out / INFO))  # the record as written
        return
    click.echo(f"classifier: {info['n_train']} training images, {epochs} epochs, {info['train_seconds']} s")
    click.echo(f"clean test accuracy: {100 * info['test_accuracy']:.2f} % on {info['n_test']} images")
    click.echo(f"wrote {out / 'classifier.pt'} and {out / 'classifier.json'}")
