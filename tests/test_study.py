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
    t_quantile,
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


def _device(rng, x, a, b, tau, shots):
    """A synthetic affine device: the image's own departure from the line (tau), then binomial shot noise, with
    the standard error an Estimator would report."""
    p = np.clip(a * x + b + rng.normal(0, tau, x.shape), 0, 1)
    y = rng.binomial(shots, p) / shots
    return y, np.sqrt(np.maximum(y * (1 - y), 1e-12) / shots)


def _coverage(k=10, tau=0.004, drop=None, quantile=None, trials=2000, n=5, a=0.3, b=0.05, shots=4000):
    """How often the 95 % intervals of held-out images cover their true values, over many calibrations."""
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(trials):
        xc, xe = rng.uniform(0.5, 0.95, k), rng.uniform(0.5, 0.95, n)
        (yc, sc), (ye, se) = _device(rng, xc, a, b, tau, shots), _device(rng, xe, a, b, tau, shots)
        fit = fit_affine(xc, yc, None, sc)
        est, parts = fit.invert_parts(ye, se)
        parts.pop(drop, None)
        half = (quantile or t_quantile(fit.dof)) * np.sqrt(np.maximum(sum(parts.values()), 0))
        hits += int(np.sum(np.abs(est - xe) <= half))
    return hits / (trials * n)


@pytest.mark.parametrize(
    "case, part, most, without",
    [({}, "shot", 0.98, 0.91), ({"tau": 0.01}, "scatter", 0.98, 0.91), ({"k": 5, "tau": 0.01}, "fit", 0.985, 0.95)],
)
def test_95_percent_intervals_cover_a_synthetic_device_95_percent_of_the_time(case, part, most, without):
    """Known slope, intercept, scatter and shots: the intervals cover 95 % or a little more (the fitted scatter is
    cut at zero, so they lean wide where it is small); without the part that matters in the case (shot noise,
    scatter, or the fit's covariance with few calibration images) they cover too little."""
    assert 0.935 <= _coverage(**case) <= most
    assert _coverage(**case, drop=part) < without


def test_an_interval_is_never_narrower_than_its_own_shot_noise_and_the_fit():
    """A calibration whose residual comes out below its points' shot noise (a negative scatter estimate) leaves
    each new image at least its own shot variance and the fit's covariance, never less."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0.5, 0.95, 10)
    y = 0.3 * x + 0.05 + rng.normal(0, 1e-4, 10)  # almost no residual
    fit = fit_affine(x, y, None, np.full(10, 0.01))  # but shot errors of 0.01 reported
    assert fit.residual_std < 0.01
    est, parts = fit.invert_parts(np.array([0.25]), np.array([0.01]))
    assert parts["scatter"][0] == 0.0
    assert parts["shot"][0] == pytest.approx((0.01 / fit.slope) ** 2)
    assert fit.invert(np.array([0.25]), np.array([0.01]))[1][0] >= 0.01 / fit.slope


def test_intervals_need_students_t_for_a_fitted_scatter():
    """With the scatter dominant (so the cut at zero rarely acts) and 5 calibration images, the normal quantile
    covers too little and Student's t enough."""
    assert _coverage(tau=0.01, k=5, quantile=1.96) < 0.9 < 0.95 < _coverage(tau=0.01, k=5)


