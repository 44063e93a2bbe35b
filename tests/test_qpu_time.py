"""QPU time before running: the estimate against a hand computation, what mitigation adds, dry runs, the cap."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import qiskit_ibm_runtime
from click.testing import CliRunner
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import PassManager
from qiskit.transpiler.passes import ALAPScheduleAnalysis, PadDelay
from qiskit_aer import AerSimulator
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

from qmae_qiskit.cli import main
from qmae_qiskit.hardware.execution import EstimatorTask, SamplerTask, Work
from qmae_qiskit.hardware.mitigation import parse_mitigation
from qmae_qiskit.hardware.qpu_fields import usage_of
from qmae_qiskit.hardware.qpu_time import (
    DEFAULT_REP_DELAY,
    JOB_OVERHEAD_SECONDS,
    circuit_duration,
    plan_work,
    rep_delay,
)
from qmae_qiskit.hardware.transpile import transpile_for
from qmae_qiskit.model.config import QMAEConfig

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CFG = QMAEConfig(image_size=4)


# ------------------------------------------------------------------------------------ the estimate by hand
def _isa(backend) -> QuantumCircuit:
    """A 3-qubit chain in the device's own gates, placed on physical 0-1-2 (no routing, nothing to optimise)."""
    theta = Parameter("theta")
    qc = QuantumCircuit(3)
    qc.sx(0)
    qc.x(1)
    qc.cx(0, 1)
    qc.rz(theta, 2)
    qc.sx(2)
    qc.cx(1, 2)
    qc.sx(0)
    qc.measure_all()
    return transpile_for(qc, backend, optimization_level=0, initial_layout=[0, 1, 2])


def _critical_path(qc: QuantumCircuit, target) -> float:
    """ASAP by hand: each instruction starts when all its qubits are free and lasts the Target's duration."""
    clock: dict[int, float] = {}
    for instr in qc.data:
        qubits = tuple(qc.find_bit(q).index for q in instr.qubits)
        name = instr.operation.name
        duration = 0.0
        if name != "barrier":
            duration = target[name][qubits].duration or 0.0
        start = max((clock.get(q, 0.0) for q in qubits), default=0.0)
        for q in qubits:
            clock[q] = start + duration
    return max(clock.values())


def _alap_timeline(qc: QuantumCircuit, target) -> float:
    """Qiskit's ALAP schedule with delays padded: the length of qubit 0's timeline, gates and delays."""
    sched = PassManager([ALAPScheduleAnalysis(target=target), PadDelay(target=target)]).run(qc)
    total = 0.0
    for instr in sched.data:
        op = instr.operation
        qubits = tuple(sched.find_bit(q).index for q in instr.qubits)
        if 0 not in qubits or op.name == "barrier":
            continue
        total += op.duration * target.dt if op.name == "delay" else target[op.name][qubits].duration or 0.0
    return total


def test_the_estimate_is_shots_times_rep_delay_plus_the_critical_path_plus_the_job_overhead():
    backend = FakeManilaV2()
    isa = _isa(backend)
    hand = _critical_path(isa, backend.target)
    measure = backend.target["measure"][(0,)].duration
    assert hand > measure > 0  # measurement included, gates before it too
    assert circuit_duration(isa, backend.target) == pytest.approx(hand, rel=1e-12)
    assert _alap_timeline(isa, backend.target) == pytest.approx(hand, rel=1e-12)  # the scheduled length too
    rows, shots = 3, 1000
    work = Work({"sample": SamplerTask(isa, np.linspace(0, 1, rows)[:, None], "meas")}, shots=shots)
    plan = plan_work(work, backend)
    want = rows * shots * (DEFAULT_REP_DELAY + hand) + 1 * JOB_OVERHEAD_SECONDS
    assert plan.qpu_seconds == pytest.approx(want, rel=1e-12)
    assert (plan.circuits, plan.shots, plan.two_qubit_gates, plan.jobs) == (rows, rows * shots, 2, 1)
    assert plan.duration_s == pytest.approx(hand, rel=1e-12) and plan.durations_known
    assert plan.cost == pytest.approx(want * 1.60)


def test_rep_delay_comes_from_the_option_then_the_backend_then_the_default():
    assert rep_delay(FakeManilaV2()) == FakeManilaV2().default_rep_delay
    assert rep_delay(AerSimulator()) == DEFAULT_REP_DELAY
    opts = parse_mitigation("execution.rep_delay=0.0001").estimator_options(shots=10)
    assert rep_delay(FakeManilaV2(), opts) == 1e-4


def _estimator_work(isa_body: QuantumCircuit, options: str, shots: int, rows: int) -> Work:
    obs = SparsePauliOp.from_sparse_list([("ZZ", [0, 2], 1.0)], isa_body.num_qubits)
    values = np.linspace(0, 1, rows)[:, None]
    return Work({"f": EstimatorTask(isa_body, obs, values)}, shots=shots, mitigation=parse_mitigation(options))


