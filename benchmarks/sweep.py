"""A 16-cell 4x4 sweep on a LocalCluster of 2 workers against the same sweep on 1 worker (the named baseline).

    python benchmarks/sweep.py [--workers 1 2] [--cells 16] [--out /tmp/qmae-sweep-benchmark] [--json]

Targets (issue 11): 2 workers >= 1.7x faster than 1 worker, overhead <= 1 s per cell, where overhead per cell =
(workers x wall - the tasks' own compute) / cells: worker time not spent in the cells' training and evaluation
(scheduling, transfers, idle workers, imports on first use). The classifier both runs share is trained once
before the timing (it is a cache a sweep reuses) and copied into each run's folder; each run starts from an empty
sweep folder otherwise. "startup" is starting the LocalCluster and the workers' one-time imports of torch and the
toolkit; "run" is from the first task submitted to the last result; "total" is both (the whole command).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path


def _cells(n: int, eval_limit: int):
    from qmae_qiskit.experiments.cells import EvalSpec, build_cells

    seeds = list(range(n // 2))
    base = {"image_size": 4, "train_samples": 512, "epochs": 3, "batch_size": 32, "val_samples": 0}
    return build_cells(
        {"model": ["qmae", "qae"], "seed": seeds}, base, {"epochs": 1, "limit": 500}, EvalSpec(limit=eval_limit)
    )


def run(workers: int, out: Path, clf_cache: Path, data_dir: Path, n: int, eval_limit: int) -> dict:
    from qmae_qiskit.experiments.cluster import get_client
    from qmae_qiskit.experiments.runner import run_cells

    cells = _cells(n, eval_limit)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(clf_cache, cells[0].classifier.folder(out))
    t0 = time.perf_counter()
    with get_client(None, workers) as client:
        ready = time.perf_counter() - t0
        report = run_cells(client, cells, out, data_dir, log=lambda _: None)
        ready += report.warm_up_seconds
    total = time.perf_counter() - t0
    if report.failed:
        raise SystemExit(f"{len(report.failed)} cells failed: {next(iter(report.failed.values()))}")
    return {
        "workers": workers,
        "cells": len(report.run),
        "startup_s": round(ready, 2),
        "run_s": round(report.wall_seconds, 2),
        "total_s": round(total, 2),
        "compute_s": round(report.compute_seconds, 2),
        "overhead_per_cell_s": round(report.overhead_per_cell or 0.0, 3),
        "overhead_per_cell_with_startup_s": round((workers * total - report.compute_seconds) / len(report.run), 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--cells", type=int, default=16)
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--out", type=Path, default=Path("/tmp/qmae-sweep-benchmark"))
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("QMAE_DATA_DIR", "data")))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from qmae_qiskit.evaluate.classifier import train_and_cache

    spec = _cells(args.cells, args.images)[0].classifier
    clf_cache = args.out / "classifier-cache"
    if not (clf_cache / "classifier.json").is_file():
        train_and_cache(
            args.data_dir, clf_cache, image_size=4, progress=False, test_limit=args.images, **spec.settings()
        )
    rows = [run(w, args.out / f"w{w}", clf_cache, args.data_dir, args.cells, args.images) for w in args.workers]
    base = next((r for r in rows if r["workers"] == 1), rows[0])
    for r in rows:
        r["speedup_run"] = round(base["run_s"] / r["run_s"], 2)
        r["speedup_total"] = round(base["total_s"] / r["total_s"], 2)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    head = f"{'workers':>7} {'startup s':>9} {'run s':>7} {'total s':>8} {'compute s':>9} {'overhead/cell s':>15} "
    head += f"{'speed-up run':>12} {'speed-up total':>14}"
    print(head)
    for r in rows:
        print(
            f"{r['workers']:>7} {r['startup_s']:>9.1f} {r['run_s']:>7.1f} {r['total_s']:>8.1f} {r['compute_s']:>9.1f} "
            f"{r['overhead_per_cell_s']:>15.2f} {r['speedup_run']:>12.2f} {r['speedup_total']:>14.2f}"
        )
    print("targets: speed-up >= 1.7 with 2 workers, overhead <= 1 s per cell; baseline: 1 worker, same cells")
    return 0


if __name__ == "__main__":
    from _load import with_load

    raise SystemExit(with_load(main))