def test_reference_intervals_cover_a_synthetic_control_variate_device():
    rng = np.random.default_rng(8)
    hits, trials, k, n = 0, 800, 20, 5
    for _ in range(trials):
        f, fr = rng.uniform(0.5, 0.9, k + n), rng.uniform(0.85, 0.99, k + n)
        mr, sr = _device(rng, 0.5 * fr, 1.0, 0.1, 0.01, 4000)
        truth = np.clip(0.4 * f + 0.6 * mr - 0.3 * fr + 0.05 + rng.normal(0, 0.002, k + n), 0, 1)
        m = rng.binomial(4000, truth) / 4000
        sm = np.sqrt(m * (1 - m) / 4000)
        c, e = slice(0, k), slice(k, k + n)
        fit = fit_reference(f[c], m[c], mr[c], fr[c], (sm[c], sr[c]))
        est, std = fit.invert(m[e], mr[e], fr[e], (sm[e], sr[e]))
        hits += int(np.sum(np.abs(est - f[e]) <= t_quantile(fit.dof) * std))
    assert 0.93 <= hits / (trials * n) <= 0.985  # the scatter, cut at zero, leans wide


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
    # "shared": raw comes along only where a listed method's job reads it (a budgeted study's baseline)
    assert [m.name for m in parse_methods("cal,trex+cal", raw="shared")] == ["raw", "cal", "trex+cal"]
    assert [m.name for m in parse_methods("dd,dd+cal", raw="shared")] == ["dd", "dd+cal"]
    assert [m.name for m in parse_methods("dd,dd+cal")] == ["raw", "dd", "dd+cal"]
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
    from qmae_qiskit.train.training import TrainOptions, train

    d = tmp_path_factory.mktemp("runs") / "qmae4"
    train(
        RunSettings(config=QMAEConfig(image_size=4), epochs=2, train_samples=128, batch_size=32, seed=1),
        d,
        None,
        TrainOptions(progress=False, plot=False),
        data_dir=DATA,
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
        (["--calibration-split", "test", "--calibration-images", "4", "--calibration-pick", "first"], "also evaluated"),
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
    from qmae_qiskit.study.analysis import estimate, exact_values
    from qmae_qiskit.study.design import StudySpec, design
    from qmae_qiskit.study.noise import run_local

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


def test_the_job_store_dispatches_completion_by_purpose(tmp_path):
    """``jobs fetch`` asks the store, which calls the completer registered for the record's purpose."""
    from qmae_qiskit.evaluate import submit
    from qmae_qiskit.hardware import jobs as store
    from qmae_qiskit.study import noise

    assert store._COMPLETERS["study"] is noise.complete_record
    assert store._COMPLETERS["evaluate"] is submit.complete_record
    store.update(tmp_path, store.JobRecord(id="probe1", purpose="probe", mode="local", backend="fake_manila"))
    with pytest.raises(QMAEError, match="'probe' record, which this version cannot complete"):
        store.complete(tmp_path, "probe1")
    seen = []

    def probe(jobs_dir, rec, options):
        seen.append((rec.id, options))
        return store.Completion(rec, ["completed"])

    store.completes("probe")(probe)
    try:
        assert store.complete(tmp_path, "probe1", level=3).lines == ["completed"]
        assert seen == [("probe1", {"level": 3})]
    finally:
        del store._COMPLETERS["probe"]


# ------------------------------------------------------------------------------------------------ budgets
def test_the_cost_model_is_the_qpu_plan_of_the_design(run4):
    """Per role, c0 + c1 x rows from one- and two-row plans predicts the plan of the whole design (any shots)."""
    from qmae_qiskit.hardware.executors import make_executor
    from qmae_qiskit.hardware.qpu_time import plan_work
    from qmae_qiskit.study.budget import cost_model
    from qmae_qiskit.study.design import StudySpec, design

    spec = StudySpec(
        run=str(run4), backend="fake_manila", samples=3, shots=1500, methods="raw,recommended", calibration_images=6
    )
    executor = make_executor(spec.backend, spec.noise_model)
    d = design(spec, executor)
    costs = cost_model(d, executor.target)
    want = plan_work(d.work, executor.target).qpu_seconds
    assert costs.seconds(1500, 9) == pytest.approx(want, rel=1e-9)
    no_ref = {r: t for r, t in d.work.tasks.items() if not r.startswith("reference/")}
    want = plan_work(Work(no_ref, shots=700), executor.target).qpu_seconds
    # twirled (TREX) jobs round the shots up to whole randomizations: linear in the shots to within a percent
    assert costs.seconds(700, 9, references=False) == pytest.approx(want, rel=1e-2)


def test_the_predicted_error_matches_a_synthetic_device():
    """NoiseModel.std(shots, K) against the spread of calibrated estimates on a device with that slope, scatter
    and shot noise."""
    from qmae_qiskit.study.budget import NoiseModel

    a, b, tau, shots, k = 0.3, 0.05, 0.006, 2000, 12
    rng = np.random.default_rng(9)
    errs = []
    for _ in range(3000):
        xc, xe = rng.uniform(0.5, 0.95, k), rng.uniform(0.5, 0.95, 1)
        (yc, sc), (ye, se) = _device(rng, xc, a, b, tau, shots), _device(rng, xe, a, b, tau, shots)
        errs.append(fit_affine(xc, yc, None, sc).invert(ye, se)[0][0] - xe[0])
    p = a * rng.uniform(0.5, 0.95, 100_000) + b
    v = float(np.mean(p * (1 - p)))  # the per-shot variance of a measured probability
    model = NoiseModel(a, tau**2, v, 2)
    assert model.std(shots, k) == pytest.approx(np.std(errs), rel=0.1)


def test_the_upper_prediction_bounds_the_pilot_residual_in_84_percent_of_pilots():
    """The pilot's scatter at its upper bound: over many synthetic 12-image pilots, the bounded residual variance
    (scatter + the pilot's shot variance) exceeds the device's true one in about 84 % of them; the point estimate
    does in about half. The allocation is chosen on the upper bound (the best (shots, K) for it, found here by
    brute force) and carries the point prediction beside it."""
    from qmae_qiskit.study.budget import PILOT_IMAGES, CostModel, allocate, noise_models

    a, b, tau, shots = 0.3, 0.05, 0.006, 1000
    rng = np.random.default_rng(11)
    true_resid = tau**2 + float(np.mean([p * (1 - p) for p in a * np.linspace(0.5, 0.95, 1001) + b])) / shots
    above_upper = above_point = 0
    trials = 3000
    for _ in range(trials):
        x = rng.uniform(0.5, 0.95, PILOT_IMAGES)
        y, sd = _device(rng, x, a, b, tau, shots)
        model = noise_models({"fidelity": fit_affine(x, y, None, sd).as_dict()}, shots)[False]
        upper = model.upper()
        assert upper is not None and model.dof == PILOT_IMAGES - 2
        shot = model.shot_var_per_shot / shots
        above_upper += upper.scatter_var + shot >= true_resid
        above_point += model.scatter_var + shot >= true_resid
    assert above_upper / trials == pytest.approx(0.84, abs=0.03)
    assert above_point / trials < 0.6
    costs = CostModel({"fidelity/x": 3e-4}, {"fidelity/x": 1e-4}, 3.0)
    got = allocate(600, 100, costs, {False: model}, spent=20)
    assert got["chosen_on"] == "upper"
    assert got["predicted_std"] == pytest.approx(model.std(got["shots"], got["calibration_images"]))
    feasible = [(costs.max_shots(580, 100 + k, False), k) for k in range(6, 61)]
    best = min(feasible, key=lambda sk: upper.std(*sk))
    assert (got["shots"], got["calibration_images"]) == best
    assert got["options"]["without_references"]["predicted_std"] == pytest.approx(upper.std(*best))
    want = upper.std(got["shots"], got["calibration_images"]) * np.sqrt(2 / np.pi)
    assert got["predicted_mean_abs_error_upper"] == pytest.approx(want)
    assert got["predicted_mean_abs_error_upper"] > got["predicted_mean_abs_error"]


@pytest.mark.parametrize("slope, said", [(0.002, True), (0.3, False)])
def test_a_pilot_that_barely_sees_the_signal_says_its_predictions_are_unreliable(slope, said):
    """A synthetic 12-image pilot at 1,000 shots on a device that keeps 0.2 % of the signal fits a slope within
    3 sigma of zero: the record marks it and the allocation's report says the predictions are unreliable; on a
    device that keeps 30 % it says nothing."""
    from types import SimpleNamespace

    from qmae_qiskit.study.budget import CostModel, allocate, noise_models, pilot_summary
    from qmae_qiskit.study.report import allocation_line

    rng = np.random.default_rng(12)
    x = rng.uniform(0.5, 0.95, 12)
    y, sd = _device(rng, x, slope, 0.05, 0.0, 1000)
    fit = fit_affine(x, y, None, sd)
    model = noise_models({"fidelity": fit.as_dict()}, 1000)[False]
    assert model.slope_resolved is (abs(fit.slope) > 3 * fit.slope_se) is (not said)
    got = allocate(600, 100, CostModel({"fidelity/x": 3e-4}, {"fidelity/x": 1e-4}, 3.0), {False: model}, spent=20)
    got["pilot"] = {**pilot_summary(SimpleNamespace(qpu_seconds=20.0), {False: model}), "method": "cal"}
    got["budget_s"] = 600
    assert got["pilot"]["models"]["without_references"]["slope_resolved"] is (not said)
    assert ("within 3σ of zero" in allocation_line(got)) is said


def test_the_allocation_fits_the_budget_and_takes_references_only_when_they_pay():
    from qmae_qiskit.study.budget import CostModel, NoiseModel, allocate

    costs = CostModel({"fidelity/x": 3e-4, "reference/x": 3e-4}, {"fidelity/x": 1e-4, "reference/x": 0.0}, 3.0)
    line = NoiseModel(0.3, 0.02**2, 0.2, 2)
    for ref_scatter, want in [(0.002, True), (0.02, False)]:
        models = {False: line, True: NoiseModel(0.3, ref_scatter**2, 0.35, 4)}
        got = allocate(600, 100, costs, models, spent=20)
        assert got["references"] is want
        assert costs.seconds(got["shots"], 100 + got["calibration_images"], want) <= 580
        assert costs.seconds(got["shots"] + 1, 100 + got["calibration_images"], want) > 580  # the budget is spent
        chosen = models[want].std(got["shots"], got["calibration_images"])
        assert got["predicted_std"] == pytest.approx(chosen)
        other = got["options"]["without_references" if want else "with_references"]["predicted_std"]
        assert chosen < other
    with pytest.raises(QMAEError, match="too small for one pass: .* at least"):
        allocate(10, 100, costs, {False: line}, spent=5)


def test_a_budgeted_study_records_its_allocation_coverage_and_verdict(run4, tmp_path):
    out = tmp_path / "study-fake_manila-L4.json"  # --out is a folder; the file is named by the study
    args = ["study", "noise", str(run4), "--backend", "fake_manila", "--images", "4", "--methods", "raw,recommended"]
    res = CliRunner().invoke(main, [*args, "--qpu-budget", "60", "--max-error", "0.0001", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    study = json.loads(out.read_text())
    alloc = study["allocation"]
    assert alloc["budget_s"] == 60 and study["qpu_seconds_estimate"] <= 60
    assert (
        study["spec"]["shots"] == alloc["shots"] and study["spec"]["calibration_images"] == alloc["calibration_images"]
    )
    assert study["qpu_seconds_estimate"] == pytest.approx(
        alloc["pilot"]["qpu_seconds"] + study["qpu_plan"]["qpu_seconds"], abs=1e-2
    )
    name = "recommended" if alloc["references"] else "trex+mthree+cal"
    rec = study["aggregates"][name]["fidelity"]
    rows = study["per_image"]
    miss = np.abs([r["estimates"][name] - r["exact"] for r in rows])
    q = rec["interval_quantile_95"]
    assert rec["coverage_95"] == pytest.approx(np.mean(miss <= q * np.array([r["stds"][name] for r in rows])))
    assert q > 1.96 and set(rec["std_parts"]) == {"fit", "scatter", "shot"}
    verdict = study["verdict"]
    assert not verdict["resolved"] and verdict["predicted_error"] > 0.0001  # above --max-error: never resolved
    assert ("predicted error above 0.0001" in verdict["line"]) == (abs(verdict["slope"]) >= 3 * verdict["slope_se"])
    assert any("brickwork" in h for h in verdict["helps"]) and any("budget" in h for h in verdict["helps"])
    assert any("--metrics fidelity" in h for h in verdict["helps"])  # it ran a Sampler job
    assert "NOT RESOLVED" in out.with_suffix(".md").read_text()


def test_a_budgeted_study_spends_no_job_on_a_raw_baseline_nobody_listed(run4, tmp_path):
    """With dynamical decoupling on every listed method, raw would need a job of its own: a budgeted study runs
    none (pilot included), so the judged method's job gets the whole budget; without a budget raw still comes."""
    args = ["study", "noise", str(run4), "--backend", "fake_manila", "--images", "4", "--metrics", "fidelity"]
    args += ["--methods", "dd,dd+cal", "--out", str(tmp_path)]
    res = CliRunner().invoke(main, [*args, "--qpu-budget", "60"])
    assert res.exit_code == 0, res.output
    study = json.loads((tmp_path / "study-fake_manila-L4.json").read_text())
    assert study["spec"]["raw_baseline"] == "shared" and set(study["aggregates"]) == {"dd", "dd+cal"}
    assert [i["role"] for i in study["qpu_plan"]["items"]] == ["fidelity/dd"]  # one job: dd and dd+cal read it
    listed = tmp_path / "listed"  # raw listed: its own job, in the pilot too, which then costs about twice as much
    res = CliRunner().invoke(main, [*args[:-3], "raw,dd,dd+cal", "--out", str(listed), "--qpu-budget", "60"])
    assert res.exit_code == 0, res.output
    with_raw = json.loads((listed / "study-fake_manila-L4.json").read_text())
    assert {i["role"] for i in with_raw["qpu_plan"]["items"]} == {"fidelity/raw", "fidelity/dd"}
    assert with_raw["allocation"]["pilot"]["qpu_seconds"] > 1.5 * study["allocation"]["pilot"]["qpu_seconds"]
    res = CliRunner().invoke(main, [*args[:-1], str(tmp_path / "plain"), "--shots", "100"])
    assert res.exit_code == 0, res.output
    plain = json.loads((tmp_path / "plain" / "study-fake_manila-L4.json").read_text())
    assert set(plain["aggregates"]) == {"raw", "dd", "dd+cal"} and plain["spec"]["raw_baseline"] == "always"


def test_a_budget_too_small_for_one_pass_names_the_minimum_and_writes_nothing(run4, tmp_path):
    args = [
        "study",
        "noise",
        str(run4),
        "--backend",
        "fake_manila",
        "--images",
        "4",
        "--out",
        str(tmp_path / "s"),
    ]
    res = CliRunner().invoke(main, [*args, "--qpu-budget", "5"])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "too small for one pass" in res.output and "at least" in res.output
    assert not any(tmp_path.iterdir())
    res = CliRunner().invoke(main, [*args, "--qpu-budget", "60", "--dry-run"])  # the pilot's plan, nothing run
    assert res.exit_code == 0 and "QPU plan on fake_manila" in res.output and "nothing written" in res.output
    assert not any(tmp_path.iterdir())


def test_calibration_images_are_spread_over_every_digit_of_the_sorted_training_split():
    """The training split is sorted by digit: its first K images are all zeros, unlike the evaluated images."""
    from qmae_qiskit.study.design import StudySpec, _calibration_images

    spec = StudySpec(run="unused", backend="fake_manila", calibration_images=10)
    spread = _calibration_images(spec, DATA, 4)
    assert sorted(spread.labels.tolist()) == list(range(10))
    first = _calibration_images(spec.model_copy(update={"calibration_pick": "first"}), DATA, 4)
    assert first.indices.tolist() == list(range(10)) and set(first.labels.tolist()) == {0}
    later = _calibration_images(spec.model_copy(update={"calibration_start": 2500}), DATA, 4)
    assert min(later.indices.tolist()) >= 2500 and len(later) == 10


# ------------------------------------------------------------------------------------------ fidelity alone
def test_fidelity_alone_runs_no_sampler_and_gives_the_budget_to_the_fidelity(run4):
    """`--metrics fidelity` designs no reconstruction task, so the QPU plan (and a budget's cost model) pays for the
    fidelity alone: it costs the full plan less the Sampler job's seconds, so a fixed budget buys more shots."""
    from qmae_qiskit.hardware.executors import make_executor
    from qmae_qiskit.hardware.qpu_time import plan_work
    from qmae_qiskit.study.budget import cost_model
    from qmae_qiskit.study.design import StudySpec, design

    common = {"run": str(run4), "backend": "fake_manila", "samples": 4, "shots": 1000, "calibration_images": 6}
    executor = make_executor("fake_manila", None)
    full = design(StudySpec(**common, methods="raw,recommended"), executor)
    alone = design(StudySpec(**common, methods="raw,recommended", metrics="fidelity"), executor)
    assert any(r.startswith("reconstruction/") for r in full.work.tasks)
    assert alone.rec_role == {} and not any(r.startswith("reconstruction/") for r in alone.work.tasks)
    assert set(alone.prepared.circuit_summary()) == {"fidelity"}  # no reconstruction circuit transpiled
    fid = [d.prepared.work.tasks["fidelity"] for d in (alone, full)]  # the same ISA circuit, gate for gate
    ops = [[(i.operation.name, [t.circuit.find_bit(q).index for q in i.qubits]) for i in t.circuit.data] for t in fid]
    assert ops[0] == ops[1] and np.array_equal(fid[0].values, fid[1].values)
    assert set(alone.work.tasks) == {r for r in full.work.tasks if not r.startswith("reconstruction/")}
    roles = {i.role for i in plan_work(alone.work, executor.target).items}
    assert roles == set(alone.work.tasks)
    c_alone, c_full = cost_model(alone, executor.target), cost_model(full, executor.target)
    sampler = [r for r in c_full.per_row if r.startswith("reconstruction/")]
    for refs in (False, True):
        spared = sum(c_full.fixed[r] + c_full.per_row[r] * 104 for r in sampler) * 5000 + len(sampler) * c_full.overhead
        assert c_alone.seconds(5000, 104, refs) == pytest.approx(c_full.seconds(5000, 104, refs) - spared, rel=1e-9)
        assert c_alone.max_shots(600, 104, refs) > c_full.max_shots(600, 104, refs)
    # a record's spec designs the same tasks again (what `jobs fetch` of a device study does)
    again = design(StudySpec.of_record(StudySpec(**common, methods="raw", metrics="fidelity").model_dump()), executor)
    assert again.rec_role == {} and set(again.work.tasks) == {"fidelity/raw"}


def test_fidelity_alone_estimates_what_the_full_study_estimates(run4, tmp_path):
    """Each task draws its own stream, so the fidelity job is the same with or without the Sampler job: the
    estimates agree to the last digit; the record then has no CS or SSIM estimates and says so."""
    args = ["study", "noise", str(run4), "--backend", "fake_manila", "--images", "5", "--shots", "2000"]
    args += ["--methods", "raw,cal", "--calibration-images", "5", "--max-error", "0.0001"]
    out = {}
    for metrics in ("all", "fidelity"):
        res = CliRunner().invoke(main, [*args, "--metrics", metrics, "--out", str(tmp_path / metrics)])
        assert res.exit_code == 0, res.output
        out[metrics] = json.loads((tmp_path / metrics / "study-fake_manila-L4.json").read_text())
    full, alone = out["all"], out["fidelity"]
    for a, b in zip(full["per_image"], alone["per_image"]):
        assert a["exact"] == b["exact"]
        for m in ("raw", "cal"):
            assert b["estimates"][m] == pytest.approx(a["estimates"][m], abs=1e-12)
            assert b["stds"][m] == pytest.approx(a["stds"][m], abs=1e-12)
        assert "cs" in a and "cs" not in b and "ssim" not in b
    assert set(alone["aggregates"]["cal"]) == {"fidelity", "cost"}
    for key in ("mean_abs_error", "bias", "coverage_95", "mean_std"):
        assert alone["aggregates"]["cal"]["fidelity"][key] == pytest.approx(full["aggregates"]["cal"]["fidelity"][key])
    assert alone["aggregates"]["cal"]["cost"]["circuits"] == full["aggregates"]["cal"]["cost"]["circuits"] // 2
    assert "reconstruction" not in alone["fits"]["cal"] and "reconstruction" in full["fits"]["cal"]
    assert alone["qpu_plan"]["jobs"] == 1 and full["qpu_plan"]["jobs"] == 2
    helps = {k: " ".join(v["verdict"]["helps"]) for k, v in out.items()}  # never resolved at --max-error 0.0001
    assert "--metrics fidelity" in helps["all"] and "--metrics fidelity" not in helps["fidelity"]
    md = (tmp_path / "fidelity" / "study-fake_manila-L4.md").read_text()
    assert "CS and SSIM were not estimated" in md and "| -- | -- | -- | -- |" in md


def test_an_unknown_metrics_choice_is_one_line(run4, tmp_path):
    args = ["study", "noise", str(run4), "--backend", "fake_manila", "--images", "3", "--out", str(tmp_path / "s")]
    res = CliRunner().invoke(main, [*args, "--metrics", "cs"])
    assert res.exit_code == 2 and "'cs' is not one of 'all', 'fidelity'" in res.output, res.output
    assert not any(tmp_path.iterdir())


def test_a_methods_cost_counts_the_circuits_its_jobs_send(run4, tmp_path):
    """ZNE folds each circuit at three noise factors: its cost is three times raw's circuits and shots (they were
    counted as one circuit per row before), and with no job shared the methods' QPU seconds add up to the plan."""
    args = ["study", "noise", str(run4), "--backend", "fake_manila", "--images", "3", "--shots", "1000"]
    args += ["--methods", "raw,zne", "--calibration-images", "0", "--metrics", "fidelity", "--out", str(tmp_path)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    study = json.loads((tmp_path / "study-fake_manila-L4.json").read_text())
    raw, zne = study["aggregates"]["raw"]["cost"], study["aggregates"]["zne"]["cost"]
    assert raw["circuits"] == 3 and zne["circuits"] == 3 * len(study["spec"]["zne_noise_factors"])
    assert zne["shots"] == zne["circuits"] * 1000 and raw["shots"] == 3000
    assert raw["qpu_seconds"] + zne["qpu_seconds"] == pytest.approx(study["qpu_plan"]["qpu_seconds"])
    # ZNE's errors are the runtime's (no per-shot floor applies to an extrapolation): marked, and said in the report
    assert study["aggregates"]["zne"]["fidelity"]["std_source"] == "runtime"
    assert "std_source" not in study["aggregates"]["raw"]["fidelity"]
    md = (tmp_path / "study-fake_manila-L4.md").read_text()
    assert "`zne`: standard errors as the runtime reports them" in md


def test_references_are_considered_only_where_the_pilot_sees_them_lower_its_residual():
    """Synthetic 12-image pilots at 1,000 shots: where the reference carries nothing about the image's noise, the
    F test keeps them out in about 95 % of pilots; where it explains a scatter far above the pilot's shot noise, they
    are kept in every pilot, and the allocation then compares both designs as before."""
    from qmae_qiskit.study.budget import CostModel, allocate, noise_models, references_test

    costs = CostModel({"fidelity/x": 3e-4, "reference/x": 3e-4}, {"fidelity/x": 1e-4, "reference/x": 0.0}, 3.0)
    rng = np.random.default_rng(21)
    a, b, shots, k = 0.5, 0.05, 1000, 12
    for tau, informative, want in [(0.004, False, 0.95), (0.08, True, 1.0)]:
        kept = 0
        trials = 400 if informative else 1500
        for _ in range(trials):
            f, fr = rng.uniform(0.5, 0.95, k), rng.uniform(0.6, 0.95, k)
            noise = rng.normal(0, tau, k)  # the image's own noise, which a reference may share
            y = rng.binomial(shots, np.clip(a * f + b + noise, 0, 1)) / shots
            ref_noise = noise if informative else rng.normal(0, tau, k)
            yr = rng.binomial(shots, np.clip(a * fr + b + ref_noise, 0, 1)) / shots
            sd, sr = np.sqrt(y * (1 - y) / shots), np.sqrt(yr * (1 - yr) / shots)
            fits = {
                "fidelity": fit_affine(f, y, None, sd).as_dict(),
                "fidelity_with_reference": fit_reference(f, y, yr, fr, (sd, sr)).as_dict(),
            }
            models = noise_models(fits, shots)
            test = references_test(models[False], models[True])
            assert test is not None
            got = allocate(600, 100, costs, models, spent=20)
            assert got["references_test"] == test
            kept += test["p_value"] <= 0.05
            if test["p_value"] > 0.05:
                assert not got["references"] and "with_references" not in got["options"]
        if informative:
            assert kept == trials
        else:
            assert kept / trials == pytest.approx(1 - want, abs=0.02)


def test_references_on_or_off_overrides_the_pilots_test_and_says_so():
    """``--references on|off`` is the user's call over the F test: a pilot whose references explain nothing still
    gets them with ``on`` (and only that design is compared), one whose references pay goes without with ``off``;
    the test is still recorded, and the report says whose call it was."""
    from qmae_qiskit.study.budget import CostModel, NoiseModel, allocate, considered
    from qmae_qiskit.study.report import allocation_line

    costs = CostModel({"fidelity/x": 3e-4, "reference/x": 3e-4}, {"fidelity/x": 1e-4, "reference/x": 0.0}, 3.0)
    line = NoiseModel(0.3, 0.02**2, 0.2, 2, 10, 1000, 0.01)
    useless = NoiseModel(0.3, 0.02**2, 0.35, 4, 8, 1000, 0.01)  # same scatter with two more parameters
    paying = NoiseModel(0.3, 0.002**2, 0.35, 4, 8, 1000, 0.01)
    auto = allocate(600, 100, costs, {False: line, True: useless}, spent=20)
    assert auto["references_test"]["p_value"] > 0.05 and not auto["references"] and "references_rule" not in auto
    on = allocate(600, 100, costs, {False: line, True: useless}, spent=20, rule="on")
    assert on["references"] and list(on["options"]) == ["with_references"] and on["references_rule"] == "on"
    assert on["references_test"] == auto["references_test"]
    assert costs.seconds(on["shots"], 100 + on["calibration_images"], True) <= 580
    assert on["predicted_std"] == pytest.approx(useless.std(on["shots"], on["calibration_images"]))
    assert allocate(600, 100, costs, {False: line, True: paying}, spent=20)["references"]
    off = allocate(600, 100, costs, {False: line, True: paying}, spent=20, rule="off")
    assert not off["references"] and list(off["options"]) == ["without_references"]
    with pytest.raises(QMAEError, match="--references on: the pilot ran no design with them"):
        considered({False: line}, "on")
    pilot = {"calibration_images": 12, "shots": 1000, "qpu_seconds": 13.0, "method": "mthree+cal+ref", "models": {}}
    text = allocation_line({**on, "pilot": pilot, "budget_s": 600})
    assert "References on, as --references on asked (the pilot's F test: F = " in text
    assert "so they were not considered" not in text


def test_a_budgeted_study_with_references_on_runs_them_and_off_runs_none(run4, tmp_path):
    """End to end on a twin: ``on`` runs the reference circuits in the study (a reference task, the ref method's
    estimates); ``off`` runs none, neither in the pilot nor in the study."""
    args = ["study", "noise", str(run4), "--backend", "fake_manila", "--images", "4", "--qpu-budget", "60"]
    args += ["--methods", "raw,cal,cal+ref", "--metrics", "fidelity"]
    for rule in ("on", "off"):
        out = tmp_path / rule
        res = CliRunner().invoke(main, [*args, "--references", rule, "--out", str(out)])
        assert res.exit_code == 0, res.output
        study = json.loads((out / "study-fake_manila-L4.json").read_text())
        alloc = study["allocation"]
        assert alloc["references"] is (rule == "on") and alloc["references_rule"] == rule
        assert study["spec"]["references"] == rule
        roles = {item["role"].split("/")[0] for item in study["qpu_plan"]["items"]}
        assert roles == ({"fidelity", "reference"} if rule == "on" else {"fidelity"})
        assert ("cal+ref" in study["aggregates"]) is (rule == "on")
        pilot_models = alloc["pilot"]["models"]
        assert ("with_references" in pilot_models) is (rule == "on")  # off: the pilot ran no references either
        assert f"as --references {rule} asked" in (out / "study-fake_manila-L4.md").read_text()


def test_a_shared_sampler_job_charges_mthree_calibration_only_to_mthree_and_references_to_their_method(run4):
    """raw, cal and recommended share one Sampler job that carries mthree's readout-calibration circuits (for
    recommended): raw and cal are not charged for them; recommended's reference job is in its jobs and its cost."""
    from qmae_qiskit.hardware.executors import make_executor
    from qmae_qiskit.hardware.qpu_time import plan_work
    from qmae_qiskit.study.analysis import cost
    from qmae_qiskit.study.design import StudySpec, design

    spec = StudySpec(
        run=str(run4), backend="fake_manila", samples=3, shots=1000, methods="raw,cal,recommended", calibration_images=5
    )
    executor = make_executor("fake_manila", None)
    d = design(spec, executor)
    plan = plan_work(d.work, executor.target)
    by_role: dict[str, list] = {}
    for item in plan.items:
        by_role.setdefault(item.role, []).append(item)
    rec = by_role[d.rec_role["raw"]]
    assert len(rec) == 3  # the circuit, then mthree's two calibration circuits
    raw, rcm = cost(d, d.methods[0], {}, plan), cost(d, next(m for m in d.methods if m.name == "recommended"), {}, plan)
    fid_raw = sum(i.circuits for i in by_role[d.fid_role["raw"]])
    assert raw["circuits"] == fid_raw + rec[0].circuits  # no calibration circuits: raw reads plain counts
    assert rcm["jobs"] == sorted({d.fid_role["recommended"], d.rec_role["recommended"], d.ref_role["recommended"]})
    want = sum(i.circuits for r in rcm["jobs"] for i in by_role[r])  # everything of its three jobs
    assert rcm["circuits"] == want
    assert rcm["qpu_seconds"] == pytest.approx(sum(i.qpu_seconds for r in rcm["jobs"] for i in by_role[r]) + 3 * 3.0)


def test_a_frontier_of_the_fidelity_alone_runs_one_job_per_loader(run4, tmp_path):
    args = ["study", "frontier", str(run4), "--backend", "fake_manila", "--loaders", "exact,ladder:1", "--images", "4"]
    args += ["--shots", "2000", "--methods", "cal", "--calibration-images", "4", "--metrics", "fidelity"]
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    frontier = json.loads((tmp_path / "frontier-fake_manila-L4.json").read_text())
    assert frontier["qpu_plan"]["jobs"] == 2 and "QPU plan on fake_manila: 2 job(s)" in res.output
    for point in frontier["points"]:
        assert point["methods"]["cal"]["cs_mean_abs_error"] is None
        assert point["methods"]["cal"]["mean_abs_error"] > 0
    assert (tmp_path / "frontier-fake_manila-L4.md").is_file()
