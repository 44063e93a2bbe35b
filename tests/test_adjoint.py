"""The adjoint gradient equals parameter shift, finite differences and the exact path's autograd, to 1e-9."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Gate, Parameter, ParameterVector
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import Operator, SparsePauliOp, Statevector
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel, depolarizing_error
from qiskit_aer.primitives import EstimatorV2
from qiskit_machine_learning.connectors import TorchConnector
from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient
from qiskit_machine_learning.neural_networks import EstimatorQNN

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.model.ansatz import encoder_circuit
from qmae_qiskit.model.circuits import (
    MASKED,
    REFERENCE,
    THETA,
    fidelity_observable,
    parameter_groups,
    swap_test,
    training_circuit,
)
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.loader import loader_angles, loader_circuit
from qmae_qiskit.model.masking import grid_shape, insert_token
from qmae_qiskit.simulate import exact
from qmae_qiskit.simulate.adjoint import (
    GENERATORS,
    AdjointEstimatorGradient,
    adjoint_gradient,
    adjoint_problem,
    can_use_adjoint,
    make_gradient,
)

TOL = 1e-9
GATES = get_standard_gate_name_mapping()


@pytest.fixture(scope="module")
def estimator() -> EstimatorV2:
    return EstimatorV2(options={"default_precision": 0})


def _expectation(qc: QuantumCircuit, obs: SparsePauliOp, values: np.ndarray) -> float:
    return float(Statevector(qc.assign_parameters(values)).expectation_value(obs).real)


def _finite_difference(
    qc: QuantumCircuit, obs: SparsePauliOp, values: np.ndarray, h: float = 2.5e-4, indices=None
) -> np.ndarray:
    """Five-point central differences on Qiskit's Statevector: truncation ~h^4, rounding ~1e-16/h, both << 1e-9."""
    eye = np.eye(len(values))[indices if indices is not None else slice(None)] * h

    def f(v):
        return _expectation(qc, obs, v)

    return np.array(
        [(f(values - 2 * e) - 8 * f(values - e) + 8 * f(values + e) - f(values + 2 * e)) / (12 * h) for e in eye]
    )


def _param_shift(estimator, qc, obs, values, params=None) -> np.ndarray:
    """Stock parameter shift on Aer (exact for these gates); translated for Aer, which lacks e.g. iswap."""
    qc = transpile(qc, AerSimulator(), optimization_level=0)
    params = None if params is None else [params] * len(values)
    res = ParamShiftEstimatorGradient(estimator).run([qc] * len(values), [obs] * len(values), values, params).result()
    return np.array(res.gradients)


# --------------------------------------------------------------------------------------------- random circuits
FIXED = ["h", "x", "y", "z", "sx", "s", "t", "cx", "cz", "cy", "swap", "cswap", "ecr", "ccx", "iswap"]
ROTATIONS = sorted(GENERATORS) + ["u", "u2", "u3", "r"]


def _random_circuit(seed: int, num_qubits: int = 5, depth: int = 45, num_params: int = 6):
    """Every supported gate kind, angles that are affine expressions of shared parameters (or plain numbers)."""
    rng = np.random.default_rng(seed)
    p = ParameterVector("p", num_params)
    qc = QuantumCircuit(num_qubits)

    def angle():
        i, j = rng.choice(num_params, 2, replace=False)
        a, b, c = rng.uniform(-2, 2, 3)
        return [p[i], a * p[i] + c, -2 * p[i] + 0.3, a * p[i] + b * p[j] + c, float(c)][rng.integers(5)]

    for name in ROTATIONS:  # each rotation at least once, then a random mix
        gate = GATES[name]
        where = rng.choice(num_qubits, gate.num_qubits, replace=False).tolist()
        qc.append(type(gate)(*[angle() for _ in gate.params]), where)
    for _ in range(depth):
        name = rng.choice(FIXED + ROTATIONS)
        gate = GATES[name]
        args = [angle() for _ in gate.params]
        qc.append(type(gate)(*args), rng.choice(num_qubits, gate.num_qubits, replace=False).tolist())
    missing = set(p) - set(qc.parameters)
    for q, prm in enumerate(sorted(missing, key=lambda x: x.index)):
        qc.ry(prm, q % num_qubits)
    obs = SparsePauliOp(["ZIXYI", "IIIIZ", "XXYZI", "ZZZZZ"], rng.uniform(-1, 1, 4))
    values = rng.uniform(-np.pi, np.pi, (2, qc.num_parameters))
    return qc, obs, values


