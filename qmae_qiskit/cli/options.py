"""Click options shared by commands that take a model shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from qmae_qiskit.model.config import QMAEConfig


def config_options(fn: Callable) -> Callable:
    """--image-size, --latent-qubits, --patch-height, --patch-width, --trash-reset, --layers."""
    options = [
        click.option("--image-size", type=int, default=16, show_default=True, help="Image side L (4, 8, 16, 32)."),
        click.option("--latent-qubits", type=int, default=None, help="Latent qubits k [default: n - 1]."),
        click.option("--patch-height", type=int, default=None, help="Mask patch height [default: L/2]."),
        click.option("--patch-width", type=int, default=None, help="Mask patch width [default: L/2]."),
        click.option(
            "--trash-reset",
            type=click.Choice(["swap", "reset"]),
            default="swap",
            show_default=True,
            help="Trash to |0>: swap with a fresh qubit, or mid-circuit reset.",
        ),
        click.option(
            "--layers",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Ansatz layers: the all-pairs block layer repeated, each with its own angles (1 = the paper).",
        ),
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn


def config_from_options(opts: dict[str, Any]) -> QMAEConfig:
    """Pop the shape options from ``opts`` and validate them (errors become one CLI line)."""
    keys = ("image_size", "latent_qubits", "patch_height", "patch_width", "trash_reset", "layers")
    return QMAEConfig(**{k: opts.pop(k) for k in keys if k in opts})