def _body(backend) -> QuantumCircuit:
    isa = _isa(backend)
    isa.remove_final_measurements()
    return isa


def test_trex_adds_its_randomizations_and_calibration_circuit_as_the_runtime_documents():
    backend, rows, shots = FakeManilaV2(), 4, 4000
    plan = plan_work(_estimator_work(_body(backend), "resilience.measure_mitigation=true", shots, rows), backend)
    per = max(64, math.ceil(shots / 32))  # TwirlingOptions: shots_per_randomization, both "auto"
    randomizations = math.ceil(shots / per)
    assert plan.circuits == rows * randomizations + randomizations  # + TREX's calibration circuit, twirled
    assert {i.shots for i in plan.items} == {per}
    raw = plan_work(_estimator_work(_body(backend), "resilience_level=0", shots, rows), backend)
    assert (raw.circuits, raw.shots) == (rows, rows * shots) and raw.qpu_seconds < plan.qpu_seconds


def test_zne_runs_each_noise_factor_with_folded_gates_and_costs_their_duration():
    backend, rows, shots = FakeManilaV2(), 2, 1000
    work = _estimator_work(
        _body(backend), "resilience.zne_mitigation=true,resilience.zne.noise_factors=[1,3,5]", shots, rows
    )
    plan = plan_work(work, backend)
    assert [i.two_qubit_gates for i in plan.items] == [2, 6, 10]  # gate folding: each CX as CX (CX CX)^k
    assert [i.circuits for i in plan.items] == [rows] * 3
    durations = [i.duration_s for i in plan.items]
    assert durations[0] < durations[1] < durations[2]
    want = sum(rows * shots * (DEFAULT_REP_DELAY + d) for d in durations) + JOB_OVERHEAD_SECONDS
    assert plan.qpu_seconds == pytest.approx(want, rel=1e-12)


def test_mthree_adds_its_two_calibration_circuits():
    backend, rows, shots = FakeManilaV2(), 3, 500
    isa = _isa(backend)
    values = np.zeros((rows, 1))
    plain = plan_work(Work({"s": SamplerTask(isa, values, "meas")}, shots=shots), backend)
    m3 = plan_work(
        Work({"s": SamplerTask(isa, values, "meas")}, shots=shots, mitigation=parse_mitigation(None, "mthree")), backend
    )
    assert (plain.circuits, m3.circuits) == (rows, rows + 2)


def test_a_target_without_durations_says_so_and_counts_the_shots():
    sim = AerSimulator()
    qc = QuantumCircuit(1, 1)
    qc.rx(Parameter("a"), 0)
    qc.measure(0, 0)
    isa = transpile_for(qc, sim)
    plan = plan_work(Work({"s": SamplerTask(isa, np.zeros((2, 1)), "c")}, shots=100), sim)
    assert not plan.durations_known and plan.notes
    assert plan.qpu_seconds == pytest.approx(2 * 100 * DEFAULT_REP_DELAY + JOB_OVERHEAD_SECONDS)


def test_usage_of_reads_what_ibm_reports_and_tolerates_jobs_that_cannot_tell():
    class IBMJob:  # stands for RuntimeJobV2 (the network boundary): its documented attributes
        usage_estimation = {"quantum_seconds": 4.1}

        def usage(self):
            return 3.9

    assert usage_of(IBMJob()) == {"usage_estimation_s": 4.1, "usage_s": 3.9}
    assert usage_of(object()) == {"usage_estimation_s": None, "usage_s": None}


# ------------------------------------------------------------------------------------------------ commands
pytestmark_data = pytest.mark.skipif(not (DATA / "MNIST" / "raw").is_dir(), reason="needs MNIST in ../shared/data")


def _raw_study(run: Path, images: int) -> list[str]:
    """`study noise` of the first ``images`` test images, raw only: one fidelity and one reconstruction job."""
    return ["study", "noise", str(run), "--images", str(images), "--methods", "raw", "--calibration-images", "0"]


def _files(*folders: Path) -> set[Path]:
    return {p for f in folders if f.exists() for p in f.rglob("*")}