def test_generators_give_qiskit_matrices():
    """exp(-i phi K / 2) with our K is Qiskit's own gate matrix, for every rotation we differentiate."""
    rng = np.random.default_rng(0)
    for name, K in GENERATORS.items():
        phi = rng.uniform(-4, 4)
        w, V = np.linalg.eigh(K)
        mine = (V * np.exp(-0.5j * phi * w)) @ V.conj().T
        theirs = Operator(type(GATES[name])(phi)).data
        np.testing.assert_allclose(mine, theirs, atol=1e-14, err_msg=name)


def test_statevector_ops_match_qiskit_evolve():
    """Each numpy kernel against Statevector.evolve, per sample, with psi and lambda stacked as the sweep does."""
    from qiskit.quantum_info import random_statevector, random_unitary

    from qmae_qiskit.simulate import statevector_ops as svo

    m, B = 4, 3
    states = np.array([random_statevector(1 << m, seed=s).data for s in range(2 * B)]).reshape(2, B, 1 << m)
    for q in range(m):
        mats = np.array([random_unitary(2, seed=10 * q + b).data for b in range(B)])
        got = svo.apply_1q(states.copy(), q, mats)
        diag = np.exp(1j * np.arange(1, 2 * B + 1)).reshape(B, 2)
        got_d = svo.apply_diag_1q(states.copy(), q, diag)
        for s in range(2):
            for b in range(B):
                sv = Statevector(states[s, b])
                np.testing.assert_allclose(got[s, b], sv.evolve(Operator(mats[b]), [q]).data, atol=1e-14)
                np.testing.assert_allclose(got_d[s, b], sv.evolve(Operator(np.diag(diag[b])), [q]).data, atol=1e-14)
    for qubits in ([2, 0], [1, 3, 0]):
        u = random_unitary(1 << len(qubits), seed=len(qubits)).data
        got = svo.apply_matrix(states.copy(), qubits, u, m)
        perm_gate = GATES["cswap" if len(qubits) == 3 else "cx"]
        cols, phases = svo.phased_permutation(Operator(perm_gate).data)
        got_p = svo.BlockPermutation.build(cols, phases, qubits, m).apply(states.copy())
        for s in range(2):
            for b in range(B):
                sv = Statevector(states[s, b])
                np.testing.assert_allclose(got[s, b], sv.evolve(Operator(u), qubits).data, atol=1e-14)
                np.testing.assert_allclose(got_p[s, b], sv.evolve(perm_gate, qubits).data, atol=1e-14)
    # kron of factors in any qubit placement, and the costate projection as an explicit contraction
    positions = [[1, 4], [0], [2, 3]]
    vecs = [
        np.array([random_statevector(1 << len(p), seed=40 + i + 5 * b).data for b in range(B)])
        for i, p in enumerate(positions)
    ]
    full = svo.product_state(positions, vecs, 5)
    lam = np.array([random_statevector(32, seed=90 + b).data for b in range(B)])
    proj = svo.project_costate(lam, positions, vecs, 5)

    def sub(i: int, pos: list[int]) -> int:  # factor-local index of register index i
        return sum(((i >> q) & 1) << j for j, q in enumerate(pos))

    for b in range(B):
        want = [np.prod([vecs[f][b][sub(i, p)] for f, p in enumerate(positions)]) for i in range(32)]
        np.testing.assert_allclose(full[b], want, atol=1e-14)
        for f, pos in enumerate(positions):
            want_f = np.zeros(1 << len(pos), dtype=complex)
            for i in range(32):
                others = [vecs[g][b][sub(i, p)].conjugate() for g, p in enumerate(positions) if g != f]
                want_f[sub(i, pos)] += lam[b][i] * np.prod(others)
            np.testing.assert_allclose(proj[f][b], want_f, atol=1e-14)


