"""Readout correction of Sampler counts with ``mthree``, calibrated by circuits run beside the work.

Why here: the runtime Sampler has no readout mitigation. Two calibration circuits -- every measured qubit
prepared in |0>, then in |1> -- run on the same physical qubits, in the same job (the same Batch on a device),
so the correction uses that run's own readout errors. Their marginals give each classical bit's 2x2 assignment
matrix (mthree's "independent" calibration); mthree inverts the tensored matrices on the observed bit strings
and the nearest probability distribution is returned.
"""

from __future__ import annotations

import numpy as np
from qiskit.circuit import ClassicalRegister, QuantumCircuit

from qmae_qiskit.errors import QMAEError


def measured_qubits(circuit: QuantumCircuit, register: str) -> list[int]:
    """The qubit measured into each bit of ``register`` (bit order)."""
    creg = next((c for c in circuit.cregs if c.name == register), None)
    if creg is None:
        raise QMAEError(f"circuit {circuit.name} has no classical register {register!r}")
    where: dict[int, int] = {}
    for instr in circuit.data:
        if instr.operation.name == "measure":
            bit = instr.clbits[0]
            if bit in creg:
                where[creg.index(bit)] = circuit.find_bit(instr.qubits[0]).index
    if len(where) != creg.size:
        raise QMAEError(f"register {register!r} of {circuit.name} has unmeasured bits; readout correction needs all")
    return [where[i] for i in range(creg.size)]


def calibration_circuits(circuit: QuantumCircuit, register: str) -> list[QuantumCircuit]:
    """All-|0> and all-|1> preparations of ``circuit``'s measured qubits, measured into the same register."""
    qubits = measured_qubits(circuit, register)
    out = []
    for state in (0, 1):
        cal = QuantumCircuit(circuit.num_qubits, name=f"readout_cal_{state}")
        creg = ClassicalRegister(len(qubits), register)
        cal.add_register(creg)
        if state:
            cal.x(qubits)
        cal.measure(qubits, creg)
        out.append(cal)
    return out


def assignment_matrices(counts0: dict[str, int], counts1: dict[str, int], num_bits: int) -> list[np.ndarray]:
    """Per bit j, [[P(0|0), P(0|1)], [P(1|0), P(1|1)]] (columns: prepared state), from the two calibrations."""
    mats = []
    for j in range(num_bits):
        cols = []
        for counts in (counts0, counts1):
            total = sum(counts.values())
            if total == 0:
                raise QMAEError("a readout calibration circuit returned no counts")
            ones = sum(c for k, c in counts.items() if _bit(k, j, num_bits))
            cols.append([(total - ones) / total, ones / total])
        mats.append(np.asarray(cols, dtype=np.float32).T)
    return mats


def _bit(key: str, j: int, num_bits: int) -> int:
    text = key.replace(" ", "")
    value = int(text, 16) if text.startswith("0x") else int(text, 2)
    return (value >> j) & 1


def correct(counts: list[dict[str, int]], matrices: list[np.ndarray], num_bits: int) -> np.ndarray:
    """Readout-corrected probabilities (N, 2^m): mthree's quasi-probabilities, then the nearest distribution."""
    import mthree  # lazy: mthree adds ~2 s; only readout mitigation needs it

    mit = mthree.M3Mitigation()
    mit.cals_from_matrices(matrices)
    qubits = list(range(num_bits))
    out = np.zeros((len(counts), 1 << num_bits))
    for row, c in enumerate(counts):
        keyed = {format(_index(k), f"0{num_bits}b"): v for k, v in c.items()}
        quasi = mit.apply_correction(keyed, qubits)
        for key, p in quasi.nearest_probability_distribution().items():
            out[row, int(key, 2)] = p
    return out


def _index(key: str) -> int:
    text = key.replace(" ", "")
    return int(text, 16) if text.startswith("0x") else int(text, 2)
