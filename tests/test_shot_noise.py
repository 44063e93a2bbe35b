"""A simulator's shot noise as a device's: each task draws its own shots, and a projector's standard error is the
binomial one. Both are checked against what repeated runs actually scatter by, not against our own formulas."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.quantum_info import Operator, SparsePauliOp
from qiskit_ibm_runtime.fake_provider import FakeTorino

from qmae_qiskit.hardware.execution import EstimatorTask, Work, task_seed
from qmae_qiskit.hardware.executors import make_executor
from qmae_qiskit.hardware.executors.twin import TwinExecutor
from qmae_qiskit.hardware.mitigation import Mitigation, parse_mitigation
from qmae_qiskit.hardware.primitives import binomial_shots, estimator_job, is_projector, read_estimates
from qmae_qiskit.hardware.transpile import map_observable, transpile_for

SHOTS = 2000


def _projector(n: int) -> SparsePauliOp:
    """|0..0><0..0| on n qubits, from its matrix (independent of how the fidelity circuits write it)."""
    diag = np.zeros(2**n)
    diag[0] = 1.0
    return SparsePauliOp.from_operator(Operator(np.diag(diag)))


def _circuit(n: int = 3) -> QuantumCircuit:
    theta = ParameterVector("t", n)
    qc = QuantumCircuit(n)
    for q in range(n):
        qc.ry(theta[q], q)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    return qc


def _rows(count: int, n: int = 3, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.3, 1.4, size=(count, n))


def test_is_projector_tells_projectors_from_other_observables():
    p = _projector(3)
    assert len(p) == 8 and is_projector(p)
    assert is_projector(SparsePauliOp(["I", "Z"], [0.5, 0.5]))  # |0><0|
    assert not is_projector(SparsePauliOp("ZZI"))  # Z^2 = I
    assert not is_projector(2 * p)
    assert not is_projector(SparsePauliOp(["I", "X"], [0.5, 0.5]))  # a projector, but not read from Z shots


def test_binomial_errors_only_for_a_projector_read_once_per_shot():
    task = EstimatorTask(_circuit(), _projector(3), _rows(2))
    assert binomial_shots(task, Work({"f": task}, shots=SHOTS)) == SHOTS
    assert binomial_shots(task, Work({"f": task})) is None  # exact values
    for trex in ("resilience_level=1", "resilience.measure_mitigation=true"):  # readout rescaling only
        assert binomial_shots(task, Work({"f": task}, shots=SHOTS, mitigation=parse_mitigation(trex))) == SHOTS
    for each_shot in ("twirling.enable_gates=true", "twirling.enable_measure=true"):  # still one reading per shot
        assert binomial_shots(task, Work({"f": task}, shots=SHOTS, mitigation=parse_mitigation(each_shot))) == SHOTS
    for combined in ("resilience_level=2", "resilience.zne_mitigation=true", "resilience.pec_mitigation=true"):
        work = Work({"f": task}, shots=SHOTS, mitigation=parse_mitigation(combined))
        assert binomial_shots(task, work) is None, combined  # extrapolated or reweighted: the runtime's spread
    pauli = EstimatorTask(_circuit(), SparsePauliOp("ZZI"), _rows(2))
    assert binomial_shots(pauli, Work({"f": pauli}, shots=SHOTS)) is None


def _spread(executor, task: EstimatorTask, seeds: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(values per seed and row, each row's variance over the seeds, that variance over the reported one)."""
    values, reported = [], []
    for seed in range(seeds):
        est = executor.run(Work({"f": task}, shots=SHOTS, seed=seed)).result()["f"]
        values.append(est.values)
        reported.append(est.stds)
    v = np.array(values)
    observed = np.var(v, axis=0, ddof=1)
    return v, observed, float(np.mean(observed / np.mean(np.array(reported) ** 2, axis=0)))


def _sherbrooke(angles: tuple[float, float], mitigation: str):
    """(a twin of an Eagle device, the 3-qubit projector task on its qubits 1-3 with ten rows of angles)."""
    from qiskit_ibm_runtime.fake_provider import FakeSherbrooke

    device = FakeSherbrooke()
    isa = transpile_for(_circuit(), device, 1, 3, initial_layout=[1, 2, 3])
    rows = np.random.default_rng(6).uniform(*angles, size=(10, 3))
    return TwinExecutor(device), EstimatorTask(
        isa, map_observable(_projector(3), isa), rows, parse_mitigation(mitigation)
    )


@pytest.mark.parametrize("mitigation", ["", "resilience.measure_mitigation=true"])
def test_a_projectors_standard_error_is_what_repeated_runs_scatter_by(mitigation):
    """Twelve seeds of ten rows on Aer, raw and with TREX: the reported error matches the observed spread
    (chi-square on 110 degrees of freedom), and the runtime's own error of the 8-term projector, read without
    the fix, is too small."""
    task = EstimatorTask(_circuit(), _projector(3), _rows(10), parse_mitigation(mitigation))
    aer = make_executor("aer_simulator")
    _, observed, ratio = _spread(aer, task, 12)
    assert 0.7 < ratio < 1.4, ratio
    runtime = read_estimates(estimator_job(aer._mode(3, 0), task, Work({"f": task}, shots=SHOTS), 0).result())
    assert float(np.mean(observed / runtime.stds**2)) > 1.8


