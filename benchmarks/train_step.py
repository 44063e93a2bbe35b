"""Per-sample training-step time: the exact path at several batch sizes, and the aer_simulator path.

One training step = masked inputs, fidelity, loss 1 - <Z>, backward, Adam update (QMAE, 16x16, 25 % mask).
Ratios are against a baseline measured in the same run: a naive per-gate statevector simulator (every RZ, RY
and CX of every block applied to the batch of states, autograd through all of them). Mask sampling is timed
beside numpy's per-image generators (the same masks; target <= 2 us per sample). The aer_simulator step runs the
18-qubit SWAP-test circuit through EstimatorQNN + TorchConnector with the default gradient. The command as a
user runs it is benchmarks/train_cli.py; PennyLane on the same circuit is benchmarks/pennylane_step.py.

    python benchmarks/train_step.py                     # batches 1 64 256 1024, aer one sample
    python benchmarks/train_step.py --precision float64 --skip-aer --threads 2 --json out.json
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep rather than spin (set before torch loads; an explicit $OMP_WAIT_POLICY wins): with
# spinning, small products ran ~100x slower whenever another process used the second core.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import math
import statistics
import sys
import time
from functools import cache

import torch

from qmae_qiskit.model.ansatz import pair_order
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.masking import sample_mask_indices
from qmae_qiskit.simulate.exact import fidelity, normalize
from qmae_qiskit.train.adam import Adam
from qmae_qiskit.train.models import ExactFidelity, build_model, init_theta, init_token


# ------------------------------------------------------------------------------------ naive per-gate baseline
def _one_qubit(states: torch.Tensor, gate: torch.Tensor, q: int, n: int) -> torch.Tensor:
    M = states.shape[0]
    t = states.reshape(M, 1 << (n - 1 - q), 2, 1 << q)
    return torch.einsum("ij,mxjz->mxiz", gate, t).reshape(M, 1 << n)


@cache
def _cx_perm(c: int, t: int, n: int) -> torch.Tensor:
    idx = torch.arange(1 << n)
    return torch.where((idx >> c) & 1 == 1, idx ^ (1 << t), idx)


def _rz(phi: torch.Tensor) -> torch.Tensor:
    e = torch.exp(-0.5j * phi.to(torch.complex128))
    z = torch.zeros_like(e)
    return torch.stack([torch.stack([e, z]), torch.stack([z, e.conj()])])


def _ry(phi: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(phi / 2), torch.sin(phi / 2)
    return torch.stack([torch.stack([c, -s]), torch.stack([s, c])]).to(torch.complex128)


def naive_fidelity(theta: torch.Tensor, x_masked: torch.Tensor, x_clean: torch.Tensor, cfg: QMAEConfig):
    """The SWAP-test fidelity from a gate-by-gate statevector simulation of U on the 2B states."""
    n, k, t = cfg.n_qubits, int(cfg.latent_qubits), cfg.trash_qubits
    B = x_masked.shape[0]
    s = normalize(torch.cat([x_masked, x_clean], 0)).to(torch.complex128)
    for m, (a, b) in enumerate(pair_order(n)):
        p = theta[15 * m : 15 * m + 15]
        for q, (i0, i1, i2) in ((a, (0, 1, 2)), (b, (3, 4, 5))):
            s = _one_qubit(s, _rz(p[i0]), q, n)
            s = _one_qubit(s, _ry(p[i1]), q, n)
            s = _one_qubit(s, _rz(p[i2]), q, n)
        s = s[:, _cx_perm(a, b, n)]
        s = _one_qubit(s, _ry(p[6]), a, n)
        s = _one_qubit(s, _rz(p[7]), b, n)
        s = s[:, _cx_perm(b, a, n)]
        s = _one_qubit(s, _ry(p[8]), a, n)
        s = s[:, _cx_perm(a, b, n)]
        for q, (i0, i1, i2) in ((a, (9, 10, 11)), (b, (12, 13, 14))):
            s = _one_qubit(s, _rz(p[i0]), q, n)
            s = _one_qubit(s, _ry(p[i1]), q, n)
            s = _one_qubit(s, _rz(p[i2]), q, n)
    psi = s[:B].reshape(B, 1 << t, 1 << k)
    chi0 = s[B:].reshape(B, 1 << t, 1 << k)[:, 0, :]
    ov = torch.einsum("ba,bta->bt", chi0.conj(), psi)
    return (ov.real**2 + ov.imag**2).sum(-1)


class NaiveFidelity(ExactFidelity):
    masked = None  # no fused masked-input path: the model hands this backend the masked images

    def __call__(self, theta, x_masked, x_clean):
        return naive_fidelity(theta, x_masked, x_clean, self.cfg)


# ------------------------------------------------------------------------------------------------ timing
def _setup(cfg: QMAEConfig, batch: int, backend, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, cfg.image_size, cfg.image_size, generator=g, dtype=torch.float64)
    patch_idx = sample_mask_indices(cfg, 0.25, list(range(batch)), seed)
    theta = init_theta(cfg, "uniform", seed)
    model = build_model("qmae", cfg, theta, init_token(cfg, "uniform", seed), backend=backend)
    opt = Adam(model.parameters(), lr=1e-3)  # the training loop's optimizer
    return model, opt, images, patch_idx


def _step(model, opt, images, patch_idx) -> float:
    opt.zero_grad(set_to_none=True)
    loss, _ = model.loss(images, patch_idx)
    loss.backward()
    opt.step()
    return float(loss.detach())


def time_steps(model, opt, images, patch_idx, repeats: int, min_seconds: float) -> float:
    """Median wall time of one step (after one warm-up step); at least ``repeats`` steps and ``min_seconds``."""
    _step(model, opt, images, patch_idx)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        _step(model, opt, images, patch_idx)
        times.append(time.perf_counter() - t0)
        if len(times) >= 200:
            break
    return statistics.median(times)


def mask_sampling_us(cfg: QMAEConfig, batch: int, repeats: int = 20) -> tuple[float, float]:
    """(vectorised, per-image reference) mask sampling, best us per sample for one batch (they must agree)."""
    from qmae_qiskit.model.masking import sample_mask_indices_reference

    idx = torch.arange(10_000, 10_000 + batch)
    fast = []
    for r in range(repeats):
        t0 = time.perf_counter()
        got = sample_mask_indices(cfg, 0.25, idx, seed=0, epoch=r)
        fast.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    want = sample_mask_indices_reference(cfg, 0.25, idx, seed=0, epoch=repeats - 1)
    ref = time.perf_counter() - t0
    if not torch.equal(got, want):
        raise AssertionError("vectorised masks differ from numpy's per-image generators")
    return min(fast) / batch * 1e6, ref / batch * 1e6


def check_agreement(cfg: QMAEConfig) -> float:
    """Max |fidelity - naive| on a batch that takes each route of :func:`qmae_qiskit.simulate.exact.fidelity`."""
    worst = 0.0
    for batch in (3, cfg.dim):
        g = torch.Generator().manual_seed(batch)
        x = torch.rand(batch, cfg.dim, generator=g, dtype=torch.float64)
        y = torch.rand(batch, cfg.dim, generator=g, dtype=torch.float64)
        th = init_theta(cfg, "uniform", batch)
        worst = max(worst, float((fidelity(th, x, y, cfg) - naive_fidelity(th, x, y, cfg)).abs().max()))
    return worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-size", type=int, default=16)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64, 256, 1024])
    ap.add_argument(
        "--precision",
        choices=["float64", "float32", "both"],
        default="both",
        help="simulation precision of the exact path (parameters stay float64)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's choice]")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--skip-aer", action="store_true")
    ap.add_argument("--aer-repeats", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = QMAEConfig(image_size=args.image_size)
    precisions = ["float64", "float32"] if args.precision == "both" else [args.precision]
    agree = check_agreement(cfg)
    print(
        f"QMAE {cfg.image_size}x{cfg.image_size}: n={cfg.n_qubits}, {cfg.n_circuit_qubits}-qubit circuit, "
        f"{cfg.n_theta} angles + {cfg.n_token} token values; torch threads {torch.get_num_threads()}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
    )
    print(f"exact vs naive per-gate simulator: max |difference| = {agree:.2e}")
    results: dict = {
        "config": cfg.model_dump(),
        "threads": torch.get_num_threads(),
        "agreement": agree,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "exact": [],
        "aer_simulator": None,
    }
    head = "".join(f"{'exact ' + p + ' us':>18} {'speed-up':>9}" for p in precisions)
    print(f"{'batch':>6} {'naive us/sample':>16}{head}")
    for batch in args.batches:
        model, opt, images, idx = _setup(cfg, batch, NaiveFidelity(cfg))
        t_naive = time_steps(model, opt, images, idx, max(1, args.repeats // 2), args.min_seconds / 2) / batch
        row = {"batch": batch, "naive_us": t_naive * 1e6}
        line = f"{batch:>6} {t_naive * 1e6:>16.1f}"
        for p in precisions:
            model, opt, images, idx = _setup(cfg, batch, ExactFidelity(cfg, p))
            t = time_steps(model, opt, images, idx, args.repeats, args.min_seconds) / batch
            row[f"exact_{p}_us"], row[f"speedup_{p}"] = t * 1e6, t_naive / t
            line += f" {t * 1e6:>17.1f} {t_naive / t:>8.1f}x"
        results["exact"].append(row)
        print(line)
        sys.stdout.flush()
    mask_us, ref_us = mask_sampling_us(cfg, 256)
    results["mask_sampling_us"], results["mask_sampling_reference_us"] = mask_us, ref_us
    print(
        f"mask sampling, batch 256: {mask_us:.2f} us/sample; baseline: numpy's generator per image (the same masks) "
        f"{ref_us:.1f} us/sample -> {ref_us / mask_us:.0f}x (target <= 2 us: {'met' if mask_us <= 2 else 'MISSED'})"
    )
    if not args.skip_aer:
        from qmae_qiskit.train.qnn import AerFidelity

        backend = AerFidelity(cfg, seed=0)
        model, opt, images, idx = _setup(cfg, 1, backend)
        _step(model, opt, images, idx)
        times = []
        for _ in range(args.aer_repeats):
            t0 = time.perf_counter()
            _step(model, opt, images, idx)
            times.append(time.perf_counter() - t0)
        t_aer = statistics.median(times)
        best_exact = (
            min(v for r in results["exact"] for k, v in r.items() if k.startswith("exact_")) * 1e-6
            if results["exact"]
            else math.nan
        )
        results["aer_simulator"] = {
            "seconds_per_sample": t_aer,
            "gradient": backend.gradient_kind,
            "ratio_to_best_exact": t_aer / best_exact,
        }
        print(
            f"aer_simulator ({backend.gradient_kind} gradient), one sample: {t_aer:.2f} s per step "
            f"= {t_aer / best_exact:,.0f}x the best exact per-sample time"
        )
    if args.json:
        from qmae_qiskit.io import atomic_write_json

        atomic_write_json(args.json, results)
    return 0


if __name__ == "__main__":
    from _load import with_load

    raise SystemExit(with_load(main))