def test_too_large_register_is_refused():
    qc, obs, values = _random_circuit(0)
    with pytest.raises(QMAEError, match="max_full_qubits"):
        adjoint_gradient(qc, obs, values, max_factor_qubits=2, max_full_qubits=3)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("max_factor_qubits", [1, 3, 14])
def test_random_circuits_match_finite_differences(seed, max_factor_qubits):
    """All gate kinds, shared parameters, affine angles; factor sizes 1 and 3 force suffix work and projections."""
    qc, obs, values = _random_circuit(seed)
    ev, grad = adjoint_gradient(qc, obs, values, max_factor_qubits=max_factor_qubits)
    for row in range(len(values)):
        assert abs(ev[row] - _expectation(qc, obs, values[row])) < 1e-12
        np.testing.assert_allclose(grad[row], _finite_difference(qc, obs, values[row]), atol=TOL, rtol=0)


def test_random_circuit_matches_parameter_shift(estimator):
    qc, obs, values = _random_circuit(7)
    got = AdjointEstimatorGradient(estimator).run([qc] * 2, [obs] * 2, values).result()
    np.testing.assert_allclose(np.array(got.gradients), _param_shift(estimator, qc, obs, values), atol=TOL, rtol=0)
    for row, meta in enumerate(got.metadata):
        assert abs(meta["value"] - _expectation(qc, obs, values[row])) < 1e-12


def test_parameter_subset_comes_back_in_the_order_asked(estimator):
    qc, obs, values = _random_circuit(3)
    params = list(qc.parameters)
    ask = [params[4], params[0], params[2]]
    grad = AdjointEstimatorGradient(estimator)
    full = np.array(grad.run([qc] * 2, [obs] * 2, values).result().gradients)
    sub = np.array(grad.run([qc] * 2, [obs] * 2, values, [ask] * 2).result().gradients)
    np.testing.assert_allclose(sub, full[:, [4, 0, 2]], atol=1e-14, rtol=0)
    np.testing.assert_allclose(sub, _param_shift(estimator, qc, obs, values, ask), atol=TOL, rtol=0)


def test_idle_qubits_and_dense_observable():
    """Qubits no gate touches stay |0>: X on them kills a term, Z keeps it; an Operator observable works too."""
    p = ParameterVector("p", 3)
    qc = QuantumCircuit(6)
    qc.ry(p[0], 1)
    qc.cx(1, 3)
    qc.rx(2 * p[1] - 1, 3)
    qc.crz(p[2], 3, 4)
    qc.h(4)
    obs = SparsePauliOp(["IXIIXI", "ZIZIZI", "IZXIIZ", "XIIZII"], [0.7, -1.1, 0.4, 2.0])
    values = np.array([[0.3, -1.2, 2.2]])
    ev, grad = adjoint_gradient(qc, obs, values)
    assert abs(ev[0] - _expectation(qc, obs, values[0])) < 1e-12
    np.testing.assert_allclose(grad[0], _finite_difference(qc, obs, values[0]), atol=TOL, rtol=0)
    _, grad2 = adjoint_gradient(qc, Operator(obs), values)
    np.testing.assert_allclose(grad2, grad, atol=1e-12, rtol=0)


