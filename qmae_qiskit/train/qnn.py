"""The aer_simulator training backend: the SWAP-test circuit in an EstimatorQNN, wrapped in a TorchConnector.

The circuit is transpiled once for AerSimulator and the <Z_ancilla> observable is mapped with
``SparsePauliOp.apply_layout`` (handing EstimatorQNN a pass manager with the raw circuit gives wrong values);
noiseless Aer runs every gate of the built circuit, so it gets the circuit as built.
QNN inputs are the loader angles of the masked and the clean image (computed in torch, so the mask token's
gradient flows through :func:`qmae_qiskit.model.loader.loader_angles` and the QNN's input gradients); QNN weights are
theta, tied to the model's own ``theta`` parameter. Expectation values are exact unless ``shots`` is set
(Aer's estimator then samples N(<Z>, 1/sqrt(shots))). The gradient is the reverse-mode (adjoint) gradient
when the run is noiseless and exact and it is available, else parameter shift.

With ``noise_model`` (a fake backend name or a calibration snapshot, see :mod:`qmae_qiskit.hardware.noise`) the circuit
is transpiled to the noise model's basis gates (all-to-all, no routing) and simulated on the density matrix up
to 12 qubits (L = 4), else as statevector trajectories; both are slow, and noisy gradients use parameter shift.

TorchConnector returns float32 values and gradients; the fidelity is cast back to float64 here.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from qiskit_aer import AerSimulator
from qiskit_aer.primitives import EstimatorV2
from qiskit_machine_learning.connectors import TorchConnector
from qiskit_machine_learning.neural_networks import EstimatorQNN

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.noise import noise_model as _noise_model
from qmae_qiskit.hardware.transpile import map_observable, transpile_for
from qmae_qiskit.model.circuits import MASKED, REFERENCE, THETA, fidelity_observable, parameter_groups, training_circuit
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.loader import loader_angles
from qmae_qiskit.simulate.adjoint import make_gradient


@dataclass
class TranspiledTraining:
    """The transpiled training circuit, its mapped observable and its parameter groups."""

    circuit: object  # QuantumCircuit
    observable: object  # SparsePauliOp
    inputs: list  # xm then xr parameters
    weights: list  # theta parameters, index order


def transpile_training(cfg: QMAEConfig, simulator, seed: int = 0, optimization_level: int = 1) -> TranspiledTraining:
    """Transpile the SWAP-test circuit once for ``simulator`` and map Z on the ancilla through its layout.

    A simulator that runs every gate of the circuit as built (noiseless Aer: RY, RZ, CX, SWAP, CSWAP, H) gets the
    circuit itself: transpiling it at level 1 returns the same gates, and would cost a second or two of start-up
    (the transpiler's plugin discovery imports qiskit-ibm-runtime).
    """
    qc = training_circuit(cfg)
    want = parameter_groups(qc)
    supported = set(getattr(simulator, "operation_names", ()) or ())
    if getattr(simulator.options, "noise_model", None) is None and set(qc.count_ops()) <= supported:
        obs = fidelity_observable(qc.num_qubits, qc.metadata["ancilla"])
        return TranspiledTraining(qc, obs, want[MASKED] + want[REFERENCE], want[THETA])
    isa = transpile_for(qc, simulator, optimization_level, seed)
    groups = parameter_groups(isa)
    if any(len(groups[k]) != len(want[k]) for k in want):  # a pass dropped a parameter: keep every one
        isa = transpile_for(qc, simulator, 0, seed)
        groups = parameter_groups(isa)
    obs = map_observable(fidelity_observable(qc.num_qubits, qc.metadata["ancilla"]), isa)
    return TranspiledTraining(isa, obs, groups[MASKED] + groups[REFERENCE], groups[THETA])


def resolve_gradient(choice: str, noiseless_exact: bool) -> str:
    """'adjoint' or 'param-shift' for --gradient auto|adjoint|param-shift."""
    if choice not in ("auto", "adjoint", "param-shift"):
        raise QMAEError(f"unknown gradient {choice!r}; use auto, adjoint or param-shift")
    if choice == "adjoint" and not noiseless_exact:
        raise QMAEError(
            "the adjoint gradient needs a noiseless run with exact expectation values; drop --shots "
            "and --noise-model, or use --gradient param-shift"
        )
    if choice == "auto":
        return "adjoint" if noiseless_exact else "param-shift"
    return choice


DENSITY_MATRIX_MAX_QUBITS = 12  # 4^12 complex entries = 268 MB; beyond that noise runs as trajectories


def make_estimator(precision: float, seed: int, noise=None, num_qubits: int = 0, trajectories: int = 1024):
    """Aer EstimatorV2: exact (precision 0) or Gaussian-sampled at ``precision``; noisy if ``noise`` is given.

    With noise, small circuits run on the density matrix (the exact noisy expectation value); larger ones
    average ``trajectories`` statevector trajectories.
    """

    options: dict = {"default_precision": precision, "run_options": {"seed_simulator": int(seed)}}
    if noise is not None:
        if num_qubits <= DENSITY_MATRIX_MAX_QUBITS:
            options["backend_options"] = {"noise_model": noise, "method": "density_matrix"}
        else:
            options["backend_options"] = {"noise_model": noise, "method": "statevector"}
            options["run_options"]["shots"] = int(trajectories)
    return EstimatorV2(options=options)


class AerFidelity:
    """Fidelity backend on Aer: ``backend(theta, x_masked, x_clean) -> (B,)`` through EstimatorQNN + TorchConnector.

    ``theta`` must be an ``nn.Parameter`` for gradients (it becomes the connector's weight); a plain tensor is
    evaluated without gradients.
    """

    def __init__(
        self,
        cfg: QMAEConfig,
        shots: int | None = None,
        noise_model: str | None = None,
        gradient: str = "auto",
        input_gradients: bool = True,
        seed: int = 0,
    ):

        self.cfg = cfg
        self.shots = shots
        self.noise_model = noise_model
        noise = None
        if noise_model is not None:
            noise = _noise_model(noise_model)
        if shots is not None and shots < 1:
            raise QMAEError(f"--shots must be a positive number, got {shots}")
        precision = 0.0 if shots is None else 1.0 / math.sqrt(shots)
        self.gradient_kind = resolve_gradient(gradient, noiseless_exact=shots is None and noise is None)
        if noise is not None:
            simulator = AerSimulator(noise_model=noise, basis_gates=noise.basis_gates)
        else:
            simulator = AerSimulator(method="statevector")
        self.transpiled = t = transpile_training(cfg, simulator, seed)
        self.estimator = make_estimator(precision, seed, noise, cfg.n_circuit_qubits, shots or 1024)
        grad = make_gradient(self.gradient_kind, self.estimator, t.circuit, t.observable, precision)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.qnn = EstimatorQNN(
                circuit=t.circuit,
                estimator=self.estimator,
                observables=t.observable,
                input_params=t.inputs,
                weight_params=t.weights,
                gradient=grad,
                input_gradients=input_gradients,
                default_precision=precision,
            )
            self.connector = TorchConnector(self.qnn, initial_weights=np.zeros(len(t.weights)))

    def inputs(self, x_masked: torch.Tensor, x_clean: torch.Tensor) -> torch.Tensor:
        """QNN inputs (B, 2 (2^n - 1)): loader angles of the masked image, then of the clean image."""
        return torch.cat([loader_angles(x_masked.to(torch.float64)), loader_angles(x_clean.to(torch.float64))], -1)

    def __call__(self, theta: torch.Tensor, x_masked: torch.Tensor, x_clean: torch.Tensor) -> torch.Tensor:
        angles = self.inputs(x_masked, x_clean)
        if not isinstance(theta, torch.nn.Parameter):
            values = self.qnn.forward(angles.detach().numpy(), theta.detach().to(torch.float64).numpy())
            return torch.as_tensor(np.asarray(values), dtype=torch.float64).reshape(-1)
        if self.connector._weights is not theta:
            self.connector._weights = theta  # tie: the model's theta is the QNN's weight vector
        return self.connector(angles).reshape(-1).to(torch.float64)
