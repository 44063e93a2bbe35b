"""Approximate amplitude loading under a two-qubit-gate budget: a fixed RY/CX ladder whose angles are fitted per image.

The exact RY tree (:mod:`qmae_qiskit.model.loader`) costs 2^n - 2 CNOTs: 254 at 16x16, and the two loaders of the
16x16 inverse-loader fidelity circuit take ~1,260 of its 1,408 two-qubit gates on fake_torino at O3. This loader
keeps what makes hardware runs cheap to prepare: one *fixed* parameterized circuit serves every image (transpile
once, bind per image); only its angles depend on the image, and they are fitted here.

Ansatz ``ladder:L`` on n qubits (MPS-style, real amplitudes): one RY on every qubit, then L layers; a layer is the
line ``n-1 -> n-2 -> ... -> 0`` of CX(q, q-1) gates, each followed by RY on both of its qubits, and odd layers run
the line in reverse order. n + 2(n-1)L angles, (n-1)L CNOTs, all between neighbours on a line (a line maps onto
heavy-hex without SWAPs). Why this shape (measured on 16x16 MNIST test images; circuits/README.md has the numbers):

- the natural qubit order (row bits, then column bits) compresses these images best: an SVD-truncated MPS with
  bond dimension 4 keeps mean fidelity 0.944 in this order, 0.90-0.93 with row and column bits interleaved;
- RY after both qubits of every CX is the most angles a RY/CX circuit can have per CNOT (2); amplitudes stay real,
  as the targets are. Brick-wall and down/up-alternating variants with as many CNOTs fitted no better;
- reversing odd layers makes a pair of zero-angle layers the identity, so the fit with L layers grows from the fit
  with L - 2 (no image's fidelity drops) instead of a random point: half the fit time for the same fidelity, and
  no images stuck near fidelity 0 as random starts left them.

Fitting maximizes F = <x|psi(angles)>^2 per image with a batched per-image L-BFGS on an exact statevector simulation
with an adjoint gradient (numpy, float64). Parameters are ``<name>[k]`` of one ``ParameterVector``, in gate order.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from qiskit.circuit import ParameterVector, QuantumCircuit

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.model.loader import loader_angles, loader_circuit

MAX_LAYERS = 64
GROWTH_KICK = 0.05  # spread of new layers' starting angles (radians) for an image stuck on a saddle when growing
SADDLE_GRADIENT = 1e-6  # |d<x|psi>/d angle| below this for every new angle: stuck
_SPEC_RE = re.compile(r"^(exact|ladder):?(\d+)?$")


class LoaderSpec(BaseModel):
    """Which amplitude loader a circuit uses: the exact RY tree, or the fitted ``ladder`` with ``layers`` layers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["exact", "ladder"] = Field("exact", description="'exact' (RY tree) or 'ladder' (fitted)")
    layers: int | None = Field(None, description="ladder layers L (ladder only); (n-1)L CNOTs per loader")

    @model_validator(mode="after")
    def _check(self) -> LoaderSpec:
        if self.kind == "exact" and self.layers is not None:
            raise ValueError("the exact loader takes no layers; use 'exact' or 'ladder:<layers>'")
        if self.kind == "ladder" and (self.layers is None or not 0 <= self.layers <= MAX_LAYERS):
            raise ValueError(f"a ladder loader needs 0..{MAX_LAYERS} layers, e.g. 'ladder:12', got {self.layers}")
        return self

    @classmethod
    def parse(cls, text: str) -> LoaderSpec:
        """``'exact'`` or ``'ladder:<layers>'`` (as the CLI takes it); a bad string raises one-line QMAEError."""
        m = _SPEC_RE.match(text.strip().lower())
        if m is None or (m.group(1) == "exact" and m.group(2)) or (m.group(1) == "ladder" and not m.group(2)):
            raise QMAEError(f"unknown loader {text!r}; use 'exact' or 'ladder:<layers>' (e.g. ladder:12)")
        if m.group(1) == "exact":
            return cls()
        layers = int(m.group(2))
        if layers > MAX_LAYERS:
            raise QMAEError(f"loader {text!r} has more than {MAX_LAYERS} layers; the exact loader is cheaper there")
        return cls(kind="ladder", layers=layers)

    @property
    def is_exact(self) -> bool:
        return self.kind == "exact"

    @property
    def label(self) -> str:
        return "exact" if self.is_exact else f"ladder:{self.layers}"

    def cnots(self, n: int) -> int:
        """CNOTs of one loader on n qubits (before routing)."""
        return (1 << n) - 2 if self.is_exact else (n - 1) * int(self.layers or 0)

    def num_parameters(self, n: int) -> int:
        return (1 << n) - 1 if self.is_exact else n + 2 * (n - 1) * int(self.layers or 0)


