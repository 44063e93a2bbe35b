"""Every committed JSON under results/, circuits/ and calibration/ still loads through the record codec, and a
record at the current schema version writes back exactly what is committed (issue 17: records unchanged)."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest

import qmae_qiskit
from qmae_qiskit.evaluate.classifier import ClassifierInfo
from qmae_qiskit.evaluate.evaluation import EvalResult
from qmae_qiskit.experiments.records import ParamsRecord, Table1Record
from qmae_qiskit.export import BoundInstance
from qmae_qiskit.hardware.spec import ExecutionSpec
from qmae_qiskit.records import Record, dumps, dumps_lines, parse_lines, parse_record
from qmae_qiskit.study.noise import NoiseStudy, StudySpec
from qmae_qiskit.train.runs import METRICS_FILE, MetricsLine, RunRecord

REPO = Path(__file__).resolve().parents[1]
FILES = sorted(p for d in ("results", "circuits", "calibration") for p in (REPO / d).rglob("*.json"))
# written by qmae-qiskit 0.1, before schemas: upgraded on read
LEGACY = {
    "eval.json": EvalResult,
    "config.json": RunRecord,
    "table1.json": Table1Record,
    "params.json": ParamsRecord,
    "classifier.json": ClassifierInfo,
}
METRICS = sorted(p for p in (REPO / "results").rglob(METRICS_FILE))


def _record_types() -> dict[str, type[Record]]:
    for mod in pkgutil.walk_packages(qmae_qiskit.__path__, "qmae_qiskit."):
        if not mod.name.startswith("qmae_qiskit.cli"):
            importlib.import_module(mod.name)
    out: dict[str, type[Record]] = {}
    todo = list(Record.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        out[cls.SCHEMA] = cls
    return out


TYPES = _record_types()


def test_the_committed_files_are_there():
    assert len(FILES) > 100
    schemas = {json.loads(p.read_text()).get("schema") for p in FILES}
    assert {"qmae-qiskit/noise-study", "qmae-qiskit/eval-result", "qmae-qiskit/run-config"} <= schemas


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(REPO)) for p in FILES])
def test_committed_json_loads_through_the_codec(path):
    raw = json.loads(path.read_text())
    schema = raw.get("schema") if isinstance(raw, dict) else None
    if schema is None:
        cls = BoundInstance if path.name.startswith("qmae_training_") else LEGACY[path.name]
    else:
        cls = TYPES[schema]
    record = parse_record(cls, raw, str(path))
    if schema is not None and raw.get("schema_version") == cls.VERSION:
        assert dumps(record) == path.read_text()  # the codec writes back what is committed, byte for byte
    elif cls in (Table1Record, ClassifierInfo, BoundInstance):  # every field read, none lost or renamed
        fields = {k: v for k, v in record.to_json().items() if k not in ("schema", "schema_version", "provenance")}
        assert fields == raw
    elif cls is ParamsRecord:
        assert {k: v.model_dump() for k, v in record.runs.items()} == raw


def test_committed_metrics_are_there():
    assert len(METRICS) >= 5


@pytest.mark.parametrize("path", METRICS, ids=[str(p.relative_to(REPO)) for p in METRICS])
def test_committed_metrics_lines_load_and_write_back_unchanged(path):
    text = path.read_text()
    lines = parse_lines(MetricsLine, text, str(path))
    assert len(lines) == len(text.splitlines())
    assert dumps_lines(lines) == text  # byte for byte: the codec writes what training wrote


@pytest.mark.parametrize("path", sorted((REPO / "results" / "hardware").glob("*.json")))
def test_committed_study_specs_read_as_the_one_spec(path):
    """A study's (or frontier's) flat spec reads as a StudySpec composing an ExecutionSpec and dumps unchanged, but
    for the fields added since: the twin's idle noise (ExecutionSpec.idle_*), the budget design's (qpu_budget,
    max_error) and ``metrics`` at their defaults, but as these records ran: the unscheduled twin and the first K
    calibration images."""
    raw = json.loads(path.read_text())
    spec = StudySpec.of_record(raw["spec"])
    assert spec.execution.backend == raw["spec"]["backend"] == spec.backend
    idle = {k: ExecutionSpec.model_fields[k].default for k in ("idle_zz_hz", "idle_detuning_hz")}
    study = {"idle_relaxation": False, "calibration_pick": "first", "task_seeds": "shared", "qpu_budget": None}
    study["max_error"] = 0.05
    study["metrics"] = "all"
    study["references"] = "auto"
    study["scatter_from"] = "pilot"
    study["raw_baseline"] = "always"
    assert spec.model_dump() == {**idle, **study, **raw["spec"]}
    if raw["schema"] == NoiseStudy.SCHEMA:
        assert spec.execution.shots == raw["spec"]["shots"]


@pytest.mark.parametrize("path", sorted((REPO / "results" / "hardware" / "budget600").glob("*.json")))
def test_committed_budgeted_studies_read_back_as_they_ran(path):
    """The budget600 studies were drawn with spread calibration images on the twin before idle-qubit scheduling,
    within 600 QPU seconds: their specs say so, and the allocation they record is the one they ran."""
    raw = json.loads(path.read_text())
    spec = StudySpec.of_record(raw["spec"])
    assert spec.calibration_pick == "spread" and spec.qpu_budget == 600
    assert spec.execution.idle.scheduled is False
    alloc = raw["allocation"]
    assert (spec.shots, spec.calibration_images) == (alloc["shots"], alloc["calibration_images"])
    assert len(raw["calibration_indices"]) == alloc["calibration_images"] and len(raw["per_image"]) == spec.samples
    assert raw["qpu_seconds_estimate"] <= alloc["budget_s"]


SCHEDULED = REPO / "results" / "hardware" / "budget600-scheduled"
BEST = REPO / "results" / "hardware" / "budget600-best-device"
SCHEDULED_STUDIES = [
    p
    for d in (SCHEDULED, BEST, REPO / "results" / "hardware" / "budget600-fidelity")
    for p in sorted(d.rglob("*.json"))
]


@pytest.mark.parametrize("path", SCHEDULED_STUDIES, ids=lambda p: str(p.relative_to(REPO / "results" / "hardware")))
def test_scheduled_budgeted_studies_ran_scheduled_within_their_budget(path):
    """budget600-scheduled ran on the scheduled twin within 600 QPU seconds (a budget or a cap; a folder named
    ``...-<S>s`` within S), and each judged method's mean |error| and 2σ coverage, as its README quotes them,
    follow from the record's own per-image rows."""
    raw = json.loads(path.read_text())
    spec = StudySpec.of_record(raw["spec"])
    assert spec.execution.idle.scheduled is True and raw["executor"]["idle"]["scheduled"] is True
    cap = spec.qpu_budget if spec.qpu_budget is not None else raw["spec"]["budget"]["max_qpu_seconds"]
    named = re.search(r"-(\d+)s$", path.parent.name)
    assert cap == (int(named.group(1)) if named else 600) and raw["qpu_seconds_estimate"] <= cap
    method = raw["verdict"]["method"]
    rows = raw["per_image"]
    err = np.array([r["estimates"][method] - r["exact"] for r in rows])
    std = np.array([r["stds"][method] for r in rows])
    agg = raw["aggregates"][method]["fidelity"]
    assert len(rows) == spec.samples
    assert np.mean(np.abs(err)) == pytest.approx(agg["mean_abs_error"], abs=1e-12)
    assert np.mean(np.abs(err) <= 2 * std) == pytest.approx(agg["coverage_2sigma"], abs=1e-12)


