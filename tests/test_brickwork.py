"""The brickwork ansatz: the same 1e-9 equalities as the paper's all-pairs ansatz, against independent references
(the Aer estimator check is test_layers' own, run for both ansaetze).

The exact path (blocks applied to the identity) vs Qiskit's Operator of the circuit, Aer EstimatorV2
(default_precision=0) and DensityMatrix; autograd and the adjoint gradient vs parameter shift; the encoder routes on
heavy-hex devices without a SWAP; records, run names, the sweep axis and the CLI carry the field, and leave it out
at the default.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from qiskit import QuantumCircuit as QiskitCircuit
from qiskit import transpile
from qiskit.quantum_info import DensityMatrix, Operator, Statevector, partial_trace
from qiskit_aer.primitives import EstimatorV2
from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient
from test_layers import _case as _layers_case
from test_layers import _values

from qmae_qiskit.cli import main
from qmae_qiskit.model.ansatz import BLOCK_PARAMS, encoder_circuit, encoder_unitary, pair_order
from qmae_qiskit.model.circuits import (
    MASKED,
    REFERENCE,
    THETA,
    encoder,
    fidelity_observable,
    inverse_fidelity_circuit,
    parameter_groups,
    reconstruction_circuit,
    training_circuit,
)
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.loader import loader_angles
from qmae_qiskit.simulate import exact
from qmae_qiskit.simulate.adjoint import AdjointEstimatorGradient

TOL = 1e-9


def _cfg(L: int, layers: int = 2) -> QMAEConfig:
    return QMAEConfig(image_size=L, layers=layers, ansatz="brickwork")


def _case(cfg: QMAEConfig, seed: int, batch: int = 1):
    """theta, masked and clean images (B, 2^n), as test_layers draws them."""
    theta, _, xm, xc, _, _ = _layers_case(cfg, seed, batch)
    return theta, xm, xc


def _gates(qc) -> list[tuple]:
    return [
        (i.operation.name, [qc.find_bit(q).index for q in i.qubits], list(map(str, i.operation.params)))
        for i in qc.data
    ]


# ------------------------------------------------------------------------------------------------ shape
def test_brick_pattern_is_nearest_neighbour_even_bonds_then_odd():
    assert pair_order(6, "brickwork") == [(0, 1), (2, 3), (4, 5), (1, 2), (3, 4)]
    assert pair_order(4, "brickwork") == [(0, 1), (2, 3), (1, 2)]
    for n in (4, 6, 8):
        assert sorted(pair_order(n, "brickwork")) == [(i, i + 1) for i in range(n - 1)]
    qc = encoder_circuit(6, "theta", 3, "brickwork")
    assert qc.num_parameters == 3 * 5 * BLOCK_PARAMS
    assert all(
        abs(qc.find_bit(a).index - qc.find_bit(b).index) == 1
        for a, b in (i.qubits for i in qc.data if len(i.qubits) == 2)
    )


def test_config_counts_and_records_without_the_field_are_all_pairs():
    cfg = _cfg(8, 3)
    assert cfg.n_pairs == 5 and cfg.n_theta_layer == 75 and cfg.n_theta == 225
    assert cfg.model_dump()["ansatz"] == "brickwork" and QMAEConfig(**cfg.model_dump()) == cfg
    paper = QMAEConfig(image_size=8)
    assert "ansatz" not in paper.model_dump() and paper.ansatz == "all-pairs" and paper.n_pairs == 15
    with pytest.raises(ValueError, match="ansatz must be one of all-pairs, brickwork"):
        QMAEConfig(image_size=8, ansatz="ladder")


def test_committed_runs_and_reports_read_back_unchanged():
    from qmae_qiskit.train.runs import read_config

    for run in ("results/hardware/qmae-L8", "results/hardware/qmae-L4", "results/qmae-m25"):
        cfg = read_config(run).settings.config
        assert cfg.ansatz == "all-pairs"
        stored = json.loads((Path(run) / "config.json").read_text())["settings"]["config"]
        assert cfg.model_dump() == stored  # a regenerated record writes the same config


# ------------------------------------------------------------------------------------------------ exact path
@pytest.mark.parametrize("n, layers", [(4, 2), (6, 3), (8, 1)])
def test_model_unitary_equals_the_circuit_operator_and_the_reference(n, layers):
    L = {4: 4, 6: 8, 8: 16}[n]
    cfg = _cfg(L, layers)
    theta = torch.rand(cfg.n_theta, generator=torch.Generator().manual_seed(n), dtype=torch.float64) * 6
    op = Operator(encoder_circuit(n, "theta", layers, "brickwork").assign_parameters(theta.numpy())).data
    np.testing.assert_allclose(exact.model_unitary(theta, cfg).numpy(), op, atol=1e-12)
    np.testing.assert_allclose(encoder_unitary(theta, n, layers, "brickwork").numpy(), op, atol=1e-12)
    paper = QMAEConfig(image_size=L, layers=1)
    other = Operator(encoder_circuit(n, "theta", 1).assign_parameters(np.resize(theta.numpy(), paper.n_theta))).data
    assert not np.allclose(other, op, atol=1e-3)  # the two ansätze differ


@pytest.mark.parametrize("L", [4, 8])
def test_both_exact_routes_and_the_reference_agree(L):
    cfg = _cfg(L)
    theta, xm, xc = _case(cfg, L, batch=9)
    small = torch.cat([exact.fidelity(theta, xm[i : i + 1], xc[i : i + 1], cfg) for i in range(9)])  # blocks route
    big = exact.fidelity(theta, xm, xc, cfg, exact.model_unitary(theta, cfg))  # U route
    built = exact.fidelity(theta, xm.repeat(8, 1), xc.repeat(8, 1), cfg)[:9]  # U built inside (large batch)
    ref = exact.fidelity_reference(theta, xm, xc, cfg)
    for got in (small, big, built):
        torch.testing.assert_close(got, ref, atol=1e-12, rtol=0)


def test_reconstruction_equals_the_decoded_density_matrix():
    cfg = _cfg(4)
    qc = reconstruction_circuit(cfg, measure=False)
    theta, xm, _ = _case(cfg, 5)
    g = parameter_groups(qc)
    bound = qc.assign_parameters(
        {p: float(theta[p.index]) for p in g["theta"]} | dict(zip(g["xm"], loader_angles(xm[0]).tolist()))
    )
    rho = partial_trace(DensityMatrix(bound), qc.metadata["fresh_qubits"])
    np.testing.assert_allclose(np.real(np.diag(rho.data)), exact.reconstruct(theta, xm, cfg)[0].numpy(), atol=1e-12)


def test_exact_gradient_equals_parameter_shift_on_every_layer():
    cfg = _cfg(8, 3)
    qc = training_circuit(cfg)
    theta, xm, xc = _case(cfg, 13)
    g = parameter_groups(qc)
    picks = [0, 14, 40, 80, 150, 224]  # every layer, first and last block
    vec = _values(qc, theta, xm, xc)
    est = EstimatorV2(options={"default_precision": 0})
    shift = ParamShiftEstimatorGradient(est).run(
        [qc], [fidelity_observable(qc.num_qubits)], vec, [[g[THETA][i] for i in picks]]
    )
    want = shift.result().gradients[0]
    for batch in (1, 40):  # the blocks route and the U route (both through autograd)
        th = theta.clone().requires_grad_(True)
        fid = exact.fidelity(th, xm.repeat(batch, 1), xc.repeat(batch, 1), cfg)
        auto = torch.autograd.grad(fid[0], th)[0]
        np.testing.assert_allclose(want, auto.numpy()[picks], atol=TOL)


def test_adjoint_matches_parameter_shift_on_weights_and_inputs():
    cfg = _cfg(8)
    qc = training_circuit(cfg)
    obs = fidelity_observable(qc.num_qubits)
    theta, xm, xc = _case(cfg, 38)
    values = _values(qc, theta, xm, xc)
    g = parameter_groups(qc)
    rng = np.random.default_rng(8)
    ask = [g[THETA][i] for i in rng.choice(cfg.n_theta, 6, replace=False)]
    ask += [g[MASKED][i] for i in rng.choice(len(g[MASKED]), 2, replace=False)]
    ask += [g[REFERENCE][i] for i in rng.choice(len(g[REFERENCE]), 2, replace=False)]
    est = EstimatorV2(options={"default_precision": 0})
    got = AdjointEstimatorGradient(est).run([qc], [obs], values, [ask]).result().gradients[0]
    shift = ParamShiftEstimatorGradient(est).run([qc], [obs], values, [ask]).result().gradients[0]
    np.testing.assert_allclose(got, shift, atol=TOL, rtol=0)
    assert np.abs(shift).max() > 1e-3


# ------------------------------------------------------------------------------------------------ light cone
def test_light_cone_keeps_the_blocks_that_reach_the_trash():
    from qmae_qiskit.model.ansatz import light_cone

    one = pair_order(6, "brickwork")  # (0,1) (2,3) (4,5) (1,2) (3,4)
    assert light_cone(one, [5]) == [False, False, True, False, False]
    assert sum(light_cone(one * 5, [5])) == 19 and sum(light_cone(one * 2, [5])) == 4
    for n, trash in ((4, [3]), (6, [5]), (6, [3, 4, 5]), (8, [7])):  # all-pairs: every block reaches the trash
        assert all(light_cone(pair_order(n), trash))


@pytest.mark.parametrize("layers, latent", [(2, 5), (3, 4)])
def test_pruned_u_dagger_reset_u_equals_the_full_one(layers, latent):
    """U-dagger SWAP U on data + fresh qubits, as operators: the light-cone circuit against the full circuit."""
    cfg = QMAEConfig(image_size=8, layers=layers, ansatz="brickwork", latent_qubits=latent)
    n, t = cfg.n_qubits, cfg.trash_qubits
    theta = torch.rand(cfg.n_theta, generator=torch.Generator().manual_seed(layers), dtype=torch.float64) * 6
    ops = []
    for cone in (None, range(latent, n)):
        enc = encoder_circuit(n, "theta", layers, "brickwork", cone)
        qc = QiskitCircuit(t + n)
        qc.compose(enc, range(t, t + n), inplace=True)
        for i in range(t):
            qc.swap(i, t + latent + i)
        qc.compose(enc.inverse(), range(t, t + n), inplace=True)
        values = {p: float(theta[p.index]) for p in qc.parameters}
        ops.append((Operator(qc.assign_parameters(values)).data, enc.num_parameters))
    (full, p_full), (pruned, p_pruned) = ops
    np.testing.assert_allclose(pruned, full, atol=1e-12)
    assert p_pruned < p_full == cfg.n_theta


def test_device_circuits_use_the_light_cone_and_keep_the_exact_value():
    cfg = _cfg(8, 3)
    qc, obs = inverse_fidelity_circuit(cfg)
    assert len(parameter_groups(qc)[THETA]) == 15 * 9 < cfg.n_theta  # 9 of 15 blocks reach the trash
    assert len(parameter_groups(training_circuit(cfg))[THETA]) == cfg.n_theta  # the Aer training circuit: all
    for seed in (1, 2):
        theta, xm, xc = _case(cfg, seed)
        values = {p: float(theta[p.index]) for p in parameter_groups(qc)[THETA]}
        values |= dict(zip(parameter_groups(qc)[MASKED], loader_angles(xm[0]).tolist()))
        values |= dict(zip(parameter_groups(qc)[REFERENCE], loader_angles(xc[0]).tolist()))
        got = Statevector(qc.assign_parameters(values)).expectation_value(obs).real
        assert abs(got - float(exact.fidelity(theta, xm, xc, cfg)[0])) < TOL
    # the exact executor's fast path reads the light-cone circuit (left-out angles are 0) and agrees
    from qmae_qiskit.hardware.execution import EstimatorTask
    from qmae_qiskit.hardware.executors.exact import estimate
    from qmae_qiskit.model.circuits import parameter_values

    theta, xm, xc = _case(cfg, 3, batch=4)
    est = estimate(EstimatorTask(qc, obs, parameter_values(qc, theta, xm, xc)))
    assert est.metadata["method"] == "exact path"
    np.testing.assert_allclose(est.values, exact.fidelity(theta, xm, xc, cfg).numpy(), atol=TOL)
    for paper in (QMAEConfig(image_size=8, latent_qubits=4), QMAEConfig(image_size=16, layers=2)):
        assert _gates(encoder(paper, light_cone=True)) == _gates(encoder(paper))  # all-pairs: as committed


# ------------------------------------------------------------------------------------------------ devices
@pytest.mark.parametrize("device", ["FakeTorino", "FakeSherbrooke"])
def test_the_encoder_routes_without_swaps_on_heavy_hex(device):
    from qiskit_ibm_runtime import fake_provider

    backend = getattr(fake_provider, device)()
    for ansatz, layers in (("brickwork", 3), ("all-pairs", 1)):
        qc = encoder_circuit(6, "theta", layers, ansatz)
        logical = sum(1 for i in qc.data if len(i.qubits) == 2)
        isa = transpile(qc, backend, optimization_level=1, seed_transpiler=1)
        routed = sum(1 for i in isa.data if len(i.qubits) == 2)
        if ansatz == "brickwork":
            assert routed == logical == 3 * 3 * 5  # 3 CX per block, one native 2q gate each, no SWAP
        else:
            assert routed > logical  # the paper's all-pairs layer needs SWAPs on heavy-hex


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_circuit_report_train_evaluate_take_the_ansatz(tmp_path, mnist_dir):
    runner = CliRunner()
    res = runner.invoke(
        main, ["circuit", "--image-size", "4", "--ansatz", "brickwork", "--json", "--out", str(tmp_path / "c")]
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["circuits"]["training"]["num_parameters"] == 45 + 2 * 15
    assert rep["config"]["ansatz"] == "brickwork"
    assert all("brickwork" in f for f in rep["circuits"]["training"]["files"])
    res = runner.invoke(
        main,
        ["report", "depth", "--backend", "fake_torino", "--image-size", "4", "--ansatz", "brickwork", "--layers", "2"]
        + ["--out", str(tmp_path)],
    )
    assert res.exit_code == 0, res.output
    (report,) = tmp_path.glob("fake_torino-O1-L4-layers2-brickwork.json")
    assert json.loads(report.read_text())["config"]["ansatz"] == "brickwork"
    assert "--ansatz brickwork" in report.with_suffix(".md").read_text()
    res = runner.invoke(main, ["report", "check", str(report)])
    assert res.exit_code == 0, res.output
    args = ["train", "--image-size", "4", "--ansatz", "brickwork", "--layers", "2", "--train-images", "16"]
    args += ["--val-images", "0", "--batch-size", "8", "--no-progress", "--out", str(tmp_path / "runs")]
    res = runner.invoke(main, args + ["--data-dir", str(mnist_dir)])
    assert res.exit_code == 0, res.output
    assert "90 angles in 2 layers of the brickwork ansatz" in res.output
    (run,) = (tmp_path / "runs").iterdir()
    assert "-l2-brickwork-" in run.name
    from qmae_qiskit.train.runs import load_trained

    tm = load_trained(run)
    assert tm.cfg.ansatz == "brickwork" and tm.theta.numel() == 90
    fids = {}
    # the exact path against the circuits run on Aer (exact values): the SWAP test, and the light-cone inverse circuit
    for backend, circuit in (("exact", "auto"), ("aer_simulator", "swap-test"), ("aer_simulator", "inverse")):
        out = tmp_path / f"eval-{backend}-{circuit}"
        res = runner.invoke(
            main,
            ["evaluate", str(run), "--images", "3", "--backend", backend, "--no-classifier", "--no-baselines"]
            + ["--fidelity-circuit", circuit, "--out", str(out), "--data-dir", str(mnist_dir)],
        )
        assert res.exit_code == 0, res.output
        fids[circuit] = json.loads((out / "eval.json").read_text())
    assert {f["config"]["ansatz"] for f in fids.values()} == {"brickwork"}
    a, b, c = (fids[k]["metrics"]["fidelity"]["mean"] for k in ("auto", "swap-test", "inverse"))
    assert abs(a - b) < 1e-9 and abs(a - c) < 1e-9, (a, b, c)


def test_cli_unknown_ansatz_is_one_line_exit_2_and_nothing_written(tmp_path):
    res = CliRunner().invoke(main, ["circuit", "--image-size", "4", "--ansatz", "ladder", "--out", str(tmp_path / "c")])
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0 and "ansatz must be one of all-pairs, brickwork" in res.output
    assert not (tmp_path / "c").exists()


def test_sweep_axis_builds_cells_of_both_ansatze():
    from qmae_qiskit.experiments import grid as G
    from qmae_qiskit.experiments.cells import build_cells

    cells = build_cells(G.parse_grid_args(["ansatz=all-pairs,brickwork", "layers=1,3"]), {"image_size": 8})
    assert [c.name for c in cells] == ["all-pairs-l1", "all-pairs-l3", "brickwork-l1", "brickwork-l3"]
    assert [c.settings.config.n_theta for c in cells] == [225, 675, 75, 225]
    with pytest.raises(Exception, match="unknown value 'ladder' for ansatz"):
        G.parse_grid_args(["ansatz=ladder"])
