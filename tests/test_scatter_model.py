"""``--scatter-from noise-model``: the calibration scatter the device's noise model predicts for the pilot's
calibration images, which only the budget's allocation reads."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner
from qiskit import QuantumCircuit
from qiskit.quantum_info import DensityMatrix, SparsePauliOp
from qiskit_aer import AerSimulator

from qmae_qiskit.cli import main
from qmae_qiskit.hardware.execution import EstimatorTask, Work
from qmae_qiskit.hardware.executors import make_executor
from qmae_qiskit.hardware.executors.twin import TwinExecutor
from qmae_qiskit.hardware.mitigation import parse_mitigation
from qmae_qiskit.hardware.transpile import map_observable, transpile_for
from qmae_qiskit.hardware.twin import compact_observable, make_twin, twin_simulator
from qmae_qiskit.study import budget as bud
from qmae_qiskit.study import scatter_model
from qmae_qiskit.study.analysis import exact_values, reference_exact
from qmae_qiskit.study.design import StudySpec, design


@pytest.fixture(scope="module")
def pilot(run4):
    """The pilot design of a budgeted 4x4 study with references on fake_manila (1 evaluated row, 12 calibration)."""
    spec = StudySpec(run=str(run4), backend="fake_manila", samples=4, shots=1000, methods="raw,cal+ref")
    spec = StudySpec.model_validate({**spec.model_dump(), "qpu_budget": 60, "scatter_from": "noise-model"})
    executor = make_executor("fake_manila", None)
    return design(bud.pilot_spec(spec), executor), executor


def test_the_noisy_values_are_the_density_matrix_expectations_of_the_scheduled_twin_circuit(pilot):
    """Cross-check against the full density matrix of the same scheduled circuit under the same noise, its
    expectation taken by qiskit.quantum_info (another path for the observable's layout and the bindings)."""
    pd, executor = pilot
    task = pd.prepared.work.tasks["fidelity"]
    got = scatter_model.noisy_values(task, executor)
    twin = make_twin(executor.device, task.circuit)
    sim = twin_simulator(twin, None, executor.idle)
    timed = sim.timed(twin.circuit).copy()
    timed.save_density_matrix()
    obs = compact_observable(task.observable, twin.physical)
    aer = AerSimulator(method="density_matrix", noise_model=sim.options.noise_model)
    values = np.asarray(task.values)
    for i in (0, 5, len(values) - 1):
        bound = timed.assign_parameters(dict(zip(timed.parameters, values[i])))
        rho = DensityMatrix(np.asarray(aer.run(bound, shots=1).result().data(0)["density_matrix"]))
        assert got[i] == pytest.approx(float(np.real(rho.expectation_value(obs))), abs=1e-9)
    read = scatter_model.noisy_values(task, executor, per_shot=True)  # the projector's one-shot variance: m(1 - m)
    assert np.allclose(read[:, 0], got, atol=1e-12) and np.allclose(read[:, 1], got * (1 - got), atol=1e-9)
    exact_f, _ = exact_values(pd.prepared, loaded=True)  # noise lowers every value below the exact one
    assert np.all(got < exact_f) and np.corrcoef(got, exact_f)[0, 1] > 0.5


def test_the_model_scatter_reads_only_the_calibration_rows_and_is_the_fits_residual(pilot):
    """The pilot's evaluated row never enters (garbage there changes nothing), and the scatter is the residual of
    the affine fit of the calibration rows' noisy values on their exact ones, in fidelity units."""
    pd, executor = pilot
    exact_f, _ = exact_values(pd.prepared, loaded=True)
    prior = scatter_model.model_scatter(pd, executor, exact_f, reference_exact(pd.prepared))
    assert prior is not None and set(prior) == {False, True} and all(v.var > 0 for v in prior.values())
    assert prior[True].explained == pytest.approx(max(prior[False].var - prior[True].var, 0.0), abs=1e-15)
    m = scatter_model.noisy_values(pd.prepared.work.tasks["fidelity"], executor)[pd.n_eval :]
    x = exact_f[pd.n_eval :]
    slope, icept = np.polyfit(x, m, 1)
    resid = m - (slope * x + icept)
    assert prior[False].var == pytest.approx(resid @ resid / (len(x) - 2) / slope**2, rel=1e-9)
    base = pd.prepared.work.tasks["fidelity"]
    values = np.asarray(base.values).copy()
    values[: pd.n_eval] = 0.123  # the evaluated row
    tasks = {**pd.prepared.work.tasks, "fidelity": replace(base, values=values)}
    spoiled = replace(pd, prepared=replace(pd.prepared, work=replace(pd.prepared.work, tasks=tasks)))
    garbage = exact_f.copy()
    garbage[: pd.n_eval] = 0.5
    again = scatter_model.model_scatter(spoiled, executor, garbage, reference_exact(pd.prepared))
    assert again == prior


def test_a_budgeted_study_designed_on_the_model_scatter_records_it_and_allocates_on_it(run4, tmp_path):
    args = ["study", "noise", str(run4), "--backend", "fake_manila", "--images", "4", "--qpu-budget", "60"]
    args += ["--methods", "raw,cal,cal+ref", "--metrics", "fidelity", "--scatter-from", "noise-model"]
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    study = json.loads((tmp_path / "study-fake_manila-L4.json").read_text())
    alloc = study["allocation"]
    assert alloc["scatter_from"] == "noise-model" and alloc["chosen_on"] == "point"
    assert "references_test" not in alloc  # no pilot degrees of freedom behind the scatter: both designs compared
    assert set(alloc["options"]) == {"without_references", "with_references"}
    for name, model in alloc["pilot"]["models"].items():  # the pilot's slope, the model's scatter
        assert model["scatter_std"] == pytest.approx(alloc["model_scatter_std"][name] * model["slope"], rel=1e-9)
        assert "scatter_std_upper" not in model
    assert len(alloc["pilot"]["models"]["with_references"]["reference_noise"]) == 3  # what the discount used
    best = min(alloc["options"].values(), key=lambda o: o["predicted_std"])
    assert (alloc["shots"], alloc["calibration_images"]) == (best["shots"], best["calibration_images"])
    assert "the scatter the device's noise model predicts" in (tmp_path / "study-fake_manila-L4.md").read_text()


def test_scatter_from_the_noise_model_without_a_budget_is_one_line(run4, tmp_path):
    args = ["study", "noise", str(run4), "--backend", "fake_manila", "--images", "2", "--scatter-from", "noise-model"]
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "s")])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "--scatter-from noise-model decides for --qpu-budget" in res.output
    assert not (tmp_path / "s").exists()


