"""One execution spec: where and how circuits run, for ``evaluate``, ``submit``, ``study noise`` and ``study frontier``.

The backend, its noise model, shots, the runtime's mitigation options and readout correction, the fidelity circuit,
the amplitude loader, the transpiler's level and seed, the simulator and mask seeds, what idle qubits suffer on a
twin, and what a device or its twin may cost (:class:`QPUBudget`: a dry run, a QPU-seconds cap, a price) are declared
here once; :class:`~qmae_qiskit.evaluate.submit.SubmitOptions` and :class:`~qmae_qiskit.study.design.StudySpec`
compose it (``execution``) and the CLI's ``execution_options`` fills it. Adding a setting is one field here and one
option there. Records that carry a spec keep it flat (:class:`WithExecution`), so files written before it existed read
the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware import DEFAULT_OPTIMIZATION_LEVEL, DEFAULT_TRANSPILER_SEED
from qmae_qiskit.hardware.backends import dry_run_backend
from qmae_qiskit.hardware.execution import Task, TaskSeeds, Work
from qmae_qiskit.hardware.idle_noise import IdleNoise
from qmae_qiskit.hardware.mitigation import Mitigation

FidelityCircuit = Literal["auto", "swap-test", "inverse"]
Placement = Literal["qiskit", "noise-aware"]
NO_COUPLING = ("exact", "aer_simulator")

DEFAULT_PRICE_PER_SECOND = 1.60
"""US dollars per QPU second: IBM's Pay-As-You-Go price ($96 per minute)."""


class QPUBudget(BaseModel):
    """What a command does with its QPU plan (:mod:`~qmae_qiskit.hardware.qpu_time`): ``--dry-run`` (plan only),
    ``--max-qpu-seconds`` (refuse a bigger plan), ``--price-per-second`` (the plan's cost). It changes what runs
    never, only whether it runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dry_run: bool = False
    max_qpu_seconds: float | None = Field(None, gt=0)
    price_per_second: float = Field(DEFAULT_PRICE_PER_SECOND, ge=0)

    def backend_for(self, backend: str, say: Callable[[str], None] | None = None) -> str:
        """The backend to plan (and run) on; ``say`` hears when a dry run substitutes a fake one. A dry run on
        a backend without a QPU is refused."""

        if not self.dry_run:
            return backend
        if backend.strip() in ("exact", "aer_simulator"):
            raise QMAEError(
                f"--dry-run plans QPU time, and --backend {backend.strip()} runs on no QPU; dry-run a device "
                "(ibm_torino) or its twin (fake_torino)"
            )
        name, note = dry_run_backend(backend.strip())
        if note is not None and say is not None:
            say(note)
        return name


class ExecutionSpec(BaseModel):
    """Where and how an evaluation's circuits run (validated before anything is built or sent)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str = "exact"
    noise_model: str | None = None
    shots: int | None = Field(None, ge=1)
    mitigation: Mitigation = Field(default_factory=Mitigation)
    fidelity_circuit: FidelityCircuit = "auto"
    loader: str | None = Field(
        None,
        description="approximate amplitude loader of the hardware circuits, e.g. 'ladder:12' (default: the exact "
        "RY tree)",
    )
    optimization_level: int = Field(DEFAULT_OPTIMIZATION_LEVEL, ge=0, le=3)
    seed_transpiler: int = DEFAULT_TRANSPILER_SEED
    seed: int | None = Field(0, description="simulator seed (local executors; None: a fresh one)")
    mask_seed: int = Field(0, description="seed of the evaluation masks")
    idle_zz_hz: float = Field(0.0, description="a twin's static ZZ between coupled idle qubits, Hz (0: off)")
    idle_detuning_hz: float = Field(0.0, description="a twin's idle-qubit detuning from the drive frame, Hz (0: off)")
    idle_relaxation: bool = Field(
        True,
        description="schedule a twin's circuits so idle qubits relax (False: the "
        "unscheduled twin of records made before 2026-12-04)",
    )
    task_seeds: TaskSeeds = Field(
        "independent",
        description="a simulator seed per task, so that two tasks' shot noise is independent as on a device "
        "('shared': one seed for every task, as records made before 2026-12-05 ran)",
    )
    budget: QPUBudget = Field(default_factory=QPUBudget, description="dry run, QPU-seconds cap, price")
    rep_delay: float | None = Field(
        None,
        ge=0,
        description="seconds between one shot's measurement and the next shot (the runtime's execution.rep_delay; "
        "None: the backend's default_rep_delay). Shorter is cheaper and resets the qubits less completely",
    )
    placement: Placement = Field(
        "qiskit",
        description="physical qubits: Qiskit's own layout, or the lowest expected error over every match "
        "(hardware/placement.py)",
    )

    @model_validator(mode="after")
    def _idle_in_range(self) -> ExecutionSpec:
        self.idle  # noqa: B018 -- an out-of-range strength is one line before anything is built
        if self.placement != "qiskit" and self.backend.strip() in NO_COUPLING:
            raise QMAEError(
                f"--placement {self.placement} chooses a device's qubits, and --backend {self.backend.strip()} has "
                "none; use a device or its twin (fake_torino), or --placement qiskit"
            )
        if self.rep_delay is not None and self.backend.strip() in NO_COUPLING:
            raise QMAEError(
                f"--rep-delay sets a device's wait between shots, and --backend {self.backend.strip()} has none; "
                "use a device or its twin (fake_torino), or drop --rep-delay"
            )
        return self

    def work(self, tasks: dict[str, Task], mitigation: Mitigation | None = None) -> Work:
        """``tasks`` run as this spec says: its shots, simulator seed (one per task or shared), repetition delay
        and, unless ``mitigation`` is given, its mitigation."""
        return Work(
            tasks,
            shots=self.shots,
            mitigation=self.mitigation if mitigation is None else mitigation,
            seed=self.seed,
            rep_delay=self.rep_delay,
            task_seeds=self.task_seeds,
        )

    @property
    def idle(self) -> IdleNoise:
        """What idle qubits suffer on a twin (:mod:`~qmae_qiskit.hardware.idle_noise`)."""
        return IdleNoise(zz_hz=self.idle_zz_hz, detuning_hz=self.idle_detuning_hz, scheduled=self.idle_relaxation)

    def on_planned_backend(self, say: Callable[[str], None] | None = None) -> ExecutionSpec:
        """This spec on the backend its budget plans on (a dry run of an ``ibm_*`` name without an account: its
        fake twin, said to ``say``); itself otherwise."""
        backend = self.budget.backend_for(self.backend, say)
        return self if backend == self.backend else self.model_copy(update={"backend": backend})


