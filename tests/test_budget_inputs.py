"""Issue 16's budget loose ends at the command line: what a QPU budget, a cap and the repetition delay refuse up
front (one line, exit 2, nothing run or written), and what they record."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from qiskit_ibm_runtime.executor_estimator import Estimator
from qiskit_ibm_runtime.executor_sampler import Sampler

from qmae_qiskit.cli import main

REPO = Path(__file__).resolve().parents[1]


def _files(*folders: Path) -> set[Path]:
    return {p for f in folders if f.exists() for p in f.rglob("*")}


@pytest.fixture
def nothing_runs(monkeypatch):
    """A tripwire on the runtime's client-side primitives, which every twin and device job goes through."""

    def refuse(*args, **kwargs):
        raise AssertionError("a job ran")

    monkeypatch.setattr(Estimator, "run", refuse)
    monkeypatch.setattr(Sampler, "run", refuse)


def _study(run: Path, *args: str) -> list[str]:
    return ["study", "noise", str(run), "--backend", "fake_manila", "--methods", "raw,recommended", *args]


def _one_line_exit_2(res, *needles: str) -> None:
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and res.output.startswith("Error: "), res.output
    for needle in needles:
        assert needle in res.output, res.output


def test_a_budget_above_the_cap_is_refused_before_the_pilot(run4, tmp_path, monkeypatch, nothing_runs):
    monkeypatch.chdir(tmp_path)  # default outputs (jobs/, results/) would land here
    before = _files(run4, tmp_path)
    args = _study(run4, "--images", "4", "--qpu-budget", "60", "--max-qpu-seconds", "30", "--out", str(tmp_path / "s"))
    res = CliRunner().invoke(main, args)
    _one_line_exit_2(res, "--qpu-budget 60", "--max-qpu-seconds 30", "pass --qpu-budget 30 or less")
    assert _files(run4, tmp_path) == before
    # refused before the run is even read: the same line for a run folder that does not exist
    res = CliRunner().invoke(main, [*args[:2], str(tmp_path / "no-such-run"), *args[3:]])
    _one_line_exit_2(res, "--max-qpu-seconds 30")
    # a budget within the cap gets past it (to the dry run's pilot plan)
    ok = _study(run4, "--images", "4", "--qpu-budget", "60", "--max-qpu-seconds", "60", "--dry-run")
    res = CliRunner().invoke(main, ok)
    assert res.exit_code == 0 and "QPU plan on fake_manila" in res.output, res.output
    assert _files(run4, tmp_path) == before


def _planned_seconds(run: Path, methods: str, *args: str) -> float:
    cmd = ["study", "noise", str(run), "--backend", "fake_manila", "--methods", methods, *args, "--dry-run", "--json"]
    res = CliRunner().invoke(main, cmd)
    assert res.exit_code == 0, res.output
    return float(json.loads(res.stdout)["qpu_seconds"])


