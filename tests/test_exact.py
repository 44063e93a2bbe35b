"""The exact simulator equals the built circuit: Aer's <Z>, Qiskit's density matrices, parameter shift."""

import numpy as np
import pytest
import torch
from qiskit.quantum_info import DensityMatrix, partial_trace
from qiskit_aer.primitives import EstimatorV2

from qmae_qiskit.export import bind_training
from qmae_qiskit.model.circuits import fidelity_observable, parameter_groups, reconstruction_circuit, training_circuit
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.loader import loader_angles
from qmae_qiskit.model.masking import grid_shape, insert_token
from qmae_qiskit.simulate import exact


def _random_case(cfg: QMAEConfig, rng: torch.Generator, batch: int = 1):
    theta = torch.rand(cfg.n_theta, generator=rng, dtype=torch.float64) * 2 * np.pi
    token = torch.rand(cfg.n_token, generator=rng, dtype=torch.float64)
    clean = torch.rand(batch, cfg.image_size, cfg.image_size, generator=rng, dtype=torch.float64)
    clean[clean < 0.3] = 0.0  # MNIST-like zeros
    rows, cols = grid_shape(cfg)
    patch = torch.randint(rows * cols, (batch, 1), generator=rng)
    masked = insert_token(clean, patch, cfg, token)
    return theta, masked.reshape(batch, -1), clean.reshape(batch, -1)


def _aer_z(circuits, num_qubits):
    est = EstimatorV2(options={"default_precision": 0, "backend_options": {"method": "statevector"}})
    obs = fidelity_observable(num_qubits)
    return np.array([float(r.data.evs) for r in est.run([(c, obs) for c in circuits]).result()])


@pytest.mark.parametrize("L, cases", [(4, 6), (16, 2)])
def test_circuit_expectation_equals_exact(L, cases):
    cfg = QMAEConfig(image_size=L)
    qc = training_circuit(cfg)
    rng = torch.Generator().manual_seed(L)
    bound, want = [], []
    for _ in range(cases):
        theta, xm, xc = _random_case(cfg, rng)
        want.append(float(exact.fidelity(theta, xm, xc, cfg)[0]))
        bound.append(bind_training(qc, theta, xm[0], xc[0]))
    np.testing.assert_allclose(_aer_z(bound, qc.num_qubits), want, atol=1e-9, rtol=0)
    assert np.ptp(want) > 1e-3 or cases == 1  # the cases really differ


def test_reset_variant_equals_exact_with_two_trash_qubits():
    cfg = QMAEConfig(image_size=4, latent_qubits=2, trash_reset="reset")
    qc = training_circuit(cfg)
    rng = torch.Generator().manual_seed(3)
    theta, xm, xc = _random_case(cfg, rng)
    rho = DensityMatrix(bind_training(qc, theta, xm[0], xc[0]))  # Qiskit applies the mid-circuit resets exactly
    got = rho.expectation_value(fidelity_observable(qc.num_qubits)).real
    assert got == pytest.approx(float(exact.fidelity(theta, xm, xc, cfg)[0]), abs=1e-9)


@pytest.mark.parametrize("kw", [{"image_size": 4}, {"image_size": 8, "latent_qubits": 4}])
def test_reconstruction_equals_decoded_density_matrix_diagonal(kw):
    cfg = QMAEConfig(**kw)
    qc = reconstruction_circuit(cfg, measure=False)
    rng = torch.Generator().manual_seed(5)
    theta, xm, _ = _random_case(cfg, rng)
    g = parameter_groups(qc)
    bound = qc.assign_parameters(
        dict(zip(g["theta"], theta.tolist())) | dict(zip(g["xm"], loader_angles(xm[0]).tolist()))
    )
    rho = partial_trace(DensityMatrix(bound), qc.metadata["fresh_qubits"])  # data qubits remain, in order
    probs = exact.reconstruct(theta, xm, cfg)[0].numpy()
    np.testing.assert_allclose(np.real(np.diag(rho.data)), probs, atol=1e-12)
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)


