"""Approximate loaders: each image's reported loading fidelity is what the bound circuit loads (checked with Qiskit's
Statevector), representable states are fitted exactly, and circuits built with a fitted loader compute the exact
value their documentation promises."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from qiskit.quantum_info import Operator, Statevector

from qmae_qiskit.errors import QMAEError, one_line
from qmae_qiskit.model import circuits as C
from qmae_qiskit.model.approx_loader import LoaderSpec, fit_loader, ladder_circuit
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.simulate import exact


def _sv_fidelity(n: int, layers: int, angles: torch.Tensor, x: torch.Tensor) -> tuple[float, np.ndarray]:
    """|<x/|x| | psi>|^2 with psi from Qiskit's Statevector of the bound ladder circuit (independent of the fit)."""
    sv = Statevector(ladder_circuit(n, layers, "am").assign_parameters(angles.numpy())).data
    target = (x / x.norm()).numpy()
    return abs(np.vdot(target, sv)) ** 2, sv


def _images(n: int, count: int, seed: int) -> torch.Tensor:
    """Sparse non-negative images (like MNIST) plus a signed one (a negative mask token)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(count, 2**n, generator=g, dtype=torch.float64)
    x[x < 0.5] = 0.0
    x[0] = torch.randn(2**n, generator=g, dtype=torch.float64)
    return x


# ------------------------------------------------------------------------------------------------ the spec
def test_spec_parses_and_counts():
    spec = LoaderSpec.parse("ladder:12")
    assert (spec.kind, spec.layers, spec.label) == ("ladder", 12, "ladder:12")
    assert spec.cnots(8) == 84 and spec.num_parameters(8) == 8 + 2 * 7 * 12
    assert LoaderSpec.parse("exact").is_exact and LoaderSpec.parse(" Exact ").cnots(8) == 254


@pytest.mark.parametrize("text", ["ladder", "ladder:x", "tree:3", "exact:2", "ladder:-1", "ladder:999", ""])
def test_bad_spec_is_one_line(text):
    with pytest.raises(QMAEError) as err:
        LoaderSpec.parse(text)
    assert "\n" not in str(err.value) and ("ladder:" in str(err.value) or "layers" in str(err.value))


def test_bad_spec_object_is_one_line():
    with pytest.raises(ValidationError) as err:
        LoaderSpec(kind="ladder")
    msg = one_line(err.value)
    assert "\n" not in msg and "ladder:12" in msg
    with pytest.raises(ValidationError):
        LoaderSpec(kind="ladder", layers=3, extra=1)


# ---------------------------------------------------------------------------------------------- structure
@pytest.mark.parametrize("n, layers", [(4, 0), (4, 3), (6, 5), (8, 12)])
def test_ladder_gate_counts_and_neighbours(n, layers):
    qc = ladder_circuit(n, layers, "am")
    ops = qc.count_ops()
    assert ops.get("cx", 0) == (n - 1) * layers == LoaderSpec(kind="ladder", layers=layers).cnots(n)
    assert ops["ry"] == n + 2 * (n - 1) * layers == qc.num_parameters
    for instr in qc.data:
        if instr.operation.name == "cx":
            c, t = (qc.find_bit(q).index for q in instr.qubits)
            assert c - t == 1  # neighbours on the line n-1 ... 0


def test_two_zero_angle_layers_are_the_identity():
    """What lets a fit grow by two layers without losing fidelity (checked with Qiskit's Operator)."""
    for start in (0, 1, 2):
        qc = ladder_circuit(5, start + 2, "a")
        values = np.random.default_rng(start).normal(size=qc.num_parameters)
        values[5 + 8 * start :] = 0.0  # the last two layers
        short = ladder_circuit(5, start, "a")
        assert Operator(qc.assign_parameters(values)).equiv(
            Operator(short.assign_parameters(values[: short.num_parameters]))
        )


# ------------------------------------------------------------------------------------------------ fitting
@pytest.mark.parametrize("n, layers", [(4, 1), (6, 2), (6, 5)])
def test_reported_fidelity_is_what_the_circuit_loads(n, layers):
    x = _images(n, 6, seed=n + layers)
    fit = fit_loader(LoaderSpec(kind="ladder", layers=layers), x)
    assert fit.angles.shape == (6, n + 2 * (n - 1) * layers)
    assert torch.all(fit.fidelity <= 1 + 1e-12) and torch.all(fit.fidelity > 0.3)
    for i in range(6):
        f_sv, sv = _sv_fidelity(n, layers, fit.angles[i], x[i])
        assert abs(f_sv - float(fit.fidelity[i])) < 1e-9
        np.testing.assert_allclose(fit.states[i].numpy(), sv.real, atol=1e-9)
        assert np.abs(sv.imag).max() < 1e-12


def test_representable_states_are_fitted_to_one():
    """A product state (ladder:0 and ladder:1), one-hot images, and any real 2-qubit state (ladder:1)."""
    g = torch.Generator().manual_seed(5)
    factors = [torch.rand(2, generator=g, dtype=torch.float64) + 0.1 for _ in range(6)]
    product = factors[0]
    for f in factors[1:]:  # the first factor ends up the least significant qubit
        product = torch.kron(f, product)
    onehots = torch.eye(64, dtype=torch.float64)[[0, 17, 63]]
    for layers in (0, 1):
        fit = fit_loader(LoaderSpec(kind="ladder", layers=layers), torch.cat([product[None], onehots]))
        assert torch.all(fit.fidelity > 1 - 1e-9), fit.fidelity
        for i, x in enumerate(torch.cat([product[None], onehots])):
            assert _sv_fidelity(6, layers, fit.angles[i], x)[0] > 1 - 1e-9
    signed = torch.randn(5, 4, generator=g, dtype=torch.float64)
    fit = fit_loader("ladder:1", signed)
    assert torch.all(fit.fidelity > 1 - 1e-9), fit.fidelity


def test_more_layers_never_lower_the_fidelity():
    """With equal iterations per stage the L-layer fit is the first stage of the (L+2)-layer fit, image by image."""
    x = _images(6, 5, seed=3)
    f = [fit_loader(LoaderSpec(kind="ladder", layers=L), x, stage_iter=40, final_iter=40).fidelity for L in (1, 3, 5)]
    assert torch.all(f[1] >= f[0] - 1e-12) and torch.all(f[2] >= f[1] - 1e-12)
    assert float(f[2].mean()) > float(f[0].mean())


def test_exact_spec_returns_tree_angles_and_fidelity_one():
    x = _images(4, 3, seed=1)
    fit = fit_loader(None, x)
    assert torch.all(fit.fidelity == 1)
    torch.testing.assert_close(fit.states, x / x.norm(dim=1, keepdim=True))


def test_unloadable_input_is_one_line():
    with pytest.raises(QMAEError, match="not all zero"):
        fit_loader("ladder:1", torch.zeros(2, 16))
    with pytest.raises(QMAEError, match="power-of-two"):
        fit_loader("ladder:1", torch.ones(2, 12))


# --------------------------------------------------------------------------------------- circuit builders
CFG = QMAEConfig(image_size=4)


def test_fitted_inverse_fidelity_circuit_gives_exact_value_of_the_fitted_states():
    """Statevector of the bound circuit == exact fidelity with the fits' states in place of the images (1e-9)."""
    spec = LoaderSpec(kind="ladder", layers=2)
    qc, obs = C.inverse_fidelity_circuit(CFG, spec)
    assert qc.metadata["loader"] == "ladder:2"
    groups = C.parameter_groups(qc)
    assert not groups["xm"] and not groups["xr"]
    assert len(groups["am"]) == len(groups["ar"]) == spec.num_parameters(CFG.n_qubits)
    g = torch.Generator().manual_seed(0)
    theta = torch.rand(CFG.n_theta, generator=g, dtype=torch.float64) * 2 * np.pi
    clean = _images(4, 3, seed=9).abs()
    masked = clean.clone()
    masked[:, :4] = -0.3  # a negative token over a patch
    fm, fc = fit_loader(spec, masked), fit_loader(spec, clean)
    values = C.parameter_values(qc, theta, masked, clean, masked_angles=fm.angles, clean_angles=fc.angles)
    want = exact.fidelity(theta, fm.states, fc.states, CFG)
    for i in range(3):
        got = Statevector(qc.assign_parameters(values[i])).expectation_value(obs).real
        assert got == pytest.approx(float(want[i]), abs=1e-9)
    # reconstruction: the same masked fit loads the data register
    rec = C.reconstruction_circuit(CFG, measure=False, loader=spec)
    vals = C.parameter_values(rec, theta, masked, masked_angles=fm.angles)
    probs = Statevector(rec.assign_parameters(vals[1])).probabilities(rec.metadata["data_qubits"])
    np.testing.assert_allclose(probs, exact.reconstruct(theta, fm.states[1:2], CFG)[0].numpy(), atol=1e-9)


def test_parameter_values_refuses_missing_or_mismatched_angles():
    qc, _ = C.inverse_fidelity_circuit(CFG, "ladder:2")
    theta = torch.zeros(CFG.n_theta, dtype=torch.float64)
    x = _images(4, 2, seed=2).abs() + 0.01
    fit = fit_loader("ladder:2", x)
    with pytest.raises(ValueError, match="masked_angles"):
        C.parameter_values(qc, theta, x, x, clean_angles=fit.angles)
    other = fit_loader("ladder:1", x)
    with pytest.raises(ValueError, match="fit the loader the circuit was built with"):
        C.parameter_values(qc, theta, x, x, masked_angles=other.angles, clean_angles=fit.angles)


@pytest.mark.parametrize("L", [4, 8, 16])
def test_default_circuits_unchanged(L):
    """The default (and loader='exact') builds equal the exact-tree circuits; 16x16 against the committed export."""
    cfg = QMAEConfig(image_size=L)

    def ops(qc):
        return [
            (i.operation.name, tuple(qc.find_bit(q).index for q in i.qubits), tuple(map(str, i.operation.params)))
            for i in qc.data
        ]

    for build in (C.training_circuit, C.reconstruction_circuit, lambda c, **k: C.inverse_fidelity_circuit(c, **k)[0]):
        default, explicit = build(cfg), build(cfg, loader="exact")
        assert ops(default) == ops(explicit)
        assert default.metadata["loader"] == "exact"
        assert {p.vector.name for p in default.parameters} <= {"theta", "xm", "xr"}
    if L == 16:
        from pathlib import Path

        from qiskit import qpy

        folder = Path(__file__).resolve().parents[1] / "circuits"
        for kind, build in (("training", C.training_circuit), ("reconstruction", C.reconstruction_circuit)):
            with open(folder / f"qmae_{kind}_L16_k7_swap.qpy", "rb") as fh:
                committed = qpy.load(fh)[0]
            assert ops(committed) == ops(build(cfg))


def test_growth_escapes_the_saddle_of_a_one(mnist_dir):
    """8x8 test image 40 (a '1' in columns 3 and 4, which differ in every column bit) sits on a saddle of the
    identity-grown start (zero gradient in the new angles); without the kick its fit stayed at 0.959 from 4 layers
    on."""
    from qmae_qiskit.data import load_mnist

    x = load_mnist(mnist_dir, train=False, image_size=8, limit=41).images[40].reshape(1, -1)
    fit = fit_loader("ladder:6", x, stage_iter=100, final_iter=100)
    assert float(fit.fidelity[0]) > 0.99
    assert _sv_fidelity(6, 6, fit.angles[0], x[0])[0] == pytest.approx(float(fit.fidelity[0]), abs=1e-9)
