"""Circuit builder: every part of the paper's circuit alone and composed, on virtual qubits 0..N-1.

Layout of the SWAP-test training circuit (paper Fig. 4; 2n + 2 qubits for one trash qubit)::

    0                       ancilla (SWAP test; <Z> on it is the fidelity, eq. 8)
    1 .. t                  fresh |0> qubits that take the trash away (only with trash_reset='swap')
    t+1 .. t+n              data qubits; data qubit j holds bit j of the pixel index (row * L + col);
                            the low k are latent, the top t (most significant bits) are trash
    t+n+1 .. t+2n           reference qubits: the clean image, reference qubit j pairs with data qubit j

Every builder sets ``circuit.metadata['qubit_roles']`` (one of ancilla, fresh, data/latent, data/trash,
reference per qubit), the index lists and ``loader`` (the loader's label). Parameter names are stable: ``theta[m]``
(ansatz, shared by U and U-dagger; with several layers, layer l takes the next n(n-1)/2 * 15 indices), ``xm[i]`` /
``xr[i]`` (exact RY-tree angles of the masked / clean image). A fitted approximate loader
(``loader=LoaderSpec(kind='ladder', ...)``, :mod:`qmae_qiskit.model.approx_loader`) uses ``am[k]`` / ``ar[k]``
instead, so a circuit cannot be bound with the other loader's angles by mistake.
Transpiling is a separate step (see :mod:`qmae_qiskit.hardware.transpile`).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import torch
from qiskit.circuit import ClassicalRegister, Parameter, QuantumCircuit, QuantumRegister
from qiskit.quantum_info import SparsePauliOp

from qmae_qiskit.model.ansatz import encoder_circuit
from qmae_qiskit.model.approx_loader import LoaderSpec, as_spec, loader_for
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.loader import loader_angles, loader_circuit

THETA, MASKED, REFERENCE = "theta", "xm", "xr"
FIT_MASKED, FIT_REFERENCE = "am", "ar"  # angles of a fitted approximate loader (see approx_loader)
_FIT_NAME = {MASKED: FIT_MASKED, REFERENCE: FIT_REFERENCE}


@dataclass(frozen=True)
class Layout:
    """Virtual-qubit indices of each role in the training circuit."""

    ancilla: int | None
    fresh: tuple[int, ...]
    data: tuple[int, ...]
    reference: tuple[int, ...]
    latent_count: int

    @property
    def latent(self) -> tuple[int, ...]:
        return self.data[: self.latent_count]

    @property
    def trash(self) -> tuple[int, ...]:
        return self.data[self.latent_count :]

    @property
    def num_qubits(self) -> int:
        return (self.ancilla is not None) + len(self.fresh) + len(self.data) + len(self.reference)

    def roles(self) -> list[str]:
        roles = [""] * self.num_qubits
        if self.ancilla is not None:
            roles[self.ancilla] = "ancilla"
        for q in self.fresh:
            roles[q] = "fresh"
        for q in self.latent:
            roles[q] = "data/latent"
        for q in self.trash:
            roles[q] = "data/trash"
        for q in self.reference:
            roles[q] = "reference"
        return roles

    def metadata(self, cfg: QMAEConfig, kind: str, loader: LoaderSpec | str | None = None) -> dict:
        return {
            "qmae_circuit": kind,
            "loader": as_spec(loader).label,
            "qubit_roles": self.roles(),
            "ancilla": self.ancilla,
            "fresh_qubits": list(self.fresh),
            "data_qubits": list(self.data),
            "latent_qubits": list(self.latent),
            "trash_qubits": list(self.trash),
            "reference_qubits": list(self.reference),
            "config": cfg.model_dump(),
        }


def training_layout(cfg: QMAEConfig) -> Layout:
    """Layout of the SWAP-test circuit (ancilla, fresh, data, reference)."""
    n, t = cfg.n_qubits, cfg.trash_qubits
    f = t if cfg.trash_reset == "swap" else 0
    data = tuple(range(1 + f, 1 + f + n))
    return Layout(0, tuple(range(1, 1 + f)), data, tuple(range(1 + f + n, 1 + f + 2 * n)), cfg.latent)


def reconstruction_layout(cfg: QMAEConfig) -> Layout:
    """Layout of the reconstruction circuit (fresh, data): no ancilla, no reference."""
    n, t = cfg.n_qubits, cfg.trash_qubits
    f = t if cfg.trash_reset == "swap" else 0
    return Layout(None, tuple(range(f)), tuple(range(f, f + n)), (), cfg.latent)


# ------------------------------------------------------------------------------------------------ the parts
def embedding(cfg: QMAEConfig, name: str = MASKED, loader: LoaderSpec | str | None = None) -> QuantumCircuit:
    """Parameterized real-amplitude loader on the n data (or reference) qubits.

    Exact (default): the RY tree, parameters ``name[i]``, angles from ``loader_angles``. A fitted loader: its fixed
    circuit with parameters ``am[k]`` (for ``name='xm'``) or ``ar[k]`` (``'xr'``), angles from ``fit_loader``.
    """
    spec = as_spec(loader)
    if spec.is_exact:
        return loader_circuit(cfg.n_qubits, name)
    return loader_for(spec, cfg.n_qubits, _FIT_NAME.get(name, name))


def encoder(cfg: QMAEConfig, light_cone: bool = False) -> QuantumCircuit:
    """U(theta) on the n data qubits: ``cfg.layers`` layers of ``cfg.ansatz``, layer l on the l-th block of
    ``theta``. ``light_cone``: only the blocks that reach the trash qubits (the same U-dagger R U; see
    :func:`qmae_qiskit.model.ansatz.light_cone`; all of them for all-pairs)."""
    cone = range(cfg.latent, cfg.n_qubits) if light_cone else None
    return encoder_circuit(cfg.n_qubits, THETA, cfg.layers, cfg.ansatz, cone)


def decoder(cfg: QMAEConfig, enc: QuantumCircuit | None = None) -> QuantumCircuit:
    """U(theta)-dagger: the inverse of ``enc`` (default a fresh encoder), sharing its theta objects.

    The inverse is RZ(-theta), RY(-theta) in reverse order: the same ``Parameter`` in an affine expression.
    """
    dec = (enc if enc is not None else encoder(cfg)).inverse()
    dec.name = "U_dg"
    return dec


def trash_reset(cfg: QMAEConfig) -> QuantumCircuit:
    """Trash qubits to |0>: SWAP with fresh qubits (qubits 0..t-1 here, data 0..n-1 after), or mid-circuit reset."""
    n, t, k = cfg.n_qubits, cfg.trash_qubits, cfg.latent
    if cfg.trash_reset == "swap":
        qc = QuantumCircuit(t + n, name="trash_reset")
        for i in range(t):
            qc.swap(t + k + i, i)
    else:
        qc = QuantumCircuit(n, name="trash_reset")
        for i in range(t):
            qc.reset(k + i)
    return qc


def swap_test(n: int) -> QuantumCircuit:
    """SWAP test on 2n + 1 qubits: ancilla 0, register A = 1..n, register B = n+1..2n; <Z_0> = |<a|b>|^2."""
    qc = QuantumCircuit(2 * n + 1, name="swap_test")
    qc.h(0)
    for j in range(n):
        qc.cswap(0, 1 + j, 1 + n + j)
    qc.h(0)
    return qc


# ---------------------------------------------------------------------------------------------- composition
def autoencoder_body(
    cfg: QMAEConfig,
    layout: Layout,
    qc: QuantumCircuit,
    loader: LoaderSpec | str | None = None,
    light_cone: bool = False,
) -> None:
    """Append embedding of the masked image, U, trash reset and U-dagger on ``layout``'s qubits (``light_cone``:
    U restricted to the trash qubits' light cone, see :func:`encoder`)."""
    data = list(layout.data)
    qc.compose(embedding(cfg, MASKED, loader), data, inplace=True)
    enc = encoder(cfg, light_cone)
    qc.compose(enc, data, inplace=True)
    reset_qubits = list(layout.fresh) + data if cfg.trash_reset == "swap" else data
    qc.compose(trash_reset(cfg), reset_qubits, inplace=True)
    qc.compose(decoder(cfg, enc), data, inplace=True)