EXACT = LoaderSpec()


def as_spec(loader: LoaderSpec | str | None) -> LoaderSpec:
    """None -> the exact loader; a string is parsed (``'ladder:12'``)."""
    if loader is None:
        return EXACT
    return LoaderSpec.parse(loader) if isinstance(loader, str) else loader


# ------------------------------------------------------------------------------------------------ structure
Gate = tuple[str, int, int]  # ("ry", qubit, angle index) or ("cx", control, target)


def ladder_pairs(n: int, layer: int) -> list[tuple[int, int]]:
    """(control, target) pairs of one layer: the line n-1 -> 0, reversed on odd layers."""
    pairs = [(q, q - 1) for q in range(n - 1, 0, -1)]
    return pairs if layer % 2 == 0 else pairs[::-1]


def ladder_gates(n: int, layers: int) -> list[Gate]:
    """The ladder's gate sequence; angle indices count up in gate order."""
    gates: list[Gate] = [("ry", q, q) for q in range(n)]
    k = n
    for layer in range(layers):
        for c, t in ladder_pairs(n, layer):
            gates += [("cx", c, t), ("ry", c, k), ("ry", t, k + 1)]
            k += 2
    return gates


def ladder_circuit(n: int, layers: int, name: str) -> QuantumCircuit:
    """The fixed parameterized ladder on n qubits; parameter ``<name>[k]`` is angle k of :func:`fit_ladder`."""
    params = ParameterVector(name, n + 2 * (n - 1) * layers)
    qc = QuantumCircuit(n, name=f"load_{name}")
    for kind, a, b in ladder_gates(n, layers):
        if kind == "ry":
            qc.ry(params[b], a)
        else:
            qc.cx(a, b)
    return qc


def loader_for(spec: LoaderSpec, n: int, name: str) -> QuantumCircuit:
    """The loader circuit a spec names: the exact RY tree or the ladder."""
    return loader_circuit(n, name) if spec.is_exact else ladder_circuit(n, int(spec.layers or 0), name)


