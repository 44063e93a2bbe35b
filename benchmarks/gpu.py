"""CPU against GPU for issue 18's figures: exact-path µs per sample, a classifier epoch, reproduce, a 36-cell sweep.

    python benchmarks/gpu.py [--devices cpu,cuda] [--only kernel,classifier,reproduce,sweep] [--json FILE]
                             [--data-dir DIR] [--sweep-epochs N] [--sweep-train-images N] [--sweep-images N]

Every figure is measured on each device of ``--devices`` in the same run, the CPU first (the named baseline);
the default is ``cpu,cuda`` where torch sees a GPU and ``cpu`` elsewhere, so the script runs (and is checked) on a
CPU-only machine too. The parts:

``kernel``      one training step of the exact path (QMAE 16x16, 8 qubits, k = 7, float64: forward and backward
                through :class:`qmae_qiskit.train.models.ExactFidelity`), µs per sample at batch 256, 1024, 4096
``classifier``  one epoch of the ResNet18 judge on the MNIST training images (the final recipe: one CPU thread)
``reproduce``   wall time of ``qmae-qiskit reproduce`` from nothing (``--device``; CPU: the one-thread pool)
``sweep``       wall time of a 36-cell sweep: QMAE and QAE x latent qubits {5, 6, 7} x layers {1, 2} x seeds
                {0, 1, 2} at the Table-1 protocol (40 epochs of 4,500 images, 10,000 test images) unless the
                ``--sweep-*`` options shrink it

The CPU is shared on the development machine: report the load average printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # measure this checkout, not an installed copy
BATCHES = (256, 1024, 4096)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def kernel_us_per_sample(device: str, batch: int, repeats: int = 3) -> float:
    """Best of ``repeats`` exact-path training steps (forward + backward, float64), in µs per sample."""
    from qmae_qiskit.model.config import QMAEConfig
    from qmae_qiskit.model.masking import sample_mask_indices
    from qmae_qiskit.train.models import ExactFidelity, init_theta

    cfg = QMAEConfig()
    g = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 16, 16, generator=g, dtype=torch.float64)
    patch_idx = sample_mask_indices(cfg, 0.25, torch.arange(batch), 0, epoch=0)
    theta = init_theta(cfg, "uniform", 0).requires_grad_()
    token = (torch.rand(cfg.n_token, generator=g, dtype=torch.float64) + 0.1).requires_grad_()
    backend = ExactFidelity(cfg, device=device)
    best = float("inf")
    for i in range(repeats + 1):  # the first is a warm-up (CUDA context, kernels, caches)
        _sync(device)
        t = time.perf_counter()
        (1 - backend.masked(theta, images, patch_idx, token)).mean().backward()
        _sync(device)
        if i:
            best = min(best, time.perf_counter() - t)
    return 1e6 * best / batch


def classifier_epoch_seconds(device: str, data_dir: str) -> tuple[float, int]:
    """(seconds, training images) of one classifier epoch with the final recipe."""
    from qmae_qiskit.data import load_mnist
    from qmae_qiskit.evaluate.classifier import ClassifierSettings, train_classifier

    train = load_mnist(data_dir, train=True, image_size=16)
    t = time.perf_counter()
    train_classifier(train.images, train.labels, ClassifierSettings(epochs=1), progress=False, device=device)
    _sync(device)
    return time.perf_counter() - t, len(train.images)


def _cli_seconds(args: list[str], device: str, data_dir: str) -> float:
    """Wall seconds of ``python -m qmae_qiskit ARGS --device DEVICE`` run from this checkout into a fresh folder."""
    with tempfile.TemporaryDirectory(prefix="qmae-gpu-bench-") as tmp:
        argv = [a.replace("{out}", str(Path(tmp) / "out")) for a in args]
        cmd = [sys.executable, "-m", "qmae_qiskit", *argv, "--device", device, "--data-dir", data_dir]
        t = time.perf_counter()
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return wall


def sweep_args(epochs: int, train_images: int, images: int | None) -> list[str]:
    grid = ["model=qmae,qae", "latent_qubits=5,6,7", "layers=1,2", "seed=0,1,2"]  # 2 x 3 x 2 x 3 = 36 cells
    args = ["sweep", *(x for g in grid for x in ("--grid", g)), "--image-size", "16", "--out", "{out}"]
    args += ["--epochs", str(epochs), "--train-images", str(train_images), "--batch-size", "256"]
    args += ["--val-images", "500", "--lr", "0.01", "--no-plots"]
    return args + (["--images", str(images)] if images else [])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--only", default="kernel,classifier,reproduce,sweep")
    ap.add_argument("--data-dir", default=os.environ.get("QMAE_DATA_DIR", "data"))
    ap.add_argument("--sweep-epochs", type=int, default=40)
    ap.add_argument("--sweep-train-images", type=int, default=4500)
    ap.add_argument("--sweep-images", type=int, default=None, help="test images per cell [all 10,000]")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    devices, parts = args.devices.split(","), set(args.only.split(","))
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none visible to torch"
    print(f"torch {torch.__version__}; GPU: {gpu}; {os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.1f}")
    figures: dict[str, dict[str, float]] = {d: {} for d in devices}
    for dev in devices:
        f = figures[dev]
        if "kernel" in parts:
            for b in BATCHES:
                f[f"exact path µs/sample, batch {b}"] = round(kernel_us_per_sample(dev, b), 2)
        if "classifier" in parts:
            secs, n = classifier_epoch_seconds(dev, args.data_dir)
            f[f"classifier epoch s ({n} images)"] = round(secs, 2)
        if "reproduce" in parts:
            f["reproduce s"] = round(
                _cli_seconds(["reproduce", "--out", "{out}", "--no-progress"], dev, args.data_dir), 1
            )
        if "sweep" in parts:
            sweep = sweep_args(args.sweep_epochs, args.sweep_train_images, args.sweep_images)
            f["36-cell sweep s"] = round(_cli_seconds(sweep, dev, args.data_dir), 1)
        for k, v in f.items():
            print(f"  {dev:5s} {k:42s} {v:>10}", flush=True)
    if len(devices) > 1:
        for k in figures[devices[0]]:
            ratios = ", ".join(f"{d} {figures[devices[0]][k] / figures[d][k]:.1f}x" for d in devices[1:])
            print(f"  speed-up over {devices[0]}: {k}: {ratios}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"gpu": gpu, "figures": figures}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
