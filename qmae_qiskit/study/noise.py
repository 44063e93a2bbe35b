"""`study noise`: every device estimate beside its exact value, raw and under each mitigation method.

For N test images (the same images and masks as ``evaluate``) the exact path gives the paper-faithful fidelity
and reconstruction; the device (its local twin for a fake device, one Batch with a durable record for a real
one) runs the hardware circuits for those images and for K calibration images of the training split, once per
distinct primitive configuration the chosen methods need. Each method then turns the measurements into
estimates -- the evaluated images' exact values never enter them -- and the study reports, per method, the mean
estimate, bias, mean |error|, RMS error and the cost, for the fidelity (Estimator) and for the reconstruction
(Sampler -> image -> CS and SSIM).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from qmae_qiskit.data import ImageSet
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.execution import Estimates, EstimatorTask, Executor, Result, SamplerTask, Samples, Work
from qmae_qiskit.hardware.mitigation import Mitigation
from qmae_qiskit.hardware.spec import ExecutionSpec, WithExecution
from qmae_qiskit.records import Record
from qmae_qiskit.study.calibration import (
    AffineFit,
    fit_affine,
    fit_fixed_point,
    fit_reference,
    invert_fixed_point,
)
from qmae_qiskit.study.methods import Method, parse_methods

if TYPE_CHECKING:
    from qmae_qiskit.hardware.qpu_time import QPUPlan

METRICS = ("fidelity", "cs", "ssim")


class StudySpec(WithExecution):
    """A noise study's design, validated before anything is built or sent: where and how its circuits run
    (``execution``, kept flat in records as before) and what it measures."""

    EXECUTION_DEFAULTS: ClassVar[dict[str, Any]] = {"shots": 4000}

    run: str
    samples: int = Field(100, ge=1)
    methods: str = "raw,recommended"
    calibration_images: int = Field(10, ge=0)
    calibration_split: Literal["train", "test"] = "train"
    calibration_start: int = Field(0, ge=0)
    zne_noise_factors: list[float] = [1.0, 3.0, 5.0]
    zne_extrapolator: list[str] = ["exponential", "linear"]
    precision: float | None = Field(None, gt=0, description="wanted standard error of a calibrated fidelity")
    data_dir: str | None = None

    @model_validator(mode="after")
    def _shots_given(self) -> StudySpec:
        if self.execution.shots is None:
            raise ValueError("a noise study needs a number of shots (--shots)")
        return self


class NoiseStudy(Record):
    """study-<backend>-L<size>.json: per image the exact values and every method's estimates, and the summary."""

    SCHEMA: ClassVar[str] = "qmae-qiskit/noise-study"
    VERSION: ClassVar[int] = 1
    WHAT: ClassVar[str] = "noise study"

    spec: dict[str, Any]
    model: str
    config: dict[str, Any]
    backend: str
    executor: dict[str, Any]
    fidelity_circuit: str
    two_qubit_gates: int
    circuits: dict[str, Any]
    methods: dict[str, str]
    image_indices: list[int]
    calibration_indices: list[int]
    exact: dict[str, float]
    aggregates: dict[str, dict[str, Any]]
    fits: dict[str, dict[str, Any]]
    loading: dict[str, Any] | None = None
    per_image: list[dict[str, Any]]
    jobs: dict[str, str | None] = {}
    seconds: dict[str, float] = {}
    qpu_seconds_estimate: float | None = None  # hardware.qpu_time's estimate of the whole job set
    qpu_plan: dict[str, Any] | None = None
    qpu_usage: dict[str, dict[str, float | None]] | None = None  # a real device: what IBM reports per job
    OMITTED_WHEN_EMPTY: ClassVar[tuple[str, ...]] = ("qpu_seconds_estimate", "qpu_plan", "qpu_usage")