# --------------------------------------------------------------------------------------------- simulation
class _Ladder:
    """Statevector simulation of the ladder and the adjoint gradient of <x|psi>, batched over columns.

    States are stored as columns (2^n, B). Each ladder block CX(q, q-1), RY(q), RY(q-1) is applied in one step on
    the view (.., bit q, bit q-1, .., B): the CX only relabels two quarter blocks, so it costs nothing.
    """

    def __init__(self, n: int, layers: int):
        self.n, self.layers = n, layers
        self.gates = ladder_gates(n, layers)
        self.num_parameters = n + 2 * (n - 1) * layers
        body = self.gates[n:]
        self.blocks = [(body[i][1], body[i + 1][2]) for i in range(0, len(body), 3)]  # (control q, angle of q)
        self._trail: np.ndarray | None = None
        for i in range(0, len(body), 3):  # the structure the fused step assumes
            (_, c, t), (_, qa, ka), (_, qb, kb) = body[i : i + 3]
            assert t == c - 1 and qa == c and qb == t and kb == ka + 1

    def _view(self, S: np.ndarray, q: int) -> np.ndarray:
        d, b = S.shape
        return S.reshape(d >> (q + 1), 2, 2, 1 << (q - 1), b)

    def _block(self, S: np.ndarray, q: int, ca, sa, cb, sb, out: np.ndarray | None = None) -> np.ndarray:
        """CX(q, q-1) then RY on q (cos/sin ca, sa of half angles) and q-1 (cb, sb), into ``out`` (or a new
        array)."""
        v = self._view(S, q)
        s00, s01, s10, s11 = v[:, 0, 0], v[:, 0, 1], v[:, 1, 1], v[:, 1, 0]  # CX: control 1 flips the target
        t00, t01 = ca * s00 - sa * s10, ca * s01 - sa * s11
        t10, t11 = sa * s00 + ca * s10, sa * s01 + ca * s11
        o = self._view(np.empty_like(S) if out is None else out, q)
        o[:, 0, 0], o[:, 0, 1] = cb * t00 - sb * t01, sb * t00 + cb * t01
        o[:, 1, 0], o[:, 1, 1] = cb * t10 - sb * t11, sb * t10 + cb * t11
        return o.reshape(S.shape)

    def _unblock(self, S: np.ndarray, q: int, ca, sa, cb, sb) -> np.ndarray:
        """The inverse of :meth:`_block` (transpose: RYs by minus the angles, then the CX)."""
        v = self._view(S, q)
        s00, s01, s10, s11 = v[:, 0, 0], v[:, 0, 1], v[:, 1, 0], v[:, 1, 1]
        t00, t01 = cb * s00 + sb * s01, -sb * s00 + cb * s01
        t10, t11 = cb * s10 + sb * s11, -sb * s10 + cb * s11
        out = np.empty_like(v)
        out[:, 0, 0], out[:, 0, 1] = ca * t00 + sa * t10, ca * t01 + sa * t11
        out[:, 1, 1], out[:, 1, 0] = -sa * t00 + ca * t10, -sa * t01 + ca * t11  # stored swapped: the CX
        return out.reshape(S.shape)

    def _product(self, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
        """The first RY layer on |0..0>: a product state, (2^n, B)."""
        S = np.ones((1, cos.shape[1]))
        for q in range(self.n - 1, -1, -1):  # most significant bit first
            S = np.stack([S * cos[q], S * sin[q]], axis=1).reshape(-1, cos.shape[1])
        return S

    def states(self, angles: np.ndarray, keep: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """Final states (2^n, B) for angles (B, P), and (if ``keep``) the state after the product layer and after
        every block."""
        half = 0.5 * angles.T
        cos, sin = np.cos(half), np.sin(half)
        S = self._product(cos, sin)
        if not keep:
            for q, k in self.blocks:
                S = self._block(S, q, cos[k], sin[k], cos[k + 1], sin[k + 1])
            return S, []
        # one buffer for the whole trail, reused between calls: fresh memory per block costs more than the math
        shape = (len(self.blocks) + 1, *S.shape)
        size = int(np.prod(shape))
        if self._trail is None or self._trail.size < size:
            self._trail = np.empty(size)
        trail = list(self._trail[:size].reshape(shape))
        trail[0][...] = S
        for i, (q, k) in enumerate(self.blocks):
            S = self._block(S, q, cos[k], sin[k], cos[k + 1], sin[k + 1], out=trail[i + 1])
        return S, trail

    def overlap_and_grad(self, angles: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A = <x|psi> (B,) and dA/d angles (B, P); X holds the targets as columns (2^n, B)."""
        S, trail = self.states(angles, keep=True)
        B = angles.shape[0]
        A = np.einsum("db,db->b", X, S)
        half = 0.5 * angles.T
        cos, sin = np.cos(half), np.sin(half)
        grad = np.empty_like(angles)
        R = X
        # dRY/dtheta = RY(theta) Y'/2 with Y' = [[0, -1], [1, 0]]; Y' commutes with RY, and the block's two RYs
        # commute, so both derivatives are <R|Y'_q|P>/2 with R, P taken after the block.
        for i in range(len(self.blocks) - 1, -1, -1):
            q, k = self.blocks[i]
            r, p = self._view(R, q), self._view(trail[i + 1], q)
            grad[:, k] = 0.5 * (r[:, 1] * p[:, 0] - r[:, 0] * p[:, 1]).reshape(-1, B).sum(0)
            grad[:, k + 1] = 0.5 * (r[:, :, 1] * p[:, :, 0] - r[:, :, 0] * p[:, :, 1]).reshape(-1, B).sum(0)
            R = self._unblock(R, q, cos[k], sin[k], cos[k + 1], sin[k + 1])
        # the product layer: d/dtheta_q of prod_j (cos_j, sin_j) replaces qubit q's factor by (-sin_q, cos_q)/2
        P = trail[0]
        for q in range(self.n):
            d = P.shape[0]
            r = R.reshape(d >> (q + 1), 2, 1 << q, B)
            p = P.reshape(d >> (q + 1), 2, 1 << q, B)
            grad[:, q] = 0.5 * (r[:, 1] * p[:, 0] - r[:, 0] * p[:, 1]).reshape(-1, B).sum(0)
        return A, grad

    def product_start(self, X: np.ndarray) -> np.ndarray:
        """Angles (B, P) of the product state of each target's one-qubit marginals, on each qubit's last RY.

        With every other angle zero each CX sees its control in |0>, so the ladder (L <= 1) prepares that product
        state; for larger L the fit grows from L - 2 instead.
        """
        n, B = self.n, X.shape[1]
        angles = np.zeros((B, self.num_parameters))
        last = {}
        for kind, a, b in self.gates:
            if kind == "ry":
                last[a] = b
        P = (X * X).reshape([2] * n + [B])
        for q in range(n):
            axis = n - 1 - q  # reshape is big-endian: axis 0 is the most significant bit
            p1 = P.sum(axis=tuple(i for i in range(n) if i != axis))[1]
            angles[:, last[q]] = 2.0 * np.arctan2(np.sqrt(np.clip(p1, 0, None)), np.sqrt(np.clip(1 - p1, 0, None)))
        return angles


# ------------------------------------------------------------------------------------------------ fitting
@dataclass(frozen=True)
class LoaderFit:
    """Fitted loader angles for a batch of images and what they load.

    ``states`` (B, 2^n) are the loaded (normalized, real) statevectors: feeding them to an exact simulation in
    place of the images gives the exact value of the approximate circuit. ``fidelity`` is |<x/|x| | state>|^2.
    """

    spec: LoaderSpec
    angles: torch.Tensor  # (B, P) float64, parameter order of loader_for(spec, n, name)
    states: torch.Tensor  # (B, 2^n) float64
    fidelity: torch.Tensor  # (B,) float64
    seconds: float


def _targets(x: torch.Tensor | np.ndarray) -> np.ndarray:
    X = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    if X.ndim == 1:
        X = X[None]
    X = X.reshape(X.shape[0], -1)
    dim = X.shape[1]
    if dim < 2 or dim & (dim - 1):
        raise QMAEError(f"amplitude vectors must have a power-of-two length >= 2, got {dim}")
    norms = np.linalg.norm(X, axis=1)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise QMAEError("every image to load must be finite and not all zero")
    return X / norms[:, None]


def _direction(g: np.ndarray, hist: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """L-BFGS search direction per image (two-loop recursion over ``hist``) and its slope; an image whose direction
    does not descend gets the (scaled) steepest descent instead."""
    q = g.copy()
    alphas = []
    for s_, y_, r_ in reversed(hist):
        a_ = r_ * np.einsum("bp,bp->b", s_, q)
        q -= a_[:, None] * y_
        alphas.append(a_)
    if hist:
        s_, y_, _ = hist[-1]
        sy, yy = np.einsum("bp,bp->b", s_, y_), np.einsum("bp,bp->b", y_, y_)
        gamma = np.where((sy > 0) & (yy > 0), sy / np.where(yy > 0, yy, 1.0), 1.0)
    else:
        gamma = 1.0 / np.maximum(1.0, np.linalg.norm(g, axis=1))
    z = gamma[:, None] * q
    for (s_, y_, r_), a_ in zip(hist, reversed(alphas)):
        z += s_ * (a_ - r_ * np.einsum("bp,bp->b", y_, z))[:, None]
    d = -z
    slope = np.einsum("bp,bp->b", g, d)
    bad = slope >= 0  # not a descent direction: steepest descent for that image
    if bad.any():
        d[bad] = -g[bad] / np.maximum(1.0, np.linalg.norm(g[bad], axis=1))[:, None]
        slope[bad] = np.einsum("bp,bp->b", g[bad], d[bad])
    return d, slope


def _lbfgs(model: _Ladder, X: np.ndarray, start: np.ndarray, max_iter: int, memory: int = 20) -> np.ndarray:
    """Minimize 1 - F for every image at once: one L-BFGS per image (own history, own step), run in lockstep.

    The images are independent problems; batching them in one vectorized L-BFGS keeps every simulation call
    batched without coupling their steps (scipy's L-BFGS on the sum coupled them and spent more time in its own
    bookkeeping than in the simulation). Backtracking line search (Armijo), so no image's fidelity ever drops;
    an image stops when its step no longer lowers 1 - F, and only images still moving are simulated.
    """
    B = start.shape[0]
    x = start.copy()

    def f_and_g(v: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        A, dA = model.overlap_and_grad(v, X if len(cols) == B else X[:, cols])
        return 1.0 - A * A, -2.0 * A[:, None] * dA

    f, g = f_and_g(x, np.arange(B))
    hist: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (s, y, rho) per step, rows = images
    active = np.abs(g).max(axis=1) > 1e-14
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        d, slope = _direction(g, hist)
        # backtracking: every moving image tries its own step; those that fail halve it and retry alone
        x_new, f_new, g_new = x.copy(), f.copy(), g.copy()
        todo, t = idx, np.ones(idx.size)
        for _ in range(12):
            trial = x[todo] + t[:, None] * d[todo]
            ft, gt = f_and_g(trial, todo)
            ok = ft <= f[todo] + 1e-4 * t * slope[todo]
            x_new[todo[ok]], f_new[todo[ok]], g_new[todo[ok]] = trial[ok], ft[ok], gt[ok]
            todo, t = todo[~ok], t[~ok] * 0.5
            if todo.size == 0:
                break
        active[todo] = False  # no decrease found: converged to rounding
        active &= (f - f_new > 1e-16) | ~active  # stalled images stop
        active &= np.abs(g_new).max(axis=1) > 1e-14
        s_new, y_new = x_new - x, g_new - g
        sy = np.einsum("bp,bp->b", s_new, y_new)
        hist.append((s_new, y_new, np.where(sy > 1e-300, 1.0 / np.where(sy > 1e-300, sy, 1.0), 0.0)))
        if len(hist) > memory:
            hist.pop(0)
        x, f, g = x_new, f_new, g_new
    return x


def _better(model: _Ladder, X: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per image (row), whichever of angles ``a`` and ``b`` loads the state closer to the target."""
    fa = np.einsum("db,db->b", X, model.states(a)[0]) ** 2
    fb = np.einsum("db,db->b", X, model.states(b)[0]) ** 2
    return np.where((fa >= fb)[:, None], a, b)


def fit_ladder_stages(
    x: torch.Tensor | np.ndarray,
    layers: int,
    stage_iter: int = 60,
    final_iter: int = 300,
    chunk: int = 256,
) -> Iterator[tuple[int, np.ndarray]]:
    """(layers so far, angles (B, P)) after each stage of the growth schedule of :func:`fit_ladder`."""
    X = _targets(x)
    B, dim = X.shape
    n = dim.bit_length() - 1
    if not 0 <= layers <= MAX_LAYERS:
        raise QMAEError(f"ladder layers must be 0..{MAX_LAYERS}, got {layers}")
    chunks = [X[lo : lo + chunk].T.copy() for lo in range(0, B, chunk)]
    L = layers % 2
    model = _Ladder(n, L)
    angles = [model.product_start(Xc) for Xc in chunks]
    starts = angles_prev = angles
    while True:
        iters = final_iter if L == layers else stage_iter
        angles = [_lbfgs(model, Xc, a, iters) for Xc, a in zip(chunks, starts)]
        # keep, per image, the better of the fit and the identity-grown previous fit (which loads the same state
        # as the previous stage did): no stage lowers any image's fidelity
        angles = [_better(model, Xc, a, b) for Xc, a, b in zip(chunks, angles, angles_prev)]
        yield L, np.concatenate(angles)
        if L == layers:
            return
        L += 2
        model = _Ladder(n, L)
        angles_prev, starts = [], []
        for c, (Xc, a) in enumerate(zip(chunks, angles)):
            grown = np.zeros((a.shape[0], model.num_parameters))
            grown[:, : a.shape[1]] = a  # the two new layers at zero angles: the identity
            angles_prev.append(grown)
            # some images sit on a saddle there (no gradient in the new angles, e.g. a '1' whose two columns differ
            # in every column bit) and would never move: those start with the new angles slightly off zero
            stuck = np.abs(model.overlap_and_grad(grown, Xc)[1][:, a.shape[1] :]).max(axis=1) < SADDLE_GRADIENT
            start = grown.copy()
            kick = np.random.default_rng([L, c]).normal(0.0, GROWTH_KICK, size=start[:, a.shape[1] :].shape)
            start[stuck, a.shape[1] :] = kick[stuck]
            starts.append(start)


def ladder_states(n: int, layers: int, angles: np.ndarray) -> np.ndarray:
    """The states (B, 2^n) the ladder loads for angles (B, P)."""
    return np.ascontiguousarray(_Ladder(n, layers).states(np.asarray(angles, dtype=np.float64))[0].T)


def fit_ladder(
    x: torch.Tensor | np.ndarray,
    layers: int,
    stage_iter: int = 60,
    final_iter: int = 300,
    chunk: int = 256,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Angles (B, P), loaded states (B, 2^n) and fidelities (B,) of the ladder fitted to each row of ``x``.

    Growth schedule: start at L % 2 layers from each image's marginal product state, then add two layers at a
    time (zero angles: the identity) with ``stage_iter`` L-BFGS iterations per stage and ``final_iter`` at L. No
    stage lowers any image's fidelity, so with ``stage_iter == final_iter`` the fit with L + 2 layers is at least
    as good as the fit with L, image by image (its first stages *are* that fit). Every image has its own L-BFGS
    (see :func:`_lbfgs`); ``chunk`` only bounds memory. Defaults: 100 16x16 images (masked and clean) at
    ``ladder:12`` in about a minute of CPU on a busy machine, mean loading fidelity ~0.996.
    """
    X = _targets(x)
    *_, (_, angles) = fit_ladder_stages(X, layers, stage_iter, final_iter, chunk)
    n = X.shape[1].bit_length() - 1
    states = ladder_states(n, layers, angles)
    return angles, states, np.einsum("bd,bd->b", X, states) ** 2


def fit_loader(spec: LoaderSpec | str | None, x: torch.Tensor | np.ndarray, **options) -> LoaderFit:
    """Per-image angles for the loader ``spec`` names and each image's loading fidelity.

    ``x`` (B, 2^n) or (B, L, L) need not be normalized; any real values load (a negative mask token too).
    The exact loader returns its tree angles, the normalized images and fidelity 1. ``options`` go to
    :func:`fit_ladder`.
    """
    spec = as_spec(spec)
    start = time.perf_counter()
    X = _targets(x)
    if spec.is_exact:
        t = torch.from_numpy(X)
        return LoaderFit(spec, loader_angles(t), t, torch.ones(X.shape[0], dtype=torch.float64), 0.0)
    angles, states, fid = fit_ladder(X, int(spec.layers or 0), **options)
    return LoaderFit(
        spec,
        torch.from_numpy(angles),
        torch.from_numpy(states),
        torch.from_numpy(fid),
        time.perf_counter() - start,
    )
