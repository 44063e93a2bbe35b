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
from qmae_qiskit.hardware.idle_noise import IdleNoise
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
    """Counts of the twin (client-side Sampler) and of AerSimulator.from_backend(whole device) agree (both
    unscheduled, as twins were before 2026-12-04: --no-idle-relaxation reproduces those records)."""
    from qiskit.circuit import ClassicalRegister

    from qmae_qiskit.hardware.transpile import final_physical

    isa = _routed_ghz(torino)
    meas = ClassicalRegister(3, "meas")
    isa.add_register(meas)
    isa.measure(final_physical(isa), meas)  # the 3 logical qubits where routing left them
    shots = 20000
    whole = AerSimulator.from_backend(torino).run(isa, shots=shots, seed_simulator=3).result().get_counts()
    work = Work({"s": SamplerTask(isa, np.zeros((1, 0)), "meas")}, shots=shots, seed=5)
    twin = TwinExecutor(torino, idle=IdleNoise(scheduled=False)).run(work).result()["s"]  # both unscheduled
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


# ------------------------------------------------------------------------------ scheduling and idle noise
def _bell_wait(device, cx_pairs: int = 60, undo: bool = True) -> QuantumCircuit:
    """Qubits 0, 1 in a Bell state; qubit 0 waits while 1 and 2 run ``cx_pairs`` cancelling CX pairs (the wait is
    forced by the dependencies, not by barriers, which the runtime drops); then the Bell state is undone."""
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 1)
    for _ in range(2 * cx_pairs):
        qc.cx(1, 2)
        qc.barrier([1, 2])  # keeps the transpiler from cancelling the pairs
    if undo:
        qc.cx(0, 1)
        qc.h(0)
    return transpile_for(qc, device, 1, 7, initial_layout=[49, 50, 51])  # a line: no routing


def test_schedule_pads_every_wire_with_the_targets_durations(torino):
    from qmae_qiskit.hardware.schedule import schedule, timeline

    isa = _routed_ghz(torino)
    scheduled = schedule(isa, torino.target)
    times = timeline(scheduled, torino.target)
    end = max(s + d for s, d in times)
    assert end == pytest.approx(scheduled.estimate_duration(torino.target, unit="s"), rel=1e-12)  # Qiskit's own
    busy = np.zeros(scheduled.num_qubits)
    for instr, (_, length) in zip(scheduled.data, times):
        if instr.operation.name != "barrier":
            for q in instr.qubits:
                busy[scheduled.find_bit(q).index] += length
    active = active_qubits(isa)
    assert np.allclose(busy[active], end, rtol=0, atol=1e-15)  # no gaps: every active wire is busy or delayed
    assert schedule(scheduled, torino.target).count_ops() == scheduled.count_ops()  # scheduling is idempotent


def test_the_scheduled_twin_samples_what_the_scheduled_whole_device_samples(torino):
    """Scheduled on both sides, the twin (compact qubits) and AerSimulator.from_backend(whole device) agree; and
    the waiting qubit really dephases: unscheduled, the whole device keeps more of the Bell state."""
    from qiskit.circuit import ClassicalRegister

    from qmae_qiskit.hardware.schedule import schedule
    from qmae_qiskit.hardware.transpile import final_physical

    isa = _bell_wait(torino)
    isa.add_register(ClassicalRegister(3, "meas"))
    isa.measure(final_physical(isa), isa.cregs[-1])
    shots = 20000
    aer = AerSimulator.from_backend(torino)

    def probs(counts: dict) -> np.ndarray:
        p = np.zeros(8)
        for key, c in counts.items():
            p[int(key.replace(" ", ""), 2)] += c / shots
        return p

    scheduled = schedule(isa, torino.target)
    active = set(active_qubits(isa))
    scheduled.data = [  # a delay on a qubit left in |0> is the identity (T = 0): drop those, or Aer simulates 133
        i for i in scheduled.data if i.operation.name != "delay" or scheduled.find_bit(i.qubits[0]).index in active
    ]
    whole = probs(aer.run(scheduled, shots=shots, seed_simulator=3).result().get_counts())
    unscheduled = probs(aer.run(isa, shots=shots, seed_simulator=4).result().get_counts())
    work = Work({"s": SamplerTask(isa, np.zeros((1, 0)), "meas")}, shots=shots, seed=5)
    twin = TwinExecutor(torino).run(work).result()["s"].probabilities[0]
    assert 0.5 * np.abs(twin - whole).sum() < 0.02, (twin, whole)
    flipped = [p[1::2].sum() for p in (twin, whole, unscheduled)]  # qubit 0 reads 1: the Bell state dephased
    sigma = np.sqrt(2 * flipped[2] / shots)
    assert flipped[0] - flipped[2] > 5 * sigma and flipped[1] - flipped[2] > 5 * sigma, flipped


