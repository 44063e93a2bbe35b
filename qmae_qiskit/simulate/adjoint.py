"""Adjoint (reverse-mode) gradient of <O> for ``EstimatorQNN``: one forward pass and one backward sweep.

Why: parameter shift runs two circuits per *occurrence* of a parameter. In the QMAE circuit each weight appears
in U and in U-dagger, so one 16x16 sample needs 1,680 circuits for the weights alone. The adjoint method gets
every derivative from one statevector pass forward and one backward, at about three times the cost of a single
simulation, for weights and circuit inputs alike.

How (all exact, on the statevector):

* The circuit is parsed once into fixed gates (their matrices) and rotations ``G(phi) = exp(-i phi K / 2)``
  (rx, ry, rz, p, u1, rxx, ryy, rzz, rzx, crx, cry, crz, cp, cu1; u/u2/u3/r split into rz/ry/rx) whose angle
  ``phi = b + sum_j a_j p_j`` is affine in the circuit parameters. d<O>/dphi = Im <lambda|K|psi>, taken after the
  gate, with lambda = (gates after it)^dagger O psi_final; the chain rule through ``a`` sums the occurrences.
* Factorised prefix: starting from |0...0>, gates are grouped into factors (sets of qubits they have
  entangled) while every factor stays at most ``max_factor_qubits``; a gate that would exceed it, and every
  later gate touching its qubits, is deferred to the *suffix* (gates on other qubits commute with it). Each
  factor is simulated on its own small vector; only the suffix (for QMAE: the SWAP test's cswaps) runs on the
  full register. Backward, the full costate is projected onto each factor,
  lambda_f = (prod_{g != f} <psi_g|) lambda, and each factor runs the ordinary adjoint sweep on its own gates.
* Samples are batched: one numpy call applies a gate to every sample, and psi and lambda are un-applied together.

It refuses, with one clear line, what it cannot differentiate exactly: measurements, resets, non-unitary or
noise instructions, non-affine or complex angle expressions, estimators that are noisy or sampled (see
:func:`adjoint_problem`, the question "can adjoint handle this circuit / estimator / observable?").
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from qiskit.circuit import ControlFlowOp, Gate, Parameter, ParameterExpression, QuantumCircuit
from qiskit.primitives import BaseEstimatorV2, StatevectorEstimator
from qiskit.providers import Options
from qiskit.quantum_info import Operator, Pauli, PauliList, SparsePauliOp
from qiskit_aer.primitives import EstimatorV2 as AerEstimatorV2
from qiskit_machine_learning.gradients import (
    BaseEstimatorGradient,
    EstimatorGradientResult,
    ParamShiftEstimatorGradient,
)
from qiskit_machine_learning.gradients.utils import DerivativeType

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.simulate import statevector_ops as svo

# ----------------------------------------------------------------------------------- gate generators K
_I2 = np.eye(2, dtype=complex)
_X = np.array([[0, 1], [1, 0]], dtype=complex)
_Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
_Z = np.diag([1.0, -1.0]).astype(complex)
_P1 = np.diag([0.0, 1.0]).astype(complex)  # |1><1|

# G(phi) = exp(-i phi K / 2); matrices in Qiskit's qargs order (kron(a, b): a on qargs[1], b on qargs[0]).
GENERATORS: dict[str, np.ndarray] = {
    "rx": _X,
    "ry": _Y,
    "rz": _Z,
    "p": -2 * _P1,
    "u1": -2 * _P1,
    "rxx": np.kron(_X, _X),
    "ryy": np.kron(_Y, _Y),
    "rzz": np.kron(_Z, _Z),
    "rzx": np.kron(_X, _Z),  # Z on qargs[0], X on qargs[1]
    "crx": np.kron(_X, _P1),  # control qargs[0]
    "cry": np.kron(_Y, _P1),
    "crz": np.kron(_Z, _P1),
    "cp": -2 * np.kron(_P1, _P1),
    "cu1": -2 * np.kron(_P1, _P1),
}

# Multi-angle gates written as rotations in time order (global phases dropped: they cancel in <O>).
_DECOMPOSE: dict[str, Callable[..., list[tuple[str, Any]]]] = {
    "u": lambda t, f, l: [("rz", l), ("ry", t), ("rz", f)],
    "u3": lambda t, f, l: [("rz", l), ("ry", t), ("rz", f)],
    "U": lambda t, f, l: [("rz", l), ("ry", t), ("rz", f)],
    "u2": lambda f, l: [("rz", l), ("ry", math.pi / 2), ("rz", f)],
    "r": lambda t, f: [("rz", -f), ("rx", t), ("rz", f)],
}

_SKIP = {"barrier", "delay", "id", "global_phase"}

_DEFAULT_MAX_FACTOR = 14
_DEFAULT_MAX_FULL = 26
_DEFAULT_MEMORY = 1 << 29  # bytes of full-register vectors per batch chunk


@dataclass(frozen=True)
class _Kind:
    """Eigen-decomposition K = V diag(e) V^dagger, so G(phi) = V diag(exp(-i phi e / 2)) V^dagger exactly."""

    K: np.ndarray
    e: np.ndarray
    V: np.ndarray
    diagonal: bool


def _kind(name: str) -> _Kind:
    K = GENERATORS[name]
    if np.allclose(K, np.diag(np.diag(K))):
        d = np.diag(K).real.copy()
        return _Kind(K, d, np.eye(len(d), dtype=complex), True)
    e, V = np.linalg.eigh(K)
    return _Kind(K, e, V, False)


_KINDS = {name: _kind(name) for name in GENERATORS}


# ----------------------------------------------------------------------------------------- circuit parsing
@dataclass
class _Raw:
    """One gate on global qubits: a fixed matrix, or a rotation of ``kind`` whose angle is occurrence ``occ``."""

    qubits: tuple[int, ...]
    matrix: np.ndarray | None = None
    kind: str | None = None
    occ: int = -1


def _is_symbolic(value) -> bool:
    return isinstance(value, ParameterExpression) and bool(value.parameters)


def _as_float(value, what: str) -> float:
    z = complex(value)
    if abs(z.imag) > 1e-12:
        raise QMAEError(f"{what} is complex ({value}); only real gate angles can be differentiated")
    return z.real


def _affine(expr: ParameterExpression, gate: str) -> tuple[dict[Parameter, float], float]:
    """(coefficient per parameter, constant) of an angle that must be affine in its parameters."""
    coeffs: dict[Parameter, float] = {}
    for p in expr.parameters:
        d = expr.gradient(p)
        if _is_symbolic(d):
            raise QMAEError(
                f"the angle {expr} of gate {gate!r} is not affine in {p}; the adjoint gradient supports angles "
                f"a*p + b*q + c only: rewrite the circuit or use the parameter-shift gradient"
            )
        coeffs[p] = _as_float(d, f"the derivative of angle {expr} of gate {gate!r}")
    const = _as_float(expr.bind({p: 0.0 for p in expr.parameters}), f"the angle {expr} of gate {gate!r}")
    return coeffs, const


class _Parser:
    """Turns a circuit into :class:`_Raw` gates and the affine angle table."""

    def __init__(self) -> None:
        self.ops: list[_Raw] = []
        self.angles: list[tuple[dict[Parameter, float], float]] = []

    def rotation(self, kind: str, angle, qubits: tuple[int, ...], gate: str) -> None:
        if _is_symbolic(angle):
            self.angles.append(_affine(angle, gate))
            self.ops.append(_Raw(qubits, kind=kind, occ=len(self.angles) - 1))
        else:
            k = _KINDS[kind]
            phi = _as_float(angle, f"the angle of gate {gate!r}")
            mat = (k.V * np.exp(-0.5j * phi * k.e)) @ k.V.conj().T
            self.ops.append(_Raw(qubits, matrix=mat))

    def circuit(self, qc: QuantumCircuit, qubits: Sequence[int]) -> None:
        index = {q: qubits[i] for i, q in enumerate(qc.qubits)}
        for inst in qc.data:
            op = inst.operation
            name = op.name
            qs = tuple(index[q] for q in inst.qubits)
            if name in _SKIP:
                continue
            if name == "measure" or inst.clbits:
                raise QMAEError(
                    f"the circuit measures ({name!r}); the adjoint gradient needs a measurement-free circuit: "
                    f"remove the measurements (the estimator measures the observable itself)"
                )
            if name == "reset":
                raise QMAEError(
                    "the circuit has a mid-circuit reset, which is not unitary; the adjoint gradient cannot "
                    "differentiate it: use trash_reset='swap' or the parameter-shift gradient"
                )
            if isinstance(op, ControlFlowOp) or not isinstance(op, Gate):
                raise QMAEError(
                    f"instruction {name!r} is not a unitary gate (noise, save, initialize or control flow); "
                    f"the adjoint gradient only handles unitary gates: remove it or use parameter shift"
                )
            params = list(op.params)
            if not any(_is_symbolic(v) for v in params):
                try:
                    mat = np.asarray(op.to_matrix(), dtype=complex)
                except Exception:
                    mat = Operator(op).data
                self.ops.append(_Raw(qs, matrix=mat))
            elif name in GENERATORS and len(params) == 1:
                self.rotation(name, params[0], qs, name)
            elif name in _DECOMPOSE:
                for kind, angle in _DECOMPOSE[name](*params):
                    self.rotation(kind, angle, qs, name)
            elif op.definition is not None:
                self.circuit(op.definition, qs)
            else:
                raise QMAEError(
                    f"gate {name!r} with parameters {params} is not supported by the adjoint gradient; "
                    f"transpile the circuit to rz/ry/rx/cx (or use parameter shift)"
                )


# ------------------------------------------------------------------------------------------ compiled plan
@dataclass
class _Factor:
    """A group of qubits simulated on its own vector; ``positions`` are register positions, low bit first."""

    positions: list[int]
    ops: list[tuple] = field(default_factory=list)


def _compile_op(raw: _Raw, local: Sequence[int], m: int) -> tuple:
    """Op tuple (code, qubits, forward data, inverse data, occurrence) on a register of m qubits."""
    if raw.kind is not None:
        kind = _KINDS[raw.kind]
        if len(local) == 1:
            return ("rd1" if kind.diagonal else "r1", local[0], kind, None, raw.occ)
        return ("rk", tuple(local), kind, None, raw.occ)
    assert raw.matrix is not None  # a fixed gate (not a rotation) always carries its matrix
    mat, inv = raw.matrix, raw.matrix.conj().T
    if len(local) == 1:
        if np.allclose(mat, np.diag(np.diag(mat)), rtol=0, atol=1e-15):
            return ("d1", local[0], np.diag(mat).copy(), np.diag(inv).copy(), -1)
        return ("m1", local[0], mat, inv, -1)
    fwd, bwd = svo.phased_permutation(mat), svo.phased_permutation(inv)
    if fwd is not None and bwd is not None:  # cx, swap, cswap, cz, ...: block moves, no arithmetic
        return (
            "pm",
            tuple(local),
            svo.BlockPermutation.build(*fwd, local, m),
            svo.BlockPermutation.build(*bwd, local, m),
            -1,
        )
    return ("mk", tuple(local), mat, inv, -1)


class AdjointPlan:
    """A circuit parsed and split into factors + suffix, ready for batched adjoint evaluation."""

    def __init__(
        self,
        circuit: QuantumCircuit,
        max_factor_qubits: int = _DEFAULT_MAX_FACTOR,
        max_full_qubits: int = _DEFAULT_MAX_FULL,
    ) -> None:
        parser = _Parser()
        parser.circuit(circuit, list(range(circuit.num_qubits)))
        self.circuit = circuit
        self.num_qubits = circuit.num_qubits
        self.parameters = list(circuit.parameters)
        self.param_index = {p: i for i, p in enumerate(self.parameters)}
        n_occ, n_par = len(parser.angles), len(self.parameters)
        rows, cols, vals = [], [], []
        self.offset = np.zeros(n_occ)
        for o, (coeffs, const) in enumerate(parser.angles):
            self.offset[o] = const
            for p, a in coeffs.items():
                rows.append(o)
                cols.append(self.param_index[p])
                vals.append(a)
        self.A = sp.csr_matrix((vals, (rows, cols)), shape=(n_occ, n_par))
        self.occ_kind = [""] * n_occ
        for raw in parser.ops:
            if raw.kind is not None:
                self.occ_kind[raw.occ] = raw.kind
        self.active = sorted({q for raw in parser.ops for q in raw.qubits})
        self.n_active = len(self.active)
        pos = {q: i for i, q in enumerate(self.active)}
        self._split(
            [_Raw(tuple(pos[q] for q in r.qubits), r.matrix, r.kind, r.occ) for r in parser.ops], max_factor_qubits
        )
        needs_full = bool(self.suffix) or len(self.factors) > 1
        if needs_full and self.n_active > max_full_qubits:
            raise QMAEError(
                f"the circuit entangles {self.n_active} qubits, more than max_full_qubits={max_full_qubits} for a "
                f"statevector adjoint gradient; use fewer qubits or the parameter-shift gradient"
            )

    def _split(self, ops: list[_Raw], limit: int) -> None:
        n = self.n_active
        parent, size = list(range(n)), [1] * n

        def find(q: int) -> int:
            while parent[q] != q:
                parent[q] = parent[parent[q]]
                q = parent[q]
            return q

        blocked: set[int] = set()
        prefix: list[_Raw] = []
        suffix: list[_Raw] = []
        for raw in ops:
            roots = {find(q) for q in raw.qubits}
            if blocked.intersection(raw.qubits) or sum(size[r] for r in roots) > limit:
                suffix.append(raw)  # commutes with every later prefix gate: those touch no blocked qubit
                blocked.update(raw.qubits)
                continue
            first, *rest = roots
            for r in rest:
                parent[r] = first
                size[first] += size[r]
            prefix.append(raw)
        groups: dict[int, list[int]] = {}
        for q in range(n):
            groups.setdefault(find(q), []).append(q)
        self.factors: list[_Factor] = []
        where: dict[int, tuple[int, int]] = {}
        for qubits in groups.values():
            for j, q in enumerate(qubits):
                where[q] = (len(self.factors), j)
            self.factors.append(_Factor(qubits))
        for raw in prefix:
            f = where[raw.qubits[0]][0]
            fac = self.factors[f]
            fac.ops.append(_compile_op(raw, [where[q][1] for q in raw.qubits], len(fac.positions)))
        self.suffix = [_compile_op(raw, list(raw.qubits), n) for raw in suffix]
        self.suffix_has_rotations = any(op[4] >= 0 for op in self.suffix)

    # ----------------------------------------------------------------------------------------- evaluation
    def columns(self, params: Sequence[Parameter]) -> list[int]:
        return [self.param_index[p] for p in params]

    def _matrices(self, angles: np.ndarray) -> list[np.ndarray | None]:
        """Per occurrence: (B, d) diagonal phases or (B, d, d) matrices of G(phi) for every sample."""
        mats: list[np.ndarray | None] = [None] * len(self.occ_kind)
        by_kind: dict[str, list[int]] = {}
        for o, name in enumerate(self.occ_kind):
            by_kind.setdefault(name, []).append(o)
        for name, occs in by_kind.items():
            k = _KINDS[name]
            phases = np.exp(-0.5j * angles[:, occs, None] * k.e)  # (B, n, d)
            if k.diagonal and len(k.e) == 2:  # applied as phases ('rd1')
                block = np.ascontiguousarray(phases.transpose(1, 0, 2))
            else:
                block = np.ascontiguousarray(((k.V * phases[..., None, :]) @ k.V.conj().T).transpose(1, 0, 2, 3))
            for i, o in enumerate(occs):
                mats[o] = block[i]
        return mats

    @staticmethod
    def _apply(state: np.ndarray, op: tuple, mats: list, m: int, inverse: bool) -> np.ndarray:
        code, q, fwd, bwd, occ = op
        if code == "d1":
            return svo.apply_diag_1q(state, q, bwd if inverse else fwd)
        if code == "m1":
            return svo.apply_1q(state, q, bwd if inverse else fwd)
        if code == "pm":
            return (bwd if inverse else fwd).apply(state)
        if code == "mk":
            return svo.apply_matrix(state, q, bwd if inverse else fwd, m)
        g = mats[occ]
        if inverse:
            g = g.conj() if code == "rd1" else np.conj(np.swapaxes(g, -1, -2))
        if code == "rd1":
            return svo.apply_diag_1q(state, q, g)
        if code == "r1":
            return svo.apply_1q(state, q, g)
        return svo.apply_matrix(state, q, g, m)

    @staticmethod
    def _derivative(psi: np.ndarray, lam: np.ndarray, op: tuple, m: int) -> np.ndarray:
        """Im <lambda|K|psi> per sample: d<O>/dphi for the rotation ``op`` (psi, lambda taken after it)."""
        code, q, kind, _, _ = op
        B, dim = psi.shape
        if code in ("rd1", "r1"):
            lo = 1 << q
            hi = dim >> (q + 1)
            pv, lv = psi.reshape(B, hi, 2, lo), lam.reshape(B, hi, 2, lo)
            if code == "rd1":
                s = np.einsum("bhjl,bhjl->bj", lv.conj(), pv)
                return (s @ kind.e).imag
            s = np.einsum("bhil,bhjl->bij", lv.conj(), pv)
            return np.einsum("bij,ij->b", s, kind.K).imag
        return svo.inner(lam, svo.apply_matrix(psi, q, kind.K, m)).imag

    def _sweep_back(self, state: np.ndarray, ops: list[tuple], mats: list, m: int, dphi: np.ndarray) -> np.ndarray:
        """Un-apply ``ops`` to the stacked (psi, lambda) state, writing d<O>/dphi of each rotation into dphi."""
        for op in reversed(ops):
            if op[4] >= 0:
                dphi[:, op[4]] = self._derivative(state[0], state[1], op, m)
            state = self._apply(state, op, mats, m, inverse=True)
        return state

    def evaluate(
        self, observable: PreparedObservable, values: np.ndarray, memory_bytes: int = _DEFAULT_MEMORY
    ) -> tuple[np.ndarray, np.ndarray]:
        """<O> (B,) and d<O>/dparameters (B, P) for parameter values (B, P) in ``circuit.parameters`` order."""
        values = np.atleast_2d(np.asarray(values, dtype=float))
        if values.shape[1] != len(self.parameters):
            raise QMAEError(
                f"got {values.shape[1]} parameter values for a circuit with {len(self.parameters)} parameters"
            )
        per_sample = 16 * (1 << self.n_active) * 6
        chunk = max(1, min(len(values), memory_bytes // per_sample))
        evs, grads = [], []
        for start in range(0, len(values), chunk):
            ev, grad = self._evaluate_chunk(observable, values[start : start + chunk])
            evs.append(ev)
            grads.append(grad)
        return np.concatenate(evs), np.concatenate(grads)

    def _evaluate_chunk(self, obs: PreparedObservable, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        B = len(values)
        angles = np.asarray(self.A @ values.T).T + self.offset if self.A.shape[0] else np.zeros((B, 0))
        mats = self._matrices(angles)
        dphi = np.zeros((B, len(self.occ_kind)))
        psis = []
        for fac in self.factors:
            m = len(fac.positions)
            psi = svo.zero_state(B, m)
            for op in fac.ops:
                psi = self._apply(psi, op, mats, m, inverse=False)
            psis.append(psi)
        n = self.n_active
        positions = [f.positions for f in self.factors]
        psi = svo.product_state(positions, psis, n)
        for op in self.suffix:
            psi = self._apply(psi, op, mats, n, inverse=False)
        lam = obs.apply(psi)
        ev = svo.inner(psi, lam).real
        if self.suffix_has_rotations:
            lam = self._sweep_back(np.stack([psi, lam]), self.suffix, mats, n, dphi)[1]
        else:
            for op in reversed(self.suffix):
                lam = self._apply(lam, op, mats, n, inverse=True)
        del psi
        lams = svo.project_costate(lam, positions, psis, n) if len(self.factors) > 1 else [lam]
        for fac, psi_f, lam_f in zip(self.factors, psis, lams):
            if any(op[4] >= 0 for op in fac.ops):
                self._sweep_back(np.stack([psi_f, lam_f]), fac.ops, mats, len(fac.positions), dphi)
        grad = np.asarray(self.A.T @ dphi.T).T  # chain rule: sum over occurrences of a * d<O>/dphi
        return ev, grad


# ------------------------------------------------------------------------------------------- observables
class PreparedObservable:
    """An observable reduced to the plan's active qubits (idle qubits stay |0>) as a diagonal or sparse matrix."""

    diagonal: np.ndarray | None  # the observable when it is diagonal (Z-type), else None
    matrix: sp.csr_matrix | None  # else its sparse matrix

    def __init__(self, observable, plan: AdjointPlan) -> None:
        spo = _as_pauli_sum(observable, plan.num_qubits).simplify(atol=0)
        if not _hermitian(spo):
            raise QMAEError("the observable is not Hermitian; the gradient of <O> needs a Hermitian observable")
        active = np.asarray(plan.active, dtype=int)
        idle = np.setdiff1d(np.arange(plan.num_qubits), active)
        x, z = spo.paulis.x, spo.paulis.z
        keep = ~x[:, idle].any(axis=1) if len(idle) else np.ones(len(spo), dtype=bool)
        coeffs = spo.coeffs[keep] * (-1j) ** spo.paulis.phase[keep]  # fold Pauli phases into coefficients
        if not keep.any():
            self.diagonal = np.zeros(1 << plan.n_active)
            self.matrix = None
            return

        reduced = SparsePauliOp(PauliList.from_symplectic(z[keep][:, active], x[keep][:, active]), coeffs)
        mat = reduced.to_matrix(sparse=True)
        if not x[keep].any():
            self.diagonal = np.asarray(mat.diagonal()).real.copy()
            self.matrix = None
        else:
            self.diagonal = None
            self.matrix = sp.csr_matrix(mat)

    def apply(self, psi: np.ndarray) -> np.ndarray:
        """O psi for a batch (B, 2^N)."""
        if self.diagonal is not None:
            return psi * self.diagonal
        return np.ascontiguousarray((self.matrix @ psi.T).T)


