"""The exact path's training kernel: U(theta) in a few large products, and the SWAP-test fidelity with a
hand-written backward.

Profiling the training step showed three costs beside the arithmetic: hundreds of tiny tensor operations per
step (each a few microseconds of dispatch, twice with autograd), skinny products (a 4x4 gate times a 4 x 16384
matrix runs at ~2 GFLOP/s), and a dense gradient for the masked images although only the mask token, shared by
the whole batch, needs one. So:

* :func:`block_matrices` builds all 4x4 blocks from closed-form U3 matrices (~30 operations for every block
  together instead of ~120).
* :func:`unitary` builds U level by level as ``W_m = (W_{m-1} (x) 1) A_m``: ``A_m``, the blocks that share the
  level's lowest qubit, is a "star" of gates joined only through that qubit, contracted gate by gate through a
  bond of dimension 2 (a few hundred thousand multiply-adds at the top level), then one large complex GEMM.
* :class:`SwapFidelity` computes <Z> = sum_b |<chi_0|psi_b>|^2 for a batch from the interleaved real matrix of U
  (one real GEMM for the masked images, one for the clean ones) and returns the gradient for U in two GEMMs;
  for the masked images it returns either the dense gradient or, given the patch grid, only the mask token's
  gradient, which needs one small product per patch position instead of a B x 2^n x 2^(n+1) GEMM.

Everything here is checked against :mod:`qmae_qiskit.model.ansatz` (Qiskit's operator of the circuit) and against
autograd through the plain implementation in the tests.
"""

from __future__ import annotations

from functools import cache

import torch

BLOCK_PARAMS = 15
_CX_AB = (0, 3, 2, 1)  # CX(a -> b) on index 2 b + a, as a row permutation: row r of CX @ X is row _CX_AB[r] of X
_CX_BA = (0, 1, 3, 2)  # CX(b -> a)


def _complex_dtype(real: torch.dtype) -> torch.dtype:
    return torch.complex128 if real == torch.float64 else torch.complex64


# The block as 18 factors in time order: (parameter, qubit, axis) for a rotation exp(-i p P / 2), or a CX.
_FACTORS: tuple[tuple[int, str, str] | str, ...] = (
    (0, "a", "z"), (1, "a", "y"), (2, "a", "z"), (3, "b", "z"), (4, "b", "y"), (5, "b", "z"), "cx_ab",
    (6, "a", "y"), (7, "b", "z"), "cx_ba", (8, "a", "y"), "cx_ab",
    (9, "a", "z"), (10, "a", "y"), (11, "a", "z"), (12, "b", "z"), (13, "b", "y"), (14, "b", "z"),
)  # fmt: skip