# ------------------------------------------------------------------------------------------------ QMAE circuit
def _instance(cfg: QMAEConfig, seed: int, batch: int):
    g = torch.Generator().manual_seed(seed)
    theta = torch.rand(cfg.n_theta, generator=g, dtype=torch.float64) * 2 * np.pi
    token = torch.rand(cfg.n_token, generator=g, dtype=torch.float64)
    clean = torch.rand(batch, cfg.image_size, cfg.image_size, generator=g, dtype=torch.float64)
    clean[clean < 0.3] = 0.0
    rows, cols = grid_shape(cfg)
    patch = torch.randint(rows * cols, (batch, 1), generator=g)
    return theta, token, clean, patch


def _circuit_values(qc: QuantumCircuit, theta, masked, clean) -> np.ndarray:
    """Parameter values (B, P) in ``qc.parameters`` order for theta and each (masked, clean) pair."""
    groups = parameter_groups(qc)
    index = {p: i for i, p in enumerate(qc.parameters)}
    out = np.zeros((len(masked), qc.num_parameters))
    for b in range(len(masked)):
        parts = {THETA: theta, MASKED: loader_angles(masked[b]), REFERENCE: loader_angles(clean[b])}
        for name, vals in parts.items():
            out[b, [index[p] for p in groups[name]]] = vals.detach().numpy()
    return out


@pytest.mark.parametrize("L", [4, 8])
@pytest.mark.parametrize("transpiled", [False, True])
def test_qmae_weights_match_exact_path(L, transpiled):
    """d<Z>/dtheta for all weights equals autograd through exact.fidelity (an independent simulator)."""
    cfg = QMAEConfig(image_size=L)
    qc = training_circuit(cfg)
    obs = fidelity_observable(qc.num_qubits)
    if transpiled:
        qc = transpile(qc, AerSimulator(), optimization_level=1, seed_transpiler=1)
        obs = obs.apply_layout(qc.layout)
    theta, token, clean, patch = _instance(cfg, L, batch=2)
    masked = insert_token(clean, patch, cfg, token).reshape(2, -1)
    clean = clean.reshape(2, -1)
    values = _circuit_values(qc, theta, masked, clean)
    ev, grad = adjoint_gradient(qc, obs, values)
    th = theta.clone().requires_grad_(True)
    for b in range(2):
        th.grad = None
        fid = exact.fidelity(th, masked[b : b + 1], clean[b : b + 1], cfg)[0]
        fid.backward()
        assert abs(ev[b] - fid.item()) < 1e-12
        cols = [list(qc.parameters).index(p) for p in parameter_groups(qc)[THETA]]
        np.testing.assert_allclose(grad[b, cols], th.grad.numpy(), atol=TOL, rtol=0)


def test_qmae_transpiled_for_a_device_with_idle_qubits():
    """ISA gates (rz with shifted angles, sx, x, cx), a routed layout and 6 idle qubits: same gradient."""
    from qiskit.providers.fake_provider import GenericBackendV2

    cfg = QMAEConfig(image_size=4)
    qc = training_circuit(cfg)
    obs = fidelity_observable(qc.num_qubits)
    backend = GenericBackendV2(num_qubits=16, basis_gates=["cx", "rz", "sx", "x"], seed=3)
    isa = transpile(qc, backend, optimization_level=1, seed_transpiler=0)
    assert isa.num_qubits == 16 and list(isa.parameters) == list(qc.parameters)
    values = np.random.default_rng(5).uniform(0, 2 * np.pi, (2, qc.num_parameters))
    ev0, grad0 = adjoint_gradient(qc, obs, values)
    ev1, grad1 = adjoint_gradient(isa, obs.apply_layout(isa.layout), values)
    np.testing.assert_allclose(ev1, ev0, atol=1e-12, rtol=0)
    np.testing.assert_allclose(grad1, grad0, atol=TOL, rtol=0)
    np.testing.assert_allclose(grad0[0, :6], _finite_difference(qc, obs, values[0], indices=range(6)), atol=TOL, rtol=0)


