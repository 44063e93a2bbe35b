"""Click options shared by commands, defined once: the CLI's vocabulary.

``--images N`` is the first N test images evaluated, ``--train-images N`` the training images, ``--seed`` the
training (and training masks) seed, ``--mask-seed`` the evaluation masks, ``--simulator-seed`` and
``--transpiler-seed`` the others; ``--out DIR`` is always a folder; ``--json`` prints the command's record;
``--data-dir`` reads ``$QMAE_DATA_DIR``; one default optimisation level. Old spellings are rewritten to the new
ones with a one-line notice on stderr (:mod:`qmae_qiskit.cli.spellings`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from qmae_qiskit.cli.spellings import renamed
from qmae_qiskit.data import resolve_data_dir
from qmae_qiskit.device import DEVICES
from qmae_qiskit.hardware import DEFAULT_OPTIMIZATION_LEVEL, DEFAULT_TRANSPILER_SEED
from qmae_qiskit.hardware.mitigation import parse_mitigation
from qmae_qiskit.hardware.spec import ExecutionSpec, QPUBudget
from qmae_qiskit.model.config import TOKEN_FORMS, QMAEConfig

DATA_ENVVAR = "QMAE_DATA_DIR"
DATA_DIR_HELP = "$QMAE_DATA_DIR, else ./data, else ~/.cache/qmae-qiskit (MNIST downloaded there once)"


def echo_json(record: Any) -> None:
    """Print a command's record (a dict, or a typed record with ``to_json``) as indented JSON on stdout."""
    data = record.to_json() if hasattr(record, "to_json") else record
    click.echo(json.dumps(data, indent=2, default=str))


def echo_written(record: Any, as_json: bool, text: str, paths: Iterable[Path]) -> None:
    """A writing command's last words: its record as JSON with --json, else ``text`` and one line per file."""
    if as_json:
        echo_json(record)
        return
    if text:
        click.echo(text)
    for path in paths:
        click.echo(f"wrote {path}")


def json_option(what: str = "the command's record") -> Callable:
    """--json: print ``what`` as JSON on stdout (progress and notes go to stderr)."""
    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON (instead of the text report).")


def data_dir_option(default_help: str = DATA_DIR_HELP) -> Callable:
    """--data-dir, read from $QMAE_DATA_DIR when not given."""
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar=DATA_ENVVAR,
        default=None,
        help=f"Folder with torchvision's MNIST layout [default: {default_help}].",
    )


def data_dir_or_default(data_dir: Path | None) -> Path:
    """The MNIST folder a command uses: --data-dir / $QMAE_DATA_DIR (click resolved both), else ./data if it
    holds MNIST, else the user cache, downloaded into once (:func:`qmae_qiskit.data.resolve_data_dir`)."""

    return resolve_data_dir(data_dir)


def out_dir_option(help: str, default: Path | None = None, **kwargs: Any) -> Callable:
    """--out DIR: always a folder; ``help`` names the files written inside it."""
    return click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        default=default,
        show_default=default is not None,
        help=help,
        **kwargs,
    )


def out_file(out: Path | None, default_dir: Path, name: str) -> Path:
    """The file a command writes: ``name`` inside --out (or ``default_dir``). A --out ending in .json (the old
    file form) still names the file itself, with a deprecation notice, for one release."""
    if out is not None and out.suffix == ".json":
        click.echo(f"warning: --out FILE is deprecated, give the folder (the file is named {name})", err=True)
        return out
    return (out if out is not None else default_dir) / name


def images_option(default: int | None = None, **kwargs: Any) -> Callable:
    """--images N: the first N test images evaluated."""
    kwargs.setdefault("help", "Evaluate the first N test images" + ("." if default else " [default: all]."))
    return click.option(
        "--images",
        "images",
        type=click.IntRange(min=1),
        default=default,
        show_default=default is not None,
        **kwargs,
    )


def optimization_level_option(fn: Callable) -> Callable:
    """--optimization-level with the one default."""
    return click.option(
        "--optimization-level",
        type=click.IntRange(0, 3),
        default=DEFAULT_OPTIMIZATION_LEVEL,
        show_default=True,
        help="Preset pass manager level.",
    )(fn)


def transpiler_seed_option(fn: Callable) -> Callable:
    """--transpiler-seed (same seed, same transpiled circuits)."""
    return click.option(
        "--transpiler-seed",
        "seed_transpiler",
        type=int,
        default=DEFAULT_TRANSPILER_SEED,
        show_default=True,
        help="seed_transpiler (same seed, same transpiled circuits).",
    )(fn)


