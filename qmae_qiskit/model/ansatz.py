"""Encoder U(theta): the 15-parameter two-qubit block of Wang et al. (paper Fig. 3) on every pair of data qubits
(the paper's ``all-pairs`` ansatz) or, for ``brickwork``, on the n - 1 neighbouring pairs of a line in a brick
pattern (even bonds, then odd bonds: :func:`qmae_qiskit.model.layouts.brick_pairs`); parameters and layers are
laid out the same way for both, with P the blocks of one layer.

Pair order: all pairs ``(i, j)`` with ``i < j`` in lexicographic order, (0,1), (0,2), ..., (n-2, n-1); block m
uses ``theta[15m : 15m + 15]``. With ``layers`` L > 1 this all-pairs layer is applied L times, layer l with its
own parameters: block m of layer l uses ``theta[15 (l P + m) : ...]`` (P = n(n-1)/2 pairs), so U = U_L ... U_1.
Inside a block on qubits (a, b) = (i, j) the gates are, in time order::

    RZ(p0) RY(p1) RZ(p2) on a        RZ(p3) RY(p4) RZ(p5) on b
    CX(a -> b)
    RY(p6) on a                      RZ(p7) on b
    CX(b -> a)
    RY(p8) on a
    CX(a -> b)
    RZ(p9) RY(p10) RZ(p11) on a      RZ(p12) RY(p13) RZ(p14) on b

9 RZ, 6 RY, 3 CX: the general two-qubit (SU(4)) circuit of Vatan & Williams as used by Hur et al. for QCNNs,
with each U3 written as RZ-RY-RZ. The torch side fuses each block into one 4x4 matrix in Qiskit's order for
qargs [a, b] (index = 2 * bit_b + bit_a), applied to a whole batch at once.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from qiskit.circuit import ParameterVector, QuantumCircuit

from qmae_qiskit.model.layouts import layer_pairs

BLOCK_PARAMS = 15


def pair_order(n: int, ansatz: str = "all-pairs") -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of one layer in the order the encoder applies them (all pairs: lexicographic)."""
    return layer_pairs(n, ansatz)


def _append_block(qc: QuantumCircuit, p, a: int, b: int) -> None:
    qc.rz(p[0], a)
    qc.ry(p[1], a)
    qc.rz(p[2], a)
    qc.rz(p[3], b)
    qc.ry(p[4], b)
    qc.rz(p[5], b)
    qc.cx(a, b)
    qc.ry(p[6], a)
    qc.rz(p[7], b)
    qc.cx(b, a)
    qc.ry(p[8], a)
    qc.cx(a, b)
    qc.rz(p[9], a)
    qc.ry(p[10], a)
    qc.rz(p[11], a)
    qc.rz(p[12], b)
    qc.ry(p[13], b)
    qc.rz(p[14], b)


def block_circuit(name: str = "p") -> QuantumCircuit:
    """One two-qubit block on qubits (0, 1) with parameters ``name[0..14]``."""
    qc = QuantumCircuit(2, name="wang_block")
    _append_block(qc, ParameterVector(name, BLOCK_PARAMS), 0, 1)
    return qc


def light_cone(pairs: list[tuple[int, int]], targets: Iterable[int]) -> list[bool]:
    """Which blocks (in circuit order) lie in the backward light cone of the ``targets`` qubits at the end.

    Walking back from the last block, a block is kept if it touches the cone, and then both its qubits join it.
    A block left out shares no qubit with any later kept block, nor with the targets, so the left-out blocks W
    commute to the end of U = W V and act off the targets: U^dagger R U = V^dagger R V for any R (trash SWAP or
    reset) on the targets. For all-pairs every block is kept (each pair (i, j) is followed by (i, n-1)); a
    brickwork line drops the blocks far from the trash end of its last layers.
    """
    cone, keep = set(targets), [False] * len(pairs)
    for m in range(len(pairs) - 1, -1, -1):
        if cone.intersection(pairs[m]):
            keep[m] = True
            cone.update(pairs[m])
    return keep


def encoder_circuit(
    n: int, name: str = "theta", layers: int = 1, ansatz: str = "all-pairs", cone: Iterable[int] | None = None
) -> QuantumCircuit:
    """U(theta) on n qubits: ``layers`` times one block per pair of the ansatz, layers * P * 15 parameters
    ``name[k]``. With ``cone`` (the trash qubits) only the blocks in their backward :func:`light_cone` are
    built: the same U^dagger R U, with fewer gates, and the left-out blocks' parameters absent."""
    if layers < 1:
        raise ValueError(f"layers must be at least 1, got {layers}")
    pairs = pair_order(n, ansatz) * layers  # block m of the flat list is pair m mod P of layer m // P
    theta = ParameterVector(name, BLOCK_PARAMS * len(pairs))
    keep = [True] * len(pairs) if cone is None else light_cone(pairs, cone)
    qc = QuantumCircuit(n, name="U")
    for m, (a, b) in enumerate(pairs):
        if keep[m]:
            _append_block(qc, theta[BLOCK_PARAMS * m : BLOCK_PARAMS * (m + 1)], a, b)
    return qc


