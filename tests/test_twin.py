"""The local twin of a device: compaction keeps the calibration, results match the whole device, mitigation works."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp
from qiskit_aer import AerSimulator
from qiskit_ibm_runtime.fake_provider import FakeManilaV2, FakeTorino

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.execution import EstimatorTask, SamplerTask, Work
from qmae_qiskit.hardware.executors.twin import TwinExecutor
from qmae_qiskit.hardware.mitigation import parse_mitigation
from qmae_qiskit.hardware.transpile import map_observable, transpile_for
from qmae_qiskit.hardware.twin import active_qubits, make_twin
from qmae_qiskit.hardware.twin_simulator import TwinSimulator, split_measurement_tail


@pytest.fixture(scope="module")
def torino():
    return FakeTorino()


def _routed_ghz(device) -> QuantumCircuit:
    """A 3-qubit GHZ forced onto distant qubits, so routing adds SWAPs through other physical qubits."""
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 1)
    qc.cx(1, 2)
    return transpile_for(qc, device, 1, 7, initial_layout=[50, 55, 70])


def test_the_twin_keeps_layout_routing_and_each_active_qubits_calibration(torino):
    isa = _routed_ghz(torino)
    twin = make_twin(torino, isa)
    assert twin.physical == active_qubits(isa) and len(twin.physical) > 3  # routing used more qubits than 3
    assert twin.circuit.count_ops() == isa.count_ops()
    full, small = torino.target, twin.backend.target
    for name in small.operation_names:
        for qargs, props in small[name].items():
            if qargs is None or props is None:
                continue
            original = full[name][tuple(twin.physical[q] for q in qargs)]
            assert (props.error, props.duration) == (original.error, original.duration)
    for i, p in enumerate(twin.physical):
        assert small.qubit_properties[i].t1 == full.qubit_properties[p].t1
        assert small.qubit_properties[i].t2 == full.qubit_properties[p].t2


def test_the_twin_samples_what_the_whole_device_samples(torino):
    """Counts of the twin (client-side Sampler) and of AerSimulator.from_backend(whole device) agree."""
    from qiskit.circuit import ClassicalRegister

    from qmae_qiskit.hardware.transpile import final_physical

    isa = _routed_ghz(torino)
    meas = ClassicalRegister(3, "meas")
    isa.add_register(meas)
    isa.measure(final_physical(isa), meas)  # the 3 logical qubits where routing left them
    shots = 20000
    whole = AerSimulator.from_backend(torino).run(isa, shots=shots, seed_simulator=3).result().get_counts()
    work = Work({"s": SamplerTask(isa, np.zeros((1, 0)), "meas")}, shots=shots, seed=5)
    twin = TwinExecutor(torino).run(work).result()["s"]
    p_whole = np.zeros(8)
    for key, c in whole.items():
        p_whole[int(key.replace(" ", ""), 2)] += c / shots
    assert abs(twin.probabilities.sum() - 1) < 1e-12
    tv = 0.5 * np.abs(twin.probabilities[0] - p_whole).sum()
    assert tv < 0.02, (tv, twin.probabilities[0], p_whole)  # two 20,000-shot samples of 8 outcomes: TV ~ 0.006
    assert p_whole[0] + p_whole[7] < 0.95  # and the device is noisy: the match is not two ideal GHZ states


def _identity_cx_chain() -> tuple[QuantumCircuit, SparsePauliOp]:
    """|111> then 3 blocks of CX pairs that cancel: ideal <Z0>, <Z0 Z1 Z2> = -1, <Z1 Z2> = +1."""
    qc = QuantumCircuit(3)
    qc.x(0)
    qc.cx(0, 1)
    qc.cx(1, 2)
    for _ in range(3):
        qc.barrier()
        qc.cx(0, 1)
        qc.cx(1, 2)
        qc.barrier()
        qc.cx(1, 2)
        qc.cx(0, 1)
    return qc, SparsePauliOp(["IIZ", "ZZZ", "ZZI"])


def test_each_resilience_level_moves_a_known_ideal_value_toward_it(torino):
    qc, obs = _identity_cx_chain()
    isa = transpile_for(qc, torino, 1, 11)
    ideal = np.array([-1.0, -1.0, 1.0])
    errors = []
    for level in (0, 1, 2):
        rows = np.zeros((1, 0))
        tasks = {f"o{k}": EstimatorTask(isa, map_observable(SparsePauliOp(obs.paulis[k]), isa), rows) for k in range(3)}
        work = Work(tasks, shots=4000, mitigation=parse_mitigation(f"resilience_level={level}"), seed=11)
        res = TwinExecutor(torino).run(work).result()
        errors.append(np.abs(np.array([res[f"o{k}"].values[0] for k in range(3)]) - ideal).mean())
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[0] > 0.05 and errors[2] < 0.6 * errors[0]


def test_readout_correction_brings_a_known_distribution_back(torino):
    """|101> measured: mthree, calibrated in the same job, moves P(101) toward 1."""
    qc = QuantumCircuit(3)
    qc.x([0, 2])
    qc.measure_all()
    isa = transpile_for(qc, torino, 1, 5)
    task = SamplerTask(isa, np.zeros((1, 0)), "meas")
    raw = TwinExecutor(torino).run(Work({"s": task}, shots=8000, seed=2)).result()["s"]
    fixed = (
        TwinExecutor(torino)
        .run(Work({"s": task}, shots=8000, seed=2, mitigation=parse_mitigation(None, "mthree")))
        .result()["s"]
    )
    assert fixed.metadata["readout"] == "mthree" and len(fixed.metadata["assignment_matrices"]) == 3
    assert 1 - fixed.probabilities[0, 0b101] < 0.5 * (1 - raw.probabilities[0, 0b101])


def test_a_device_without_calibration_has_no_twin():
    bare = AerSimulator()
    with pytest.raises(QMAEError, match="no calibration data"):
        TwinExecutor(bare)


# ---------------------------------------------------------------------------------------- twin simulator
def _tail_circuit() -> tuple[QuantumCircuit, list[Parameter]]:
    """A body (with parameter a) and a measurement tail whose gates carry parameters b, c, d, like a twirl."""
    a, b, c, d = (Parameter(x) for x in "abcd")
    qc = QuantumCircuit(3, 3)
    qc.sx(0)
    qc.rz(a, 0)
    qc.sx(0)
    qc.cx(0, 1)
    qc.sx(2)
    qc.cx(1, 2)
    qc.barrier()
    qc.rz(b, 0)
    qc.sx(0)
    qc.rz(c, 0)
    qc.rz(d, 1)
    qc.sx(1)
    qc.x(2)
    qc.barrier()
    qc.measure([0, 1, 2], [2, 0, 1])
    return qc, [a, b, c, d]


def test_split_finds_the_body_and_each_qubits_tail():
    qc, (a, *_) = _tail_circuit()
    split = split_measurement_tail(qc)
    assert split is not None and split.measured == {0: 2, 1: 0, 2: 1}
    assert {q: [i.operation.name for i in ops] for q, ops in split.tail.items()} == {
        0: ["rz", "sx", "rz"],
        1: ["rz", "sx"],
        2: ["x"],
    }
    assert split.body_params == [a]
    mid = QuantumCircuit(2, 2)
    mid.measure(0, 0)
    mid.cx(0, 1)
    mid.measure(1, 1)
    assert split_measurement_tail(mid) is None  # a mid-circuit measurement: simulated by Aer as it is


def test_twin_simulator_samples_the_same_distribution_as_aer():
    """Shared bodies, varying tails: the cached-body path against Aer's density matrix, 400,000 shots each."""
    dev = FakeManilaV2()
    qc, (a, b, c, d) = _tail_circuit()
    bind = {
        a: np.array([0.4, 0.4, 0.4, 1.0]),
        b: np.array([0.1, 0.7, 1.3, 0.1]),
        c: np.array([0.2, 2.0, 0.5, 0.2]),
        d: np.array([0.0, 1.0, 2.0, 3.0]),
    }
    shots = 400_000
    ours = (
        TwinSimulator.from_backend(dev, method="density_matrix")
        .run([qc], parameter_binds=[bind], shots=shots, seed_simulator=3, memory=True)
        .result()
    )
    aer = AerSimulator.from_backend(dev, method="density_matrix")
    for k in range(4):
        p_ours = np.bincount([int(m, 16) for m in ours.results[k].data.memory], minlength=8) / shots
        counts = (
            aer.run(qc.assign_parameters({p: v[k] for p, v in bind.items()}), shots=shots, seed_simulator=9)
            .result()
            .get_counts()
        )
        p_aer = np.array([counts.get(format(i, "03b"), 0) for i in range(8)]) / shots
        sigma = np.sqrt(2 * np.maximum(p_aer, 1e-4) / shots)
        assert np.all(np.abs(p_ours - p_aer) < 5 * sigma), (k, p_ours, p_aer)
