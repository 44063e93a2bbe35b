"""`study noise`: every device estimate beside its exact value, raw and under each mitigation method.

For N test images (the same images and masks as ``evaluate``) the exact path gives the paper-faithful fidelity
and reconstruction; the device (its local twin for a fake device, one Batch with a durable record for a real
one) runs the hardware circuits for those images and for K calibration images of the training split, once per
distinct primitive configuration the chosen methods need. Each method then turns the measurements into
estimates -- the evaluated images' exact values never enter them -- and the study reports, per method, the mean
estimate, bias, mean |error|, RMS error and the cost, for the fidelity (Estimator) and for the reconstruction
(Sampler -> image -> CS and SSIM).

The stages live apart, as qiskit-experiments splits an experiment from its analysis: :mod:`.design` (spec,
images, circuits), :mod:`.analysis` (fits and estimates, pure), :mod:`.record` and :mod:`.report` (files). This
module runs a design -- locally now, or on a device through the job store, whose ``study`` completion it
registers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.evaluate.device_choice import Ranking, with_chosen_device
from qmae_qiskit.hardware import jobs as store
from qmae_qiskit.hardware.execution import Estimates, Executor, Result, Samples, Work
from qmae_qiskit.hardware.executors import make_executor
from qmae_qiskit.hardware.qpu_time import QPUPlan, announce, plan_for, plan_work
from qmae_qiskit.hardware.spec import ExecutionSpec
from qmae_qiskit.study import budget as bud
from qmae_qiskit.study import scatter_model
from qmae_qiskit.study.analysis import METRICS, estimate, estimate_methods, exact_values, reference_exact, summarize
from qmae_qiskit.study.design import Design, StudySpec, check_precision, design, updated
from qmae_qiskit.study.methods import judged_method
from qmae_qiskit.study.record import NoiseStudy, build_record
from qmae_qiskit.study.report import default_out, write_study

__all__ = [
    "METRICS",
    "Design",
    "NoiseStudy",
    "StudySpec",
    "check_precision",
    "complete_from_record",
    "design",
    "estimate",
    "exact_values",
    "record",
    "reference_exact",
    "run_designed",
    "run_local",
    "run_study",
    "summarize",
]

record = build_record  # the name this module has always exported


def run_local(d: Design, executor: Executor, client: Any = None) -> tuple[dict[str, Result], dict[str, float]]:
    """Each task as its own run (so its time is its cost); with a Dask ``client``, rows are split over workers."""
    results: dict[str, Result] = {}
    seconds: dict[str, float] = {}
    for role, task in d.work.tasks.items():
        t0 = time.perf_counter()
        single = replace(d.work, tasks={role: task})
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

    executor = make_executor(execution.backend, execution.noise_model, execution.idle)
    task = work.tasks[role]
    part = replace(task, values=task.values[rows])
    seed = None if work.seed is None else int(work.seed) + int(rows[0])
    return executor.run(replace(work, tasks={role: part}, seed=seed)).result()[role]


def run_study(
    spec: StudySpec, jobs_dir: Path = Path("jobs"), client: Any = None, say: Callable[[str], None] | None = None
) -> NoiseStudy | str | QPUPlan:
    """Run the study: on a local backend, now (the record is returned); on a device, submit one Batch with a
    durable record and return its id (``jobs fetch ID`` completes the study). Its QPU plan goes to ``say``
    first; a dry run (the spec's ``budget``) returns the plan and runs and writes nothing. ``--backend auto`` or a
    list runs on the device of lowest expected error (:mod:`~qmae_qiskit.evaluate.device_choice`)."""

    t0 = time.perf_counter()
    spec, ranking = with_chosen_device(spec, spec.run, say)
    spec = spec.on_planned_backend(say)
    executor = make_executor(spec.backend, spec.noise_model, spec.execution.idle)
    if spec.qpu_budget is not None:
        return run_budgeted(spec, executor, say, client, ranking)
    d = design(spec, executor)
    plan = plan_for(d.work, executor, spec.budget, say)
    if spec.budget.dry_run:
        assert plan is not None  # plan_for refuses a dry run off a device
        return plan
    return run_designed(d, executor, plan, jobs_dir, client, t0, ranking)


def run_budgeted(
    spec: StudySpec,
    executor: Executor,
    say: Callable[[str], None] | None,
    client: Any,
    ranking: Ranking | None = None,
) -> NoiseStudy | QPUPlan:
    """``--qpu-budget``: a pilot measures the device's slope, scatter and shot noise; the allocation with the
    smallest predicted error that fits the budget (pilot included) is then run as a study on it."""
    if executor.remote or executor.target is None:
        raise QMAEError(
            "--qpu-budget designs a study from a pilot run on a device's twin; pass a fake device or a "
            "calibration snapshot (e.g. fake_torino for ibm_torino)"
        )
    t0 = time.perf_counter()
    spec = updated(spec, raw_baseline="shared")  # the pilot, the model and the study: no job for an unjudged raw
    budget = spec.budget
    pd = design(bud.pilot_spec(spec), executor)
    pilot_plan = plan_work(pd.work, executor.target, budget.price_per_second, executor.target.name)
    costs = bud.cost_model(pd, executor.target)
    params = {False: 2, **({True: 4} if pd.ref_role else {})}
    if spec.references != "auto":  # the minimum is that of the design the user chose
        params = {r: p for r, p in params.items() if r == (spec.references == "on")}
    bud.check_minimum(spec.qpu_budget or 0.0, spec.samples, costs, params, pilot_plan.qpu_seconds)
    if budget.dry_run:
        return announce(pilot_plan, budget, say)
    results, _ = run_local(pd, executor, client)
    models, judged, prior = pilot_models(spec, pd, executor, results)
    allocation = bud.allocate(
        spec.qpu_budget or 0.0, spec.samples, costs, models, pilot_plan.qpu_seconds, spec.references
    )
    main = bud.budgeted_spec(spec, allocation)
    d = design(main, executor)
    plan = plan_for(d.work, executor, budget, say)
    study = run_designed(d, executor, plan, Path("jobs"), client, t0, ranking)
    assert isinstance(study, NoiseStudy), "a budgeted study runs on a twin"
    total = pilot_plan.qpu_seconds + (plan.qpu_seconds if plan is not None else 0.0)
    allocation["pilot"] = {**bud.pilot_summary(pilot_plan, models), "method": judged}
    allocation["budget_s"] = spec.qpu_budget
    if spec.scatter_from == scatter_model.SOURCE:
        allocation.update(scatter_model.record(prior))
    return study.model_copy(update={"allocation": allocation, "qpu_seconds_estimate": round(total, 3)})


def pilot_models(
    spec: StudySpec, pd: Design, executor: Executor, results: dict[str, Any]
) -> tuple[dict[bool, bud.NoiseModel], str, dict[bool, scatter_model.ModelScatter] | None]:
    """(the allocation's models, the judged method, the noise model's scatter if it replaced the pilot's): from the
    pilot's fits (calibration rows only), with ``--scatter-from noise-model`` the scatter the device's noise model
    predicts for the study's candidate calibration images, where the circuit is narrow enough to simulate."""
    exact_f, exact_p = exact_values(pd.prepared, loaded=True)
    each = estimate_methods(pd, results, exact_f, exact_p)  # calibration rows only
    judged = judged_method(list(each), {m for m, e in each.items() if e.fits})
    if judged is None:
        raise QMAEError("--qpu-budget needs a calibrated method (e.g. --methods raw,recommended)")
    models = bud.noise_models(each[judged].fits, bud.PILOT_SHOTS)
    prior = None
    if spec.scatter_from == scatter_model.SOURCE and scatter_model.simulable(pd, executor):
        md = design(bud.model_spec(spec), executor)
        model_f, _ = exact_values(md.prepared, loaded=True)
        prior = scatter_model.model_scatter(md, executor, model_f, reference_exact(md.prepared), judged)
    return (models if prior is None else scatter_model.with_scatter(models, prior)), judged, prior


def run_designed(
    d: Design,
    executor: Executor,
    plan: QPUPlan | None,
    jobs_dir: Path,
    client: Any,
    t0: float,
    ranking: Ranking | None = None,
) -> NoiseStudy | str:
    """A designed (and planned) study run: locally now, or submitted to a device with a durable record. Both
    records keep the ``ranking`` that chose the device, if one did."""
    prepare_s = time.perf_counter() - t0
    if executor.remote:
        rec = store.new_record(
            d.work,
            executor.describe(),
            executor.name,
            True,
            "study",
            {"study": d.spec.model_dump(), "run": d.spec.run, "samples": d.spec.samples},
            target=executor.target,
        )
        rec.attach_plan(plan)
        rec.device_ranking = ranking
        recorder = store.Recorder(jobs_dir, rec)
        execution = executor.run(d.work, on_submitted=recorder)
        store.note_usage(jobs_dir, rec, getattr(execution, "jobs", {}))
        return rec.id
    results, seconds = run_local(d, executor, client)
    seconds = {**seconds, "prepare": prepare_s, "total": time.perf_counter() - t0}
    jobs = dict.fromkeys(d.work.tasks)
    study = build_record(d, executor, summarize(d, results, seconds, plan), seconds, jobs, plan)
    return study.model_copy(update={"device_ranking": ranking})


@store.completes("study")
def complete_record(jobs_dir: Path, rec: store.JobRecord, options: dict[str, Any]) -> store.Completion:
    """``jobs fetch`` for a study on a device: fetch every job, rebuild the design, write the study files."""

    spec = StudySpec.of_record(rec.context["study"])
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
    jobs: dict[str, str | None] = {r: i.job_id for r, i in rec.jobs.items()}
    study = build_record(d, executor, summarize(d, results, {}, plan), {}, jobs, plan)
    study.qpu_usage = rec.qpu_usage or None
    study.device_ranking = rec.device_ranking
    paths = write_study(study, default_out(study))
    store.update(jobs_dir, rec, status="FETCHED")
    return store.Completion(study, [f"wrote {p}" for p in paths])


def complete_from_record(jobs_dir: Path, record_id: str) -> list[str]:
    """The lines ``jobs fetch`` prints for a study record (kept for callers of the old entry point)."""
    return store.complete(jobs_dir, record_id).lines