def test_the_minimum_budget_named_is_the_pilot_plus_the_cheapest_pass(run4, tmp_path, nothing_runs):
    """The named minimum, cross-checked against the dry-run plans of the pilot (1 image, 12 calibration images at
    1,000 shots) and of the two cheapest passes at 100 shots: 4 images with 6 calibration images without the
    references (2 fit parameters, 3 points each), or with 12 and the references (4 parameters)."""

    res = CliRunner().invoke(main, _study(run4, "--images", "4", "--qpu-budget", "5", "--out", str(tmp_path / "s")))
    _one_line_exit_2(res, "--qpu-budget 5 is too small for one pass", "raise --qpu-budget or pass fewer --images")
    named = float(re.search(r"at least ([\d,]+) QPU seconds", res.output).group(1).replace(",", ""))
    pilot = _planned_seconds(run4, "raw,recommended", "--images", "1", "--calibration-images", "12", "--shots", "1000")
    refs = _planned_seconds(run4, "raw,recommended", "--images", "4", "--calibration-images", "12", "--shots", "100")
    plain = _planned_seconds(run4, "trex+mthree+cal", "--images", "4", "--calibration-images", "6", "--shots", "100")
    assert named == math.ceil(pilot + min(refs, plain))
    assert not any(tmp_path.iterdir())
    # just below the minimum is refused, the minimum itself is not (its dry run plans the pilot)
    res = CliRunner().invoke(main, _study(run4, "--images", "4", "--qpu-budget", str(named - 1.5)))
    _one_line_exit_2(res, "too small for one pass")
    res = CliRunner().invoke(main, _study(run4, "--images", "4", "--qpu-budget", str(named), "--dry-run"))
    assert res.exit_code == 0 and "nothing written" in res.output, res.output


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--qpu-budget", "60", "--backend", "exact", "--dry-run"], ["--dry-run plans QPU time", "--backend exact"]),
        (["--qpu-budget", "60", "--backend", "exact"], ["--qpu-budget designs a study from a pilot"]),
        (["--qpu-budget", "60", "--idle-zz", "2e6"], ["--idle-zz 2e+06 Hz is out of range", "<= 1e+06"]),
        (["--qpu-budget", "60", "--idle-detuning", "-3e6"], ["--idle-detuning -3e+06 Hz is out of range"]),
        (["--qpu-budget", "60", "--idle-zz", "inf", "--dry-run"], ["--idle-zz inf Hz is out of range"]),
        (["--qpu-budget", "60", "--methods", "raw"], ["--methods 'raw' has none", "--methods raw,recommended"]),
        (["--methods", "raw,recommended", "--calibration-images", "4"], ["needs at least 5 calibration images"]),
        (["--references", "on"], ["--references on decides for --qpu-budget", "mthree+cal+ref runs the references"]),
        (["--qpu-budget", "60", "--references", "on", "--methods", "raw,cal"], ["last calibrated one: cal"]),
        (["--qpu-budget", "60", "--references", "on", "--methods", "raw,cal+ref,cal"], ["one: cal) to have"]),
    ],
)
def test_bad_budgeted_studies_are_one_line_and_write_nothing(run4, tmp_path, monkeypatch, nothing_runs, args, needles):
    monkeypatch.chdir(tmp_path)
    before = _files(run4, tmp_path)
    cmd = ["study", "noise", str(run4), "--images", "4", "--out", str(tmp_path / "s")]
    if "--backend" not in args:
        cmd += ["--backend", "fake_manila"]
    res = CliRunner().invoke(main, [*cmd, *args])
    _one_line_exit_2(res, *needles)
    assert _files(run4, tmp_path) == before


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--epochs", "1", "--train-images", "4"],
        ["circuit"],
        ["report", "depth", "--backend", "fake_manila"],
    ],
)
def test_an_unknown_ansatz_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, [*command, "--image-size", "4", "--ansatz", "ladder", "--out", str(tmp_path / "o")])
    _one_line_exit_2(res, "ansatz must be one of all-pairs, brickwork", "'ladder'")
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------- --rep-delay
@pytest.fixture
def job_options(monkeypatch):
    """The runtime options of every Estimator and Sampler job run, as the runtime's own primitives hold them."""
    seen: list = []

    def spy(cls):
        original = cls.run

        def run(self, *args, **kwargs):
            seen.append((cls.__name__, self.options))
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "run", run)

    spy(Estimator)
    spy(Sampler)
    return seen


def _plan_seconds(plan: dict) -> float:
    """A plan's QPU seconds recomputed from its items: instances x shots x (delay + duration), plus the jobs."""
    return sum(i["circuits"] * i["shots"] * (i["rep_delay_s"] + i["duration_s"]) for i in plan["items"]) + plan[
        "jobs"
    ] * float(plan["job_overhead_s"])


