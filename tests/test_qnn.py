"""aer_simulator backend: EstimatorQNN + TorchConnector agrees with the exact simulator (n = 4 data qubits)."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from qmae_qiskit.cli import main
from qmae_qiskit.data import load_mnist
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.masking import sample_mask_indices
from qmae_qiskit.simulate import exact
from qmae_qiskit.train.models import build_model, init_theta
from qmae_qiskit.train.qnn import AerFidelity, resolve_gradient
from qmae_qiskit.train.runs import RunSettings, read_metrics
from qmae_qiskit.train.training import TrainOptions, select_data, train

CFG = QMAEConfig(image_size=4)  # n = 4: a 10-qubit SWAP-test circuit, 90 weights + 30 + 15 inputs


@pytest.fixture(scope="module")
def mnist4(mnist_dir):
    return load_mnist(mnist_dir, train=True, image_size=4, limit=50)


@pytest.fixture(scope="module")
def aer_exact():
    return AerFidelity(CFG, seed=0, gradient="param-shift", input_gradients=False)


def test_first_training_steps_equal_on_aer_and_exact(tmp_path, mnist4):
    """Same seed and data: the losses of the first steps agree to 1e-6 (TorchConnector works in float32)."""
    common = dict(
        config=CFG,
        model="qmae",
        mask_ratio=0.25,
        epochs=1,
        batch_size=1,
        train_samples=3,
        lr=0.05,
        seed=5,
        checkpoint_every=1,
        gradient="auto",
    )
    s_aer = RunSettings(backend="aer_simulator", **common)
    s_exact = RunSettings(backend="exact", **common)
    data = select_data(mnist4, s_aer)
    a = train(s_aer, tmp_path / "aer", data, TrainOptions(progress=False, plot=False))
    e = train(s_exact, tmp_path / "exact", data, TrainOptions(progress=False, plot=False))
    la = [r["loss"] for r in read_metrics(tmp_path / "aer")]
    le = [r["loss"] for r in read_metrics(tmp_path / "exact")]
    assert len(la) == len(le) == 3
    assert la == pytest.approx(le, abs=1e-6)
    assert le[0] != le[1] != le[2]  # the parameters really moved between the compared steps
    assert torch.allclose(a.model.theta, e.model.theta, atol=1e-6, rtol=0)
    assert torch.allclose(a.model.token, e.model.token, atol=1e-6, rtol=0)


def test_qae_forward_and_param_shift_gradient_match_exact(aer_exact):
    """Parameter shift on Aer (an independent route from the adjoint sweep) against torch autograd."""
    g = torch.Generator().manual_seed(2)
    images = torch.rand(1, 4, 4, generator=g, dtype=torch.float64)
    idx = sample_mask_indices(CFG, 0.5, [1], seed=0)
    theta = init_theta(CFG, "uniform", 3)
    m_exact = build_model("qae", CFG, theta)
    m_aer = build_model("qae", CFG, theta, backend=aer_exact)
    fe, fa = m_exact(images, idx), m_aer(images, idx)
    assert torch.allclose(fa, fe.detach(), atol=1e-6, rtol=0)
    fe.sum().backward()
    fa.sum().backward()
    assert m_aer.theta.grad.abs().max() > 1e-3
    assert torch.allclose(m_aer.theta.grad, m_exact.theta.grad, atol=2e-6, rtol=0)


def test_plain_tensor_theta_evaluates_without_gradients(aer_exact):
    g = torch.Generator().manual_seed(4)
    x, y = torch.rand(3, 16, generator=g, dtype=torch.float64), torch.rand(3, 16, generator=g, dtype=torch.float64)
    theta = init_theta(CFG, "uniform", 1)
    got = aer_exact(theta, x, y)
    assert got.dtype == torch.float64 and not got.requires_grad
    assert torch.allclose(got, exact.fidelity(theta, x, y, CFG), atol=1e-9, rtol=0)


def test_shots_give_sampled_estimates_near_the_exact_value():
    g = torch.Generator().manual_seed(6)
    x, y = torch.rand(8, 16, generator=g, dtype=torch.float64), torch.rand(8, 16, generator=g, dtype=torch.float64)
    theta = init_theta(CFG, "uniform", 2)
    ref = exact.fidelity(theta, x, y, CFG)
    sampled = AerFidelity(CFG, shots=400, seed=1, input_gradients=False)
    assert sampled.gradient_kind == "param-shift"
    got = sampled(theta, x, y)
    err = (got - ref).abs()
    assert err.max() > 1e-6  # really sampled
    assert err.max() < 5 / 400**0.5  # 5 sigma
    again = AerFidelity(CFG, shots=400, seed=1, input_gradients=False)(theta, x, y)
    assert torch.equal(got, again)  # seeded


def test_gradient_choice():
    assert resolve_gradient("param-shift", True) == "param-shift"
    assert resolve_gradient("auto", False) == "param-shift"
    assert resolve_gradient("auto", True) == "adjoint"
    with pytest.raises(QMAEError, match="noiseless"):
        resolve_gradient("adjoint", False)
    with pytest.raises(QMAEError, match="unknown gradient"):
        resolve_gradient("finite", True)


def test_cli_unknown_noise_model_is_one_line(tmp_path, mnist_dir):
    res = CliRunner().invoke(
        main,
        [
            "train",
            "--backend",
            "aer_simulator",
            "--image-size",
            "4",
            "--train-images",
            "2",
            "--noise-model",
            "fake_nowhere",
            "--data-dir",
            str(mnist_dir),
            "--out",
            str(tmp_path),
            "--no-progress",
        ],
    )
    assert res.exit_code == 2, res.output
    assert res.output.startswith("Error:") or "Error:" in res.output.splitlines()[-1]
    assert "fake_nowhere" in res.output.splitlines()[-1]
    assert not any(tmp_path.iterdir())  # nothing written


def test_aer_run_killed_and_resumed_ends_like_an_uninterrupted_one(tmp_path, mnist4, train_killed_at):
    s = RunSettings(
        backend="aer_simulator",
        config=CFG,
        model="qmae",
        epochs=3,
        batch_size=2,
        train_samples=4,
        val_samples=2,
        lr=0.05,
        seed=9,
        checkpoint_every=3,
    )
    data = select_data(mnist4, s)
    full = train(s, tmp_path / "full", data, TrainOptions(progress=False, plot=False))
    train_killed_at(s, tmp_path / "cut", data, 4)
    resumed = train(s, tmp_path / "cut", data, TrainOptions(progress=False, plot=False, resume=True))
    assert resumed.start_step == 3 and resumed.steps == 6
    assert torch.equal(resumed.model.theta, full.model.theta) and torch.equal(resumed.model.token, full.model.token)
    assert [r["loss"] for r in read_metrics(tmp_path / "cut")] == [r["loss"] for r in read_metrics(tmp_path / "full")]


def test_noiseless_aer_runs_the_built_circuit_and_a_noisy_one_its_basis_gates():
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel, depolarizing_error

    from qmae_qiskit.model.circuits import training_circuit
    from qmae_qiskit.train.qnn import transpile_training

    cfg = QMAEConfig(image_size=4)
    built = training_circuit(cfg)
    plain = transpile_training(cfg, AerSimulator(method="statevector"))
    assert plain.circuit.count_ops() == built.count_ops() and plain.circuit.layout is None
    assert len(plain.weights) == cfg.n_theta and len(plain.inputs) == 2 * cfg.n_loader_angles
    noise = NoiseModel(basis_gates=["rz", "sx", "x", "cx"])
    noise.add_all_qubit_quantum_error(depolarizing_error(0.001, 2), ["cx"])
    noisy = transpile_training(cfg, AerSimulator(noise_model=noise, basis_gates=noise.basis_gates))
    assert set(noisy.circuit.count_ops()) <= {"rz", "sx", "x", "cx", "barrier"}
    assert len(noisy.weights) == cfg.n_theta
