"""The sweep as one call: validate the grid, check --out, get a client, run the cells, write the summary.

Everything that can be wrong with the input is found before a file is written or a cluster started; the
scheduler is asked before --out is created.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qmae_qiskit.device import resolve_device
from qmae_qiskit.experiments.cells import Cell, EvalSpec, build_cells, check_out_folder, is_finished
from qmae_qiskit.experiments.cluster import get_client
from qmae_qiskit.experiments.grid import Grid, union_grid
from qmae_qiskit.experiments.records import SweepSummary
from qmae_qiskit.experiments.reproduce import Execution
from qmae_qiskit.experiments.runner import RunReport, run_cells
from qmae_qiskit.experiments.summary import build_summary, write_summary


@dataclass
class SweepResult:
    cells: list[Cell]
    report: RunReport
    summary: SweepSummary
    files: list[Path]
    startup_seconds: float


def plan(
    grid: Grid | list[Grid],
    base: dict[str, Any],
    out: str | Path,
    classifier: dict[str, Any] | None,
    evaluation: EvalSpec,
) -> list[Cell]:
    """The validated cells, with --out checked against them (nothing written)."""
    cells = build_cells(grid, base, classifier, evaluation)
    check_out_folder(cells, Path(out))
    return cells


def run_sweep(
    grid: Grid | list[Grid],
    base: dict[str, Any],
    out: str | Path,
    *,
    data_dir: str | Path | None,
    classifier: dict[str, Any] | None = None,
    evaluation: EvalSpec | None = None,
    plots: bool = True,
    execution: Execution | None = None,
) -> SweepResult:
    """Plan the cells of ``grid`` over ``base``, run the unfinished ones on Dask (``execution``: where and on which
    torch device) and write the summary."""
    ex = execution or Execution()
    log, scheduler, workers = ex.log, ex.scheduler, ex.workers
    dev = resolve_device(ex.device).type  # --device cuda without a GPU: one line, nothing written
    evaluation = evaluation or EvalSpec()
    cells = plan(grid, base, out, classifier, evaluation)
    out = Path(out)
    t0 = time.perf_counter()
    startup = 0.0
    if all(is_finished(c, out) for c in cells):  # nothing to run: no local cluster to start
        if scheduler is not None:
            with get_client(scheduler, workers, connect_timeout=ex.connect_timeout):
                pass  # a scheduler that does not answer is still bad input
        log(f"all {len(cells)} cells in {out} are finished; rebuilding the summary")
        report = RunReport(skipped=[c.name for c in cells])
    else:
        with get_client(scheduler, workers, connect_timeout=ex.connect_timeout) as client:
            startup = time.perf_counter() - t0
            where = scheduler or f"a local cluster of {len(client.scheduler_info()['workers'])} worker process(es)"
            log(f"{len(cells)} cells on {where} (ready in {startup:.1f} s) -> {out}")
            out.mkdir(parents=True, exist_ok=True)
            report = run_cells(client, cells, out, data_dir, log=log, device=dev)
    summary = build_summary(cells, union_grid(grid) if isinstance(grid, list) else grid, base, out, report)
    files = write_summary(summary, out, plots=plots)
    return SweepResult(cells, report, summary, files, startup)
