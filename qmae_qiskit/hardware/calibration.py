"""Calibration snapshots: a backend's target (qubits, gates, errors, durations, coupling) frozen in versioned JSON.

A snapshot lets a noisy simulation or a depth report be repeated against the calibration of one day, after the
device has been recalibrated. :func:`snapshot_backend` turns a snapshot back into a ``BackendV2`` whose target is
rebuilt instruction by instruction, so Aer's own ``NoiseModel.from_backend`` applies to it unchanged -- which is
why a snapshot's noise model equals the noise model of the live backend it was taken from.
"""

from __future__ import annotations

import datetime as dt
import math
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from qiskit.circuit import ForLoopOp, IfElseOp, SwitchCaseOp, WhileLoopOp
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.providers import BackendV2, QubitProperties
from qiskit.transpiler import InstructionProperties, Target

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.backends import TargetBackend, is_runtime_backend
from qmae_qiskit.records import Record, legacy_provenance, load_record, save_record

SCHEMA = "qmae-qiskit/calibration-snapshot"


class CalibrationSnapshot(Record):
    """A backend's calibration frozen in JSON: qubits, instructions with errors and durations, coupling, timing."""

    SCHEMA: ClassVar[str] = SCHEMA
    VERSION: ClassVar[int] = 2
    WHAT: ClassVar[str] = "calibration snapshot"

    backend: str
    backend_version: str = ""
    source: str
    taken_at: str
    calibration_time: str | None = None
    num_qubits: int
    dt: float | None = None
    timing: dict[str, Any] = {}
    basis_gates: list[str]
    control_flow: list[str] = []
    coupling_map: list[list[int]] | None = None
    qubits: list[dict[str, Any]]
    instructions: dict[str, list[dict[str, Any]]]
    readout: list[dict[str, Any]] | None = None

    @classmethod
    def upgrade(cls, raw: dict[str, Any], version: int | None) -> dict[str, Any] | None:
        """Version 1 had no provenance block: the snapshot time stands in for it."""
        if version != 1 or raw.get("schema") != cls.SCHEMA:
            return None
        return {**raw, "schema_version": cls.VERSION, "provenance": legacy_provenance(raw.get("taken_at"))}


CONTROL_FLOW = {"if_else": IfElseOp, "for_loop": ForLoopOp, "while_loop": WhileLoopOp, "switch_case": SwitchCaseOp}


def _num(x: Any) -> float | None:
    """A finite float or None (JSON has no NaN / inf)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _calibration_time(backend: BackendV2) -> str | None:
    try:
        props = backend.properties()
        when = getattr(props, "last_update_date", None)
        return when.isoformat() if when is not None else None
    except Exception:
        return None


def _readout(backend: BackendV2, n: int) -> list[dict] | None:
    """Asymmetric readout probabilities where the backend's properties give them (informational)."""
    try:
        props = backend.properties()
    except Exception:
        return None
    if props is None:
        return None
    out = []
    for q in range(n):
        row: dict[str, Any] = {"qubit": q}
        for key in ("prob_meas1_prep0", "prob_meas0_prep1", "readout_error"):
            try:
                row[key] = _num(props.qubit_property(q, key)[0])
            except Exception:
                row[key] = None
        out.append(row)
    return out


def _source(backend: BackendV2) -> str:

    if is_runtime_backend(backend):
        return "IBM Quantum (QiskitRuntimeService)"
    pkg = "qiskit-ibm-runtime" if "qiskit_ibm_runtime" in type(backend).__module__ else "qiskit-aer"
    return f"{type(backend).__module__}.{type(backend).__name__} ({pkg} {metadata.version(pkg)})"


def snapshot(backend: BackendV2, source: str | None = None) -> dict:
    """The calibration of ``backend`` as a JSON-ready :class:`CalibrationSnapshot` dict.

    Times are seconds, frequencies Hz, errors probabilities; ``None`` where the backend gives nothing.
    """
    target = backend.target
    n = target.num_qubits
    qubits = _qubit_rows(backend, n)
    instructions, control_flow = _instruction_rows(target)
    coupling = target.build_coupling_map()
    return CalibrationSnapshot(
        **{
            "backend": backend.name,
            "backend_version": str(getattr(backend, "backend_version", "") or ""),
            "source": source or _source(backend),
            "taken_at": _utc_now().isoformat(),
            "calibration_time": _calibration_time(backend),
            "num_qubits": n,
            "dt": _num(target.dt),
            "timing": {
                "granularity": target.granularity,
                "min_length": target.min_length,
                "pulse_alignment": target.pulse_alignment,
                "acquire_alignment": target.acquire_alignment,
            },
            "basis_gates": sorted(target.operation_names),
            "control_flow": sorted(control_flow),
            "coupling_map": sorted([list(e) for e in coupling.get_edges()]) if coupling is not None else None,
            "qubits": qubits,
            "instructions": dict(sorted(instructions.items())),
            "readout": _readout(backend, n),
        }
    ).to_json()


def _qubit_rows(backend: BackendV2, n: int) -> list[dict]:
    """T1, T2 and frequency of each qubit (None where the backend gives nothing)."""
    qprops = backend.target.qubit_properties
    if qprops is None:
        try:
            qprops = backend.qubit_properties(list(range(n)))
        except Exception:
            qprops = None
    qubits = []
    for q in range(n):
        p = qprops[q] if qprops is not None else None
        qubits.append(
            {
                "qubit": q,
                "t1": _num(getattr(p, "t1", None)),
                "t2": _num(getattr(p, "t2", None)),
                "frequency": _num(getattr(p, "frequency", None)),
            }
        )
    return qubits