def _as_pauli_sum(observable, num_qubits: int) -> SparsePauliOp:
    if isinstance(observable, SparsePauliOp):
        out = observable
    elif isinstance(observable, Pauli):
        out = SparsePauliOp(observable)
    elif isinstance(observable, Operator) or hasattr(observable, "to_operator"):
        if num_qubits > 12:
            raise QMAEError(
                f"a dense {num_qubits}-qubit operator observable is too large; pass a SparsePauliOp instead"
            )
        out = SparsePauliOp.from_operator(Operator(observable))
    else:
        try:
            out = SparsePauliOp(observable)
        except Exception as exc:
            raise QMAEError(
                f"cannot use an observable of type {type(observable).__name__}; pass a SparsePauliOp"
            ) from exc
    if out.num_qubits != num_qubits:
        raise QMAEError(
            f"the observable acts on {out.num_qubits} qubits but the circuit has {num_qubits}; "
            f"map it with SparsePauliOp.apply_layout(circuit.layout) after transpiling"
        )
    return out


def _hermitian(spo: SparsePauliOp) -> bool:
    diff = (spo - spo.adjoint()).simplify(atol=1e-12)
    return bool(np.all(np.abs(diff.coeffs) <= 1e-12))


# -------------------------------------------------------------------------------------- capability checks
def estimator_problem(estimator: BaseEstimatorV2 | None, precision: float | None = None) -> str | None:
    """None if ``estimator`` computes exact noiseless expectation values (so adjoint is its gradient); else why not.

    ``precision`` is the precision the caller runs with (EstimatorQNN's ``default_precision``); None means the
    estimator's own default.
    """
    if estimator is None:
        return None if not precision else _precision_problem(precision)

    if isinstance(estimator, StatevectorEstimator):
        prec = estimator.default_precision if precision is None else precision
        return _precision_problem(prec)
    if isinstance(estimator, AerEstimatorV2):
        prec = estimator.options.default_precision if precision is None else precision
        problem = _precision_problem(prec)
        if problem:
            return problem
        noise = estimator.options.backend_options.get("noise_model")
        backend = getattr(estimator, "_backend", None)
        if noise is None and backend is not None:
            noise = getattr(backend.options, "noise_model", None)
        if noise is not None and not (hasattr(noise, "is_ideal") and noise.is_ideal()):
            return (
                "the Aer estimator has a noise model; the adjoint gradient is exact and noiseless: use the "
                "parameter-shift gradient for noisy runs"
            )
        method = estimator.options.backend_options.get("method")
        if method in ("extended_stabilizer", "stabilizer"):
            return f"the Aer method {method!r} is not an exact statevector simulation; use parameter shift"
        return None
    return (
        f"{type(estimator).__name__} is not known to return exact noiseless expectation values; the adjoint "
        f"gradient matches only StatevectorEstimator or Aer EstimatorV2 without noise and with precision 0: "
        f"use the parameter-shift gradient"
    )


