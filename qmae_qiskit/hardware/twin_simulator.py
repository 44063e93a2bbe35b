"""Aer for the twin, with the circuit body simulated once per distinct body instead of once per twirl.

Why: measurement twirling (TREX, resilience level 1) runs every image's circuit with 32 or more random final
layers. A density-matrix simulation costs the same for each, although the randomised part is only the last
layer of single-qubit gates before the measurements. This simulator splits each circuit into a *body* and a
*measurement tail* (per qubit: single-qubit gates, then one measurement), simulates the body with Aer's density
matrix once per distinct set of body parameters, and applies each tail exactly: the tail's noisy gates and
the readout error act qubit by qubit, so the outcome distribution is ``P(b) = Tr[rho (x)_q F_q(b_q)]`` with
``F_q(b) = sum_b' R_q[b'][b] E_q^dagger(|b'><b'|)``, ``E_q`` the composition of the tail's gates and their
noise-model errors, ``R_q`` the readout matrix. Shots are then sampled from P. The errors are Aer's own
(``NoiseModel`` quantum and readout errors), so the result is the same distribution Aer would sample; circuits
whose body changes with every binding (gate twirling, ZNE folding) or whose tail has other instructions are
simulated by Aer as they are.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.quantum_info import Operator, SuperOp
from qiskit.result import Result
from qiskit.result.models import ExperimentResult, ExperimentResultData
from qiskit.transpiler import Target
from qiskit_aer import AerSimulator

from qmae_qiskit.hardware.idle_noise import IdleNoise, add_idle_errors
from qmae_qiskit.hardware.schedule import pad_gaps, schedule

TAIL_GATES = ("rz", "sx", "x", "id", "sxdg", "z", "s", "sdg", "t", "tdg", "rx", "ry", "u", "u1", "u2", "u3", "p")
_PROJECTORS = (np.array([[1, 0], [0, 0]], dtype=complex), np.array([[0, 0], [0, 1]], dtype=complex))


@dataclass
class _Split:
    """A circuit cut into its body and its measurement tail."""

    body: QuantumCircuit
    tail: dict[int, list[Any]]  # qubit -> single-qubit instructions in time order
    measured: dict[int, int]  # qubit -> clbit
    body_params: list[Parameter]


def split_measurement_tail(circuit: QuantumCircuit) -> _Split | None:
    """The body and per-qubit tail of ``circuit``, or None if its end is not 1q gates then one measure per qubit.

    Scanning backwards, a measured qubit's tail collects single-qubit gates until the first other instruction
    on it; gates on different qubits commute, so the tails can be applied after the whole body.
    """
    measured: dict[int, int] = {}
    tail: dict[int, list[Any]] = {}
    closed: set[int] = set()  # qubits whose remaining (earlier) instructions belong to the body
    tail_pos: set[int] = set()  # positions in circuit.data (its instruction objects are made on each access)
    data = list(circuit.data)
    for pos in range(len(data) - 1, -1, -1):
        instr = data[pos]
        name = instr.operation.name
        qubits = [circuit.find_bit(q).index for q in instr.qubits]
        if name == "barrier":
            continue
        if name == "measure":
            q = qubits[0]
            if q in measured or q in closed:
                return None  # measured twice, or a mid-circuit measurement
            measured[q] = circuit.find_bit(instr.clbits[0]).index
            tail[q] = []
            tail_pos.add(pos)
            continue
        if (
            len(qubits) == 1
            and name in TAIL_GATES
            and qubits[0] in measured
            and qubits[0] not in closed
            and not instr.clbits
        ):
            tail[qubits[0]].insert(0, instr)
            tail_pos.add(pos)
            continue
        closed.update(qubits)
    if not measured:
        return None
    body = circuit.copy_empty_like(name=f"{circuit.name}_body")
    for pos, instr in enumerate(data):
        if pos not in tail_pos:
            body.append(instr)
    body.save_density_matrix(label="rho")
    params = sorted(body.parameters, key=lambda p: p.name)
    return _Split(body, tail, measured, params)


def _quantum_error(noise, name: str, qubit: int):
    """The noise model's quantum error for ``name`` on ``qubit`` (None when the instruction is ideal)."""
    if noise is None:
        return None
    local = noise._local_quantum_errors.get(name, {}).get((qubit,))
    return local if local is not None else noise._default_quantum_errors.get(name)


def _readout(noise, qubit: int) -> np.ndarray:
    """Aer's readout matrix R[true][reported] of ``qubit`` (identity when readout is ideal)."""
    if noise is not None:
        err = noise._local_readout_errors.get((qubit,)) or noise._default_readout_error
        if err is not None:
            return np.asarray(err.probabilities, dtype=float)
    return np.eye(2)


