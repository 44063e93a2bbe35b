"""The noise study: the calibration fit on synthetic maps, methods, each method toward a known ideal value, the
command end to end on a small twin, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime.fake_provider import FakeTorino

from qmae_qiskit.cli import main
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.execution import EstimatorTask, SamplerTask, Work
from qmae_qiskit.hardware.executors.twin import TwinExecutor
from qmae_qiskit.hardware.transpile import map_observable, transpile_for
from qmae_qiskit.study.calibration import (
    fit_affine,
    fit_distribution,
    fit_fixed_point,
    fit_reference,
    invert_distribution,
    invert_fixed_point,
    leave_one_out_error,
)
from qmae_qiskit.study.methods import parse_method, parse_methods

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# ------------------------------------------------------------------------------------------ calibration fit
def test_the_fit_recovers_a_synthetic_affine_map_exactly():
    rng = np.random.default_rng(0)
    exact = rng.uniform(0.5, 0.95, 12)
    measured = 0.37 * exact + 0.021
    fit = fit_affine(exact, measured, register_bits=4)
    assert fit.slope == pytest.approx(0.37, abs=1e-12) and fit.intercept == pytest.approx(0.021, abs=1e-12)
    assert fit.residual_std < 1e-12 and fit.slope_se < 1e-10
    assert fit.depolarizing_intercept == pytest.approx((1 - 0.37) / 16)
    others = rng.uniform(0.3, 1.0, 5)
    est, se = fit.invert(0.37 * others + 0.021)
    assert np.allclose(est, others, atol=1e-12) and np.all(se < 1e-9)


def test_the_fit_and_its_errors_are_honest_under_noise():
    """Many synthetic calibrations: the inverted estimate's spread matches the reported standard error."""
    rng = np.random.default_rng(1)
    truth, errs, ses = 0.8, [], []
    for _ in range(400):
        exact = rng.uniform(0.5, 0.95, 10)
        measured = 0.4 * exact + 0.05 + rng.normal(0, 0.005, 10)
        fit = fit_affine(exact, measured)
        est, se = fit.invert(np.array([0.4 * truth + 0.05 + rng.normal(0, 0.005)]), np.array([0.005]))
        errs.append(est[0] - truth)
        ses.append(se[0])
    assert abs(np.mean(errs)) < 0.003  # unbiased
    assert np.std(errs) == pytest.approx(np.mean(ses), rel=0.2)  # delta-method errors match the scatter


def test_distribution_fit_inverts_depolarizing_noise_and_stays_a_distribution():
    rng = np.random.default_rng(2)
    exact = rng.dirichlet(np.ones(16), size=8)
    lam = 0.6
    measured = lam * exact + (1 - lam) / 16
    fit = fit_distribution(exact, measured)
    assert fit.slope == pytest.approx(lam) and fit.intercept == pytest.approx((1 - lam) / 16)
    target = rng.dirichlet(np.ones(16), size=3)
    back = invert_distribution(fit, lam * target + (1 - lam) / 16)
    assert np.allclose(back, target, atol=1e-12)
    noisy = invert_distribution(fit, lam * target + (1 - lam) / 16 + rng.normal(0, 0.01, target.shape))
    assert np.all(noisy >= 0) and np.allclose(noisy.sum(1), 1)


def test_fixed_point_fit_recovers_a_contraction_towards_any_distribution():
    """p_meas = a p + (1 - a) q with q far from uniform (noise pulling towards |0...0>): a and q come back exactly."""
    rng = np.random.default_rng(4)
    q = rng.dirichlet(np.ones(16) * 0.3)
    q[0] += 1.0
    q /= q.sum()
    exact = rng.dirichlet(np.ones(16), size=10)
    fit = fit_fixed_point(exact, 0.55 * exact + 0.45 * q)
    assert fit.slope == pytest.approx(0.55, abs=1e-12) and np.allclose(fit.fixed_point, q, atol=1e-12)
    target = rng.dirichlet(np.ones(16), size=4)
    assert np.allclose(invert_fixed_point(fit, 0.55 * target + 0.45 * q), target, atol=1e-12)
    uniform = invert_distribution(fit_distribution(exact, 0.55 * exact + 0.45 * q), 0.55 * target + 0.45 * q)
    assert np.abs(uniform - target).max() > 0.01  # the depolarizing model cannot undo a non-uniform fixed point
    with pytest.raises(QMAEError, match="at least 3"):
        fit_fixed_point(exact[:2], exact[:2])


