"""`qmae-qiskit train`: train QMAE or QAE on MNIST with the exact simulator or an EstimatorQNN on Aer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from qmae_qiskit.cli.options import (
    DATA_DIR_HELP,
    config_options,
    data_dir_option,
    data_dir_or_default,
    device_option,
    echo_json,
    json_option,
    out_dir_option,
    token_option,
)
from qmae_qiskit.cli.spellings import QMAECommand, renamed
from qmae_qiskit.device import resolve_device
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.masking import default_patch_shape
from qmae_qiskit.train.defaults import BACKEND_DEFAULTS, with_backend_defaults
from qmae_qiskit.train.qnn import resolve_gradient
from qmae_qiskit.train.runs import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    LOSS_PLOT_FILE,
    METRICS_FILE,
    RunSettings,
    check_resumable,
    read_settings,
)
from qmae_qiskit.train.training import TrainOptions, train


def _per_backend(key: str) -> str:
    """The help text's "[exact: 1, aer_simulator: 1]" for a setting, from the library's defaults."""
    return "[" + ", ".join(f"{b}: {d[key]}" for b, d in BACKEND_DEFAULTS.items()) + "]"


SHAPE_KEYS = ("image_size", "latent_qubits", "patch_height", "patch_width", "trash_reset", "layers", "ansatz", "token")
SETTING_KEYS = (
    "model",
    "backend",
    "mask_ratio",
    "epochs",
    "batch_size",
    "train_samples",
    "val_samples",
    "lr",
    "seed",
    "theta_init",
    "theta_scale",
    "token_init",
    "token_value",
    "checkpoint_every",
    "shots",
    "noise_model",
    "gradient",
    "precision",
)


@click.command("train", cls=QMAECommand)
@click.option(
    "--backend",
    type=click.Choice(["exact", "aer_simulator"]),
    default="exact",
    show_default=True,
    help="exact: the pure-torch exact simulator; aer_simulator: the SWAP-test circuit in an EstimatorQNN.",
)
@click.option(
    "--model",
    type=click.Choice(["qmae", "qae"]),
    default="qmae",
    show_default=True,
    help="qmae: learnable mask token; qae: masked pixels set to zero.",
)
@config_options
@token_option
@click.option(
    "--mask-ratio",
    type=float,
    default=0.25,
    show_default=True,
    help="Fraction of patches masked per image; the patch shape defaults to the coarsest grid that "
    "makes it (8x8 for 25 %/50 % of 16x16, 4x8 for 12.5 %).",
)
@click.option("--epochs", type=int, default=None, help=f"Epochs {_per_backend('epochs')}.")
@click.option("--batch-size", type=int, default=None, help=f"Images per Adam step {_per_backend('batch_size')}.")
@click.option(
    "--train-images",
    "train_samples",
    type=click.IntRange(min=1),
    default=None,
    help=f"Training images {_per_backend('train_samples')}.",
)
@click.option(
    "--val-images",
    "val_samples",
    type=int,
    default=None,
    help=f"Held-out images scored after each epoch with the exact simulator {_per_backend('val_samples')}.",
)
@click.option("--lr", type=float, default=0.01, show_default=True, help="Adam learning rate.")
@click.option("--beta1", type=float, default=0.9, show_default=True, help="Adam beta1.")
@click.option("--beta2", type=float, default=0.999, show_default=True, help="Adam beta2.")
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seeds the data subset, the data order, the masks and the initial parameters.",
)
@click.option(
    "--theta-init",
    type=click.Choice(["uniform", "normal"]),
    default="uniform",
    show_default=True,
    help="uniform: U[0, 2pi) per angle; normal: N(0, theta-scale^2), near the identity.",
)
@click.option("--theta-scale", type=float, default=0.1, show_default=True, help="Std of --theta-init normal.")
@click.option(
    "--token-init",
    type=click.Choice(["mean", "uniform", "constant"]),
    default="mean",
    show_default=True,
    help="Initial mask token: mean training patch, U[0.1, 1), or --token-value.",
)
@click.option("--token-value", type=float, default=0.5, show_default=True, help="Value for --token-init constant.")
@click.option(
    "--checkpoint-every",
    type=int,
    default=None,
    help=f"Write a checkpoint every N steps (and at the end) {_per_backend('checkpoint_every')}; the two newest "
    "are kept.",
)
@click.option(
    "--shots",
    type=int,
    default=None,
    help="aer_simulator: sampled estimates with this many shots [default: exact expectation values].",
)
@click.option(
    "--noise-model",
    default=None,
    help="aer_simulator: a fake backend name (e.g. fake_torino) or a calibration snapshot file.",
)
@click.option(
    "--gradient",
    type=click.Choice(["auto", "adjoint", "param-shift"]),
    default="auto",
    show_default=True,
    help="aer_simulator gradient: auto = adjoint when noiseless and exact, else parameter shift.",
)
@click.option(
    "--precision",
    type=click.Choice(["float64", "float32"]),
    default="float64",
    show_default=True,
    help="exact backend: float64 is exact to rounding; float32 (complex64) is faster, ~1e-6.",
)
@out_dir_option("Folder that holds the run folders.", default=Path("runs"))
@click.option(
    "--name",
    default=None,
    help="Run folder name under --out [default: <model>-<backend>-L<size>-m<ratio>-s<seed>, with a "
    "numeric suffix if taken].",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the run --out/--name from its last checkpoint; options not given are taken from it.",
)
@data_dir_option(f"{DATA_DIR_HELP}; with --resume: the run's")
@click.option("--download", is_flag=True, help="Download MNIST into --data-dir if it is missing (needs internet).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@json_option("the run's settings and the training summary")
@renamed({"--train-samples": "--train-images", "--val-samples": "--val-images"})
@device_option
def train_cmd(
    out: Path,
    name: str | None,
    resume: bool,
    data_dir: Path | None,
    download: bool,
    progress: bool,
    beta1: float,
    beta2: float,
    as_json: bool,
    device: str,
    **opts: Any,
) -> None:
    """Train QMAE or QAE on MNIST; writes config.json, metrics.jsonl, checkpoint.pt and loss.png."""

    resolve_device(device)  # --device cuda without a GPU: one line, nothing written
    ctx = click.get_current_context()
    explicit = {k for k in ctx.params if ctx.get_parameter_source(k) not in (ParameterSource.DEFAULT, None)}
    opts["betas"] = (beta1, beta2)
    fresh = _fresh_settings(opts)
    if resume:
        run_dir = out / (name or fresh.default_name())
        stored = read_settings(run_dir)
        settings = _resumed_settings(stored, opts, explicit)
        check_resumable(stored, settings)
    else:
        settings = fresh
        run_dir = out / name if name else _free_name(out, settings.default_name())
    if data_dir is None and not resume:
        data_dir = data_dir_or_default(data_dir)

    click.echo(_describe(settings, run_dir, resume), err=as_json)
    try:
        result = train(
            settings,
            run_dir,
            None,
            TrainOptions(resume=resume, progress=progress, device=device),
            data_dir=data_dir,
            download=download,
        )
    except KeyboardInterrupt as exc:
        click.echo(
            f"Interrupted ({exc or 'Ctrl-C'}). Continue with: qmae-qiskit train --resume --out {out} "
            f"--name {run_dir.name}",
            err=True,
        )
        sys.exit(130)
    if as_json:
        echo_json(_summary(result))
        return
    _report(result)


def _summary(r) -> dict[str, Any]:
    """train's record: the run's settings (its config.json) and what this call did."""
    return {
        "run_dir": str(r.run_dir),
        "settings": r.settings.model_dump(mode="json"),
        "start_step": r.start_step,
        "steps": r.steps,
        "seconds": round(r.seconds, 3),
        "last_loss": r.last_loss,
        "last_epoch_fidelity": r.last_epoch_fidelity,
        "val_fidelity": r.val_fidelity,
    }


def _fresh_settings(opts: dict[str, Any]):

    shape = {k: opts[k] for k in SHAPE_KEYS}
    if shape["patch_height"] is None and shape["patch_width"] is None and shape["image_size"] in (4, 8, 16, 32):
        shape["patch_height"], shape["patch_width"] = default_patch_shape(shape["image_size"], opts["mask_ratio"])
    cfg = QMAEConfig(**shape)
    values = with_backend_defaults({k: opts[k] for k in SETTING_KEYS}, opts["backend"])
    return RunSettings(config=cfg, betas=opts["betas"], **values)


def _resumed_settings(stored, opts: dict[str, Any], explicit: set[str]):
    """The stored settings with the options given on this command line applied (checked later by train)."""

    data = stored.model_dump(mode="json")
    for key in SETTING_KEYS:
        if key in explicit:
            data[key] = opts[key]
    if "beta1" in explicit or "beta2" in explicit:
        data["betas"] = list(opts["betas"])
    shape = dict(data["config"])
    for key in SHAPE_KEYS:
        if key in explicit:
            shape[key] = opts[key]
    data["config"] = QMAEConfig(**shape)
    return RunSettings(**data)


def _free_name(out: Path, base: str) -> Path:
    candidate, i = out / base, 2
    while candidate.exists():
        candidate, i = out / f"{base}-{i}", i + 1
    return candidate


def _describe(s, run_dir: Path, resume: bool) -> str:
    cfg = s.config
    extra = ""
    if s.backend == "aer_simulator":
        extra = f", {f'{s.shots} shots' if s.shots else 'exact expectation values'}"
        extra += f", noise model {s.noise_model}" if s.noise_model else ", noiseless"

        grad = resolve_gradient(s.gradient, s.shots is None and s.noise_model is None)
        extra += f", {grad} gradient"
        if grad == "param-shift":
            occurrences = 2 * cfg.n_theta + (2 * cfg.n_loader_angles if s.model == "qmae" else 0)
            extra += f" ({2 * occurrences} circuits per image and step)"
    verb = "Resuming" if resume else "Training"
    return (
        f"{verb} {s.model.upper()} on {s.backend}{extra}: {s.train_samples} MNIST images "
        f"{cfg.image_size}x{cfg.image_size} ({cfg.n_circuit_qubits}-qubit circuit, {cfg.n_theta} angles"
        f"{f' in {cfg.layers} layers' if cfg.layers != 1 else ''}"
        f"{f' of the {cfg.ansatz} ansatz' if cfg.ansatz != 'all-pairs' else ''}"
        f"{f' + {cfg.n_token} {cfg.token} token values' if s.model == 'qmae' else ''}), {s.mask_ratio:.1%} masked in "
        f"{cfg.patch_height}x{cfg.patch_width} patches; {s.epochs} epoch(s) x {s.steps_per_epoch} steps of "
        f"{s.batch_size}, Adam lr {s.lr:g}, seed {s.seed} -> {run_dir}"
    )


def _report(r) -> None:

    new = r.steps - r.start_step
    if new == 0:
        click.echo(f"Nothing to do: {r.run_dir} already finished all {r.steps} steps.")
        return
    samples = sum(int(rec["samples"]) for rec in r.records[-new:])
    parts = [
        f"Done: {new} steps in {r.seconds:.2f} s ({1e6 * r.seconds / max(samples, 1):.0f} us per sample, steps "
        f"{r.start_step + 1}..{r.steps}; loss.png {r.plot_seconds:.1f} s)",
        f"final batch loss {r.last_loss:.4f}",
    ]
    if r.last_epoch_fidelity is not None:
        parts.append(f"mean training fidelity of the last epoch {r.last_epoch_fidelity:.4f}")
    if r.val_fidelity is not None:
        parts.append(f"validation fidelity {r.val_fidelity:.4f} (exact, {r.settings.val_samples} images)")
    click.echo("; ".join(parts) + ".")
    files = ", ".join(str(r.run_dir / f) for f in (CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE, LOSS_PLOT_FILE))
    click.echo(f"Wrote {files}")
