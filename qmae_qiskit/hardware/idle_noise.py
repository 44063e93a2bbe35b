"""Coherent idle errors on a scheduled circuit: per-qubit detuning and static ZZ between coupled neighbours.

Why: Aer's device noise gives idle qubits thermal relaxation only, which is Markovian and which dynamical
decoupling cannot undo, so on a twin DD could only cost. On a device, idle qubits also precess coherently: a
frequency offset from the calibrated drive frame (detuning) and the always-on ZZ between coupled qubits. DD
echoes exactly these, so they must be on the twin for DD (and twirling, which turns them into stochastic
Pauli noise) to be judged.

The model, in the frame where each qubit's frequency is calibrated with its neighbours in |0> (the frame IBM's
calibrations use), during idle time only:

    H_idle = 2 pi * sum_q detuning_hz |1><1|_q  +  2 pi * sum_(q,r coupled) zz_hz |11><11|_qr

so ZZ is ``zz_hz = f11 - f10 - f01 + f00`` and a neighbour left in |0> adds nothing (which is also why the twin
may leave untouched neighbours out). :func:`add_idle_errors` turns every ``delay`` of length t into the delay
followed by ``RZ(-2 pi detuning t)`` (exp(-i 2 pi detuning t |1><1|) up to a global phase), and every overlap t of
two coupled qubits' delays into ``diag(1, 1, 1, exp(-i 2 pi zz t))`` placed where both are idle (as a one-operator
Kraus instruction: Aer's device basis has no two-qubit phase gate, and the noise model must not add gate errors to
it). Idle errors during gates are not modelled (calibration absorbs them there).

Typical magnitudes (order of magnitude, for choosing strengths; these are not read from one table): static ZZ
of tens of kHz between fixed-coupler neighbours on Falcon/Eagle devices (Tripathi et al., Phys. Rev. Applied 18,
024068 (2022), arXiv:2108.04530; Wei et al., PRL 129, 060501 (2022), arXiv:2106.00675), and far less on
tunable-coupler Heron devices (Hickman et al., arXiv:2506.18010 find ZZ-robust DD gains little there). Detuning
from drift between calibrations is of order kHz. Both are off unless asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from qiskit.circuit import Instruction, QuantumCircuit
from qiskit.circuit.library import RZGate
from qiskit.transpiler import Target

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.schedule import timeline

MAX_IDLE_HZ = 1.0e6  # beyond 1 MHz an "idle" coupling is a gate, not an error


@dataclass(frozen=True)
class IdleNoise:
    """What idle qubits suffer on a twin: relaxation in the delays of a scheduled circuit (``scheduled``; off only
    to reproduce records made before twins were scheduled) and coherent errors of these strengths in Hz (0 = off)."""

    zz_hz: float = 0.0
    detuning_hz: float = 0.0
    scheduled: bool = True

    def __post_init__(self) -> None:
        if not self.scheduled and not self.is_off:
            raise QMAEError(
                "--idle-zz and --idle-detuning act in the delays of a scheduled circuit; drop --no-idle-relaxation"
            )
        for flag, value in (("--idle-zz", self.zz_hz), ("--idle-detuning", self.detuning_hz)):
            if not math.isfinite(value) or abs(value) > MAX_IDLE_HZ:
                raise QMAEError(
                    f"{flag} {value:g} Hz is out of range; give a strength in Hz with |value| <= "
                    f"{MAX_IDLE_HZ:g} (static ZZ is tens of kHz on Eagle, a few kHz or less on Heron)"
                )

    @property
    def is_off(self) -> bool:
        """True when no coherent idle error is asked for (relaxation may still be on)."""
        return self.zz_hz == 0.0 and self.detuning_hz == 0.0

    @property
    def is_default(self) -> bool:
        return self.is_off and self.scheduled

    def describe(self) -> dict[str, float | bool]:
        return {"scheduled": self.scheduled, "zz_hz": self.zz_hz, "detuning_hz": self.detuning_hz}


def coupled_pairs(target: Target) -> set[tuple[int, int]]:
    """Unordered pairs of qubits that share a two-qubit instruction in ``target`` (its coupling map)."""
    pairs: set[tuple[int, int]] = set()
    for name in target.operation_names:
        for qargs in target[name] or {}:
            if qargs is not None and len(qargs) == 2:
                pairs.add((min(qargs), max(qargs)))
    return pairs


def zz_phase(angle: float) -> Instruction:
    """exp(-i angle |11><11|) as Aer's ``kraus`` instruction with one operator (symmetric in its two qubits).

    Built directly: ``Kraus.to_instruction`` turns a single operator into a ``unitary``, which Aer's device
    basis does not take."""
    return Instruction("kraus", 2, 0, [np.diag([1.0, 1.0, 1.0, np.exp(-1j * angle)])])


def add_idle_errors(circuit: QuantumCircuit, target: Target, idle: IdleNoise) -> QuantumCircuit:
    """The scheduled ``circuit`` with each delay's detuning phase and each coupled overlap's ZZ phase added.

    Instructions are emitted in order of start time (each wire keeps its order); a delay's ZZ phases with
    neighbours whose delays started no later are placed right after it, where both qubits are still idle.
    """
    if idle.is_off:
        return circuit
    times = timeline(circuit, target)
    pairs = coupled_pairs(target)
    order = sorted(range(len(circuit.data)), key=lambda i: times[i][0])
    out = circuit.copy_empty_like()
    open_delays: dict[int, list[tuple[float, float]]] = {}  # qubit -> (start, end) of delays emitted so far
    two_pi = 2.0 * math.pi
    for i in order:
        instr = circuit.data[i]
        out.append(instr)
        if instr.operation.name != "delay":
            continue
        q = circuit.find_bit(instr.qubits[0]).index
        start, length = times[i]
        end = start + length
        if idle.detuning_hz and length > 0:
            out.append(RZGate(-two_pi * idle.detuning_hz * length), [q])
        if idle.zz_hz:
            for r, spans in open_delays.items():
                if r == q or (min(q, r), max(q, r)) not in pairs:
                    continue
                overlap = sum(max(0.0, min(end, b) - max(start, a)) for a, b in spans)
                if overlap > 0:
                    out.append(zz_phase(two_pi * idle.zz_hz * overlap), [q, r])
        open_delays.setdefault(q, []).append((start, end))
    return out