EXECUTION_FIELDS = tuple(ExecutionSpec.model_fields)


def nest(data: Any, execution_defaults: dict[str, Any] | None = None) -> Any:
    """A flat mapping (a spec as records keep it) with its execution fields gathered under ``execution``."""
    if not isinstance(data, dict) or "execution" in data:
        return data
    flat = dict(data)
    execution = {**(execution_defaults or {}), **{k: flat.pop(k) for k in EXECUTION_FIELDS if k in flat}}
    return {**flat, "execution": execution}


def flatten(data: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`nest`: the execution fields beside the others, as records keep them. No mitigation
    and no QPU budget (the defaults), Qiskit's own placement and the backend's own repetition delay are left out,
    as records written before them have them."""
    execution = data.get("execution")
    if not isinstance(execution, dict):
        return data
    defaults = {"mitigation": RAW, "budget": NO_BUDGET, "placement": "qiskit", "rep_delay": None}
    execution = {k: v for k, v in execution.items() if k not in defaults or v != defaults[k]}
    return {**{k: v for k, v in data.items() if k != "execution"}, **execution}


RAW = Mitigation().model_dump()
NO_BUDGET = QPUBudget().model_dump()


class WithExecution(BaseModel):
    """A spec that composes an :class:`ExecutionSpec` (``execution``). It is built from, and dumps to, the flat
    shape the records have always kept (``{"run": ..., "backend": ..., "shots": ...}``); reads of an execution
    field (``spec.backend``) forward to ``spec.execution``, so code written against the flat specs keeps working.
    ``EXECUTION_DEFAULTS`` are the composing spec's own defaults (a study's 4000 shots)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    EXECUTION_DEFAULTS: ClassVar[dict[str, Any]] = {}

    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, data: Any) -> Any:
        return nest(data, cls.EXECUTION_DEFAULTS)

    @model_serializer(mode="wrap")
    def _flat(self, handler: Any) -> dict[str, Any]:
        return flatten(handler(self))

    def __getattr__(self, name: str) -> Any:
        if name in EXECUTION_FIELDS:
            return getattr(self.execution, name)
        return super().__getattr__(name)  # type: ignore[misc]

    def with_execution(self, **changes: Any) -> Any:
        """A copy with some execution fields changed (validated)."""
        execution = ExecutionSpec.model_validate({**self.execution.model_dump(), **changes})
        return self.model_copy(update={"execution": execution})

    def on_planned_backend(self, say: Callable[[str], None] | None = None) -> Any:
        """A copy whose execution runs on the backend its budget plans on (:meth:`ExecutionSpec.on_planned_backend`)."""
        execution = self.execution.on_planned_backend(say)
        return self if execution is self.execution else self.model_copy(update={"execution": execution})