def _gate_matrix(op, values: dict[Parameter, float]) -> np.ndarray:
    """The 2x2 matrix of a tail gate with its parameters bound."""
    if op.name == "rz":
        angle = _bound(op.params[0], values)
        return np.diag([np.exp(-0.5j * angle), np.exp(0.5j * angle)])
    if not op.params or not any(hasattr(p, "parameters") for p in op.params):
        return np.asarray(Operator(op).data)
    bound = op.copy()
    bound.params = [_bound(p, values) for p in op.params]
    return np.asarray(Operator(bound).data)


def _bound(param, values: dict[Parameter, float]) -> float:
    if not hasattr(param, "parameters"):
        return float(param)
    return float(param.bind({k: values[k] for k in param.parameters}).numeric())


def _superop(matrix: np.ndarray) -> np.ndarray:
    """Column-stacking superoperator of a unitary: vec(U rho U^dagger) = (conj(U) kron U) vec(rho)."""
    return np.kron(matrix.conj(), matrix)


class _Channels:
    """The noise model's errors as superoperator matrices, cached per (instruction, qubit)."""

    def __init__(self, noise):
        self.noise = noise
        self._cache: dict[tuple[str, int], np.ndarray | None] = {}

    def error(self, name: str, qubit: int) -> np.ndarray | None:
        key = (name, qubit)
        if key not in self._cache:
            err = _quantum_error(self.noise, name, qubit)
            self._cache[key] = None if err is None else np.asarray(SuperOp(err.to_quantumchannel()).data)
        return self._cache[key]

    def povm(self, ops: list[Any], values: dict[Parameter, float], qubit: int) -> np.ndarray:
        """F(b), b = 0, 1: the tail (gates then their errors, then the measurement's error and readout) pulled
        back onto the state before the tail (Heisenberg picture: E^dagger has superoperator matrix S^dagger)."""
        S = np.eye(4, dtype=complex)
        for instr in ops:
            S = _superop(_gate_matrix(instr.operation, values)) @ S
            err = self.error(instr.operation.name, qubit)
            if err is not None:
                S = err @ S
        err = self.error("measure", qubit)
        if err is not None:
            S = err @ S
        back = S.conj().T
        pulled = [(back @ p.reshape(-1, order="F")).reshape(2, 2, order="F") for p in _PROJECTORS]
        R = _readout(self.noise, qubit)
        return np.stack([R[0, b] * pulled[0] + R[1, b] * pulled[1] for b in (0, 1)])


def outcome_probabilities(rho: np.ndarray, povms: dict[int, np.ndarray], order: list[int], n: int) -> np.ndarray:
    """P over the measured qubits ``order`` (outcome bit k = qubit order[k]); other qubits are traced out."""
    t = np.asarray(rho).reshape([2] * (2 * n))  # axes: rows of qubits n-1..0, then columns of n-1..0
    axis_of = {q: n - 1 - q for q in range(n)}
    rows = list(range(n))
    cols = list(range(n, 2 * n))
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    sub_rho = [letters[i] for i in range(2 * n)]
    operands: list[Any] = [t, "".join(sub_rho)]
    out = []
    extra = iter(letters[2 * n :])
    for q in range(n):
        r, c = sub_rho[rows[axis_of[q]]], sub_rho[cols[axis_of[q]]]
        if q in povms:
            b = next(extra)
            operands += [povms[q], b + c + r]  # F[b][c, r]: Tr[rho F] = sum rho[r, c] F[c, r]
            out.append((q, b))
        else:
            operands += [np.eye(2), c + r]
    outs = {q: b for q, b in out}
    result = "".join(outs[q] for q in reversed(order))  # most significant outcome bit first
    args = []
    for i in range(0, len(operands), 2):
        args += [operands[i], operands[i + 1]]
    expr = ",".join(args[1::2]) + "->" + result
    probs = np.real(np.einsum(expr, *args[0::2], optimize=True)).reshape(-1)
    probs = np.clip(probs, 0.0, None)
    return probs / probs.sum()


class _Done:
    def __init__(self, result: Result):
        self._result = result

    def result(self) -> Result:
        return self._result

    def job_id(self) -> str:
        return self._result.job_id


