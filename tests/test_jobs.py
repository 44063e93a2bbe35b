"""Evaluation jobs: local testing mode end to end, the IBM path behind a faked QiskitRuntimeService, records."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
import qiskit_ibm_runtime
import torch
from click.testing import CliRunner
from qiskit import qpy
from qiskit_aer import AerSimulator
from qiskit_ibm_runtime.options_models import EstimatorOptions

from qmae_qiskit.cli import main
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.evaluate.prepare import prepare
from qmae_qiskit.evaluate.submit import SubmitOptions, submit
from qmae_qiskit.hardware import jobs
from qmae_qiskit.hardware.executors import make_executor
from qmae_qiskit.hardware.mitigation import Mitigation, parse_mitigation
from qmae_qiskit.hardware.spec import ExecutionSpec
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.masking import insert_token, sample_mask_indices
from qmae_qiskit.simulate import exact
from qmae_qiskit.train.runs import Checkpoint, RunSettings, create_run_dir, save_checkpoint

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SECRET = "sentinel-token-fedcba9876543210"
CFG = QMAEConfig(image_size=8)

pytestmark = pytest.mark.skipif(not (DATA / "MNIST" / "raw").is_dir(), reason="needs MNIST in ../shared/data")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A QMAE run folder written through the runs API, with small random weights (near-identity autoencoder)."""
    d = create_run_dir(
        tmp_path_factory.mktemp("runs") / "qmae8", RunSettings(config=CFG, train_samples=4, batch_size=4), data_dir=DATA
    )
    g = torch.Generator().manual_seed(3)
    save_checkpoint(
        d,
        Checkpoint(
            step=1,
            theta=0.2 * torch.rand(CFG.n_theta, generator=g, dtype=torch.float64),
            token=torch.rand(CFG.n_token, generator=g, dtype=torch.float64),
            finished=True,
        ),
    )
    return d


def _inputs(run: Path, n: int):
    """Independent recomputation of what should have been submitted: images, masks, masked inputs."""
    from qmae_qiskit.data import load_mnist
    from qmae_qiskit.model.masking import EVAL_MASK_EPOCH
    from qmae_qiskit.train.runs import load_trained

    tm = load_trained(run)
    data = load_mnist(DATA, train=False, image_size=CFG.image_size, limit=n)
    idx = sample_mask_indices(CFG, tm.mask_ratio, data.indices, 0, epoch=EVAL_MASK_EPOCH)
    masked = insert_token(data.images, idx, CFG, tm.token).reshape(n, -1)
    return tm, data, idx, masked


# ------------------------------------------------------------------------------------------- mitigation
def test_mitigation_options_validate_with_the_runtime_models():
    m = parse_mitigation("resilience_level=2,twirling_gates=true,twirling_randomizations=8,dd_sequence=XY4")
    est, samp = m.estimator_options(shots=100), m.sampler_options(shots=100)
    assert isinstance(est, EstimatorOptions) and est.resilience_level == 2 and est.default_shots == 100
    assert est.twirling.enable_gates and est.twirling.num_randomizations == 8
    assert samp.dynamical_decoupling.enable and samp.dynamical_decoupling.sequence_type == "XY4"
    assert not hasattr(samp, "resilience_level")  # the runtime Sampler has no resilience
    nested = parse_mitigation('{"resilience": {"zne_mitigation": true, "zne": {"noise_factors": [1, 3]}}}')
    assert nested.estimator_options().resilience.zne.noise_factors == [1.0, 3.0]
    dotted = parse_mitigation("resilience.zne.noise_factors=[1,3,5],resilience.zne_mitigation=true")
    assert dotted.estimator == {"resilience": {"zne": {"noise_factors": [1, 3, 5]}, "zne_mitigation": True}}
    assert Mitigation().estimator_options().resilience_level == 0  # raw unless asked (the runtime says 1)
    assert Mitigation().is_raw and not parse_mitigation("resilience_level=1").is_raw
    assert parse_mitigation(None, "mthree").readout == "mthree"
    for bad, msg in [
        ("resilence_level=1", "unknown option 'resilence_level'"),
        ("resilience_level=3", "0, 1 or 2"),
        ("resilience.zne.noise_factors=[1]", "at least two noise factors"),
        ("twirling", "KEY=VALUE"),
        ("{oops", "not valid JSON"),
    ]:
        with pytest.raises(QMAEError, match=msg):
            parse_mitigation(bad)
    with pytest.raises(QMAEError, match="no noise to mitigate"):
        parse_mitigation("resilience_level=1").check_runnable("exact", device=False)
    with pytest.raises(QMAEError, match="learned on a real device"):
        parse_mitigation("resilience.pec_mitigation=true").check_runnable("twin", device=False)


