"""The execution layer: the exact executor against row-by-row Statevector, Aer ideal against exact, the factory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.execution import EstimatorTask, SamplerTask, Work
from qmae_qiskit.hardware.executors import make_executor
from qmae_qiskit.hardware.executors.aer import AerExecutor
from qmae_qiskit.hardware.executors.exact import ExactExecutor, distribution, estimate
from qmae_qiskit.hardware.executors.twin import TwinExecutor
from qmae_qiskit.model.circuits import (
    fidelity_observable,
    inverse_fidelity_circuit,
    parameter_values,
    reconstruction_circuit,
    training_circuit,
)
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.loader import loader_angles, state_from_angles


def _case(cfg: QMAEConfig, rows: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    theta = torch.rand(cfg.n_theta, generator=g, dtype=torch.float64) * 6.28
    masked = torch.rand(rows, cfg.dim, generator=g, dtype=torch.float64) - 0.2  # signed, like a negative token
    clean = torch.rand(rows, cfg.dim, generator=g, dtype=torch.float64)
    return theta, masked, clean


def _generic(task):
    """The same task with metadata stripped: the executor's row-by-row Statevector route."""
    qc = task.circuit.copy()
    qc.metadata = {}
    if isinstance(task, EstimatorTask):
        return estimate(EstimatorTask(qc, task.observable, task.values)).values
    return distribution(SamplerTask(qc, task.values, task.register)).probabilities


@pytest.mark.parametrize("cfg", [QMAEConfig(image_size=4), QMAEConfig(image_size=4, trash_reset="reset")])
def test_exact_fast_path_equals_statevector_on_every_builder_circuit(cfg):
    theta, masked, clean = _case(cfg, 3 if cfg.trash_reset == "swap" else 1, 5)  # density matrices are slow
    qc = training_circuit(cfg)
    swap = EstimatorTask(
        qc, fidelity_observable(qc.num_qubits, qc.metadata["ancilla"]), parameter_values(qc, theta, masked, clean)
    )
    inv_qc, inv_obs = inverse_fidelity_circuit(cfg)
    inverse = EstimatorTask(inv_qc, inv_obs, parameter_values(inv_qc, theta, masked, clean))
    rec_qc = reconstruction_circuit(cfg)
    recon = SamplerTask(rec_qc, parameter_values(rec_qc, theta, masked), "pixel")
    res = ExactExecutor().run(Work({"swap": swap, "inverse": inverse, "recon": recon})).result()
    assert res["swap"].metadata["method"] == "exact path" and res["recon"].metadata["method"] == "exact path"
    assert np.allclose(res["swap"].values, _generic(swap), atol=1e-9)
    assert np.allclose(res["inverse"].values, _generic(inverse), atol=1e-9)  # the two fidelity circuits agree
    assert np.allclose(res["inverse"].values, res["swap"].values, atol=1e-9)
    assert np.allclose(res["recon"].probabilities, _generic(recon), atol=1e-9)


def test_aer_exact_values_equal_the_exact_executor():
    cfg = QMAEConfig(image_size=4)
    theta, masked, clean = _case(cfg, 2, 8)
    aer = AerExecutor()
    from qmae_qiskit.hardware.transpile import map_observable, transpile_for

    qc = training_circuit(cfg)
    isa = transpile_for(qc, aer.target, 1, 3)
    obs = map_observable(fidelity_observable(qc.num_qubits, qc.metadata["ancilla"]), isa)
    task = EstimatorTask(isa, obs, parameter_values(isa, theta, masked, clean))
    got = aer.run(Work({"f": task})).result()["f"].values
    want = (
        ExactExecutor()
        .run(
            Work(
                {
                    "f": EstimatorTask(
                        qc, fidelity_observable(qc.num_qubits, 0), parameter_values(qc, theta, masked, clean)
                    )
                }
            )
        )
        .result()["f"]
    )
    assert np.allclose(got, want.values, atol=1e-9)


def test_loader_angles_read_back_as_the_state_they_load():
    x = torch.randn(6, 64, dtype=torch.float64)
    x[0, :40] = 0.0
    x[1] = 0.0
    x[1, 7] = -2.0  # one negative pixel: the leaf level's signed angle
    back = state_from_angles(loader_angles(x))
    assert torch.allclose(back, x / x.norm(dim=-1, keepdim=True), atol=1e-12)


def test_make_executor_picks_by_name_and_refuses_bad_combinations(tmp_path):
    assert isinstance(make_executor("exact"), ExactExecutor)
    assert isinstance(make_executor("aer_simulator"), AerExecutor)
    assert make_executor("aer_simulator", "fake_manila").noise is not None
    assert isinstance(make_executor("fake_manila"), TwinExecutor)
    with pytest.raises(QMAEError, match="--noise-model applies to --backend aer_simulator"):
        make_executor("fake_manila", "fake_torino")
    with pytest.raises(QMAEError, match="did you mean: fake_torino"):
        make_executor("fake_torin")
    with pytest.raises(QMAEError, match="needs --shots|sampled"):
        AerExecutor(make_executor("aer_simulator", "fake_manila").noise).run(Work({}, shots=None))
    with pytest.raises(QMAEError, match="exact backend computes exact values"):
        ExactExecutor().run(Work({}, shots=10))
