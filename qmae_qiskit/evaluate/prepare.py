"""Prepare a trained model's evaluation as execution-layer work: images, masks, circuits, parameter values.

Both ``evaluate`` and ``submit`` (and the hardware study) start here: the run's model, the images and their
evaluation masks, the fidelity circuit (SWAP test or inverse loader) and the reconstruction circuit, each
transpiled once for the executor's target by :func:`~qmae_qiskit.hardware.transpile.transpile_for`, the
observable mapped through the layout, and one row of parameter values per image. What runs them is the
executor's business; what the numbers mean is :mod:`qmae_qiskit.evaluate.scoring`'s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from qiskit.circuit import QuantumCircuit

from qmae_qiskit.data import ImageSet
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.backends import ensure_fits
from qmae_qiskit.hardware.execution import EstimatorTask, Executor, SamplerTask, Work
from qmae_qiskit.hardware.placement import place
from qmae_qiskit.hardware.spec import ExecutionSpec
from qmae_qiskit.hardware.transpile import map_observable, transpile_for, two_qubit_count
from qmae_qiskit.model.approx_loader import as_spec, fit_loader
from qmae_qiskit.model.circuits import (
    fidelity_observable,
    inverse_fidelity_circuit,
    parameter_values,
    reconstruction_circuit,
    training_circuit,
)
from qmae_qiskit.model.masking import eval_masks
from qmae_qiskit.train.runs import TrainedModel

FIDELITY, RECONSTRUCTION = "fidelity", "reconstruction"
ROLES = (FIDELITY, RECONSTRUCTION)


EvalSpec = ExecutionSpec  # its name before the one execution spec; kept for one release


@dataclass
class Prepared:
    """A model's evaluation as work for one executor, with everything needed to score its results."""

    tm: TrainedModel
    images: torch.Tensor  # (N, L, L)
    labels: torch.Tensor
    indices: torch.Tensor
    patch_idx: torch.Tensor
    x_masked: torch.Tensor  # (N, L*L) encoder inputs (token filled in)
    clean: torch.Tensor  # (N, L*L)
    executor: Executor
    work: Work
    fidelity_circuit: str
    logical: dict[str, QuantumCircuit] = field(default_factory=dict)
    transpile_seconds: float = 0.0
    loader_fits: dict[str, Any] = field(default_factory=dict)  # "masked"/"clean" -> LoaderFit (approximate loader)

    def loaded_states(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(masked, clean) states the hardware circuits actually load: the fitted ones for an approximate loader,
        else the normalised images. The exact value of the circuits that run uses these."""
        if self.loader_fits:
            return self.loader_fits["masked"].states, self.loader_fits["clean"].states
        return self.x_masked, self.clean

    def loading_summary(self) -> dict[str, Any] | None:
        """Per image loading fidelity of the approximate loader (None for the exact tree)."""
        if not self.loader_fits:
            return None
        out: dict[str, Any] = {"loader": self.loader_fits["masked"].spec.label}
        for key, fit in self.loader_fits.items():
            f = fit.fidelity.numpy()
            out[key] = {
                "mean": float(f.mean()),
                "min": float(f.min()),
                "per_image": f.tolist(),
                "fit_seconds": round(float(fit.seconds), 3),
            }
        return out

    def circuit_summary(self) -> dict[str, dict]:
        """Per role: qubits, depth and two-qubit gates of what runs (ISA circuit, or the logical one)."""
        out = {}
        for role, task in self.work.tasks.items():
            qc = task.circuit
            out[role] = {
                "circuit": qc.metadata.get("qmae_circuit") if qc.metadata else None,
                "num_qubits": qc.num_qubits,
                "depth": qc.depth(),
                "two_qubit_gates": two_qubit_count(qc),
            }
        return out


def resolve_fidelity_circuit(choice: str, executor: Executor) -> str:
    """'auto': the paper's SWAP test on simulators, the inverse loader (n + t qubits) on devices and twins."""
    if choice not in ("auto", "swap-test", "inverse"):
        raise QMAEError(f"unknown fidelity circuit {choice!r}; use auto, swap-test or inverse")
    if choice != "auto":
        return choice
    return "inverse" if executor.kind in ("twin", "ibm") else "swap-test"


def logical_circuits(
    tm: TrainedModel, fidelity_circuit: str, loader: str | None = None
) -> tuple[QuantumCircuit, object, QuantumCircuit]:
    """(fidelity circuit, its observable on the virtual qubits, reconstruction circuit) for the run's config."""

    cfg = tm.cfg
    if fidelity_circuit == "swap-test":
        qc = training_circuit(cfg, loader)
        obs = fidelity_observable(qc.num_qubits, qc.metadata["ancilla"])
    else:
        qc, obs = inverse_fidelity_circuit(cfg, loader)
    return qc, obs, reconstruction_circuit(cfg, measure=True, loader=loader)


def isa_for(circuit: QuantumCircuit, target: Any, spec: ExecutionSpec) -> QuantumCircuit:
    """``circuit`` transpiled for ``target`` at the spec's level and seed, on the qubits its ``placement`` picks."""
    if spec.placement == "qiskit":
        return transpile_for(circuit, target, spec.optimization_level, spec.seed_transpiler)

    return place(circuit, target, spec.optimization_level, spec.seed_transpiler, spec.placement).isa


def prepare(
    tm: TrainedModel, data: ImageSet, spec: ExecutionSpec, executor: Executor, roles: tuple[str, ...] = ROLES
) -> Prepared:
    """The evaluation of ``tm`` on ``data`` as :class:`Work` for ``executor``."""

    cfg = tm.cfg
    if len(data) == 0:
        raise QMAEError("no images to evaluate")
    fid_kind = resolve_fidelity_circuit(spec.fidelity_circuit, executor)
    approximate = spec.loader is not None and not as_spec(spec.loader).is_exact
    fid_qc, fid_obs, rec_qc = logical_circuits(tm, fid_kind, spec.loader if approximate else None)
    target = executor.target
    _check_fits(fid_qc, rec_qc, fid_kind, target)
    patch_idx = eval_masks(cfg, tm.mask_ratio, data.indices, spec.mask_seed)
    with torch.no_grad():
        x_masked = tm.module().masked_inputs(data.images, patch_idx).detach()
    clean = data.images.reshape(len(data), -1).to(torch.float64)
    fits: dict[str, Any] = {}
    angles: dict[str, torch.Tensor] = {}
    if approximate:
        fits = {"masked": fit_loader(spec.loader, x_masked), "clean": fit_loader(spec.loader, clean)}
        angles = {"masked_angles": fits["masked"].angles, "clean_angles": fits["clean"].angles}
    t0 = time.perf_counter()
    tasks, logical = _tasks(tm, spec, target, roles, (fid_qc, fid_obs, rec_qc), (x_masked, clean, angles))
    seconds = time.perf_counter() - t0
    shots = spec.shots
    if shots is None and executor.kind in ("twin", "ibm"):
        raise QMAEError(f"{executor.name} samples: give --shots (e.g. 4000)")
    work = spec.work(tasks)
    return Prepared(
        tm,
        data.images,
        data.labels,
        data.indices,
        patch_idx,
        x_masked,
        clean,
        executor,
        work,
        fid_kind,
        logical,
        seconds,
        fits,
    )


def _check_fits(fid_qc: QuantumCircuit, rec_qc: QuantumCircuit, fid_kind: str, target: Any) -> None:
    """One line when the fidelity circuit needs more qubits than the device has (naming the smaller circuit)."""
    if target is None:
        return
    try:
        ensure_fits(
            fid_qc.num_qubits,
            target,
            f"{fid_kind} fidelity circuit",
            "use a larger backend or a run trained on smaller images",
        )
    except QMAEError as exc:
        if fid_kind == "swap-test" and rec_qc.num_qubits <= (target.num_qubits or 0):
            raise QMAEError(f"{exc}, or pass --fidelity-circuit inverse ({rec_qc.num_qubits} qubits)") from None
        raise


def _tasks(
    tm: TrainedModel, spec: ExecutionSpec, target: Any, roles: tuple[str, ...], circuits: tuple, inputs: tuple
) -> tuple[dict, dict[str, QuantumCircuit]]:
    """The estimator and sampler tasks of ``roles``, transpiled for ``target`` (as built when it is None)."""
    fid_qc, fid_obs, rec_qc = circuits
    x_masked, clean, angles = inputs
    tasks: dict = {}
    logical: dict[str, QuantumCircuit] = {}
    if FIDELITY in roles:
        isa = fid_qc if target is None else isa_for(fid_qc, target, spec)
        obs = fid_obs if target is None else map_observable(fid_obs, isa)
        tasks[FIDELITY] = EstimatorTask(isa, obs, parameter_values(isa, tm.theta, x_masked, clean, **angles))
        logical[FIDELITY] = fid_qc
    if RECONSTRUCTION in roles:
        isa = rec_qc if target is None else isa_for(rec_qc, target, spec)
        masked_only = {k: v for k, v in angles.items() if k == "masked_angles"}
        tasks[RECONSTRUCTION] = SamplerTask(isa, parameter_values(isa, tm.theta, x_masked, **masked_only), "pixel")
        logical[RECONSTRUCTION] = rec_qc
    return tasks, logical


def outputs(prepared: Prepared, results: dict) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(reconstruction probabilities (N, L*L), fidelities (N,)) from an execution's results."""
    probs = fids = None
    if RECONSTRUCTION in results:
        probs = torch.as_tensor(np.asarray(results[RECONSTRUCTION].probabilities), dtype=torch.float64)
    if FIDELITY in results:
        fids = torch.as_tensor(np.asarray(results[FIDELITY].values), dtype=torch.float64)
    return probs, fids