# ------------------------------------------------------------------------------------- local testing mode
@pytest.fixture(scope="module")
def local_job(run_dir, tmp_path_factory):
    jobs_dir = tmp_path_factory.mktemp("jobs")
    res = CliRunner().invoke(
        main,
        [
            "submit",
            str(run_dir),
            "--backend",
            "fake_guadalupe",
            "--images",
            "2",
            "--shots",
            "16",
            "--simulator-seed",
            "7",
            "--estimator-options",
            "resilience_level=1",
            "--jobs-dir",
            str(jobs_dir),
            "--no-classifier",
        ],
    )
    assert res.exit_code == 0, res.output
    (rec_path,) = [p for p in jobs_dir.glob("*.json") if p.name.count(".") == 1]
    return jobs_dir, json.loads(rec_path.read_text()), res.output


def test_local_submit_writes_record_results_and_metrics(local_job, run_dir):
    jobs_dir, rec, output = local_job
    rid = rec["id"]
    assert rec["mode"] == "local" and rec["status"] == "FETCHED" and rec["backend"] == "fake_guadalupe"
    assert rec["jobs"]["fidelity"]["job_id"] == rid and rec["jobs"]["reconstruction"]["job_id"] != rid
    assert (jobs_dir / f"{rid}.results.json").is_file() and (jobs_dir / f"{rid}.metrics.json").is_file()
    tm, data, idx, _ = _inputs(run_dir, 2)
    assert rec["context"]["mask_indices"] == idx.tolist() and rec["context"]["image_indices"] == data.indices.tolist()
    assert rec["shots"] == 16 and rec["mitigation"] == {"estimator": {"resilience_level": 1}, "readout": "none"}
    assert rec["executor"]["kind"] == "twin" and rec["context"]["fidelity_circuit"] == "inverse"
    for kind in ("fidelity", "reconstruction"):
        blob = base64.b64decode(rec["circuits"][kind]["qpy_base64"])
        assert hashlib.sha256(blob).hexdigest() == rec["circuits"][kind]["qpy_sha256"]
        (isa,) = qpy.load(io.BytesIO(blob))
        assert isa.num_qubits == 16  # fake_guadalupe's width: an ISA circuit
    assert rec["provenance"]["versions"]["qiskit-ibm-runtime"] == qiskit_ibm_runtime.__version__
    assert "fidelity" in output and "ssim" in output


