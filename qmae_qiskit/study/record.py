"""A noise study's record: the typed JSON file, built from a design, its executor and its analysis."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from qmae_qiskit.hardware.execution import Executor
from qmae_qiskit.hardware.qpu_fields import QPUUsage, plan_fields
from qmae_qiskit.hardware.transpile import two_qubit_count
from qmae_qiskit.records import Record, load_record
from qmae_qiskit.study.design import Design

if TYPE_CHECKING:
    from qmae_qiskit.hardware.qpu_time import QPUPlan


class NoiseStudy(QPUUsage, Record):
    """study-<backend>-L<size>.json: per image the exact values and every method's estimates, and the summary."""

    SCHEMA: ClassVar[str] = "qmae-qiskit/noise-study"
    VERSION: ClassVar[int] = 1
    WHAT: ClassVar[str] = "noise study"

    spec: dict[str, Any]
    model: str
    config: dict[str, Any]
    backend: str
    executor: dict[str, Any]
    fidelity_circuit: str
    two_qubit_gates: int
    circuits: dict[str, Any]
    methods: dict[str, str]
    image_indices: list[int]
    calibration_indices: list[int]
    exact: dict[str, float]
    aggregates: dict[str, dict[str, Any]]
    fits: dict[str, dict[str, Any]]
    loading: dict[str, Any] | None = None
    per_image: list[dict[str, Any]]
    jobs: dict[str, str | None] = {}
    seconds: dict[str, float] = {}
    verdict: dict[str, Any] | None = None  # whether the device resolves the circuit (calibration alone)
    allocation: dict[str, Any] | None = None  # a budgeted study's chosen shots, images, references and prediction
    device_ranking: list[dict[str, Any]] | None = None  # --backend auto / a list: every candidate, best first
    OMITTED_WHEN_EMPTY: ClassVar[tuple[str, ...]] = ("device_ranking", "verdict", "allocation")  # and QPUUsage's


def build_record(
    d: Design,
    executor: Executor,
    summary: dict[str, Any],
    seconds: dict[str, float],
    jobs: dict[str, str | None],
    plan: QPUPlan | None = None,
) -> NoiseStudy:
    """The study record: the design's provenance beside the analysis ``summary``."""

    fid_task = d.work.tasks[d.fid_role[d.methods[0].name]]
    tm = d.prepared.tm
    return NoiseStudy(
        spec=d.spec.model_dump(),
        model=tm.kind,
        config=tm.cfg.model_dump(),
        backend=d.spec.backend,
        executor=executor.describe(),
        fidelity_circuit=d.prepared.fidelity_circuit,
        two_qubit_gates=two_qubit_count(fid_task.circuit),
        circuits=d.prepared.circuit_summary(),
        methods={m.name: m.describe() for m in d.methods},
        image_indices=[int(i) for i in d.prepared.indices[: d.n_eval]],
        calibration_indices=d.calibration_indices,
        jobs=jobs,
        seconds={k: round(v, 3) for k, v in seconds.items()},
        loading=d.prepared.loading_summary(),
        **plan_fields(plan),
        **summary,
    )


def default_out(study: NoiseStudy) -> Path:
    size = study.config["image_size"]
    return Path("results") / "hardware" / f"study-{study.backend}-L{size}.json"


def load_study(path: str | Path) -> NoiseStudy:
    return load_record(NoiseStudy, path, "write it again with `qmae-qiskit study noise`")
