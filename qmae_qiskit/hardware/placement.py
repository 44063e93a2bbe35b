"""Noise-aware placement: choose the physical qubits of a circuit by its expected error, idle time included.

What was chosen, and why. Qiskit's preset pass managers (levels 1-3) already score layouts: ``VF2Layout`` and
``VF2PostLayout`` rank subgraph matches by the gate and readout errors of the ``Target``, but they stop at a call
limit, and they ignore idle time: a qubit that waits through a long two-qubit sequence elsewhere decays, and on a
heavy-hex device the routed 8x8 circuit keeps several qubits idle for most of its duration. mapomatic 0.14 scores
every match (``matching_layouts`` + ``evaluate_layouts``) but reads ``backend.properties()`` and
``backend.configuration()`` (the BackendV1 interface), also without idle time, so it is not a dependency here.

This module does what mapomatic does, on the ``Target`` and with idle time:

1. transpile as Qiskit would (its own layout, routing and optimisation at the spec's level and seed);
2. take the routed circuit's interaction graph (every qubit it touches, routing qubits too) and find every
   subgraph match on the device's coupling graph with ``rustworkx.vf2_mapping`` (up to :data:`MAX_MATCHES`);
3. score each match by the expected error of the routed circuit moved there (:func:`score_counts`): gate errors of
   its one- and two-qubit gates on those qubits and couplers, readout errors of the measured qubits, and idle
   decoherence, each qubit's idle time in the ALAP schedule x (1/T1 + 1/T2) of the qubit it lands on;
4. re-transpile with the best few matches as the initial layout and score the real ISA circuits exactly
   (:func:`score_circuit`); keep the lowest, Qiskit's own result included, so the choice never scores worse.

The score is ``-ln`` of the estimated success probability, ``P = prod(1 - e_gate) prod(1 - e_readout)
exp(-sum_q idle_q (1/T1_q + 1/T2_q))``: a sum of independent error terms, comparable across devices.
(1/T1 + 1/T2) over-counts pure relaxation on purpose: it is a ranking rate, not a noise model.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import rustworkx as rx
from qiskit.circuit import QuantumCircuit
from qiskit.providers import BackendV2
from qiskit.transpiler import Target

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.schedule import delay_seconds, schedule
from qmae_qiskit.hardware.transpile import final_physical, initial_physical, transpile_for

PLACEMENTS = ("qiskit", "noise-aware")
MAX_MATCHES = 20_000
"""Subgraph matches scored per circuit (a 7-qubit routed circuit has a few thousand on a 156-qubit device)."""
RETRANSPILED = 4
"""Best matches re-transpiled and scored exactly."""
_SKIP = ("barrier", "delay")


@dataclass(frozen=True)
class ErrorScore:
    """A circuit's expected error on its qubits: each term is ``-ln`` of a success probability."""

    gates: float
    readout: float
    idle: float

    @property
    def total(self) -> float:
        return self.gates + self.readout + self.idle

    @property
    def success(self) -> float:
        """Estimated probability that no error happens."""
        return math.exp(-self.total)

    def as_dict(self) -> dict[str, float]:
        return {
            "score": self.total,
            "success": self.success,
            "gates": self.gates,
            "readout": self.readout,
            "idle": self.idle,
        }


@dataclass
class Counts:
    """What a routed circuit does on each physical qubit and coupler: what a placement's score needs."""

    ops: Counter = field(default_factory=Counter)  # (name, (q,) or (a, b)) -> how many
    idle: dict[int, float] = field(default_factory=dict)  # qubit -> idle seconds between its first and last op


def _neg_log(error: float | None) -> float:
    e = min(max(float(error or 0.0), 0.0), 1.0 - 1e-12)
    return -math.log1p(-e)


def idle_rate(target: Target, qubit: int) -> float:
    """1/T1 + 1/T2 of ``qubit`` (per second; 0 where the target does not know them)."""
    props = target.qubit_properties[qubit] if target.qubit_properties else None
    rate = 0.0
    for t in (getattr(props, "t1", None), getattr(props, "t2", None)):
        if t:
            rate += 1.0 / float(t)
    return rate


def idle_seconds(scheduled: QuantumCircuit, dt: float | None) -> dict[int, float]:
    """Per qubit, the delays of a scheduled circuit between its first and its last operation: the time it holds
    state and waits (the ALAP wait before its first gate and after its measurement cost nothing)."""
    pending: dict[int, float] = {}
    idle: dict[int, float] = {}
    for instr in scheduled.data:
        qubits = [scheduled.find_bit(q).index for q in instr.qubits]
        if instr.operation.name == "barrier":
            continue
        for q in qubits:
            if instr.operation.name == "delay":
                if q in idle:
                    pending[q] = pending.get(q, 0.0) + delay_seconds(instr.operation, dt)
            else:
                idle[q] = idle.get(q, 0.0) + pending.pop(q, 0.0)
    return idle