def test_the_reference_fit_recovers_a_synthetic_control_variate_map_exactly():
    rng = np.random.default_rng(5)
    f, fr, mr = rng.uniform(0.5, 0.9, 9), rng.uniform(0.85, 0.99, 9), rng.uniform(0.2, 0.5, 9)
    fit = fit_reference(f, 0.4 * f + 0.7 * mr - 0.2 * fr + 0.03, mr, fr)
    assert np.allclose(fit.coef, [0.4, 0.7, -0.2, 0.03], atol=1e-10) and fit.residual_std < 1e-10
    g = rng.uniform(0.5, 0.9, 3)
    est, _ = fit.invert(0.4 * g + 0.7 * mr[:3] - 0.2 * fr[:3] + 0.03, mr[:3], fr[:3])
    assert np.allclose(est, g, atol=1e-10)
    with pytest.raises(QMAEError, match="at least 5"):
        fit_reference(f[:4], f[:4], mr[:4], fr[:4])


def test_references_beat_a_single_line_when_each_image_has_its_own_noise():
    """Per-image contractions shared by an image's circuit and its reference: held-out error drops."""
    rng = np.random.default_rng(6)
    n = 40
    f, fr = rng.uniform(0.5, 0.9, n), rng.uniform(0.85, 0.99, n)
    lam = rng.uniform(0.35, 0.5, n)
    m = lam * f + 0.04 + rng.normal(0, 0.001, n)
    mr = lam * fr + 0.04 + rng.normal(0, 0.001, n)
    cal, held = slice(0, 20), slice(20, n)
    line, _ = fit_affine(f[cal], m[cal]).invert(m[held])
    ref, _ = fit_reference(f[cal], m[cal], mr[cal], fr[cal]).invert(m[held], mr[held], fr[held])
    assert np.abs(ref - f[held]).mean() < 0.5 * np.abs(line - f[held]).mean()


def test_leave_one_out_checks_the_model_on_held_out_circuits():
    rng = np.random.default_rng(3)
    exact = rng.uniform(0.4, 0.9, 10)
    assert leave_one_out_error(exact, 0.5 * exact + 0.1) < 1e-12
    bent = 0.5 * exact**3 + 0.1  # a map that is not affine shows up as held-out error
    assert leave_one_out_error(exact, bent) > 0.01


@pytest.mark.parametrize(
    "exact, measured, message",
    [
        ([0.5, 0.6], [0.2, 0.3], "at least 3"),
        ([0.5, 0.5, 0.5], [0.2, 0.3, 0.2], "same exact value"),
        ([0.1, 0.2, 0.3], [0.1, 0.2], "as many measured"),
    ],
)
def test_bad_calibration_data_is_one_line(exact, measured, message):
    with pytest.raises(QMAEError, match=message):
        fit_affine(np.array(exact), np.array(measured))


# ------------------------------------------------------------------------------------------------ methods
def test_methods_combine_validate_and_share_jobs():
    rec = parse_method("recommended")
    assert rec.calibrate and rec.reference and "cal" in rec.parts and "ref" in rec.parts
    assert parse_method("trex+cal").estimator_mitigation.estimator_options().resilience.measure_mitigation
    zne = parse_method("zne", {"noise_factors": [1, 2, 3], "extrapolator": ["linear"]})
    assert zne.estimator_mitigation.estimator_options().resilience.zne.noise_factors == [1.0, 2.0, 3.0]
    methods = parse_methods("cal,trex+cal,mthree")
    assert [m.name for m in methods] == ["raw", "cal", "trex+cal", "mthree"]  # raw always comes along
    raw, cal, trex_cal, mthree = methods
    assert raw.estimator_key() == cal.estimator_key() == mthree.estimator_key() != trex_cal.estimator_key()
    assert raw.sampler_key() == mthree.sampler_key()  # readout correction is post-processing of one job
    for bad, message in [
        ("rawr", "unknown method"),
        ("cal+cal", "twice"),
        ("raw,raw", "listed twice"),
        ("", "no"),
        ("ref", "combine it with cal"),
    ]:
        with pytest.raises(QMAEError, match=message):
            parse_methods(bad)


# ------------------------------------------------------------------------ each method toward a known ideal
@pytest.fixture(scope="module")
def torino():
    return FakeTorino()


def _chain(depth: int = 3) -> QuantumCircuit:
    """|101> through CX pairs that cancel: every Z-type expectation value is known (+-1)."""
    qc = QuantumCircuit(3)
    qc.x([0, 2])
    for _ in range(depth):
        qc.barrier()
        qc.cx(0, 1)
        qc.cx(1, 2)
        qc.barrier()
        qc.cx(1, 2)
        qc.cx(0, 1)
    return qc


def _z_estimate(device, isa, method, shots=4000):
    obs = map_observable(SparsePauliOp("ZZZ"), isa)  # ideal <Z2 Z1 Z0> on |101> = +1
    task = EstimatorTask(isa, obs, np.zeros((1, 0)), parse_method(method).estimator_mitigation)
    return float(TwinExecutor(device).run(Work({"z": task}, shots=shots, seed=3)).result()["z"].values[0])


