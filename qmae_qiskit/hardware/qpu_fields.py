"""The QPU-time fields a record of device work carries: our estimate before running, IBM's figures after.

Evaluations, noise studies, frontiers and job records all state the same things, so they take them from one
mixin instead of declaring them by hand. The fields were added after records of those types were committed,
where they stood last in each record's JSON: the mixin writes them last again (pydantic lists a base's fields
first), and leaves them out while empty, so those records and records without a plan write back byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer

from qmae_qiskit.hardware.qpu_time import QPUPlan

Usage = dict[str, dict[str, float | None]]
"""Per job role: what IBM reports of the job's QPU time (``usage_estimation_s``, ``usage_s``)."""

QPU_FIELDS = ("qpu_seconds_estimate", "qpu_plan", "qpu_usage")


class QPUEstimate(BaseModel):
    """Mixin (list it before ``Record``): our QPU-time estimate of the work (hardware.qpu_time), written last."""

    qpu_seconds_estimate: float | None = None
    qpu_plan: dict[str, Any] | None = None
    OMITTED_WHEN_EMPTY: ClassVar[tuple[str, ...]] = ("qpu_seconds_estimate", "qpu_plan")

    @model_serializer(mode="wrap")
    def _qpu_fields_last(self, handler: SerializerFunctionWrapHandler) -> Any:
        out = handler(self)
        if not isinstance(out, dict):
            return out
        last = [k for k in QPU_FIELDS if k in out]
        return {**{k: v for k, v in out.items() if k not in last}, **{k: out[k] for k in last}}

    def attach_plan(self, plan: QPUPlan | None) -> None:
        """Carry ``plan`` (None: no estimate, e.g. off a device)."""
        for name, value in plan_fields(plan).items():
            setattr(self, name, value)


class QPUUsage(QPUEstimate):
    """Mixin: the estimate, and on a real device what IBM reports per job (:func:`usage_by_role`)."""

    qpu_usage: Usage | None = None
    OMITTED_WHEN_EMPTY: ClassVar[tuple[str, ...]] = ("qpu_usage",)


def plan_fields(plan: QPUPlan | None) -> dict[str, Any]:
    """The estimate fields of ``plan``, for a record's constructor: its QPU seconds to the millisecond (as every
    record states them) and the whole plan."""
    if plan is None:
        return {"qpu_seconds_estimate": None, "qpu_plan": None}
    return {"qpu_seconds_estimate": round(plan.qpu_seconds, 3), "qpu_plan": plan.model_dump()}


def usage_of(job: Any) -> dict[str, float | None]:
    """What IBM reports of a job's QPU time: its estimate (``usage_estimation``, before running) and, once it
    ran, the usage (``usage()``); None for what the job cannot tell (a local job, or no answer)."""
    out: dict[str, float | None] = {"usage_estimation_s": None, "usage_s": None}
    try:
        value = (getattr(job, "usage_estimation", None) or {}).get("quantum_seconds")
        out["usage_estimation_s"] = None if value is None else float(value)
    except Exception:
        pass
    try:
        out["usage_s"] = float(job.usage()) if callable(getattr(job, "usage", None)) else None
    except Exception:
        pass
    return out


def usage_by_role(jobs: Mapping[str, Any]) -> Usage:
    """:func:`usage_of` every job, by its role (what ``qpu_usage`` holds)."""
    return {role: usage_of(job) for role, job in jobs.items()}
