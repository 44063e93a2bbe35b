"""Time of `evaluate` on the exact path: the whole test split (target: 10,000 images in <= 60 s).

    python benchmarks/evaluate.py RUN [--data-dir DIR] [--images N] [--baselines] [--json out.json]

RUN is a trained run folder (e.g. results/runs/qmae-m25). Timed separately: loading the split, the exact
reconstruction + fidelity (U built once per batch of 2048), the scores (cosine, batched SSIM), the classifier on
the reconstructions, and optionally the three no-circuit baselines. The classifier beside RUN is used (as
`evaluate` finds it); without one the accuracy column is skipped and the output says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("QMAE_DATA_DIR", "data")))
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--baselines", action="store_true", help="also time the three no-circuit baselines")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from qmae_qiskit.evaluate import classifier as clf
    from qmae_qiskit.evaluate.evaluation import evaluate_baselines, find_classifier, load_eval_data
    from qmae_qiskit.evaluate.prepare import outputs, prepare
    from qmae_qiskit.evaluate.scoring import score
    from qmae_qiskit.hardware.executors.exact import ExactExecutor
    from qmae_qiskit.hardware.spec import ExecutionSpec
    from qmae_qiskit.train.runs import load_trained

    t = {}
    t0 = time.perf_counter()
    tm = load_trained(args.run)
    data = load_eval_data(args.data_dir, "test", tm.cfg.image_size, args.images)
    t["load data"] = time.perf_counter() - t0
    path = find_classifier(args.run, None)
    model = clf.load(path)[0] if clf.exists(path) else None

    t0 = time.perf_counter()
    executor = ExactExecutor()
    prepared = prepare(tm, data.image_set(), ExecutionSpec(), executor)
    t["prepare (masks, circuits, parameter values)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    probs, fids = outputs(prepared, executor.run(prepared.work).result())
    t["exact reconstruction + fidelity"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    s = score(probs, fids, data.images, data.labels, None)
    t["cosine + SSIM"] = time.perf_counter() - t0
    if model is not None:
        t0 = time.perf_counter()
        s = score(probs, fids, data.images, data.labels, model)
        t["classifier (incl. scores again)"] = time.perf_counter() - t0
    model_total = sum(v for k, v in t.items() if k != "load data")
    if args.baselines:
        t0 = time.perf_counter()
        evaluate_baselines(tm.cfg, tm.mask_ratio, data, model, 0)
        t["three baselines"] = time.perf_counter() - t0

    n = len(data.images)
    print(
        f"{n} images, {tm.kind} at {tm.mask_ratio:.1%} mask, torch threads {torch.get_num_threads()}, "
        f"{platform.processor() or platform.machine()}"
    )
    for k, v in t.items():
        print(f"  {k:34s} {v:7.2f} s")
    print(
        f"  {'evaluate the model (no data load)':34s} {model_total:7.2f} s  "
        f"({'with' if model is not None else 'WITHOUT'} the classifier; target <= 60 s for 10,000)"
    )
    print(
        f"  mean fidelity {float(s['fidelity'].mean()):.4f}, CS {float(s['cs'].mean()):.4f}, "
        f"SSIM {float(s['ssim'].mean()):.4f}"
        + (f", accuracy {100 * float(s['accuracy'].mean()):.2f} %" if "accuracy" in s else "")
    )
    if args.json:
        args.json.write_text(json.dumps({"n_images": n, "seconds": t, "model_seconds": model_total}, indent=2))
    return 0


if __name__ == "__main__":
    from _load import with_load

    raise SystemExit(with_load(main))
