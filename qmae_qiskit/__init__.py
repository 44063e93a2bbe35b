"""qmae-qiskit: Quantum Masked Autoencoders (Andrews & Mishra) built, trained and run with Qiskit.

The code is grouped by stage (docs/explanation/architecture.md, "Layout of the code"); the names most users
need are importable from here directly and load lazily, so ``import qmae_qiskit`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> "module:attribute" (attribute empty for a module)
_EXPORTS: dict[str, str] = {
    "QMAEConfig": "qmae_qiskit.model.config:QMAEConfig",
    "training_circuit": "qmae_qiskit.model.circuits:training_circuit",
    "reconstruction_circuit": "qmae_qiskit.model.circuits:reconstruction_circuit",
    "inverse_fidelity_circuit": "qmae_qiskit.model.circuits:inverse_fidelity_circuit",
    "loader_angles": "qmae_qiskit.model.loader:loader_angles",
    "loader_circuit": "qmae_qiskit.model.loader:loader_circuit",
    "AdjointEstimatorGradient": "qmae_qiskit.simulate.adjoint:AdjointEstimatorGradient",
    "QMAE": "qmae_qiskit.train.models:QMAE",
    "QAE": "qmae_qiskit.train.models:QAE",
    "RunSettings": "qmae_qiskit.train.runs:RunSettings",
    "load_trained": "qmae_qiskit.train.runs:load_trained",
    "resolve_backend": "qmae_qiskit.hardware.backends:resolve_backend",
    # documented modules, by their short names
    "circuits": "qmae_qiskit.model.circuits:",
    "config": "qmae_qiskit.model.config:",
    "loader": "qmae_qiskit.model.loader:",
    "ansatz": "qmae_qiskit.model.ansatz:",
    "masking": "qmae_qiskit.model.masking:",
    "exact": "qmae_qiskit.simulate.exact:",
    "adjoint": "qmae_qiskit.simulate.adjoint:",
    "models": "qmae_qiskit.train.models:",
    "metrics": "qmae_qiskit.evaluate.metrics:",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'qmae_qiskit' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    value = getattr(module, attr) if attr else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