def test_metrics_follow_from_the_saved_results(local_job, run_dir):
    """Recompute CS and the mean fidelity from the raw results with numpy, independently of the scoring code."""
    jobs_dir, rec, _ = local_job
    raw = json.loads((jobs_dir / f"{rec['id']}.results.json").read_text())["results"]
    met = json.loads((jobs_dir / f"{rec['id']}.metrics.json").read_text())
    _, data, _, _ = _inputs(run_dir, 2)
    assert all(sum(c.values()) == 16 for c in raw["reconstruction"]["counts"])
    cs = []
    for counts, img in zip(raw["reconstruction"]["counts"], data.images):
        p = np.zeros(CFG.dim)
        for key, c in counts.items():
            p[int(key, 2)] += c
        a, b = np.sqrt(p / p.sum()), img.numpy().reshape(-1)
        cs.append(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert np.isclose(met["metrics"]["cs"]["mean"], np.mean(cs), atol=1e-12)
    assert np.isclose(met["metrics"]["fidelity"]["mean"], np.mean(raw["fidelity"]["values"]), atol=1e-12)


def test_jobs_list_status_fetch_cancel_on_a_local_record(local_job):
    jobs_dir, rec, _ = local_job
    runner = CliRunner()
    res = runner.invoke(main, ["jobs", "list", "--jobs-dir", str(jobs_dir)])
    assert res.exit_code == 0 and rec["id"] in res.output and "fake_guadalupe" in res.output
    res = runner.invoke(main, ["jobs", "status", rec["id"], "--jobs-dir", str(jobs_dir)])
    assert res.exit_code == 0 and "FETCHED" in res.output
    before = json.loads((jobs_dir / f"{rec['id']}.metrics.json").read_text())["metrics"]
    res = runner.invoke(
        main, ["jobs", "fetch", rec["jobs"]["reconstruction"]["job_id"], "--jobs-dir", str(jobs_dir), "--no-classifier"]
    )  # either job id finds the record
    assert res.exit_code == 0, res.output
    assert json.loads((jobs_dir / f"{rec['id']}.metrics.json").read_text())["metrics"] == before
    res = runner.invoke(main, ["jobs", "cancel", rec["id"], "--jobs-dir", str(jobs_dir)])
    assert res.exit_code == 2 and "nothing to cancel" in res.output


def test_corrupt_record_is_reported_and_left_alone(tmp_path):
    bad = tmp_path / "abc123.json"
    bad.write_text('{"schema": "qmae-qiskit/job-record", ')
    runner = CliRunner()
    res = runner.invoke(main, ["jobs", "fetch", "abc123", "--jobs-dir", str(tmp_path)])
    assert res.exit_code == 2 and "corrupt" in res.output and res.output.count("\n") == 1
    assert bad.read_text() == '{"schema": "qmae-qiskit/job-record", '
    res = runner.invoke(main, ["jobs", "list", "--jobs-dir", str(tmp_path)])
    assert res.exit_code == 0 and "CORRUPT" in res.output
    res = runner.invoke(main, ["jobs", "status", "../etc/passwd", "--jobs-dir", str(tmp_path)])
    assert res.exit_code == 2 and "not a job id" in res.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "fake_manila"], "needs 7 qubits but backend 'fake_manila' has 5"),
        (
            ["--backend", "fake_guadalupe", "--estimator-options", "resilence_level=1"],
            "unknown option 'resilence_level'",
        ),
        (["--backend", "fake_guadalupe", "--estimator-options", "resilience.pec_mitigation=true"], "real device"),
        (["--backend", "fake_guadalupe", "--noise-model", "fake_torino"], "--noise-model applies to"),
        (["--backend", "fake_guadalup"], "did you mean: fake_guadalupe"),
    ],
)
def test_bad_submissions_fail_before_anything_is_written(run_dir, tmp_path, args, message):
    res = CliRunner().invoke(
        main, ["submit", str(run_dir), "--images", "1", "--shots", "8", *args, "--jobs-dir", str(tmp_path / "jobs")]
    )
    assert res.exit_code == 2 and message in res.output and res.output.count("\n") == 1
    assert not (tmp_path / "jobs").exists()


# ------------------------------------------------------------------------------ the IBM path, faked service
class FakeService:
    """Only the network boundary is replaced: a service that hands out a local simulator and known jobs."""

    jobs: dict = {}

    def __init__(self, *args, **kwargs):
        assert not args and not kwargs

    def backend(self, name, **_):
        sim = AerSimulator(basis_gates=["cx", "id", "rz", "sx", "x", "measure", "reset", "delay"], seed_simulator=11)
        sim.name = name  # a device: ISA gates only
        return sim

    def backends(self, **_):
        return []

    def job(self, job_id):
        return self.jobs[job_id]


class StubJob:
    def __init__(self, state, message=""):
        self.state, self.message, self.cancelled = state, message, False

    def status(self):
        return self.state

    def result(self):
        raise RuntimeError(f"job is {self.state}")

    def error_message(self):
        return self.message

    def cancel(self):
        self.cancelled = True
        self.state = "CANCELLED"


@pytest.fixture
def ibm(monkeypatch):
    FakeService.jobs = {}
    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", FakeService)
    monkeypatch.setenv("QISKIT_IBM_TOKEN", SECRET)
    monkeypatch.setenv("QISKIT_IBM_INSTANCE", "crn:v1:fake-instance")
    return FakeService


