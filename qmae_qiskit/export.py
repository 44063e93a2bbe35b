"""Export circuits as QPY and OpenQASM 3, and bind a reproducible random instance with its exact fidelity."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from qiskit import qasm3, qpy
from qiskit.circuit import QuantumCircuit

from qmae_qiskit.io import atomic_write_bytes, atomic_write_text
from qmae_qiskit.model.circuits import parameter_values, reconstruction_circuit, training_circuit
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.masking import grid_shape, insert_token
from qmae_qiskit.records import UnversionedBefore, save_record
from qmae_qiskit.simulate import exact


class BoundInstance(UnversionedBefore):
    """The JSON beside a bound training circuit: the random instance it binds and its exact fidelity, so another
    stack can run the QPY/QASM file and compare <Z> with ``fidelity``."""

    SCHEMA: ClassVar[str] = "qmae-qiskit/bound-instance"
    VERSION: ClassVar[int] = 1
    WHAT: ClassVar[str] = "bound circuit instance"

    seed: int
    fidelity: float
    observable: str
    ancilla: int
    num_qubits: int
    masked_patch: int
    config: dict[str, Any]
    files: list[str]
    theta: list[float]
    mask_token: list[float]
    clean_image: list[float]
    masked_image: list[float]


def circuit_summary(qc: QuantumCircuit) -> dict:
    """Qubits, depth and gate counts of a circuit."""
    return {
        "name": qc.name,
        "num_qubits": qc.num_qubits,
        "num_clbits": qc.num_clbits,
        "num_parameters": qc.num_parameters,
        "depth": qc.depth(),
        "size": qc.size(),
        "gate_counts": {k: int(v) for k, v in qc.count_ops().items()},
    }


def write_circuit(qc: QuantumCircuit, stem: Path) -> list[Path]:
    """``stem.qpy`` and ``stem.qasm`` (OpenQASM 3), each written atomically."""
    buf = io.BytesIO()
    qpy.dump(qc, buf)
    return [
        atomic_write_bytes(stem.with_suffix(".qpy"), buf.getvalue()),
        atomic_write_text(stem.with_suffix(".qasm"), qasm3.dumps(qc)),
    ]


@dataclass
class RandomInstance:
    """A random theta, mask token and (clean, masked) image pair, and the exact fidelity of that binding."""

    theta: torch.Tensor
    token: torch.Tensor
    clean: torch.Tensor  # (L*L,)
    masked: torch.Tensor  # (L*L,)
    patch: int
    fidelity: float


def random_instance(cfg: QMAEConfig, seed: int) -> RandomInstance:
    """Theta ~ U[0, 2pi), token ~ U[0, 1), clean image ~ U[0, 1) per pixel, one random patch masked."""
    g = torch.Generator().manual_seed(seed)
    theta = torch.rand(cfg.n_theta, generator=g, dtype=torch.float64) * 2 * np.pi
    token = torch.rand(cfg.n_token, generator=g, dtype=torch.float64)
    clean = torch.rand(1, cfg.image_size, cfg.image_size, generator=g, dtype=torch.float64)
    rows, cols = grid_shape(cfg)
    patch = int(torch.randint(rows * cols, (1,), generator=g))
    masked = insert_token(clean, torch.tensor([[patch]]), cfg, token)
    xm, xc = masked.reshape(1, -1), clean.reshape(1, -1)
    fid = float(exact.fidelity(theta, xm, xc, cfg)[0])
    return RandomInstance(theta, token, xc[0], xm[0], patch, fid)


def bind_training(qc: QuantumCircuit, theta: torch.Tensor, masked: torch.Tensor, clean: torch.Tensor) -> QuantumCircuit:
    """Bind theta and the loader angles of one (masked, clean) pair to the training circuit."""
    return qc.assign_parameters(parameter_values(qc, theta, masked.reshape(1, -1), clean.reshape(1, -1))[0])


def export_circuits(cfg: QMAEConfig, out: Path, bind_seed: int | None = None) -> dict:
    """Write the training and reconstruction circuits (and a bound instance with its JSON if ``bind_seed``)."""
    tag = (
        f"L{cfg.image_size}_k{cfg.latent_qubits}_{cfg.trash_reset}"
        + (f"_layers{cfg.layers}" if cfg.layers != 1 else "")
        + (f"_{cfg.ansatz}" if cfg.ansatz != "all-pairs" else "")
    )
    train, recon = training_circuit(cfg), reconstruction_circuit(cfg)
    report: dict = {"config": cfg.model_dump(), "circuits": {}}
    for kind, qc in (("training", train), ("reconstruction", recon)):
        files = write_circuit(qc, out / f"qmae_{kind}_{tag}")
        report["circuits"][kind] = circuit_summary(qc) | {"files": [str(f) for f in files]}
    if bind_seed is not None:
        inst = random_instance(cfg, bind_seed)
        bound = bind_training(train, inst.theta, inst.masked, inst.clean)
        stem = out / f"qmae_training_{tag}_seed{bind_seed}"
        files = write_circuit(bound, stem)
        record = {
            "seed": bind_seed,
            "fidelity": inst.fidelity,
            "observable": "Z on the ancilla qubit (identity elsewhere)",
            "ancilla": train.metadata["ancilla"],
            "num_qubits": bound.num_qubits,
            "masked_patch": inst.patch,
            "config": cfg.model_dump(),
            "files": [str(f) for f in files],
            "theta": inst.theta.tolist(),
            "mask_token": inst.token.tolist(),
            "clean_image": inst.clean.tolist(),
            "masked_image": inst.masked.tolist(),
        }
        json_path = save_record(BoundInstance.model_validate(record), stem.with_suffix(".json"))
        report["bound"] = {k: record[k] for k in ("seed", "fidelity", "ancilla", "num_qubits", "masked_patch")}
        report["bound"]["files"] = [*record["files"], str(json_path)]
    return report
