"""Run a sweep's cells on a Dask client: finished cells are skipped, shared work is done once, failures recorded.

Task graph per run: one classifier per (image size, classifier seed), one baseline scoring per baseline key
(it needs its classifier), one training per unfinished cell (needs nothing), one evaluation per cell (needs its
training, classifier and baselines). Training starts at once, beside the classifiers; an evaluation is preferred
over a new training so cells finish one by one. Each cell's files are written by the worker that runs it, so a
killed sweep -- the scheduler included -- loses only the cells in flight, and those resume from their checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qmae_qiskit.errors import one_line
from qmae_qiskit.experiments import tasks
from qmae_qiskit.experiments.cells import ERROR_FILE, Cell, is_finished
from qmae_qiskit.io import atomic_write_text


@dataclass
class RunReport:
    """What one run did: cells run and skipped, failures, wall time and the tasks' own compute."""

    run: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    wall_seconds: float = 0.0
    compute_seconds: float = 0.0
    workers: int | None = None
    task_seconds: dict[str, float] = field(default_factory=dict)
    warm_up_seconds: float = 0.0  # workers importing the toolkit before the first task (not in wall_seconds)

    @property
    def overhead_per_cell(self) -> float | None:
        """(workers x wall - compute) / cells run: worker time not spent in the cells' own work (the workers'
        one-time imports are in ``warm_up_seconds``, outside ``wall_seconds``)."""
        if not self.run or self.workers is None:
            return None
        return (self.workers * self.wall_seconds - self.compute_seconds) / len(self.run)


def _workers(client: Any) -> int | None:
    try:
        return sum(int(w.get("nthreads", 1)) for w in client.scheduler_info()["workers"].values())
    except Exception:
        return None


def run_cells(
    client: Any,
    cells: list[Cell],
    out: str | Path,
    data_dir: str | Path | None,
    threads: int = 1,
    log: Callable[[str], None] = print,
    device: str = "cpu",
) -> RunReport:
    """Run every unfinished cell of ``cells`` on ``client``; returns when all have finished or failed.

    ``device``: a resolved torch device type every worker computes on (see :func:`tasks.warm_up`)."""
    from distributed import as_completed  # lazy: Dask adds ~1 s; only sweeps need it

    out = Path(out)
    report = RunReport(workers=_workers(client))
    todo = [c for c in cells if not is_finished(c, out)]
    report.skipped = [c.name for c in cells if c not in todo]
    if report.skipped:
        log(f"{len(report.skipped)} of {len(cells)} cells already finished; skipping them")
    if not todo:
        return report
    tw = time.perf_counter()
    client.run(tasks.warm_up, threads, device)
    report.warm_up_seconds = time.perf_counter() - tw
    t0 = time.perf_counter()
    clf_f, base_f, train_f, eval_f = _submit(client, todo, out, data_dir, threads)
    done = 0
    try:
        for fut in as_completed(list(eval_f), loop=client.loop):
            cell = eval_f[fut]
            try:
                result = fut.result()
            except Exception as exc:  # the worker died (KilledWorker) or the task could not be sent
                result = {"ok": False, "error": f"{cell.name}: {type(exc).__name__}: {one_line(exc)}"}
            done += 1
            report.run.append(cell.name)
            report.compute_seconds += float(result.get("seconds", 0.0))
            if result.get("ok"):
                log(f"[{done}/{len(todo)}] {cell.name}: " + _metrics_text(result.get("metrics", {})))
            else:
                error = str(result.get("error"))
                report.failed[cell.name] = error
                atomic_write_text(cell.folder(out) / ERROR_FILE, error + "\n")
                log(f"[{done}/{len(todo)}] {cell.name}: FAILED: {error}")
        _task_seconds(report, train_f, [*clf_f.values(), *base_f.values()])
    finally:
        for f in [*clf_f.values(), *base_f.values(), *train_f.values(), *eval_f]:
            f.cancel()
    report.wall_seconds = time.perf_counter() - t0
    return report


def _submit(client: Any, todo: list[Cell], out: Path, data_dir: str | Path | None, threads: int) -> tuple[dict, ...]:
    """Every task of ``todo`` on ``client``: one classifier per spec, one baseline scoring per mask key, one
    training per cell, and each cell's evaluation once those it needs are done (futures keyed as run_cells reads
    them: classifiers, baselines, trainings, evaluations -> cell)."""
    clf_f = {
        spec: client.submit(
            tasks.ensure_classifier, spec, out, data_dir, todo[0].evaluation.limit, threads, pure=False, priority=10
        )
        for spec in dict.fromkeys(c.classifier for c in todo)
    }
    base_f: dict[str, Any] = {}
    for c in todo:
        if c.baseline_key not in base_f:
            base_f[c.baseline_key] = client.submit(
                tasks.score_baselines, c, out, data_dir, clf_f[c.classifier], threads, pure=False, priority=5
            )
    train_f = {c.name: client.submit(tasks.train_cell, c, out, data_dir, threads, pure=False) for c in todo}
    eval_f = {
        client.submit(
            tasks.evaluate_cell,
            c,
            out,
            data_dir,
            train_f[c.name],
            clf_f[c.classifier],
            base_f[c.baseline_key],
            threads,
            pure=False,
            priority=5,
        ): c
        for c in todo
    }
    return clf_f, base_f, train_f, eval_f


def _task_seconds(report: RunReport, train_f: dict[str, Any], shared: list[Any]) -> None:
    """The trainings' and the shared tasks' (classifiers, baselines) own seconds, into ``report``."""
    for name, futures in (("train", list(train_f.values())), ("shared", shared)):
        secs = 0.0
        for f in futures:
            try:
                secs += float(f.result().get("seconds", 0.0))
            except Exception:
                pass
        report.task_seconds[name] = round(secs, 3)
        report.compute_seconds += secs


def _metrics_text(metrics: dict[str, float]) -> str:
    parts = []
    for k, v in metrics.items():
        parts.append(f"{k} {100 * v:.2f} %" if k == "accuracy" else f"{k} {v:.4f}")
    return ", ".join(parts)