def test_ibm_submit_returns_at_once_and_fetch_completes_later(ibm, run_dir, tmp_path):
    n, shots = 3, 4000
    opts = SubmitOptions(
        run=run_dir, backend="ibm_sim", samples=n, shots=shots, mitigation=parse_mitigation("twirling_gates=true")
    )
    sub = submit(opts, tmp_path, use_classifier=False)
    rec = json.loads(sub.path.read_text())
    # the process could die here: the record on disk is complete and has no results yet
    assert rec["mode"] == "ibm" and rec["status"] == "SUBMITTED" and len(rec["jobs"]) == 2
    assert not (tmp_path / f"{rec['id']}.results.json").exists()
    ibm.jobs = {info["job_id"]: sub.execution.jobs[role] for role, info in rec["jobs"].items()}
    for job in sub.execution.jobs.values():  # "later": IBM has finished the jobs (a local job's result() is not
        while str(getattr(job.status(), "name", job.status())) != "DONE":  # idempotent: wait on the status)
            time.sleep(0.05)
    runner = CliRunner()
    res = runner.invoke(main, ["jobs", "fetch", rec["id"], "--jobs-dir", str(tmp_path), "--no-classifier"])
    assert res.exit_code == 0, res.output
    raw = json.loads((tmp_path / f"{rec['id']}.results.json").read_text())["results"]
    # independent check: the exact simulator's fidelity and reconstruction of the same inputs
    tm, data, _, masked = _inputs(run_dir, n)
    clean = data.images.reshape(n, -1)
    want_f = exact.fidelity(tm.theta, masked, clean, CFG).numpy()
    assert np.all(np.abs(np.array(raw["fidelity"]["values"]) - want_f) < 5 / np.sqrt(shots) + 1e-9)
    want_p = exact.reconstruct(tm.theta, masked, CFG).numpy()
    for i, counts in enumerate(raw["reconstruction"]["counts"]):
        p = np.zeros(CFG.dim)
        for key, c in counts.items():
            p[int(key, 2)] += c / shots
        assert 0.5 * np.abs(p - want_p[i]).sum() < 0.08  # total variation of 4000 shots over 64 outcomes
    assert json.loads(sub.path.read_text())["status"] == "FETCHED"
    res = runner.invoke(main, ["jobs", "status", rec["id"], "--jobs-dir", str(tmp_path)])
    assert "FETCHED" in res.output
    # the token never reaches a file of ours
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert SECRET not in f.read_text(errors="replace")


def test_a_fetched_device_job_reads_binomial_errors_of_the_projector(ibm, run_dir, tmp_path):
    """Submitted to a (stub) device with no mitigation and fetched later: the inverse circuit's projector is read
    once per shot, so the fetched standard errors are the binomial ones of the fetched values (the runtime's own,
    which treat the projector's Z-products as independent, are smaller), as the record said at submission."""
    n, shots = 3, 2000
    opts = SubmitOptions(run=run_dir, backend="ibm_sim", samples=n, shots=shots, fidelity_circuit="inverse")
    sub = submit(opts, tmp_path, use_classifier=False)
    rec = json.loads(sub.path.read_text())
    assert rec["circuits"]["fidelity"]["binomial_shots"] == shots
    ibm.jobs = {info["job_id"]: sub.execution.jobs[role] for role, info in rec["jobs"].items()}
    for job in sub.execution.jobs.values():
        while str(getattr(job.status(), "name", job.status())) != "DONE":
            time.sleep(0.05)
    res = CliRunner().invoke(main, ["jobs", "fetch", rec["id"], "--jobs-dir", str(tmp_path), "--no-classifier"])
    assert res.exit_code == 0, res.output
    fid = json.loads((tmp_path / f"{rec['id']}.results.json").read_text())["results"]["fidelity"]
    p = np.clip(np.array(fid["values"]), 0, 1)
    assert np.allclose(fid["stds"], np.sqrt(p * (1 - p) / shots))


def test_inverse_fidelity_circuit_estimates_the_exact_fidelity(run_dir, tmp_path):
    """Ideal local run (aer_simulator) of the n+t-qubit fidelity circuit against the exact simulator."""
    n, shots = 3, 4000
    res = CliRunner().invoke(
        main,
        [
            "submit",
            str(run_dir),
            "--backend",
            "aer_simulator",
            "--images",
            str(n),
            "--shots",
            str(shots),
            "--fidelity-circuit",
            "inverse",
            "--simulator-seed",
            "5",
            "--jobs-dir",
            str(tmp_path),
            "--no-classifier",
        ],
    )
    assert res.exit_code == 0, res.output
    (rec_path,) = [p for p in tmp_path.glob("*.json") if p.name.count(".") == 1]
    rec = json.loads(rec_path.read_text())
    assert (
        rec["context"]["fidelity_circuit"] == "inverse"
        and rec["circuits"]["fidelity"]["observable_terms"] == 2**CFG.n_qubits
    )
    raw = json.loads((tmp_path / f"{rec['id']}.results.json").read_text())["results"]
    tm, data, _, masked = _inputs(run_dir, n)
    want = exact.fidelity(tm.theta, masked, data.images.reshape(n, -1), CFG).numpy()
    assert np.all(np.abs(np.array(raw["fidelity"]["values"]) - want) < 5 / np.sqrt(shots))


