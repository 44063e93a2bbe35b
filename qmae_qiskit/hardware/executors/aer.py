"""Aer as an executor: ideal (exact values without shots) or with a noise model, no device coupling map.

With shots the work goes through the client-side runtime primitives on an Aer simulator as ``mode``, so the
same ``--estimator-options`` apply as on a device. A noise model here is applied to the circuit transpiled to
its basis gates on all-to-all connectivity, as noisy training does; for a device's layout, routing and the
noise of the qubits it would use, take its twin (:class:`~qmae_qiskit.hardware.executors.twin.TwinExecutor`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qiskit.providers import BackendV2
from qiskit_aer import AerSimulator
from qiskit_aer.primitives import EstimatorV2

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.execution import (
    Done,
    Estimates,
    EstimatorTask,
    Executor,
    OnSubmitted,
    Result,
    SamplerTask,
    Work,
)
from qmae_qiskit.hardware.executors.exact import distribution
from qmae_qiskit.hardware.primitives import (
    estimator_job,
    note_submitted,
    read_estimates,
    read_samples,
    readout_calibration,
    sampler_job,
    shot_floor,
)
from qmae_qiskit.hardware.twin import DENSITY_MATRIX_MAX_QUBITS
from qmae_qiskit.hardware.twin_simulator import TwinSimulator

IDEAL_BASIS = ("cx", "id", "rz", "sx", "x", "reset", "measure", "delay")


class AerExecutor(Executor):
    """``aer_simulator``, optionally with ``noise`` (an Aer NoiseModel) named ``noise_spec`` in records."""

    kind = "aer"

    def __init__(self, noise: Any = None, noise_spec: str | None = None, gpu: bool = False):

        self.noise = noise
        self.noise_spec = noise_spec
        self.gpu = gpu and aer_has_gpu()  # --device cuda: Aer's GPU when qiskit-aer-gpu provides one
        if noise is None:  # a basis of 1- and 2-qubit gates: the runtime's twirling boxes take no cswap
            self._target = AerSimulator(basis_gates=list(IDEAL_BASIS))
        else:
            self._target = AerSimulator(noise_model=noise, basis_gates=noise.basis_gates)

    @property
    def target(self) -> BackendV2:
        return self._target

    @property
    def name(self) -> str:
        return "aer_simulator" + (f" + noise {self.noise_spec}" if self.noise_spec else "")

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "noise_model": self.noise_spec,
            **({"device": "GPU"} if self.gpu else {}),
        }

    def run(self, work: Work, on_submitted: OnSubmitted | None = None) -> Done:
        if work.shots is None:
            if self.noise is not None:
                raise QMAEError("a noise model needs --shots (noisy estimates are sampled)")
            work.mitigation.check_runnable("exact", device=False)
            return Done({role: _exact(task) for role, task in work.tasks.items()})
        for task in work.tasks.values():
            work.mitigation_of(task).check_runnable("aer", device=False)
        results: dict[str, Result] = {}
        ids: dict[str, str | None] = {}
        for role, task in work.tasks.items():
            seed = work.seed_of(role)
            mode = self._mode(task.circuit.num_qubits, seed)
            if isinstance(task, EstimatorTask):
                job = estimator_job(mode, task, work, seed)
                note_submitted(role, job, ids, on_submitted)
                results[role] = read_estimates(job.result(), *shot_floor(task, work, self._target.target))
            else:
                job = sampler_job(mode, task, work, readout_calibration(task, work), seed)
                note_submitted(role, job, ids, on_submitted)
                results[role] = read_samples(
                    job.result(), task.register, task.num_bits, work.mitigation_of(task).readout
                )
        return Done(results, ids)

    def _mode(self, num_qubits: int, seed: int | None):

        if self.noise is None:
            sim = AerSimulator(method="automatic")
        else:
            method = "density_matrix" if num_qubits <= DENSITY_MATRIX_MAX_QUBITS else "automatic"
            sim = TwinSimulator(
                noise_model=self.noise, basis_gates=self.noise.basis_gates, method=method, fusion_threshold=1
            )
        if seed is not None:
            sim.set_options(seed_simulator=int(seed))
        if self.gpu:
            sim.set_options(device="GPU")
        return sim


def aer_has_gpu() -> bool:
    """Whether this qiskit-aer can simulate on a GPU (qiskit-aer-gpu, and a GPU it can see)."""

    try:
        return "GPU" in AerSimulator().available_devices()
    except Exception:  # pragma: no cover - an Aer build that cannot even list its devices
        return False


def _exact(task: EstimatorTask | SamplerTask) -> Result:
    """Ideal exact values on Aer: EstimatorV2 with ``default_precision=0``; statevector probabilities."""
    if isinstance(task, EstimatorTask):
        est = EstimatorV2(options={"default_precision": 0.0})
        pub = est.run([(task.circuit, task.observable, task.values)]).result()[0]
        values = np.asarray(pub.data.evs, dtype=np.float64).reshape(-1)
        return Estimates(values, np.zeros_like(values), {"method": "aer statevector, default_precision=0"})

    return distribution(task)
