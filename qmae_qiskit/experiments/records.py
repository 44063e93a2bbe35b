"""Typed records of a sweep: ``cell.json`` beside each cell, ``summary.json`` for the whole grid."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from qmae_qiskit.records import Record


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