def test_small_devices_take_the_inverse_circuit(tmp_path_factory):
    """4x4 on 5-qubit fake_manila: the SWAP test (10 qubits) is refused with a hint, the inverse circuit fits."""
    cfg = QMAEConfig(image_size=4)
    d = create_run_dir(
        tmp_path_factory.mktemp("runs") / "qmae4", RunSettings(config=cfg, train_samples=4, batch_size=4), data_dir=DATA
    )
    save_checkpoint(
        d,
        Checkpoint(
            step=1,
            theta=torch.zeros(cfg.n_theta, dtype=torch.float64),
            token=torch.zeros(cfg.n_token, dtype=torch.float64),
            finished=True,
        ),
    )
    from qmae_qiskit.data import load_split
    from qmae_qiskit.train.runs import load_trained

    tm, data = load_trained(d), load_split(DATA, "test", 4, limit=2)
    executor = make_executor("fake_manila")
    with pytest.raises(QMAEError, match="needs 10 qubits .* --fidelity-circuit inverse \\(5 qubits\\)"):
        prepare(tm, data, ExecutionSpec(shots=8, fidelity_circuit="swap-test"), executor)
    prep = prepare(tm, data, ExecutionSpec(shots=8), executor)  # auto: the inverse circuit on a device
    task = prep.work.tasks["fidelity"]
    assert task.circuit.num_qubits == 5 and task.values.shape[0] == 2 and task.observable.num_qubits == 5


def _remote_record(tmp_path: Path, rid: str) -> Path:
    """A submitted IBM record as `submit` writes it (two jobs, no results yet)."""
    rec = jobs.JobRecord(
        id=rid,
        status="SUBMITTED",
        mode="ibm",
        backend="ibm_sim",
        circuits={
            "fidelity": {"primitive": "estimator"},
            "reconstruction": {"primitive": "sampler", "register": "pixel", "num_bits": 6},
        },
        jobs={
            "fidelity": jobs.JobInfo(job_id=rid, primitive="estimator", submitted_at="2026-01-01T00:00:00"),
            "reconstruction": jobs.JobInfo(job_id=rid + "r", primitive="sampler", submitted_at="2026-01-01T00:00:00"),
        },
        context={"run": "nowhere", "samples": 1},
        submitted_at="2026-01-01T00:00:00",
    )
    jobs.update(tmp_path, rec)
    return tmp_path / f"{rid}.json"


def test_a_version_1_record_still_loads(tmp_path):
    """A record written by qmae-qiskit 0.1 reads as version 2; its context moves under `context`."""
    v1 = {
        "schema": "qmae-qiskit/job-record",
        "schema_version": 1,
        "id": "old1",
        "status": "FETCHED",
        "mode": "ibm",
        "backend": "ibm_torino",
        "run": "runs/x",
        "model": "qmae",
        "samples": 2,
        "shots": 100,
        "mitigation": {"resilience_level": 1},
        "versions": {"qiskit": "2.1.0"},
        "submitted_at": "2026-01-01T00:00:00",
        "jobs": {
            "fidelity": {"job_id": "old1", "primitive": "estimator"},
            "reconstruction": {"job_id": "old1r", "primitive": "sampler"},
        },
        "circuits": {"fidelity": {"num_qubits": 14}},
        "image_indices": [0, 1],
        "notes": [],
    }
    (tmp_path / "old1.json").write_text(json.dumps(v1))
    rec = jobs.load(tmp_path, "old1r")  # found by either job id
    assert rec.schema_version == 2 and rec.context["run"] == "runs/x" and rec.context["image_indices"] == [0, 1]
    assert rec.mitigation["estimator"] == {"resilience_level": 1} and rec.provenance.versions["qiskit"] == "2.1.0"
    (tmp_path / "new9.json").write_text(json.dumps({**v1, "id": "new9", "schema_version": 9}))
    res = CliRunner().invoke(main, ["jobs", "fetch", "new9", "--jobs-dir", str(tmp_path)])
    assert res.exit_code == 2 and "schema version 9" in res.output and res.output.count("\n") == 1


