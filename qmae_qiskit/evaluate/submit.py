"""`submit`: a trained model's evaluation on a device with a durable record; `jobs fetch` scores it later.

The same prepare -> execute -> score path as ``evaluate``, with a :class:`~qmae_qiskit.hardware.jobs.JobRecord`
written the moment the first job is accepted. On an IBM backend it returns right after submission; on a fake
device the twin runs at once and its results and metrics are saved before returning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator

from qmae_qiskit.data import images_sha256, load_split
from qmae_qiskit.errors import QMAEError, one_line
from qmae_qiskit.evaluate.device_choice import with_chosen_device
from qmae_qiskit.evaluate.evaluation import load_classifier
from qmae_qiskit.evaluate.prepare import FIDELITY, RECONSTRUCTION, prepare
from qmae_qiskit.evaluate.scoring import aggregate, score
from qmae_qiskit.hardware import jobs as store
from qmae_qiskit.hardware.backends import redact
from qmae_qiskit.hardware.executors import make_executor
from qmae_qiskit.hardware.qpu_time import QPUPlan, plan_for
from qmae_qiskit.hardware.spec import WithExecution
from qmae_qiskit.records import Record, save_record, utc_now
from qmae_qiskit.train.runs import load_trained


class SubmitOptions(WithExecution):
    """Everything ``submit`` needs, validated up front so nothing is sent on a typo: where and how the circuits
    run (``execution``; no simulator seed unless given) and which images."""

    EXECUTION_DEFAULTS: ClassVar[dict[str, Any]] = {"seed": None}

    run: Path
    samples: int = Field(ge=1)
    split: Literal["test", "train"] = "test"
    data_dir: str | None = None
    embed_qpy: bool = True

    @model_validator(mode="after")
    def _shots_given(self) -> SubmitOptions:
        if self.execution.shots is None:
            raise ValueError("submit needs a number of shots (--shots)")
        return self


class JobMetrics(Record):
    """<id>.metrics.json: a record's results scored by :func:`qmae_qiskit.evaluate.scoring.score`."""

    SCHEMA: ClassVar[str] = "qmae-qiskit/job-metrics"
    VERSION: ClassVar[int] = 1
    WHAT: ClassVar[str] = "job metrics"

    id: str
    backend: str
    mode: str
    run: str
    model: str
    samples: int
    shots: int | None
    split: str
    mask_seed: int
    mitigation: dict[str, Any]
    classifier: dict[str, Any] | None
    metrics: dict[str, Any]
    per_image: dict[str, list[float]]
    scored_at: str


@dataclass
class Submission:
    record: store.JobRecord
    path: Path
    execution: Any  # the executor's Execution (jobs still running on a device)


def _context(prep, opts: SubmitOptions) -> dict[str, Any]:

    tm = prep.tm
    return {
        "run": str(opts.run),
        "model": tm.kind,
        "step": tm.step,
        "config": tm.cfg.model_dump(),
        "mask_ratio": tm.mask_ratio,
        "split": opts.split,
        "samples": len(prep.images),
        "image_indices": prep.indices.tolist(),
        "labels": prep.labels.tolist(),
        "images_sha256": images_sha256(prep.images),
        "data_dir": opts.data_dir if opts.data_dir is not None else tm.data_dir,
        "mask_seed": opts.execution.mask_seed,
        "mask_indices": prep.patch_idx.tolist(),
        "fidelity_circuit": prep.fidelity_circuit,
        "optimization_level": opts.execution.optimization_level,
        "seed_transpiler": opts.execution.seed_transpiler,
        "transpile_seconds": round(prep.transpile_seconds, 3),
        **({"loader": opts.execution.loader} if opts.execution.loader else {}),
        **({"placement": opts.execution.placement} if opts.execution.placement != "qiskit" else {}),
        **({"rep_delay": opts.execution.rep_delay} if opts.execution.rep_delay is not None else {}),
    }


def _prepare(opts: SubmitOptions) -> tuple[Any, Any]:
    """(the executor, the prepared work) of a submission: its images read and its circuits built, or one line
    on what is wrong, before anything is planned or sent."""

    tm = load_trained(opts.run)
    spec = opts.execution
    executor = make_executor(spec.backend, spec.noise_model, spec.idle)
    data = load_split(
        opts.data_dir if opts.data_dir is not None else tm.data_dir, opts.split, tm.cfg.image_size, limit=opts.samples
    )
    if len(data) < opts.samples:
        raise QMAEError(f"--images {opts.samples} is more than the {len(data)} images of the {opts.split} split")
    prep = prepare(tm, data, opts.execution, executor)
    if executor.kind == "exact":
        raise QMAEError("submit runs on a device, its twin or aer_simulator; for exact values use `evaluate`")
    return executor, prep


