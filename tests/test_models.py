"""QMAE / QAE modules: masked inputs, fidelity against Qiskit's Statevector, token gradients, patch defaults."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from qiskit.quantum_info import Statevector

from qmae_qiskit.export import bind_training
from qmae_qiskit.model.circuits import fidelity_observable, training_circuit
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.masking import default_patch_shape, mask_from_indices, patches_for_ratio, sample_mask_indices
from qmae_qiskit.train.models import QAE, QMAE, build_model, init_theta, init_token


def _images(cfg: QMAEConfig, batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, cfg.image_size, cfg.image_size, generator=g, dtype=torch.float64)


def _model(kind: str, cfg: QMAEConfig, seed: int = 0):
    theta = init_theta(cfg, "uniform", seed)
    token = init_token(cfg, "uniform", seed) if kind == "qmae" else None
    return build_model(kind, cfg, theta, token)


@pytest.mark.parametrize("kind", ["qmae", "qae"])
def test_masked_inputs_replace_exactly_the_masked_pixels(kind):
    cfg = QMAEConfig(image_size=8, patch_height=2, patch_width=4)
    images = _images(cfg, 5)
    patch_idx = sample_mask_indices(cfg, 0.25, list(range(5)), seed=3)
    model = _model(kind, cfg)
    xm = model.masked_inputs(images, patch_idx).reshape(5, 8, 8)
    mask = mask_from_indices(cfg, patch_idx)
    assert mask.sum().item() == 5 * 0.25 * 64
    assert torch.equal(xm[~mask], images[~mask])
    if kind == "qae":
        assert torch.all(xm[mask] == 0)
    else:  # every masked patch holds the token, in its row-major order
        token = model.token.detach().reshape(2, 4)
        for b in range(5):
            for p in patch_idx[b].tolist():
                r, c = divmod(p, 8 // 4)
                assert torch.equal(xm[b, 2 * r : 2 * r + 2, 4 * c : 4 * c + 4], token)


@pytest.mark.parametrize("kind", ["qmae", "qae"])
def test_forward_matches_the_circuit_statevector(kind):
    cfg = QMAEConfig(image_size=4)
    images = _images(cfg, 3, seed=1)
    patch_idx = sample_mask_indices(cfg, 0.25, [10, 11, 12], seed=0)
    model = _model(kind, cfg, seed=2)
    fid = model(images, patch_idx).detach()
    qc = training_circuit(cfg)
    obs = fidelity_observable(qc.num_qubits, qc.metadata["ancilla"])
    xm = model.masked_inputs(images, patch_idx).detach()
    for b in range(3):
        bound = bind_training(qc, model.theta.detach(), xm[b], images[b].reshape(-1))
        expected = Statevector(bound).expectation_value(obs).real
        assert fid[b].item() == pytest.approx(expected, abs=1e-12)


def test_token_gradient_matches_finite_differences():
    cfg = QMAEConfig(image_size=4)
    images = _images(cfg, 4, seed=5)
    patch_idx = sample_mask_indices(cfg, 0.25, [0, 1, 2, 3], seed=1)
    model = _model("qmae", cfg, seed=4)
    loss, _ = model.loss(images, patch_idx)
    loss.backward()
    grad = model.token.grad.clone()
    assert grad.abs().max() > 1e-4  # the token really reaches the loss
    eps = 1e-6
    with torch.no_grad():
        for i in range(cfg.n_token):
            model.token[i] += eps
            up = model.loss(images, patch_idx)[0].item()
            model.token[i] -= 2 * eps
            down = model.loss(images, patch_idx)[0].item()
            model.token[i] += eps
            assert grad[i].item() == pytest.approx((up - down) / (2 * eps), abs=1e-7)


def test_qae_has_no_token_and_qmae_needs_one():
    cfg = QMAEConfig(image_size=4)
    theta = init_theta(cfg, "normal", 0)
    assert _model("qae", cfg).token is None
    assert [n for n, _ in _model("qmae", cfg).named_parameters()] == ["theta", "token"]
    assert isinstance(build_model("qae", cfg, theta), QAE)
    with pytest.raises(ValueError):
        QMAE(cfg, theta, None)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vae", cfg, theta)
    with pytest.raises(ValueError, match="values"):
        build_model("qmae", cfg, theta, torch.ones(3))


def test_initialisations():
    cfg = QMAEConfig(image_size=8)
    u = init_theta(cfg, "uniform", 0)
    assert u.dtype == torch.float64 and u.shape == (cfg.n_theta,)
    assert 0 <= u.min() and u.max() < 2 * math.pi and u.std() > 1.0
    assert torch.equal(u, init_theta(cfg, "uniform", 0)) and not torch.equal(u, init_theta(cfg, "uniform", 1))
    assert init_theta(cfg, "normal", 0, scale=0.01).abs().max() < 0.1
    images = _images(cfg, 20)
    mean = init_token(cfg, "mean", 0, images)
    expected = images.mean(0).reshape(2, 4, 2, 4).mean(dim=(0, 2)).reshape(-1)
    assert torch.allclose(mean, expected)
    assert (init_token(cfg, "uniform", 0) > 0).all()
    with pytest.raises(ValueError, match="non-zero"):
        init_token(cfg, "constant", 0, value=0.0)


@pytest.mark.parametrize(
    "ratio,size", [(0.125, 16), (0.25, 16), (0.5, 16), (0.75, 16), (0.25, 8), (0.125, 4), (1 / 16, 16)]
)
def test_default_patch_shape_makes_the_ratio(ratio, size):
    hp, wp = default_patch_shape(size, ratio)
    cfg = QMAEConfig(image_size=size, patch_height=hp, patch_width=wp)
    count = patches_for_ratio(cfg, ratio)
    mask = mask_from_indices(cfg, sample_mask_indices(cfg, ratio, [7], seed=0))
    assert mask.float().mean().item() == pytest.approx(ratio)
    assert count >= 1
    if ratio in (0.25, 0.5) and size == 16:
        assert (hp, wp) == (8, 8)  # the paper's 8x8 patches


def test_impossible_ratio_is_one_clear_error():
    with pytest.raises(ValueError, match="mask ratio 0.3"):
        default_patch_shape(16, 0.3)
    with pytest.raises(ValueError, match="use one of"):
        patches_for_ratio(QMAEConfig(image_size=16), 0.125)


def test_masks_are_the_same_for_qmae_and_qae_and_reproducible():
    cfg = QMAEConfig(image_size=16)
    a = sample_mask_indices(cfg, 0.5, [3, 9, 4000], seed=11, epoch=2)
    b = sample_mask_indices(cfg, 0.5, [4000, 3], seed=11, epoch=2)
    assert torch.equal(a[[2, 0]], b)
    qm, qa = _model("qmae", cfg), _model("qae", cfg)
    images = _images(cfg, 3)
    diff_m = qm.masked_inputs(images, a) != images.reshape(3, -1)
    diff_a = qa.masked_inputs(images, a) != images.reshape(3, -1)
    assert np.array_equal(diff_m.numpy(), diff_a.numpy())


@pytest.mark.parametrize("n", [4, 6])
def test_fast_unitary_equals_the_encoder_circuit_operator(n):
    from qiskit.quantum_info import Operator

    from qmae_qiskit.model.ansatz import encoder_circuit
    from qmae_qiskit.simulate.exact import unitary

    theta = torch.rand(15 * n * (n - 1) // 2, dtype=torch.float64, generator=torch.Generator().manual_seed(n)) * 6
    qc = encoder_circuit(n)
    expected = Operator(qc.assign_parameters(dict(zip(qc.parameters, theta.tolist())))).data
    assert np.abs(unitary(theta, n).numpy() - expected).max() < 1e-12


@pytest.mark.parametrize("batch", [3, 9])  # 2B < 2^n: blocks applied to the images; else U built once
def test_both_exact_routes_match_statevector_and_each_other(batch):
    from qmae_qiskit.simulate.exact import fidelity, fidelity_reference

    cfg = QMAEConfig(image_size=4)
    g = torch.Generator().manual_seed(batch)
    theta = (torch.rand(cfg.n_theta, generator=g, dtype=torch.float64) * 6).requires_grad_()
    x = torch.rand(batch, 16, generator=g, dtype=torch.float64).requires_grad_()
    y = torch.rand(batch, 16, generator=g, dtype=torch.float64)
    fid = fidelity(theta, x, y, cfg)
    qc = training_circuit(cfg)
    obs = fidelity_observable(qc.num_qubits, qc.metadata["ancilla"])
    for b in (0, batch - 1):
        sv = Statevector(bind_training(qc, theta.detach(), x[b].detach(), y[b])).expectation_value(obs).real
        assert fid[b].item() == pytest.approx(sv, abs=1e-12)
    ref = fidelity_reference(theta, x, y, cfg)
    g1 = torch.autograd.grad(fid.sum(), [theta, x])
    g2 = torch.autograd.grad(ref.sum(), [theta, x])
    assert torch.allclose(g1[0], g2[0], atol=1e-12, rtol=0) and torch.allclose(g1[1], g2[1], atol=1e-12, rtol=0)


def test_float32_precision_is_close_and_keeps_float64_parameters():
    from qmae_qiskit.train.models import ExactFidelity

    cfg = QMAEConfig(image_size=8)
    images = _images(cfg, 70)  # the U route
    idx = sample_mask_indices(cfg, 0.25, list(range(70)), seed=0)
    theta, token = init_theta(cfg, "uniform", 0), init_token(cfg, "uniform", 0)
    m64 = build_model("qmae", cfg, theta, token)
    m32 = build_model("qmae", cfg, theta, token, backend=ExactFidelity(cfg, "float32"))
    f64, f32 = m64(images, idx), m32(images, idx)
    assert f32.dtype == torch.float64 and 0 < (f64 - f32).abs().max() < 1e-5
    f32.sum().backward()
    assert m32.theta.grad.dtype == torch.float64
    with pytest.raises(ValueError, match="precision"):
        ExactFidelity(cfg, "float16")
