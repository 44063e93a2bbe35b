"""The one execution interface: prepared work in, expectation values and outcome distributions out.

Prepared work is a set of named tasks, each one circuit with a table of parameter values (one row per
image): an :class:`EstimatorTask` (an observable on the circuit's qubits) or a :class:`SamplerTask` (a measured
classical register). An :class:`Executor` runs a :class:`Work` and returns, per task, :class:`Estimates`
(value and standard error per row) or :class:`Samples` (probabilities per row, with the raw counts when there
were shots). The implementations -- the exact path, Aer, the local twin of a device and the IBM runtime --
differ only in where the numbers come from; ``evaluate``, ``submit`` and ``study`` all prepare work, run it
through one of them and score the result.

``Executor.target`` is what circuits must be transpiled against (None: run the logical circuits as built);
:func:`qmae_qiskit.hardware.transpile.transpile_for` is the one function that does it.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.providers import BackendV2
from qiskit.quantum_info import SparsePauliOp

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.mitigation import Mitigation


@dataclass(frozen=True)
class EstimatorTask:
    """<observable> of ``circuit`` for every row of ``values`` (columns in ``circuit.parameters`` order)."""

    circuit: QuantumCircuit
    observable: SparsePauliOp
    values: np.ndarray
    mitigation: Mitigation | None = None  # this task's own options (else the work's)

    @property
    def rows(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True)
class SamplerTask:
    """The distribution of classical register ``register`` of ``circuit`` for every row of ``values``."""

    circuit: QuantumCircuit
    values: np.ndarray
    register: str
    mitigation: Mitigation | None = None  # this task's own options (else the work's)

    @property
    def rows(self) -> int:
        return int(self.values.shape[0])

    @property
    def num_bits(self) -> int:
        for creg in self.circuit.cregs:
            if creg.name == self.register:
                return creg.size
        raise QMAEError(f"circuit {self.circuit.name} has no classical register {self.register!r}")


Task = EstimatorTask | SamplerTask
TaskSeeds = Literal["independent", "shared"]


def task_seed(seed: int, role: str) -> int:
    """A seed of its own for task ``role`` of a run seeded ``seed`` (stable across processes, unlike ``hash``)."""
    return int(np.random.SeedSequence([int(seed), zlib.crc32(role.encode())]).generate_state(1)[0])


@dataclass(frozen=True)
class Work:
    """Tasks by role, run together (one Batch on a device); ``shots`` None asks for exact values. A task's own
    ``mitigation`` overrides the work's, so one submission can compare methods. ``rep_delay`` reaches a device
    and its twin as the runtime's ``execution.rep_delay`` (checked against the backend's range)."""

    tasks: dict[str, Task]
    shots: int | None = None
    mitigation: Mitigation = field(default_factory=Mitigation)
    seed: int | None = None
    rep_delay: float | None = None  # seconds between shots (the runtime's execution.rep_delay); None: the backend's
    task_seeds: TaskSeeds = "independent"

    def mitigation_of(self, task: Task) -> Mitigation:
        return task.mitigation if task.mitigation is not None else self.mitigation

    def seed_of(self, role: str) -> int | None:
        """The simulator seed of one task: its own stream (``independent``), so that two tasks' shot noise is
        independent as on a device, or the work's seed for every task (``shared``, records made before
        2026-12-05). A shared seed gives two tasks of one circuit the same random draws: a reference circuit's
        shot noise then cancels against the main circuit's on a twin, which a device never does."""
        if self.seed is None or self.task_seeds == "shared":
            return self.seed
        return task_seed(self.seed, role)

    def __post_init__(self) -> None:
        if self.shots is not None and self.shots < 1:
            raise QMAEError(f"shots must be a positive number, got {self.shots}")
        for role, task in self.tasks.items():
            if task.values.ndim != 2 or task.values.shape[1] != task.circuit.num_parameters:
                raise QMAEError(
                    f"task {role!r}: parameter values of shape {task.values.shape} do not fit the "
                    f"{task.circuit.num_parameters} parameters of {task.circuit.name}"
                )


@dataclass
class Estimates:
    """Expectation values and their standard errors, one per row (stds are 0 for exact values)."""

    values: np.ndarray
    stds: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Samples:
    """Outcome probabilities per row (N, 2^m); ``counts`` are the raw counts when there were shots."""

    probabilities: np.ndarray
    counts: list[dict[str, int]] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


Result = Estimates | Samples
OnSubmitted = Callable[[str, str], None]  # (role, job id): called as soon as a job is accepted


class Execution(ABC):
    """Work that has been handed to an executor; ``result`` waits for it."""

    job_ids: dict[str, str | None]

    @abstractmethod
    def result(self) -> dict[str, Result]: ...


class Done(Execution):
    """Work that ran synchronously: the results are already here."""

    def __init__(self, results: dict[str, Result], job_ids: dict[str, str | None] | None = None):
        self._results = results
        self.job_ids = job_ids or dict.fromkeys(results)

    def result(self) -> dict[str, Result]:
        return self._results


class Executor(ABC):
    """Runs :class:`Work`. Subclasses say what to transpile for (``target``) and whether jobs leave the machine."""

    kind: ClassVar[str] = "executor"
    remote: ClassVar[bool] = False

    @property
    def target(self) -> BackendV2 | None:
        """The backend circuits must be transpiled for, or None to run them as built."""
        return None

    @property
    def name(self) -> str:
        return self.kind

    def describe(self) -> dict[str, Any]:
        """What produced the numbers, for records."""
        return {"kind": self.kind, "name": self.name}

    @abstractmethod
    def run(self, work: Work, on_submitted: OnSubmitted | None = None) -> Execution:
        """Run (or, remotely, submit) ``work``; ``on_submitted`` sees each job id as soon as it exists."""
