"""Structure of the built circuits: qubit roles, parameter names and counts, gate content of each part."""

import numpy as np
import pytest
import torch
from qiskit.circuit.library import StatePreparation
from qiskit.quantum_info import Operator, Statevector, random_statevector

from qmae_qiskit.model.ansatz import BLOCK_PARAMS, block_circuit, block_matrices, pair_order
from qmae_qiskit.model.circuits import (
    decoder,
    encoder,
    fidelity_observable,
    parameter_groups,
    reconstruction_circuit,
    swap_test,
    training_circuit,
)
from qmae_qiskit.model.config import QMAEConfig


@pytest.mark.parametrize("L", [4, 8, 16])
def test_training_circuit_roles_and_parameters(L):
    cfg = QMAEConfig(image_size=L)
    n = cfg.n_qubits
    qc = training_circuit(cfg)
    md = qc.metadata
    assert qc.num_qubits == 2 * n + 2 == cfg.n_circuit_qubits
    assert md["ancilla"] == 0 and md["qubit_roles"][0] == "ancilla"
    assert md["qubit_roles"].count("fresh") == 1
    assert md["qubit_roles"].count("data/latent") == n - 1
    assert md["qubit_roles"].count("data/trash") == 1
    assert md["qubit_roles"].count("reference") == n
    assert md["trash_qubits"] == [md["data_qubits"][-1]]  # the most significant pixel bit is trash
    groups = parameter_groups(qc)
    assert len(groups["theta"]) == n * (n - 1) // 2 * 15 == cfg.n_theta
    assert len(groups["xm"]) == len(groups["xr"]) == 2**n - 1
    assert qc.num_parameters == cfg.n_theta + 2 * (2**n - 1)
    assert [p.name for p in groups["theta"][:2]] == ["theta[0]", "theta[1]"]
    ops = qc.count_ops()
    assert ops["cswap"] == n and ops["h"] == 2 and ops["swap"] == 1


def test_reset_variant_uses_mid_circuit_reset_and_no_fresh_qubit():
    cfg = QMAEConfig(image_size=4, latent_qubits=2, trash_reset="reset")
    qc = training_circuit(cfg)
    assert qc.num_qubits == 2 * 4 + 1
    assert "fresh" not in qc.metadata["qubit_roles"]
    assert qc.count_ops()["reset"] == 2 and "swap" not in qc.count_ops()


def test_reconstruction_circuit_measures_data_qubits_in_pixel_order():
    cfg = QMAEConfig(image_size=8)
    qc = reconstruction_circuit(cfg)
    data = qc.metadata["data_qubits"]
    measured = [
        (qc.find_bit(i.qubits[0]).index, qc.find_bit(i.clbits[0]).index)
        for i in qc.data
        if i.operation.name == "measure"
    ]
    assert measured == [(q, j) for j, q in enumerate(data)]
    assert qc.metadata["ancilla"] is None


def test_block_has_paper_gate_counts_and_matches_torch_fusion():
    blk = block_circuit()
    assert dict(blk.count_ops()) == {"rz": 9, "ry": 6, "cx": 3}
    assert blk.num_parameters == BLOCK_PARAMS
    th = torch.rand(BLOCK_PARAMS, dtype=torch.float64) * 2 * np.pi
    np.testing.assert_allclose(Operator(blk.assign_parameters(th.numpy())).data, block_matrices(th).numpy(), atol=1e-12)


def test_encoder_pair_order_and_decoder_is_inverse():
    cfg = QMAEConfig(image_size=4)
    enc = encoder(cfg)
    assert pair_order(4) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    # the first gate of block m acts on the first qubit of pair m
    firsts = [enc.find_bit(enc.data[18 * m].qubits[0]).index for m in range(6)]
    assert firsts == [a for a, _ in pair_order(4)]
    dec = decoder(cfg, enc)
    vals = np.random.default_rng(0).uniform(0, 2 * np.pi, enc.num_parameters)
    U = Operator(enc.assign_parameters(vals)).data
    Ud = Operator(dec.assign_parameters(vals)).data
    np.testing.assert_allclose(Ud @ U, np.eye(16), atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_swap_test_gives_squared_overlap(n):
    rng = np.random.default_rng(n)
    obs = fidelity_observable(2 * n + 1)
    for identical in (True, False):
        a = random_statevector(2**n, seed=rng)
        b = a if identical else random_statevector(2**n, seed=rng)
        prep = swap_test(n).copy_empty_like()
        prep.append(StatePreparation(a.data), range(1, n + 1))
        prep.append(StatePreparation(b.data), range(n + 1, 2 * n + 1))
        z = Statevector(prep.compose(swap_test(n))).expectation_value(obs).real
        expected = 1.0 if identical else abs(np.vdot(a.data, b.data)) ** 2
        assert z == pytest.approx(expected, abs=1e-12)


def test_fidelity_observable_is_z_on_ancilla():
    assert fidelity_observable(4).paulis[0].to_label() == "IIIZ"
    assert fidelity_observable(4, ancilla=2).paulis[0].to_label() == "IZII"
