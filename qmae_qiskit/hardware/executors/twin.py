"""The local twin as an executor: each circuit, transpiled against the whole device, runs on its twin.

See :mod:`qmae_qiskit.hardware.twin`. Each task gets the twin of the qubits its own ISA circuit uses; the
readout calibration circuits of a Sampler task run on the same twin. The simulator schedules each circuit the
runtime hands it (after twirling and DD, as the device times what it is sent; see
:func:`~qmae_qiskit.hardware.schedule.schedule`), so idle qubits relax; coherent idle errors
(:class:`~qmae_qiskit.hardware.idle_noise.IdleNoise`) are optional. Jobs go through the client-side primitives
with :class:`~qmae_qiskit.hardware.twin_simulator.TwinSimulator` as mode, so mitigation really runs.
"""

from __future__ import annotations

from typing import Any

from qiskit.providers import BackendV2

from qmae_qiskit.hardware.execution import Done, EstimatorTask, Executor, OnSubmitted, Result, SamplerTask, Work
from qmae_qiskit.hardware.idle_noise import IdleNoise
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
from qmae_qiskit.hardware.twin import check_calibrated, compact_circuit, compact_observable, make_twin, twin_simulator


class TwinExecutor(Executor):
    """A fake device or calibration snapshot, simulated on the qubits each circuit uses, with their noise."""

    kind = "twin"

    def __init__(self, device: BackendV2, spec: str | None = None, idle: IdleNoise | None = None):
        check_calibrated(device)
        self.device = device
        self.spec = spec or device.name
        self.idle = idle if idle is not None else IdleNoise()

    @property
    def target(self) -> BackendV2:
        return self.device

    @property
    def name(self) -> str:
        return f"{self.spec} (local twin)"

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "device": self.device.name,
            "spec": self.spec,
            "device_qubits": self.device.num_qubits,
            "idle": self.idle.describe(),
        }

    def run(self, work: Work, on_submitted: OnSubmitted | None = None) -> Done:
        check_rep_delay(self.device, work.rep_delay)  # the twin resets perfectly, but takes what the device takes
        for task in work.tasks.values():
            work.mitigation_of(task).check_runnable("twin", device=False)
        results: dict[str, Result] = {}
        ids: dict[str, str | None] = {}
        twins: dict[str, list[int]] = {}
        for role, task in work.tasks.items():
            twin = make_twin(self.device, task.circuit)
            twins[role] = twin.physical
            seed = work.seed_of(role)
            sim = twin_simulator(twin, seed, self.idle)
            if isinstance(task, EstimatorTask):
                local = EstimatorTask(
                    twin.circuit, compact_observable(task.observable, twin.physical), task.values, task.mitigation
                )
                job = estimator_job(sim, local, work, seed)
                note_submitted(role, job, ids, on_submitted)
                results[role] = read_estimates(job.result(), *shot_floor(local, work, twin.backend.target))
            else:
                local_s = SamplerTask(twin.circuit, task.values, task.register, task.mitigation)
                cal = [compact_circuit(c, twin.physical) for c in readout_calibration(task, work)]
                job = sampler_job(sim, local_s, work, cal, seed)
                note_submitted(role, job, ids, on_submitted)
                results[role] = read_samples(
                    job.result(), task.register, task.num_bits, work.mitigation_of(task).readout
                )
            results[role].metadata["twin_qubits"] = twin.physical
        return Done(results, ids)