def _instruction_rows(target: Any) -> tuple[dict[str, list[dict]], list[str]]:
    """Error and duration of every instruction on its qubits, by name; the control-flow names apart."""
    instructions: dict[str, list[dict]] = {}
    control_flow: list[str] = []
    for name in target.operation_names:
        if name in CONTROL_FLOW:
            control_flow.append(name)
            continue
        rows = []
        for qargs, props in target[name].items():
            rows.append(
                {
                    "qubits": None if qargs is None else list(qargs),
                    "error": _num(getattr(props, "error", None)) if props is not None else None,
                    "duration": _num(getattr(props, "duration", None)) if props is not None else None,
                    "has_properties": props is not None,
                }
            )
        instructions[name] = sorted(rows, key=lambda r: (r["qubits"] is not None, r["qubits"] or []))
    return instructions, control_flow


def snapshot_path(root: Path, backend_name: str, when: dt.datetime | None = None) -> Path:
    """``root/<backend>/<UTC timestamp>.json`` (a name that sorts by time and is valid on every file system)."""
    when = when or _utc_now()
    return Path(root) / backend_name / f"{when.strftime('%Y%m%dT%H%M%SZ')}.json"


def write_snapshot(backend: BackendV2, root: Path = Path("calibration"), source: str | None = None) -> Path:
    """Take a snapshot and write it atomically; an existing file is never overwritten."""
    snap = snapshot(backend, source)
    path = snapshot_path(root, backend.name, dt.datetime.fromisoformat(snap["taken_at"]))
    if path.exists():
        raise QMAEError(f"{path} already exists; wait a second and take the snapshot again")
    return save_record(CalibrationSnapshot.model_validate(snap), path)


def load_snapshot(path: str | Path) -> dict:
    """Read and check a snapshot file (a version-1 snapshot is upgraded); a wrong or corrupt file fails with one
    line naming it."""
    path = Path(path)
    if not path.is_file():
        raise QMAEError(f"calibration snapshot {path} not found; take one with `qmae-qiskit calibration snapshot`")
    return load_record(CalibrationSnapshot, path, "take a new snapshot").to_json()


def target_from_snapshot(snap: dict) -> Target:
    """Rebuild the ``Target``: same instructions on the same qubits with the same errors and durations."""
    timing = snap.get("timing") or {}
    qubits = snap["qubits"]
    qprops = [QubitProperties(t1=q.get("t1"), t2=q.get("t2"), frequency=q.get("frequency")) for q in qubits]
    target = Target(
        description=f"snapshot of {snap['backend']}",
        num_qubits=int(snap["num_qubits"]),
        dt=snap.get("dt"),
        qubit_properties=qprops,
        **{k: v for k, v in timing.items() if v is not None},
    )
    mapping = get_standard_gate_name_mapping()
    for name, rows in snap["instructions"].items():
        if name not in mapping:
            raise QMAEError(
                f"calibration snapshot has instruction {name!r} that qiskit does not know; "
                "upgrade qiskit or take the snapshot with this version"
            )
        props: dict = {}
        for r in rows:
            qargs = None if r["qubits"] is None else tuple(r["qubits"])
            props[qargs] = (
                InstructionProperties(duration=r.get("duration"), error=r.get("error"))
                if r.get("has_properties", True)
                else None
            )
        target.add_instruction(mapping[name], props, name=name)
    for name in snap.get("control_flow", []):
        target.add_instruction(CONTROL_FLOW[name], name=name)
    return target


class SnapshotBackend(TargetBackend):
    """A backend that only carries a snapshot's target: for transpiling and for building a noise model."""

    is_snapshot = True
    cannot_run = "a calibration snapshot cannot run circuits; use it as --noise-model with a simulator"

    def __init__(self, snap: dict, path: str | None = None):
        super().__init__(
            target_from_snapshot(snap),
            name=snap["backend"],
            backend_version=snap.get("backend_version") or None,
            description=f"calibration snapshot {path or ''} taken {snap.get('taken_at')}".strip(),
        )
        self.snapshot = snap
        self.path = path


def snapshot_backend(path: str | Path) -> SnapshotBackend:
    return SnapshotBackend(load_snapshot(path), str(path))


def summary(snap: dict) -> dict:
    """Medians and ranges worth a glance: T1/T2, 1q/2q gate error, readout error, counts."""

    def stats(values: list[float]) -> dict | None:
        vals = sorted(v for v in values if v is not None)
        if not vals:
            return None
        return {"min": vals[0], "median": vals[len(vals) // 2], "max": vals[-1], "count": len(vals)}

    inst = snap["instructions"]
    two_q = [name for name, rows in inst.items() if any(r["qubits"] and len(r["qubits"]) == 2 for r in rows)]
    one_q = [name for name in ("sx", "x") if name in inst]
    return {
        "backend": snap["backend"],
        "backend_version": snap.get("backend_version"),
        "source": snap.get("source"),
        "taken_at": snap.get("taken_at"),
        "calibration_time": snap.get("calibration_time"),
        "num_qubits": snap["num_qubits"],
        "basis_gates": snap["basis_gates"],
        "coupling_edges": len(snap.get("coupling_map") or []),
        "t1_s": stats([q.get("t1") for q in snap["qubits"]]),
        "t2_s": stats([q.get("t2") for q in snap["qubits"]]),
        "one_qubit_error": {g: stats([r["error"] for r in inst[g]]) for g in one_q},
        "two_qubit_error": {g: stats([r["error"] for r in inst[g]]) for g in two_q},
        "readout_error": stats([r["error"] for r in inst.get("measure", [])]),
    }