def _two_qubit_timeline() -> list[tuple[str, tuple[int, ...], int, int]]:
    """(gate, qubits, start, length) in ns on a coupled pair; delays fill every gap (an X echo on qubit 0)."""
    return [
        ("sx", (0,), 0, 32),
        ("delay", (0,), 32, 500),
        ("x", (0,), 532, 32),
        ("delay", (0,), 564, 500),
        ("delay", (1,), 0, 232),
        ("sx", (1,), 232, 32),
        ("delay", (1,), 264, 800),
        ("cz", (0, 1), 1064, 68),
        ("sx", (1,), 1132, 32),
        ("delay", (1,), 1164, 300),
        ("delay", (0,), 1132, 300),
        ("sx", (0,), 1432, 32),
    ]


def _hamiltonian_state(events, zz: float, det: float) -> np.ndarray:
    """Time-sliced exact evolution under H = 2 pi (det (n0 + n1) + zz n0 n1) while idle, gates at their start."""
    from qiskit.circuit.library import CZGate, SXGate, XGate
    from scipy.linalg import expm

    mats = {"sx": SXGate().to_matrix(), "x": XGate().to_matrix(), "cz": CZGate().to_matrix()}
    n = np.diag([0.0, 1.0])
    eye = np.eye(2)
    n0, n1 = np.kron(eye, n), np.kron(n, eye)  # little-endian: qubit 0 is the low bit
    psi = np.zeros(4, dtype=complex)
    psi[0] = 1
    bounds = sorted({t for _, _, s, d in events for t in (s, s + d)})
    for t0, t1 in zip(bounds[:-1], bounds[1:]):
        for name, qubits, start, _ in events:
            if start == t0 and name != "delay":
                one = mats[name]
                op = one if len(qubits) == 2 else (np.kron(eye, one) if qubits[0] == 0 else np.kron(one, eye))
                psi = op @ psi
        idle = [any(nm == "delay" and q in qs and s <= t0 and t1 <= s + d for nm, qs, s, d in events) for q in (0, 1)]
        h = 2 * np.pi * (det * (idle[0] * n0 + idle[1] * n1) + zz * (idle[0] and idle[1]) * (n0 @ n1))
        psi = expm(-1j * h * (t1 - t0) * 1e-9) @ psi
    return psi


def test_idle_errors_match_the_exact_hamiltonian_evolution_on_two_qubits(torino):
    """Detuning phases after each delay and ZZ phases where two coupled delays overlap give the state of the
    time-sliced evolution under the idle Hamiltonian, to 1e-9 (with an X echo: placement and signs matter)."""
    from qiskit.circuit import Delay
    from qiskit.circuit.library import UnitaryGate
    from qiskit.quantum_info import Statevector

    from qmae_qiskit.hardware.idle_noise import add_idle_errors

    pair = next(q for q in torino.target["cz"] if q[0] < q[1])
    target = make_twin(torino, QuantumCircuit(torino.num_qubits), list(pair)).backend.target
    dt_ns = target.dt * 1e9
    qc = QuantumCircuit(2)
    for name, qubits, _, length in _two_qubit_timeline():  # circuit order is not time order
        if name == "delay":
            qc.append(Delay(round(length / dt_ns), "dt"), list(qubits))
        else:
            getattr(qc, name)(*qubits)
    zz, det = 600e3, 170e3
    noisy = add_idle_errors(qc, target, IdleNoise(zz_hz=zz, detuning_hz=det))
    assert {i.operation.name for i in noisy.data} >= {"kraus", "rz", "delay"}
    unitary = qc.copy_empty_like()
    for instr in noisy.data:
        op = instr.operation
        unitary.append(UnitaryGate(op.params[0]) if op.name == "kraus" else op, instr.qubits)
    ours = Statevector(unitary).data
    exact = _hamiltonian_state(_two_qubit_timeline(), zz, det)
    assert abs(abs(np.vdot(exact, ours)) - 1) < 1e-9
    plain = Statevector(qc).data
    assert abs(np.vdot(exact, plain)) < 0.5  # the phases are large enough to matter
    for wrong in ((-zz, det), (zz, -det)):  # and a sign error in either would show
        assert abs(np.vdot(_hamiltonian_state(_two_qubit_timeline(), *wrong), ours)) < 0.7


