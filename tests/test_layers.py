"""Ansatz layers (L = 2): the same 1e-9 equalities as one layer, against independent references.

Exact path vs Aer EstimatorV2 (default_precision=0) and Qiskit Statevector / DensityMatrix; the adjoint gradient vs
parameter shift and finite differences; the Aer training backend vs the exact path; depth stages that add up.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from qiskit import transpile
from qiskit.quantum_info import DensityMatrix, Operator, Statevector, partial_trace
from qiskit_aer import AerSimulator
from qiskit_aer.primitives import EstimatorV2
from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient

from qmae_qiskit.cli import main
from qmae_qiskit.export import bind_training
from qmae_qiskit.model.ansatz import BLOCK_PARAMS, encoder_circuit, pair_order
from qmae_qiskit.model.circuits import (
    MASKED,
    REFERENCE,
    THETA,
    fidelity_observable,
    parameter_groups,
    reconstruction_circuit,
    training_circuit,
)
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.loader import loader_angles
from qmae_qiskit.model.masking import grid_shape, insert_token
from qmae_qiskit.simulate import exact
from qmae_qiskit.simulate.adjoint import AdjointEstimatorGradient, adjoint_gradient

TOL = 1e-9


def _case(cfg: QMAEConfig, seed: int, batch: int = 1):
    g = torch.Generator().manual_seed(seed)
    theta = torch.rand(cfg.n_theta, generator=g, dtype=torch.float64) * 2 * np.pi
    token = torch.rand(cfg.n_token, generator=g, dtype=torch.float64)
    clean = torch.rand(batch, cfg.image_size, cfg.image_size, generator=g, dtype=torch.float64)
    clean[clean < 0.3] = 0.0
    rows, cols = grid_shape(cfg)
    patch = torch.randint(rows * cols, (batch, 1), generator=g)
    masked = insert_token(clean, patch, cfg, token)
    return theta, token, masked.reshape(batch, -1), clean.reshape(batch, -1), clean, patch


def _values(qc, theta, xm, xc) -> np.ndarray:
    groups = parameter_groups(qc)
    index = {p: i for i, p in enumerate(qc.parameters)}
    out = np.zeros((len(xm), qc.num_parameters))
    for b in range(len(xm)):
        for name, vals in ((THETA, theta), (MASKED, loader_angles(xm[b])), (REFERENCE, loader_angles(xc[b]))):
            out[b, [index[p] for p in groups[name]]] = vals.detach().numpy()
    return out


# ------------------------------------------------------------------------------------------------ config
def test_config_counts_and_records_without_the_field_are_one_layer():
    cfg = QMAEConfig(image_size=8, layers=3)
    assert cfg.n_theta_layer == 15 * 15 and cfg.n_theta == 3 * 15 * 15
    assert cfg.model_dump()["layers"] == 3
    one = QMAEConfig(image_size=8)
    assert "layers" not in one.model_dump()  # the paper's records stay byte-identical
    assert QMAEConfig(**one.model_dump()).layers == 1
    assert QMAEConfig(**cfg.model_dump()) == cfg
    with pytest.raises(ValueError, match="layers must be a positive"):
        QMAEConfig(image_size=4, layers=0)


def test_encoder_parameter_names_run_on_layer_by_layer():
    n, layers = 4, 2
    qc = encoder_circuit(n, "theta", layers)
    P = len(pair_order(n))
    assert qc.num_parameters == layers * P * BLOCK_PARAMS
    assert [p.name for p in qc.parameters] == sorted((f"theta[{i}]" for i in range(qc.num_parameters)), key=len)
    # the first gate of layer 2 is block 0's RZ on pair (0, 1) with theta[15 P]
    per_block = len(encoder_circuit(2, "t").data)
    first = qc.data[P * per_block]
    assert first.operation.name == "rz" and str(first.operation.params[0]) == f"theta[{BLOCK_PARAMS * P}]"
    assert qc.find_bit(first.qubits[0]).index == 0


@pytest.mark.parametrize("n", [4, 6])
def test_model_unitary_equals_the_circuit_operator_and_the_reference(n):
    L = {4: 4, 6: 8}[n]
    cfg = QMAEConfig(image_size=L, layers=2)
    theta = torch.rand(cfg.n_theta, generator=torch.Generator().manual_seed(n), dtype=torch.float64) * 6
    op = Operator(encoder_circuit(n, "theta", 2).assign_parameters(theta.numpy())).data
    U = exact.model_unitary(theta, cfg).numpy()
    np.testing.assert_allclose(U, op, atol=1e-12)
    from qmae_qiskit.model.ansatz import encoder_unitary

    np.testing.assert_allclose(encoder_unitary(theta, n, 2).numpy(), op, atol=1e-12)
    first, second = theta[: cfg.n_theta_layer], theta[cfg.n_theta_layer :]
    np.testing.assert_allclose((exact.unitary(second, n) @ exact.unitary(first, n)).numpy(), op, atol=1e-12)
    assert not np.allclose(exact.unitary(first, n).numpy(), op, atol=1e-3)  # the second layer matters


# ------------------------------------------------------------------------------------------------ exact path
@pytest.mark.parametrize("ansatz", ["all-pairs", "brickwork"])
@pytest.mark.parametrize("L, cases", [(4, 4), (8, 2)])
def test_exact_fidelity_equals_aer_estimator(L, cases, ansatz):
    cfg = QMAEConfig(image_size=L, layers=2, ansatz=ansatz)
    qc = training_circuit(cfg)
    assert len(parameter_groups(qc)[THETA]) == cfg.n_theta
    bound, want = [], []
    for c in range(cases):
        theta, _, xm, xc, _, _ = _case(cfg, 100 * L + c)
        want.append(float(exact.fidelity(theta, xm, xc, cfg)[0]))
        bound.append(bind_training(qc, theta, xm[0], xc[0]))
    est = EstimatorV2(options={"default_precision": 0, "backend_options": {"method": "statevector"}})
    obs = fidelity_observable(qc.num_qubits)
    got = [float(r.data.evs) for r in est.run([(b, obs) for b in bound]).result()]
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
    assert np.ptp(want) > 1e-3


@pytest.mark.parametrize("L", [4, 8])
def test_both_exact_routes_and_the_reference_agree(L):
    cfg = QMAEConfig(image_size=L, layers=2)
    theta, _, xm, xc, _, _ = _case(cfg, L, batch=9)
    small = torch.cat([exact.fidelity(theta, xm[i : i + 1], xc[i : i + 1], cfg) for i in range(9)])  # blocks route
    big = exact.fidelity(theta, xm, xc, cfg, exact.model_unitary(theta, cfg))  # U route
    ref = exact.fidelity_reference(theta, xm, xc, cfg)
    torch.testing.assert_close(small, big, atol=1e-12, rtol=0)
    torch.testing.assert_close(ref, big, atol=1e-12, rtol=0)


def test_reconstruction_equals_the_decoded_density_matrix():
    cfg = QMAEConfig(image_size=4, layers=2)
    qc = reconstruction_circuit(cfg, measure=False)
    theta, _, xm, _, _, _ = _case(cfg, 5)
    g = parameter_groups(qc)
    bound = qc.assign_parameters(
        dict(zip(g["theta"], theta.tolist())) | dict(zip(g["xm"], loader_angles(xm[0]).tolist()))
    )
    rho = partial_trace(DensityMatrix(bound), qc.metadata["fresh_qubits"])
    np.testing.assert_allclose(np.real(np.diag(rho.data)), exact.reconstruct(theta, xm, cfg)[0].numpy(), atol=1e-12)


def test_exact_gradient_equals_parameter_shift_on_both_layers():
    cfg = QMAEConfig(image_size=4, layers=2)
    qc = training_circuit(cfg)
    theta, _, xm, xc, _, _ = _case(cfg, 13)
    g = parameter_groups(qc)
    ask = [g[THETA][i] for i in (0, 7, 89, 90, 100, 179)]  # both layers
    vec = _values(qc, theta, xm, xc)
    est = EstimatorV2(options={"default_precision": 0})
    shift = ParamShiftEstimatorGradient(est).run([qc], [fidelity_observable(qc.num_qubits)], vec, [ask])
    th = theta.clone().requires_grad_(True)
    auto = torch.autograd.grad(exact.fidelity(th, xm, xc, cfg).sum(), th)[0].numpy()
    np.testing.assert_allclose(shift.result().gradients[0], auto[[0, 7, 89, 90, 100, 179]], atol=TOL)


# ------------------------------------------------------------------------------------------------ adjoint
@pytest.mark.parametrize("L", [4, 8])
def test_adjoint_weights_match_exact_autograd(L):
    cfg = QMAEConfig(image_size=L, layers=2)
    qc = transpile(training_circuit(cfg), AerSimulator(), optimization_level=1, seed_transpiler=1)
    obs = fidelity_observable(qc.num_qubits).apply_layout(qc.layout)
    theta, _, xm, xc, _, _ = _case(cfg, 20 + L, batch=2)
    ev, grad = adjoint_gradient(qc, obs, _values(qc, theta, xm, xc))
    cols = [list(qc.parameters).index(p) for p in parameter_groups(qc)[THETA]]
    for b in range(2):
        th = theta.clone().requires_grad_(True)
        fid = exact.fidelity(th, xm[b : b + 1], xc[b : b + 1], cfg)[0]
        fid.backward()
        assert abs(ev[b] - fid.item()) < 1e-12
        np.testing.assert_allclose(grad[b, cols], th.grad.numpy(), atol=TOL, rtol=0)


@pytest.mark.parametrize("L", [4, 8])
def test_adjoint_matches_parameter_shift_on_weights_of_both_layers_and_inputs(L):
    cfg = QMAEConfig(image_size=L, layers=2)
    qc = training_circuit(cfg)
    obs = fidelity_observable(qc.num_qubits)
    theta, _, xm, xc, _, _ = _case(cfg, 30 + L)
    values = _values(qc, theta, xm, xc)
    g = parameter_groups(qc)
    P = cfg.n_theta_layer
    rng = np.random.default_rng(L)
    ask = [g[THETA][i] for i in [*rng.choice(P, 3, replace=False), *(P + rng.choice(P, 3, replace=False))]]
    ask += [g[MASKED][i] for i in rng.choice(len(g[MASKED]), 3, replace=False)]
    ask += [g[REFERENCE][i] for i in rng.choice(len(g[REFERENCE]), 2, replace=False)]
    est = EstimatorV2(options={"default_precision": 0})
    got = AdjointEstimatorGradient(est).run([qc], [obs], values, [ask]).result().gradients[0]
    aer_qc = transpile(qc, AerSimulator(), optimization_level=0)
    shift = ParamShiftEstimatorGradient(est).run([aer_qc], [obs], values, [ask]).result().gradients[0]
    np.testing.assert_allclose(got, shift, atol=TOL, rtol=0)


def test_adjoint_matches_finite_differences_on_statevector():
    cfg = QMAEConfig(image_size=4, layers=2)
    qc = training_circuit(cfg)
    obs = fidelity_observable(qc.num_qubits)
    theta, _, xm, xc, _, _ = _case(cfg, 41)
    values = _values(qc, theta, xm, xc)[0]
    _, grad = adjoint_gradient(qc, obs, values[None])
    h = 2.5e-4
    cols = [list(qc.parameters).index(p) for p in parameter_groups(qc)[THETA]]
    pick = [cols[i] for i in (3, 50, 95, 170)]  # two per layer

    def f(v):
        return float(Statevector(qc.assign_parameters(v)).expectation_value(obs).real)

    for c in pick:
        e = np.zeros_like(values)
        e[c] = h
        fd = (f(values - 2 * e) - 8 * f(values - e) + 8 * f(values + e) - f(values + 2 * e)) / (12 * h)
        assert abs(grad[0, c] - fd) < TOL


# ------------------------------------------------------------------------------------------------ Aer path
def test_aer_training_backend_equals_exact_with_two_layers():
    from qmae_qiskit.train.qnn import AerFidelity

    cfg = QMAEConfig(image_size=4, layers=2)
    theta, token, _, _, clean, patch = _case(cfg, 50, batch=3)
    aer = AerFidelity(cfg, seed=0, gradient="adjoint", input_gradients=True)
    th_a = torch.nn.Parameter(theta.clone())
    tok_a = token.clone().requires_grad_(True)
    xm = insert_token(clean, patch, cfg, tok_a).reshape(3, -1)
    fa = aer(th_a, xm, clean.reshape(3, -1))
    fa.sum().backward()
    th_e = theta.clone().requires_grad_(True)
    tok_e = token.clone().requires_grad_(True)
    fe = exact.fidelity(th_e, insert_token(clean, patch, cfg, tok_e).reshape(3, -1), clean.reshape(3, -1), cfg)
    fe.sum().backward()
    # TorchConnector hands back float32: agreement to float32 rounding, not 1e-9 (the 1e-9 checks are above)
    torch.testing.assert_close(fa.detach(), fe.detach(), atol=1e-6, rtol=0)
    torch.testing.assert_close(th_a.grad, th_e.grad, atol=1e-5, rtol=0)
    torch.testing.assert_close(tok_a.grad, tok_e.grad, atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------------------ depth + CLI
def test_depth_stages_add_up_and_the_encoder_doubles():
    from qiskit_ibm_runtime.fake_provider import FakeGuadalupeV2

    from qmae_qiskit.reports import depth

    one, two = QMAEConfig(image_size=4), QMAEConfig(image_size=4, layers=2)
    sizes1, sizes2 = dict(depth.stage_sizes(one, "training")), dict(depth.stage_sizes(two, "training"))
    assert sizes2["encoder"] == 2 * sizes1["encoder"] and sizes2["decoder"] == 2 * sizes1["decoder"]
    qc = training_circuit(two)
    parts = depth.split_stages(qc, depth.stage_sizes(two, "training"))
    assert sum(len(p.data) for _, p in parts) == len(qc.data)
    assert {p.name for p in dict(parts)["encoder"].parameters} == {f"theta[{i}]" for i in range(two.n_theta)}
    rep = depth.depth_report(two, FakeGuadalupeV2(), optimization_level=1, seed=3)
    r = rep["circuits"]["training"]
    assert r["logical"]["num_parameters"] == two.n_theta + 2 * (two.dim - 1)
    assert r["stage_totals"]["size"] == sum(s["size"] for s in r["stages"])
    enc = next(s for s in r["stages"] if s["stage"] == "encoder")
    assert enc["two_qubit_gates"] >= 2 * 3 * len(pair_order(4))  # 3 CX per block and layer, before any routing
    assert rep["config"]["layers"] == 2


def test_cli_circuit_train_and_report_take_layers(tmp_path, mnist_dir):
    runner = CliRunner()
    res = runner.invoke(main, ["circuit", "--image-size", "4", "--layers", "2", "--json", "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["circuits"]["training"]["num_parameters"] == 180 + 2 * 15
    assert all("layers2" in f for f in rep["circuits"]["training"]["files"])
    res = runner.invoke(
        main,
        ["report", "depth", "--backend", "aer_simulator", "--image-size", "4", "--layers", "2", "--out", str(tmp_path)],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "aer_simulator-O1-L4-k3-layers2.json").is_file() or any(tmp_path.glob("*layers2.json"))
    args = ["train", "--image-size", "4", "--layers", "2", "--train-images", "16", "--val-images", "0"]
    args += ["--batch-size", "8", "--no-progress", "--out", str(tmp_path / "runs"), "--data-dir", str(mnist_dir)]
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "180 angles in 2 layers" in res.output
    (run,) = (tmp_path / "runs").iterdir()
    assert "-l2-" in run.name
    from qmae_qiskit.train.runs import load_trained

    tm = load_trained(run)
    assert tm.cfg.layers == 2 and tm.theta.numel() == 180
    res = runner.invoke(main, ["circuit", "--image-size", "4", "--layers", "0", "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and "layers" in res.output