def count_ops(isa: QuantumCircuit, target: Target) -> Counts:
    """The operations of an ISA circuit per physical qubit tuple, and each qubit's idle time when the target has
    durations (else none: the idle term is then 0). A circuit without measurements is an Estimator's: the
    runtime measures each of its virtual qubits at the end, so each costs its readout error."""
    ops: Counter = Counter()
    for instr in isa.data:
        if instr.operation.name not in _SKIP:
            ops[(instr.operation.name, tuple(isa.find_bit(q).index for q in instr.qubits))] += 1
    if not any(name == "measure" for name, _ in ops):
        ops.update(("measure", (q,)) for q in final_physical(isa))
    idle: dict[int, float] = {}
    if target.dt is not None and _has_durations(target):
        idle = idle_seconds(schedule(isa, target), target.dt)
    return Counts(ops, idle)


def _has_durations(target: Target) -> bool:
    props = [p for name in target.operation_names for p in (target[name] or {}).values() if p is not None]
    return any(p.duration for p in props)


def _error(target: Target, name: str, qargs: tuple[int, ...]) -> float | None:
    """The error of ``name`` on ``qargs``, or on the reversed pair (a direction the transpiler can flip); None
    where the target has neither."""
    if name not in target.operation_names:
        return None
    table = target[name]
    for q in (qargs, qargs[::-1]):
        if q in table:
            props = table[q]
            return 0.0 if props is None or props.error is None else float(props.error)
    if None in table:  # a global operation (ideal simulator)
        return 0.0
    return None


def score_counts(counts: Counts, target: Target, moved: dict[int, int] | None = None) -> ErrorScore | None:
    """The score of ``counts`` with each physical qubit ``q`` moved to ``moved[q]`` (identity by default); None
    where a moved two-qubit gate has no coupler."""
    where = moved or {}
    gates = readout = idle = 0.0
    for (name, qargs), n in counts.ops.items():
        e = _error(target, name, tuple(where.get(q, q) for q in qargs))
        if e is None:
            return None
        if name == "measure":
            readout += n * _neg_log(e)
        else:
            gates += n * _neg_log(e)
    for q, seconds in counts.idle.items():
        idle += seconds * idle_rate(target, where.get(q, q))
    return ErrorScore(gates, readout, idle)


def score_circuit(isa: QuantumCircuit, target: Target) -> ErrorScore:
    """The expected error of an ISA circuit on ``target`` (gate, readout and idle terms)."""
    score = score_counts(count_ops(isa, target), target)
    if score is None:
        raise QMAEError(f"{isa.name} uses an operation the target lacks; transpile it for this backend first")
    return score


def matches(counts: Counts, target: Target, limit: int = MAX_MATCHES) -> list[dict[int, int]]:
    """Every subgraph match (up to ``limit``) of the routed circuit's qubits onto the device's coupling graph,
    as ``{qubit used now: qubit it would use}``."""
    used = sorted({q for _, qargs in counts.ops for q in qargs})
    index = {q: i for i, q in enumerate(used)}
    pattern = rx.PyGraph(multigraph=False)
    pattern.add_nodes_from(used)
    edges = {(min(index[q] for q in qargs), max(index[q] for q in qargs)) for _, qargs in counts.ops if len(qargs) == 2}
    pattern.add_edges_from_no_data(sorted(edges))
    cmap = target.build_coupling_map()
    if cmap is None:
        raise QMAEError("noise-aware placement needs a device with a coupling map; use --placement qiskit")
    graph = cmap.graph.to_undirected(multigraph=False)
    out = []
    for found in rx.vf2_mapping(graph, pattern, subgraph=True, induced=False, id_order=False):
        out.append({used[small]: big for big, small in found.items()})
        if len(out) >= limit:
            break
    return out


@dataclass
class Placed:
    """A circuit placed on a backend: its ISA circuit and score, and Qiskit's own score beside it."""

    isa: QuantumCircuit
    score: ErrorScore
    qiskit_score: ErrorScore
    layout: list[int]
    candidates: int


def place(
    circuit: QuantumCircuit,
    backend: BackendV2,
    optimization_level: int,
    seed: int | None,
    placement: str = "noise-aware",
) -> Placed:
    """``circuit`` transpiled for ``backend`` on the qubits of lowest expected error (see the module docstring);
    ``placement="qiskit"`` keeps Qiskit's own layout and only scores it."""
    if placement not in PLACEMENTS:
        raise QMAEError(f"unknown placement {placement!r}; use {' or '.join(PLACEMENTS)}")
    target = backend.target
    isa = transpile_for(circuit, backend, optimization_level, seed)
    counts = count_ops(isa, target)
    own = score_counts(counts, target)
    assert own is not None  # Qiskit's ISA circuit uses the target's operations
    best = Placed(isa, own, own, initial_physical(isa), 0)
    if placement == "qiskit":
        return best
    found = matches(counts, target)
    scored = [(s.total, m) for m in found if (s := score_counts(counts, target, m)) is not None]
    scored.sort(key=lambda item: item[0])
    start = initial_physical(isa)
    tried = set()
    for _, moved in scored:
        layout = [moved.get(q, q) for q in start]
        if tuple(layout) in tried:
            continue
        tried.add(tuple(layout))
        candidate = transpile_for(circuit, backend, optimization_level, seed, initial_layout=layout)
        score = score_circuit(candidate, target)
        if score.total < best.score.total:
            best = Placed(candidate, score, own, initial_physical(candidate), len(found))
        if len(tried) >= RETRANSPILED:
            break
    best.candidates = len(found)
    return best
