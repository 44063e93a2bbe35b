"""A local twin of a device: the ISA circuit on its active physical qubits, with those qubits' calibrated noise.

Why: the client-side runtime primitives simulate every qubit of the backend they are given (all 133 of
fake_torino's are measured), which exhausts memory. A circuit transpiled against the whole device touches only a
few physical qubits, so the twin keeps layout and routing exactly as on hardware, then restricts the device's
``Target`` to the active qubits -- relabelled 0..k-1, each instruction with its calibrated error and duration,
each qubit with its T1/T2 -- and rebuilds the ISA circuit on them. Aer's ``NoiseModel.from_backend`` of that
compact target is, gate for gate, the noise the whole device's target gives those qubits; qubits the circuit
never touches stay in |0>, where relaxation and the idle errors of :mod:`~qmae_qiskit.hardware.idle_noise` do
nothing. The primitives then run TREX, ZNE, twirling and dynamical decoupling on it as they would for a device,
and the simulator schedules what they hand it (:mod:`~qmae_qiskit.hardware.schedule`), so idle qubits relax in
their delays as on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.providers import BackendV2, Options
from qiskit.quantum_info import PauliList, SparsePauliOp
from qiskit.transpiler import Target

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.backends import TargetBackend
from qmae_qiskit.hardware.idle_noise import IdleNoise
from qmae_qiskit.hardware.twin_simulator import TwinSimulator

DENSITY_MATRIX_MAX_QUBITS = 12  # 4^12 complex entries (268 MB); wider twins run as noisy trajectories


class CompactBackend(TargetBackend):
    """A backend that only carries a compacted target (no ``run``): the simulator is built from it."""

    cannot_run = "a compact twin backend cannot run circuits itself; simulate it with twin_simulator()"

    def __init__(self, target: Target, name: str, physical: list[int]):
        super().__init__(target, name=name, description=f"{name} restricted to physical qubits {physical}")
        self.physical = list(physical)

    @classmethod
    def _default_options(cls) -> Options:
        return Options(shots=1024)


def active_qubits(isa: QuantumCircuit) -> list[int]:
    """Physical qubits the ISA circuit acts on, plus where its virtual qubits end (observed even if idle)."""
    used: set[int] = set()
    for instr in isa.data:
        if instr.operation.name in ("barrier", "delay"):
            continue
        used.update(isa.find_bit(q).index for q in instr.qubits)
    if isa.layout is not None:
        used.update(isa.layout.final_index_layout(filter_ancillas=True))
        used.update(isa.layout.initial_index_layout(filter_ancillas=True))
    return sorted(used)


def compact_target(target: Target, physical: list[int]) -> Target:
    """``target`` restricted to ``physical`` (relabelled 0..k-1): same instructions, errors, durations, T1/T2."""
    index = {p: i for i, p in enumerate(physical)}
    qprops = target.qubit_properties
    new = Target(
        description=f"{target.description or 'target'} restricted to {len(physical)} qubits",
        num_qubits=len(physical),
        dt=target.dt,
        granularity=target.granularity,
        min_length=target.min_length,
        pulse_alignment=target.pulse_alignment,
        acquire_alignment=target.acquire_alignment,
        qubit_properties=[qprops[p] for p in physical] if qprops else None,
    )
    for name in target.operation_names:
        op = target.operation_from_name(name)
        props = target[name]
        if props is None or None in props:  # global instructions (control flow, ideal ops)
            new.add_instruction(op, name=name)
            continue
        sub = {tuple(index[q] for q in qargs): ip for qargs, ip in props.items() if all(q in index for q in qargs)}
        if sub:
            new.add_instruction(op, sub, name=name)
    return new


def compact_circuit(isa: QuantumCircuit, physical: list[int]) -> QuantumCircuit:
    """The ISA circuit rebuilt on ``physical`` relabelled 0..k-1 (same registers, parameters and order)."""
    index = {p: i for i, p in enumerate(physical)}
    out = QuantumCircuit(len(physical), name=isa.name, global_phase=isa.global_phase, metadata=dict(isa.metadata or {}))
    for creg in isa.cregs:
        out.add_register(creg)
    for instr in isa.data:
        qubits = [isa.find_bit(q).index for q in instr.qubits]
        if instr.operation.name == "barrier":
            kept = [index[q] for q in qubits if q in index]
            if kept:
                out.barrier(kept)
            continue
        missing = [q for q in qubits if q not in index]
        if missing and instr.operation.name == "delay":
            continue  # a scheduled circuit pads every device qubit; one left in |0> is not in the twin
        if missing:
            raise QMAEError(f"instruction {instr.operation.name} acts on physical qubits {missing} outside the twin")
        out.append(instr.operation, [out.qubits[index[q]] for q in qubits], instr.clbits)
    return out


def compact_observable(observable: SparsePauliOp, physical: list[int]) -> SparsePauliOp:
    """An observable on the device's qubits (as ``map_observable`` gives it) restricted to ``physical``."""
    if observable.num_qubits == len(physical):
        return observable
    paulis = observable.paulis
    keep = np.asarray(physical, dtype=int)
    outside = np.ones(observable.num_qubits, dtype=bool)
    outside[keep] = False
    if np.any(paulis.z[:, outside] | paulis.x[:, outside]):
        raise QMAEError("the observable acts on qubits the circuit never touches; map it with map_observable first")

    reduced = PauliList.from_symplectic(paulis.z[:, keep], paulis.x[:, keep], paulis.phase)
    return SparsePauliOp(reduced, observable.coeffs)