@pytest.mark.parametrize("L", [4, 8])
def test_qmae_matches_parameter_shift_on_weights_and_inputs(L, estimator):
    """Against stock parameter shift on Aer (exact), for a sample of weights and of both loaders' angles."""
    cfg = QMAEConfig(image_size=L)
    qc = training_circuit(cfg)
    obs = fidelity_observable(qc.num_qubits)
    theta, token, clean, patch = _instance(cfg, 10 + L, batch=1)
    masked = insert_token(clean, patch, cfg, token).reshape(1, -1)
    values = _circuit_values(qc, theta, masked, clean.reshape(1, -1))
    groups = parameter_groups(qc)
    rng = np.random.default_rng(L)
    ask = [
        groups[name][i]
        for name, count in ((THETA, 5), (MASKED, 4), (REFERENCE, 3))
        for i in rng.choice(len(groups[name]), count, replace=False)
    ]
    got = AdjointEstimatorGradient(estimator).run([qc], [obs], values, [ask]).result().gradients[0]
    np.testing.assert_allclose(got, _param_shift(estimator, qc, obs, values, ask)[0], atol=TOL, rtol=0)


def test_raw_three_qubit_qmae_matches_finite_differences_and_parameter_shift(estimator):
    """n = 3 built from the parts (no config allows it): ancilla, fresh, 3 data, 3 reference qubits."""
    n, k = 3, 2
    qc = QuantumCircuit(2 * n + 2)
    data, ref = [2, 3, 4], [5, 6, 7]
    qc.compose(loader_circuit(n, "xr"), ref, inplace=True)
    qc.compose(loader_circuit(n, "xm"), data, inplace=True)
    enc = encoder_circuit(n, "theta")
    qc.compose(enc, data, inplace=True)
    qc.swap(data[k], 1)
    qc.compose(enc.inverse(), data, inplace=True)
    qc.compose(swap_test(n), [0, *data, *ref], inplace=True)
    obs = fidelity_observable(qc.num_qubits)
    values = np.random.default_rng(3).uniform(0, 2 * np.pi, (1, qc.num_parameters))
    _, grad = adjoint_gradient(qc, obs, values)
    np.testing.assert_allclose(grad[0], _finite_difference(qc, obs, values[0]), atol=TOL, rtol=0)
    ask = list(qc.parameters)[::4]
    got = AdjointEstimatorGradient(estimator).run([qc], [obs], values, [ask]).result().gradients[0]
    np.testing.assert_allclose(got, _param_shift(estimator, qc, obs, values, ask)[0], atol=TOL, rtol=0)


