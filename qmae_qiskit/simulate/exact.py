"""Exact simulator: the circuit's <Z> (the SWAP-test fidelity) on 2^n-dimensional states, batched in torch.

With psi = U x (masked image with token, normalized) and chi = U y (clean image), split by the value b of the
t trash qubits (the most significant bits of the pixel index, so index = b * 2^k + a)::

    <Z> = sum_b |<chi_{b=0} | psi_b>|^2                                          (trash reset, then U-dagger)
    reconstruction probabilities = diag(rho_out) = sum_b |U^dagger (psi_b (x) |0>_trash)|^2

U is built once per call from the fused 4x4 blocks (cost independent of the batch; with several ansatz layers U =
U_L ... U_1, each layer built alone and multiplied), then every image is one row of a real GEMM
(:mod:`qmae_qiskit.simulate.kernel`, with a hand-written backward); small batches apply the blocks to the images
directly instead. Gradients reach theta and the pixels (hence the mask token); :func:`masked_fidelity` takes QMAE's
images, mask and token and returns the token's gradient without a dense gradient for every masked pixel.
:func:`fidelity_reference` keeps the first, plainer implementation as a cross-check.
"""

from __future__ import annotations

from functools import cache

import torch

from qmae_qiskit.model.ansatz import encoder_unitary
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.layouts import layer_pairs
from qmae_qiskit.model.masking import grid_shape, insert_token, token_fill
from qmae_qiskit.simulate import kernel
from qmae_qiskit.simulate.kernel import BLOCK_PARAMS, block_matrices

# model.ansatz (the circuit side, which imports Qiskit) is imported where it is needed: training on the exact
# path never needs Qiskit, and importing it costs about a second of start-up.


@cache
def _fusion_plan(n: int, ansatz: str = "all-pairs") -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """Consecutive blocks (i, j), (i, j') share qubit i: fuse them into one 3-qubit gate (all-pairs; brickwork's
    blocks of one sub-layer share no qubit, so each stays a 4x4 gate).

    Returns (block indices, qubits most significant first) per fused gate.
    """
    pairs = layer_pairs(n, ansatz)
    plan: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    m = 0
    while m < len(pairs):
        a, b = pairs[m]
        if m + 1 < len(pairs) and pairs[m + 1][0] == a:
            plan.append(((m, m + 1), (pairs[m + 1][1], b, a)))
            m += 2
        else:
            plan.append(((m,), (b, a)))
            m += 1
    return tuple(plan)


def _fused(mats: torch.Tensor, blocks: tuple[int, ...]) -> torch.Tensor:
    """The gate of one plan entry: a 4x4 block, or 8x8 for blocks (i, j) then (i, j+1), index 4 b_j+1 + 2 b_j + b_i."""
    if len(blocks) == 1:
        return mats[blocks[0]]
    g1, g2 = mats[blocks[0]], mats[blocks[1]]
    eye = torch.eye(2, dtype=g1.dtype, device=g1.device)
    first = torch.kron(eye, g1)  # identity on j+1, g1 on (j, i)
    second = torch.einsum("BAba,Jj->BJAbja", g2.reshape(2, 2, 2, 2), eye).reshape(8, 8)  # g2 on (j+1, i)
    return second @ first


SMALL_GEMM_COLUMNS = 2048


