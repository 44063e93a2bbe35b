"""Evaluation jobs on IBM Quantum (or a fake backend in local testing mode): submit, record, fetch, cancel.

``submit`` transpiles the SWAP-test circuit (fidelity, Estimator, observable mapped through the layout) and the
reconstruction circuit (images, Sampler) once each, binds N test images as one parameter sweep per primitive and
submits both in one ``Batch``. The record ``<id>.json`` is written atomically right after the first job is
accepted and completed after the second, before any waiting, so a process killed after submission leaves a
record that ``jobs fetch`` finishes later. Local jobs (fake backends) cannot be fetched later, so their raw
results are saved at once. Raw results go to ``<id>.results.json`` and the scores -- computed by
:func:`qmae_qiskit.evaluate.evaluation.score`, the same code as ``evaluate`` -- to ``<id>.metrics.json``.
Nothing here ever sees the IBM token: :func:`qmae_qiskit.hardware.backends.runtime_service` lets the runtime read it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import platform
import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from qiskit import qpy
from qiskit.circuit import QuantumCircuit

from qmae_qiskit.errors import QMAEError, one_line
from qmae_qiskit.hardware.backends import (
    ensure_fits,
    ensure_operational,
    is_fake_name,
    redact,
    resolve_backend,
    runtime_service,
)
from qmae_qiskit.hardware.mitigation import MitigationOptions
from qmae_qiskit.hardware.transpile import DEFAULT_SEED, map_observable, transpile_for
from qmae_qiskit.io import atomic_write_json, read_json

SCHEMA = "qmae-qiskit/job-record"
SCHEMA_VERSION = 1
FINAL = ("DONE", "ERROR", "CANCELLED")
ROLES = ("fidelity", "reconstruction")  # Estimator (SWAP test <Z>), Sampler (pixel counts)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


class SubmitOptions(BaseModel):
    """Everything ``submit`` needs, validated up front so nothing is sent on a typo."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: Path
    backend: str
    samples: int = Field(ge=1)
    shots: int = Field(ge=1)
    split: Literal["test", "train"] = "test"
    optimization_level: int = Field(1, ge=0, le=3)
    seed_transpiler: int = DEFAULT_SEED
    mask_seed: int = 0
    seed_simulator: int | None = Field(None, description="local testing mode only: seed of the simulator")
    fidelity_circuit: Literal["swap-test", "inverse"] = Field(
        "swap-test", description="SWAP test (2n+2 qubits, the paper's) or inverse clean-image loader (n+t qubits)"
    )
    mitigation: MitigationOptions = Field(default_factory=MitigationOptions)
    data_dir: str | None = None
    embed_qpy: bool = True


# --------------------------------------------------------------------------------------------- helpers
def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _status_name(status: Any) -> str:
    return str(getattr(status, "name", status)).upper()


def _qpy_bytes(qc: QuantumCircuit) -> bytes:
    buf = io.BytesIO()
    qpy.dump(qc, buf)
    return buf.getvalue()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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


