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


# ------------------------------------------------------------------------------- the training kernel (kernel.py)
@pytest.mark.parametrize("n", [3, 4, 6, 8])
def test_kernel_unitaries_equal_the_encoder_circuit(n):
    from qiskit.quantum_info import Operator

    from qmae_qiskit.model.ansatz import encoder_circuit
    from qmae_qiskit.simulate import kernel

    theta = torch.rand(15 * n * (n - 1) // 2, dtype=torch.float64, generator=torch.Generator().manual_seed(n)) * 7
    qc = encoder_circuit(n)
    want = torch.from_numpy(Operator(qc.assign_parameters(dict(zip(qc.parameters, theta.tolist())))).data)
    assert (kernel.unitary(theta, n) - want).abs().max() < 1e-12
    R = kernel.rotated_transpose(theta, n)  # R[i, (b_0, b_{n-1}, ..., b_1)] = U[b, i]
    for b in (0, 1, 5, (1 << n) - 2):
        rot = ((b & 1) << (n - 1)) | (b >> 1)
        assert (R[:, rot] - want[b]).abs().max() < 1e-12
    assert (kernel.rotate_transpose(want) - R).abs().max() < 1e-12


def _grads(f, inputs):
    w = torch.linspace(0.5, 1.5, f.shape[0], dtype=torch.float64)  # a loss that weighs every image differently
    return torch.autograd.grad((f * w).sum(), inputs)


@pytest.mark.parametrize(
    "kw,batch", [({"image_size": 8}, 40), ({"image_size": 8, "latent_qubits": 4}, 33), ({"image_size": 16}, 130)]
)
def test_kernel_fidelity_and_every_gradient_equal_the_reference(kw, batch):
    cfg = QMAEConfig(**kw)
    g = torch.Generator().manual_seed(batch)
    theta = (torch.rand(cfg.n_theta, dtype=torch.float64, generator=g) * 6).requires_grad_()
    x = torch.rand(batch, cfg.dim, dtype=torch.float64, generator=g).requires_grad_()
    y = torch.rand(batch, cfg.dim, dtype=torch.float64, generator=g).requires_grad_()
    got, want = exact.fidelity(theta, x, y, cfg), exact.fidelity_reference(theta, x, y, cfg)
    assert 2 * batch >= cfg.dim  # the U route
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    for a, b in zip(_grads(got, (theta, x, y)), _grads(want, (theta, x, y))):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)
    U = exact.unitary(theta.detach(), cfg.n_qubits)  # a prebuilt U gives the same values
    torch.testing.assert_close(exact.fidelity(theta, x, y, cfg, U), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "kw,ratio,batch",
    [
        ({"image_size": 4}, 0.25, 5),  # small batch: blocks applied to the states
        ({"image_size": 8}, 0.25, 40),
        ({"image_size": 8, "patch_height": 2, "patch_width": 4}, 0.5, 36),
        ({"image_size": 16, "patch_height": 4, "patch_width": 8}, 0.125, 140),
        ({"image_size": 16}, 0.5, 128),
    ],
)
def test_masked_fidelity_gives_the_token_gradient_of_the_dense_path(kw, ratio, batch):
    from qmae_qiskit.model.masking import sample_mask_indices

    cfg = QMAEConfig(**kw)
    g = torch.Generator().manual_seed(batch)
    theta = (torch.rand(cfg.n_theta, dtype=torch.float64, generator=g) * 6).requires_grad_()
    token = (torch.rand(cfg.n_token, dtype=torch.float64, generator=g) + 0.1).requires_grad_()
    images = torch.rand(batch, cfg.image_size, cfg.image_size, dtype=torch.float64, generator=g)
    patch = sample_mask_indices(cfg, ratio, torch.arange(batch), 5)
    got = exact.masked_fidelity(theta, images, patch, token, cfg)
    xm = insert_token(images, patch, cfg, token).reshape(batch, -1)
    want = exact.fidelity_reference(theta, xm, images.reshape(batch, -1), cfg)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    g_got, g_want = _grads(got, (theta, token)), _grads(want, (theta, token))
    assert g_want[1].abs().max() > 1e-4  # the token matters
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


def test_masked_fidelity_token_gradient_matches_finite_differences():
    from qmae_qiskit.model.masking import sample_mask_indices

    cfg = QMAEConfig(image_size=8)
    g = torch.Generator().manual_seed(1)
    theta = torch.rand(cfg.n_theta, dtype=torch.float64, generator=g) * 6
    token = torch.rand(cfg.n_token, dtype=torch.float64, generator=g) + 0.1
    images = torch.rand(40, 8, 8, dtype=torch.float64, generator=g)
    patch = sample_mask_indices(cfg, 0.25, torch.arange(40), 0)
    loss = lambda tok: (1 - exact.masked_fidelity(theta, images, patch, tok, cfg)).mean()
    tok = token.clone().requires_grad_(True)
    grad = torch.autograd.grad(loss(tok), tok)[0]
    eps = 1e-6
    for i in (0, 3, cfg.n_token - 1):
        e = torch.zeros_like(token)
        e[i] = eps
        fd = (loss(token + e) - loss(token - e)) / (2 * eps)
        assert float(grad[i]) == pytest.approx(float(fd), abs=1e-8)