@pytest.mark.parametrize("L", [4, 8])
def test_mask_token_gradient_through_the_qnn_matches_exact_path(L, estimator):
    """Mask token -> insert_token -> loader_angles -> EstimatorQNN(adjoint) gives the exact path's token.grad.

    In float64 by chaining qnn.backward's input gradients through autograd (what TorchConnector does), to 1e-9;
    through TorchConnector itself only to float32 accuracy, because it casts results and gradients to float32.
    """
    cfg = QMAEConfig(image_size=L)
    qc = training_circuit(cfg)
    isa = transpile(qc, AerSimulator(), optimization_level=1, seed_transpiler=0)
    obs = fidelity_observable(qc.num_qubits).apply_layout(isa.layout)
    groups = parameter_groups(isa)
    qnn = EstimatorQNN(
        circuit=isa,
        estimator=estimator,
        observables=obs,
        input_params=groups[MASKED] + groups[REFERENCE],
        weight_params=groups[THETA],
        input_gradients=True,
        gradient=AdjointEstimatorGradient(estimator),
        default_precision=0,
    )
    theta, token0, clean, patch = _instance(cfg, 20 + L, batch=2)
    flat = clean.reshape(2, -1)

    def inputs_for(token):
        masked = insert_token(clean, patch, cfg, token).reshape(2, -1)
        return torch.cat([loader_angles(masked), loader_angles(flat)], dim=1)

    token_x = token0.clone().requires_grad_(True)
    theta_x = theta.clone().requires_grad_(True)
    want = exact.fidelity(theta_x, insert_token(clean, patch, cfg, token_x).reshape(2, -1), flat, cfg)
    (1 - want).mean().backward()

    token = token0.clone().requires_grad_(True)  # float64 chain
    inputs = inputs_for(token)
    value = qnn.forward(inputs.detach().numpy(), theta.numpy())[:, 0]
    input_grad, weight_grad = qnn.backward(inputs.detach().numpy(), theta.numpy())
    inputs.backward(torch.from_numpy(-input_grad[:, 0, :] / 2))  # d mean(1 - f) / d inputs
    np.testing.assert_allclose(value, want.detach().numpy(), atol=1e-12, rtol=0)
    np.testing.assert_allclose(token.grad.numpy(), token_x.grad.numpy(), atol=TOL, rtol=0)
    np.testing.assert_allclose(-weight_grad[:, 0, :].mean(0), theta_x.grad.numpy(), atol=TOL, rtol=0)

    model = TorchConnector(qnn, initial_weights=theta.numpy().copy())  # float32 inside
    token32 = token0.clone().requires_grad_(True)
    (1 - model(inputs_for(token32).float())).mean().backward()
    scale = float(token_x.grad.abs().max())
    np.testing.assert_allclose(token32.grad.numpy(), token_x.grad.numpy(), atol=1e-5 * scale, rtol=0)
    np.testing.assert_allclose(model.weight.grad.numpy(), theta_x.grad.numpy(), atol=1e-5, rtol=0)


def test_qnn_weights_only_backward_equals_parameter_shift(estimator):
    """EstimatorQNN without input gradients asks for the weights only; adjoint answers the same as param shift."""
    qc, obs, values = _random_circuit(5, num_params=6)
    qc = transpile(qc, AerSimulator(), optimization_level=0)  # Aer runs the stock forward pass
    params = list(qc.parameters)
    kwargs = {
        "circuit": qc,
        "estimator": estimator,
        "observables": obs,
        "input_params": params[:2],
        "weight_params": params[2:],
        "default_precision": 0,
    }
    ours = EstimatorQNN(gradient=AdjointEstimatorGradient(estimator), **kwargs)
    stock = EstimatorQNN(gradient=ParamShiftEstimatorGradient(estimator), **kwargs)
    x, w = values[:, :2], values[0, 2:]
    a_in, a_w = ours.backward(x, w)
    b_in, b_w = stock.backward(x, w)
    assert a_in is None and b_in is None
    np.testing.assert_allclose(a_w, b_w, atol=TOL, rtol=0)


def test_qnn_with_two_observables_and_input_gradients(estimator):
    """Several observables: the QNN interleaves circuits per observable; each gets its own costate."""
    qc, obs, values = _random_circuit(11, num_params=5)
    qc = transpile(qc, AerSimulator(), optimization_level=0)
    params = list(qc.parameters)
    second = SparsePauliOp(["XIIIZ", "IYIZI"], [0.8, -0.5])
    kwargs = {
        "circuit": qc,
        "estimator": estimator,
        "observables": [obs, second],
        "input_params": params[:3],
        "weight_params": params[3:],
        "input_gradients": True,
        "default_precision": 0,
    }
    ours = EstimatorQNN(gradient=AdjointEstimatorGradient(estimator), **kwargs)
    stock = EstimatorQNN(gradient=ParamShiftEstimatorGradient(estimator), **kwargs)
    x, w = values[:, :3], values[0, 3:]
    for a, b in zip(ours.backward(x, w), stock.backward(x, w)):
        assert a.shape == (2, 2, a.shape[2])
        np.testing.assert_allclose(a, b, atol=TOL, rtol=0)