@pytestmark_data
def test_dry_runs_print_the_plan_and_write_or_submit_nothing(run4, tmp_path, monkeypatch):
    class NoBatch:  # a device's jobs go through Batch: a dry run must never open one
        def __init__(self, *a, **k):
            raise AssertionError("a dry run opened a Batch")

    monkeypatch.setattr(qiskit_ibm_runtime, "Batch", NoBatch)
    before = _files(run4, tmp_path)
    runner = CliRunner()
    common = ["--backend", "fake_manila", "--shots", "1000", "--dry-run"]
    res = runner.invoke(main, ["evaluate", str(run4), "--images", "3", *common])
    assert res.exit_code == 0, res.output
    assert "QPU plan on fake_manila" in res.output and "6 circuits, 6,000 shots" in res.output
    res = runner.invoke(main, ["submit", str(run4), "--images", "3", *common, "--jobs-dir", str(tmp_path / "j")])
    assert res.exit_code == 0 and "nothing submitted" in res.output, res.output
    res = runner.invoke(main, [*_raw_study(run4, 3), *common, "--json", "--out", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert (plan["circuits"], plan["shots"], plan["jobs"]) == (6, 6000, 2)  # 3 images x (fidelity, reconstruction)
    items = plan["items"]
    want = sum(i["circuits"] * i["shots"] * (i["rep_delay_s"] + i["duration_s"]) for i in items) + 2 * 3.0
    assert plan["qpu_seconds"] == pytest.approx(want)
    assert _files(run4, tmp_path) == before


@pytestmark_data
@pytest.mark.parametrize(
    "args, message",
    [
        (["evaluate", "RUN", "--backend", "exact", "--dry-run"], "--backend exact runs on no QPU"),
        (["study", "noise", "RUN", "--backend", "exact", "--dry-run"], "--backend exact runs on no QPU"),
        (
            [
                "evaluate",
                "RUN",
                "--backend",
                "fake_manila",
                "--images",
                "3",
                "--no-classifier",
                "--max-qpu-seconds",
                "1",
            ],
            "more than --max-qpu-seconds 1",
        ),
        (
            [
                "submit",
                "RUN",
                "--backend",
                "fake_manila",
                "--images",
                "3",
                "--shots",
                "1000",
                "--max-qpu-seconds",
                "2",
            ],
            "needs",
        ),
        (
            ["study", "noise", "RUN", "--backend", "fake_manila", "--images", "3", "--max-qpu-seconds", "5"],
            "QPU seconds on fake_manila",
        ),
    ],
)
def test_refusals_are_one_line_exit_2_and_write_nothing(run4, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)  # default outputs (jobs/, results/) would land here
    before = _files(run4, tmp_path)
    res = CliRunner().invoke(main, [str(run4) if a == "RUN" else a for a in args])
    assert res.exit_code == 2 and message in res.output and res.output.count("\n") == 1, res.output
    assert _files(run4, tmp_path) == before


@pytestmark_data
def test_a_frontier_dry_run_plans_the_sum_of_its_studies_and_writes_nothing(run4, tmp_path, monkeypatch):
    """Each loader's study is planned with its own loader (fewer two-qubit gates for ladder:1), and the frontier's
    plan is what `study noise --dry-run` plans for each, summed; the cap sees the sum."""
    monkeypatch.chdir(tmp_path)
    before = _files(run4, tmp_path)
    runner = CliRunner()
    common = ["--backend", "fake_manila", "--shots", "500", "--images", "2", "--methods", "raw"]
    common += ["--calibration-images", "0", "--dry-run", "--json"]
    each = []
    for loader in ([], ["--loader", "ladder:1"]):
        res = runner.invoke(main, ["study", "noise", str(run4), *common, *loader])
        assert res.exit_code == 0, res.output
        each.append(json.loads(res.stdout))
    assert each[1]["two_qubit_gates"] < each[0]["two_qubit_gates"]
    res = runner.invoke(main, ["study", "frontier", str(run4), "--loaders", "exact,ladder:1", *common])
    assert res.exit_code == 0, res.output
    total = json.loads(res.stdout)
    assert total["jobs"] == 4 and total["circuits"] == each[0]["circuits"] + each[1]["circuits"]
    assert total["qpu_seconds"] == pytest.approx(each[0]["qpu_seconds"] + each[1]["qpu_seconds"], rel=1e-12)
    cap = f"{(each[0]['qpu_seconds'] + each[1]['qpu_seconds']) * 0.99:.3f}"
    args = ["study", "frontier", str(run4), "--loaders", "exact,ladder:1", *common[:-2], "--max-qpu-seconds", cap]
    res = runner.invoke(main, args)
    assert res.exit_code == 2 and "more than --max-qpu-seconds" in res.output, res.output
    assert _files(run4, tmp_path) == before


@pytestmark_data
def test_an_ibm_name_without_an_account_dry_runs_on_its_fake_backend(run4, tmp_path, monkeypatch):
    from qiskit_ibm_runtime.accounts import AccountNotFoundError

    class NoAccount:  # the network boundary: no saved account, nothing in the environment
        def __init__(self, *a, **k):
            raise AccountNotFoundError("Unable to find account.")

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", NoAccount)
    runner = CliRunner()
    res = runner.invoke(
        main, ["evaluate", str(run4), "--backend", "ibm_manila", "--images", "2", "--shots", "100", "--dry-run"]
    )
    assert res.exit_code == 0, res.output
    assert "planning on fake_manila, the fake backend of ibm_manila" in res.output
    assert "QPU plan on fake_manila" in res.output
    res = runner.invoke(main, ["evaluate", str(run4), "--backend", "ibm_nowhere", "--images", "2", "--dry-run"])
    assert res.exit_code == 2 and "no fake backend 'fake_nowhere'" in res.output and res.output.count("\n") == 1
    res = runner.invoke(main, ["evaluate", str(run4), "--backend", "ibm_manila", "--images", "2"])  # no dry run
    assert res.exit_code == 2 and "no IBM Quantum account" in res.output


@pytestmark_data
def test_a_twin_run_records_its_estimate(run4, tmp_path):
    res = CliRunner().invoke(
        main,
        [
            "submit",
            str(run4),
            "--backend",
            "fake_manila",
            "--images",
            "2",
            "--shots",
            "200",
            "--simulator-seed",
            "1",
            "--jobs-dir",
            str(tmp_path),
            "--no-classifier",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "QPU plan on fake_manila" in res.output
    (path,) = [p for p in tmp_path.glob("*.json") if p.name.count(".") == 1]
    rec = json.loads(path.read_text())
    items = rec["qpu_plan"]["items"]
    assert [(i["role"], i["circuits"], i["shots"]) for i in items] == [("fidelity", 2, 200), ("reconstruction", 2, 200)]
    want = sum(2 * 200 * (DEFAULT_REP_DELAY + i["duration_s"]) for i in items) + 2 * JOB_OVERHEAD_SECONDS
    assert rec["qpu_seconds_estimate"] == pytest.approx(want, abs=1e-3)


@pytestmark_data
def test_evaluate_and_study_on_a_twin_record_the_estimate_they_printed(run4, tmp_path):
    runner = CliRunner()
    common = ["--backend", "fake_manila", "--shots", "200", "--simulator-seed", "1"]
    res = runner.invoke(
        main, ["evaluate", str(run4), "--images", "2", *common, "--no-classifier", "--out", str(tmp_path / "e")]
    )
    assert res.exit_code == 0, res.output
    printed = res.output.split(" QPU seconds")[0].rsplit(": ", 1)[1]
    ev = json.loads((tmp_path / "e" / "eval.json").read_text())
    assert f"{ev['qpu_seconds_estimate']:,.1f}" == printed and ev["qpu_plan"]["circuits"] == 4
    res = runner.invoke(main, [*_raw_study(run4, 2), *common, "--out", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    study = json.loads((tmp_path / "s" / "study-fake_manila-L4.json").read_text())
    assert study["qpu_plan"]["circuits"] == 4 and study["qpu_seconds_estimate"] == pytest.approx(
        ev["qpu_seconds_estimate"], rel=0.05
    )  # the same circuits and shots (the study transpiles the same way; durations may differ by placement)


@pytestmark_data
def test_a_device_submission_records_our_estimate_beside_what_ibm_reports(run4, tmp_path, monkeypatch):
    """Only the network boundary is replaced: a service whose device is a local simulator with the Target of
    fake_manila (durations, repetition delay); its jobs report usage as RuntimeJobV2 does."""

    class Device(AerSimulator):
        pass

    class Service:
        def __init__(self, *a, **k):
            pass

        def backend(self, name, **_):
            dev = Device.from_backend(FakeManilaV2())
            dev.name = name
            return dev

    from qiskit_ibm_runtime.fake_provider.local_runtime_job import LocalRuntimeJob

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", Service)
    monkeypatch.setattr(LocalRuntimeJob, "usage_estimation", {"quantum_seconds": 7.5}, raising=False)
    monkeypatch.setattr(LocalRuntimeJob, "usage", lambda self: 6.5, raising=False)
    from qmae_qiskit.evaluate.submit import SubmitOptions, submit

    sub = submit(SubmitOptions(run=run4, backend="ibm_manila", samples=2, shots=100), tmp_path, use_classifier=False)
    rec = json.loads(sub.path.read_text())
    assert rec["mode"] == "ibm" and rec["qpu_plan"]["backend"] == "ibm_manila"
    want = sum(2 * 100 * (FakeManilaV2().default_rep_delay + i["duration_s"]) for i in rec["qpu_plan"]["items"])
    assert rec["qpu_seconds_estimate"] == pytest.approx(want + 2 * JOB_OVERHEAD_SECONDS, abs=1e-3)
    assert rec["qpu_plan"]["durations_known"]
    assert rec["qpu_usage"] == {r: {"usage_estimation_s": 7.5, "usage_s": 6.5} for r in ("fidelity", "reconstruction")}