@dataclass(frozen=True)
class Twin:
    """A device's ISA circuit on its active qubits: the compact backend and the circuit rebuilt on it."""

    backend: CompactBackend
    circuit: QuantumCircuit
    physical: list[int]

    @property
    def num_qubits(self) -> int:
        return len(self.physical)


def make_twin(device: BackendV2, isa: QuantumCircuit, physical: list[int] | None = None) -> Twin:
    """The twin of ``device`` for one ISA circuit (or for the union ``physical`` of several circuits' qubits)."""
    if getattr(device, "target", None) is None:
        raise QMAEError(f"backend {device.name!r} has no target with calibration data; a twin needs one")
    physical = sorted(physical if physical is not None else active_qubits(isa))
    target = compact_target(device.target, physical)
    backend = CompactBackend(target, f"{device.name}-twin", physical)
    return Twin(backend, compact_circuit(isa, physical), physical)


def check_calibrated(device: BackendV2) -> None:
    """Refuse a device whose target carries no gate or readout errors: its twin would be noiseless."""
    target = device.target
    for name in target.operation_names:
        props = target[name]
        if props and any(p is not None and p.error is not None for p in props.values()):
            return
    raise QMAEError(
        f"backend {device.name!r} has no calibration data (no gate or readout errors in its target); use a fake "
        "device such as fake_torino or a calibration snapshot, or --backend aer_simulator for an ideal run"
    )


def twin_simulator(twin: Twin, seed: int | None = None, idle: IdleNoise | None = None):
    """Aer on the twin's noise: density matrix up to :data:`DENSITY_MATRIX_MAX_QUBITS` qubits (exact per circuit,
    far faster than shot-by-shot trajectories at thousands of shots), trajectories beyond; bodies shared by
    measurement twirls are simulated once (:class:`~qmae_qiskit.hardware.twin_simulator.TwinSimulator`). Every
    circuit is scheduled on the twin's target first (idle qubits relax in their delays), with coherent ``idle``
    errors if given (``idle.scheduled`` False: the unscheduled twin of records made before)."""

    method = "density_matrix" if twin.num_qubits <= DENSITY_MATRIX_MAX_QUBITS else "automatic"
    # fusion_threshold=1: fuse gates and their noise at every width (Aer's default starts at 14 qubits); ~4x
    # faster on the 5-9 qubit density matrices of the QMAE twins
    sim = TwinSimulator.from_backend(twin.backend, method=method, fusion_threshold=1)
    if seed is not None:
        sim.set_options(seed_simulator=int(seed))
    if idle is None or idle.scheduled:
        sim.set_timing(twin.backend.target, idle)
    return sim