class TwinSimulator(AerSimulator):
    """``AerSimulator`` whose ``run`` reuses each body's density matrix across measurement twirls (see module).

    With :meth:`set_timing`, each circuit is first scheduled on the device's target -- after the runtime's
    twirling and dynamical decoupling, as the device times what it is sent -- so idle qubits relax in their
    delays, and coherent idle errors (:mod:`~qmae_qiskit.hardware.idle_noise`) are added if asked for. A
    circuit scheduled before (it has delays: the executor's schedule, DD's padding) keeps its timing and only
    has gaps filled (:func:`~qmae_qiskit.hardware.schedule.pad_gaps`): rescheduling would move DD pulses.
    """

    _timing: tuple[Target, IdleNoise | None] | None = None

    def set_timing(self, target: Target, idle: IdleNoise | None = None) -> None:
        """Schedule every circuit on ``target`` before simulating it, with ``idle`` errors in its delays."""
        self._timing = (target, None if idle is None or idle.is_off else idle)

    def timed(self, circuit: QuantumCircuit) -> QuantumCircuit:
        """``circuit`` as this simulator runs it: scheduled and with idle errors when timing is set."""
        if self._timing is None:
            return circuit
        target, idle = self._timing
        done = any(i.operation.name == "delay" for i in circuit.data)  # scheduled before (by us, or DD's pass)
        scheduled = pad_gaps(circuit, target) if done else schedule(circuit, target)
        return scheduled if idle is None else add_idle_errors(scheduled, target, idle)

    def run(
        self,
        circuits,
        parameter_binds=None,
        shots: int | None = None,
        seed_simulator: int | None = None,
        memory: bool = False,
        **run_options,
    ):
        circuits = [circuits] if isinstance(circuits, QuantumCircuit) else list(circuits)
        circuits = [self.timed(c) for c in circuits]
        binds = parameter_binds or [None] * len(circuits)
        shots = int(shots or self.options.shots)
        seed = seed_simulator if seed_simulator is not None else self.options.seed_simulator
        results: list[ExperimentResult] = []
        for index, (circuit, bind) in enumerate(zip(circuits, binds)):
            split = split_measurement_tail(circuit) if memory and bind else None
            groups = _body_groups(split, bind) if split is not None else None
            if split is None or groups is None:
                job = super().run(
                    circuit,
                    parameter_binds=[bind] if bind else None,
                    shots=shots,
                    seed_simulator=seed,
                    memory=memory,
                    **run_options,
                )
                results.extend(job.result().results)
                continue
            results.extend(self._run_split(circuit, split, bind, groups, shots, seed, index))
        return _Done(
            Result(
                backend_name=self.name,
                backend_version="twin",
                job_id=str(uuid.uuid4()),
                success=True,
                results=results,
                metadata={"method": "density_matrix (twin: bodies cached)"},
            )
        )

    def _run_split(
        self,
        circuit: QuantumCircuit,
        split: _Split,
        bind: dict,
        groups: tuple[np.ndarray, np.ndarray],
        shots: int,
        seed: int | None,
        index: int,
    ) -> list[ExperimentResult]:
        unique_rows, inverse = groups
        body_bind = {p: unique_rows[:, j] for j, p in enumerate(split.body_params)}
        body_job = super().run(
            split.body, parameter_binds=[body_bind] if split.body_params else None, shots=1, seed_simulator=seed
        )
        body_result = body_job.result()
        rhos = [np.asarray(body_result.data(i)["rho"]) for i in range(len(unique_rows))]
        channels = _Channels(self.options.noise_model)
        n = circuit.num_qubits
        order = sorted(split.measured, key=lambda q: split.measured[q])
        clbits = [split.measured[q] for q in order]
        nbytes = max(1, (circuit.num_clbits + 7) // 8)
        count = len(inverse)
        rng = np.random.default_rng(None if seed is None else [int(seed), index])
        tail_params = sorted(
            {p for ops in split.tail.values() for i in ops for p in _params_of(i)}, key=lambda p: p.name
        )
        out = []
        for k in range(count):
            values = {p: float(bind[p][k]) for p in tail_params}
            povms = {q: channels.povm(split.tail[q], values, q) for q in order}
            probs = outcome_probabilities(rhos[inverse[k]], povms, order, n)
            samples = rng.choice(len(probs), size=shots, p=probs)
            memory = _to_memory(samples, clbits, nbytes)
            out.append(
                ExperimentResult(
                    shots=shots,
                    success=True,
                    status="DONE",
                    data=ExperimentResultData(memory=memory),
                    header={"name": circuit.name},
                )
            )
        return out


def _params_of(instr) -> set[Parameter]:
    out: set[Parameter] = set()
    for p in instr.operation.params:
        out.update(getattr(p, "parameters", ()))
    return out


def _body_groups(split: _Split, bind: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """Distinct body parameter rows and, per binding, the row it uses; None when caching gains nothing."""
    count = len(next(iter(bind.values())))
    if not split.body_params:
        return np.zeros((1, 0)), np.zeros(count, dtype=int)
    table = np.stack([np.asarray(bind[p], dtype=float) for p in split.body_params], axis=1)
    unique_rows, inverse = np.unique(table, axis=0, return_inverse=True)
    if len(unique_rows) == count:
        return None
    return unique_rows, inverse.reshape(-1)


def _to_memory(samples: np.ndarray, clbits: list[int], nbytes: int) -> list[str]:
    """Outcome indices (bit k = clbits[k]) -> Aer's memory strings (hex of the whole classical register)."""
    outcomes, inverse = np.unique(samples, return_inverse=True)  # few distinct outcomes, many shots
    values = np.zeros(len(outcomes), dtype=np.int64)
    for k, c in enumerate(clbits):
        values |= ((outcomes >> k) & 1).astype(np.int64) << c
    hexes = [hex(v) for v in values.tolist()]
    return [hexes[i] for i in inverse.tolist()]
