"""Typed records of a sweep: ``cell.json`` beside each cell, ``summary.json`` for the whole grid."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from qmae_qiskit.records import Record, UnversionedBefore, upgrade_unversioned


class Stat(BaseModel):
    """Mean over replicates (one value per cell) with its Student-t 95 % interval; null interval for n = 1."""

    model_config = ConfigDict(extra="forbid")

    mean: float
    std: float | None
    n: int
    ci95: list[float] | None


class CellRecord(Record):
    """cell.json: which grid point a run folder is, and what its evaluation used."""

    SCHEMA: ClassVar[str] = "qmae-qiskit/sweep-cell"
    VERSION: ClassVar[int] = 1
    WHAT: ClassVar[str] = "sweep cell record"

    name: str
    axes: dict[str, Any]
    classifier: str
    eval_limit: int | None
    mask_seed: int
    train_action: str
    seconds: dict[str, float]


class CellEntry(BaseModel):
    """One cell in the summary: its swept values, status, and per-cell test-set means."""

    model_config = ConfigDict(extra="forbid")

    name: str
    axes: dict[str, Any]
    seed: int
    classifier_seed: int
    status: Literal["finished", "failed", "pending"]
    error: str | None = None
    metrics: dict[str, float] | None = None


class GroupStats(BaseModel):
    """Cells that differ only in seed (training and/or classifier): the metrics' and the baselines' intervals."""

    model_config = ConfigDict(extra="forbid")

    key: dict[str, Any]
    cells: list[str]
    n: int
    metrics: dict[str, Stat]
    baselines: dict[str, dict[str, Stat]]
    best_baseline: dict[str, str]
    minus_best_baseline: dict[str, Stat]


class PairedStats(BaseModel):
    """QMAE - QAE per (seed, classifier seed) on the same test images and masks, over the pairs."""

    model_config = ConfigDict(extra="forbid")

    key: dict[str, Any]
    pairs: list[list[str]]
    n: int
    metrics: dict[str, Stat]


class Timing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workers: int | None
    cells_run: int
    cells_skipped: int
    warm_up_seconds: float = 0.0
    wall_seconds: float
    compute_seconds: float
    overhead_seconds_per_cell: float | None


class SweepSummary(Record):
    """summary.json: the grid, every cell, and the per-group statistics computed from the cells' eval.json."""

    SCHEMA: ClassVar[str] = "qmae-qiskit/sweep-summary"
    VERSION: ClassVar[int] = 1
    WHAT: ClassVar[str] = "sweep summary"

    grid: dict[str, list[Any]]
    base: dict[str, Any]
    evaluation: dict[str, Any]
    method: dict[str, str]
    metrics: list[str]
    cells: list[CellEntry]
    groups: list[GroupStats]
    paired: list[PairedStats]
    failed: list[dict[str, str]]
    timing: Timing | None = None


class Table1Record(UnversionedBefore):
    """``table1.json`` of ``reproduce``: our Table 1 beside the paper's, the baselines, the checks, the timings."""

    SCHEMA: ClassVar[str] = "qmae-qiskit/table1"
    VERSION: ClassVar[int] = 1
    WHAT: ClassVar[str] = "Table 1 record"

    command: str
    n_test_images: int
    mask_seed: int
    pixel_scaling: str
    classifier: dict[str, Any]
    train_settings: dict[str, Any]
    runs: dict[str, Any]
    ours: dict[str, dict[str, Any]]
    baselines: dict[str, Any]
    paper: dict[str, dict[str, float]]
    qmae_minus_qae_accuracy: float
    paper_qmae_minus_qae_accuracy: float
    checks: dict[str, bool]
    seconds: dict[str, float]
    workers: int | None = None  # processes that trained and evaluated the runs (left out of 0.1's records)

    OMITTED_WHEN_EMPTY: ClassVar[tuple[str, ...]] = ("workers",)


class RunParams(BaseModel):
    """One trained run's parameters as plain numbers."""

    model_config = ConfigDict(extra="forbid")

    model: str
    mask_ratio: float
    config: dict[str, Any]
    theta: list[float]
    mask_token: list[float] | None


class ParamsRecord(Record):
    """``params.json`` of ``reproduce``: the trained theta and mask token of each run."""

    SCHEMA: ClassVar[str] = "qmae-qiskit/params"
    VERSION: ClassVar[int] = 1
    WHAT: ClassVar[str] = "parameters record"

    runs: dict[str, RunParams]

    @classmethod
    def upgrade(cls, raw: dict[str, Any], version: int | None) -> dict[str, Any] | None:
        """0.1 wrote the runs at the top level."""
        return upgrade_unversioned(cls, {"runs": raw}, version) if "schema" not in raw else None
