"""A real IBM device as an executor: one ``Batch``, the client-side primitives, job ids reported at once.

``run`` returns right after submission: each job id reaches ``on_submitted`` as soon as the job is accepted
(the caller writes its record then, before any waiting), and :meth:`RuntimeExecution.result` waits. A job
submitted by an earlier process is read back by :func:`fetch` from its id alone: ``QiskitRuntimeService.job``
decodes executor jobs with the same client-side post-processing, so the result has the same form.
"""

from __future__ import annotations

from typing import Any

from qiskit.providers import BackendV2

from qmae_qiskit.errors import QMAEError, one_line
from qmae_qiskit.hardware.backends import redact, runtime_service
from qmae_qiskit.hardware.execution import EstimatorTask, Execution, Executor, OnSubmitted, Result, Work
from qmae_qiskit.hardware.primitives import (
    estimator_job,
    note_submitted,
    read_estimates,
    read_samples,
    readout_calibration,
    sampler_job,
    shot_floor,
)
from qmae_qiskit.hardware.rep_delay import check_rep_delay

FINAL = ("DONE", "ERROR", "CANCELLED")


class RuntimeExecution(Execution):
    """Submitted jobs by role; ``result`` waits for each and reads it."""

    def __init__(self, jobs: dict[str, Any], readers: dict[str, Any]):
        self.jobs = jobs
        self.readers = readers
        self.job_ids = {role: job.job_id() for role, job in jobs.items()}

    def result(self) -> dict[str, Result]:
        return {role: self.readers[role](wait(role, job)) for role, job in self.jobs.items()}


def wait(role: str, job: Any, job_id: str | None = None) -> Any:
    """The job's PrimitiveResult, or one line saying how it ended."""
    try:
        return job.result()
    except Exception as exc:
        status = status_name(job)
        msg = ""
        try:
            msg = job.error_message() or ""
        except Exception:
            msg = ""
        ident = job_id or job.job_id()
        raise QMAEError(f"job {ident} ({role}) ended {status}: {redact(msg or one_line(exc))}") from None


def status_name(job: Any) -> str:
    status = job.status()
    return str(getattr(status, "name", status)).upper()


class RuntimeExecutor(Executor):
    """An IBM Quantum backend (from ``QiskitRuntimeService``)."""

    kind = "ibm"
    remote = True

    def __init__(self, backend: BackendV2):
        self.backend = backend

    @property
    def target(self) -> BackendV2:
        return self.backend

    @property
    def name(self) -> str:
        return self.backend.name

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "device_qubits": self.backend.num_qubits}

    def run(self, work: Work, on_submitted: OnSubmitted | None = None) -> RuntimeExecution:
        from qiskit_ibm_runtime import Batch  # lazy: qiskit-ibm-runtime adds ~1.6 s

        check_rep_delay(self.backend, work.rep_delay)
        for task in work.tasks.values():
            work.mitigation_of(task).check_runnable("ibm", device=True)
        jobs: dict[str, Any] = {}
        readers: dict[str, Any] = {}
        ids: dict[str, str | None] = {}
        try:
            with Batch(backend=self.backend) as batch:
                for role, task in work.tasks.items():
                    if isinstance(task, EstimatorTask):
                        jobs[role] = estimator_job(batch, task, work)
                    else:
                        jobs[role] = sampler_job(batch, task, work, readout_calibration(task, work))
                    readers[role] = reader(task, work, self.backend.target)
                    note_submitted(role, jobs[role], ids, on_submitted)
        except QMAEError:
            raise
        except Exception as exc:
            done = ", ".join(f"{r} job {i}" for r, i in ids.items()) or "no job"
            raise QMAEError(
                f"submission to {self.backend.name} failed ({type(exc).__name__}: "
                f"{redact(one_line(exc))}); submitted before the failure: {done}"
            ) from None
        return RuntimeExecution(jobs, readers)


def reader(task: Any, work: Work, target: Any = None):
    """How a finished job of ``task`` (run as part of ``work`` on a device of ``target``) becomes an Estimates /
    Samples."""
    if isinstance(task, EstimatorTask):
        floor = shot_floor(task, work, target)
        return lambda result: read_estimates(result, *floor)
    readout = work.mitigation_of(task).readout
    return lambda result: read_samples(result, task.register, task.num_bits, readout)


def fetch(job_ids: dict[str, str]) -> dict[str, Any]:
    """The runtime jobs of a record, by role, from their ids (one line if the service cannot give one)."""
    service = runtime_service()
    out = {}
    for role, job_id in job_ids.items():
        try:
            out[role] = service.job(job_id)
        except Exception as exc:
            raise QMAEError(f"cannot retrieve job {job_id} from IBM Quantum ({redact(one_line(exc))})") from None
    return out