def test_a_noisy_reference_explains_what_the_errors_in_variables_discount_says():
    """Synthetic device, known answer: y = a F + b + beta u + eps, the reference r = F_ref-part + u + shot noise.
    Fitted as ``ref`` fits on 400 calibration points and scored on 4,000 others, the scatter left about the fit
    is var(eps) + beta^2 var(u) (1 - lambda), lambda = var(u) / (var(u) + shot var): what NoiseModel.std uses."""
    from qmae_qiskit.study.budget import NoiseModel

    rng = np.random.default_rng(3)
    a, beta, su, se = 0.6, 0.8, 0.008, 0.003
    for shot_sd in (0.002, 0.008, 0.03):
        n = 4400
        f, fr = rng.uniform(0.6, 0.95, n), rng.uniform(0.6, 0.95, n)
        u = rng.normal(0, su, n)
        y = a * f + 0.03 + beta * u + rng.normal(0, se, n)
        r = 0.7 * fr + 0.02 + u + rng.normal(0, shot_sd, n)
        x = np.column_stack([f, r, fr, np.ones(n)])
        coef = np.linalg.lstsq(x[:400], y[:400], rcond=None)[0]
        left = np.var(y[400:] - x[400:] @ coef)
        shots = 1000
        model = NoiseModel(a, se**2, 0.0, 4, reference_noise=(beta**2 * su**2, su**2, shot_sd**2 * shots))
        predicted = (model.std(shots, 10**9) * a) ** 2  # no fit-parameter term: the scatter alone
        assert left == pytest.approx(predicted, rel=0.12), shot_sd


def test_with_the_noise_models_scatter_references_must_be_predicted_ten_per_cent_better():
    """The references' coefficient is fitted on noisy points, so with the model's scatter they are taken only where
    their predicted error is at most 0.9 of the plain design's; the pilot's path keeps the plain comparison."""
    from qmae_qiskit.study.budget import MODEL_REFERENCE_MARGIN, CostModel, NoiseModel, allocate

    costs = CostModel({"fidelity/x": 3e-4, "reference/x": 3e-4}, {"fidelity/x": 1e-4, "reference/x": 0.0}, 3.0)
    plain = NoiseModel(0.5, 0.01**2, 0.25, 2)
    for ref_scatter, want in [(0.0084, False), (0.006, True)]:
        refs = NoiseModel(0.5, ref_scatter**2, 0.25, 4, reference_noise=(0.0, 1.0, 0.0))
        got = allocate(600, 100, costs, {False: plain, True: refs}, spent=20)
        opts = got["options"]
        ratio = opts["with_references"]["predicted_std"] / opts["without_references"]["predicted_std"]
        assert (ratio < 1) and (ratio <= MODEL_REFERENCE_MARGIN) is want and got["references"] is want, ratio
        pilot_path = allocate(600, 100, costs, {False: plain, True: NoiseModel(0.5, ref_scatter**2, 0.25, 4)}, spent=20)
        assert pilot_path["references"]  # predicted better at all: taken