def mask_seed_option(fn: Callable) -> Callable:
    """--mask-seed: the evaluation masks (same seed = same mask per image for every model)."""
    return click.option(
        "--mask-seed",
        type=int,
        default=0,
        show_default=True,
        help="Seed of the evaluation masks (same seed = same mask per image for every model).",
    )(fn)


def config_options(fn: Callable) -> Callable:
    """--image-size, --latent-qubits, --patch-height, --patch-width, --trash-reset, --layers, --ansatz."""
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
            help="Ansatz layers: the block layer repeated, each with its own angles (1 = the paper).",
        ),
        click.option(  # checked by QMAEConfig, so that a wrong name is one line like every other shape error
            "--ansatz",
            default="all-pairs",
            show_default=True,
            help="all-pairs (the paper: a block on every qubit pair) or brickwork (blocks on neighbours of a "
            "line, even bonds then odd bonds: routes without SWAPs on heavy-hex and square lattices).",
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
    keys = ("image_size", "latent_qubits", "patch_height", "patch_width", "trash_reset", "layers", "ansatz")
    return QMAEConfig(**{k: opts.pop(k) for k in keys if k in opts})


REQUIRED = object()  # execution_options(backend=REQUIRED): the option must be given


def _execution_block(backend: Any, shots: Any, simulator_seed: int | None, loader: bool) -> list[Callable]:
    """The execution options, one each; their names are :class:`~qmae_qiskit.hardware.spec.ExecutionSpec`'s
    fields (see :func:`execution_options`)."""
    return [
        click.option(
            "--backend",
            required=backend is REQUIRED,
            default=None if backend is REQUIRED else backend,
            show_default=backend is not REQUIRED,
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
            required=shots is REQUIRED,
            default=None if shots is REQUIRED else shots,
            show_default=shots not in (None, REQUIRED),
            help="Shots per circuit" + (" [default: exact values where possible, else 4096]" if shots is None else ""),
        ),
        click.option(
            "--fidelity-circuit",
            type=click.Choice(["auto", "swap-test", "inverse"]),
            default="auto",
            show_default=True,
            help="auto: SWAP test on simulators, inverse loader (n+t qubits) on devices.",
        ),
        *(
            [
                click.option(
                    "--loader",
                    default=None,
                    help="Approximate amplitude loading for the hardware circuits, e.g. 'ladder:2' or "
                    "'budget:150' [default: the exact RY tree]. Exact values are always the paper's circuit's.",
                )
            ]
            if loader
            else []
        ),
        optimization_level_option,
        transpiler_seed_option,
        click.option(
            "--simulator-seed",
            "seed",
            type=int,
            default=simulator_seed,
            show_default=simulator_seed is not None,
            help="Seed of the simulator (local backends).",
        ),
        mask_seed_option,
        click.option(
            "--placement",
            type=click.Choice(["qiskit", "noise-aware"]),
            default="qiskit",
            show_default=True,
            help="Physical qubits on a device or twin: Qiskit's own layout, or the lowest expected error (gate, "
            "readout and idle decoherence) over every placement on the device.",
        ),
        REP_DELAY_OPTION,
        *IDLE_BLOCK,
    ]


REP_DELAY_OPTION = click.option(  # ExecutionSpec.rep_delay (hardware/rep_delay.py says why)
    "--rep-delay",
    "rep_delay",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Device or twin: wait between one shot's measurement and the next shot (the runtime's "
    "execution.rep_delay), within the backend's rep_delay_range [default: the backend's default_rep_delay, "
    "250 µs on IBM's Eagle and Heron]. Most of the QPU time at the default; a shorter delay is cheaper but leaves "
    "the qubits less completely reset to |0> (a state-preparation error that grows as it shrinks towards T1, "
    "~100-300 µs, and below; calibration absorbs part of it). The twin resets perfectly: it shows the saving only.",
)


IDLE_BLOCK = [  # ExecutionSpec.idle_*: what idle qubits suffer on a twin (hardware/idle_noise.py)
    click.option(
        "--idle-zz",
        "idle_zz_hz",
        type=float,
        default=0.0,
        show_default=True,
        metavar="HZ",
        help="Twin only: static ZZ between coupled qubits while both idle, in Hz (tens of kHz on Eagle, far less "
        "on Heron). 0 = off.",
    ),
    click.option(
        "--idle-detuning",
        "idle_detuning_hz",
        type=float,
        default=0.0,
        show_default=True,
        metavar="HZ",
        help="Twin only: each qubit's frequency offset from its drive frame while idle, in Hz. 0 = off.",
    ),
    click.option(
        "--idle-relaxation/--no-idle-relaxation",
        default=True,
        show_default=True,
        help="Twin only: schedule circuits so idle qubits relax (off: the unscheduled twin of records made before "
        "2026-12-04).",
    ),
    click.option(
        "--task-seeds",
        type=click.Choice(["independent", "shared"]),
        default="independent",
        show_default=True,
        help="Simulators only: a seed per task, so that a reference circuit's shot noise is independent of its "
        "image's, as on a device ('shared': one seed for all, as records made before 2026-12-05 ran).",
    ),
]


MITIGATION_BLOCK = [
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
]


def execution_spec(params: dict[str, Any]) -> Any:
    """Pop the execution options from a command's parameters into an
    :class:`~qmae_qiskit.hardware.spec.ExecutionSpec` (validated: a bad value is one line). Imported here, on use:
    the spec brings Qiskit's runtime, which --help should not wait for."""

    fields = {k: params.pop(k) for k in list(params) if k in ExecutionSpec.model_fields and k != "mitigation"}
    mitigation = parse_mitigation(params.pop("estimator_options", None), params.pop("readout_mitigation", "none"))
    budget = {k: params.pop(k) for k in list(params) if k in QPUBudget.model_fields}
    return ExecutionSpec(mitigation=mitigation, budget=QPUBudget(**budget), **fields)


QPU_BLOCK = [  # named as QPUBudget's fields (hardware.spec), which execution_spec fills
    click.option(
        "--dry-run",
        is_flag=True,
        help="Transpile, schedule and print the QPU plan (circuits, shots, two-qubit gates, duration, QPU "
        "seconds, cost); run nothing, write nothing. An ibm_* name without an account plans on its fake_*.",
    ),
    click.option(
        "--max-qpu-seconds",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="Refuse (exit 2, nothing run or written) a plan that needs more QPU seconds.",
    ),
    click.option(
        "--price-per-second",
        type=click.FloatRange(min=0),
        default=1.60,
        show_default=True,
        help="US dollars per QPU second for the plan's cost (IBM Pay-As-You-Go: $96/min).",
    ),
]


def execution_options(
    backend: Any = "exact",
    shots: Any = None,
    simulator_seed: int | None = 0,
    mitigation: bool = True,
    loader: bool = True,
) -> Callable:
    """Where and how circuits run: --backend, --noise-model, --shots, --fidelity-circuit, --loader,
    --optimization-level, --transpiler-seed, --simulator-seed, --mask-seed, a twin's idle noise (--idle-zz,
    --idle-detuning, --idle-relaxation, --task-seeds; :data:`IDLE_BLOCK`), --estimator-options and
    --readout-mitigation (with ``mitigation``), and what a device or its twin may cost: --dry-run,
    --max-qpu-seconds, --price-per-second (:data:`QPU_BLOCK`). Defined once for every command that runs circuits;
    the command turns them into one :class:`~qmae_qiskit.hardware.spec.ExecutionSpec` with :func:`execution_spec`.
    A new setting: a field there and its option (named as the field) in :func:`_execution_block`."""
    options = _execution_block(backend, shots, simulator_seed, loader) + (MITIGATION_BLOCK if mitigation else [])
    options += QPU_BLOCK

    def deco(fn: Callable) -> Callable:
        for opt in reversed(options):
            fn = opt(fn)
        return renamed(EXECUTION_RENAMES)(fn)

    return deco


EXECUTION_RENAMES = {"--seed-transpiler": "--transpiler-seed", "--seed-simulator": "--simulator-seed"}


def plan_printer(dry_run: bool) -> Callable[[str], None]:
    """Where a command tells its plan: stdout for a dry run (it is the output), else stderr (stdout stays the
    command's own output, e.g. --json)."""
    return lambda text: click.echo(text, err=not dry_run)


def echo_dry_run(plan: Any, as_json: bool) -> None:
    """A dry run's last words, after its plan: the plan as JSON with --json, and that nothing ran."""
    if as_json:
        echo_json(plan.model_dump() if hasattr(plan, "model_dump") else plan)
    click.echo("dry run: nothing run, nothing submitted, nothing written", err=as_json)


def device_option(fn: Callable) -> Callable:
    """--device auto|cpu|cuda: where torch computes (the exact path's kernel, the classifier)."""

    return click.option(
        "--device",
        type=click.Choice(DEVICES),
        default="auto",
        show_default=True,
        help="Where torch computes the exact path and the classifier: auto = cuda when a GPU is visible, else "
        "cpu. cuda without a GPU is an error. CPU results do not depend on this option.",
    )(fn)