def _precision_problem(precision: float) -> str | None:
    if precision and precision > 0:
        return (
            f"precision {precision:g} > 0 means sampled expectation values; the adjoint gradient is exact: "
            f"set precision 0 or use the parameter-shift gradient"
        )
    return None


def adjoint_problem(
    circuit: QuantumCircuit | None = None,
    estimator: BaseEstimatorV2 | None = None,
    observable=None,
    precision: float | None = None,
    max_full_qubits: int = _DEFAULT_MAX_FULL,
) -> str | None:
    """Can adjoint handle this? None if yes, else a one-line reason (for choosing parameter shift instead).

    Checks whichever of circuit, estimator (with the run's ``precision``) and observable are given.
    """
    problem = estimator_problem(estimator, precision)
    if problem or circuit is None:
        return problem
    try:
        plan = AdjointPlan(circuit, max_full_qubits=max_full_qubits)
        if observable is not None:
            PreparedObservable(observable, plan)
    except QMAEError as exc:
        return str(exc)
    return None


def can_use_adjoint(
    circuit: QuantumCircuit | None = None,
    estimator: BaseEstimatorV2 | None = None,
    observable=None,
    precision: float | None = None,
) -> bool:
    """True when :func:`adjoint_problem` finds nothing in the way."""
    return adjoint_problem(circuit, estimator, observable, precision) is None


