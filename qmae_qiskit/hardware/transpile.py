"""Transpile for a backend and carry observables through the layout (shared by training, reports and submit).

Always transpile explicitly and map the observable with ``SparsePauliOp.apply_layout(isa.layout)``: handing a raw
circuit to a primitive with a pass manager gives silently wrong values.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from qiskit.circuit import QuantumCircuit
from qiskit.providers import BackendV2
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import PassManager
from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware import DEFAULT_TRANSPILER_SEED
from qmae_qiskit.hardware.backends import ensure_fits

DEFAULT_SEED = DEFAULT_TRANSPILER_SEED


def check_level(level: int) -> int:
    if level not in (0, 1, 2, 3):
        raise QMAEError(f"optimization level must be 0, 1, 2 or 3, got {level}")
    return level


def pass_manager(
    backend: BackendV2,
    optimization_level: int = 1,
    seed: int | None = DEFAULT_SEED,
    initial_layout: list[int] | None = None,
) -> PassManager:
    """Qiskit's preset pass manager for ``backend``; a fixed ``seed`` makes the result repeatable."""
    return generate_preset_pass_manager(
        optimization_level=check_level(optimization_level),
        backend=backend,
        seed_transpiler=seed,
        initial_layout=initial_layout,
    )


def transpile_for(
    circuit: QuantumCircuit,
    backend: BackendV2,
    optimization_level: int = 1,
    seed: int | None = DEFAULT_SEED,
    initial_layout: list[int] | None = None,
) -> QuantumCircuit:
    """The ISA circuit for ``backend`` (fails with one line if the circuit is wider than the backend)."""
    ensure_fits(circuit.num_qubits, backend)
    return pass_manager(backend, optimization_level, seed, initial_layout).run(circuit)


@dataclass
class Transpiled:
    circuit: QuantumCircuit
    seconds: float


def timed_transpile(
    circuit: QuantumCircuit,
    backend: BackendV2,
    optimization_level: int = 1,
    seed: int | None = DEFAULT_SEED,
    initial_layout: list[int] | None = None,
) -> Transpiled:
    start = time.perf_counter()
    isa = transpile_for(circuit, backend, optimization_level, seed, initial_layout)
    return Transpiled(isa, time.perf_counter() - start)


def map_observable(obs: SparsePauliOp, isa: QuantumCircuit) -> SparsePauliOp:
    """``obs`` on the virtual qubits -> the same observable on the ISA circuit's physical qubits."""
    if isa.layout is None:
        if obs.num_qubits != isa.num_qubits:
            raise QMAEError(f"observable has {obs.num_qubits} qubits but the circuit {isa.num_qubits} and no layout")
        return obs
    return obs.apply_layout(isa.layout)


def initial_physical(isa: QuantumCircuit) -> list[int]:
    """Physical qubit of each virtual qubit at the start of the ISA circuit."""
    if isa.layout is None:
        return list(range(isa.num_qubits))
    return list(isa.layout.initial_index_layout(filter_ancillas=True))


def final_physical(isa: QuantumCircuit) -> list[int]:
    """Physical qubit of each virtual qubit at the end (after routing's permutation)."""
    if isa.layout is None:
        return list(range(isa.num_qubits))
    return list(isa.layout.final_index_layout(filter_ancillas=True))


def two_qubit_depth(qc: QuantumCircuit) -> int:
    return qc.depth(lambda instr: instr.operation.num_qubits == 2 and instr.operation.name != "barrier")


def two_qubit_count(qc: QuantumCircuit) -> int:
    return sum(1 for instr in qc.data if instr.operation.num_qubits == 2 and instr.operation.name != "barrier")
