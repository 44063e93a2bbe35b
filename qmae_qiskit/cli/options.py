"""Click options shared by commands that take a model shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from qmae_qiskit.model.config import TOKEN_FORMS, QMAEConfig


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


def token_option(fn: Callable) -> Callable:
    """--token shared|positional: the mask token's form (QMAE only)."""
    return click.option(
        "--token",
        type=click.Choice(TOKEN_FORMS),
        default="shared",
        show_default=True,
        help="QMAE's mask token: one shared patch (the paper's), or that patch plus a learnable term per pixel "
        "position (as MAE adds positional embeddings to its mask token).",
    )(fn)


def config_from_options(opts: dict[str, Any]) -> QMAEConfig:
    """Pop the shape options from ``opts`` and validate them (errors become one CLI line)."""
    keys = ("image_size", "latent_qubits", "patch_height", "patch_width", "trash_reset", "layers")
    return QMAEConfig(**{k: opts.pop(k) for k in keys if k in opts})


def execution_options(fn: Callable) -> Callable:
    """--backend, --noise-model, --shots, --estimator-options, --readout-mitigation, --fidelity-circuit,
    --optimization-level, --seed-transpiler, --mask-seed, --seed: where and how evaluation work runs."""
    options = [
        click.option(
            "--backend",
            default="exact",
            show_default=True,
            help="exact; aer_simulator; a fake device (fake_torino: its local twin); a calibration "
            "snapshot file (its twin); or an IBM backend name.",
        ),
        click.option(
            "--noise-model",
            default=None,
            help="With --backend aer_simulator: a fake device name or calibration snapshot whose noise "
            "model applies (no coupling map; a device's own qubits: --backend NAME).",
        ),
        click.option(
            "--shots",
            type=click.IntRange(min=1),
            default=None,
            help="Shots per circuit [default: exact values where possible, else 4096].",
        ),
        click.option(
            "--estimator-options",
            "estimator_options",
            default=None,
            help="Runtime Estimator options: KEY=VALUE,... (dotted keys nest, e.g. "
            "resilience.zne.noise_factors=[1,3,5]) or JSON; twirling and dynamical decoupling also "
            "reach the Sampler. Default: no mitigation (resilience_level=0).",
        ),
        click.option(
            "--readout-mitigation",
            type=click.Choice(["none", "mthree"]),
            default="none",
            show_default=True,
            help="Readout correction of the reconstruction counts (mthree).",
        ),
        click.option(
            "--fidelity-circuit",
            type=click.Choice(["auto", "swap-test", "inverse"]),
            default="auto",
            show_default=True,
            help="auto: SWAP test on simulators, inverse loader (n+t qubits) on devices.",
        ),
        click.option("--optimization-level", type=click.IntRange(0, 3), default=1, show_default=True),
        click.option("--seed-transpiler", type=int, default=1234, show_default=True),
        click.option(
            "--mask-seed",
            type=int,
            default=0,
            show_default=True,
            help="Seed of the evaluation masks (same seed = same mask per image for every model).",
        ),
        click.option("--seed", type=int, default=0, show_default=True, help="Simulator seed (local backends)."),
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn
