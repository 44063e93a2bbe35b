"""Job records: what was submitted where, written before any waiting, so no job id is ever lost.

A record ``<jobs_dir>/<id>.json`` (a :class:`JobRecord`; ``id`` is the first job's id) names every job of one
submission by role, the executor, the transpiled circuits (QPY, hashes), the parameter-value hashes and the
options; the caller's own context (which run, which images and masks, a study's design) rides in ``context``.
It is written atomically as soon as the first job is accepted and rewritten after each further one, so a
process killed after submission leaves a record that ``jobs fetch`` completes. Raw results go to
``<id>.results.json`` (:class:`JobResults`), scores to ``<id>.metrics.json``. Nothing here ever sees the IBM
token: :func:`qmae_qiskit.hardware.backends.runtime_service` lets the runtime read it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict
from qiskit import qpy
from qiskit.circuit import QuantumCircuit

from qmae_qiskit.errors import QMAEError, one_line
from qmae_qiskit.hardware.backends import redact
from qmae_qiskit.hardware.execution import Estimates, EstimatorTask, Result, SamplerTask, Samples, Task, Work
from qmae_qiskit.hardware.executors.runtime import fetch, status_name, wait
from qmae_qiskit.hardware.primitives import frequencies, observable_support, read_estimates, read_samples, shot_floor
from qmae_qiskit.hardware.qpu_fields import QPUUsage, usage_by_role
from qmae_qiskit.hardware.transpile import two_qubit_count
from qmae_qiskit.records import Record, legacy_provenance, load_record, save_record, utc_now

FINAL = ("DONE", "ERROR", "CANCELLED")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


class JobInfo(BaseModel):
    """One submitted job: its id, which primitive, when, and its last known status."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    primitive: str
    submitted_at: str
    status: str | None = None


class JobRecord(QPUUsage, Record):
    """Everything about one submission needed to fetch, check and score it later."""

    SCHEMA: ClassVar[str] = "qmae-qiskit/job-record"
    VERSION: ClassVar[int] = 2
    WHAT: ClassVar[str] = "job record"

    id: str
    purpose: str = "evaluate"
    status: str = "SUBMITTING"
    mode: str  # "ibm" (jobs run remotely) or "local" (ran at submission)
    backend: str
    executor: dict[str, Any] = {}
    shots: int | None = None
    mitigation: dict[str, Any] = {}
    circuits: dict[str, dict[str, Any]] = {}
    jobs: dict[str, JobInfo] = {}
    context: dict[str, Any] = {}
    notes: list[str] = []
    error: str | None = None
    submitted_at: str | None = None
    updated_at: str | None = None
    results_file: str | None = None
    metrics_file: str | None = None
    device_ranking: list[dict[str, Any]] | None = None  # --backend auto / a list: every candidate, best first
    OMITTED_WHEN_EMPTY: ClassVar[tuple[str, ...]] = ("device_ranking",)  # and QPUUsage's: our estimate, before
    # submission; per role what IBM reports (its estimate, the usage)

    @classmethod
    def upgrade(cls, raw: dict[str, Any], version: int | None) -> dict[str, Any] | None:
        """Version 1 (qmae-qiskit 0.1): the run's context was at the top level; it moves into ``context``."""
        if version != 1 or raw.get("schema") != cls.SCHEMA:
            return None
        own = {
            "id",
            "status",
            "mode",
            "backend",
            "shots",
            "circuits",
            "jobs",
            "notes",
            "error",
            "submitted_at",
            "updated_at",
            "results_file",
            "metrics_file",
        }
        out: dict[str, Any] = {k: raw[k] for k in own if k in raw}
        jobs = {}
        for role, info in (raw.get("jobs") or {}).items():
            jobs[role] = {
                "job_id": info["job_id"],
                "primitive": info.get("primitive", "estimator" if role == "fidelity" else "sampler"),
                "submitted_at": info.get("submitted_at") or raw.get("submitted_at") or "unknown",
                "status": info.get("status"),
            }
        out["jobs"] = jobs
        out["mitigation"] = {"estimator": raw.get("mitigation") or {}, "readout": "none"}
        out["context"] = {
            k: v
            for k, v in raw.items()
            if k not in own and k not in ("schema", "schema_version", "versions", "mitigation", "primitive_options")
        }
        out.update(
            schema=cls.SCHEMA,
            schema_version=cls.VERSION,
            provenance=legacy_provenance(raw.get("submitted_at"), raw.get("versions")),
        )
        return out


class JobResults(Record):
    """Raw results of a record's jobs: per role, estimates (values, stds) or counts (and probabilities)."""

    SCHEMA: ClassVar[str] = "qmae-qiskit/job-results"
    VERSION: ClassVar[int] = 2
    WHAT: ClassVar[str] = "job results"

    id: str
    results: dict[str, dict[str, Any]]

    @classmethod
    def upgrade(cls, raw: dict[str, Any], version: int | None) -> dict[str, Any] | None:
        """Version 1 had ``fidelity.evs/stds`` and ``reconstruction.counts`` at the top level."""
        if raw.get("schema") != cls.SCHEMA or version not in (None, 1) or "fidelity" not in raw:
            return None
        fid, rec = raw["fidelity"], raw["reconstruction"]
        return {
            "schema": cls.SCHEMA,
            "schema_version": cls.VERSION,
            "provenance": legacy_provenance(raw.get("saved_at")),
            "id": raw["id"],
            "results": {
                "fidelity": {"kind": "estimates", "values": fid["evs"], "stds": fid["stds"], "metadata": {}},
                "reconstruction": {
                    "kind": "samples",
                    "counts": rec["counts"],
                    "num_bits": rec["num_bits"],
                    "metadata": {"readout": "none"},
                },
            },
        }

    def to_results(self) -> dict[str, Result]:

        out: dict[str, Result] = {}
        for role, r in self.results.items():
            if r["kind"] == "estimates":
                out[role] = Estimates(np.asarray(r["values"], float), np.asarray(r["stds"], float), r["metadata"])
            elif "probabilities" in r:
                out[role] = Samples(np.asarray(r["probabilities"], float), r.get("counts"), r["metadata"])
            else:
                out[role] = Samples(frequencies(r["counts"], r["num_bits"]), r["counts"], r["metadata"])
        return out


def results_record(record_id: str, results: dict[str, Result]) -> JobResults:
    """Execution results -> the JSON-able results record."""
    out: dict[str, dict[str, Any]] = {}
    for role, r in results.items():
        if isinstance(r, Estimates):
            out[role] = {
                "kind": "estimates",
                "values": r.values.tolist(),
                "stds": r.stds.tolist(),
                "metadata": _jsonable(r.metadata),
            }
        else:
            out[role] = {
                "kind": "samples",
                "counts": r.counts,
                "probabilities": r.probabilities.tolist(),
                "num_bits": int(np.log2(r.probabilities.shape[1])),
                "metadata": _jsonable(r.metadata),
            }
    return JobResults(id=record_id, results=out)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


# ------------------------------------------------------------------------------------------------ paths
def check_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not _ID.match(job_id):
        raise QMAEError(f"{job_id!r} is not a job id (letters, digits, '-' and '_'); see `qmae-qiskit jobs list`")
    return job_id


def record_path(jobs_dir: Path, record_id: str) -> Path:
    return Path(jobs_dir) / f"{check_id(record_id)}.json"


def results_path(jobs_dir: Path, record_id: str) -> Path:
    return Path(jobs_dir) / f"{check_id(record_id)}.results.json"


def metrics_path(jobs_dir: Path, record_id: str) -> Path:
    return Path(jobs_dir) / f"{check_id(record_id)}.metrics.json"


def _is_record_file(path: Path) -> bool:
    return not path.name.endswith((".results.json", ".metrics.json"))


# ---------------------------------------------------------------------------------------- circuits in records
def qpy_bytes(qc: QuantumCircuit) -> bytes:
    buf = io.BytesIO()
    qpy.dump(qc, buf)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def describe_task(task: Task, embed_qpy: bool = True, mitigation: Any = None) -> dict[str, Any]:
    """A task's circuit as the record keeps it: QPY (optional) and hashes, size, and how to read its result."""

    blob = qpy_bytes(task.circuit)
    out: dict[str, Any] = {
        "qpy_sha256": sha256(blob),
        "num_qubits": task.circuit.num_qubits,
        "depth": task.circuit.depth(),
        "two_qubit_gates": two_qubit_count(task.circuit),
        "rows": task.rows,
        "parameter_values_sha256": sha256(np.ascontiguousarray(task.values).tobytes()),
        "qpy_base64": base64.b64encode(blob).decode() if embed_qpy else None,
        "circuit": (task.circuit.metadata or {}).get("qmae_circuit"),
        "mitigation": None if mitigation is None else mitigation.model_dump(),
    }
    if isinstance(task, EstimatorTask):
        out.update(
            primitive="estimator",
            observable_terms=len(task.observable),
            observable_support=observable_support(task.observable),
        )
    else:
        assert isinstance(task, SamplerTask)
        out.update(primitive="sampler", register=task.register, num_bits=task.num_bits)
    return out


# ---------------------------------------------------------------------------------------------- the store
def new_record(
    work: Work,
    executor_info: dict[str, Any],
    backend: str,
    remote: bool,
    purpose: str,
    context: dict[str, Any],
    embed_qpy: bool = True,
    target: Any = None,
) -> JobRecord:
    """A record for ``work`` before submission (id unknown until the first job is accepted); ``target`` (the
    device's) is how its readout error enters a TREX estimate's standard error when the job is fetched."""
    return JobRecord(
        id="pending",
        purpose=purpose,
        mode="ibm" if remote else "local",
        backend=backend,
        executor=executor_info,
        shots=work.shots,
        mitigation=work.mitigation.model_dump(),
        circuits={role: _described(t, work, embed_qpy, target) for role, t in work.tasks.items()},
        context=context,
    )


def _described(task: Task, work: Work, embed_qpy: bool, target: Any = None) -> dict[str, Any]:
    """A task as the record keeps it, with how its standard errors are read back (``binomial_shots`` and
    ``readout_gain``: records written before them have the runtime's)."""
    out = describe_task(task, embed_qpy, work.mitigation_of(task))
    if isinstance(task, EstimatorTask):
        out["binomial_shots"], out["readout_gain"] = shot_floor(task, work, None if target is None else target.target)
    return out


class Recorder:
    """``on_submitted`` for an executor: the record is written at the first job id and after every other."""

    def __init__(self, jobs_dir: Path, record: JobRecord):
        self.jobs_dir = Path(jobs_dir)
        self.record = record
        self.path: Path | None = None

    def __call__(self, role: str, job_id: str) -> None:
        rec = self.record
        primitive = rec.circuits.get(role, {}).get("primitive", "unknown")
        rec.jobs[role] = JobInfo(job_id=check_id(job_id), primitive=primitive, submitted_at=utc_now())
        if self.path is None:
            rec.id = job_id
            rec.submitted_at = utc_now()
            path = record_path(self.jobs_dir, job_id)
            if path.exists():
                raise QMAEError(f"job record {path} already exists; it was not overwritten")
            self.path = path
        rec.status = "SUBMITTED" if len(rec.jobs) == len(rec.circuits) else "SUBMITTING"
        update(self.jobs_dir, rec)


def update(jobs_dir: Path, record: JobRecord, **changes: Any) -> JobRecord:
    """Apply ``changes`` and rewrite the record atomically."""
    for key, value in changes.items():
        setattr(record, key, value)
    record.updated_at = utc_now()
    save_record(record, record_path(jobs_dir, record.id))
    return record


def load(jobs_dir: Path, record_id: str) -> JobRecord:
    """Read a record by its id or any of its job ids; a missing or corrupt one fails with one line, untouched."""
    path = record_path(jobs_dir, record_id)
    if not path.is_file():
        known = find_record_for_job(jobs_dir, record_id)
        if known is not None:
            return load(jobs_dir, known)
        raise QMAEError(f"no job record {path}; see `qmae-qiskit jobs list --jobs-dir {jobs_dir}`")
    rec = load_record(JobRecord, path, "it is corrupt and was left unchanged")
    if rec.id != path.stem:
        raise QMAEError(
            f"job record {path} holds id {rec.id!r}, not {path.stem!r}: renamed or corrupt; it was left unchanged"
        )
    return rec


def find_record_for_job(jobs_dir: Path, job_id: str) -> str | None:
    """The record id holding ``job_id`` (any job of a record finds it)."""

    for path in sorted(Path(jobs_dir).glob("*.json")):
        if not _is_record_file(path):
            continue
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if path.stem != job_id and any(j.get("job_id") == job_id for j in raw.get("jobs", {}).values()):
                return path.stem
        except Exception:
            continue
    return None


def list_records(jobs_dir: Path = Path("jobs")) -> list[dict]:
    """One summary row per record, newest first; a corrupt file is listed as such instead of failing the list."""
    rows: list[dict[str, Any]] = []
    for path in sorted(Path(jobs_dir).glob("*.json")):
        if not _is_record_file(path):
            continue
        try:
            rec = load(jobs_dir, path.stem)
        except QMAEError as exc:
            rows.append({"id": path.stem, "status": "CORRUPT", "error": str(exc)})
            continue
        rows.append(
            {
                "id": rec.id,
                "status": rec.status,
                "mode": rec.mode,
                "purpose": rec.purpose,
                "backend": rec.backend,
                "run": rec.context.get("run"),
                "samples": rec.context.get("samples"),
                "shots": rec.shots,
                "submitted_at": rec.submitted_at,
                "metrics": metrics_path(jobs_dir, rec.id).is_file(),
            }
        )
    return sorted(rows, key=lambda r: r.get("submitted_at") or "", reverse=True)


def save_results(jobs_dir: Path, record: JobRecord, results: dict[str, Result]) -> JobResults:
    """Write the raw results beside the record and mark it DONE."""
    saved = results_record(record.id, results)
    save_record(saved, results_path(jobs_dir, record.id))
    for info in record.jobs.values():
        info.status = "DONE"
    update(jobs_dir, record, status="DONE", results_file=results_path(jobs_dir, record.id).name)
    return saved


def load_results(jobs_dir: Path, record: JobRecord) -> dict[str, Result]:
    return load_record(
        JobResults, results_path(jobs_dir, record.id), "it is missing or corrupt; the job record is unchanged"
    ).to_results()


# --------------------------------------------------------------------------------- completion, by purpose
@dataclass(frozen=True)
class Completion:
    """What completing a record produced: the record written (metrics, a study) and the lines to print."""

    record: Record
    lines: list[str]


Completer = Callable[[Path, JobRecord, dict[str, Any]], Completion]
_COMPLETERS: dict[str, Completer] = {}


def completes(purpose: str) -> Callable[[Completer], Completer]:
    """Register how a record of ``purpose`` is completed (``jobs fetch``): the module that submits records of a
    purpose owns their completion, so the store dispatches on the purpose instead of every caller branching."""

    def register(fn: Completer) -> Completer:
        _COMPLETERS[purpose] = fn
        return fn

    return register


def complete(jobs_dir: Path, record_id: str, **options: Any) -> Completion:
    """Complete a finished record by its purpose's registered completer (``options`` are the completer's)."""
    rec = load(jobs_dir, record_id)
    fn = _COMPLETERS.get(rec.purpose)
    if fn is None:
        raise QMAEError(
            f"record {rec.id} is a {rec.purpose!r} record, which this version cannot complete "
            f"(it completes {', '.join(sorted(_COMPLETERS)) or 'none'})"
        )
    return fn(Path(jobs_dir), rec, options)


# ------------------------------------------------------------------------------------ remote status / cancel
def overall(record: JobRecord, states: dict[str, str]) -> str:
    if len(record.jobs) < len(record.circuits):
        return "INCOMPLETE_SUBMISSION"
    for bad in ("ERROR", "CANCELLED"):
        if bad in states.values():
            return bad
    if all(s == "DONE" for s in states.values()):
        return "DONE"
    return "RUNNING" if "RUNNING" in states.values() else sorted(states.values())[0]


def remote_jobs(record: JobRecord) -> dict[str, Any]:

    return fetch({role: info.job_id for role, info in record.jobs.items()})


