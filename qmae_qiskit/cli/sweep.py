"""`qmae-qiskit sweep`: a grid of exact-path training runs, evaluated alike, on a Dask cluster, with intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from qmae_qiskit.cli.options import (
    config_options,
    data_dir_option,
    data_dir_or_default,
    device_option,
    echo_json,
    images_option,
    json_option,
    mask_seed_option,
    out_dir_option,
    token_option,
)
from qmae_qiskit.cli.spellings import QMAECommand, renamed
from qmae_qiskit.cli.train import SETTING_KEYS, SHAPE_KEYS
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.experiments.cells import EvalSpec
from qmae_qiskit.experiments.grid import load_grid_blocks, merge_grids, parse_grid_args
from qmae_qiskit.experiments.reproduce import Execution
from qmae_qiskit.experiments.summary import to_markdown
from qmae_qiskit.experiments.sweep import run_sweep
from qmae_qiskit.train.defaults import BACKEND_DEFAULTS

EXACT = BACKEND_DEFAULTS["exact"]
# every train setting that means something on the exact path, the model's shape, and the judge's seed
TRAIN_KEYS = (
    *(k for k in SETTING_KEYS if k not in ("backend", "shots", "noise_model", "gradient")),
    *SHAPE_KEYS,
    "classifier_seed",
)
AXIS_OPTIONS = {"patch": ("patch_height", "patch_width")}  # grid axes set by other option names


@click.command("sweep", cls=QMAECommand)
@click.option("--grid", "grid_args", multiple=True, metavar="NAME=V1,V2,...", help="A swept option; repeat it.")
@click.option(
    "--grid-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help='TOML file with a [grid] table, e.g. `seed = [0, 1, 2]` and `patch = ["4x8", "8x8"]`, or several '
    "[[grid]] blocks whose cells are joined (--grid axes apply to each).",
)
@out_dir_option("Sweep folder: a run folder per cell, summary.json, summary.md, plots/.", required=True)
@images_option()
@mask_seed_option
@click.option("--scheduler", default=None, help="Address of a running dask.distributed scheduler (tcp://host:8786).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Local cluster processes [default: cores].")
@click.option("--connect-timeout", type=float, default=5.0, show_default=True, help="Seconds to wait for --scheduler.")
@click.option("--model", type=click.Choice(["qmae", "qae"]), default="qmae", show_default=True)
@config_options
@token_option
@click.option("--mask-ratio", type=float, default=0.25, show_default=True, help="Patch grid defaults per ratio.")
@click.option("--epochs", type=click.IntRange(min=1), default=EXACT["epochs"], show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=EXACT["batch_size"], show_default=True)
@click.option(
    "--train-images",
    "train_samples",
    type=click.IntRange(min=1),
    default=EXACT["train_samples"],
    show_default=True,
    help="Training images per cell.",
)
@click.option(
    "--val-images",
    "val_samples",
    type=click.IntRange(min=0),
    default=EXACT["val_samples"],
    show_default=True,
    help="Held-out images scored after each epoch.",
)
@click.option("--lr", type=float, default=0.01, show_default=True)
@click.option("--beta1", type=float, default=0.9, show_default=True)
@click.option("--beta2", type=float, default=0.999, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Training seed of cells that do not sweep it.")
@click.option("--theta-init", type=click.Choice(["uniform", "normal"]), default="uniform", show_default=True)
@click.option("--theta-scale", type=float, default=0.1, show_default=True)
@click.option("--token-init", type=click.Choice(["mean", "uniform", "constant"]), default="mean", show_default=True)
@click.option("--token-value", type=float, default=0.5, show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=EXACT["checkpoint_every"], show_default=True)
@click.option("--precision", type=click.Choice(["float64", "float32"]), default="float64", show_default=True)
@click.option("--classifier-seed", type=int, default=0, show_default=True, help="Of cells that do not sweep it.")
@click.option("--classifier-epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--classifier-recipe",
    type=click.IntRange(2, 3),
    default=3,
    show_default=True,
    help="How the classifier is computed (3: one-pixel convolutions as matrix products, faster); 2 reproduces "
    "classifiers recorded as v2, such as results/sweeps/ablation's.",
)
@click.option(
    "--classifier-per-seed",
    is_flag=True,
    help="Judge each cell by the classifier whose seed is its training seed (Table 1 over seeds).",
)
@click.option(
    "--classifier-train-images",
    "classifier_limit",
    type=click.IntRange(min=2),
    default=None,
    help="Classifier training images (the first N) [default: all].",
)
@data_dir_option()
@click.option("--plots/--no-plots", default=True, show_default=True, help="Write plots/<metric>-vs-<axis>.png.")
@json_option("summary.json")
@renamed(
    {
        "--eval-limit": "--images",
        "--train-samples": "--train-images",
        "--val-samples": "--val-images",
        "--classifier-limit": "--classifier-train-images",
    }
)
@device_option
def sweep_cmd(
    grid_args: tuple[str, ...],
    grid_file: Path | None,
    out: Path,
    images: int | None,
    mask_seed: int,
    scheduler: str | None,
    workers: int | None,
    connect_timeout: float,
    beta1: float,
    beta2: float,
    classifier_epochs: int,
    classifier_recipe: int,
    classifier_per_seed: bool,
    classifier_limit: int | None,
    data_dir: Path | None,
    plots: bool,
    as_json: bool,
    device: str,
    **opts: Any,
) -> None:
    """Train and evaluate every cell of a grid (exact backend) on Dask; summary.json/md with 95 % intervals.

    Each cell is a run folder under --out named by its swept values; all cells are scored on the same test
    images and masks, one classifier per classifier seed is trained once and shared. Rerunning skips finished
    cells; a failed cell is recorded (error.txt and the summary) and the others go on.
    """

    cli_grid = parse_grid_args(grid_args)
    ctx = click.get_current_context()
    flags = {p.name: p.opts[0] for p in ctx.command.params if p.opts}
    blocks = [merge_grids(cli_grid, b) for b in load_grid_blocks(grid_file)] if grid_file else [cli_grid]
    if classifier_per_seed and ctx.get_parameter_source("classifier_seed") not in (ParameterSource.DEFAULT, None):
        raise QMAEError("--classifier-per-seed ties each cell's classifier seed to its seed; drop --classifier-seed")
    for axis in dict.fromkeys(a for b in blocks for a in b):
        for name in AXIS_OPTIONS.get(axis, (axis,)):
            if name in ctx.params and ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None):
                raise QMAEError(f"{axis} is swept by the grid and also given as {flags[name]}; keep one")
    base = {k: opts[k] for k in TRAIN_KEYS}
    base["betas"] = (beta1, beta2)
    log = (lambda msg: click.echo(msg, err=True)) if as_json else click.echo
    result = run_sweep(
        blocks if len(blocks) > 1 else blocks[0],
        base,
        out,
        data_dir=data_dir_or_default(data_dir),
        classifier={
            "epochs": classifier_epochs,
            "limit": classifier_limit,
            "per_seed": classifier_per_seed,
            "recipe": classifier_recipe,
        },
        evaluation=EvalSpec(limit=images, mask_seed=mask_seed),
        plots=plots,
        execution=Execution(
            workers=workers, device=device, log=log, scheduler=scheduler, connect_timeout=connect_timeout
        ),
    )
    if as_json:
        echo_json(result.summary)
        return
    click.echo(to_markdown(result.summary))
    click.echo(f"wrote {out / 'summary.json'}, {out / 'summary.md'} and {len(result.files) - 2} plot(s)")
    if result.report.failed:
        raise SystemExit(1)