def training_circuit(cfg: QMAEConfig, loader: LoaderSpec | str | None = None) -> QuantumCircuit:
    """The full QMAE circuit: <Z> on the ancilla is the fidelity between the decoded state and the clean image.

    ``loader`` (default: the exact RY tree) is used for both the masked and the clean (reference) image.
    """
    lay = training_layout(cfg)
    qc = QuantumCircuit(QuantumRegister(lay.num_qubits, "q"), name=f"qmae_swap_test_L{cfg.image_size}")
    qc.compose(embedding(cfg, REFERENCE, loader), list(lay.reference), inplace=True)
    autoencoder_body(cfg, lay, qc, loader)
    qc.compose(swap_test(cfg.n_qubits), [lay.ancilla, *lay.data, *lay.reference], inplace=True)
    qc.metadata = lay.metadata(cfg, "training", loader)
    return qc


def reconstruction_circuit(
    cfg: QMAEConfig, measure: bool = True, loader: LoaderSpec | str | None = None
) -> QuantumCircuit:
    """Embedding, U, reset, U-dagger, then the data qubits measured: clbit j = data qubit j = bit j of the pixel.

    ``loader`` (default: the exact RY tree) loads the masked image. A device circuit, so U keeps only the blocks
    in the trash qubits' light cone (fewer gates for brickwork, the same circuit for all-pairs); the SWAP-test
    training circuit keeps every block, as the Aer training backend differentiates every angle.
    """
    lay = reconstruction_layout(cfg)
    qc = QuantumCircuit(QuantumRegister(lay.num_qubits, "q"), name=f"qmae_reconstruction_L{cfg.image_size}")
    autoencoder_body(cfg, lay, qc, loader, light_cone=True)
    if measure:
        creg = ClassicalRegister(cfg.n_qubits, "pixel")
        qc.add_register(creg)
        qc.measure(list(lay.data), creg)
    qc.metadata = lay.metadata(cfg, "reconstruction", loader)
    return qc