def status(jobs_dir: Path, record_id: str) -> dict:
    """Current status of each job of a record (asks IBM for remote jobs; local jobs are final once saved)."""

    rec = load(jobs_dir, record_id)
    if rec.mode == "local" or rec.status in ("FETCHED", "CANCELLED"):
        return {"id": rec.id, "status": rec.status, "jobs": {r: i.status or rec.status for r, i in rec.jobs.items()}}
    states = {role: status_name(job) for role, job in remote_jobs(rec).items()}
    for role, st in states.items():
        rec.jobs[role].status = st
    update(jobs_dir, rec, status=overall(rec, states))
    return {"id": rec.id, "status": rec.status, "jobs": states}


def finished_results(jobs_dir: Path, rec: JobRecord) -> dict[str, Result]:
    """The record's results: from the results file, or fetched from IBM once every job is DONE (then saved)."""

    if results_path(jobs_dir, rec.id).is_file():
        return load_results(jobs_dir, rec)
    if rec.mode == "local":
        raise QMAEError(
            f"local job {rec.id} has no saved results (the process stopped before it finished) and "
            "local jobs cannot be fetched later; submit again"
        )
    if rec.status == "CANCELLED":
        raise QMAEError(f"job {rec.id} was cancelled; submit again")
    if len(rec.jobs) < len(rec.circuits):
        update(jobs_dir, rec, status="INCOMPLETE_SUBMISSION")
        raise QMAEError(
            f"record {rec.id} lacks jobs for {sorted(set(rec.circuits) - set(rec.jobs))} (the "
            "submission was interrupted); submit again"
        )
    jobs = remote_jobs(rec)
    states = {role: status_name(job) for role, job in jobs.items()}
    for role, st in states.items():
        rec.jobs[role].status = st
    pending = {r: s for r, s in states.items() if s not in FINAL}
    if pending:
        update(jobs_dir, rec, status=overall(rec, states))
        raise QMAEError(
            f"job {rec.id} is not finished ({', '.join(f'{r} {s}' for r, s in pending.items())}); fetch again later"
        )
    results: dict[str, Result] = {}
    for role, job in jobs.items():
        try:
            raw = wait(role, job, rec.jobs[role].job_id)
        except QMAEError as exc:
            update(
                jobs_dir,
                rec,
                status=states[role] if states[role] in ("ERROR", "CANCELLED") else "ERROR",
                error=redact(str(exc)),
            )
            raise
        info = rec.circuits[role]
        if info["primitive"] == "estimator":
            results[role] = read_estimates(raw, info.get("binomial_shots"), info.get("readout_gain") or 1.0)
        else:
            readout = str((info.get("mitigation") or rec.mitigation).get("readout", "none"))
            results[role] = read_samples(raw, info["register"], info["num_bits"], readout)
    rec.qpu_usage = usage_by_role(jobs)
    save_results(jobs_dir, rec, results)
    return results


def note_usage(jobs_dir: Path, record: JobRecord, jobs: dict[str, Any]) -> JobRecord:
    """IBM's own usage figures of just-submitted ``jobs`` beside our estimate in the record (rewritten)."""
    if not jobs:
        return record
    return update(jobs_dir, record, qpu_usage=usage_by_role(jobs))


def cancel(jobs_dir: Path, record_id: str) -> dict:
    """Cancel the unfinished jobs of a remote record and mark it CANCELLED (local jobs ran at submission)."""

    rec = load(jobs_dir, record_id)
    if rec.mode == "local":
        raise QMAEError(f"job {rec.id} ran locally at submission; there is nothing to cancel")
    done = {}
    for role, job in remote_jobs(rec).items():
        st = status_name(job)
        if st not in FINAL:
            try:
                job.cancel()
            except Exception as exc:
                raise QMAEError(f"cannot cancel job {rec.jobs[role].job_id} ({redact(one_line(exc))})") from None
            st = "CANCELLED"
        rec.jobs[role].status = st
        done[role] = st
    update(jobs_dir, rec, status="CANCELLED" if "CANCELLED" in done.values() else overall(rec, done))
    return {"id": rec.id, "status": rec.status, "jobs": done}