def test_a_rep_delay_reaches_the_runtime_options_the_plan_and_the_record(run4, tmp_path, job_options):
    delay = 1e-4
    args = [*_study(run4, "--images", "3", "--shots", "500", "--calibration-images", "4", "--methods", "raw,cal")]
    res = CliRunner().invoke(main, [*args, "--rep-delay", str(delay), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    study = json.loads((tmp_path / "study-fake_manila-L4.json").read_text())
    assert study["spec"]["rep_delay"] == delay and len(study["per_image"]) == 3
    assert job_options and all(opts.execution.rep_delay == delay for _, opts in job_options)
    assert {name for name, _ in job_options} == {"Estimator", "Sampler"}
    plan = study["qpu_plan"]
    assert plan["rep_delay_s"] == delay and {i["rep_delay_s"] for i in plan["items"]} == {delay}
    assert study["qpu_seconds_estimate"] == pytest.approx(_plan_seconds(plan), abs=1e-3)
    # the same design at the backend's own delay costs every shot the difference, and records no rep_delay
    res = CliRunner().invoke(main, [*args, "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    default = json.loads(res.stdout)
    assert default["rep_delay_s"] == 250e-6 and default["shots"] == plan["shots"]
    assert default["qpu_seconds"] - plan["qpu_seconds"] == pytest.approx(plan["shots"] * (250e-6 - delay))
    from qmae_qiskit.study.design import StudySpec

    assert "rep_delay" not in StudySpec(run="r", backend="fake_manila").model_dump()  # records keep it only if set


@pytest.mark.parametrize(
    "args, needles",
    [
        (
            ["study", "noise", "RUN", "--backend", "fake_manila", "--rep-delay", "0.001"],
            ["--rep-delay 0.001 s is outside fake_manila's range 0 to 0.0005 s", "default 0.00025 s"],
        ),
        (
            ["study", "noise", "RUN", "--backend", "fake_manila", "--rep-delay", "0.001", "--qpu-budget", "60"],
            ["--rep-delay 0.001 s is outside fake_manila's range"],
        ),
        (
            ["evaluate", "RUN", "--backend", "fake_manila", "--shots", "100", "--rep-delay", "0.0006", "--dry-run"],
            ["--rep-delay 0.0006 s is outside fake_manila's range"],
        ),
        (
            ["submit", "RUN", "--backend", "fake_manila", "--shots", "100", "--rep-delay", "0.0006"],
            ["--rep-delay 0.0006 s is outside fake_manila's range"],
        ),
        (["evaluate", "RUN", "--backend", "exact", "--rep-delay", "0.0001"], ["--backend exact has none"]),
        (
            ["evaluate", "RUN", "--backend", "aer_simulator", "--noise-model", "fake_manila", "--rep-delay", "1e-4"],
            ["--backend aer_simulator has none"],
        ),
    ],
)
def test_a_rep_delay_the_backend_does_not_take_is_one_line(run4, tmp_path, monkeypatch, nothing_runs, args, needles):
    monkeypatch.chdir(tmp_path)
    before = _files(run4, tmp_path)
    res = CliRunner().invoke(main, [str(run4) if a == "RUN" else a for a in args] + ["--images", "2"])
    _one_line_exit_2(res, *needles)
    assert _files(run4, tmp_path) == before


def test_the_rep_delay_help_says_what_a_shorter_one_risks_and_what_the_default_is():
    for command in (["study", "noise"], ["evaluate"], ["submit"], ["study", "frontier"]):
        res = CliRunner().invoke(main, [*command, "--help"])
        text = " ".join(res.output.split()).replace("- ", "-")  # click wraps after a hyphen
        assert "--rep-delay SECONDS" in text and "default_rep_delay" in text and "rep_delay_range" in text, command
        assert "less completely reset to |0>" in text and "state-preparation error" in text, command


def test_a_device_submission_sends_the_rep_delay_as_execution_rep_delay(run4, tmp_path, monkeypatch, job_options):
    """Only the network boundary is replaced (as in test_qpu_time): a service whose device is a local simulator
    with fake_manila's Target; the jobs go through the runtime's Batch and client-side primitives as on a device."""
    import qiskit_ibm_runtime
    from qiskit_aer import AerSimulator
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    class Service:
        def __init__(self, *a, **k):
            pass

        def backend(self, name, **_):
            dev = AerSimulator.from_backend(FakeManilaV2())
            dev.name = name
            return dev

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", Service)
    from qmae_qiskit.evaluate.submit import SubmitOptions, submit

    opts = SubmitOptions(run=run4, backend="ibm_manila", samples=2, shots=100, rep_delay=5e-5)
    rec = json.loads(submit(opts, tmp_path, use_classifier=False).path.read_text())
    assert rec["mode"] == "ibm" and rec["context"]["rep_delay"] == 5e-5
    assert [name for name, _ in job_options] == ["Estimator", "Sampler"]
    assert all(o.execution.rep_delay == 5e-5 for _, o in job_options)
    assert rec["qpu_plan"]["rep_delay_s"] == 5e-5
    assert rec["qpu_seconds_estimate"] == pytest.approx(_plan_seconds(rec["qpu_plan"]), abs=1e-3)


# ------------------------------------------------------------------------------------ the device ranking
def _check_ranking(record: dict, names: list[str]) -> None:
    ranking = record["device_ranking"]
    assert sorted(r["backend"] for r in ranking) == sorted(names)  # every candidate
    scored = [r for r in ranking if r["score"] is not None]
    best = min(scored, key=lambda r: r["score"])
    assert record["backend"] == ranking[0]["backend"] == best["backend"] == "fake_manila"
    assert [r["score"] for r in scored] == sorted(r["score"] for r in scored) and ranking[: len(scored)] == scored
    for r in scored:  # the score is -ln of the estimated success, the sum of its parts
        assert r["score"] == pytest.approx(r["gates"] + r["readout"] + r["idle"], rel=1e-12)
        assert r["success"] == pytest.approx(math.exp(-r["score"]), rel=1e-12) and len(r["qubits"]) == 5
    assert best["reason"].startswith("chosen")
    lima = next(r for r in ranking if r["backend"] == "fake_lima")
    assert f"{lima['score'] - best['score']:.3f} above fake_manila" in lima["reason"]
    armonk = next(r for r in ranking if r["backend"] == "fake_armonk")
    assert armonk["score"] is None and "has 1 qubits" in armonk["reason"] and not armonk["qubits"]


def test_a_device_choice_records_every_candidate_and_runs_on_the_best_score(run4, tmp_path, monkeypatch):
    """fake_lima with its gate and readout errors tripled (test_placement's ``_worse``) must lose to fake_manila;
    fake_armonk (one qubit) cannot hold the circuit. Each command records the whole ranking and prints it."""
    from qiskit_ibm_runtime.fake_provider import FakeLimaV2
    from test_placement import _worse

    _worse(monkeypatch, FakeLimaV2)
    monkeypatch.chdir(tmp_path)
    names = ["fake_lima", "fake_armonk", "fake_manila"]
    common = ["--backend", ",".join(names), "--images", "2", "--shots", "200"]
    res = CliRunner().invoke(
        main, ["evaluate", str(run4), *common, "--no-classifier", "--no-baselines", "--out", "e", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert "chose fake_manila" in res.stderr and all(n in res.stderr for n in names)
    _check_ranking(json.loads(res.stdout), names)
    _check_ranking(json.loads((tmp_path / "e" / "eval.json").read_text()), names)
    study = ["study", "noise", str(run4), *common, "--methods", "raw,cal", "--calibration-images", "3"]
    res = CliRunner().invoke(main, [*study, "--out", "s"])
    assert res.exit_code == 0, res.output
    _check_ranking(json.loads((tmp_path / "s" / "study-fake_manila-L4.json").read_text()), names)
    report = (tmp_path / "s" / "study-fake_manila-L4.md").read_text()
    assert "Device choice" in report and all(f"| {n} |" in report for n in names)
    res = CliRunner().invoke(main, ["submit", str(run4), *common, "--jobs-dir", "j"])
    assert res.exit_code == 0, res.output
    (record,) = [p for p in (tmp_path / "j").glob("*.json") if not p.name.endswith((".metrics.json", ".results.json"))]
    _check_ranking(json.loads(record.read_text()), names)


def test_a_study_submitted_to_a_chosen_device_keeps_its_ranking_through_jobs_fetch(run4, tmp_path, monkeypatch):
    """The network boundary replaced as in test_qpu_time: two IBM devices that are local simulators with the
    Targets of fake_lima and fake_manila. The job record written at submission has the ranking, and so has the
    study ``jobs fetch`` completes from it."""
    import qiskit_ibm_runtime
    from qiskit_aer import AerSimulator
    from qiskit_ibm_runtime.fake_provider import FakeLimaV2, FakeManilaV2

    jobs: dict = {}  # what the service holds: every job the runtime's primitives ran, by id

    class Service:
        def __init__(self, *a, **k):
            pass

        def backend(self, name, **_):
            dev = AerSimulator.from_backend({"ibm_lima": FakeLimaV2, "ibm_manila": FakeManilaV2}[name]())
            dev.name = name
            return dev

        def job(self, job_id):
            return jobs[job_id]

    for cls in (Estimator, Sampler):

        def kept(self, *args, _run=cls.run, **kwargs):
            job = _run(self, *args, **kwargs)
            jobs[job.job_id()] = job
            return job

        monkeypatch.setattr(cls, "run", kept)
    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", Service)
    monkeypatch.chdir(tmp_path)
    args = ["study", "noise", str(run4), "--backend", "ibm_lima,ibm_manila", "--images", "2", "--shots", "100"]
    res = CliRunner().invoke(main, [*args, "--methods", "raw,cal", "--calibration-images", "3", "--jobs-dir", "j"])
    assert res.exit_code == 0 and "submitted study" in res.output, res.output
    (path,) = (tmp_path / "j").glob("*.json")
    record = json.loads(path.read_text())
    ranking = record["device_ranking"]
    assert sorted(r["backend"] for r in ranking) == ["ibm_lima", "ibm_manila"]
    assert record["backend"] == ranking[0]["backend"] == min(ranking, key=lambda r: r["score"])["backend"]
    for job in jobs.values():  # the device finishes the jobs
        job.result()
    res = CliRunner().invoke(main, ["jobs", "fetch", record["id"], "--jobs-dir", "j"])
    assert res.exit_code == 0, res.output
    (study,) = (tmp_path / "results" / "hardware").glob("study-*.json")
    assert json.loads(study.read_text())["device_ranking"] == ranking