# ----------------------------------------------------------------------------------------------- torch side
def _rz(phi: torch.Tensor) -> torch.Tensor:
    e = torch.exp(-0.5j * phi.to(torch.complex128 if phi.dtype == torch.float64 else torch.complex64))
    z = torch.zeros_like(e)
    return torch.stack([torch.stack([e, z], -1), torch.stack([z, e.conj()], -1)], -2)


def _ry(phi: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(phi / 2), torch.sin(phi / 2)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def _u(p0: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
    """RZ(p2) RY(p1) RZ(p0): RZ(p0) acts first."""
    ry = _ry(p1).to(_rz(p0).dtype)
    return _rz(p2) @ ry @ _rz(p0)


def _kron(b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """b (x) a for batched 2x2 matrices: a acts on the low bit (qargs[0]), b on the high bit."""
    return (b[..., :, None, :, None] * a[..., None, :, None, :]).reshape(*a.shape[:-2], 4, 4)


def _cx_matrices(dtype: torch.dtype, device: torch.device | None) -> tuple[torch.Tensor, torch.Tensor]:
    ab = torch.zeros(4, 4, dtype=dtype, device=device)  # control a (low bit), target b: 1 <-> 3
    for src, dst in ((0, 0), (1, 3), (2, 2), (3, 1)):
        ab[dst, src] = 1
    ba = torch.zeros(4, 4, dtype=dtype, device=device)  # control b (high bit), target a: 2 <-> 3
    for src, dst in ((0, 0), (1, 1), (2, 3), (3, 2)):
        ba[dst, src] = 1
    return ab, ba


def block_matrices(theta: torch.Tensor) -> torch.Tensor:
    """Fused 4x4 unitaries of all blocks: theta of shape (..., 15) -> (..., 4, 4) complex; differentiable."""
    p = theta.unbind(-1)
    first = _kron(_u(p[3], p[4], p[5]), _u(p[0], p[1], p[2]))
    dtype = first.dtype
    cab, cba = _cx_matrices(dtype, theta.device)
    mid = _kron(_rz(p[7]), _ry(p[6]).to(dtype))
    eye = torch.eye(2, dtype=dtype, device=theta.device).expand_as(_rz(p[8]))
    mid2 = _kron(eye, _ry(p[8]).to(dtype))
    last = _kron(_u(p[12], p[13], p[14]), _u(p[9], p[10], p[11]))
    return last @ cab @ mid2 @ cba @ mid @ cab @ first


def apply_two_qubit(states: torch.Tensor, gate: torch.Tensor, a: int, b: int, n: int) -> torch.Tensor:
    """Apply a 4x4 ``gate`` (qargs [a, b]) to a batch of n-qubit ``states`` of shape (M, 2^n)."""
    lo, hi = min(a, b), max(a, b)
    M = states.shape[0]
    t = states.reshape(M, 1 << (n - 1 - hi), 2, 1 << (hi - lo - 1), 2, 1 << lo)
    g = gate.reshape(2, 2, 2, 2)  # [bit_b, bit_a, bit_b', bit_a']
    if a < b:  # dims: hi = b, lo = a
        out = torch.einsum("BAca,mxcyaz->mxByAz", g, t)
    else:  # hi = a, lo = b
        out = torch.einsum("BAca,mxaycz->mxAyBz", g, t)
    return out.reshape(M, 1 << n)


def encoder_unitary(theta: torch.Tensor, n: int, layers: int = 1, ansatz: str = "all-pairs") -> torch.Tensor:
    """The 2^n x 2^n matrix of U(theta) (Qiskit's little-endian order), built from the fused blocks one by one
    (every layer's blocks in circuit order): the plain reference the faster builders are checked against."""
    pairs = pair_order(n, ansatz) * layers
    if theta.shape[-1] != BLOCK_PARAMS * len(pairs):
        raise ValueError(
            f"theta must have {BLOCK_PARAMS * len(pairs)} values for n={n} and {layers} layer(s), got {theta.shape[-1]}"
        )
    mats = block_matrices(theta.reshape(len(pairs), BLOCK_PARAMS))
    rows = torch.eye(1 << n, dtype=mats.dtype, device=theta.device)  # row m is basis state e_m
    for m, (a, b) in enumerate(pairs):
        rows = apply_two_qubit(rows, mats[m], a, b, n)
    return rows.transpose(0, 1)  # rows[m] = U e_m is column m of U