def _gate_times(gate: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """gate @ X; for few columns as a broadcast multiply-sum, which stays on one thread: a multi-threaded BLAS
    call on a tiny complex matrix can be ~100x slower when the other core is busy."""
    if X.shape[1] >= SMALL_GEMM_COLUMNS:
        return gate @ X
    return (gate.unsqueeze(-1) * X.unsqueeze(0)).sum(1)


def apply_blocks(mats: torch.Tensor, n: int, cols: torch.Tensor, ansatz: str = "all-pairs") -> torch.Tensor:
    """One layer U(theta) @ ``cols`` for fused block matrices ``mats`` (P, 4, 4) and states as columns (2^n, M).

    The state index is kept as n bit axes in a moving order: before each gate one permute brings its qubits to
    the front, so the gate is a single (d x d) @ (d x 2^n M / d) GEMM; the bits are put back in order once at
    the end. Consecutive blocks sharing a qubit are fused into one 8x8 gate (same arithmetic, half the passes
    over memory). Several times faster than a per-block einsum; differentiable.
    """
    dim, M = 1 << n, cols.shape[-1]
    T = cols.reshape([2] * n + [M])
    order = list(range(n - 1, -1, -1))  # order[p]: the qubit of axis p (axis 0 = most significant bit)
    for blocks, qubits in _fusion_plan(n, ansatz):
        lead = [order.index(q) for q in qubits]
        perm = lead + [p for p in range(n) if p not in lead]
        order = [order[p] for p in perm]
        gate = _fused(mats, blocks)
        T = _gate_times(gate, T.permute(perm + [n]).reshape(gate.shape[0], -1)).reshape([2] * n + [M])
    back = [order.index(q) for q in range(n - 1, -1, -1)]
    return T.permute(back + [n]).reshape(dim, M)


def unitary(theta: torch.Tensor, n: int) -> torch.Tensor:
    """U(theta) (2^n x 2^n), equal to :func:`qmae_qiskit.model.ansatz.encoder_unitary`, built recursively.

    The pair order applies every block (0, j) first, then the encoder of qubits 1..n-1, so
    U = (W (x) 1_{q0}) A with A the product of the blocks on qubit 0 and W the same construction one qubit up:
    A is contracted gate by gate through qubit 0 (cheap), then each level is one large GEMM (W @ A). See
    :mod:`qmae_qiskit.simulate.kernel`.
    """
    return kernel.unitary(theta, n)


def layer_thetas(theta: torch.Tensor, cfg: QMAEConfig) -> list[torch.Tensor]:
    """theta split into its ``cfg.layers`` per-layer blocks of P * 15 angles, in circuit order."""
    if theta.shape[-1] != cfg.n_theta:
        raise ValueError(
            f"theta must have {cfg.n_theta} values for n={cfg.n_qubits} and {cfg.layers} {cfg.ansatz} layer(s), "
            f"got {theta.shape[-1]}"
        )
    return list(theta.split(cfg.n_theta_layer, -1))


def model_unitary(theta: torch.Tensor, cfg: QMAEConfig) -> torch.Tensor:
    """U(theta) = U_L ... U_1 of all ``cfg.layers`` layers, each built by :func:`unitary` (one layer: ``unitary``).

    The brickwork ansatz has no recursive builder: its few nearest-neighbour blocks are applied to the identity
    (:func:`apply_layers`), 2^n columns at once, which for n <= 8 costs less than one all-pairs layer.
    """
    if cfg.ansatz != "all-pairs":
        eye = torch.eye(cfg.dim, dtype=block_matrices(theta[:BLOCK_PARAMS]).dtype, device=theta.device)
        return apply_layers(theta, cfg, eye)
    parts = layer_thetas(theta, cfg)
    U = unitary(parts[0], cfg.n_qubits)
    for part in parts[1:]:
        U = unitary(part, cfg.n_qubits) @ U
    return U


def apply_layers(theta: torch.Tensor, cfg: QMAEConfig, cols: torch.Tensor) -> torch.Tensor:
    """U(theta) @ ``cols`` (states as columns) through :func:`apply_blocks`, one layer after the other."""
    for part in layer_thetas(theta, cfg):
        cols = apply_blocks(block_matrices(part.reshape(-1, BLOCK_PARAMS)), cfg.n_qubits, cols, cfg.ansatz)
    return cols


def _rotated(theta: torch.Tensor, cfg: QMAEConfig, U: torch.Tensor | None) -> torch.Tensor:
    """The kernel's U^T with rotated output bits: built directly for one all-pairs layer, else from U."""
    if U is not None:
        return kernel.rotate_transpose(U)
    if cfg.layers == 1 and cfg.ansatz == "all-pairs":
        layer_thetas(theta, cfg)  # the length check
        return kernel.rotated_transpose(theta, cfg.n_qubits)
    return kernel.rotate_transpose(model_unitary(theta, cfg))


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
    U = model_unitary(theta, cfg) if U is None else U
    return _complex(normalize(x)) @ U.transpose(0, 1)


SMALL_BATCH_DIVISOR = 2  # the blocks are applied to the states when 2B < 2^n (see small_batch)


def small_batch(batch: int, n: int) -> bool:
    """Whether applying the blocks to the 2B states beats building U for this batch (measured crossover)."""
    return SMALL_BATCH_DIVISOR * batch < (1 << n)


def fidelity(
    theta: torch.Tensor, x_masked: torch.Tensor, x_clean: torch.Tensor, cfg: QMAEConfig, U: torch.Tensor | None = None
) -> torch.Tensor:
    """<Z> of the SWAP-test circuit for each image pair: shape (B,). Same value as the 2n+2 qubit circuit.

    Two routes with the same result: for a batch smaller than 2^(n-1) the fused blocks are applied to the 2B
    states directly (building U would cost more); otherwise U is built once (as U^T with its output bits
    rotated, :func:`qmae_qiskit.simulate.kernel.rotated_transpose`) and every image is one row of a real GEMM
    (the images are real), the clean image only against the 2^k rows of U with trash = 0, with the backward
    written out (:class:`qmae_qiskit.simulate.kernel.SwapFidelity`). A prebuilt ``U`` (from :func:`model_unitary`)
    takes the second route, for callers that score many batches with one theta. Float32 inputs and theta run
    in complex64 (faster, ~1e-6 accurate); float64 is exact to rounding.
    """
    n = cfg.n_qubits
    real = torch.float32 if theta.dtype == torch.float32 else torch.float64
    xm = x_masked.reshape(x_masked.shape[0], -1).to(real)
    xc = x_clean.reshape(x_clean.shape[0], -1).to(real)
    if U is None and small_batch(xm.shape[0], n):
        return _fidelity_small(theta, xm, xc, cfg)
    R = _rotated(theta, cfg, U)
    return kernel.SwapFidelity.apply(R, xm, xc, 1 << cfg.trash_qubits)


def masked_fidelity(
    theta: torch.Tensor,
    images: torch.Tensor,
    patch_idx: torch.Tensor,
    token: torch.Tensor,
    cfg: QMAEConfig,
    U: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`fidelity` of QMAE's inputs: ``images`` (B, L, L) with the patches ``patch_idx`` replaced by
    ``token``, against the clean images. Same values; the token's gradient is computed from one small product
    per patch position instead of a dense gradient for every masked pixel (the U route)."""

    n = cfg.n_qubits
    real = torch.float32 if theta.dtype == torch.float32 else torch.float64
    B = images.shape[0]
    clean = images.reshape(B, -1).to(real)
    if U is None and small_batch(B, n):
        return _fidelity_small(theta, insert_token(images.to(real), patch_idx, cfg, token).reshape(B, -1), clean, cfg)
    rows, cols = grid_shape(cfg)
    dev = images.device  # a GPU's images: every index and layout tensor goes there too (no-ops on the CPU)
    member = torch.zeros(B, rows * cols, dtype=real, device=dev).scatter_(1, patch_idx.to(dev), 1.0)  # b masks p
    pixel_patch, pixel_slot, one_hot = (t.to(dev) for t in kernel.patch_layout(cfg.image_size, *cfg.patch))
    masked = member @ one_hot.to(real)  # (B, D): 1 at masked pixels
    n_slots = cfg.n_token_patch
    if token.numel() != n_slots:  # positional: every pixel its own slot; autograd takes its gradient to the token
        token = token_fill(cfg, token).reshape(-1)
        n_slots = token.numel()
        pixel_slot = torch.arange(n_slots, device=dev)
    xm = torch.where(masked.bool(), token.detach().to(real)[pixel_slot], clean)
    patches = (member, masked, pixel_patch, pixel_slot, n_slots)
    R = _rotated(theta, cfg, U)
    return kernel.SwapFidelity.apply(R, xm, clean, 1 << cfg.trash_qubits, token, patches)


def _fidelity_small(theta: torch.Tensor, xm: torch.Tensor, xc: torch.Tensor, cfg: QMAEConfig) -> torch.Tensor:
    """The small-batch route: the fused blocks applied to the 2B states."""
    k, t = cfg.latent, cfg.trash_qubits
    K, T = 1 << k, 1 << t
    xm, xc = normalize(xm), normalize(xc)
    B = xm.shape[0]
    states = apply_layers(theta, cfg, _complex(torch.cat([xm, xc], 0)).T).T
    psi = torch.view_as_real(states[:B].reshape(B, T, K))
    chi = torch.view_as_real(states[B:, :K])
    pr, pi = psi[..., 0], psi[..., 1]
    cr, ci = chi[:, None, :, 0], chi[:, None, :, 1]
    re = (pr * cr + pi * ci).sum(-1)  # Re <chi_0 | psi_b>
    im = (pi * cr - pr * ci).sum(-1)  # Im <chi_0 | psi_b>
    return (re * re + im * im).sum(-1)


def fidelity_reference(
    theta: torch.Tensor, x_masked: torch.Tensor, x_clean: torch.Tensor, cfg: QMAEConfig
) -> torch.Tensor:
    """The first implementation (complex einsum on U from :func:`qmae_qiskit.model.ansatz.encoder_unitary`), kept as
    an independent cross-check of :func:`fidelity`."""

    U = encoder_unitary(theta, cfg.n_qubits, cfg.layers, cfg.ansatz)
    k, t = cfg.latent, cfg.trash_qubits
    both = encode(theta, torch.cat([x_masked, x_clean], 0), cfg, U)
    B = x_masked.shape[0]
    psi = both[:B].reshape(B, 1 << t, 1 << k)
    chi0 = both[B:].reshape(B, 1 << t, 1 << k)[:, 0, :]
    overlaps = torch.einsum("ba,bta->bt", chi0.conj(), psi)
    return (overlaps.real**2 + overlaps.imag**2).sum(-1)


def reconstruct(
    theta: torch.Tensor, x_masked: torch.Tensor, cfg: QMAEConfig, U: torch.Tensor | None = None
) -> torch.Tensor:
    """Probabilities of the decoded data register (diagonal of rho_out), shape (B, 2^n); they sum to 1."""
    U = model_unitary(theta, cfg) if U is None else U
    k, t = cfg.latent, cfg.trash_qubits
    psi = encode(theta, x_masked, cfg, U)
    B = psi.shape[0]
    psi = psi.reshape(B, 1 << t, 1 << k)
    back = U.conj().transpose(0, 1)[:, : 1 << k]  # U-dagger restricted to trash = 0 inputs
    out = torch.einsum("ia,bta->bti", back, psi)
    return (out.real**2 + out.imag**2).sum(1)


def loss(theta: torch.Tensor, x_masked: torch.Tensor, x_clean: torch.Tensor, cfg: QMAEConfig) -> torch.Tensor:
    """Mean of 1 - <Z> over the batch (paper eq. 9)."""
    return (1.0 - fidelity(theta, x_masked, x_clean, cfg)).mean()
