"""`qmae-qiskit study noise RUN`: device estimates beside exact values, raw and under each mitigation method."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from qmae_qiskit.cli.app import main
from qmae_qiskit.cli.options import plan_printer, qpu_budget, qpu_options


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of numbers") from None


def _dry_run_done(plan: Any, as_json: bool) -> None:
    """A dry run's last words: the plan as JSON with --json, and that nothing ran."""
    if as_json:
        click.echo(json.dumps(plan.model_dump(), indent=2))
    click.echo("dry run: nothing run, nothing written", err=as_json)


@main.group("study")
def study_group() -> None:
    """Studies of what a device gives."""


@study_group.command("noise")
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "--backend",
    required=True,
    help="A fake device (its local twin), a calibration snapshot file, an IBM backend, or aer_simulator "
    "with --noise-model.",
)
@click.option("--noise-model", default=None, help="With --backend aer_simulator: a noise model spec.")
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Test images evaluated (the first N, with the same masks as `evaluate`).",
)
@click.option("--shots", type=click.IntRange(min=1), default=4000, show_default=True)
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
    "--fidelity-circuit", type=click.Choice(["auto", "swap-test", "inverse"]), default="auto", show_default=True
)
@click.option(
    "--loader",
    default=None,
    help="Approximate amplitude loading for the hardware circuits, e.g. 'ladder:2' or 'budget:150' "
    "[default: the exact RY tree]. The exact values compared with are always the paper's circuit's.",
)
@click.option("--optimization-level", type=click.IntRange(0, 3), default=1, show_default=True)
@click.option("--seed-transpiler", type=int, default=1234, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Simulator seed (local backends).")
@click.option("--mask-seed", type=int, default=0, show_default=True)
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
    "--max-error",
    type=click.FloatRange(min=0, min_open=True),
    default=0.05,
    show_default=True,
    help="Predicted standard error of the fidelity above which the verdict says the device does not resolve "
    "the circuit.",
)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="MNIST folder [default: the run's].")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Study JSON [default: results/hardware/study-<backend>-L<size>.json]; .md and .png beside it.",
)
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
@qpu_options
@click.option("--json", "as_json", is_flag=True, help="Print the study JSON.")
def noise_cmd(
    run: Path,
    backend: str,
    noise_model: str | None,
    samples: int,
    shots: int,
    methods: str,
    calibration_images: int,
    calibration_split: str,
    calibration_start: int,
    fidelity_circuit: str,
    loader: str | None,
    optimization_level: int,
    seed_transpiler: int,
    seed: int,
    mask_seed: int,
    zne_noise_factors: str,
    zne_extrapolator: str,
    precision: float | None,
    qpu_budget_s: float | None,
    max_error: float,
    data_dir: str | None,
    out: Path | None,
    jobs_dir: Path,
    scheduler: str | None,
    workers: int | None,
    dry_run: bool,
    max_qpu_seconds: float | None,
    price_per_second: float,
    as_json: bool,
) -> None:
    """Estimate the fidelity and the reconstruction on a device for N test images, raw and mitigated, beside the
    exact values; write the study JSON, a markdown table and a figure."""
    from contextlib import AbstractContextManager, nullcontext

    from qmae_qiskit.hardware.qpu_time import QPUPlan
    from qmae_qiskit.study.design import StudySpec
    from qmae_qiskit.study.noise import run_study
    from qmae_qiskit.study.report import default_out, to_markdown, write_study

    spec = StudySpec(
        run=str(run),
        backend=backend,
        noise_model=noise_model,
        samples=samples,
        shots=shots,
        methods=methods,
        calibration_images=calibration_images,
        calibration_split=calibration_split,
        calibration_start=calibration_start,
        fidelity_circuit=fidelity_circuit,
        loader=loader,
        optimization_level=optimization_level,
        seed_transpiler=seed_transpiler,
        seed=seed,
        mask_seed=mask_seed,
        zne_noise_factors=_floats(zne_noise_factors),
        zne_extrapolator=[x.strip() for x in zne_extrapolator.split(",") if x.strip()],
        precision=precision,
        qpu_budget=qpu_budget_s,
        max_error=max_error,
        data_dir=data_dir,
    )
    context: AbstractContextManager[Any] = nullcontext(None)
    if scheduler is not None or workers is not None:
        from qmae_qiskit.experiments.cluster import get_client

        context = get_client(scheduler, workers)
    budget = qpu_budget(dry_run, max_qpu_seconds, price_per_second)
    say = plan_printer(dry_run and not as_json)
    if dry_run:
        plan = run_study(spec, jobs_dir, None, budget, say)
        _dry_run_done(plan, as_json)
        return
    with context as client:
        study = run_study(spec, jobs_dir, client, budget, say)
    if isinstance(study, str):
        click.echo(
            f"submitted study {study} to {backend}; complete it with: qmae-qiskit jobs fetch {study} "
            f"--jobs-dir {jobs_dir}"
        )
        return
    assert not isinstance(study, QPUPlan)
    paths = write_study(study, out if out is not None else default_out(study))
    if as_json:
        click.echo(json.dumps(study.to_json(), indent=2))
        return
    click.echo(to_markdown(study))
    for p in paths:
        click.echo(f"wrote {p}")


@study_group.command("frontier")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--backend", required=True, help="A fake device or calibration snapshot (local twin).")
@click.option(
    "--loaders",
    default="ladder:4,ladder:8,ladder:12,ladder:16",
    show_default=True,
    help="Comma-separated loaders, one study each ('exact' for the RY tree).",
)
@click.option("--samples", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--shots", type=click.IntRange(min=1), default=20000, show_default=True)
@click.option("--methods", default="raw,recommended", show_default=True)
@click.option("--calibration-images", type=click.IntRange(min=0), default=20, show_default=True)
@click.option("--optimization-level", type=click.IntRange(0, 3), default=3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Frontier JSON [default: results/hardware/frontier-<backend>-L<size>.json]; .md and .png beside.",
)
@qpu_options
def frontier_cmd(
    run: Path,
    backend: str,
    loaders: str,
    samples: int,
    shots: int,
    methods: str,
    calibration_images: int,
    optimization_level: int,
    seed: int,
    data_dir: str | None,
    out: Path | None,
    dry_run: bool,
    max_qpu_seconds: float | None,
    price_per_second: float,
) -> None:
    """Estimate error (each method) against the two-qubit-gate budget: one noise study per approximate loader."""
    from qmae_qiskit.model.approx_loader import as_spec
    from qmae_qiskit.study.design import StudySpec
    from qmae_qiskit.study.frontier import Frontier, run_frontier, to_markdown, write_frontier

    names = [x.strip() for x in loaders.split(",") if x.strip()]
    for name in names:
        as_spec(name)  # one line on a bad loader, before anything runs
    spec = StudySpec(
        run=str(run),
        backend=backend,
        samples=samples,
        shots=shots,
        methods=methods,
        calibration_images=calibration_images,
        optimization_level=optimization_level,
        seed=seed,
        data_dir=data_dir,
    )
    frontier = run_frontier(
        spec, names, budget=qpu_budget(dry_run, max_qpu_seconds, price_per_second), say=plan_printer(dry_run)
    )
    if not isinstance(frontier, Frontier):
        _dry_run_done(frontier, False)
        return
    size = frontier.config.get("image_size")
    paths = write_frontier(frontier, out or Path("results") / "hardware" / f"frontier-{backend}-L{size}.json")
    click.echo(to_markdown(frontier))
    for p in paths:
        click.echo(f"wrote {p}")