def inverse_fidelity_circuit(
    cfg: QMAEConfig, loader: LoaderSpec | str | None = None
) -> tuple[QuantumCircuit, SparsePauliOp]:
    """The autoencoder followed by the inverse loader of the clean image on the data qubits, and |0..0><0..0|.

    With rho the decoded data register and V|0> = |x> the clean image's loader, <0|V^dagger rho V|0> = <x|rho|x>,
    the same fidelity the SWAP test's <Z> gives, on n + t qubits instead of 2n + 2 and without the controlled
    SWAPs -- what lets a small device (4x4 on 5 qubits) run the evaluation.

    ``loader`` (default: the exact RY tree) loads both images. With a fitted loader V|0> = |phi> only approximates
    |x>, so the circuit measures <phi_clean|rho(phi_masked)|phi_clean>; its exact value is the exact fidelity with
    the fits' ``states`` in place of the images (see :class:`qmae_qiskit.model.approx_loader.LoaderFit`).
    """
    qc = reconstruction_circuit(cfg, measure=False, loader=loader)
    data = list(qc.metadata["data_qubits"])
    qc.compose(embedding(cfg, REFERENCE, loader).inverse(), data, inplace=True)
    qc.name = f"qmae_inverse_fidelity_L{cfg.image_size}"
    qc.metadata = {**qc.metadata, "qmae_circuit": "inverse_fidelity"}
    n = len(data)
    terms = [("Z" * r, list(sub), 1.0 / 2**n) for r in range(n + 1) for sub in combinations(data, r)]
    return qc, SparsePauliOp.from_sparse_list(terms, qc.num_qubits).simplify()


