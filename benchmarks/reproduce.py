"""Wall time of `qmae-qiskit reproduce` from nothing (target: <= 20 min on the 2-core development machine).

    python benchmarks/reproduce.py [--out /tmp/qmae-repro] [--data-dir DIR] [--keep]

Runs the full command into a fresh folder (classifier, four runs, evaluation on the whole test split, figures)
and prints the per-stage times that reproduce records in table1.json. The folder is removed afterwards unless
--keep (it must not exist beforehand, so nothing cached is reused).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/qmae-reproduce-benchmark"))
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("QMAE_DATA_DIR", "data")))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    if args.out.exists():
        print(f"{args.out} exists; pass a fresh --out so that nothing cached is reused", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    rc = subprocess.call(
        ["qmae-qiskit", "reproduce", "--out", str(args.out), "--data-dir", str(args.data_dir), "--no-progress"]
    )
    wall = time.perf_counter() - t0
    if rc == 0:
        rec = json.loads((args.out / "table1.json").read_text())
        for k, v in rec["seconds"].items():
            print(f"  {k:28s} {v:8.1f} s")
    print(f"reproduce: exit {rc}, wall time {wall / 60:.1f} min (target <= 20 min)")
    if not args.keep:
        shutil.rmtree(args.out, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
