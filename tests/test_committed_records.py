"""Every committed JSON under results/, circuits/ and calibration/ still loads through the record codec, and a
record at the current schema version writes back exactly what is committed (issue 17: records unchanged)."""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

import pytest

import qmae_qiskit
from qmae_qiskit.evaluate.evaluation import EvalResult
from qmae_qiskit.hardware.spec import ExecutionSpec
from qmae_qiskit.records import Record, parse_record
from qmae_qiskit.study.noise import NoiseStudy, StudySpec
from qmae_qiskit.train.runs import RunRecord

REPO = Path(__file__).resolve().parents[1]
FILES = sorted(p for d in ("results", "circuits", "calibration") for p in (REPO / d).rglob("*.json"))
# written by qmae-qiskit 0.1, before schemas: upgraded on read
LEGACY = {"eval.json": EvalResult, "config.json": RunRecord}
# not typed records (yet): the paper tables, parameter counts, classifier info and a bound circuit's export
UNTYPED = {"table1.json", "params.json", "classifier.json"}


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
        if path.name in UNTYPED or path.name.startswith("qmae_training_"):
            return
        cls = LEGACY[path.name]
    else:
        cls = TYPES[schema]
    record = parse_record(cls, raw, str(path))
    if schema is not None and raw.get("schema_version") == cls.VERSION:
        assert record.to_json() == raw  # the codec writes back what is committed


@pytest.mark.parametrize("path", sorted((REPO / "results" / "hardware").glob("*.json")))
def test_committed_study_specs_read_as_the_one_spec(path):
    """A study's (or frontier's) flat spec reads as a StudySpec composing an ExecutionSpec and dumps unchanged, but
    for the fields added since: the twin's idle noise (ExecutionSpec.idle_*) and the budget design's (qpu_budget,
    max_error) at their defaults, but as these records ran: the unscheduled twin and the first K calibration images."""
    raw = json.loads(path.read_text())
    spec = StudySpec.of_record(raw["spec"])
    assert spec.execution.backend == raw["spec"]["backend"] == spec.backend
    idle = {k: ExecutionSpec.model_fields[k].default for k in ("idle_zz_hz", "idle_detuning_hz")}
    study = {"idle_relaxation": False, "calibration_pick": "first", "qpu_budget": None, "max_error": 0.05}
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