def submit(
    opts: SubmitOptions,
    jobs_dir: Path = Path("jobs"),
    classifier_dir: str | Path | None = None,
    use_classifier: bool = True,
    say: Callable[[str], None] | None = None,
) -> Submission | QPUPlan:
    """Submit the N-image evaluation (Estimator fidelity + Sampler reconstruction) and write the record at once.
    Its QPU plan goes to ``say`` first; a dry run returns the plan and submits and writes nothing. ``--backend
    auto`` or a list submits to the device of lowest expected error (:mod:`~qmae_qiskit.evaluate.device_choice`)."""

    opts, ranking = with_chosen_device(opts, opts.run, say)
    opts = opts.on_planned_backend(say)
    spec = opts.execution
    executor, prep = _prepare(opts)
    plan = plan_for(prep.work, executor, opts.budget, say)
    if opts.budget.dry_run:
        assert plan is not None
        return plan
    record = store.new_record(
        prep.work,
        executor.describe(),
        executor.name if executor.remote else spec.backend,
        executor.remote,
        "evaluate",
        _context(prep, opts),
        opts.embed_qpy,
        executor.target,
    )
    record.attach_plan(plan)
    record.device_ranking = ranking
    recorder = store.Recorder(jobs_dir, record)
    try:
        execution = executor.run(prep.work, on_submitted=recorder)
        if executor.remote:
            store.note_usage(jobs_dir, record, getattr(execution, "jobs", {}))
        results = None if executor.remote else execution.result()
    except QMAEError as exc:
        if recorder.path is not None:
            store.update(jobs_dir, record, status="SUBMIT_FAILED", error=redact(str(exc)))
            raise QMAEError(f"{exc}; the record {recorder.path} keeps what was submitted") from None
        raise
    except Exception as exc:
        where = f"; the record {recorder.path} keeps what was submitted" if recorder.path else ""
        if recorder.path is not None:
            store.update(jobs_dir, record, status="SUBMIT_FAILED", error=redact(one_line(exc)))
        raise QMAEError(
            f"submission to {spec.backend} failed ({type(exc).__name__}: {redact(one_line(exc))}){where}"
        ) from None
    assert recorder.path is not None
    if results is not None:
        store.save_results(jobs_dir, record, results)
        try:
            score_record(jobs_dir, record, classifier_dir, use_classifier)
        except QMAEError as exc:
            raise QMAEError(
                f"results of {record.id} saved to {store.results_path(jobs_dir, record.id)}, but "
                f"scoring failed: {exc}; once fixed, run `qmae-qiskit jobs fetch {record.id}`"
            ) from None
    return Submission(record, recorder.path, execution)


def score_record(
    jobs_dir: Path, rec: store.JobRecord, classifier_dir: str | Path | None = None, use_classifier: bool = True
) -> JobMetrics:
    """Saved results -> metrics with :func:`qmae_qiskit.evaluate.scoring.score` (the code ``evaluate`` uses)."""

    ctx = rec.context
    results = store.load_results(jobs_dir, rec)
    data = load_split(
        ctx.get("data_dir"), ctx["split"], ctx["config"]["image_size"], indices=list(ctx["image_indices"])
    )
    if images_sha256(data.images) != ctx["images_sha256"]:
        raise QMAEError(
            f"the {ctx['split']} images at {ctx.get('data_dir')} differ from those submitted (hash "
            "mismatch); point --data-dir at the same MNIST copy"
        )
    probs = torch.as_tensor(results[RECONSTRUCTION].probabilities, dtype=torch.float64)  # type: ignore[union-attr]
    fids = torch.as_tensor(results[FIDELITY].values, dtype=torch.float64)  # type: ignore[union-attr]
    clf, info, path = (
        load_classifier(Path(ctx["run"]), classifier_dir, required=classifier_dir is not None)
        if use_classifier
        else (None, None, None)
    )
    per_image = score(probs, fids, data.images, data.labels, clf)
    metrics = JobMetrics(
        id=rec.id,
        backend=rec.backend,
        mode=rec.mode,
        run=ctx["run"],
        model=ctx["model"],
        samples=ctx["samples"],
        shots=rec.shots,
        split=ctx["split"],
        mask_seed=ctx["mask_seed"],
        mitigation=rec.mitigation,
        classifier=None if info is None else {"path": str(path), "clean_test_accuracy": info.get("test_accuracy")},
        metrics=aggregate(per_image),
        per_image={k: v.tolist() for k, v in per_image.items()},
        scored_at=utc_now(),
    )
    save_record(metrics, store.metrics_path(jobs_dir, rec.id))
    store.update(jobs_dir, rec, status="FETCHED", metrics_file=store.metrics_path(jobs_dir, rec.id).name)
    return metrics


def fetch(
    jobs_dir: Path, record_id: str, classifier_dir: str | Path | None = None, use_classifier: bool = True
) -> JobMetrics:
    """Results of a record (fetched from IBM if not saved yet) -> ``<id>.metrics.json``."""
    rec = store.load(jobs_dir, record_id)
    if rec.purpose != "evaluate":
        raise QMAEError(
            f"record {rec.id} belongs to a {rec.purpose}; complete it with `qmae-qiskit {rec.purpose} fetch {rec.id}`"
        )
    store.finished_results(jobs_dir, rec)
    return score_record(jobs_dir, rec, classifier_dir, use_classifier)


def metrics_lines(metrics: dict[str, Any], path: Path) -> list[str]:
    """What ``submit`` and ``jobs fetch`` print for scored metrics: one line per metric, then the file."""
    lines = [
        f"{name:9s} {m['mean']:.4f} +- {m.get('sem', 0.0):.4f} (n={m.get('n', metrics['samples'])})"
        for name, m in metrics["metrics"].items()
    ]
    return [*lines, f"wrote {path}"]


@store.completes("evaluate")
def complete_record(jobs_dir: Path, rec: store.JobRecord, options: dict[str, Any]) -> store.Completion:
    """``jobs fetch`` for an evaluation: its results (fetched from IBM if not saved yet) scored into metrics."""
    store.finished_results(jobs_dir, rec)
    metrics = score_record(jobs_dir, rec, options.get("classifier_dir"), options.get("use_classifier", True))
    return store.Completion(metrics, metrics_lines(metrics.to_json(), store.metrics_path(jobs_dir, rec.id)))