# ---------------------------------------------------------------------------------------------------- refusals
def _small() -> tuple[QuantumCircuit, Parameter]:
    p = Parameter("p")
    qc = QuantumCircuit(2)
    qc.ry(p, 0)
    qc.cx(0, 1)
    return qc, p


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda qc, p: qc.measure_all(), "measure"),
        (lambda qc, p: qc.reset(1), "reset"),
        (lambda qc, p: qc.rz(p * p, 1), "not affine"),
        (lambda qc, p: qc.ry(p.sin(), 1), "not affine"),
        (lambda qc, p: qc.append(Gate("mystery", 1, [p]), [0]), "not supported"),
    ],
)
def test_unsupported_circuits_are_refused_clearly(mutate, words):
    qc, p = _small()
    mutate(qc, p)
    obs = SparsePauliOp("ZZ")
    reason = adjoint_problem(qc, observable=obs)
    assert reason is not None and words in reason and "\n" not in reason
    assert not can_use_adjoint(qc)
    with pytest.raises(QMAEError, match=words):
        adjoint_gradient(qc, obs, [[0.1]])


def test_noisy_or_sampled_estimators_are_refused():
    noise = NoiseModel()
    noise.add_all_qubit_quantum_error(depolarizing_error(0.01, 1), ["ry"])
    cases = [
        (EstimatorV2(options={"backend_options": {"noise_model": noise}}), None, "noise"),
        (EstimatorV2.from_backend(AerSimulator(noise_model=noise)), None, "noise"),
        (EstimatorV2(options={"default_precision": 0.01}), None, "precision"),
        (EstimatorV2(options={"default_precision": 0}), 0.015625, "precision"),
        (StatevectorEstimator(default_precision=0.1), None, "precision"),
    ]
    for est, precision, words in cases:
        reason = adjoint_problem(estimator=est, precision=precision)
        assert reason is not None and words in reason, (est, reason)
    with pytest.raises(QMAEError, match="noise"):
        AdjointEstimatorGradient(cases[0][0])
    for exact_est in (EstimatorV2(options={"default_precision": 0}), StatevectorEstimator()):
        assert adjoint_problem(training_circuit(QMAEConfig(image_size=4)), exact_est, precision=0) is None


def test_non_hermitian_observable_and_shots_are_refused():
    qc, _ = _small()
    with pytest.raises(QMAEError, match="Hermitian"):
        adjoint_gradient(qc, SparsePauliOp(["ZZ", "XI"], [1.0, 1j]), [[0.2]])
    grad = AdjointEstimatorGradient()
    with pytest.raises(Exception, match="shots"):
        grad.run([qc], [SparsePauliOp("ZZ")], [[0.2]], shots=100).result()


def test_make_gradient_picks_adjoint_only_when_exact():
    qc = training_circuit(QMAEConfig(image_size=4))
    obs = fidelity_observable(qc.num_qubits)
    exact_est = EstimatorV2(options={"default_precision": 0})
    assert isinstance(make_gradient("auto", exact_est, qc, obs, precision=0), AdjointEstimatorGradient)
    assert isinstance(make_gradient("auto", exact_est, qc, obs, precision=0.01), ParamShiftEstimatorGradient)
    assert isinstance(make_gradient("param-shift", exact_est, qc, obs, 0), ParamShiftEstimatorGradient)
    noisy = NoiseModel()
    noisy.add_all_qubit_quantum_error(depolarizing_error(0.01, 1), ["ry"])
    noisy_est = EstimatorV2(options={"backend_options": {"noise_model": noisy}})
    assert isinstance(make_gradient("auto", noisy_est, qc, obs, 0), ParamShiftEstimatorGradient)
    with pytest.raises(QMAEError, match="adjoint gradient cannot be used here: .*noise"):
        make_gradient("adjoint", noisy_est, qc, obs, 0)
    with pytest.raises(QMAEError, match="unknown gradient"):
        make_gradient("backprop", exact_est)