# ---------------------------------------------------------------------------------------- gradient class
class AdjointEstimatorGradient(BaseEstimatorGradient):
    """Exact d<O>/dparameters by adjoint differentiation; plugs into ``EstimatorQNN(gradient=...)``.

    The estimator is only checked (it must be exact and noiseless, see :func:`estimator_problem`), never run:
    the gradient is computed on the statevector. Gradients come back in the order of the ``parameters`` asked for
    (EstimatorQNN asks for inputs + weights, or weights only).
    """

    def __init__(
        self,
        estimator: BaseEstimatorV2 | None = None,
        options: Options | None = None,
        *,
        max_factor_qubits: int = _DEFAULT_MAX_FACTOR,
        max_full_qubits: int = _DEFAULT_MAX_FULL,
        memory_bytes: int = _DEFAULT_MEMORY,
    ) -> None:
        if estimator is None:
            estimator = StatevectorEstimator()
        problem = estimator_problem(estimator)
        if problem:
            raise QMAEError(problem)
        super().__init__(estimator, options=options, derivative_type=DerivativeType.REAL)
        self._max_factor = int(max_factor_qubits)
        self._max_full = int(max_full_qubits)
        self._memory = int(memory_bytes)
        self._lock = threading.Lock()  # jobs run in worker threads; the caches are shared
        self._plans: OrderedDict[int, tuple[QuantumCircuit, AdjointPlan]] = OrderedDict()
        self._observables: OrderedDict[tuple[int, int], tuple[object, PreparedObservable]] = OrderedDict()

    def plan(self, circuit: QuantumCircuit) -> AdjointPlan:
        """The parsed plan of ``circuit`` (cached by object identity: the QNN passes the same circuit each call)."""
        with self._lock:
            hit = self._plans.get(id(circuit))
            if hit is not None and hit[0] is circuit:
                self._plans.move_to_end(id(circuit))
                return hit[1]
            plan = AdjointPlan(circuit, self._max_factor, self._max_full)
            self._plans[id(circuit)] = (circuit, plan)
            if len(self._plans) > 8:
                self._plans.popitem(last=False)
            return plan

    def _observable(self, observable, plan: AdjointPlan) -> PreparedObservable:
        key = (id(plan), id(observable))
        with self._lock:
            hit = self._observables.get(key)
            if hit is not None and hit[0] is observable:
                return hit[1]
            prepared = PreparedObservable(observable, plan)
            self._observables[key] = (observable, prepared)
            if len(self._observables) > 32:
                self._observables.popitem(last=False)
            return prepared

    def _run(
        self,
        circuits: Sequence[QuantumCircuit],
        observables: Sequence,
        parameter_values,
        parameters: Sequence[Sequence[Parameter]],
        **options,
    ) -> EstimatorGradientResult:
        if options.get("shots") or (options.get("precision") or 0) > 0:
            raise QMAEError("the adjoint gradient is exact: do not ask it for shots or precision > 0")
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (circ, obs) in enumerate(zip(circuits, observables)):
            groups.setdefault((id(circ), id(obs)), []).append(i)
        gradients: list[np.ndarray | None] = [None] * len(circuits)
        metadata: list[dict | None] = [None] * len(circuits)
        for idx in groups.values():
            plan = self.plan(circuits[idx[0]])
            obs = self._observable(observables[idx[0]], plan)
            values = np.array([np.asarray(parameter_values[i], dtype=float) for i in idx])
            ev, grad = plan.evaluate(obs, values, self._memory)
            for r, i in enumerate(idx):
                params = list(parameters[i])
                gradients[i] = grad[r, plan.columns(params)]
                metadata[i] = {"parameters": params, "value": float(ev[r]), "method": "adjoint"}
        assert all(g is not None for g in gradients)  # every circuit belongs to one group, which filled its slot
        return EstimatorGradientResult(
            gradients=[g for g in gradients if g is not None],
            metadata=[m or {} for m in metadata],
            options=Options(**options),
        )