@pytest.mark.parametrize("method", ["trex", "zne"])
def test_estimator_methods_move_a_known_ideal_value_toward_it(torino, method):
    isa = transpile_for(_chain(), torino, 1, 4)
    raw, mitigated = _z_estimate(torino, isa, "raw"), _z_estimate(torino, isa, method)
    assert abs(1 - mitigated) < abs(1 - raw) - 0.02, (raw, mitigated)


def test_mthree_moves_a_known_distribution_toward_it(torino):
    qc = _chain()
    qc.measure_all()
    isa = transpile_for(qc, torino, 1, 4)
    task = SamplerTask(isa, np.zeros((1, 0)), "meas", parse_method("mthree").sampler_mitigation)
    fixed = TwinExecutor(torino).run(Work({"s": task}, shots=8000, seed=1)).result()["s"]
    raw = fixed.counts[0].get("101", 0) / sum(fixed.counts[0].values())
    assert fixed.probabilities[0, 0b101] > raw + 0.01


def test_calibration_moves_known_values_toward_them(torino):
    """K circuits with known ideal values calibrate the map; held-out circuits' estimates land near their ideal."""
    from qiskit.circuit import Parameter

    a = Parameter("a")
    qc = QuantumCircuit(2)
    qc.ry(a, 0)
    for _ in range(4):
        qc.cx(0, 1)
        qc.cx(0, 1)
    isa = transpile_for(qc, torino, 1, 2)
    obs = map_observable(SparsePauliOp("IZ"), isa)  # ideal <Z0> = cos(a)
    angles = np.linspace(0.1, 2.9, 12)
    res = TwinExecutor(torino).run(Work({"z": EstimatorTask(isa, obs, angles[:, None])}, shots=20000, seed=4))
    measured, ideal = res.result()["z"].values, np.cos(angles)
    cal, held = slice(0, 12, 2), slice(1, 12, 2)
    est, _ = fit_affine(ideal[cal], measured[cal]).invert(measured[held])
    assert np.abs(est - ideal[held]).mean() < 0.5 * np.abs(measured[held] - ideal[held]).mean()


# --------------------------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def run4(tmp_path_factory):
    from qmae_qiskit.model.config import QMAEConfig
    from qmae_qiskit.train.runs import RunSettings
    from qmae_qiskit.train.training import train

    d = tmp_path_factory.mktemp("runs") / "qmae4"
    train(
        RunSettings(config=QMAEConfig(image_size=4), epochs=2, train_samples=128, batch_size=32, seed=1),
        d,
        data_dir=DATA,
        progress=False,
        plot=False,
    )
    return d


def test_study_noise_end_to_end_on_a_small_twin(run4, tmp_path):
    folder = tmp_path / "studies"
    out = folder / "study-fake_manila-L4.json"  # --out is a folder; the file is named by the study
    res = CliRunner().invoke(
        main,
        [
            "study",
            "noise",
            str(run4),
            "--backend",
            "fake_manila",
            "--images",
            "6",
            "--shots",
            "4000",
            "--methods",
            "cal,recommended",
            "--calibration-images",
            "5",
            "--out",
            str(folder),
        ],
    )
    assert res.exit_code == 0, res.output
    study = json.loads(out.read_text())
    assert out.with_suffix(".md").is_file() and out.with_suffix(".png").is_file()
    assert study["schema"] == "qmae-qiskit/noise-study" and set(study["aggregates"]) == {"raw", "cal", "recommended"}
    assert study["two_qubit_gates"] > 0 and len(study["per_image"]) == 6
    # exact values are the exact path's, independently of the study: recompute from the run
    from qmae_qiskit.data import load_split
    from qmae_qiskit.model.masking import eval_masks
    from qmae_qiskit.simulate import exact
    from qmae_qiskit.train.runs import load_trained

    tm = load_trained(run4)
    data = load_split(DATA, "test", 4, limit=6)
    xm = tm.module().masked_inputs(data.images, eval_masks(tm.cfg, tm.mask_ratio, data.indices, 0)).detach()
    want = exact.fidelity(tm.theta, xm, data.images.reshape(6, -1), tm.cfg).numpy()
    rows = study["per_image"]
    assert [r["index"] for r in rows] == data.indices.tolist()
    assert np.allclose([r["exact"] for r in rows], want, atol=1e-12)
    # the aggregates are what the rows say
    err = np.abs(np.array([r["estimates"]["cal"] for r in rows]) - want).mean()
    assert study["aggregates"]["cal"]["fidelity"]["mean_abs_error"] == pytest.approx(err)
    assert len(study["calibration_indices"]) == 5 and study["spec"]["calibration_split"] == "train"
    raw_err = study["aggregates"]["raw"]["fidelity"]["mean_abs_error"]
    assert study["aggregates"]["recommended"]["fidelity"]["mean_abs_error"] < raw_err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--methods", "cal", "--calibration-images", "2"], "at least 3 calibration images"),
        (["--calibration-split", "test", "--calibration-images", "4"], "also evaluated images"),
        (["--methods", "cal+pec"], "unknown method"),
        (["--backend", "exact"], "needs a noisy backend"),
        (["--shots", "100", "--precision", "0.001"], "too few for --precision"),
        (["--idle-zz", "5e6"], "--idle-zz 5e+06 Hz is out of range"),
        (["--idle-detuning", "nan"], "--idle-detuning nan Hz is out of range"),
        (["--backend", "aer_simulator", "--noise-model", "fake_manila", "--idle-zz", "1e4"], "local twin"),
    ],
)
def test_bad_studies_fail_in_one_line_and_write_nothing(run4, tmp_path, args, message):
    base = [
        "study",
        "noise",
        str(run4),
        "--backend",
        "fake_manila",
        "--images",
        "3",
        "--out",
        str(tmp_path / "s"),
    ]
    if "--backend" in args:
        base = base[:4] + base[6:]
    res = CliRunner().invoke(main, [*base, *args])
    assert res.exit_code == 2 and message in res.output and res.output.count("\n") == 1, res.output
    assert not any(tmp_path.iterdir())