@contextmanager
def _runtime_warnings(notes: list[str]) -> Iterator[None]:
    """Silence the V2 primitives' deprecation notice; keep local-mode 'option has no effect' notes for the record."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, DeprecationWarning) and "is deprecated as of qiskit-ibm-runtime" in text:
            continue
        if "no effect in local testing mode" in text:
            notes.append(redact(text))
        elif not issubclass(w.category, DeprecationWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


# ---------------------------------------------------------------------------------------------- records
def load_record(jobs_dir: Path, record_id: str) -> dict:
    """Read a record; a missing or corrupt one fails with one line and is left as it is."""
    path = record_path(jobs_dir, record_id)
    if not path.is_file():
        known = find_record_for_job(jobs_dir, record_id)
        if known is not None:
            return load_record(jobs_dir, known)
        raise QMAEError(f"no job record {path}; see `qmae-qiskit jobs list --jobs-dir {jobs_dir}`")
    rec = read_json(path, "job record", "it is corrupt and was left unchanged")
    if not isinstance(rec, dict) or rec.get("schema") != SCHEMA or not isinstance(rec.get("jobs"), dict):
        raise QMAEError(f"job record {path} is not a qmae-qiskit job record; it was left unchanged")
    if rec.get("id") != path.stem:
        raise QMAEError(
            f"job record {path} holds id {rec.get('id')!r}, not {path.stem!r}: renamed or corrupt; "
            "it was left unchanged"
        )
    if rec.get("schema_version") != SCHEMA_VERSION:
        raise QMAEError(
            f"job record {path} has schema version {rec.get('schema_version')!r}; this version reads {SCHEMA_VERSION}"
        )
    return rec


def find_record_for_job(jobs_dir: Path, job_id: str) -> str | None:
    """The record id holding ``job_id`` (the reconstruction job's id also finds its record)."""
    for path in sorted(Path(jobs_dir).glob("*.json")):
        if path.name.endswith((".results.json", ".metrics.json")):
            continue
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
            if path.stem != job_id and any(j.get("job_id") == job_id for j in rec.get("jobs", {}).values()):
                return path.stem
        except Exception:
            continue
    return None


def _write_new(path: Path, record: dict) -> Path:
    if path.exists():
        raise QMAEError(f"job record {path} already exists; it was not overwritten")
    return atomic_write_json(path, record)


def _update(jobs_dir: Path, record: dict, **changes: Any) -> dict:
    record.update(changes)
    record["updated_at"] = _now()
    atomic_write_json(record_path(jobs_dir, record["id"]), record)
    return record


def list_records(jobs_dir: Path = Path("jobs")) -> list[dict]:
    """One summary row per record, newest first; a corrupt file is listed as such instead of failing the list."""
    rows = []
    for path in sorted(Path(jobs_dir).glob("*.json")):
        if path.name.endswith((".results.json", ".metrics.json")):
            continue
        try:
            rec = load_record(jobs_dir, path.stem)
        except QMAEError as exc:
            rows.append({"id": path.stem, "status": "CORRUPT", "error": str(exc)})
            continue
        rows.append(
            {
                "id": rec["id"],
                "status": rec.get("status"),
                "mode": rec.get("mode"),
                "backend": rec.get("backend"),
                "run": rec.get("run"),
                "samples": rec.get("samples"),
                "shots": rec.get("shots"),
                "submitted_at": rec.get("submitted_at"),
                "metrics": metrics_path(jobs_dir, rec["id"]).is_file(),
            }
        )
    return sorted(rows, key=lambda r: r.get("submitted_at") or "", reverse=True)


# ---------------------------------------------------------------------------------------------- prepare
@dataclass
class Prepared:
    """Everything computed before submission: the model, images, masks, ISA circuits and parameter values."""

    tm: Any
    backend: Any
    remote: bool
    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    patch_idx: torch.Tensor
    isa_fidelity: QuantumCircuit
    observable: Any
    isa_reconstruction: QuantumCircuit
    values_fidelity: np.ndarray
    values_reconstruction: np.ndarray
    transpile_seconds: float


def load_images(
    data_dir: str | None, split: str, image_size: int, indices: list[int] | None = None, limit: int | None = None
):
    """The split's images (first ``limit``, or exactly ``indices``) as an ImageSet."""
    from qmae_qiskit.data import load_mnist

    if indices is not None:
        limit = max(indices) + 1
    data = load_mnist(data_dir, train=split == "train", image_size=image_size, limit=limit)
    if indices is None:
        return data
    pos = {int(i): r for r, i in enumerate(data.indices.tolist())}
    try:
        rows = torch.tensor([pos[int(i)] for i in indices])
    except KeyError as exc:
        raise QMAEError(f"image index {exc} of the record is not in the {split} split at {data_dir}") from None
    return data.subset(rows)


def _image_hash(images: torch.Tensor) -> str:
    return _sha256(images.to(torch.float64).contiguous().numpy().tobytes())


def prepare(opts: SubmitOptions) -> Prepared:
    from qmae_qiskit.model.circuits import (
        fidelity_observable,
        inverse_fidelity_circuit,
        parameter_values,
        reconstruction_circuit,
        training_circuit,
    )
    from qmae_qiskit.model.masking import eval_masks
    from qmae_qiskit.train.runs import load_trained

    tm = load_trained(opts.run)
    cfg = tm.cfg
    remote = not is_fake_name(opts.backend)
    if opts.fidelity_circuit == "swap-test":
        train_qc = training_circuit(cfg)
        logical_obs = fidelity_observable(train_qc.num_qubits, train_qc.metadata["ancilla"])
    else:
        train_qc, logical_obs = inverse_fidelity_circuit(cfg)
    rec_qc = reconstruction_circuit(cfg, measure=True)
    backend = resolve_backend(opts.backend)
    try:
        ensure_fits(
            train_qc.num_qubits,
            backend,
            f"{opts.fidelity_circuit} fidelity circuit",
            "use a larger backend or a run trained on smaller images",
        )
    except QMAEError as exc:
        if opts.fidelity_circuit == "swap-test" and rec_qc.num_qubits <= backend.num_qubits:
            raise QMAEError(f"{exc}, or pass --fidelity-circuit inverse ({rec_qc.num_qubits} qubits)") from None
        raise
    ensure_operational(backend, remote=remote)
    data = load_images(
        opts.data_dir if opts.data_dir is not None else tm.data_dir, opts.split, cfg.image_size, limit=opts.samples
    )
    if len(data.images) < opts.samples:
        raise QMAEError(
            f"--samples {opts.samples} is more than the {len(data.images)} images of the {opts.split} split"
        )
    patch_idx = eval_masks(cfg, tm.mask_ratio, data.indices, opts.mask_seed)
    with torch.no_grad():
        x_masked = tm.module().masked_inputs(data.images, patch_idx)
    clean = data.images.reshape(len(data.images), -1).to(torch.float64)
    t0 = time.perf_counter()
    isa_f = transpile_for(train_qc, backend, opts.optimization_level, opts.seed_transpiler)
    isa_r = transpile_for(rec_qc, backend, opts.optimization_level, opts.seed_transpiler)
    seconds = time.perf_counter() - t0
    obs = map_observable(logical_obs, isa_f)
    return Prepared(
        tm,
        backend,
        remote,
        data.images,
        data.labels,
        data.indices,
        patch_idx,
        isa_f,
        obs,
        isa_r,
        parameter_values(isa_f, tm.theta, x_masked, clean),
        parameter_values(isa_r, tm.theta, x_masked),
        seconds,
    )


# ----------------------------------------------------------------------------------------------- submit
@dataclass
class Submission:
    record: dict
    path: Path
    jobs: dict  # role -> runtime job object (for callers that keep the process alive)


def _primitive_options(opts: SubmitOptions, remote: bool) -> tuple[dict, dict]:
    est = {**opts.mitigation.estimator_options(), "default_shots": opts.shots}
    samp = {**opts.mitigation.sampler_options(), "default_shots": opts.shots}
    if not remote and opts.seed_simulator is not None:
        est["simulator"] = {"seed_simulator": opts.seed_simulator}
        samp["simulator"] = {"seed_simulator": opts.seed_simulator}
    return est, samp


def submit(
    opts: SubmitOptions,
    jobs_dir: Path = Path("jobs"),
    classifier_dir: str | Path | None = None,
    use_classifier: bool = True,
) -> Submission:
    """Submit the N-image evaluation as one Estimator and one Sampler job in a Batch; write the record at once.

    With a fake backend the jobs run in local testing mode and their results and metrics are saved before
    returning (a local job cannot be fetched later); with an IBM backend this returns right after submission.
    """
    from qiskit_ibm_runtime import Batch, EstimatorV2, SamplerV2

    from qmae_qiskit.hardware.depth import versions

    prep = prepare(opts)
    cfg = prep.tm.cfg
    est_opts, samp_opts = _primitive_options(opts, prep.remote)
    qpy_f, qpy_r = _qpy_bytes(prep.isa_fidelity), _qpy_bytes(prep.isa_reconstruction)
    record: dict[str, Any] = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "id": None,
        "status": "SUBMITTING",
        "mode": "ibm" if prep.remote else "local",
        "backend": prep.backend.name,
        "run": str(opts.run),
        "model": prep.tm.kind,
        "step": prep.tm.step,
        "config": cfg.model_dump(),
        "mask_ratio": prep.tm.mask_ratio,
        "split": opts.split,
        "samples": len(prep.images),
        "image_indices": prep.indices.tolist(),
        "labels": prep.labels.tolist(),
        "images_sha256": _image_hash(prep.images),
        "data_dir": opts.data_dir if opts.data_dir is not None else prep.tm.data_dir,
        "mask_seed": opts.mask_seed,
        "mask_indices": prep.patch_idx.tolist(),
        "shots": opts.shots,
        "fidelity_circuit": opts.fidelity_circuit,
        "mitigation": opts.mitigation.model_dump(exclude_none=True),
        "primitive_options": {"estimator": est_opts, "sampler": samp_opts},
        "optimization_level": opts.optimization_level,
        "seed_transpiler": opts.seed_transpiler,
        "transpile_seconds": round(prep.transpile_seconds, 3),
        "circuits": {
            "fidelity": {
                "qpy_sha256": _sha256(qpy_f),
                "num_qubits": prep.isa_fidelity.num_qubits,
                "depth": prep.isa_fidelity.depth(),
                "circuit": opts.fidelity_circuit,
                "observable_terms": len(prep.observable),
                "observable_support": sorted({int(q) for p in prep.observable.paulis for q in np.nonzero(p.z)[0]}),
                "parameter_values_sha256": _sha256(prep.values_fidelity.tobytes()),
                "qpy_base64": base64.b64encode(qpy_f).decode() if opts.embed_qpy else None,
            },
            "reconstruction": {
                "qpy_sha256": _sha256(qpy_r),
                "num_qubits": prep.isa_reconstruction.num_qubits,
                "depth": prep.isa_reconstruction.depth(),
                "parameter_values_sha256": _sha256(prep.values_reconstruction.tobytes()),
                "qpy_base64": base64.b64encode(qpy_r).decode() if opts.embed_qpy else None,
            },
        },
        "versions": {**versions(), "torch": torch.__version__, "python": platform.python_version()},
        "jobs": {},
        "notes": [],
        "submitted_at": None,
    }
    notes: list[str] = record["notes"]
    jobs: dict[str, Any] = {}
    path: Path | None = None
    try:
        with _runtime_warnings(notes), Batch(backend=prep.backend) as batch:
            record["batch_id"] = getattr(batch, "session_id", None)
            est = EstimatorV2(mode=batch, options=est_opts)
            jobs["fidelity"] = est.run([(prep.isa_fidelity, prep.observable, prep.values_fidelity)])
            jid = check_id(jobs["fidelity"].job_id())
            record.update(id=jid, submitted_at=_now())
            record["jobs"]["fidelity"] = {"job_id": jid, "primitive": "estimator", "submitted_at": _now()}
            path = _write_new(record_path(jobs_dir, jid), record)
            samp = SamplerV2(mode=batch, options=samp_opts)
            jobs["reconstruction"] = samp.run([(prep.isa_reconstruction, prep.values_reconstruction)], shots=opts.shots)
            record["jobs"]["reconstruction"] = {
                "job_id": check_id(jobs["reconstruction"].job_id()),
                "primitive": "sampler",
                "submitted_at": _now(),
            }
            _update(jobs_dir, record, status="SUBMITTED")
    except QMAEError:
        raise
    except Exception as exc:
        where = f"; the record {path} keeps what was submitted" if path else ""
        if path is not None:
            _update(jobs_dir, record, status="SUBMIT_FAILED", error=redact(one_line(exc)))
        raise QMAEError(
            f"submission to {prep.backend.name} failed ({type(exc).__name__}: {redact(one_line(exc))}){where}"
        ) from None
    if not prep.remote:
        save_results(jobs_dir, record, jobs)
        try:
            score_record(jobs_dir, record, classifier_dir, use_classifier)
        except QMAEError as exc:
            raise QMAEError(
                f"results of {record['id']} saved to {results_path(jobs_dir, record['id'])}, but scoring "
                f"failed: {exc}; once fixed, run `qmae-qiskit jobs fetch {record['id']}`"
            ) from None
    return Submission(record, path, jobs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- status / fetch
def _remote_jobs(record: dict) -> dict[str, Any]:
    service = runtime_service()
    out = {}
    for role, info in record["jobs"].items():
        try:
            out[role] = service.job(info["job_id"])
        except Exception as exc:
            raise QMAEError(
                f"cannot retrieve job {info['job_id']} from IBM Quantum ({redact(one_line(exc))})"
            ) from None
    return out


def status(jobs_dir: Path, record_id: str) -> dict:
    """Current status of each job of a record (asks IBM for remote jobs; local jobs are final once saved)."""
    rec = load_record(jobs_dir, record_id)
    if rec["mode"] == "local" or rec.get("status") in ("FETCHED", "CANCELLED"):
        states = {r: info.get("status", rec.get("status")) for r, info in rec["jobs"].items()}
        return {"id": rec["id"], "status": rec.get("status"), "jobs": states}
    jobs = _remote_jobs(rec)
    states = {role: _status_name(job.status()) for role, job in jobs.items()}
    for role, st in states.items():
        rec["jobs"][role]["status"] = st
    overall = _overall(rec, states)
    _update(jobs_dir, rec, status=overall)
    return {"id": rec["id"], "status": overall, "jobs": states}


def _overall(rec: dict, states: dict[str, str]) -> str:
    if len(rec["jobs"]) < len(ROLES):
        return "INCOMPLETE_SUBMISSION"
    for bad in ("ERROR", "CANCELLED"):
        if bad in states.values():
            return bad
    if all(s == "DONE" for s in states.values()):
        return "DONE"
    return "RUNNING" if "RUNNING" in states.values() else sorted(states.values())[0]


def _extract(rec: dict, results: dict[str, Any]) -> dict:
    """Runtime PrimitiveResults -> plain JSON: fidelity <Z> and std per image; pixel counts per image."""
    fid = results["fidelity"][0]
    evs = np.asarray(fid.data.evs, dtype=np.float64).reshape(-1)
    stds = np.asarray(fid.data.stds, dtype=np.float64).reshape(-1)
    bits = results["reconstruction"][0].data.pixel
    n = rec["samples"]
    if evs.shape[0] != n or bits.shape != (n,):
        raise QMAEError(f"results hold {evs.shape[0]} fidelities and {bits.shape} count sets, the record {n} images")
    counts = [{k: int(v) for k, v in bits.get_counts(loc=i).items()} for i in range(n)]
    return {
        "schema": "qmae-qiskit/job-results",
        "id": rec["id"],
        "saved_at": _now(),
        "fidelity": {"evs": evs.tolist(), "stds": stds.tolist(), "metadata": _jsonable(fid.metadata)},
        "reconstruction": {"counts": counts, "num_bits": bits.num_bits},
    }


def _jsonable(obj: Any) -> Any:
    try:
        return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
    except Exception:
        return str(obj)


def save_results(jobs_dir: Path, rec: dict, jobs: dict[str, Any]) -> dict:
    """Wait for both jobs, save their raw results beside the record, mark the record DONE (or the failure)."""
    states, results = {}, {}
    for role in ROLES:
        if role not in jobs:
            _update(jobs_dir, rec, status="INCOMPLETE_SUBMISSION")
            raise QMAEError(f"record {rec['id']} has no {role} job (the submission was interrupted); submit again")
        job = jobs[role]
        try:
            results[role] = job.result()
            states[role] = "DONE"
        except Exception as exc:
            st = _status_name(job.status()) if hasattr(job, "status") else "ERROR"
            states[role] = st if st in ("ERROR", "CANCELLED") else "ERROR"
            msg = ""
            if hasattr(job, "error_message"):
                try:
                    msg = job.error_message() or ""
                except Exception:
                    msg = ""
            rec["jobs"][role]["status"] = states[role]
            _update(jobs_dir, rec, status=states[role], error=redact(msg or one_line(exc)))
            raise QMAEError(
                f"job {rec['jobs'][role]['job_id']} ({role}) ended {states[role]}: "
                f"{redact(msg or one_line(exc))}; the record {record_path(jobs_dir, rec['id'])} is kept; "
                f"submit again"
            ) from None
    raw = _extract(rec, results)
    atomic_write_json(results_path(jobs_dir, rec["id"]), raw)
    for role in ROLES:
        rec["jobs"][role]["status"] = "DONE"
    _update(
        jobs_dir,
        rec,
        status="DONE",
        results_file=results_path(jobs_dir, rec["id"]).name,
        results_saved_at=raw["saved_at"],
    )
    return raw


def score_record(
    jobs_dir: Path, rec: dict, classifier_dir: str | Path | None = None, use_classifier: bool = True
) -> dict:
    """Saved raw results -> metrics with :func:`qmae_qiskit.evaluate.evaluation.score` (the code ``evaluate`` uses)."""
    from qmae_qiskit.evaluate.evaluation import aggregate, find_classifier, score
    from qmae_qiskit.evaluate.metrics import counts_to_probabilities

    raw_path = results_path(jobs_dir, rec["id"])
    raw = read_json(raw_path, "results file", "it is missing or corrupt; the job record is unchanged")
    cfg_n = int(round(np.log2(rec["config"]["image_size"] ** 2)))
    data = load_images(rec.get("data_dir"), rec["split"], rec["config"]["image_size"], rec["image_indices"])
    if _image_hash(data.images) != rec["images_sha256"]:
        raise QMAEError(
            f"the {rec['split']} images at {rec.get('data_dir')} differ from those submitted (hash "
            f"mismatch); point --data-dir at the same MNIST copy"
        )
    probs = torch.stack([counts_to_probabilities(c, cfg_n) for c in raw["reconstruction"]["counts"]])
    fids = torch.tensor(raw["fidelity"]["evs"], dtype=torch.float64)
    clf, clf_info, clf_path = None, None, None
    if use_classifier:
        from qmae_qiskit.evaluate.classifier import exists, load

        clf_path = find_classifier(Path(rec["run"]), classifier_dir)
        if exists(clf_path):
            clf, clf_info = load(clf_path)
        elif classifier_dir is not None:
            load(clf_path)  # raises the classifier module's one-line error
    per_image = score(probs, fids, data.images, data.labels, clf)
    out = {
        "id": rec["id"],
        "backend": rec["backend"],
        "mode": rec["mode"],
        "run": rec["run"],
        "model": rec["model"],
        "samples": rec["samples"],
        "shots": rec["shots"],
        "split": rec["split"],
        "mask_seed": rec["mask_seed"],
        "mitigation": rec.get("mitigation"),
        "classifier": None
        if clf_info is None
        else {"path": str(clf_path), "clean_test_accuracy": clf_info.get("test_accuracy")},
        "metrics": aggregate(per_image),
        "per_image": {k: v.tolist() for k, v in per_image.items()},
        "scored_at": _now(),
    }
    atomic_write_json(metrics_path(jobs_dir, rec["id"]), out)
    _update(jobs_dir, rec, status="FETCHED", metrics_file=metrics_path(jobs_dir, rec["id"]).name)
    return out


def fetch(
    jobs_dir: Path, record_id: str, classifier_dir: str | Path | None = None, use_classifier: bool = True
) -> dict:
    """Results of a record -> ``<id>.results.json`` (if not saved yet) and ``<id>.metrics.json``."""
    rec = load_record(jobs_dir, record_id)
    if not results_path(jobs_dir, rec["id"]).is_file():
        if rec["mode"] == "local":
            raise QMAEError(
                f"local job {rec['id']} has no saved results (the process stopped before it finished) "
                "and local jobs cannot be fetched later; submit again"
            )
        if rec.get("status") == "CANCELLED":
            raise QMAEError(f"job {rec['id']} was cancelled; submit again")
        jobs = _remote_jobs(rec)
        states = {role: _status_name(job.status()) for role, job in jobs.items()}
        pending = {r: s for r, s in states.items() if s not in FINAL}
        if pending:
            for role, st in states.items():
                rec["jobs"][role]["status"] = st
            _update(jobs_dir, rec, status=_overall(rec, states))
            raise QMAEError(
                f"job {rec['id']} is not finished ({', '.join(f'{r} {s}' for r, s in pending.items())}); "
                "fetch again later"
            )
        save_results(jobs_dir, rec, jobs)
    return score_record(jobs_dir, rec, classifier_dir, use_classifier)


def cancel(jobs_dir: Path, record_id: str) -> dict:
    """Cancel the unfinished jobs of a remote record and mark it CANCELLED (local jobs ran at submission)."""
    rec = load_record(jobs_dir, record_id)
    if rec["mode"] == "local":
        raise QMAEError(f"job {rec['id']} ran locally at submission; there is nothing to cancel")
    jobs = _remote_jobs(rec)
    done = {}
    for role, job in jobs.items():
        st = _status_name(job.status())
        if st not in FINAL:
            try:
                job.cancel()
            except Exception as exc:
                raise QMAEError(f"cannot cancel job {rec['jobs'][role]['job_id']} ({redact(one_line(exc))})") from None
            st = "CANCELLED"
        rec["jobs"][role]["status"] = st
        done[role] = st
    _update(jobs_dir, rec, status="CANCELLED" if "CANCELLED" in done.values() else _overall(rec, done))
    return {"id": rec["id"], "status": rec["status"], "jobs": done}