GRADIENT_METHODS = ("auto", "adjoint", "param-shift")


def make_gradient(
    method: str,
    estimator: BaseEstimatorV2,
    circuit: QuantumCircuit | None = None,
    observable=None,
    precision: float | None = None,
) -> BaseEstimatorGradient:
    """The gradient for a run: 'adjoint', 'param-shift', or 'auto' (adjoint when exact and possible, else shift).

    ``precision`` is the precision the QNN's forward pass uses (its ``default_precision``). Asking for 'adjoint'
    where it cannot apply (noise, sampling, measurements, ...) is an error that says why.
    """

    if method not in GRADIENT_METHODS:
        raise QMAEError(f"unknown gradient {method!r}; use one of {', '.join(GRADIENT_METHODS)}")
    if method == "param-shift":
        return ParamShiftEstimatorGradient(estimator)
    problem = adjoint_problem(circuit, estimator, observable, precision)
    if problem is None:
        return AdjointEstimatorGradient(estimator)
    if method == "adjoint":
        raise QMAEError(f"the adjoint gradient cannot be used here: {problem}")
    return ParamShiftEstimatorGradient(estimator)


def adjoint_gradient(circuit: QuantumCircuit, observable, values, **plan_options) -> tuple[np.ndarray, np.ndarray]:
    """<O> (B,) and its gradient (B, P) in ``circuit.parameters`` order, without the primitives machinery."""
    plan = AdjointPlan(circuit, **plan_options)
    return plan.evaluate(PreparedObservable(observable, plan), np.atleast_2d(values))
