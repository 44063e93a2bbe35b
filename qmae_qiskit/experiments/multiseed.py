"""Table 1 over several seeds (``reproduce --seeds N``): the four runs of ``reproduce`` for seeds 0..N-1, each
seed training its runs *and* its own classifier, run as sweep cells on a Dask client; mean +- 95 % interval of
every number, the paired QMAE - QAE gap, and the baselines' intervals (they vary with the classifier seed only).

Seed s uses exactly the single-seed command's settings with ``seed = s`` and classifier seed s, so seed 0 is the
committed single-seed Table 1 again. Layout of ``out``: ``classifiers/L16-c<s>/``, one run folder per run and seed
(``qmae-m25-s0``, ...), ``summary.json/md`` (the generic sweep summary) and ``table1.json/md``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.evaluate.scoring import PAPER_TABLE1
from qmae_qiskit.experiments.cells import Cell, ClassifierSpec, EvalSpec, check_out_folder, is_finished
from qmae_qiskit.experiments.cluster import get_client
from qmae_qiskit.experiments.grid import Grid
from qmae_qiskit.experiments.paper_runs import CLASSIFIER_DEFAULTS, PAPER_GAP, TRAIN_DEFAULTS, run_specs
from qmae_qiskit.experiments.records import GroupStats, Stat, SweepSummary
from qmae_qiskit.experiments.reproduce import Execution
from qmae_qiskit.experiments.runner import RunReport, run_cells
from qmae_qiskit.experiments.stats import METHOD, interval_text
from qmae_qiskit.experiments.summary import build_summary, write_summary
from qmae_qiskit.io import atomic_write_text
from qmae_qiskit.records import Record, save_record
from qmae_qiskit.train.runs import RunSettings

METRICS = ("fidelity", "cs", "ssim", "accuracy")


class MultiSeedTable(Record):
    """table1.json of ``reproduce --seeds N``: every number as {mean, std, n, ci95} over the seeds."""

    SCHEMA: ClassVar[str] = "qmae-qiskit/table1-seeds"
    VERSION: ClassVar[int] = 1
    WHAT: ClassVar[str] = "multi-seed Table 1"

    seeds: list[int]
    n_test_images: int | None
    mask_seed: int
    method: dict[str, str]
    train_settings: dict[str, Any]
    classifier_settings: dict[str, Any]
    runs: dict[str, dict[str, Stat]]
    baselines: dict[str, dict[str, dict[str, Stat]]]
    qmae_minus_qae: dict[str, Stat]
    qmae_minus_best_baseline: dict[str, Stat]
    best_baseline: dict[str, str]
    paper: dict[str, dict[str, float]]
    paper_qmae_minus_qae_accuracy: float
    claims: dict[str, str]
    failed: list[dict[str, str]]
    seconds: dict[str, float]


def seed_cells(seeds: list[int], train: dict[str, Any], classifier: dict[str, Any], evaluation: EvalSpec) -> list[Cell]:
    """One cell per run of ``reproduce`` and seed; training seed = classifier seed = s."""
    clf = {k: v for k, v in {**CLASSIFIER_DEFAULTS, **classifier}.items() if k != "seed"}
    cells = []
    for spec in run_specs():
        for s in seeds:
            settings = RunSettings(
                model=spec.model,
                backend="exact",
                config=spec.config,
                mask_ratio=spec.mask_ratio,
                **{**TRAIN_DEFAULTS, **train, "seed": s},
            )
            axes = (("model", spec.model), ("mask_ratio", spec.mask_ratio), ("seed", s), ("classifier_seed", s))
            cells.append(Cell(f"{spec.name}-s{s}", axes, settings, ClassifierSpec(16, s, **clf), evaluation))
    return cells


def _group(summary: SweepSummary, model: str, ratio: float) -> GroupStats | None:
    return next((g for g in summary.groups if g.key == {"model": model, "mask_ratio": ratio}), None)


def _claim(stat: Stat | None, threshold: float) -> str:
    """'holds' when the whole interval is above ``threshold``, 'fails' when below, else 'undecided'."""
    if stat is None:
        return "no data"
    if stat.ci95 is None:
        return "undecided (one seed: no interval)"
    if stat.ci95[0] > threshold:
        return "holds"
    if stat.ci95[1] < threshold:
        return "fails"
    return "undecided (the interval contains it)"


def table(summary: SweepSummary, seeds: list[int], train: dict, classifier: dict, seconds: dict) -> MultiSeedTable:
    runs = {}
    for spec in run_specs():
        g = _group(summary, spec.model, spec.mask_ratio)
        if g is not None:
            runs[spec.name] = g.metrics
    baselines = {}
    for ratio in sorted({s.mask_ratio for s in run_specs()}):
        g = _group(summary, "qmae", ratio)
        if g is not None:
            baselines[f"{ratio:g}"] = g.baselines
    paired = next((p for p in summary.paired if p.key == {"mask_ratio": 0.25}), None)
    q25 = _group(summary, "qmae", 0.25)
    gap = paired.metrics if paired else {}
    claims = {}
    paper = PAPER_TABLE1["qmae"]
    for m, v in paper.items():
        claims[f"QMAE {m} > paper {v}"] = _claim(runs.get("qmae-m25", {}).get(m), v)
    claims[f"QMAE - QAE accuracy >= paper {PAPER_GAP}"] = _claim(gap.get("accuracy"), PAPER_GAP)
    claims["QMAE - QAE accuracy > 0"] = _claim(gap.get("accuracy"), 0.0)
    claims["QMAE - QAE fidelity > 0"] = _claim(gap.get("fidelity"), 0.0)
    if q25 is not None:
        for m, st in q25.minus_best_baseline.items():
            claims[f"QMAE {m} > best no-circuit baseline ({q25.best_baseline[m]})"] = _claim(st, 0.0)
    return MultiSeedTable(
        seeds=seeds,
        n_test_images=summary.evaluation.get("limit"),
        mask_seed=int(summary.evaluation.get("mask_seed") or 0),
        method=METHOD,
        train_settings={**TRAIN_DEFAULTS, **train, "seed": "0..N-1 (one per seed)"},
        classifier_settings={**CLASSIFIER_DEFAULTS, **classifier, "seed": "0..N-1 (one per seed)"},
        runs=runs,
        baselines=baselines,
        qmae_minus_qae=gap,
        qmae_minus_best_baseline=q25.minus_best_baseline if q25 else {},
        best_baseline=q25.best_baseline if q25 else {},
        paper=PAPER_TABLE1,
        paper_qmae_minus_qae_accuracy=PAPER_GAP,
        claims=claims,
        failed=summary.failed,
        seconds=seconds,
    )


def _row(name: str, stats: dict[str, Stat]) -> str:
    return f"| {name} | " + " | ".join(interval_text(stats.get(m), pct=m == "accuracy") for m in METRICS) + " |"


def to_markdown(t: MultiSeedTable) -> str:
    n = len(t.seeds)
    images = t.n_test_images or 10000
    lines = [
        f"# Table 1 over {n} seeds ({images} MNIST test images, 16x16, 8 qubits, 7 latent)",
        "",
        f"Made by `qmae-qiskit reproduce --seeds {n}`: seed s trains every run with seed s and its own classifier "
        f"with seed s; each entry is mean ± half-width [95 % interval] (n) over the seeds. {t.method['ci95']}.",
        "",
        "| Model (25 % mask) | Fidelity | CS | SSIM | Accuracy |",
        "|---|---|---|---|---|",
    ]
    if "qmae-m25" in t.runs:
        lines.append(_row("**QMAE (ours)**", t.runs["qmae-m25"]))
    if "qae-m25" in t.runs:
        lines.append(_row("QAE (ours)", t.runs["qae-m25"]))
    for model in ("qmae", "qae"):
        p = t.paper[model]
        lines.append(
            f"| {model.upper()} (paper) | {p['fidelity']:.3f} | {p['cs']:.3f} | {p['ssim']:.3f} | "
            f"{100 * p['accuracy']:.2f} % |"
        )
    for name, stats in t.baselines.get("0.25", {}).items():
        lines.append(_row(f"baseline: {name} (no circuit)", stats))
    lines += [
        "",
        f"Paired QMAE − QAE ({t.method['paired']}); paper accuracy gap {100 * t.paper_qmae_minus_qae_accuracy:.2f} "
        "points:",
        "",
        "| | Fidelity | CS | SSIM | Accuracy |",
        "|---|---|---|---|---|",
        _row("QMAE − QAE, 25 %", t.qmae_minus_qae),
        _row("QMAE − best baseline, 25 %", t.qmae_minus_best_baseline),
        "",
        "Best baseline per metric: " + ", ".join(f"{m}: {b}" for m, b in t.best_baseline.items()) + ".",
        "",
        "Other mask ratios:",
        "",
        "| Mask | Model | Fidelity | CS | SSIM | Accuracy |",
        "|---|---|---|---|---|---|",
    ]
    return "\n".join(lines + _ratios_and_claims_lines(t))


def _ratios_and_claims_lines(t: MultiSeedTable) -> list[str]:
    """QMAE and the baselines at every mask ratio, the claims' verdicts, failed cells, the training settings."""
    lines = []
    for name, ratio in (("qmae-m12.5", "0.125"), ("qmae-m25", "0.25"), ("qmae-m50", "0.5")):
        if name in t.runs:
            lines.append(f"| {float(ratio):.1%} " + _row("QMAE", t.runs[name]))
        for b, stats in t.baselines.get(ratio, {}).items():
            lines.append(f"| {float(ratio):.1%} " + _row(b, stats))
    lines += [
        "",
        "Claims (holds: the whole interval is beyond the value; fails: the whole interval is short of it):",
        "",
    ]
    lines += [f"- {claim}: **{verdict}**" for claim, verdict in t.claims.items()]
    if t.failed:
        lines += ["", "Failed cells:", ""] + [f"- `{f['cell']}`: {f['error']}" for f in t.failed]
    tr = t.train_settings
    lines += [
        "",
        f"Training (exact path, every run): Adam lr {tr['lr']}, batch {tr['batch_size']}, {tr['epochs']} epochs of "
        f"{tr['train_samples']} images. Time: " + ", ".join(f"{k} {v:.0f} s" for k, v in t.seconds.items()) + ".",
        "",
    ]
    return lines


