"""QPU time before running: what a job set would cost on the device, from the circuits that would really run.

A device runs every bound circuit instance for every shot, and between shots it waits the repetition delay, so
a job set costs ``Σ_items instances × shots × (rep_delay + scheduled duration) + jobs × per-job overhead``.

The instances are not counted by hand: each task is handed to qiskit-ibm-runtime's own client-side ``prepare``
(``executor_estimator.prepare`` / ``executor_sampler.prepare``), which builds the ``QuantumProgram`` a job
would submit. Its items already hold everything mitigation adds -- ZNE's folded circuits (one item per noise
factor, each longer), the twirling randomizations (and the shots split over them), TREX's calibration item,
dynamical decoupling's delays and pulses, mthree's two calibration circuits -- and the study's calibration
images and reference circuits are rows of its tasks. Each item's duration is its circuit's length on the
device's ``Target`` (``QuantumCircuit.estimate_duration``: the critical path through the calibrated
instruction durations, measurement included; an ALAP schedule has the same length).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from qiskit.circuit import QuantumCircuit
from qiskit.providers import BackendV2

from qmae_qiskit.errors import QMAEError, one_line
from qmae_qiskit.hardware.execution import EstimatorTask, Executor, Task, Work
from qmae_qiskit.hardware.primitives import readout_calibration
from qmae_qiskit.hardware.rep_delay import DEFAULT_REP_DELAY as DEFAULT_REP_DELAY  # re-exported: the default
from qmae_qiskit.hardware.rep_delay import check_rep_delay, default_rep_delay
from qmae_qiskit.hardware.spec import DEFAULT_PRICE_PER_SECOND, QPUBudget
from qmae_qiskit.hardware.transpile import two_qubit_count

JOB_OVERHEAD_SECONDS = 3.0
"""Per-job QPU time beyond the shots (loading, setup), an assumption read off IBM's own example in "Workload
usage" (docs/guides/estimate-job-run-time): one 2-qubit circuit at the default 4,096 shots is estimated at
``quantum_seconds`` 4.11, of which 4,096 × ≈ 252 µs ≈ 1.03 s are shots, so ≈ 3 s per job."""


class PlanItem(BaseModel):
    """One item of one job: ``circuits`` bound instances of one circuit, each run ``shots`` times."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: str
    circuits: int
    shots: int
    two_qubit_gates: int
    duration_s: float = Field(description="scheduled duration of one instance, measurement included")
    rep_delay_s: float
    qpu_seconds: float


