"""Schedule ISA circuits as the device runs them: ALAP, every idle period an explicit ``delay``.

Why: Aer's device noise (``NoiseModel.from_backend``) relaxes idle qubits only inside ``delay`` instructions, so an
unscheduled circuit leaves idle qubits noiseless on a twin while the device lets them decay. One function schedules
for the twin (:class:`~qmae_qiskit.hardware.twin_simulator.TwinSimulator` schedules each circuit it is handed, after
the runtime's twirling and dynamical decoupling, as the device would) and for the device path. It is Qiskit's own
scheduling (``ALAPScheduleAnalysis`` + ``PadDelay`` with the backend ``Target``'s durations), so any duration
estimate built on it agrees with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qiskit.circuit import QuantumCircuit
from qiskit.transpiler import PassManager, Target
from qiskit.transpiler.exceptions import TranspilerError
from qiskit.transpiler.passes import ALAPScheduleAnalysis, PadDelay, TimeUnitConversion

from qmae_qiskit.errors import QMAEError, one_line

if TYPE_CHECKING:  # the runtime's import costs ~1.6 s; only decoupled() needs it, and lazily
    from qiskit_ibm_runtime.options_models import DynamicalDecouplingOptions


def schedule(circuit: QuantumCircuit, target: Target) -> QuantumCircuit:
    """``circuit`` scheduled as late as possible on ``target``, idle time padded with delays (units of dt).

    Existing delays count as idle time and are re-padded, so scheduling twice gives the same circuit.
    """
    passes = [ALAPScheduleAnalysis(target=target), PadDelay(target=target)]
    if target.dt is not None:
        passes.insert(0, TimeUnitConversion(target=target))
    try:
        return PassManager(passes).run(circuit)
    except TranspilerError as exc:
        raise QMAEError(
            f"cannot schedule {circuit.name} on this target ({one_line(exc)}); a twin needs every gate's duration "
            "(a calibration snapshot with durations), or run it unscheduled with --no-idle-relaxation"
        ) from None


def decoupled(circuit: QuantumCircuit, backend: Any, dd: DynamicalDecouplingOptions) -> QuantumCircuit:
    """``circuit`` with the dynamical decoupling the runtime adds for the options ``dd`` (its own pass manager on
    the backend it is handed: the twin simulator, or the device), unchanged when ``dd.enable`` is off.

    Why: a model of a run (the noise model's scatter, :mod:`qmae_qiskit.study.scatter_model`) must see the pulses
    the run gets; on a relaxation-dominated circuit they change the scatter (XY4 on fake_quebec's 2-layer brickwork
    8x8: mean |error| without shot noise 0.0196 -> 0.0165, results/hardware/scatter-sources). The result is
    scheduled; time it with ``pad_gaps``. A barrier splits an idle window here, where the runtime drops barriers
    before it decouples: the study circuits have none (transpiled ISA circuits of rz, sx, x and two-qubit gates).
    """
    if not dd.enable:
        return circuit
    from qiskit_ibm_runtime.executor.dynamical_decoupling import generate_dd_pass_manager  # lazy: ~1.6 s

    return generate_dd_pass_manager(backend, dd).run(circuit)


def pad_gaps(circuit: QuantumCircuit, target: Target) -> QuantumCircuit:
    """A circuit already scheduled (it has delays), with any gap filled by a delay and nothing moved.

    Why: rescheduling a circuit with dynamical decoupling moves its pulses to the end of each idle period,
    which undoes the decoupling; gates added after scheduling (twirling) can leave gaps that must still idle.
    Each instruction starts when the last of its qubits is free (as in :func:`timeline`).
    """

    dt = target.dt or 1e-9
    unit = "dt" if target.dt is not None else "ns"
    clock = [0.0] * circuit.num_qubits
    out = circuit.copy_empty_like()
    for instr in circuit.data:
        qubits = [circuit.find_bit(q).index for q in instr.qubits]
        start = max((clock[q] for q in qubits), default=0.0)
        for q in qubits:
            gap = round((start - clock[q]) / dt)
            if gap > 0:
                out.delay(gap, q, unit)
        out.append(instr)
        length = _duration(instr.operation, qubits, target)
        for q in qubits:
            clock[q] = start + length
    end = max(clock, default=0.0)
    for q, t in enumerate(clock):
        gap = round((end - t) / dt)
        if t > 0 and gap > 0:
            out.delay(gap, q, unit)
    return out


def delay_seconds(op, dt: float | None) -> float:
    """The length of a ``delay`` instruction in seconds."""
    unit = getattr(op, "unit", "dt")
    value = float(op.params[0]) if op.params else float(op.duration)
    if unit == "dt":
        if dt is None:
            raise ValueError("a delay in units of dt on a target without dt")
        return value * dt
    scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12}
    return value * scale[unit]


def timeline(circuit: QuantumCircuit, target: Target) -> list[tuple[float, float]]:
    """(start, duration) in seconds of each instruction of a scheduled circuit, in circuit order.

    A scheduled circuit has no gaps: each wire is a sequence of instructions and delays from 0 to the end, so
    an instruction starts when the last of its qubits is free (barriers align their qubits, take no time).
    """
    clock = [0.0] * circuit.num_qubits
    out: list[tuple[float, float]] = []
    for instr in circuit.data:
        qubits = [circuit.find_bit(q).index for q in instr.qubits]
        start = max((clock[q] for q in qubits), default=0.0)
        length = _duration(instr.operation, qubits, target)
        for q in qubits:
            clock[q] = start + length
        out.append((start, length))
    return out


def _duration(op, qubits: list[int], target: Target) -> float:
    """Seconds ``op`` takes on ``qubits`` according to ``target`` (0 when it has no duration there)."""
    if op.name == "delay":
        return delay_seconds(op, target.dt)
    if op.name == "barrier" or op.name not in target.operation_names:
        return 0.0
    props = target[op.name].get(tuple(qubits))
    if props is None or props.duration is None:
        return 0.0
    return float(props.duration)