def test_a_study_too_wide_for_the_model_says_it_used_the_pilots_scatter():
    """Where the twin is too wide for density matrices the allocation falls back to the pilot; the record and the
    report say so rather than claim the model's scatter."""
    from qmae_qiskit.study.report import _chosen_on

    fallback = scatter_model.record(None)
    assert fallback["scatter_from"].startswith("pilot: the twin is too wide") and "model_scatter_std" not in fallback
    assert "too wide" in _chosen_on(fallback) and "noise model predicts" not in _chosen_on(fallback)
    used = scatter_model.record({False: scatter_model.ModelScatter(0.0004)})
    assert used == {"scatter_from": "noise-model", "model_scatter_std": {"without_references": pytest.approx(0.02)}}
    assert "noise model predicts" in _chosen_on(used)


def test_the_noisy_values_carry_the_runtimes_dynamical_decoupling():
    """A qubit excited and left waiting on fake_torino while its neighbours run 200 CX: it decays as exp(-T/T1);
    with XX decoupling it spends half the wait in |0>, so the log of what is left halves (known physics). The
    model agrees with what the twin measures through the runtime (readout undone with the qubit's reported
    error) within shot noise, with and without DD, and a model that ignored the pulses would be 20 sigma off."""
    executor = make_executor("fake_torino", None)
    qc = QuantumCircuit(3)
    qc.x(0)
    qc.cx(0, 1)
    for _ in range(200):
        qc.cx(1, 2)
        qc.barrier([1, 2])  # keeps the transpiler from cancelling the pairs
    qc.cx(0, 1)
    isa = transpile_for(qc, executor.device, 1, 7, initial_layout=[49, 50, 51])
    excited = map_observable(SparsePauliOp.from_list([("III", 0.5), ("IIZ", -0.5)]), isa)
    flip = executor.device.target["measure"][(49,)].error  # the twin's symmetric readout error on that qubit
    model, measured = {}, {}
    for opts in ("resilience_level=0", "dd_sequence=XX"):
        task = EstimatorTask(isa, excited, np.zeros((1, 0)), parse_mitigation(opts))
        model[opts] = scatter_model.noisy_values(task, executor)[0]
        read = TwinExecutor(executor.device).run(Work({"e": task}, shots=20000, seed=1)).result()["e"].values[0]
        measured[opts] = (read - flip) / (1 - 2 * flip)
    plain, dd = model["resilience_level=0"], model["dd_sequence=XX"]
    assert 0.4 < np.log(dd) / np.log(plain) < 0.6, model
    sigma = np.sqrt(plain * (1 - plain) / 20000) / (1 - 2 * flip)
    assert all(abs(measured[o] - model[o]) < 4 * sigma for o in model), (model, measured)
    assert dd - plain > 20 * sigma, model


def test_the_model_scatter_is_the_judged_methods_circuit_with_its_own_references(run4):
    """The budget's model simulates the method it designs for: with dynamical decoupling its scatter differs from
    the plain circuit's (fake_manila 4x4: the idle qubits' decay is symmetrised), with no decoupling it is the plain
    one, and a method without references gets no with-references scatter borrowed from another method's."""
    spec = StudySpec(run=str(run4), backend="fake_manila", samples=2, shots=1000, methods="cal+ref,dd+cal+ref,dd+cal")
    executor = make_executor("fake_manila", None)
    pd = design(spec, executor)
    exact_f, _ = exact_values(pd.prepared, loaded=True)
    ref_f = reference_exact(pd.prepared)
    plain, cal_ref, dd = (
        scatter_model.model_scatter(pd, executor, exact_f, ref_f, m) for m in (None, "cal+ref", "dd+cal+ref")
    )
    assert plain == cal_ref and set(dd) == {False, True}
    assert abs(dd[False].var - plain[False].var) > 0.03 * plain[False].var, (dd, plain)  # ignoring DD: equal
    alone = scatter_model.model_scatter(pd, executor, exact_f, ref_f, "dd+cal")
    assert set(alone) == {False} and alone[False] == dd[False]
