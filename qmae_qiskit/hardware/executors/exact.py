"""The exact executor: noiseless expectation values and outcome probabilities, no shots.

Circuits built by :mod:`qmae_qiskit.model.circuits` (their ``metadata`` names the kind and the config) are
computed by the exact path: the loaded images are read back from the loader angles in the parameter values
(:func:`~qmae_qiskit.model.loader.state_from_angles`), theta from its columns, and :mod:`qmae_qiskit.simulate.exact`
gives the fidelity and the decoded distribution for all rows at once -- the same numbers as simulating each
bound circuit, which the tests check. Any other circuit is simulated row by row (``Statevector``, or
``DensityMatrix`` when it resets).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from qiskit.circuit import QuantumCircuit
from qiskit.quantum_info import DensityMatrix, SparsePauliOp, Statevector

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.execution import (
    Done,
    Estimates,
    EstimatorTask,
    Executor,
    OnSubmitted,
    SamplerTask,
    Samples,
    Work,
)
from qmae_qiskit.hardware.readout import measured_qubits
from qmae_qiskit.model.ansatz import BLOCK_PARAMS, light_cone, pair_order
from qmae_qiskit.model.circuits import MASKED, REFERENCE, THETA, fidelity_observable, inverse_fidelity_circuit
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.loader import state_from_angles
from qmae_qiskit.simulate import exact

FAST_KINDS = ("training", "inverse_fidelity", "reconstruction")


class ExactExecutor(Executor):
    """Exact values of the logical circuits (no transpiling, no shots, no noise)."""

    kind = "exact"

    def __init__(self, device: str = "cpu"):
        self.device = torch.device(device)  # where the exact path's kernel runs (the statevector fallback: CPU)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            **({"device": self.device.type} if self.device.type != "cpu" else {}),
        }

    def run(self, work: Work, on_submitted: OnSubmitted | None = None) -> Done:
        if work.shots is not None:
            raise QMAEError("the exact backend computes exact values; drop --shots or pick another backend")
        for task in work.tasks.values():
            work.mitigation_of(task).check_runnable("exact", device=False)
        out: dict = {}
        for role, task in work.tasks.items():
            out[role] = (
                estimate(task, self.device) if isinstance(task, EstimatorTask) else distribution(task, self.device)
            )
        return Done(out)


def _fast_inputs(circuit: QuantumCircuit, values: np.ndarray):
    """(config, theta, masked states, clean states or None) for a builder circuit, else None."""

    meta = circuit.metadata or {}
    if meta.get("qmae_circuit") not in FAST_KINDS or "config" not in meta:
        return None
    cfg = QMAEConfig(**meta["config"])
    columns: dict[str, list[tuple[int, int]]] = {THETA: [], MASKED: [], REFERENCE: []}
    for col, p in enumerate(circuit.parameters):
        vec = getattr(p, "vector", None)
        if vec is None or vec.name not in columns:
            return None
        columns[vec.name].append((p.index, col))
    table = torch.as_tensor(values, dtype=torch.float64)

    def block(name: str) -> torch.Tensor | None:
        cols = [c for _, c in sorted(columns[name])]
        return table[:, cols] if cols else None

    theta = _full_theta(columns[THETA], table, cfg)
    if theta is None or not bool((theta == theta[:1]).all()):
        return None  # theta missing, approximated, or different per row: simulate row by row
    masked = block(MASKED)
    if masked is None or masked.shape[1] != cfg.n_loader_angles:
        return None
    clean = block(REFERENCE)
    if clean is not None and clean.shape[1] != cfg.n_loader_angles:
        return None
    return cfg, theta[0], state_from_angles(masked), None if clean is None else state_from_angles(clean)


def _full_theta(columns: list[tuple[int, int]], table: torch.Tensor, cfg) -> torch.Tensor | None:
    """All n_theta angles per row, or None unless the circuit has all of them or exactly those of a device
    circuit's light cone (:func:`qmae_qiskit.model.ansatz.light_cone`); the left-out blocks' angles are set to 0,
    which cannot change the circuit's value."""

    keep = light_cone(pair_order(cfg.n_qubits, cfg.ansatz) * cfg.layers, range(cfg.latent, cfg.n_qubits))
    cone = {BLOCK_PARAMS * m + j for m, kept in enumerate(keep) if kept for j in range(BLOCK_PARAMS)}
    present = {i for i, _ in columns}
    if present != cone and present != set(range(cfg.n_theta)):
        return None
    theta = torch.zeros(table.shape[0], cfg.n_theta, dtype=table.dtype)
    theta[:, [i for i, _ in columns]] = table[:, [c for _, c in columns]]
    return theta


def _builder_observable(circuit: QuantumCircuit, cfg) -> SparsePauliOp | None:

    kind = circuit.metadata.get("qmae_circuit")
    if kind == "training":
        return fidelity_observable(circuit.num_qubits, circuit.metadata["ancilla"])
    if kind == "inverse_fidelity":
        return inverse_fidelity_circuit(cfg)[1]
    return None


def estimate(task: EstimatorTask, device: torch.device | None = None) -> Estimates:
    """<O> per row, exactly (the exact path on ``device``, CPU by default)."""

    fast = _fast_inputs(task.circuit, task.values)
    if fast is not None:
        cfg, theta, masked, clean = fast
        reference = _builder_observable(task.circuit, cfg)
        if clean is not None and reference is not None and reference.equiv(task.observable):
            with torch.no_grad():
                th, xm, xc = _on(device, theta, masked, clean)
                values = exact.fidelity(th, xm, xc, cfg).cpu().numpy()
            return Estimates(values, np.zeros_like(values), {"method": "exact path"})
    values = np.array(
        [_state(task.circuit.assign_parameters(row)).expectation_value(task.observable).real for row in task.values]
    )
    return Estimates(values, np.zeros_like(values), {"method": "statevector"})


def distribution(task: SamplerTask, device: torch.device | None = None) -> Samples:
    """Outcome probabilities of the register per row, exactly (the exact path on ``device``, CPU by default)."""

    fast = _fast_inputs(task.circuit, task.values)
    if fast is not None and task.circuit.metadata.get("qmae_circuit") == "reconstruction" and task.register == "pixel":
        cfg, theta, masked, _ = fast
        with torch.no_grad():
            th, xm = _on(device, theta, masked)
            probs = exact.reconstruct(th, xm, cfg).cpu().numpy()
        return Samples(probs, None, {"method": "exact path"})
    qubits = measured_qubits(task.circuit, task.register)
    body = task.circuit.remove_final_measurements(inplace=False)
    probs = np.array([_state(body.assign_parameters(row)).probabilities(qubits) for row in task.values])
    return Samples(probs, None, {"method": "statevector"})


def _on(device: torch.device | None, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return tensors if device is None or device.type == "cpu" else tuple(t.to(device) for t in tensors)


def _state(circuit: QuantumCircuit) -> Statevector | DensityMatrix:
    if any(i.operation.name == "reset" for i in circuit.data):
        return DensityMatrix(circuit)
    return Statevector(circuit)
