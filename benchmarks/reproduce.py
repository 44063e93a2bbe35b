"""Wall time of `qmae-qiskit reproduce` from nothing (target: <= 120 s on the 2-core development machine).

    python benchmarks/reproduce.py [--out /tmp/qmae-repro] [--data-dir DIR] [--keep]
                                   [--baseline-commit 4d805a4 | --baseline-checkout ../main | --no-baseline]

Runs the full command into a fresh folder (classifier, four runs, evaluation on the whole test split, figures)
and prints the per-stage times that reproduce records in table1.json. The baseline -- by default the pipeline
of commit 4d805a4 (sequential, the classifier on the caller's threads), exported with ``git archive`` into a
temporary folder -- runs first in the same invocation into its own fresh folder; each stage is printed beside
it, and the two tables' fidelity, CS and SSIM are compared with each other and with the committed
results/table1.json (they must agree to every stored digit). The load average is printed before and after: on
a shared machine both timings are only as good as the load they ran under. Folders are removed afterwards
unless --keep (they must not exist beforehand, so nothing cached is reused).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 120.0


def run(checkout: Path, out: Path, data_dir: Path) -> tuple[int, float, dict | None, float]:
    """(exit code, wall seconds, table1.json, CPU seconds of it and its worker processes) of reproduce run from
    ``checkout``. CPU seconds / cores bounds the wall time on an idle machine from below, whatever the load was."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    cmd = [sys.executable, "-c", "from qmae_qiskit.cli import main; main()", "reproduce", "--out", str(out.resolve())]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    cwd = tempfile.gettempdir()  # not the checkout: ``python -c`` imports from the current folder first
    rc = subprocess.call(
        [*cmd, "--data-dir", str(data_dir.resolve()), "--no-progress"], env=env, stdout=subprocess.DEVNULL, cwd=cwd
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    record = json.loads((out / "table1.json").read_text()) if rc == 0 else None
    return rc, wall, record, cpu


def image_metrics(record: dict) -> dict[str, float]:
    """Mean fidelity, CS and SSIM of every run and baseline in a table1.json record."""
    out = {}
    for name, metrics in record["ours"].items():
        for k in ("fidelity", "cs", "ssim"):
            out[f"{name} {k}"] = metrics[k]["mean"]
    for ratio, fills in record["baselines"].items():
        for fill, metrics in fills.items():
            for k in ("fidelity", "cs", "ssim"):
                out[f"baseline {ratio} {fill} {k}"] = metrics[k]["mean"]
    return out


def export_commit(commit: str) -> Path:
    """The tracked files of ``commit`` in a fresh temporary folder (``git archive``: no worktree bookkeeping)."""
    dest = Path(tempfile.mkdtemp(prefix=f"qmae-{commit}-"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def committed_differences(record: dict) -> float:
    """Largest difference of the fidelity, CS and SSIM means from the committed results/table1.json."""
    committed = image_metrics(json.loads((REPO / "results" / "table1.json").read_text()))
    ours = image_metrics(record)
    return max(abs(ours[k] - committed[k]) for k in committed)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/qmae-reproduce-benchmark"))
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("QMAE_DATA_DIR", "data")))
    ap.add_argument("--baseline-checkout", type=Path, default=None, help="time this checkout as the baseline")
    ap.add_argument("--baseline-commit", default="4d805a4", help="time this commit as the baseline [4d805a4]")
    ap.add_argument("--no-baseline", action="store_true", help="time only this checkout")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    exported = None
    if not args.no_baseline and args.baseline_checkout is None:
        exported = args.baseline_checkout = export_commit(args.baseline_commit)
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    outs = [args.out] + ([args.out.with_name(args.out.name + "-baseline")] if args.baseline_checkout else [])
    for o in outs:
        if o.exists():
            print(f"{o} exists; pass a fresh --out so that nothing cached is reused", file=sys.stderr)
            return 2
    base = None
    if args.baseline_checkout is not None:
        base = run(args.baseline_checkout.resolve(), outs[1], args.data_dir)
    rc, wall, rec, cpu = run(REPO, args.out, args.data_dir)
    if rc == 0 and rec is not None:
        brec = base[2] if base is not None else None
        for k, v in rec["seconds"].items():
            beside = f"   baseline {brec['seconds'][k]:8.1f} s" if brec and k in brec["seconds"] else ""
            print(f"  {k:28s} {v:8.1f} s{beside}")
        if brec is not None:
            ours, theirs = image_metrics(rec), image_metrics(brec)
            worst = max(abs(ours[k] - theirs[k]) for k in ours)
            print(f"  fidelity, CS, SSIM: largest difference from the baseline {worst:.1e} over {len(ours)} means")
        print(f"  fidelity, CS, SSIM: largest difference from results/table1.json {committed_differences(rec):.1e}")
        acc = rec["classifier"]["clean_test_accuracy"]
        base_acc = f", baseline {100 * brec['classifier']['clean_test_accuracy']:.2f} %" if brec else ""
        print(f"  classifier clean test accuracy {100 * acc:.2f} %{base_acc}")
    print(
        f"reproduce: exit {rc}, wall time {wall:.0f} s (target <= {TARGET_SECONDS:.0f} s: "
        f"{'met' if rc == 0 and wall <= TARGET_SECONDS else 'MISSED'})"
        + (f"; baseline {args.baseline_checkout}: exit {base[0]}, {base[1]:.0f} s" if base is not None else "")
    )
    print(
        f"CPU time (all processes): {cpu:.0f} s"
        + (f", baseline {base[3]:.0f} s" if base is not None else "")
        + f"; on {os.cpu_count()} idle cores at least {cpu / (os.cpu_count() or 1):.0f} s wall"
    )
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if not args.keep:
        for o in outs:
            shutil.rmtree(o, ignore_errors=True)
    if exported is not None:
        shutil.rmtree(exported, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