@dataclass
class Design:
    """What a study runs: the prepared work of evaluated + calibration rows, and which job each method reads."""

    spec: StudySpec
    methods: list[Method]
    prepared: Any  # evaluate.prepare.Prepared over all rows
    work: Work
    n_eval: int
    n_cal: int
    fid_role: dict[str, str]  # method name -> Estimator task role
    rec_role: dict[str, str]  # method name -> Sampler task role
    calibration_indices: list[int]
    ref_role: dict[str, str]  # method name -> noise-reference Estimator task role (methods with 'ref')


# ------------------------------------------------------------------------------------------------- design
def _images(spec: StudySpec, tm) -> tuple[ImageSet, ImageSet]:
    from qmae_qiskit.data import load_split

    data_dir = spec.data_dir if spec.data_dir is not None else tm.data_dir
    size = tm.cfg.image_size
    evaluated = load_split(data_dir, "test", size, limit=spec.samples)
    if len(evaluated) < spec.samples:
        raise QMAEError(f"--images {spec.samples} is more than the {len(evaluated)} test images")
    k = spec.calibration_images
    if k == 0:
        return evaluated, ImageSet(evaluated.images[:0], evaluated.labels[:0], evaluated.indices[:0])
    pool = load_split(data_dir, spec.calibration_split, size, limit=spec.calibration_start + k)
    cal = pool.subset(slice(spec.calibration_start, spec.calibration_start + k))
    if len(cal) < k:
        raise QMAEError(
            f"--calibration-images {k} from index {spec.calibration_start} is more than the "
            f"{spec.calibration_split} split holds"
        )
    if spec.calibration_split == "test":
        shared = sorted(set(cal.indices.tolist()) & set(evaluated.indices.tolist()))
        if shared:
            raise QMAEError(
                f"calibration images {shared[:5]} are also evaluated images; take them from the "
                f"training split or start them at --calibration-start {spec.samples} or later"
            )
    return evaluated, cal


def design(spec: StudySpec, executor: Executor) -> Design:
    """Images, circuits, parameter values and one task per distinct primitive configuration."""
    from qmae_qiskit.evaluate.prepare import FIDELITY, RECONSTRUCTION, prepare
    from qmae_qiskit.train.runs import load_trained

    if executor.kind == "exact":
        raise QMAEError(
            "a noise study needs a noisy backend: a fake device, a calibration snapshot, an IBM "
            "backend, or aer_simulator with --noise-model"
        )
    zne = {"noise_factors": list(spec.zne_noise_factors), "extrapolator": list(spec.zne_extrapolator)}
    methods = parse_methods(spec.methods, zne)
    for m in methods:
        m.estimator_mitigation.check_runnable(executor.kind, device=executor.remote)
    if any(m.calibrate for m in methods) and spec.calibration_images < 3:
        raise QMAEError(
            f"method 'cal' fits two parameters and needs at least 3 calibration images, got "
            f"--calibration-images {spec.calibration_images}"
        )
    tm = load_trained(spec.run)
    evaluated, cal = _images(spec, tm)
    rows = ImageSet(
        torch.cat([evaluated.images, cal.images]),
        torch.cat([evaluated.labels, cal.labels]),
        torch.cat([evaluated.indices, cal.indices]),
    )
    prepared = prepare(tm, rows, spec.execution, executor)
    base_f, base_r = prepared.work.tasks[FIDELITY], prepared.work.tasks[RECONSTRUCTION]
    assert isinstance(base_f, EstimatorTask) and isinstance(base_r, SamplerTask)
    tasks: dict[str, Any] = {}
    fid_role: dict[str, str] = {}
    rec_role: dict[str, str] = {}
    est_keys: dict[str, str] = {}
    samp_keys: dict[str, str] = {}
    for m in methods:
        ek = m.estimator_key()
        if ek not in est_keys:
            est_keys[ek] = f"fidelity/{m.name}"
            tasks[est_keys[ek]] = replace(base_f, mitigation=m.estimator_mitigation)
        fid_role[m.name] = est_keys[ek]
    ref_role: dict[str, str] = {}
    if any(m.reference for m in methods):
        from qmae_qiskit.model.circuits import parameter_values

        angles = {}
        if prepared.loader_fits:  # the reference loads the clean image's fitted state at both loaders
            clean_angles = prepared.loader_fits["clean"].angles
            angles = {"masked_angles": clean_angles, "clean_angles": clean_angles}
        ref_values = parameter_values(base_f.circuit, tm.theta, prepared.clean, prepared.clean, **angles)
        for m in methods:
            if m.reference:
                role = f"reference/{fid_role[m.name].split('/', 1)[1]}"
                if role not in tasks:
                    tasks[role] = replace(base_f, values=ref_values, mitigation=m.estimator_mitigation)
                ref_role[m.name] = role
    for m in methods:
        sk = m.sampler_key()
        readout = "mthree" if any(o.readout == "mthree" and o.sampler_key() == sk for o in methods) else "none"
        if sk not in samp_keys:
            samp_keys[sk] = f"reconstruction/{m.name}"
            mit = Mitigation(estimator=m.sampler_mitigation.estimator, readout=readout)
            tasks[samp_keys[sk]] = replace(base_r, mitigation=mit)
        rec_role[m.name] = samp_keys[sk]
    check_precision(spec, executor, base_f)
    work = Work(tasks, shots=spec.shots, mitigation=Mitigation(), seed=spec.seed)
    return Design(
        spec, methods, prepared, work, len(evaluated), len(cal), fid_role, rec_role, cal.indices.tolist(), ref_role
    )