def reproduce_seeds(
    out: str | Path,
    seeds: int,
    data_dir: str | Path | None,
    test_limit: int | None = None,
    train: dict | None = None,
    classifier_settings: dict | None = None,
    mask_seed: int = 0,
    execution: Execution | None = None,
) -> MultiSeedTable:
    """Everything in the module docstring; returns the table1.json record. ``execution``: the Dask scheduler (or
    a local cluster of ``workers``), the log and the resolved torch device type the workers compute on."""

    ex = execution or Execution()
    log = ex.log

    if seeds < 1:
        raise QMAEError(f"--seeds must be at least 1, got {seeds}")
    out = Path(out)
    train = dict(train or {})
    classifier = dict(classifier_settings or {})
    seed_list = list(range(seeds))
    cells = seed_cells(seed_list, train, classifier, EvalSpec(limit=test_limit, mask_seed=mask_seed))
    check_out_folder(cells, out)
    t0 = time.perf_counter()
    if all(is_finished(c, out) for c in cells):
        report = RunReport(skipped=[c.name for c in cells])
        log(f"all {len(cells)} runs in {out} are finished; rebuilding the table")
    else:
        with get_client(ex.scheduler, ex.workers) as client:
            log(f"{len(cells)} runs ({seeds} seeds x 4) and {seeds} classifiers -> {out}")
            out.mkdir(parents=True, exist_ok=True)
            report = run_cells(client, cells, out, data_dir, log=log, device=ex.device)
    grid: Grid = {"run": [s.name for s in run_specs()], "seed": list(seed_list)}
    summary = build_summary(cells, grid, {"train": {**TRAIN_DEFAULTS, **train}}, out, report)
    write_summary(summary, out, plots=False)
    seconds = {"total": round(time.perf_counter() - t0, 1), "tasks' compute": round(report.compute_seconds, 1)}
    record = table(summary, seed_list, train, classifier, seconds)
    save_record(record, out / "table1.json")
    atomic_write_text(out / "table1.md", to_markdown(record))
    return record


def gap_text(t: MultiSeedTable) -> str:
    st = t.qmae_minus_qae.get("accuracy")
    if st is None:
        return "QMAE − QAE accuracy: no data"
    return f"QMAE − QAE accuracy: {interval_text(st, pct=True)} points (paper {100 * PAPER_GAP:.2f})"