@pytest.fixture(scope="module")
def torino():
    return FakeTorino()


def _twin_pair(torino, seeds: str) -> dict:
    """One transpiled circuit in two tasks with the same rows (an image and a reference that equals it)."""
    isa = transpile_for(_circuit(), torino, 1, 3)
    rows = _rows(40)
    obs = map_observable(_projector(3), isa)
    tasks = {role: EstimatorTask(isa, obs, rows) for role in ("fidelity/raw", "reference/raw")}
    work = Work(tasks, shots=SHOTS, mitigation=Mitigation(), seed=0, task_seeds=seeds)  # type: ignore[arg-type]
    return TwinExecutor(torino).run(work).result()


def test_twin_tasks_draw_their_own_shots(torino):
    """With one seed for both tasks, a reference circuit's shot noise equals its image's (their difference is
    zero, which no device gives); with a seed per task the difference scatters by sqrt(2) binomial errors."""
    shared = _twin_pair(torino, "shared")
    assert np.array_equal(shared["fidelity/raw"].values, shared["reference/raw"].values)
    own = _twin_pair(torino, "independent")
    diff = own["fidelity/raw"].values - own["reference/raw"].values
    expected = own["fidelity/raw"].stds ** 2 + own["reference/raw"].stds ** 2
    ratio = float(np.mean(diff**2 / expected))
    assert 0.55 < ratio < 1.6, ratio
    again = _twin_pair(torino, "independent")
    assert np.array_equal(again["fidelity/raw"].values, own["fidelity/raw"].values)  # still reproducible


def test_task_seeds_are_stable_and_distinct():
    work = Work({}, shots=10, seed=7)
    assert work.seed_of("fidelity/raw") == task_seed(7, "fidelity/raw") == task_seed(7, "fidelity/raw")
    assert work.seed_of("fidelity/raw") != work.seed_of("reference/raw")
    assert task_seed(8, "fidelity/raw") != task_seed(7, "fidelity/raw")
    assert Work({}, shots=10, seed=7, task_seeds="shared").seed_of("reference/raw") == 7
    assert Work({}, shots=10).seed_of("fidelity/raw") is None


def test_a_device_job_record_keeps_how_its_errors_are_read_back():
    """A job fetched after a crash reads its standard errors as the live run would: the record keeps the shots of
    the binomial floor, and reading a result with them gives the binomial error where the runtime's is smaller."""
    from qiskit.primitives.containers import DataBin, PrimitiveResult, PubResult

    from qmae_qiskit.hardware.jobs import new_record

    task = EstimatorTask(_circuit(), _projector(3), _rows(2))
    rec = new_record(Work({"fidelity": task}, shots=1000), {}, "ibm_x", True, "submit", {}, embed_qpy=False)
    assert rec.circuits["fidelity"]["binomial_shots"] == 1000
    values = np.array([0.3, 0.6])
    result = PrimitiveResult([PubResult(DataBin(evs=values, stds=np.array([0.001, 0.05]), shape=(2,)))])
    est = read_estimates(result, rec.circuits["fidelity"]["binomial_shots"])
    assert est.stds[0] == pytest.approx(np.sqrt(0.3 * 0.7 / 1000))  # the runtime's 0.001 was too small
    assert est.stds[1] == 0.05  # a larger runtime error is kept


def test_a_trex_estimate_near_one_is_as_uncertain_as_its_spread_over_seeds():
    """TREX divides each Z-product by its readout fidelity, so a shot's reading of the projector spreads beyond
    [0, 1] and near P = 1 its variance is far above the binomial one. On a twin with an Eagle device's readout
    errors (eight seeds of ten rows at P ~ 0.9), the reported error matches the observed spread; the binomial
    floor alone (gain 1) is too small by more than 2x in variance."""
    v, observed, ratio = _spread(*_sherbrooke((0.05, 0.35), "resilience_level=1"), 8)
    assert v.mean() > 0.85
    assert 0.6 < ratio < 1.6, ratio
    p = np.clip(v.mean(axis=0), 0, 1)
    assert float(np.mean(observed / (p * (1 - p) / SHOTS))) > 2.0


def test_a_gate_twirled_estimate_is_no_more_confident_than_its_spread_over_seeds():
    """Gate twirling averages over randomized circuits; each shot still reads the projector once, and the binomial
    error bounds the stratified average from above. On a twin, eight seeds of ten rows: the reported error covers
    the observed spread (the runtime's own error alone left a ratio of 2.8 here)."""
    v, observed, ratio = _spread(*_sherbrooke((0.3, 1.2), "twirling.enable_gates=true"), 8)
    assert 0.5 < ratio < 1.4, ratio
    p = np.clip(v.mean(axis=0), 0, 1)
    assert float(np.mean(observed / (p * (1 - p) / SHOTS))) < 1.4  # the bound holds
