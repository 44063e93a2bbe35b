"""Noise-aware placement and device choice: the score against a hand computation, a bad region avoided, never
worse than Qiskit's own layout, the better device picked, bad input refused."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from qiskit import QuantumCircuit
from qiskit.providers.fake_provider import GenericBackendV2
from qiskit.transpiler import CouplingMap, InstructionProperties, PassManager, QubitProperties
from qiskit.transpiler.passes import ALAPScheduleAnalysis, PadDelay
from qiskit_ibm_runtime.fake_provider import FakeLimaV2, FakeManilaV2

from qmae_qiskit.cli import main
from qmae_qiskit.hardware.placement import place, score_circuit
from qmae_qiskit.hardware.transpile import transpile_for

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "MNIST" / "raw").is_dir(), reason="needs MNIST in ../shared/data")


# ------------------------------------------------------------------------------------ the score by hand
def _waiting_circuit() -> QuantumCircuit:
    """Qubit 2 is entangled first, then waits through six CNOTs on 0-1 until it is measured: it idles between
    its gates (the measurements are aligned by measure_all's barrier)."""
    qc = QuantumCircuit(3)
    qc.sx(1)
    qc.cx(1, 2)
    qc.sx(0)
    for k in range(3):
        qc.cx(0, 1)
        qc.rz(0.1 + k, 1)
        qc.cx(1, 0)
    qc.measure_all()
    return qc


def _hand_score(isa: QuantumCircuit, target) -> float:
    """-ln P by hand: the product of (1 - error) over every gate and measurement, and for each qubit
    exp(-idle (1/T1 + 1/T2)), its idle time being its span in the ALAP schedule (first gate's start to last
    instruction's end) less the time its own gates and measurement take."""
    log_p = 0.0
    busy: dict[int, float] = {}
    for instr in isa.data:
        name = instr.operation.name
        if name in ("barrier", "delay"):
            continue
        qubits = tuple(isa.find_bit(q).index for q in instr.qubits)
        props = target[name][qubits]
        log_p += math.log(1.0 - (props.error or 0.0))
        for q in qubits:
            busy[q] = busy.get(q, 0.0) + props.duration
    sched = PassManager([ALAPScheduleAnalysis(target=target), PadDelay(target=target)]).run(isa)
    starts = sched.op_start_times
    span: dict[int, list[float]] = {}
    for instr, start in zip(sched.data, starts):
        name = instr.operation.name
        if name in ("barrier", "delay"):
            continue
        qubits = tuple(sched.find_bit(q).index for q in instr.qubits)
        end = start * target.dt + target[name][qubits].duration
        for q in qubits:
            lo, hi = span.get(q, [math.inf, 0.0])
            span[q] = [min(lo, start * target.dt), max(hi, end)]
    for q, (lo, hi) in span.items():
        idle = hi - lo - busy[q]
        props = target.qubit_properties[q]
        log_p -= idle * (1.0 / props.t1 + 1.0 / props.t2)
    return -log_p


def test_the_score_equals_a_hand_computation_on_a_fake_backend():
    backend = FakeManilaV2()
    isa = transpile_for(_waiting_circuit(), backend, optimization_level=0, initial_layout=[0, 1, 2])
    score = score_circuit(isa, backend.target)
    assert score.idle > 0 and score.readout > 0 and score.gates > 0
    assert score.total == pytest.approx(_hand_score(isa, backend.target), rel=1e-9)
    assert score.success == pytest.approx(math.exp(-_hand_score(isa, backend.target)), rel=1e-9)


# ------------------------------------------------------------------------------------ a bad region avoided
def _two_regions() -> GenericBackendV2:
    """A 10-qubit line: qubits 0-4 have the lowest gate and readout errors but T1 = T2 = 1 us (they decay while
    they wait); qubits 5-9 ten times the gate error and T1 = T2 = 300 us. Qiskit's layout scoring sees only
    the errors; the expected error with idle time favours 5-9."""
    backend = GenericBackendV2(10, basis_gates=["cx", "rz", "sx", "x"], coupling_map=CouplingMap.from_line(10), seed=3)
    target = backend.target
    for name in target.operation_names:
        for qargs, props in list(target[name].items()):
            if qargs is None or props is None or name == "delay":
                continue
            good = all(q < 5 for q in qargs)
            error = (1e-5 if good else 1e-4) * (10 if len(qargs) == 2 or name == "measure" else 1)
            target.update_instruction_properties(name, qargs, InstructionProperties(props.duration, error))
    target.qubit_properties = [  # (the Target hands out copies of its qubit properties)
        QubitProperties(t1=t, t2=t, frequency=p.frequency)
        for t, p in zip([1e-6] * 5 + [3e-4] * 5, target.qubit_properties)
    ]
    return backend


def test_noise_aware_placement_avoids_a_region_that_decays_while_a_better_one_exists():
    backend = _two_regions()
    placed = place(_waiting_circuit(), backend, optimization_level=1, seed=7)
    qiskit_own = place(_waiting_circuit(), backend, optimization_level=1, seed=7, placement="qiskit")
    assert all(q >= 5 for q in placed.layout), placed.layout
    assert all(q < 5 for q in qiskit_own.layout), qiskit_own.layout  # Qiskit's scoring misses the idle decay
    assert placed.score.total < 0.5 * qiskit_own.score.total
    assert placed.score.total == pytest.approx(score_circuit(placed.isa, backend.target).total, rel=1e-12)


@pytest.mark.parametrize("level", [1, 3])
def test_the_chosen_layout_never_scores_worse_than_qiskits(level):
    from qiskit_ibm_runtime.fake_provider import FakeTorino

    qc = QuantumCircuit(5)
    qc.h(0)
    for a in range(5):
        for b in range(a + 1, 5):
            qc.cx(a, b)
            qc.rz(0.3 * (a + b), b)
    backend = FakeTorino()
    placed = place(qc, backend, level, seed=11)
    assert placed.candidates > 100  # every match of the routed circuit on 133 qubits, not a call-limited few
    assert placed.score.total <= placed.qiskit_score.total + 1e-12
    assert placed.qiskit_score.total == pytest.approx(
        score_circuit(transpile_for(qc, backend, level, 11), backend.target).total, rel=1e-12
    )


# ------------------------------------------------------------------------------------ device choice (conftest's run4)
def _worse(monkeypatch, cls) -> None:
    """``cls``'s twin with every gate and readout error tripled (its own calibration otherwise)."""
    original = cls.target.fget
    done: list = []  # the targets already made worse (a Target takes no new attributes)

    def target(self):
        t = original(self)
        if not any(t is d for d in done):
            for name in t.operation_names:
                for qargs, props in list(t[name].items()):
                    if qargs is not None and props is not None and props.error is not None:
                        new = InstructionProperties(props.duration, min(3 * props.error, 0.5))
                        t.update_instruction_properties(name, qargs, new)
            done.append(t)
        return t

    monkeypatch.setattr(cls, "target", property(target))


def _files(*folders: Path) -> set[Path]:
    return {p for f in folders if f.exists() for p in f.rglob("*")}


@needs_data
@pytest.mark.parametrize("worse, better", [(FakeLimaV2, "fake_manila"), (FakeManilaV2, "fake_lima")])
def test_a_backend_list_picks_the_device_of_lower_expected_error(run4, tmp_path, monkeypatch, worse, better):
    monkeypatch.chdir(tmp_path)
    _worse(monkeypatch, worse)
    for command in ("evaluate", "submit"):
        args = [command, str(run4), "--backend", "fake_manila,fake_lima", "--images", "2", "--shots", "100"]
        res = CliRunner().invoke(main, [*args, "--placement", "noise-aware", "--dry-run"])
        assert res.exit_code == 0, res.output
        assert f"chose {better}" in res.output and f"QPU plan on {better}" in res.output, res.output
        ranking = [line.split()[0] for line in res.output.splitlines() if " score " in line]
        assert ranking[0] == better and sorted(ranking) == ["fake_lima", "fake_manila"]


@needs_data
@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "fake_manila,fake_nowhere"], "unknown backend 'fake_nowhere'"),
        (["--backend", "fake_manila,exact"], "exact is no device"),
        (["--backend", "exact", "--placement", "noise-aware"], "--placement noise-aware chooses a device's qubits"),
    ],
)
def test_bad_placement_or_device_list_is_one_line_exit_2_and_writes_nothing(run4, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    before = _files(run4, tmp_path)
    for command in (["evaluate", str(run4), "--images", "2"], ["study", "noise", str(run4), "--images", "2"]):
        res = CliRunner().invoke(main, [*command, "--shots", "100", *args])
        assert res.exit_code == 2 and message in res.output and res.output.count("\n") == 1, res.output
    assert _files(run4, tmp_path) == before


@needs_data
def test_a_frontier_refuses_a_device_choice_in_one_line(run4, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["study", "frontier", str(run4), "--backend", "fake_manila,fake_lima", "--loaders", "exact,ladder:1"]
    res = CliRunner().invoke(main, [*args, "--images", "2", "--shots", "100"])
    assert res.exit_code == 2 and "names a choice" in res.output and res.output.count("\n") == 1, res.output
    assert not _files(tmp_path)


@needs_data
def test_an_evaluation_records_its_placement_only_when_noise_aware(run4, tmp_path):
    import json

    base = ["evaluate", str(run4), "--backend", "fake_manila", "--images", "2", "--shots", "200", "--no-classifier"]
    base += ["--no-baselines", "--json"]
    records = {}
    for placement in ("qiskit", "noise-aware"):
        res = CliRunner().invoke(main, [*base, "--placement", placement, "--out", str(tmp_path / placement)])
        assert res.exit_code == 0, res.output
        records[placement] = json.loads((tmp_path / placement / "eval.json").read_text())
    assert "placement" not in records["qiskit"]  # Qiskit's layout, recorded as before placement existed
    assert records["noise-aware"]["placement"] == "noise-aware"


def test_auto_ranks_what_the_account_reaches_and_without_one_says_it_ranks_the_fake_twins(monkeypatch):
    import qiskit_ibm_runtime
    from qiskit_ibm_runtime.accounts import AccountNotFoundError

    from qmae_qiskit.evaluate.device_choice import CURRENT_FAKES, candidates

    class Service:  # the network boundary: an account that reaches two devices
        def backends(self, **filters):
            assert filters == {"operational": True, "simulator": False}
            return [FakeManilaV2(), FakeLimaV2()]

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", Service)
    heard: list[str] = []
    assert candidates("auto", heard.append) == ["fake_lima", "fake_manila"] and not heard

    class NoAccount:
        def __init__(self, *a, **k):
            raise AccountNotFoundError("Unable to find account.")

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", NoAccount)
    assert candidates("auto", heard.append) == list(CURRENT_FAKES)
    assert len(heard) == 1 and "no IBM Quantum account" in heard[0] and "fake_torino" in heard[0]
