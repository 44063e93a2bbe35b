"""`qmae-qiskit submit` and `qmae-qiskit jobs list|status|fetch|cancel`: evaluation jobs with durable records.

With a fake backend (fake_guadalupe, fake_torino, ...) or a calibration snapshot the same code runs on the
device's local twin and saves results at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from qmae_qiskit.cli.app import main
from qmae_qiskit.cli.options import plan_printer, qpu_budget, qpu_options

JOBS_DIR = click.option(
    "--jobs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("jobs"),
    show_default=True,
    help="Folder of job records.",
)
CLASSIFIER = [
    click.option(
        "--classifier",
        "classifier_dir",
        type=click.Path(path_type=Path),
        default=None,
        help="Classifier folder for the accuracy metric [default: found beside the run, if any].",
    ),
    click.option("--no-classifier", is_flag=True, help="Skip the accuracy metric."),
]


def _classifier_options(fn):
    for opt in reversed(CLASSIFIER):
        fn = opt(fn)
    return fn


def _print_metrics(metrics: dict, path: Path) -> None:
    from qmae_qiskit.evaluate.submit import metrics_lines

    for line in metrics_lines(metrics, path):
        click.echo(line)


@main.command("submit")
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "--backend",
    "backend_name",
    required=True,
    help="IBM backend name; a fake device or calibration snapshot (local twin); aer_simulator.",
)
@click.option("--samples", type=int, required=True, help="Number of test images (the first N of the split).")
@click.option("--shots", type=int, required=True, help="Shots per circuit (Sampler) and per estimate (Estimator).")
@click.option("--noise-model", default=None, help="With --backend aer_simulator: a noise model spec.")
@click.option(
    "--estimator-options",
    "mitigation",
    default=None,
    help="Runtime Estimator options: KEY=VALUE,... (dotted keys nest) or JSON, e.g. 'resilience_level=1,"
    "twirling_gates=true,dd_sequence=XY4' (twirling and DD also reach the Sampler).",
)
@click.option(
    "--readout-mitigation",
    type=click.Choice(["none", "mthree"]),
    default="none",
    show_default=True,
    help="Readout correction of the reconstruction counts (calibrated in the same Batch).",
)
@click.option(
    "--fidelity-circuit",
    type=click.Choice(["auto", "swap-test", "inverse"]),
    default="auto",
    show_default=True,
    help="auto: inverse loader (n+t qubits) on devices, SWAP test on aer_simulator.",
)
@click.option("--optimization-level", type=click.IntRange(0, 3), default=1, show_default=True)
@click.option("--seed-transpiler", type=int, default=1234, show_default=True)
@click.option("--mask-seed", type=int, default=0, show_default=True, help="Seed of the evaluation masks.")
@click.option("--seed-simulator", type=int, default=None, help="Local backends only: simulator seed.")
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="MNIST folder [default: the run's].")
@click.option("--no-qpy", is_flag=True, help="Do not embed the transpiled circuits (QPY) in the record.")
@qpu_options
@JOBS_DIR
@_classifier_options
def submit_cmd(
    run: Path,
    backend_name: str,
    samples: int,
    shots: int,
    noise_model: str | None,
    mitigation: str | None,
    readout_mitigation: str,
    fidelity_circuit: str,
    optimization_level: int,
    seed_transpiler: int,
    mask_seed: int,
    seed_simulator: int | None,
    split: str,
    data_dir: str | None,
    no_qpy: bool,
    dry_run: bool,
    max_qpu_seconds: float | None,
    price_per_second: float,
    jobs_dir: Path,
    classifier_dir: Path | None,
    no_classifier: bool,
) -> None:
    """Submit the evaluation of the trained RUN on N images (Estimator fidelity + Sampler images, one Batch)."""
    from qmae_qiskit.evaluate.submit import Submission, SubmitOptions, submit
    from qmae_qiskit.hardware.jobs import metrics_path
    from qmae_qiskit.hardware.mitigation import parse_mitigation

    opts = SubmitOptions(
        run=run,
        backend=backend_name,
        samples=samples,
        shots=shots,
        noise_model=noise_model,
        split=split,
        fidelity_circuit=fidelity_circuit,
        optimization_level=optimization_level,
        seed_transpiler=seed_transpiler,
        mask_seed=mask_seed,
        seed_simulator=seed_simulator,
        mitigation=parse_mitigation(mitigation, readout_mitigation),
        data_dir=data_dir,
        embed_qpy=not no_qpy,
        budget=qpu_budget(dry_run, max_qpu_seconds, price_per_second),
    )
    sub = submit(opts, jobs_dir, classifier_dir, not no_classifier, say=plan_printer(dry_run))
    if not isinstance(sub, Submission):
        click.echo("dry run: nothing submitted, nothing written")
        return
    rec = sub.record
    click.echo(
        f"submitted {rec.id} to {rec.backend} ({rec.mode}): "
        + ", ".join(f"{r} job {j.job_id}" for r, j in rec.jobs.items())
    )
    click.echo(f"wrote {sub.path}")
    if rec.mode == "local":
        path = metrics_path(jobs_dir, rec.id)
        _print_metrics(json.loads(path.read_text()), path)
    else:
        click.echo(f"fetch the results later with: qmae-qiskit jobs fetch {rec.id}")


@main.group("jobs")
def jobs_group() -> None:
    """Job records written by `submit` and `study`."""


@jobs_group.command("list")
@JOBS_DIR
@click.option("--json", "as_json", is_flag=True)
def list_cmd(jobs_dir: Path, as_json: bool) -> None:
    """All job records, newest first."""
    from qmae_qiskit.hardware.jobs import list_records

    rows = list_records(jobs_dir)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no job records in {jobs_dir}")
        return
    for r in rows:
        if r["status"] == "CORRUPT":
            click.echo(f"{r['id']:40s} CORRUPT   {r['error']}")
            continue
        click.echo(
            f"{r['id']:40s} {r['status']:10s} {r['mode']:5s} {r['purpose']:8s} {r['backend']:16s} "
            f"samples={r['samples']} shots={r['shots']} {r['submitted_at']} run={r['run']}"
            f"{' metrics' if r['metrics'] else ''}"
        )


def _print_status(st: dict) -> None:
    click.echo(f"{st['id']} {st['status']} (" + ", ".join(f"{r} {s}" for r, s in st["jobs"].items()) + ")")


@jobs_group.command("status")
@click.argument("job_id")
@JOBS_DIR
def status_cmd(job_id: str, jobs_dir: Path) -> None:
    """Status of the jobs of a record (asks IBM Quantum for remote jobs)."""
    from qmae_qiskit.hardware.jobs import status

    _print_status(status(jobs_dir, job_id))


@jobs_group.command("fetch")
@click.argument("job_id")
@JOBS_DIR
@_classifier_options
def fetch_cmd(job_id: str, jobs_dir: Path, classifier_dir: Path | None, no_classifier: bool) -> None:
    """Results of a finished record -> its metrics (an evaluation) or its study files (a noise study)."""
    from qmae_qiskit.evaluate import submit
    from qmae_qiskit.hardware.jobs import complete
    from qmae_qiskit.study import noise

    del submit, noise  # imported for their completers, which register themselves with the job store
    done = complete(jobs_dir, job_id, classifier_dir=classifier_dir, use_classifier=not no_classifier)
    for line in done.lines:
        click.echo(line)


@jobs_group.command("cancel")
@click.argument("job_id")
@JOBS_DIR
def cancel_cmd(job_id: str, jobs_dir: Path) -> None:
    """Cancel the unfinished jobs of a record."""
    from qmae_qiskit.hardware.jobs import cancel

    _print_status(cancel(jobs_dir, job_id))