def test_dynamical_decoupling_refocuses_coherent_idle_errors_only(torino):
    """<XX> of a Bell pair whose qubit 0 waits: detuning and ZZ turn it away, DD (XX) brings it back; with idle
    errors off, the twin has only Markovian relaxation, which DD cannot undo."""

    isa = _bell_wait(torino, 20, undo=False)
    obs = map_observable(SparsePauliOp("IXX"), isa)  # ideal 1
    values = {}
    for idle in (None, IdleNoise(zz_hz=50e3, detuning_hz=30e3)):
        for opts in ("resilience_level=0", "dd_sequence=XX"):
            mitigation = parse_mitigation(opts)
            work = Work({"e": EstimatorTask(isa, obs, np.zeros((1, 0)))}, shots=8000, mitigation=mitigation, seed=1)
            values[(idle is not None, opts)] = TwinExecutor(torino, idle=idle).run(work).result()["e"].values[0]
    raw, dd = (values[(True, o)] for o in ("resilience_level=0", "dd_sequence=XX"))
    assert values[(False, "resilience_level=0")] - raw > 0.5, values  # the idle phases turned the pair away
    assert dd - raw > 0.4, values  # DD echoes most of them out (ZZ in short idles of the busy neighbour stays)
    assert abs(values[(False, "dd_sequence=XX")] - values[(False, "resilience_level=0")]) < 0.05, values


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "fake_manila", "--idle-zz", "-2e6"], "--idle-zz -2e+06 Hz is out of range"),
        (["--backend", "exact", "--idle-detuning", "1e3"], "apply to a device's local twin"),
        (["--backend", "fake_manila", "--noise-model", "fake_manila", "--idle-zz", "1e3"], "--noise-model applies"),
        (["--backend", "fake_manila", "--no-idle-relaxation", "--idle-zz", "1e3"], "drop --no-idle-relaxation"),
    ],
)
def test_evaluate_refuses_bad_idle_noise_in_one_line_and_writes_nothing(tmp_path, args, message):
    from pathlib import Path

    from click.testing import CliRunner

    from qmae_qiskit.cli import main

    run = Path(__file__).resolve().parents[1] / "results" / "hardware" / "qmae-L4"
    res = CliRunner().invoke(main, ["evaluate", str(run), "--images", "2", "--out", str(tmp_path / "e"), *args])
    assert res.exit_code == 2 and message in res.output and res.output.count("\n") == 1, res.output
    assert not any(tmp_path.iterdir())


def test_a_target_without_durations_cannot_be_scheduled_and_says_so():
    from qiskit.circuit.library import SXGate
    from qiskit.transpiler import InstructionProperties, Target

    from qmae_qiskit.hardware.schedule import schedule

    target = Target(num_qubits=1, dt=1e-9)
    target.add_instruction(SXGate(), {(0,): InstructionProperties(duration=None)})
    qc = QuantumCircuit(1)
    qc.sx(0)
    with pytest.raises(QMAEError, match="needs every gate's duration.*--no-idle-relaxation"):
        schedule(qc, target)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "fake_guadalupe", "--idle-detuning", "3e6"], "--idle-detuning 3e+06 Hz is out of range"),
        (["--backend", "aer_simulator", "--idle-zz", "1e4"], "apply to a device's local twin"),
    ],
)
def test_submit_refuses_bad_idle_noise_in_one_line_and_writes_nothing(tmp_path, args, message):
    from pathlib import Path

    from click.testing import CliRunner

    from qmae_qiskit.cli import main

    run = Path(__file__).resolve().parents[1] / "results" / "hardware" / "qmae-L4"
    cmd = ["submit", str(run), "--images", "2", "--shots", "100", "--jobs-dir", str(tmp_path / "jobs"), *args]
    res = CliRunner().invoke(main, cmd)
    assert res.exit_code == 2 and message in res.output and res.output.count("\n") == 1, res.output
    assert not any(tmp_path.iterdir())
