"""Batched numpy gate application on small statevectors: the arithmetic under the adjoint gradient.

A state is an array of shape ``(..., B, D)`` with ``D = 2^m``: ``B`` samples (one parameter set each) and any
leading dims (the adjoint sweep stacks psi and lambda as ``(2, B, D)`` so that one call un-applies a gate to
both). Amplitude index bit ``q`` is local qubit ``q`` (Qiskit's little-endian order). A gate matrix is either
shared, ``(d, d)``, or per sample, ``(B, d, d)``; its qargs order is Qiskit's (qargs[0] is the low bit).

Functions may work in place on their input; always use the returned array.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def zero_state(batch: int, num_qubits: int) -> np.ndarray:
    """|0...0> for every sample: shape (B, 2^m), complex128."""
    psi = np.zeros((batch, 1 << num_qubits), dtype=np.complex128)
    psi[:, 0] = 1.0
    return psi


def apply_1q(psi: np.ndarray, q: int, mat: np.ndarray) -> np.ndarray:
    """Apply a 2x2 ``mat`` (shared or per sample) to local qubit ``q``.

    Shared matrices use four scalar multiply-adds over the two half-registers (one pass whatever q is);
    per-sample ones one broadcast matmul over a reshaped view (fast on the small factor vectors).
    """
    *lead, dim = psi.shape
    lo = 1 << q
    hi = dim >> (q + 1)
    if mat.ndim == 2:
        v = psi.reshape(*lead, hi, 2, lo)
        a, b = v[..., 0, :], v[..., 1, :]
        out = np.empty_like(v)
        for row in range(2):
            c0, c1 = complex(mat[row, 0]), complex(mat[row, 1])
            dst = out[..., row, :]
            if c0 != 0:
                np.multiply(a, c0, out=dst)
            else:
                dst.fill(0)
            if c1 != 0:
                dst += c1 * b
        return out.reshape(psi.shape)
    if q == 0:  # rows are (amp0, amp1) pairs: right-multiply by mat^T
        out = psi.reshape(*lead, hi, 2) @ np.swapaxes(mat, -1, -2)
    else:
        out = mat[:, None] @ psi.reshape(*lead, hi, 2, lo)  # (B, 1, 2, 2) broadcasts over the hi axis
    return out.reshape(psi.shape)


def apply_diag_1q(psi: np.ndarray, q: int, diag: np.ndarray) -> np.ndarray:
    """Multiply by a diagonal 1-qubit gate ``diag`` of shape (2,) or (B, 2); in place."""
    psi = np.ascontiguousarray(psi)  # the view below must alias psi
    *lead, dim = psi.shape
    lo = 1 << q
    hi = dim >> (q + 1)
    view = psi.reshape(*lead, hi, 2, lo)
    view *= diag[..., None, :, None] if diag.ndim == 2 else diag[:, None]
    return psi


def apply_matrix(psi: np.ndarray, qubits: Sequence[int], mat: np.ndarray, num_qubits: int) -> np.ndarray:
    """Apply a dense 2^k x 2^k ``mat`` (shared or per sample) to local ``qubits`` (qargs order); general path."""
    *lead, _ = psi.shape
    nl, k = len(lead), len(qubits)
    t = psi.reshape(*lead, *([2] * num_qubits))  # axis nl + (m-1-q) is local qubit q
    src = [nl + num_qubits - 1 - q for q in reversed(qubits)]  # highest qarg first: C order = qargs index
    dst = list(range(nl + num_qubits - k, nl + num_qubits))
    t = np.moveaxis(t, src, dst)
    moved_shape = t.shape
    t = t.reshape(*lead, -1, 1 << k)
    mt = np.swapaxes(mat, -1, -2)
    out = t @ mt  # a per-sample (B, d, d) broadcasts over the (..., B) batch axes
    out = np.moveaxis(out.reshape(moved_shape), dst, src)
    return np.ascontiguousarray(out).reshape(psi.shape)


def inner(lam: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """<lam|phi> per sample (sum over the last axis)."""
    return np.einsum("...i,...i->...", lam.conj(), phi)


def phased_permutation(mat: np.ndarray, atol: float = 1e-12) -> tuple[np.ndarray, np.ndarray] | None:
    """(source column per row, phase per row) if ``mat`` has exactly one non-zero per row and column, else None."""
    nz = np.abs(mat) > atol
    if not (nz.sum(axis=0) == 1).all() or not (nz.sum(axis=1) == 1).all():
        return None
    cols = nz.argmax(axis=1)
    return cols, mat[np.arange(mat.shape[0]), cols]


@dataclass(frozen=True)
class BlockPermutation:
    """A k-qubit phased permutation as moves of whole sub-blocks of the register (no index arrays).

    Row s of the gate's sub-index takes block ``cols[s]`` times ``phase[s]``; blocks that stay put with phase 1
    are not touched, so a CX moves half the register and a CSWAP a quarter, in place.
    """

    num_qubits: int
    moves: tuple[tuple[tuple, tuple, complex], ...]  # (destination index, source index, phase)
    scales: tuple[tuple[tuple, complex], ...]  # (index, phase) of blocks that only change phase

    @classmethod
    def build(cls, cols: np.ndarray, phases: np.ndarray, qubits: Sequence[int], num_qubits: int) -> BlockPermutation:
        def index(sub: int) -> tuple:
            axes: list = [slice(None)] * num_qubits
            for j, q in enumerate(qubits):
                axes[num_qubits - 1 - q] = (sub >> j) & 1
            return (Ellipsis, *axes)

        moves, scales = [], []
        for sub, (src, ph) in enumerate(zip(cols.tolist(), phases.tolist())):
            if src != sub:
                moves.append((index(sub), index(src), complex(ph)))
            elif abs(ph - 1) > 1e-15:
                scales.append((index(sub), complex(ph)))
        return cls(num_qubits, tuple(moves), tuple(scales))

    def apply(self, psi: np.ndarray) -> np.ndarray:
        """Apply in place (psi made contiguous first so that the tensor view aliases it)."""
        psi = np.ascontiguousarray(psi)
        t = psi.reshape(*psi.shape[:-1], *([2] * self.num_qubits))
        sources = [t[src].copy() for _, src, _ in self.moves]
        for (dst, _, ph), block in zip(self.moves, sources):
            if ph != 1:
                block *= ph
            t[dst] = block
        for idx, ph in self.scales:
            t[idx] *= ph
        return psi


# ------------------------------------------------------------------------------- product states and projection
def product_order(positions: Sequence[Sequence[int]]) -> list[int]:
    """Qubit of each C-order axis of the kron product of factors (factor 0 outermost, each factor's high bit first)."""
    return [q for pos in positions for q in reversed(pos)]


def _to_register_axes(order: list[int], num_qubits: int) -> list[int]:
    """Transpose that takes product axes (qubits ``order``) to register axes (axis k is qubit num_qubits-1-k)."""
    where = {q: a for a, q in enumerate(order)}
    return [where[num_qubits - 1 - k] for k in range(num_qubits)]


def product_state(positions: Sequence[Sequence[int]], vectors: Sequence[np.ndarray], num_qubits: int) -> np.ndarray:
    """Full register state (B, 2^N) of a product of factor states; factor f holds global qubits ``positions[f]``."""
    batch = vectors[0].shape[0]
    out = vectors[0].copy()  # never alias a factor's state: callers update the result in place
    for vec in vectors[1:]:
        out = (out[:, :, None] * vec[:, None, :]).reshape(batch, -1)
    perm = _to_register_axes(product_order(positions), num_qubits)
    t = out.reshape(batch, *([2] * num_qubits)).transpose(0, *[1 + a for a in perm])
    return np.ascontiguousarray(t).reshape(batch, 1 << num_qubits)


def project_costate(
    lam: np.ndarray, positions: Sequence[Sequence[int]], vectors: Sequence[np.ndarray], num_qubits: int
) -> list[np.ndarray]:
    """lambda_f = (prod_{g != f} <psi_g|) lambda for every factor f: the costate each factor's sweep sees."""
    batch = lam.shape[0]
    order = product_order(positions)
    t = lam.reshape(batch, *([2] * num_qubits))
    inv = [num_qubits - 1 - q for q in order]  # register axis of each product axis
    t = np.ascontiguousarray(t.transpose(0, *[1 + a for a in inv]))
    dims = [1 << len(p) for p in positions]
    t = t.reshape(batch, *dims)
    out = []
    for f in range(len(dims)):
        y = t
        for g in reversed(range(len(dims))):
            if g == f:
                continue
            pre = math.prod(y.shape[1 : 1 + g])
            post = math.prod(y.shape[2 + g :])
            y3 = y.reshape(batch, pre, dims[g], post)
            y = np.einsum("bxgy,bg->bxy", y3, vectors[g].conj()).reshape(*y.shape[: 1 + g], *y.shape[2 + g :])
        out.append(np.ascontiguousarray(y.reshape(batch, dims[f])))
    return out
