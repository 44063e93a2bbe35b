"""`qmae-qiskit submit` and `qmae-qiskit jobs list|status|fetch|cancel`: evaluation jobs with durable records.

With a fake backend (fake_guadalupe, fake_torino, ...) or a calibration snapshot the same code runs on the
device's local twin and saves results at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

import qmae_qiskit.evaluate.submit
import qmae_qiskit.study.noise  # noqa: F401  (registers its completer with the job store)
from qmae_qiskit.cli.app import QMAEGroup
from qmae_qiskit.cli.options import (
    REQUIRED,
    data_dir_option,
    echo_dry_run,
    echo_json,
    execution_options,
    execution_spec,
    images_option,
    json_option,
    plan_printer,
)
from qmae_qiskit.cli.spellings import QMAECommand, renamed
from qmae_qiskit.evaluate.submit import Submission, SubmitOptions, metrics_lines, submit
from qmae_qiskit.hardware.jobs import cancel, complete, list_records, metrics_path, status

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

    for line in metrics_lines(metrics, path):
        click.echo(line)


@click.command("submit", cls=QMAECommand)
@click.argument("run", type=click.Path(path_type=Path))
@images_option(required=True, help="Number of test images (the first N of the split).")
@execution_options(backend=REQUIRED, shots=REQUIRED, simulator_seed=None)
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True)
@data_dir_option("$QMAE_DATA_DIR, else the run's")
@click.option("--no-qpy", is_flag=True, help="Do not embed the transpiled circuits (QPY) in the record.")
@JOBS_DIR
@_classifier_options
@json_option("the job record (and its metrics, for a local backend)")
@renamed({"--samples": "--images"})
def submit_cmd(
    run: Path,
    images: int,
    split: str,
    data_dir: Path | None,
    no_qpy: bool,
    jobs_dir: Path,
    classifier_dir: Path | None,
    no_classifier: bool,
    as_json: bool,
    **execution: Any,
) -> None:
    """Submit the evaluation of the trained RUN on N images (Estimator fidelity + Sampler images, one Batch)."""

    opts = SubmitOptions(
        run=run,
        samples=images,
        split=split,
        data_dir=None if data_dir is None else str(data_dir),
        embed_qpy=not no_qpy,
        execution=execution_spec(execution),
    )
    say = plan_printer(opts.budget.dry_run and not as_json)
    sub = submit(opts, jobs_dir, classifier_dir, not no_classifier, say=say)
    if not isinstance(sub, Submission):
        echo_dry_run(sub, as_json)
        return
    rec = sub.record
    if as_json:
        local = rec.mode == "local"
        metrics = json.loads(metrics_path(jobs_dir, rec.id).read_text()) if local else None
        echo_json({"record": rec.to_json(), "metrics": metrics})
        return
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


@click.group("jobs", cls=QMAEGroup)
def jobs_group() -> None:
    """Job records written by `submit` and `study`."""


@jobs_group.command("list")
@JOBS_DIR
@json_option("the rows")
def list_cmd(jobs_dir: Path, as_json: bool) -> None:
    """All job records, newest first."""

    rows = list_records(jobs_dir)
    if as_json:
        echo_json(rows)
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
@json_option("the status")
def status_cmd(job_id: str, jobs_dir: Path, as_json: bool) -> None:
    """Status of the jobs of a record (asks IBM Quantum for remote jobs)."""

    st = status(jobs_dir, job_id)
    echo_json(st) if as_json else _print_status(st)


@jobs_group.command("fetch")
@click.argument("job_id")
@JOBS_DIR
@_classifier_options
@json_option("the metrics record (an evaluation) or the study record (a noise study)")
def fetch_cmd(job_id: str, jobs_dir: Path, classifier_dir: Path | None, no_classifier: bool, as_json: bool) -> None:
    """Results of a finished record -> its metrics (an evaluation) or its study files (a noise study)."""

    done = complete(jobs_dir, job_id, classifier_dir=classifier_dir, use_classifier=not no_classifier)
    if as_json:
        echo_json(done.record)
        return
    for line in done.lines:
        click.echo(line)


@jobs_group.command("cancel")
@click.argument("job_id")
@JOBS_DIR
@json_option("the status after cancelling")
def cancel_cmd(job_id: str, jobs_dir: Path, as_json: bool) -> None:
    """Cancel the unfinished jobs of a record."""

    st = cancel(jobs_dir, job_id)
    echo_json(st) if as_json else _print_status(st)
