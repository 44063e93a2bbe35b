"""The QPU-time mixin (hardware.qpu_fields): one declaration of the fields serves every record of device work,
written last and left out while empty as when each record declared them by hand, and filled from a plan."""

from __future__ import annotations

import json

import pytest

from qmae_qiskit.evaluate.evaluation import EvalResult
from qmae_qiskit.hardware.jobs import JobRecord
from qmae_qiskit.hardware.qpu_fields import QPU_FIELDS, QPUUsage, plan_fields, usage_by_role
from qmae_qiskit.hardware.qpu_time import PlanItem, QPUPlan
from qmae_qiskit.records import Record, dumps, load_record, save_record
from qmae_qiskit.study.frontier import Frontier
from qmae_qiskit.study.record import NoiseStudy

STUDY = {
    "spec": {},
    "model": "qmae",
    "config": {},
    "backend": "fake_manila",
    "executor": {},
    "fidelity_circuit": "swap",
    "two_qubit_gates": 3,
    "circuits": {},
    "methods": {},
    "image_indices": [0],
    "calibration_indices": [],
    "exact": {},
    "aggregates": {},
    "fits": {},
    "per_image": [],
}
EVAL = {"run": "r", "model": "qmae", "mask_ratio": 0.25, "config": {}, "step": 1, "finished": True}
EVAL |= {"split": "test", "n_images": 2, "backend": "fake_manila", "metrics": {}}
FRONTIER = {"backend": "fake_manila", "config": {}, "spec": {}, "points": []}
JOB = {"id": "j1", "mode": "ibm", "backend": "fake_manila"}
# each record's own omitted fields, filled, beside the mixin's
CASES = [
    (EvalResult, EVAL, {"loader": "ladder:6", "placement": "noise-aware"}),
    (NoiseStudy, STUDY, {"verdict": {"resolves": True}, "allocation": {"shots": 100}}),
    (Frontier, FRONTIER, {}),
    (JobRecord, JOB, {}),
]


def _plan(qpu_seconds: float = 12.34567) -> QPUPlan:
    item = PlanItem(
        role="fidelity", circuits=4, shots=100, two_qubit_gates=5, duration_s=2e-6, rep_delay_s=250e-6, qpu_seconds=1.0
    )
    return QPUPlan(
        backend="fake_manila",
        jobs=2,
        circuits=4,
        shots=400,
        two_qubit_gates=5,
        duration_s=2e-6,
        rep_delay_s=250e-6,
        qpu_seconds=qpu_seconds,
        cost=qpu_seconds * 1.6,
        items=[item],
    )


def _mine(cls: type[Record]) -> list[str]:
    return [f for f in QPU_FIELDS if f in cls.model_fields]


@pytest.mark.parametrize("cls,required,own", CASES, ids=[c[0].__name__ for c in CASES])
def test_the_qpu_fields_are_written_last_in_order_and_only_when_set(cls, required, own):
    usage = {"usage": {"fidelity": {"usage_estimation_s": 4.1, "usage_s": None}}} if issubclass(cls, QPUUsage) else {}
    full = cls(**required, **own, **plan_fields(_plan()), **{"qpu_" + k: v for k, v in usage.items()})
    keys = list(json.loads(dumps(full)))
    mine = _mine(cls)
    assert mine[:2] == ["qpu_seconds_estimate", "qpu_plan"] and keys[-len(mine) :] == mine
    assert list(full.model_dump())[-len(mine) :] == mine  # every dump, not only the file
    assert set(own) <= set(keys)
    empty = json.loads(dumps(cls(**required)))
    # the record's own OMITTED_WHEN_EMPTY and the mixin's both hold (merged, not one replacing the other)
    assert not (set(own) | set(mine)) & set(empty)
    assert cls.omitted_when_empty() == set(vars(cls).get("OMITTED_WHEN_EMPTY", ())) | set(mine) >= set(own)


def test_a_plan_fills_the_fields_and_reads_back_from_the_file(tmp_path):
    plan = _plan()
    rec = JobRecord(**JOB)
    rec.attach_plan(plan)
    back = load_record(JobRecord, save_record(rec, tmp_path / "j1.json"))
    assert back.qpu_seconds_estimate == round(plan.qpu_seconds, 3) == 12.346
    assert back.qpu_plan is not None and QPUPlan(**back.qpu_plan) == plan
    rec.attach_plan(None)  # no plan: no estimate, and nothing of it in the file
    assert not set(QPU_FIELDS) & set(rec.to_json())


def test_usage_by_role_reads_each_job():
    class IBMJob:  # stands in for qiskit-ibm-runtime's RuntimeJobV2
        def __init__(self, estimate: float | None, used: float) -> None:
            self.usage_estimation = {"quantum_seconds": estimate}
            self.used = used

        def usage(self) -> float:
            return self.used

    usage = usage_by_role({"fidelity": IBMJob(2.5, 2.0), "reconstruction": IBMJob(None, 1.5)})
    assert usage == {
        "fidelity": {"usage_estimation_s": 2.5, "usage_s": 2.0},
        "reconstruction": {"usage_estimation_s": None, "usage_s": 1.5},
    }