def test_batched_fidelity_equals_one_by_one():
    cfg = QMAEConfig(image_size=8)
    theta, xm, xc = _random_case(cfg, torch.Generator().manual_seed(9), batch=7)
    batched = exact.fidelity(theta, xm, xc, cfg)
    single = torch.cat([exact.fidelity(theta, xm[i : i + 1], xc[i : i + 1], cfg) for i in range(7)])
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-13)


def test_zero_angles_make_each_block_a_swap():
    """With theta = 0 each block is CX(a,b) CX(b,a) CX(a,b) = SWAP, so U(0) is the permutation of the swap network."""
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import Operator

    from qmae_qiskit.model.ansatz import encoder_unitary, pair_order

    swaps = QuantumCircuit(4)
    for a, b in pair_order(4):
        swaps.swap(a, b)
    U0 = encoder_unitary(torch.zeros(QMAEConfig(image_size=4).n_theta, dtype=torch.float64), 4)
    np.testing.assert_allclose(U0.numpy(), Operator(swaps).data, atol=1e-12)


def test_all_zero_image_is_rejected():
    cfg = QMAEConfig(image_size=4)
    with pytest.raises(ValueError, match="all zero"):
        exact.fidelity(torch.zeros(cfg.n_theta, dtype=torch.float64), torch.zeros(1, 16), torch.ones(1, 16), cfg)


def test_exact_gradients_match_finite_differences():
    cfg = QMAEConfig(image_size=4)
    theta, xm, xc = _random_case(cfg, torch.Generator().manual_seed(11), batch=3)
    token = torch.rand(cfg.n_token, dtype=torch.float64) + 0.1
    patch = torch.tensor([[1], [0], [3]])
    clean = xc.reshape(3, 4, 4)

    def f(th, tok):
        m = insert_token(clean, patch, cfg, tok).reshape(3, -1)
        return exact.loss(th, m, xc, cfg)

    th = theta.clone().requires_grad_(True)
    tok = token.clone().requires_grad_(True)
    g_th, g_tok = torch.autograd.grad(f(th, tok), (th, tok))
    eps = 1e-6
    rng = np.random.default_rng(0)
    for i in rng.choice(cfg.n_theta, 12, replace=False):
        e = torch.zeros_like(theta)
        e[i] = eps
        fd = (f(theta + e, token) - f(theta - e, token)) / (2 * eps)
        assert float(g_th[i]) == pytest.approx(float(fd), abs=1e-8)
    for i in range(cfg.n_token):
        e = torch.zeros_like(token)
        e[i] = eps
        fd = (f(theta, token + e) - f(theta, token - e)) / (2 * eps)
        assert float(g_tok[i]) == pytest.approx(float(fd), abs=1e-8)
    assert g_tok.abs().max() > 1e-6  # the token really gets a gradient


def test_circuit_weight_gradient_by_parameter_shift_matches_exact():
    from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient

    cfg = QMAEConfig(image_size=4)
    qc = training_circuit(cfg)
    theta, xm, xc = _random_case(cfg, torch.Generator().manual_seed(13))
    g = parameter_groups(qc)
    values = dict(zip(g["theta"], theta.tolist()))
    values |= dict(zip(g["xm"], loader_angles(xm[0]).tolist())) | dict(zip(g["xr"], loader_angles(xc[0]).tolist()))
    vec = [values[p] for p in qc.parameters]
    est = EstimatorV2(options={"default_precision": 0})
    grad = ParamShiftEstimatorGradient(est).run([qc], [fidelity_observable(qc.num_qubits)], [vec], [g["theta"]])
    shift = np.asarray(grad.result().gradients[0])
    th = theta.clone().requires_grad_(True)
    auto = torch.autograd.grad(exact.fidelity(th, xm, xc, cfg).sum(), th)[0].numpy()
    np.testing.assert_allclose(shift, auto, atol=1e-9)