def check_precision(spec: StudySpec, executor: Executor, task: EstimatorTask) -> None:
    """Refuse shots that cannot reach ``--precision``: a calibrated estimate's shot noise is the raw one divided by
    the fitted slope, which the device's estimated success probability of this ISA circuit bounds from above."""
    if spec.precision is None or executor.target is None:
        return
    from qmae_qiskit.reports.depth import success_probability

    esp = success_probability(task.circuit, executor.target, [])
    if esp is None:
        return
    worst = 0.5 / np.sqrt(spec.shots)  # binomial standard error of a probability, at most 0.5/sqrt(shots)
    if worst / esp > spec.precision:
        need = int(np.ceil((0.5 / (esp * spec.precision)) ** 2))
        raise QMAEError(
            f"--shots {spec.shots} is too few for --precision {spec.precision}: with the circuit's "
            f"estimated success probability {esp:.3f} a calibrated fidelity needs about {need} shots; "
            "raise --shots or relax --precision"
        )


# ------------------------------------------------------------------------------------------------ analysis
def exact_values(prepared, loaded: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact fidelities (N,) and reconstructions (N, 2^n) of every row, from the exact path: of the paper's
    circuit, or (``loaded``) of the circuits that run, whose loaders may be approximate."""
    from qmae_qiskit.simulate import exact

    tm = prepared.tm
    masked, clean = prepared.loaded_states() if loaded else (prepared.x_masked, prepared.clean)
    with torch.no_grad():
        fids = exact.fidelity(tm.theta, masked, clean, tm.cfg).numpy()
        probs = exact.reconstruct(tm.theta, masked, tm.cfg).numpy()
    return fids, probs


def reference_exact(prepared) -> np.ndarray:
    """Exact fidelities of every row's noise-reference circuit (the clean image, as loaded, at both loaders)."""
    from qmae_qiskit.simulate import exact

    tm = prepared.tm
    _, clean = prepared.loaded_states()
    with torch.no_grad():
        return exact.fidelity(tm.theta, clean, clean, tm.cfg).numpy()


def _frequencies(samples: Samples) -> np.ndarray:
    from qmae_qiskit.hardware.primitives import frequencies

    if samples.counts is None:
        return np.asarray(samples.probabilities)
    return frequencies(samples.counts, int(np.log2(samples.probabilities.shape[1])))


def estimate(
    d: Design, results: dict[str, Result], exact_f: np.ndarray, exact_p: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray], dict[str, dict]]:
    """Per method: fidelity estimates, their standard errors and reconstruction distributions of the evaluated
    rows, and the fitted calibration maps. Calibration uses the calibration rows' exact values only."""
    n, k = d.n_eval, d.n_cal
    fids, stds, probs, fits = {}, {}, {}, {}
    for m in d.methods:
        est = results[d.fid_role[m.name]]
        smp = results[d.rec_role[m.name]]
        assert isinstance(est, Estimates) and isinstance(smp, Samples)
        measured_f, measured_s = np.asarray(est.values), np.asarray(est.stds)
        dist = np.asarray(smp.probabilities) if m.readout == "mthree" else _frequencies(smp)
        if m.calibrate:
            bits = int(np.log2(dist.shape[1]))
            f_fit: AffineFit = fit_affine(exact_f[n : n + k], measured_f[n : n + k], bits)
            if m.reference:
                ref = results[d.ref_role[m.name]]
                assert isinstance(ref, Estimates)
                mr, fr = np.asarray(ref.values), reference_exact(d.prepared)
                r_fit = fit_reference(exact_f[n : n + k], measured_f[n : n + k], mr[n : n + k], fr[n : n + k])
                fids[m.name], stds[m.name] = r_fit.invert(measured_f[:n], mr[:n], fr[:n])
            else:
                fids[m.name], stds[m.name] = f_fit.invert(measured_f[:n], measured_s[:n])
            p_fit = fit_fixed_point(exact_p[n : n + k], dist[n : n + k])
            probs[m.name] = invert_fixed_point(p_fit, dist[:n])
            fits[m.name] = {"fidelity": f_fit.as_dict(), "reconstruction": p_fit.as_dict()}
            if m.reference:
                fits[m.name]["fidelity_with_reference"] = r_fit.as_dict()
        else:
            fids[m.name], stds[m.name] = measured_f[:n], measured_s[:n]
            probs[m.name] = dist[:n]
    return fids, stds, probs, fits


