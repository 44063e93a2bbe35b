"""Time of a 100-image noise study on the twin: `recommended` against the raw study (target: <= 2 min at 8x8).

    python benchmarks/study.py [RUN] [--backend fake_torino] [--images 100] [--shots 20000] [--json out.json]

RUN is a trained run folder (default: results/hardware/qmae-L8 if present, else a QMAE trained here on the
exact path in a few seconds). The named baseline is the same study with only the raw method (one Estimator and one
Sampler job over the evaluated and calibration images); `recommended` adds the per-image noise references. Each
line prints the wall time, the study's own prepare/total split and the mean |error| of the fidelity.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, nargs="?", default=None)
    ap.add_argument("--backend", default="fake_torino")
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--shots", type=int, default=20000)
    ap.add_argument("--calibration-images", type=int, default=20)
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("QMAE_DATA_DIR", "data")))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from twin import _run_folder

    from qmae_qiskit.study.noise import StudySpec, run_study

    run = _run_folder(args.run, args.data_dir)
    rows = {}
    for methods in ("raw", "recommended"):
        spec = StudySpec(
            run=str(run),
            backend=args.backend,
            samples=args.images,
            shots=args.shots,
            methods=methods,
            calibration_images=args.calibration_images,
            data_dir=str(args.data_dir),
        )
        t0 = time.perf_counter()
        study = run_study(spec)
        seconds = time.perf_counter() - t0
        assert not isinstance(study, str)
        name = methods.split(",")[-1]
        rows[f"study --methods {methods}"] = {
            "seconds": seconds,
            "prepare": study.seconds.get("prepare", 0.0),
            "mean_abs_error": study.aggregates[name]["fidelity"]["mean_abs_error"],
        }
    base = rows["study --methods raw"]["seconds"]
    print(
        f"{args.images} test images + {args.calibration_images} calibration images, {run}, {args.backend}, "
        f"{args.shots} shots; {platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    )
    for name, r in rows.items():
        print(
            f"  {name:34s} {r['seconds']:7.1f} s ({r['seconds'] / base:4.2f}x the raw study; prepare "
            f"{r['prepare']:.1f} s)  fidelity mean |error| {r['mean_abs_error']:.4f}"
        )
    rec = rows["study --methods recommended"]["seconds"]
    print(f"  recommended study: {rec:.0f} s (target <= 120 s)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    from _load import with_load

    raise SystemExit(with_load(main))