def test_frontier_reports_gates_loading_and_errors_per_loader(run4, tmp_path):
    folder = tmp_path / "frontiers"
    out = folder / "frontier-fake_manila-L4.json"
    res = CliRunner().invoke(
        main,
        [
            "study",
            "frontier",
            str(run4),
            "--backend",
            "fake_manila",
            "--loaders",
            "exact,ladder:1",
            "--images",
            "4",
            "--shots",
            "4000",
            "--methods",
            "cal",
            "--calibration-images",
            "4",
            "--optimization-level",
            "1",
            "--out",
            str(folder),
        ],
    )
    assert res.exit_code == 0, res.output
    frontier = json.loads(out.read_text())
    exact_point, ladder = sorted(frontier["points"], key=lambda p: p["loader"] != "exact")
    assert exact_point["loader"] == "exact" and exact_point["loading_fidelity_masked"] == 1.0
    assert ladder["loader"] == "ladder:1" and ladder["loading_fidelity_masked"] < 1.0
    assert ladder["two_qubit_gates"] < exact_point["two_qubit_gates"]
    assert set(ladder["methods"]) == {"raw", "cal"} and out.with_suffix(".png").is_file()
    points = frontier["points"]  # the plan printed before running is the sum of the studies' own
    assert frontier["qpu_seconds_estimate"] == pytest.approx(sum(p["qpu_seconds_estimate"] for p in points), abs=1e-2)
    assert frontier["qpu_plan"]["jobs"] == 4 and "QPU plan on fake_manila: 4 job(s)" in res.output
    res = CliRunner().invoke(main, ["study", "frontier", str(run4), "--backend", "fake_manila", "--loaders", "lader:2"])
    assert res.exit_code == 2 and "unknown loader" in res.output


def test_estimates_never_read_the_evaluated_images_exact_values(run4):
    """The same measurements with the evaluated rows' exact values replaced by garbage give the same estimates:
    only the calibration rows' exact values (and the reference circuits') enter the fits."""
    from qmae_qiskit.hardware.executors import make_executor
    from qmae_qiskit.study.noise import StudySpec, design, estimate, exact_values, run_local

    spec = StudySpec(
        run=str(run4), backend="fake_manila", samples=4, shots=2000, methods="cal,cal+ref", calibration_images=6
    )
    executor = make_executor(spec.backend, spec.noise_model)
    d = design(spec, executor)
    results, _ = run_local(d, executor)
    exact_f, exact_p = exact_values(d.prepared, loaded=True)
    garbage_f, garbage_p = exact_f.copy(), exact_p.copy()
    rng = np.random.default_rng(0)
    garbage_f[: d.n_eval] = rng.uniform(size=d.n_eval)
    garbage_p[: d.n_eval] = rng.dirichlet(np.ones(exact_p.shape[1]), size=d.n_eval)
    first = estimate(d, results, exact_f, exact_p)
    second = estimate(d, results, garbage_f, garbage_p)
    for a, b in zip(first[:3], second[:3], strict=True):
        assert set(a) == {"raw", "cal", "cal+ref"}
        for m in a:
            np.testing.assert_array_equal(a[m], b[m])
    # and the calibration rows' exact values do matter (the test can fail)
    garbage_f[d.n_eval :] = rng.uniform(size=d.n_cal)
    assert not np.allclose(estimate(d, results, garbage_f, exact_p)[0]["cal"], first[0]["cal"])