def _image_scores(probs: np.ndarray, images: torch.Tensor, labels: torch.Tensor) -> dict[str, np.ndarray]:
    from qmae_qiskit.evaluate.scoring import score

    s = score(torch.as_tensor(probs, dtype=torch.float64), None, images, labels, None)
    return {"cs": s["cs"].numpy(), "ssim": s["ssim"].numpy()}


def _errors(estimates: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    err = np.asarray(estimates) - np.asarray(exact)
    return {
        "mean_estimate": float(np.mean(estimates)),
        "bias": float(np.mean(err)),
        "mean_abs_error": float(np.mean(np.abs(err))),
        "rms_error": float(np.sqrt(np.mean(err**2))),
        "max_abs_error": float(np.max(np.abs(err))),
    }


def summarize(d: Design, results: dict[str, Result], seconds: dict[str, float]) -> dict[str, Any]:
    """Everything the record holds except provenance: per image rows, aggregates, fits, costs."""
    n = d.n_eval
    exact_f, exact_p = exact_values(d.prepared)  # the paper's circuit: what every estimate is compared with
    fids, stds, probs, fits = estimate(d, results, *exact_values(d.prepared, loaded=True))
    images, labels = d.prepared.images[:n], d.prepared.labels[:n]
    exact_scores = _image_scores(exact_p[:n], images, labels)
    scores = {m: _image_scores(p, images, labels) for m, p in probs.items()}
    aggregates: dict[str, dict[str, Any]] = {}
    for m in d.methods:
        f_role, r_role = d.fid_role[m.name], d.rec_role[m.name]
        rows = d.work.tasks[f_role].rows
        extra = (2 if m.readout == "mthree" else 0) + (rows if m.reference else 0)
        aggregates[m.name] = {
            "fidelity": {**_errors(fids[m.name], exact_f[:n]), "mean_std": float(np.mean(stds[m.name]))},
            "cs": _errors(scores[m.name]["cs"], exact_scores["cs"]),
            "ssim": _errors(scores[m.name]["ssim"], exact_scores["ssim"]),
            "cost": {
                "circuits": 2 * rows + extra,
                "shots": (2 * rows + extra) * d.spec.shots,
                "jobs": sorted({f_role, r_role}),
                "seconds": round(seconds.get(f_role, 0.0) + seconds.get(r_role, 0.0), 3),
                "calibration_images": d.n_cal if m.calibrate else 0,
            },
        }
    per_image = []
    for i in range(n):
        per_image.append(
            {
                "index": int(d.prepared.indices[i]),
                "exact": float(exact_f[i]),
                "estimates": {m: float(v[i]) for m, v in fids.items()},
                "stds": {m: float(v[i]) for m, v in stds.items()},
                "cs": {
                    "exact": float(exact_scores["cs"][i]),
                    "estimates": {m: float(s["cs"][i]) for m, s in scores.items()},
                },
                "ssim": {
                    "exact": float(exact_scores["ssim"][i]),
                    "estimates": {m: float(s["ssim"][i]) for m, s in scores.items()},
                },
            }
        )
    return {
        "per_image": per_image,
        "aggregates": aggregates,
        "fits": fits,
        "exact": {
            "fidelity": float(exact_f[:n].mean()),
            "cs": float(exact_scores["cs"].mean()),
            "ssim": float(exact_scores["ssim"].mean()),
        },
    }


# ----------------------------------------------------------------------------------------------- running
def run_local(d: Design, executor: Executor, client: Any = None) -> tuple[dict[str, Result], dict[str, float]]:
    """Each task as its own run (so its time is its cost); with a Dask ``client``, rows are split over workers."""
    results: dict[str, Result] = {}
    seconds: dict[str, float] = {}
    for role, task in d.work.tasks.items():
        t0 = time.perf_counter()
        single = Work({role: task}, shots=d.work.shots, mitigation=d.work.mitigation, seed=d.work.seed)
        if client is None:
            results[role] = executor.run(single).result()[role]
        else:
            results[role] = _run_split(d.spec, single, role, client)
        seconds[role] = time.perf_counter() - t0
    return results, seconds


def _run_split(spec: StudySpec, work: Work, role: str, client: Any) -> Result:
    """The task's rows in one chunk per worker, run there, joined in order (readout calibration per chunk).
    Workers build their own executor from the backend spec (a device object is not worth shipping)."""
    task = work.tasks[role]
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    chunks = [c for c in np.array_split(np.arange(task.rows), workers) if c.size]
    futures = [client.submit(_run_rows, spec.execution, work, role, rows, pure=False) for rows in chunks]
    parts = client.gather(futures)
    if isinstance(parts[0], Estimates):
        return Estimates(
            np.concatenate([p.values for p in parts]), np.concatenate([p.stds for p in parts]), parts[0].metadata
        )
    counts = [c for p in parts for c in (p.counts or [])]
    return Samples(np.concatenate([p.probabilities for p in parts]), counts or None, parts[0].metadata)


def _run_rows(execution: ExecutionSpec, work: Work, role: str, rows: np.ndarray) -> Result:
    from qmae_qiskit.hardware.executors import make_executor

    executor = make_executor(execution.backend, execution.noise_model, execution.idle)
    task = work.tasks[role]
    part = replace(task, values=task.values[rows])
    seed = None if work.seed is None else int(work.seed) + int(rows[0])
    return executor.run(Work({role: part}, shots=work.shots, mitigation=work.mitigation, seed=seed)).result()[role]


def record(
    d: Design,
    executor: Executor,
    summary: dict[str, Any],
    seconds: dict[str, float],
    jobs: dict[str, str | None],
    plan: QPUPlan | None = None,
) -> NoiseStudy:
    from qmae_qiskit.hardware.transpile import two_qubit_count

    fid_task = d.work.tasks[d.fid_role[d.methods[0].name]]
    tm = d.prepared.tm
    return NoiseStudy(
        spec=d.spec.model_dump(),
        model=tm.kind,
        config=tm.cfg.model_dump(),
        backend=d.spec.backend,
        executor=executor.describe(),
        fidelity_circuit=d.prepared.fidelity_circuit,
        two_qubit_gates=two_qubit_count(fid_task.circuit),
        circuits=d.prepared.circuit_summary(),
        methods={m.name: m.describe() for m in d.methods},
        image_indices=[int(i) for i in d.prepared.indices[: d.n_eval]],
        calibration_indices=d.calibration_indices,
        jobs=jobs,
        seconds={k: round(v, 3) for k, v in seconds.items()},
        loading=d.prepared.loading_summary(),
        qpu_seconds_estimate=None if plan is None else round(plan.qpu_seconds, 3),
        qpu_plan=None if plan is None else plan.model_dump(),
        **summary,
    )


def run_study(
    spec: StudySpec, jobs_dir: Path = Path("jobs"), client: Any = None, say: Callable[[str], None] | None = None
) -> NoiseStudy | str | QPUPlan:
    """Run the study: on a local backend, now (the record is returned); on a device, submit one Batch with a
    durable record and return its id (``jobs fetch ID`` completes the study). Its QPU plan goes to ``say``
    first; a dry run (the spec's ``budget``) returns the plan and runs and writes nothing."""
    from qmae_qiskit.hardware.executors import make_executor
    from qmae_qiskit.hardware.qpu_time import plan_for

    t0 = time.perf_counter()
    spec = spec.on_planned_backend(say)
    executor = make_executor(spec.backend, spec.noise_model, spec.execution.idle)
    d = design(spec, executor)
    plan = plan_for(d.work, executor, spec.budget, say)
    if spec.budget.dry_run:
        assert plan is not None  # plan_for refuses a dry run off a device
        return plan
    return run_designed(d, executor, plan, jobs_dir, client, t0)


def run_designed(
    d: Design, executor: Executor, plan: QPUPlan | None, jobs_dir: Path, client: Any, t0: float
) -> NoiseStudy | str:
    """A designed (and planned) study run: locally now, or submitted to a device with a durable record."""
    from qmae_qiskit.hardware import jobs as store

    prepare_s = time.perf_counter() - t0
    if executor.remote:
        rec = store.new_record(
            d.work,
            executor.describe(),
            executor.name,
            True,
            "study",
            {"study": d.spec.model_dump(), "run": d.spec.run, "samples": d.spec.samples},
        )
        store.attach_plan(rec, plan)
        recorder = store.Recorder(jobs_dir, rec)
        execution = executor.run(d.work, on_submitted=recorder)
        store.note_usage(jobs_dir, rec, getattr(execution, "jobs", {}))
        return rec.id
    results, seconds = run_local(d, executor, client)
    seconds = {**seconds, "prepare": prepare_s, "total": time.perf_counter() - t0}
    jobs = dict.fromkeys(d.work.tasks)
    return record(d, executor, summarize(d, results, seconds), seconds, jobs, plan)


def complete_from_record(jobs_dir: Path, record_id: str) -> list[str]:
    """``jobs fetch`` for a study on a device: fetch every job, rebuild the design, write the study files."""
    from qmae_qiskit.hardware import jobs as store
    from qmae_qiskit.hardware.executors import make_executor
    from qmae_qiskit.hardware.qpu_time import QPUPlan
    from qmae_qiskit.study.report import default_out, write_study

    rec = store.load(jobs_dir, record_id)
    spec = StudySpec(**rec.context["study"])
    results = store.finished_results(jobs_dir, rec)
    executor = make_executor(spec.backend, spec.noise_model, spec.execution.idle)
    d = design(spec, executor)
    for role, info in rec.circuits.items():
        if (
            info.get("parameter_values_sha256")
            != store.describe_task(d.work.tasks[role], False)["parameter_values_sha256"]
        ):
            raise QMAEError(
                f"the study's inputs changed since submission (task {role}); fetch with the same run, data and code"
            )
    plan = None if rec.qpu_plan is None else QPUPlan(**rec.qpu_plan)
    study = record(d, executor, summarize(d, results, {}), {}, {r: i.job_id for r, i in rec.jobs.items()}, plan)
    study.qpu_usage = rec.qpu_usage or None
    paths = write_study(study, default_out(study))
    store.update(jobs_dir, rec, status="FETCHED")
    return [f"wrote {p}" for p in paths]
