"""`qmae-qiskit train` as a user runs it, beside its kernel measured in the same run.

exact (batch 256, float64): the command is started as a subprocess and timed from outside; its "Done" line gives
the training loop's seconds (steps, masks, validation, metrics, checkpoints) and loss.png's, so

    start-up = wall - loop - loss.png       (process start to first step: imports, data, model, first checkpoint)
    per sample = loop / samples             (the command's training throughput, start-up removed)

beside the kernel step (masked inputs, fidelity, backward, Adam) timed in this process at the same batch, and
beside ``python -c "import torch"`` (the floor of any start-up). Targets: <= 50 us per sample and >= 85 % of
the kernel's throughput.

aer_simulator: the command's loop per sample beside the benchmark's Aer step (in this process; target: within
15 %) and, when PennyLane is installed, PennyLane lightning.qubit + adjoint on the same circuit (target: <= 1/5).

    python benchmarks/train_cli.py [--epochs 4] [--skip-aer] [--baseline-checkout ../main] [--json out.json]

Timings on a shared machine are noisy: each figure is the best of ``--repeats`` runs.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

DONE = re.compile(r"Done: (\d+) steps in ([\d.]+) s(?: \((\d+) us per sample.*?loss\.png ([\d.]+) s\))?")


def run_cli(args: list[str], checkout: Path, env_extra: dict | None = None) -> dict:
    """Run ``qmae-qiskit train ARGS`` with ``checkout`` first on the path; wall, loop and plot seconds."""
    env = {**os.environ, "PYTHONPATH": str(checkout), **(env_extra or {})}
    cmd = [sys.executable, "-c", "from qmae_qiskit.cli import main; main()", "train", *args]
    t0 = time.perf_counter()
    # cwd: a neutral folder, or ``python -c`` would import the package from the current directory first
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"train failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    m = DONE.search(proc.stdout)
    if m is None:
        raise RuntimeError(f"no 'Done' line in the output: {proc.stdout[-300:]}")
    loop = float(m.group(2))
    plot = float(m.group(4)) if m.group(4) is not None else 0.0
    return {"wall": wall, "loop": loop, "plot": plot, "startup": wall - loop - plot, "steps": int(m.group(1))}


def import_torch_seconds() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - t0


def kernel_step_seconds(batch: int, repeats: int = 5, min_seconds: float = 1.0) -> float:
    """Best per-step time of the exact kernel step at ``batch`` (float64), as benchmarks/train_step.py times it."""
    from train_step import _setup, time_steps

    from qmae_qiskit.model.config import QMAEConfig
    from qmae_qiskit.train.models import ExactFidelity

    cfg = QMAEConfig()
    model, opt, images, idx = _setup(cfg, batch, ExactFidelity(cfg, "float64"))
    return min(time_steps(model, opt, images, idx, 5, min_seconds / repeats) for _ in range(repeats))


def exact_cli(args, out: Path, checkout: Path, name: str) -> dict:
    # --train-samples: the baseline checkout knows only the old spelling; ours takes it with a notice
    cli_args = [
        "--backend", "exact", "--batch-size", str(args.batch), "--train-samples", str(args.train_samples),
        "--epochs", str(args.epochs), "--precision", "float64", "--data-dir", str(args.data_dir),
        "--no-progress", "--out", str(out),
    ]  # fmt: skip
    best = None
    for r in range(args.repeats):
        res = run_cli([*cli_args, "--name", f"{name}-{r}"], checkout)
        if best is None or res["loop"] < best["loop"]:
            best = res
    best["samples"] = args.epochs * args.train_samples
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--train-samples", type=int, default=4608, help="exact run: images per epoch (18 steps)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3, help="CLI runs per configuration (best is kept)")
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("QMAE_DATA_DIR", REPO.parent / "shared/data")))
    ap.add_argument("--skip-aer", action="store_true")
    ap.add_argument("--aer-samples", type=int, default=16, help="aer run: images (batch 4, one epoch)")
    ap.add_argument("--baseline-checkout", type=Path, default=None, help="also run this checkout's CLI (e.g. ../main)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    args.data_dir = args.data_dir.resolve()
    out = Path(tempfile.mkdtemp(prefix="qmae-train-cli-"))
    result: dict = {"batch": args.batch, "epochs": args.epochs, "train_samples": args.train_samples}
    try:
        t_torch = min(import_torch_seconds() for _ in range(2))
        ours = exact_cli(args, out, REPO, "exact")
        k_step = kernel_step_seconds(args.batch)
        per_cli = ours["loop"] / ours["samples"]
        per_kernel = k_step / args.batch
        ratio = per_kernel / per_cli
        result["exact"] = {**ours, "kernel_step": k_step, "import_torch": t_torch}
        print(f"train --backend exact, batch {args.batch}, float64, {ours['steps']} steps ({ours['samples']} samples):")
        print(
            f"  start-up (process start to first step)  {ours['startup']:6.2f} s   "
            f"baseline: import torch {t_torch:.2f} s"
        )
        print(
            f"  per sample, start-up removed            {per_cli * 1e6:6.1f} us  baseline: kernel step "
            f"{per_kernel * 1e6:.1f} us -> {100 * ratio:.0f} % of the kernel's throughput"
        )
        print(f"  loss.png after the loop                 {ours['plot']:6.2f} s")
        print(
            f"  targets: <= 50 us per sample {'met' if per_cli <= 50e-6 else 'MISSED'}, >= 85 % of the kernel "
            f"{'met' if ratio >= 0.85 else 'MISSED'}"
        )
        if args.baseline_checkout is not None:
            base = exact_cli(args, out, args.baseline_checkout.resolve(), "baseline")
            result["exact_baseline_checkout"] = {**base, "checkout": str(args.baseline_checkout)}
            print(
                f"  baseline: the CLI of {args.baseline_checkout}: {1e6 * base['loop'] / base['samples']:.1f} us per "
                f"sample as its Done line counts it, wall {base['wall']:.1f} s vs ours {ours['wall']:.1f} s"
            )
        if not args.skip_aer:
            result["aer_simulator"] = aer(args, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if args.json:
        from qmae_qiskit.io import atomic_write_json

        atomic_write_json(args.json, result)
    return 0


def aer(args, out: Path) -> dict:
    from pennylane_step import aer_step, pennylane_available, pennylane_step

    from qmae_qiskit.model.config import QMAEConfig

    cfg = QMAEConfig()
    cli_args = [
        "--backend", "aer_simulator", "--batch-size", "4", "--train-images", str(args.aer_samples), "--epochs", "1",
        "--data-dir", str(args.data_dir), "--no-progress", "--out", str(out), "--name", "aer",
    ]  # fmt: skip
    cli = run_cli(cli_args, REPO)
    per_cli = cli["loop"] / args.aer_samples
    t_bench, kind = aer_step(cfg, repeats=2)
    res = {**cli, "per_sample": per_cli, "benchmark_step": t_bench, "gradient": kind, "pennylane_step": None}
    print(
        f"train --backend aer_simulator ({kind} gradient), batch 4, {args.aer_samples} samples, "
        "a checkpoint every step:"
    )
    print(f"  start-up (process start to first step)  {cli['startup']:6.2f} s")
    print(
        f"  per sample, start-up removed            {per_cli:6.3f} s   baseline: benchmark step {t_bench:.3f} s -> "
        f"{per_cli / t_bench:.2f}x (target <= 1.15: {'met' if per_cli <= 1.15 * t_bench else 'MISSED'})"
    )
    missing = pennylane_available()
    if missing is not None:
        print(f"  baseline: PennyLane not installed ({missing}); pip install 'qmae-qiskit[pennylane]' to compare")
        return res
    t_pl, err = pennylane_step(cfg, repeats=1)
    res["pennylane_step"], res["pennylane_vs_exact"] = t_pl, err
    print(
        f"  baseline: PennyLane lightning.qubit + adjoint, same circuit, one sample: {t_pl:.3f} s -> ours "
        f"{per_cli / t_pl:.2f} of it (target <= 0.20: {'met' if per_cli <= t_pl / 5 else 'MISSED'})"
    )
    return res


if __name__ == "__main__":
    from _load import with_load

    raise SystemExit(with_load(main))