class QPUPlan(BaseModel):
    """What a job set would cost on a device: the numbers a dry run prints and records carry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str
    jobs: int
    circuits: int = Field(description="bound circuit instances over all jobs (parameter rows × variants)")
    shots: int = Field(description="circuit executions over all jobs (instances × shots)")
    two_qubit_gates: int = Field(description="most two-qubit gates of any circuit that runs")
    duration_s: float = Field(description="longest scheduled duration of a circuit, measurement included")
    rep_delay_s: float
    job_overhead_s: float = JOB_OVERHEAD_SECONDS
    qpu_seconds: float
    price_per_second: float = DEFAULT_PRICE_PER_SECOND
    cost: float
    durations_known: bool = True
    items: list[PlanItem] = []
    notes: list[str] = []

    def refuse_above(self, max_qpu_seconds: float | None) -> None:
        """One line if the plan needs more QPU time than ``max_qpu_seconds``."""
        if max_qpu_seconds is not None and self.qpu_seconds > max_qpu_seconds:
            raise QMAEError(
                f"this plan needs {self.qpu_seconds:,.1f} QPU seconds on {self.backend}, more than "
                f"--max-qpu-seconds {max_qpu_seconds:g}; use fewer images, shots or mitigation circuits, "
                "or raise the cap (--dry-run shows the plan)"
            )


def circuit_duration(circuit: QuantumCircuit, target: Any) -> float | None:
    """Seconds from the first instruction to the end of the last measurement on ``target`` (None: the target
    has no durations for some instruction, as an ideal simulator's)."""
    try:
        return float(circuit.estimate_duration(target, unit="s"))
    except Exception:
        return None


def rep_delay(backend: Any, options: Any = None) -> float:
    """The repetition delay a job would use: the runtime's ``execution.rep_delay`` option if set (one line if the
    backend does not take it), else the backend's default (``default_rep_delay``, or its configuration's), else
    :data:`~qmae_qiskit.hardware.rep_delay.DEFAULT_REP_DELAY`."""
    chosen = getattr(getattr(options, "execution", None), "rep_delay", None)
    if chosen is None:
        return default_rep_delay(backend)
    check_rep_delay(backend, float(chosen))
    return float(chosen)


def program(task: Task, work: Work, backend: BackendV2) -> tuple[Any, Any]:
    """(the runtime's ``QuantumProgram`` for ``task``, the primitive options it was built with)."""

    if work.shots is None:
        raise QMAEError("a QPU-time estimate needs a number of shots")
    mitigation = work.mitigation_of(task)
    if isinstance(task, EstimatorTask):
        from qiskit_ibm_runtime.executor_estimator.prepare import prepare as prepare_estimator  # lazy: runtime ~1.6 s

        options = mitigation.estimator_options(shots=work.shots, rep_delay=work.rep_delay)
        qp, _ = prepare_estimator([(task.circuit, task.observable, task.values)], options, backend=backend)
        return qp, options
    from qiskit_ibm_runtime.executor_sampler.prepare import prepare as prepare_sampler  # lazy: runtime ~1.6 s

    options = mitigation.sampler_options(shots=work.shots, rep_delay=work.rep_delay)
    pubs: list[tuple] = [(task.circuit, task.values)] + [(c,) for c in readout_calibration(task, work)]
    qp, _ = prepare_sampler(pubs, options, shots=work.shots, backend=backend)
    return qp, options


def task_items(role: str, task: Task, work: Work, backend: BackendV2) -> tuple[list[PlanItem], bool]:
    """The plan items of one job, and whether every duration was known."""
    try:
        qp, options = program(task, work, backend)
    except QMAEError:
        raise
    except Exception as exc:  # the runtime's own validation (IBMInputValueError, ...)
        raise QMAEError(f"the runtime cannot prepare job {role!r}: {one_line(exc)}") from None
    delay = rep_delay(backend, options)
    target = backend.target
    items, known = [], True
    for item in qp.items:
        duration = circuit_duration(item.circuit, target)
        known = known and duration is not None
        seconds = (duration or 0.0) + delay
        items.append(
            PlanItem(
                role=role,
                circuits=int(item.size()),
                shots=int(qp.shots),
                two_qubit_gates=two_qubit_count(item.circuit),
                duration_s=duration or 0.0,
                rep_delay_s=delay,
                qpu_seconds=int(item.size()) * int(qp.shots) * seconds,
            )
        )
    return items, known


def plan_work(
    work: Work, backend: BackendV2, price_per_second: float = DEFAULT_PRICE_PER_SECOND, name: str | None = None
) -> QPUPlan:
    """The QPU plan of ``work`` (one job per task) on ``backend``, whose ``target`` its circuits are ISA for."""
    items: list[PlanItem] = []
    known = True
    for role, task in work.tasks.items():
        got, ok = task_items(role, task, work, backend)
        items += got
        known = known and ok
    delay = work.rep_delay if work.rep_delay is not None else rep_delay(backend)
    return make_plan(items, len(work.tasks), name or backend.name, price_per_second, known, delay)


def make_plan(
    items: list[PlanItem], jobs: int, backend: str, price_per_second: float, known: bool, delay: float
) -> QPUPlan:
    """Totals of ``items`` over ``jobs`` jobs, with the per-job overhead and the price."""
    seconds = sum(i.qpu_seconds for i in items) + jobs * JOB_OVERHEAD_SECONDS
    notes = [] if known else [f"{backend} states no instruction durations: circuit time counted as 0"]
    return QPUPlan(
        backend=backend,
        jobs=jobs,
        circuits=sum(i.circuits for i in items),
        shots=sum(i.circuits * i.shots for i in items),
        two_qubit_gates=max((i.two_qubit_gates for i in items), default=0),
        duration_s=max((i.duration_s for i in items), default=0.0),
        rep_delay_s=delay,
        qpu_seconds=seconds,
        price_per_second=price_per_second,
        cost=seconds * price_per_second,
        durations_known=known,
        items=items,
        notes=notes,
    )


def combine(plans: list[QPUPlan], backend: str | None = None) -> QPUPlan:
    """Several plans on one device (a frontier's studies) as one."""
    if not plans:
        raise QMAEError("no plans to combine")
    first = plans[0]
    items = [i for p in plans for i in p.items]
    known = all(p.durations_known for p in plans)
    jobs = sum(p.jobs for p in plans)
    return make_plan(items, jobs, backend or first.backend, first.price_per_second, known, first.rep_delay_s)


def format_plan(plan: QPUPlan) -> str:
    """The plan as a few lines: per job item, then the totals and the cost."""
    lines = [
        f"QPU plan on {plan.backend}: {plan.jobs} job(s), repetition delay {plan.rep_delay_s * 1e6:g} µs, "
        f"{plan.job_overhead_s:g} s overhead per job"
    ]
    for i in plan.items:
        lines.append(
            f"  {i.role:28s} {i.circuits:7,d} circuits × {i.shots:6,d} shots  {i.two_qubit_gates:5,d} 2q gates  "
            f"{i.duration_s * 1e6:8.2f} µs  {i.qpu_seconds:10,.1f} s"
        )
    lines.append(
        f"  total: {plan.circuits:,} circuits, {plan.shots:,} shots, up to {plan.two_qubit_gates:,} two-qubit "
        f"gates and {plan.duration_s * 1e6:.2f} µs per circuit: {plan.qpu_seconds:,.1f} QPU seconds "
        f"({plan.qpu_seconds / 60:,.1f} min), ${plan.cost:,.2f} at ${plan.price_per_second:.2f}/s"
    )
    lines += [f"  note: {n}" for n in plan.notes]
    return "\n".join(lines)


def plan_for(
    work: Work, executor: Executor, budget: QPUBudget, say: Callable[[str], None] | None = None
) -> QPUPlan | None:
    """The plan of ``work`` when ``executor`` is a device or its twin (None elsewhere): refused in one line if
    it needs more than ``budget.max_qpu_seconds``, else told to ``say``. Call it before anything is run."""
    return plan_each([work], executor, budget, say)[0]


def plan_each(
    works: list[Work], executor: Executor, budget: QPUBudget, say: Callable[[str], None] | None = None
) -> list[QPUPlan | None]:
    """The plans of job sets run one after another on ``executor`` (a frontier's studies), each None off a
    device; their sum is what the cap sees and ``say`` hears, once, before anything runs."""
    if executor.kind not in ("twin", "ibm") or executor.target is None:
        if budget.dry_run:
            raise QMAEError(f"--dry-run plans QPU time, and {executor.name} runs on no QPU; dry-run a device")
        return [None] * len(works)
    for work in works:  # what the executor would refuse, refused first with its own line
        for task in work.tasks.values():
            work.mitigation_of(task).check_runnable(executor.kind, device=executor.remote)
    target = executor.target
    plans = [plan_work(work, target, budget.price_per_second, target.name) for work in works]
    announce(plans[0] if len(plans) == 1 else combine(plans), budget, say)
    return list(plans)


def announce(plan: QPUPlan, budget: QPUBudget, say: Callable[[str], None] | None = None) -> QPUPlan:
    """Refuse ``plan`` in one line if it needs more than ``budget.max_qpu_seconds``, else tell it to ``say``."""
    plan.refuse_above(budget.max_qpu_seconds)
    if say is not None:
        say(format_plan(plan))
    return plan
