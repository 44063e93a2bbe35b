"""Exact simulator: the circuit's <Z> (the SWAP-test fidelity) on 2^n-dimensional states, batched in torch.

With psi = U x (masked image with token, normalized) and chi = U y (clean image), split by the value b of the
t trash qubits (the most significant bits of the pixel index, so index = b * 2^k + a)::

    <Z> = sum_b |<chi_{b=0} | psi_b>|^2                                          (trash reset, then U-dagger)
    reconstruction probabilities = diag(rho_out) = sum_b |U^dagger (psi_b (x) |0>_trash)|^2

U is built once per call from the fused 4x4 blocks (cost independent of the batch), then every image is one
row of a GEMM. Autograd gives gradients with respect to theta and the pixels (hence the mask token).
"""

from __future__ import annotations

import torch

from qmae_qiskit.ansatz import encoder_unitary
from qmae_qiskit.config import QMAEConfig


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Amplitude embedding of flattened images (..., L*L): x / |x| (paper eq. 2). Rejects all-zero images."""
    x = x.reshape(*x.shape[:-2], -1) if x.dim() >= 2 and x.shape[-1] == x.shape[-2] and x.dim() > 2 else x
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    if bool((norm == 0).any()):
        raise ValueError("an image is all zero and cannot be amplitude-embedded; drop it or add a mask token")
    return x / norm


def _complex(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.complex128 if x.dtype == torch.float64 else torch.complex64)


def encode(theta: torch.Tensor, x: torch.Tensor, cfg: QMAEConfig, U: torch.Tensor | None = None) -> torch.Tensor:
    """psi = U(theta) x / |x| for a batch of flattened images (B, 2^n)."""
    U = encoder_unitary(theta, cfg.n_qubits) if U is None else U
    return _complex(normalize(x)) @ U.transpose(0, 1)


def fidelity(theta: torch.Tensor, x_masked: torch.Tensor, x_clean: torch.Tensor, cfg: QMAEConfig) -> torch.Tensor:
    """<Z> of the SWAP-test circuit for each image pair: shape (B,). Same value as the 2n+2 qubit circuit."""
    U = encoder_unitary(theta, cfg.n_qubits)
    k, t = int(cfg.latent_qubits), cfg.trash_qubits
    both = encode(theta, torch.cat([x_masked, x_clean], 0), cfg, U)
    B = x_masked.shape[0]
    psi = both[:B].reshape(B, 1 << t, 1 << k)
    chi0 = both[B:].reshape(B, 1 << t, 1 << k)[:, 0, :]
    overlaps = torch.einsum("ba,bta->bt", chi0.conj(), psi)
    return (overlaps.real**2 + overlaps.imag**2).sum(-1)


def reconstruct(theta: torch.Tensor, x_masked: torch.Tensor, cfg: QMAEConfig) -> torch.Tensor:
    """Probabilities of the decoded data register (diagonal of rho_out), shape (B, 2^n); they sum to 1."""
    U = encoder_unitary(theta, cfg.n_qubits)
    k, t = int(cfg.latent_qubits), cfg.trash_qubits
    psi = encode(theta, x_masked, cfg, U)
    B = psi.shape[0]
    psi = psi.reshape(B, 1 << t, 1 << k)
    back = U.conj().transpose(0, 1)[:, : 1 << k]  # U-dagger restricted to trash = 0 inputs
    out = torch.einsum("ia,bta->bti", back, psi)
    return (out.real**2 + out.imag**2).sum(1)


def loss(theta: torch.Tensor, x_masked: torch.Tensor, x_clean: torch.Tensor, cfg: QMAEConfig) -> torch.Tensor:
    """Mean of 1 - <Z> over the batch (paper eq. 9)."""
    return (1.0 - fidelity(theta, x_masked, x_clean, cfg)).mean()
