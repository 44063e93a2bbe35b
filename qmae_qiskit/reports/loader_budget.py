"""Which amplitude loader fits a two-qubit-gate budget on a backend, measured by transpiling.

Routing overhead depends on the backend, the optimization level and the seed, so the budget is checked on the
circuit that would run: the inverse-loader fidelity circuit (the hardware default), transpiled with unbound
parameters exactly as ``report depth`` and ``submit`` do. The best loader is the exact RY tree when it fits (loading
fidelity 1), else the ladder with the most layers that fits: adding two layers never lowers a fit's fidelity
(the fit grows from L - 2 with the new layers at the identity), so more layers within the budget is better.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qiskit.providers import BackendV2

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.transpile import DEFAULT_SEED, check_level, transpile_for, two_qubit_count
from qmae_qiskit.model.approx_loader import MAX_LAYERS, LoaderSpec, as_spec
from qmae_qiskit.model.circuits import inverse_fidelity_circuit
from qmae_qiskit.model.config import QMAEConfig


def fidelity_circuit_two_qubit_gates(
    cfg: QMAEConfig,
    backend: BackendV2,
    loader: LoaderSpec | str | None = None,
    optimization_level: int = 3,
    seed: int = DEFAULT_SEED,
) -> int:
    """Two-qubit gates of the inverse-loader fidelity circuit with ``loader``, transpiled for ``backend``."""
    qc, _ = inverse_fidelity_circuit(cfg, as_spec(loader))
    return two_qubit_count(transpile_for(qc, backend, check_level(optimization_level), seed))


@dataclass(frozen=True)
class BudgetChoice:
    """The loader chosen for a budget, its transpiled two-qubit-gate count, and every count measured on the way."""

    spec: LoaderSpec
    two_qubit_gates: int
    budget: int
    tried: dict[str, int] = field(default_factory=dict)


def spec_for_budget(
    cfg: QMAEConfig,
    backend: BackendV2,
    budget: int,
    optimization_level: int = 3,
    seed: int = DEFAULT_SEED,
) -> BudgetChoice:
    """The best loader whose inverse-loader fidelity circuit has at most ``budget`` two-qubit gates on ``backend``.

    Exact if it fits; else ladders from L_hi = (budget - count(ladder:0)) // (2(n-1)) down (each layer adds
    n-1 CNOTs to each of the two loaders before routing; routing only adds), first that fits. Raises a one-line
    error when not even the loader-free ``ladder:0`` (one RY per qubit) fits.
    """
    if budget < 1:
        raise QMAEError(f"the two-qubit-gate budget must be positive, got {budget}")
    tried: dict[str, int] = {}

    def count(spec: LoaderSpec) -> int:
        tried[spec.label] = fidelity_circuit_two_qubit_gates(cfg, backend, spec, optimization_level, seed)
        return tried[spec.label]

    exact = LoaderSpec()
    if count(exact) <= budget:
        return BudgetChoice(exact, tried[exact.label], budget, tried)
    floor = count(LoaderSpec(kind="ladder", layers=0))
    if floor > budget:
        raise QMAEError(
            f"a budget of {budget} two-qubit gates is below the {floor} that the autoencoder alone takes on "
            f"{backend.name} at optimization level {optimization_level}; raise --two-qubit-budget to at least {floor}"
        )
    n = cfg.n_qubits
    hi = min(MAX_LAYERS, (budget - floor) // (2 * (n - 1)))
    for layers in range(hi, 0, -1):
        spec = LoaderSpec(kind="ladder", layers=layers)
        if count(spec) <= budget:
            return BudgetChoice(spec, tried[spec.label], budget, tried)
    spec = LoaderSpec(kind="ladder", layers=0)
    return BudgetChoice(spec, floor, budget, tried)