def test_failed_job_is_one_line_and_the_record_is_kept(ibm, tmp_path):
    path = _remote_record(tmp_path, "jobfail")
    ibm.jobs = {"jobfail": StubJob("ERROR", f"out of budget {SECRET}"), "jobfailr": StubJob("DONE")}
    res = CliRunner().invoke(main, ["jobs", "fetch", "jobfail", "--jobs-dir", str(tmp_path)])
    assert res.exit_code == 2 and "ended ERROR" in res.output and res.output.count("\n") == 1
    assert SECRET not in res.output and SECRET not in path.read_text()
    rec = json.loads(path.read_text())
    assert rec["status"] == "ERROR" and rec["id"] == "jobfail"


def test_pending_job_and_cancel(ibm, tmp_path):
    path = _remote_record(tmp_path, "jobwait")
    ibm.jobs = {"jobwait": StubJob("QUEUED"), "jobwaitr": StubJob("RUNNING")}
    runner = CliRunner()
    res = runner.invoke(main, ["jobs", "fetch", "jobwait", "--jobs-dir", str(tmp_path)])
    assert res.exit_code == 2 and "not finished" in res.output
    res = runner.invoke(main, ["jobs", "status", "jobwait", "--jobs-dir", str(tmp_path)])
    assert res.exit_code == 0 and "RUNNING" in res.output
    res = runner.invoke(main, ["jobs", "cancel", "jobwait", "--jobs-dir", str(tmp_path)])
    assert res.exit_code == 0 and "CANCELLED" in res.output
    assert all(j.cancelled for j in ibm.jobs.values())
    assert json.loads(path.read_text())["status"] == "CANCELLED"
    res = runner.invoke(main, ["jobs", "fetch", "jobwait", "--jobs-dir", str(tmp_path)])
    assert res.exit_code == 2 and "cancelled" in res.output


def test_a_device_study_of_the_fidelity_alone_submits_one_job_and_fetches_without_cs(
    ibm, run_dir, tmp_path, monkeypatch
):
    """`study noise --metrics fidelity` on a (stub) device: one Estimator job in the durable record, nothing else
    sent; `jobs fetch` rebuilds the design from the record's spec and writes a study with no CS or SSIM whose
    fidelity rows are the exact path's within shot noise (the stub device is noiseless)."""
    import qmae_qiskit.hardware.executors.runtime as runtime_executor

    submitted = runtime_executor.note_submitted

    def the_service_keeps_it(role, job, ids, on_submitted):  # the service holds what it was sent, as IBM does
        ibm.jobs[job.job_id()] = job
        submitted(role, job, ids, on_submitted)

    monkeypatch.setattr(runtime_executor, "note_submitted", the_service_keeps_it)
    monkeypatch.chdir(tmp_path)
    args = ["study", "noise", str(run_dir), "--backend", "ibm_sim", "--images", "3", "--shots", "4000"]
    args += ["--methods", "raw,cal", "--calibration-images", "3", "--metrics", "fidelity", "--jobs-dir", "jobs"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0 and "submitted study" in res.output, res.output
    (path,) = [p for p in (tmp_path / "jobs").glob("*.json") if p.name.count(".") == 1]
    rec = json.loads(path.read_text())
    assert list(rec["jobs"]) == ["fidelity/raw"] and rec["context"]["study"]["metrics"] == "fidelity"
    for job in ibm.jobs.values():
        while str(getattr(job.status(), "name", job.status())) != "DONE":
            time.sleep(0.05)
    res = CliRunner().invoke(main, ["jobs", "fetch", rec["id"], "--jobs-dir", "jobs"])
    assert res.exit_code == 0, res.output
    (out,) = (tmp_path / "results" / "hardware").glob("study-ibm_sim-L8.json")
    study = json.loads(out.read_text())
    rows = study["per_image"]
    assert all("cs" not in r and "ssim" not in r for r in rows)
    assert set(study["aggregates"]["raw"]) == {"fidelity", "cost"} and study["aggregates"]["raw"]["cost"]["jobs"] == [
        "fidelity/raw"
    ]
    raw = np.array([r["estimates"]["raw"] for r in rows])
    assert np.all(np.abs(raw - np.array([r["exact"] for r in rows])) < 5 * 0.5 / np.sqrt(4000))
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert SECRET not in f.read_text(errors="replace")
