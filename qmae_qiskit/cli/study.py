"""`qmae-qiskit study noise RUN`: device estimates beside exact values, raw and under each mitigation method."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import click

from qmae_qiskit.cli.app import QMAEGroup
from qmae_qiskit.cli.options import (
    REQUIRED,
    data_dir_option,
    echo_dry_run,
    echo_json,
    echo_written,
    execution_options,
    execution_spec,
    images_option,
    json_option,
    out_dir_option,
    out_file,
    plan_printer,
)
from qmae_qiskit.cli.spellings import renamed
from qmae_qiskit.experiments.cluster import get_client
from qmae_qiskit.hardware.qpu_time import QPUPlan
from qmae_qiskit.model.approx_loader import as_spec
from qmae_qiskit.study.design import StudySpec
from qmae_qiskit.study.frontier import Frontier, run_frontier, write_frontier
from qmae_qiskit.study.frontier import to_markdown as frontier_markdown
from qmae_qiskit.study.noise import run_study
from qmae_qiskit.study.report import default_out, to_markdown, write_study

STUDY_DIR = Path("results") / "hardware"


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of numbers") from None


metrics_option = click.option(
    "--metrics",
    type=click.Choice(["all", "fidelity"]),
    default="all",
    show_default=True,
    help="What the device estimates: all (fidelity, CS and SSIM) or fidelity alone, which runs no reconstruction "
    "(Sampler) job and so gives a QPU budget's every shot to the fidelity.",
)


@click.group("study", cls=QMAEGroup)
def study_group() -> None:
    """Studies of what a device gives."""


@study_group.command("noise")
@click.argument("run", type=click.Path(path_type=Path))
@images_option(100, help="Test images evaluated (the first N, with the same masks as `evaluate`).")
@execution_options(backend=REQUIRED, shots=4000, mitigation=False)
@click.option(
    "--methods",
    default="raw,trex,mthree,cal,recommended",
    show_default=True,
    help="Comma-separated: raw, trex, zne, twirl, dd, mthree, cal, recommended; combine with '+' "
    "(e.g. trex+cal). raw is always included.",
)
@click.option(
    "--calibration-images",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="K exactly known images run in the same job for the 'cal' method.",
)
@click.option("--calibration-split", type=click.Choice(["train", "test"]), default="train", show_default=True)
@click.option(
    "--calibration-start",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Index of the first calibration image in its split.",
)
@click.option(
    "--calibration-pick",
    type=click.Choice(["spread", "first"]),
    default="spread",
    show_default=True,
    help="Calibration images spread evenly over the split from --calibration-start (every digit: the training "
    "split is sorted by digit), or its first K (how studies were drawn before).",
)
@click.option("--zne-noise-factors", default="1,3,5", show_default=True, help="ZNE folding factors.")
@click.option("--zne-extrapolator", default="exponential,linear", show_default=True)
@click.option(
    "--precision",
    type=float,
    default=None,
    help="Wanted standard error of a calibrated fidelity; too few shots for it is an error.",
)
@click.option(
    "--qpu-budget",
    "qpu_budget_s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="QPU seconds the study may spend: a pilot measures the device, then the shots, calibration images and "
    "whether references pay are chosen for the smallest predicted error (overrides --shots and "
    "--calibration-images).",
)
@click.option(
    "--references",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    show_default=True,
    help="With --qpu-budget: whether the study runs each image's reference circuit (of a method with 'ref'). "
    "auto: only where the pilot sees them lower its residual, which a 12-image pilot rarely sees; on: where you "
    "know they pay (e.g. results/hardware/scatter-sources shows it for the circuit and device).",
)
@click.option(
    "--scatter-from",
    type=click.Choice(["pilot", "noise-model"]),
    default="pilot",
    show_default=True,
    help="With --qpu-budget: the calibration scatter the allocation designs for. pilot: the pilot's, at its 84 %% "
    "upper bound (12 images at 1,000 shots rarely see it); noise-model: what the device's reported noise predicts "
    "for the candidate calibration images (exact, no shots; only the allocation reads it).",
)
@click.option(
    "--max-error",
    type=click.FloatRange(min=0, min_open=True),
    default=0.05,
    show_default=True,
    help="Predicted standard error of the fidelity above which the verdict says the device does not resolve "
    "the circuit.",
)
@metrics_option
@data_dir_option("$QMAE_DATA_DIR, else the run's")
@out_dir_option(f"Folder for study-<backend>-L<size>.json, .md and .png [default: {STUDY_DIR}].")
@click.option(
    "--jobs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("jobs"),
    show_default=True,
    help="Where a real device's job record goes.",
)
@click.option("--scheduler", default=None, help="Split the images over this Dask scheduler's workers.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Split the images over a local Dask cluster of N workers [default: no cluster].",
)
@json_option("the study record")
@renamed({"--samples": "--images", "--seed": "--simulator-seed"})
def noise_cmd(
    run: Path,
    images: int,
    methods: str,
    calibration_images: int,
    calibration_split: str,
    calibration_start: int,
    calibration_pick: str,
    zne_noise_factors: str,
    zne_extrapolator: str,
    precision: float | None,
    qpu_budget_s: float | None,
    references: str,
    scatter_from: str,
    max_error: float,
    metrics: str,
    data_dir: Path | None,
    out: Path | None,
    jobs_dir: Path,
    scheduler: str | None,
    workers: int | None,
    as_json: bool,
    **execution: Any,
) -> None:
    """Estimate the fidelity and the reconstruction on a device for N test images, raw and mitigated, beside the
    exact values; write the study JSON, a markdown table and a figure."""

    spec = StudySpec(
        run=str(run),
        samples=images,
        methods=methods,
        calibration_images=calibration_images,
        calibration_split=calibration_split,
        calibration_start=calibration_start,
        calibration_pick=calibration_pick,
        zne_noise_factors=_floats(zne_noise_factors),
        zne_extrapolator=[x.strip() for x in zne_extrapolator.split(",") if x.strip()],
        precision=precision,
        qpu_budget=qpu_budget_s,
        references=references,
        scatter_from=scatter_from,
        max_error=max_error,
        metrics=metrics,
        data_dir=None if data_dir is None else str(data_dir),
        execution=execution_spec(execution),
    )
    context: AbstractContextManager[Any] = nullcontext(None)
    if scheduler is not None or workers is not None:
        context = get_client(scheduler, workers)
    say = plan_printer(spec.budget.dry_run and not as_json)
    if spec.budget.dry_run:
        echo_dry_run(run_study(spec, jobs_dir, None, say), as_json)
        return
    with context as client:
        study = run_study(spec, jobs_dir, client, say)
    if isinstance(study, str):
        if as_json:
            echo_json({"submitted": study, "backend": spec.backend, "jobs_dir": str(jobs_dir)})
            return
        click.echo(
            f"submitted study {study} to {spec.backend}; complete it with: qmae-qiskit jobs fetch {study} "
            f"--jobs-dir {jobs_dir}"
        )
        return
    assert not isinstance(study, QPUPlan)
    paths = write_study(study, out_file(out, STUDY_DIR, default_out(study).name))
    echo_written(study, as_json, to_markdown(study), paths)


@study_group.command("frontier")
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "--loaders",
    default="ladder:4,ladder:8,ladder:12,ladder:16",
    show_default=True,
    help="Comma-separated loaders, one study each ('exact' for the RY tree).",
)
@images_option(30, help="Test images evaluated (the first N, with the same masks as `evaluate`).")
@execution_options(backend=REQUIRED, shots=20000, mitigation=False, loader=False)
@click.option("--methods", default="raw,recommended", show_default=True)
@click.option("--calibration-images", type=click.IntRange(min=0), default=20, show_default=True)
@metrics_option
@data_dir_option("$QMAE_DATA_DIR, else the run's")
@out_dir_option(f"Folder for frontier-<backend>-L<size>.json, .md and .png [default: {STUDY_DIR}].")
@json_option("the frontier record")
@renamed({"--samples": "--images", "--seed": "--simulator-seed"})
def frontier_cmd(
    run: Path,
    loaders: str,
    images: int,
    methods: str,
    calibration_images: int,
    metrics: str,
    data_dir: Path | None,
    out: Path | None,
    as_json: bool,
    **execution: Any,
) -> None:
    """Estimate error (each method) against the two-qubit-gate budget: one noise study per approximate loader."""
    names = [x.strip() for x in loaders.split(",") if x.strip()]
    for name in names:
        as_spec(name)  # one line on a bad loader, before anything runs
    spec = StudySpec(
        run=str(run),
        samples=images,
        methods=methods,
        calibration_images=calibration_images,
        metrics=metrics,
        data_dir=None if data_dir is None else str(data_dir),
        execution=execution_spec(execution),
    )
    frontier = run_frontier(spec, names, say=plan_printer(spec.budget.dry_run and not as_json))
    if not isinstance(frontier, Frontier):
        echo_dry_run(frontier, as_json)
        return
    size = frontier.config.get("image_size")
    paths = write_frontier(frontier, out_file(out, STUDY_DIR, f"frontier-{spec.backend}-L{size}.json"))
    echo_written(frontier, as_json, frontier_markdown(frontier), paths)