def fidelity_observable(num_qubits: int, ancilla: int = 0) -> SparsePauliOp:
    """Z on the ancilla (identity elsewhere), in Qiskit's little-endian label order."""
    label = ["I"] * num_qubits
    label[num_qubits - 1 - ancilla] = "Z"
    return SparsePauliOp("".join(label))


def parameter_groups(qc: QuantumCircuit) -> dict[str, list[Parameter]]:
    """The circuit's parameters split into theta / xm / xr / am / ar, each in index order."""
    groups: dict[str, list[Parameter]] = {THETA: [], MASKED: [], REFERENCE: [], FIT_MASKED: [], FIT_REFERENCE: []}
    for p in qc.parameters:  # sorted by name, then vector index
        vec = getattr(p, "vector", None)
        if vec is not None and vec.name in groups:
            groups[vec.name].append(p)
    return groups


def parameter_values(
    qc: QuantumCircuit,
    theta: torch.Tensor,
    x_masked: torch.Tensor,
    x_clean: torch.Tensor | None = None,
    masked_angles: torch.Tensor | None = None,
    clean_angles: torch.Tensor | None = None,
) -> np.ndarray:
    """(B, P) values of ``qc.parameters`` for a batch of images: ``theta[m]`` shared, ``xm[i]`` / ``xr[i]`` the
    exact loader angles of each masked / clean image (B, 2^n), ``am[k]`` / ``ar[k]`` the fitted loader angles
    ``masked_angles`` / ``clean_angles`` (B, P) from ``approx_loader.fit_loader(spec, images).angles`` (fitting is
    the costly part, so the caller fits once and passes the angles). Looked up by name, so a transpiled copy of a
    built circuit binds the same way; a circuit without reference qubits needs no ``x_clean``."""
    B = x_masked.shape[0]
    per_name: dict[str, torch.Tensor] = {
        THETA: theta.detach().to(torch.float64).reshape(1, -1).expand(B, -1),
    }
    counts: dict[str, int] = {}  # per vector name: highest index + 1
    for p in qc.parameters:
        vec = getattr(p, "vector", None)
        if vec is not None:
            counts[vec.name] = max(counts.get(vec.name, 0), p.index + 1)
    names = set(counts)
    if MASKED in names:
        per_name[MASKED] = loader_angles(x_masked.detach().to(torch.float64))
    if x_clean is not None and REFERENCE in names:
        per_name[REFERENCE] = loader_angles(x_clean.detach().to(torch.float64))
    for key, given, what in ((FIT_MASKED, masked_angles, "masked"), (FIT_REFERENCE, clean_angles, "clean")):
        if given is None:
            continue
        given = torch.as_tensor(given, dtype=torch.float64)
        if given.ndim != 2 or given.shape[0] != B:
            raise ValueError(f"{what}_angles must have shape ({B}, P), one row per image, got {tuple(given.shape)}")
        if key in counts and given.shape[1] != counts[key]:
            raise ValueError(
                f"{what}_angles have {given.shape[1]} columns but the circuit's loader has {counts[key]} angles; "
                f"fit the loader the circuit was built with"
            )
        per_name[key] = given
    columns = []
    for p in qc.parameters:
        vec = getattr(p, "vector", None)
        name = vec.name if vec is not None else None
        if name in (FIT_MASKED, FIT_REFERENCE) and name not in per_name:
            what = "masked" if name == FIT_MASKED else "clean"
            raise ValueError(
                f"the circuit loads the {what} image with a fitted loader ({p.name!r}); pass {what}_angles="
                f"fit_loader(spec, images).angles"
            )
        if name not in per_name:
            raise ValueError(f"circuit parameter {p.name!r} is not theta, xm or xr (or xr was not given)")
        columns.append(per_name[name][:, p.index])
    return torch.stack(columns, -1).numpy() if columns else np.zeros((x_masked.shape[0], 0))
