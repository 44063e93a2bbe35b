"""Real-amplitude loader: a uniformly controlled RY tree whose 2^n - 1 angles are computed in torch.

``StatePreparation`` takes no ``Parameter``s, so a trainable mask token could not get gradients through it. This
loader is a plain parameterized circuit (RY + CX only, 2^n - 2 CNOTs) whose angles are a differentiable torch
function of the pixels, so autograd chains the circuit's input gradients back to the pixels.

Conventions (Qiskit little-endian): pixel index i = row * L + col, and data qubit j holds bit j of i, so the
loader's statevector *is* the flattened, normalized image. Level l of the tree (l = 0..n-1) rotates qubit
n-1-l, controlled by the l more significant qubits. The uniformly controlled rotation of level l is emitted as
2^l RY + 2^l CX in Gray-code order (Moettoenen et al. 2004); the circuit parameter for level l, step s is
``<name>[2^l - 1 + s]`` and equals the *transformed* angle, so every circuit angle is one plain parameter.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch
from qiskit.circuit import ParameterVector, QuantumCircuit


def _gray(i: int) -> int:
    return i ^ (i >> 1)


@cache
def _gray_transform(level: int) -> np.ndarray:
    """M^T / 2^l with M[c, s] = (-1)^popcount(gray(s) & c): maps tree angles alpha_c to circuit angles."""
    size = 1 << level
    M = np.empty((size, size))
    for c in range(size):
        for s in range(size):
            M[c, s] = -1.0 if bin(_gray(s) & c).count("1") % 2 else 1.0
    return M.T / size


def _control_bit(level: int, step: int) -> int:
    """Bit of the prefix c that changes between gray(step) and gray(step + 1) (cyclically)."""
    size = 1 << level
    diff = _gray(step) ^ _gray((step + 1) % size)
    return diff.bit_length() - 1


def _safe_norm(v: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Euclidean norm with a zero (not NaN) gradient where the vector is all zero."""
    sq = (v * v).sum(dim)
    pos = sq > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, sq, torch.ones_like(sq))), torch.zeros_like(sq))


def _safe_atan2(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """atan2 that is 0 with zero gradient at (0, 0), where the angle is arbitrary (both children are empty)."""
    pos = (x * x + y * y) > 0
    xs = torch.where(pos, x, torch.ones_like(x))
    ys = torch.where(pos, y, torch.zeros_like(y))
    return torch.where(pos, torch.atan2(ys, xs), torch.zeros_like(x))


def tree_angles(x: torch.Tensor) -> list[torch.Tensor]:
    """Per-level RY angles alpha (level l has 2^l of them) that load ``x / |x|``; batched over leading dims.

    The leaf level uses signed atan2, so any real vector (a negative mask-token value included) loads exactly.
    """
    dim = x.shape[-1]
    n = dim.bit_length() - 1
    if 1 << n != dim:
        raise ValueError(f"the amplitude vector must have a power-of-two length, got {dim}")
    alphas: list[torch.Tensor] = []
    for level in range(n):
        blocks = x.reshape(*x.shape[:-1], 1 << level, 2, dim >> (level + 1))
        if level == n - 1:
            left, right = blocks[..., 0, 0], blocks[..., 1, 0]
        else:
            left, right = _safe_norm(blocks[..., 0, :]), _safe_norm(blocks[..., 1, :])
        alphas.append(2.0 * _safe_atan2(right, left))
    return alphas


def loader_angles(x: torch.Tensor) -> torch.Tensor:
    """The 2^n - 1 circuit angles (parameter order of :func:`loader_circuit`) for amplitudes ``x``; differentiable.

    ``x`` has shape (..., 2^n) and need not be normalized; it must not be all zero.
    """
    parts = []
    for level, alpha in enumerate(tree_angles(x)):
        T = torch.as_tensor(_gray_transform(level), dtype=alpha.dtype, device=alpha.device)
        parts.append(alpha @ T.T)
    return torch.cat(parts, dim=-1)


def loader_circuit(n: int, name: str = "x") -> QuantumCircuit:
    """Parameterized RY/CX circuit on n qubits that prepares the state whose angles :func:`loader_angles` gives."""
    params = ParameterVector(name, (1 << n) - 1)
    qc = QuantumCircuit(n, name=f"load_{name}")
    for level in range(n):
        target = n - 1 - level
        offset = (1 << level) - 1
        if level == 0:
            qc.ry(params[0], target)
            continue
        for step in range(1 << level):
            qc.ry(params[offset + step], target)
            bit = _control_bit(level, step)  # bit r of the prefix is qubit n - level + r
            qc.cx(n - level + bit, target)
    return qc


def state_from_angles(angles: torch.Tensor) -> torch.Tensor:
    """The real statevector (..., 2^n) that :func:`loader_circuit` prepares for circuit ``angles`` (..., 2^n - 1).

    The inverse of :func:`loader_angles` up to normalisation: per level, the Gray-code transform is undone
    (``M M^T = 2^l I``), then each prefix's amplitude splits into cos / sin of half its tree angle. It lets the
    exact executor read back from a circuit's parameter values the states the circuit loads.
    """
    dim = angles.shape[-1] + 1
    n = dim.bit_length() - 1
    if 1 << n != dim:
        raise ValueError(f"a loader has 2^n - 1 angles, got {angles.shape[-1]}")
    amp = torch.ones(*angles.shape[:-1], 1, dtype=angles.dtype, device=angles.device)
    for level in range(n):
        size = 1 << level
        theta = angles[..., size - 1 : 2 * size - 1]
        M = torch.as_tensor(_gray_transform(level) * size, dtype=angles.dtype, device=angles.device).T  # M
        alpha = theta @ M.T
        half = alpha / 2
        amp = torch.stack([amp * torch.cos(half), amp * torch.sin(half)], dim=-1).reshape(*angles.shape[:-1], 2 * size)
    return amp