@cache
def _factor_templates(dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Constant (18, 4, 4) coefficient matrices: factor k = C0 + c_k Cc + s_k Cs + e_k Ce + conj(e_k) Cec, with
    c, s = cos, sin(p / 2) and e = exp(-i p / 2); and the generators P (15, 4, 4), index 2 * bit_b + bit_a."""
    eye2 = torch.eye(2, dtype=torch.complex128)
    z = torch.tensor([[1, 0], [0, -1]], dtype=torch.complex128)
    y = torch.tensor([[0, -1j], [1j, 0]], dtype=torch.complex128)
    on = {"a": lambda m: torch.kron(eye2, m), "b": lambda m: torch.kron(m, eye2)}
    C0, Cc, Cs, Ce, Cec = (torch.zeros(len(_FACTORS), 4, 4, dtype=torch.complex128) for _ in range(5))
    gens = torch.zeros(BLOCK_PARAMS, 4, 4, dtype=torch.complex128)
    for k, f in enumerate(_FACTORS):
        if isinstance(f, str):
            C0[k] = torch.eye(4, dtype=torch.complex128)[list(_CX_AB if f == "cx_ab" else _CX_BA)]
            continue
        p, q, axis = f
        if axis == "z":  # diag(e, conj e)
            Ce[k] = on[q](torch.tensor([[1, 0], [0, 0]], dtype=torch.complex128))
            Cec[k] = on[q](torch.tensor([[0, 0], [0, 1]], dtype=torch.complex128))
            gens[p] = on[q](z)
        else:  # [[c, -s], [s, c]]
            Cc[k] = on[q](eye2)
            Cs[k] = on[q](torch.tensor([[0, -1], [1, 0]], dtype=torch.complex128))
            gens[p] = on[q](y)
    return tuple(t.to(dtype=dtype, device=device) for t in (C0, Cc, Cs, Ce, Cec, gens))


_PARAM_OF_FACTOR = [f[0] if isinstance(f, tuple) else -1 for f in _FACTORS]
_PARAM_FACTORS = [k for k, p in enumerate(_PARAM_OF_FACTOR) if p >= 0]  # factor of parameter p: _PARAM_FACTORS[p]


class _BlockMatrices(torch.autograd.Function):
    """theta (N, 15) -> the N fused blocks (N, 4, 4), with the derivative in closed form.

    G = F_18 ... F_1 with F_k = exp(-i p_k P_k / 2) or a CX. d loss / d p_k = (1/2) Im tr(K_k Gamma^H G) with
    Gamma = d loss / d G and K_k = Q_k^H P_k Q_k, Q_k = F_k ... F_1: the K_k are computed with the forward
    product, so the backward is two small products instead of autograd through ~35 operations.
    """

    @staticmethod
    def forward(ctx, theta):
        cdt = _complex_dtype(theta.dtype)
        C0, Cc, Cs, Ce, Cec, gens = _factor_templates(cdt, theta.device)
        idx = torch.tensor([max(p, 0) for p in _PARAM_OF_FACTOR], device=theta.device)
        half = theta[:, idx] / 2  # (N, 18); CX factors read p0 and have zero coefficients
        c, s = torch.cos(half).to(cdt)[..., None, None], torch.sin(half).to(cdt)[..., None, None]
        e = torch.polar(torch.ones_like(half), -half)[..., None, None]
        F = C0 + c * Cc + s * Cs + e * Ce + e.conj() * Cec  # (N, 18, 4, 4)
        prefix = [F[:, 0]]
        for k in range(1, len(_FACTORS)):
            prefix.append(F[:, k] @ prefix[-1])
        Q = torch.stack([prefix[k] for k in _PARAM_FACTORS], 1)  # (N, 15, 4, 4): Q_k of each parameter
        ctx.save_for_backward(Q.mH @ gens @ Q, prefix[-1])
        return prefix[-1]

    @staticmethod
    def backward(ctx, grad):
        K, G = ctx.saved_tensors
        M = grad.mH @ G  # Gamma^H G
        dtheta = 0.5 * torch.einsum("npij,nji->np", K, M).imag
        return dtheta


def block_matrices(theta: torch.Tensor) -> torch.Tensor:
    """The fused 4x4 unitaries of the blocks, theta (..., 15) -> (..., 4, 4), equal to
    :func:`qmae_qiskit.model.ansatz.block_matrices` (index 2 * bit_b + bit_a); differentiable."""
    shape = theta.shape[:-1]
    return _BlockMatrices.apply(theta.reshape(-1, BLOCK_PARAMS)).reshape(*shape, 4, 4)


def _level_gates(mats: torch.Tensor, n: int, q0: int) -> torch.Tensor:
    """The blocks (q0, j), j = q0+1..n-1, as (m-1, 2, 2, 2, 2) tensors [c_j, o_j, i_j, c_{j-1}] for the star
    (c: the value of qubit q0 between gates, o / i: output / input bit of qubit j)."""
    g = mats[_level_slice(n, q0)].reshape(-1, 2, 2, 2, 2)  # [o_j, c_j, i_j, c_{j-1}] (index 2 b_j + b_q0)
    return g.transpose(1, 2)


def _star_step(G: torch.Tensor, T: torch.Tensor, layout: str) -> torch.Tensor:
    """sum_c G[c', o, i, c] T[c, O, I] in the layout the next step wants: "chain" [c', (o, O), (i, I)]; for the
    last gate "rows" [(o, O), (c', i, I)] (A regrouped for (W (x) 1) A) or "cols" [(i, I, c'), (o, O)] (A^T
    regrouped for A^T (W^T (x) 1)). The result is written into a contiguous tensor of that layout (a broadcast
    product would otherwise follow its inputs' strides and need a copy before the GEMM)."""
    NO, NI = T.shape[1], T.shape[2]
    if layout == "chain":
        g0, g1 = G[..., 0][:, :, None, :, None], G[..., 1][:, :, None, :, None]
        t0, t1 = T[0][None, None, :, None, :], T[1][None, None, :, None, :]
        shape: tuple[int, ...] = (2, 2, NO, 2, NI)
    elif layout == "rows":
        Gt = G.transpose(0, 1)
        g0, g1 = Gt[..., 0][:, None, :, :, None], Gt[..., 1][:, None, :, :, None]
        t0, t1 = T[0][None, :, None, None, :], T[1][None, :, None, None, :]
        shape = (2, NO, 2, 2, NI)
    else:
        Gp, Tt = G.permute(2, 0, 1, 3), T.transpose(1, 2).contiguous()
        g0, g1 = Gp[..., 0][:, None, :, :, None], Gp[..., 1][:, None, :, :, None]
        t0, t1 = Tt[0][None, :, None, None, :], Tt[1][None, :, None, None, :]
        shape = (2, NI, 2, 2, NO)
    out = torch.empty(shape, dtype=T.dtype, device=T.device)
    torch.mul(g0, t0, out=out)
    out.addcmul_(g1, t1)
    if layout == "chain":
        return out.view(2, 2 * NO, 2 * NI)
    return out.view(2 * NO, 4 * NI) if layout == "rows" else out.view(4 * NI, 2 * NO)


# the layouts' axes, as [c', o, i, O, I] needs them for the backward's two products
_BACK_PERM = {"chain": (0, 1, 3, 2, 4), "rows": (2, 0, 3, 1, 4), "cols": (2, 3, 0, 4, 1)}
_BACK_SHAPE = {
    "chain": lambda NO, NI: (2, 2, NO, 2, NI),
    "rows": lambda NO, NI: (2, NO, 2, 2, NI),
    "cols": lambda NO, NI: (2, NI, 2, 2, NO),
}


def _star_forward(gates: torch.Tensor, layout: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(A in ``layout``, the chain's intermediate tensors for :func:`_star_backward`); see :class:`_Star`."""
    m = gates.shape[0] + 1
    Ts = [gates[0].reshape(2, 2, 4)]  # [c_1, o_1, (i_1, i_0)]
    for j in range(1, m - 2):
        Ts.append(_star_step(gates[j], Ts[-1], "chain"))
    return _star_step(gates[m - 2], Ts[-1], layout), Ts


def _star_backward(gates: torch.Tensor, Ts: list[torch.Tensor], gA: torch.Tensor, layout: str) -> torch.Tensor:
    """d loss / d gates from d loss / d A: per gate, the layout undone once, then dT = G^H dT', dG = dT' T^H."""
    m = gates.shape[0] + 1
    dG = torch.empty(gates.shape, dtype=gates.dtype, device=gates.device)
    g = gA
    for j in range(m - 2, 0, -1):
        T = Ts[j - 1]
        NO, NI = T.shape[1], T.shape[2]
        X = g.reshape(_BACK_SHAPE[layout](NO, NI)).permute(_BACK_PERM[layout]).reshape(8, NO * NI)
        dG[j] = (X @ T.reshape(2, NO * NI).T.conj()).reshape(2, 2, 2, 2)
        g = (gates[j].reshape(8, 2).T.conj() @ X).reshape(2, NO, NI)
        layout = "chain"
    dG[0] = g.reshape(2, 2, 2, 2)
    return dG


class _Star(torch.autograd.Function):
    """A = G_{m-1} ... G_1 (G_j on local qubits (0, j), all sharing qubit 0), as the (2^(m-1), 2^(m+1)) matrix
    [(o_{m-1} .. o_1), (o_0, i_{m-1} .. i_0)] that ``(W (x) 1) A`` multiplies (``layout="rows"``: the rows of A
    regrouped), or as the (2^(m+1), 2^(m-1)) matrix [(i_{m-1} .. i_0, o_0), (o_{m-1} .. o_1)] that
    ``A^T (W^T (x) 1)`` needs (``layout="cols"``).

    Qubit 0 is the only bond between the gates, so the product is a chain contraction through a 2-dimensional
    index, T_j[c_j, (o_j, O), (i_j, I)] = sum_c G_j[c_j, o_j, i_j, c] T_{j-1}[c, O, I]: two broadcast products
    per gate, each T laid out as the next step (and the GEMM) wants it. The backward undoes the layout once per
    gate and uses two products: dT = G^H dT', dG = dT' T^H (autograd's broadcast reductions were ~5x slower).
    """

    @staticmethod
    def forward(ctx, gates, layout):
        A, Ts = _star_forward(gates, layout)
        ctx.save_for_backward(gates, *Ts)
        ctx.layout = layout
        return A

    @staticmethod
    def backward(ctx, gA):
        gates, *Ts = ctx.saved_tensors
        return _star_backward(gates, Ts, gA, ctx.layout), None


def _level_slice(n: int, q0: int) -> slice:
    """The blocks (q0, j), j > q0, in the pair order."""
    start = sum(n - 1 - i for i in range(q0))
    return slice(start, start + n - 1 - q0)


class _Upper(torch.autograd.Function):
    """W, the unitary of the blocks on qubits 1..n-1, from all blocks ``mats`` (n(n-1)/2, 4, 4): the levels
    W_m = (W_{m-1} (x) 1) A_m as one autograd node with the backward written out (dA_m = W_{m-1}^H dW_m,
    dW_{m-1} = dW_m A_m^H, then the star's backward), instead of a dozen small nodes per level."""

    @staticmethod
    def forward(ctx, mats, n: int):
        W = mats[-1]  # qubits n-2, n-1: one block
        saved = []
        for q0 in range(n - 3, 0, -1):
            m = n - q0
            gates = mats[_level_slice(n, q0)].reshape(-1, 2, 2, 2, 2).transpose(1, 2)
            A, Ts = _star_forward(gates, "rows")
            saved.append((q0, gates, Ts, W, A))
            W = (W @ A).reshape(1 << m, 1 << m)
        ctx.saved = saved
        ctx.n, ctx.shape = n, mats.shape
        return W

    @staticmethod
    def backward(ctx, gW):
        dmats = torch.zeros(ctx.shape, dtype=gW.dtype, device=gW.device)
        for q0, gates, Ts, W, A in reversed(ctx.saved):
            g = gW.reshape(A.shape[0], A.shape[1])
            dA = W.T.conj() @ g
            gW = g @ A.T.conj()
            dG = _star_backward(gates, Ts, dA, "rows")
            dmats[_level_slice(ctx.n, q0)] = dG.transpose(1, 2).reshape(-1, 4, 4)
        dmats[-1] += gW
        ctx.saved = None
        return dmats, None


class _Top(torch.autograd.Function):
    """R = A^T (W^T (x) 1) with A the star of qubit 0 in the "cols" layout: the top level of
    :func:`rotated_transpose` as one node, its backward two GEMMs on contiguous operands (autograd's materialised
    a conjugated 1 MB copy and handed the star a transposed gradient) and the star's backward."""

    @staticmethod
    def forward(ctx, gates, W):
        A, Ts = _star_forward(gates, "cols")
        ctx.save_for_backward(gates, W, A, *Ts)
        return A @ W.T

    @staticmethod
    def backward(ctx, gR):
        gates, W, A, *Ts = ctx.saved_tensors
        g = gR.reshape(A.shape[0], W.shape[0])
        dW = (A.mH @ g).T
        dA = g @ W.conj().resolve_conj()
        return _star_backward(gates, Ts, dA, "cols"), dW


def _upper(theta: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(the star gates of qubit 0, the unitary W of the blocks on qubits 1..n-1 (2^(n-1) x 2^(n-1)))."""
    n_blocks = n * (n - 1) // 2
    if theta.shape[-1] != BLOCK_PARAMS * n_blocks:
        raise ValueError(f"theta must have {BLOCK_PARAMS * n_blocks} values for n={n}, got {theta.shape[-1]}")
    if n < 3:
        raise ValueError(f"the exact kernel needs at least 3 qubits, got n={n}")
    mats = block_matrices(theta.reshape(n_blocks, BLOCK_PARAMS))
    return _level_gates(mats, n, 0), _Upper.apply(mats, n)


def unitary(theta: torch.Tensor, n: int) -> torch.Tensor:
    """U(theta) (2^n x 2^n complex), equal to :func:`qmae_qiskit.model.ansatz.encoder_unitary`; differentiable.

    The pair order applies every block (0, j) first, then the encoder of qubits 1..n-1, so U = (W (x) 1_{q0}) A
    with A the star of blocks on qubit 0 and W the same construction one qubit up.
    """
    if n <= 2:
        n_blocks = n * (n - 1) // 2
        if theta.shape[-1] != BLOCK_PARAMS * n_blocks:
            raise ValueError(f"theta must have {BLOCK_PARAMS * n_blocks} values for n={n}, got {theta.shape[-1]}")
        if n == 1:
            return torch.eye(2, dtype=_complex_dtype(theta.dtype), device=theta.device)
        return block_matrices(theta.reshape(BLOCK_PARAMS))
    gates, W = _upper(theta, n)
    return (W @ _Star.apply(gates, "rows")).reshape(1 << n, 1 << n)


def rotated_transpose(theta: torch.Tensor, n: int) -> torch.Tensor:
    """U^T with U's output bits rotated (qubit 0 most significant): R[i, (b_0, b_{n-1}, ..., b_1)] = U[b, i].

    The training kernel's form of U: as a real (2^n, 2^(n+1)) view it is the matrix that maps images to
    interleaved (re, im) amplitudes, and the top level's GEMM A^T (W^T (x) 1) writes it directly (U itself would
    need a 1 MB interleaving copy forward and backward). :func:`rotate_transpose` converts a built U.
    """
    gates, W = _upper(theta, n)
    return _Top.apply(gates, W).reshape(1 << n, 1 << n)


def rotate_transpose(U: torch.Tensor) -> torch.Tensor:
    """:func:`rotated_transpose`'s layout from U (2^n x 2^n) itself (a copy)."""
    D = U.shape[0]
    return U.reshape(D // 2, 2, D).permute(2, 1, 0).reshape(D, D)


def _normalized(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    if bool((norm == 0).any()):
        raise ValueError("an image is all zero and cannot be amplitude-embedded; drop it or add a mask token")
    return x / norm, norm


class SwapFidelity(torch.autograd.Function):
    """<Z> per image pair from R = :func:`rotated_transpose` (complex, 2^n x 2^n), raw masked images and raw clean
    images, with ``T`` = 2^t trash values.

    In R's column order (b_0, trash bits, the other latent bits) U x is the row x @ R: psi[q0, b, r], and the
    trash = 0 rows of U y are two blocks of R's columns: chi[q0, r]. <Z> = sum_b |sum_{q0, r} chi* psi_b|^2.

    ``patches`` (optional) = (membership (B, P): 1 if patch p of image b is masked, masked (B, D): 1 at masked
    pixels, pixel_patch (D,) long: the patch of each pixel, pixel_slot (D,) long: the token entry at each pixel,
    n_token): then ``xm`` is ``where(masked, token[pixel_slot], image)`` and the function returns the token's
    gradient (in the slot of ``token``) instead of a dense gradient for the masked images.
    """

    @staticmethod
    def forward(ctx, R, xm, xc, T: int, token=None, patches=None):
        B, D = xm.shape
        H = D // (2 * T)  # latent values per value of qubit 0
        Rr = torch.view_as_real(R).reshape(D, 2 * D)
        xh, nm = _normalized(xm)
        yh, nc = _normalized(xc)
        P = xh @ Rr  # (B, 2D): U x, interleaved (re, im), columns (q0, trash, rest)
        C = torch.cat([yh @ Rr[:, : 2 * H], yh @ Rr[:, D : D + 2 * H]], 1)  # (B, 4H): trash = 0 columns, q0 = 0, 1
        psi = torch.view_as_complex(P.view(B, D, 2)).view(B, 2, T, H)
        chi = torch.view_as_complex(C.view(B, 2 * H, 2)).view(B, 2, H)
        o = (psi * chi.conj()[:, :, None, :]).sum((1, 3))  # (B, T): <chi_0 | psi_b>
        fid = o.real.square().sum(-1) + o.imag.square().sum(-1)
        ctx.save_for_backward(R, xh, yh, nm, nc, P, C, o, fid, token)
        ctx.T, ctx.patches = T, patches
        return fid

    @staticmethod
    def backward(ctx, g):
        R, xh, yh, nm, nc, P, C, o, fid, token = ctx.saved_tensors
        T, patches = ctx.T, ctx.patches
        B, D = xh.shape
        H = D // (2 * T)
        Rr = torch.view_as_real(R).reshape(D, 2 * D)
        psi = torch.view_as_complex(P.view(B, D, 2)).view(B, 2, T, H)
        chi = torch.view_as_complex(C.view(B, 2 * H, 2)).view(B, 2, H)
        go = (2 * g)[:, None] * o  # dF/d(re, im) of psi_b and chi_0 below, as complex numbers
        dP = torch.view_as_real(go[:, None, :, None] * chi[:, :, None, :]).reshape(B, 2 * D)
        dC = torch.view_as_real((go.conj()[:, None, :, None] * psi).sum(2)).reshape(B, 4 * H)
        need_r, need_xm, need_xc = ctx.needs_input_grad[:3]
        need_token = patches is not None and ctx.needs_input_grad[4]
        dR = dxm = dxc = dtok = None
        if need_r:
            dRr = xh.T @ dP  # (D, 2D)
            dRr.view(D, 2, D)[:, :, : 2 * H] += (yh.T @ dC).view(D, 2, 2 * H)
            dR = torch.view_as_complex(dRr.view(D, D, 2))
        # dL/dxh . xh (the normalisation's share) without the dense dL/dxh: F is homogeneous of degree 2 in xh (and
        # in yh), so dP . P = dC . C = 2 g F
        s = (2 * g * fid)[:, None]
        if need_xm:
            dxm = (dP @ Rr.T - s * xh) / nm
        if need_token:
            dtok = _token_gradient(Rr, dP, xh, nm, s, patches, token)
        if need_xc:
            dxc = (dC[:, : 2 * H] @ Rr[:, : 2 * H].T + dC[:, 2 * H :] @ Rr[:, D : D + 2 * H].T - s * yh) / nc
        return dR, dxm, dxc, None, dtok, None


def _token_gradient(Rr, dP, xh, nm, s, patches, token) -> torch.Tensor:
    """d loss / d token = sum over images and masked pixels of dL/dxm, without forming dL/dxm for every pixel.

    dL/dxm[b, q] = (dP[b] . Rr[q] - s_b xh[b, q]) / nm_b. Summed over the images whose patch p(q) is masked, the
    first term is (M^T (dP / nm))[p(q)] . Rr[q]: one (P x B) @ (B x 2D) product and one (P x 2D) @ (2D x D).
    """
    member, masked, pixel_patch, pixel_slot, n_token = patches
    v = (member / nm).T @ dP  # (P, 2D)
    z = (v @ Rr.T).gather(0, pixel_patch[None, :])[0]  # (D,): first term at each pixel, for its own patch
    z = z - ((s / nm) * masked * xh).sum(0)
    return torch.zeros(n_token, dtype=z.dtype, device=z.device).index_add_(0, pixel_slot, z).to(token.dtype)


@cache
def patch_layout(
    image_size: int, patch_height: int, patch_width: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(patch of each pixel, token entry of each pixel, one-hot (P, D) float64 of the patch of each pixel) for a
    row-major grid of patches, pixels row-major."""
    L = image_size
    r = torch.arange(L)[:, None].expand(L, L)
    c = torch.arange(L)[None, :].expand(L, L)
    patch = ((r // patch_height) * (L // patch_width) + c // patch_width).reshape(-1)
    slot = ((r % patch_height) * patch_width + c % patch_width).reshape(-1)
    one_hot = torch.nn.functional.one_hot(patch, (L // patch_height) * (L // patch_width)).T.to(torch.float64)
    return patch.clone(), slot.clone(), one_hot.contiguous()
