"""summary.json / summary.md of a sweep, computed from the cells' own eval.json (and error.txt) only.

So the summary can always be rebuilt from the folder (a rerun does), and a reader can recompute every number
from the cells it lists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qmae_qiskit.evaluate.scoring import METRICS
from qmae_qiskit.experiments.cells import ERROR_FILE, Cell, eval_matches, read_eval
from qmae_qiskit.experiments.grid import REPLICATE_AXES, Grid
from qmae_qiskit.experiments.plots import plot_summary
from qmae_qiskit.experiments.records import CellEntry, SweepSummary, Timing
from qmae_qiskit.experiments.runner import RunReport
from qmae_qiskit.experiments.stats import METHOD, CellValues, group_stats, interval_text, paired_stats
from qmae_qiskit.io import atomic_write_text
from qmae_qiskit.records import save_record

SUMMARY_JSON, SUMMARY_MD, PLOTS_DIR = "summary.json", "summary.md", "plots"


def _jsonable(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def cell_values(cell: Cell, result: dict) -> CellValues:
    """The numbers of one evaluated cell: per-metric means of the model and of each baseline."""
    key = tuple((a, _jsonable(v)) for a, v in cell.axes if a not in REPLICATE_AXES)
    baselines = {
        name: {m: float(b[m]["mean"]) for m in METRICS if m in b} for name, b in (result.get("baselines") or {}).items()
    }
    return CellValues(
        name=cell.name,
        key=key,
        model=cell.settings.model,
        seed=cell.settings.seed,
        classifier_seed=cell.classifier.seed,
        metrics={m: float(v["mean"]) for m, v in result["metrics"].items()},
        baselines=baselines,
    )


def build_summary(
    cells: list[Cell], grid: Grid, base: dict[str, Any], out: str | Path, report: RunReport | None = None
) -> SweepSummary:
    out = Path(out)
    entries, values, failed = [], [], []
    for cell in cells:
        axes = {a: _jsonable(v) for a, v in cell.axes}
        common = dict(name=cell.name, axes=axes, seed=cell.settings.seed, classifier_seed=cell.classifier.seed)
        result = read_eval(cell, out)
        if result is not None and eval_matches(cell, result):
            v = cell_values(cell, result)
            values.append(v)
            entries.append(CellEntry(status="finished", metrics=v.metrics, **common))
            continue
        err_path = cell.folder(out) / ERROR_FILE
        if err_path.is_file():
            error = err_path.read_text(encoding="utf-8").strip().splitlines()[0] if err_path.stat().st_size else "?"
            entries.append(CellEntry(status="failed", error=error, **common))
            failed.append({"cell": cell.name, "error": error})
        else:
            entries.append(CellEntry(status="pending", **common))
    timing = None
    if report is not None:
        timing = Timing(
            workers=report.workers,
            cells_run=len(report.run),
            cells_skipped=len(report.skipped),
            warm_up_seconds=round(report.warm_up_seconds, 3),
            wall_seconds=round(report.wall_seconds, 3),
            compute_seconds=round(report.compute_seconds, 3),
            overhead_seconds_per_cell=None if report.overhead_per_cell is None else round(report.overhead_per_cell, 3),
        )
    first = cells[0] if cells else None
    return SweepSummary(
        grid={a: [_jsonable(v) for v in vs] for a, vs in grid.items()},
        base={k: _jsonable(v) for k, v in base.items()},
        evaluation={
            "split": "test",
            "limit": first.evaluation.limit if first else None,
            "mask_seed": first.evaluation.mask_seed if first else None,
            "backend": "exact",
        },
        method=METHOD,
        metrics=list(METRICS),
        cells=entries,
        groups=group_stats(values, METRICS),
        paired=paired_stats(values, METRICS),
        failed=failed,
        timing=timing,
    )


def write_summary(summary: SweepSummary, out: str | Path, plots: bool = True) -> list[Path]:
    """summary.json, summary.md and (if asked) plots/<metric>-vs-<axis>.png; each written atomically."""
    out = Path(out)
    files = [save_record(summary, out / SUMMARY_JSON), atomic_write_text(out / SUMMARY_MD, to_markdown(summary))]
    if plots:
        files += plot_summary(summary, out / PLOTS_DIR)
    return files


# ---------------------------------------------------------------------------------------------- markdown
def _key_text(key: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in key.items()) or "all cells"


def to_markdown(s: SweepSummary) -> str:
    fin = sum(c.status == "finished" for c in s.cells)
    lines = [
        "# Sweep summary",
        "",
        f"{len(s.cells)} cells ({fin} finished, {len(s.failed)} failed, {len(s.cells) - fin - len(s.failed)} "
        f"pending); grid: " + "; ".join(f"{a} = {', '.join(map(str, v))}" for a, v in s.grid.items()) + ".",
        f"Evaluation: {s.evaluation['limit'] or 'all'} test images, mask seed {s.evaluation['mask_seed']}, "
        f"exact backend; every cell on the same images and masks.",
        "",
        f"Intervals: {s.method['ci95']}. Replicates: {s.method['replicates']}.",
        "",
        "## Groups",
        "",
        "| group | n | " + " | ".join(s.metrics) + " |",
        "|---|---:|" + "---|" * len(s.metrics),
    ]
    for g in s.groups:
        cells = [interval_text(g.metrics.get(m), pct=m == "accuracy") for m in s.metrics]
        lines.append(f"| {_key_text(g.key)} | {g.n} | " + " | ".join(cells) + " |")
    lines += ["", "## No-circuit baselines (per group, same images and masks)", ""]
    lines += ["| group | baseline | " + " | ".join(s.metrics) + " |", "|---|---|" + "---|" * len(s.metrics)]
    for g in s.groups:
        for name, stats in g.baselines.items():
            cells = [interval_text(stats.get(m), pct=m == "accuracy") for m in s.metrics]
            lines.append(f"| {_key_text(g.key)} | {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Model minus the best baseline (per cell, same classifier seed)", ""]
    lines += ["| group | " + " | ".join(s.metrics) + " |", "|---|" + "---|" * len(s.metrics)]
    for g in s.groups:
        cells = []
        for m in s.metrics:
            st = g.minus_best_baseline.get(m)
            mark = ""
            if st is not None and st.ci95 is not None:
                mark = " **beats**" if st.ci95[0] > 0 else (" *loses*" if st.ci95[1] < 0 else "")
            cells.append(
                f"{interval_text(st, pct=m == 'accuracy')} vs {g.best_baseline.get(m, '–')}{mark}" if st else "–"
            )
        lines.append(f"| {_key_text(g.key)} | " + " | ".join(cells) + " |")
    if s.paired:
        lines += ["", f"## Paired differences QMAE − QAE ({s.method['paired']})", ""]
        lines += ["| group | pairs | " + " | ".join(s.metrics) + " |", "|---|---:|" + "---|" * len(s.metrics)]
        for p in s.paired:
            cells = [interval_text(p.metrics.get(m), pct=m == "accuracy") for m in s.metrics]
            lines.append(f"| {_key_text(p.key)} | {p.n} | " + " | ".join(cells) + " |")
    if s.failed:
        lines += ["", "## Failed cells", ""] + [f"- `{f['cell']}`: {f['error']}" for f in s.failed]
    if s.timing is not None:
        t = s.timing
        over = "n/a" if t.overhead_seconds_per_cell is None else f"{t.overhead_seconds_per_cell:.2f} s"
        lines += [
            "",
            f"Last run: {t.cells_run} cells run, {t.cells_skipped} skipped as finished, on {t.workers} worker(s); "
            f"workers' imports {t.warm_up_seconds:.1f} s, then wall {t.wall_seconds:.1f} s, tasks' own compute "
            f"{t.compute_seconds:.1f} s, overhead per cell {over} ((workers x wall - compute) / cells).",
        ]
    lines.append("")
    return "\n".join(lines)