@pytest.mark.parametrize("folder", [BEST, BEST / "noise-model-scatter", BEST / "decoupling"], ids=lambda p: p.name)
def test_the_best_device_readme_quotes_each_seeds_error_from_its_record(folder):
    """budget600-best-device's READMEs list in their target tables, per folder, each simulator seed's mean |error|
    in seed order: each is the judged method's, from the record of that seed, and the mean beside them is theirs."""
    text = (folder / "README.md").read_text()
    row = r"^\| [^|]+ \| `([\w/-]+?)(?:…[\w-]*)?/`[^|]*\| ([\d. ]+) \| \*{0,2}([\d.]+)\*{0,2} \|"
    rows = re.findall(row, text, re.M)
    assert len(rows) >= 3
    for name, quoted, mean in rows:
        if name == "eagle-quebec-":
            name = "eagle-quebec-brickwork2-L8-ladder4-references-on"
        errors = []
        for seed in sorted((folder / name).glob("seed*"), key=lambda p: int(p.name[4:])):
            raw = json.loads(next(seed.glob("study-*.json")).read_text())
            errors.append(raw["aggregates"][raw["verdict"]["method"]]["fidelity"]["mean_abs_error"])
        assert quoted.split() == [f"{e:.4f}" for e in errors], name
        assert float(mean) == pytest.approx(np.mean(errors), abs=5e-5), name
