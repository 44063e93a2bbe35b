"""The qubit pairs of one encoder layer, per ansatz: plain Python, shared by the circuit builder
(:mod:`qmae_qiskit.model.ansatz`) and the exact path's kernel without importing either side."""

from __future__ import annotations


def pairs(n: int) -> list[tuple[int, int]]:
    """The blocks' qubit pairs in the encoder's order, (0, 1), (0, 2), ..., (n-2, n-1)."""
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def brick_pairs(n: int) -> list[tuple[int, int]]:
    """One brickwork layer on the line 0 - 1 - ... - n-1: the even bonds (0, 1), (2, 3), ..., then the odd bonds
    (1, 2), (3, 4), ...; every block acts on neighbours, so the layer routes without SWAPs on any lattice with a
    path through n qubits (heavy-hex, square)."""
    return [(i, i + 1) for start in (0, 1) for i in range(start, n - 1, 2)]


def layer_pairs(n: int, ansatz: str = "all-pairs") -> list[tuple[int, int]]:
    """The qubit pairs of one ansatz layer in circuit order (``ansatz`` as :data:`QMAEConfig.ansatz`)."""
    if ansatz == "all-pairs":
        return pairs(n)
    if ansatz == "brickwork":
        return brick_pairs(n)
    raise ValueError(f"unknown ansatz {ansatz!r}; use all-pairs or brickwork")
