"""The local twin against today's local testing mode: 20 test images at 8x8 on fake_torino (target >= 5x faster).

    python benchmarks/twin.py [RUN] [--backend fake_torino] [--images 20] [--shots 4000] [--json out.json]

RUN is a trained 8x8 run folder (default: results/hardware/qmae-L8 if present, else a QMAE trained here on
the exact path in a few seconds). Both paths run the same work -- the inverse-loader fidelity circuit
(Estimator) and the reconstruction circuit (Sampler), transpiled once against the whole device at O1, one row of
parameter values per image -- and report wall time and the mean |estimate - exact| of the fidelity:

* baseline, "local testing mode": qiskit-ibm-runtime's legacy ``EstimatorV2`` / ``SamplerV2`` with the fake
  device as mode (deprecated since 0.50; what `submit` used before the twin). It ignores mitigation options.
* the twin at resilience level 0 (the same physics: no mitigation), and at level 1 (TREX), which the legacy
  path cannot do locally at all.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def _run_folder(arg: Path | None, data_dir: Path) -> Path:
    if arg is not None:
        return arg
    committed = REPO / "results" / "hardware" / "qmae-L8"
    if committed.is_dir():
        return committed
    from qmae_qiskit.model.config import QMAEConfig
    from qmae_qiskit.train.runs import RunSettings
    from qmae_qiskit.train.training import TrainOptions, train

    out = Path(tempfile.mkdtemp()) / "qmae-L8"
    settings = RunSettings(config=QMAEConfig(image_size=8), epochs=5, train_samples=1000, batch_size=64)
    train(settings, out, None, TrainOptions(progress=False, plot=False), data_dir=data_dir)
    return out


def legacy_local_mode(device, work) -> tuple[np.ndarray, float]:
    """The deprecated primitives in local testing mode on the same ISA circuits; (fidelities, seconds)."""
    from qiskit_ibm_runtime import EstimatorV2, SamplerV2

    fid, rec = work.tasks["fidelity"], work.tasks["reconstruction"]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # this benchmark runs the deprecated path on purpose
        warnings.simplefilter("ignore", UserWarning)
        est = EstimatorV2(mode=device, options={"default_shots": work.shots, "simulator": {"seed_simulator": 1}})
        samp = SamplerV2(mode=device, options={"default_shots": work.shots, "simulator": {"seed_simulator": 1}})
        values = np.asarray(est.run([(fid.circuit, fid.observable, fid.values)]).result()[0].data.evs)
        samp.run([(rec.circuit, rec.values)]).result()
    return values.reshape(-1), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, nargs="?", default=None)
    ap.add_argument("--backend", default="fake_torino")
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--shots", type=int, default=4000)
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("QMAE_DATA_DIR", "data")))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from dataclasses import replace

    from qmae_qiskit.data import load_split
    from qmae_qiskit.evaluate.prepare import outputs, prepare
    from qmae_qiskit.hardware.executors import make_executor
    from qmae_qiskit.hardware.mitigation import parse_mitigation
    from qmae_qiskit.hardware.spec import ExecutionSpec
    from qmae_qiskit.simulate import exact
    from qmae_qiskit.train.runs import load_trained

    run = _run_folder(args.run, args.data_dir)
    tm = load_trained(run)
    data = load_split(args.data_dir, "test", tm.cfg.image_size, limit=args.images)
    twin = make_executor(args.backend)
    prep = prepare(tm, data, ExecutionSpec(backend=args.backend, shots=args.shots, seed=1), twin)
    with torch.no_grad():
        want = exact.fidelity(tm.theta, prep.x_masked, prep.clean, tm.cfg).numpy()
    rows: dict[str, dict] = {}

    values, seconds = legacy_local_mode(twin.target, prep.work)
    rows["local testing mode (legacy EstimatorV2 + SamplerV2)"] = {"seconds": seconds, "values": values}
    for level in (0, 1):
        work = replace(prep.work, mitigation=parse_mitigation(f"resilience_level={level}"))
        t0 = time.perf_counter()
        _, fids = outputs(prep, twin.run(work).result())
        rows[f"twin, resilience level {level}"] = {"seconds": time.perf_counter() - t0, "values": fids.numpy()}

    base = rows["local testing mode (legacy EstimatorV2 + SamplerV2)"]["seconds"]
    print(
        f"{args.images} test images, {tm.cfg.image_size}x{tm.cfg.image_size} QMAE ({run}), {args.backend}, "
        f"{args.shots} shots, inverse-loader fidelity + reconstruction; exact mean fidelity {want.mean():.4f}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    )
    print(f"  {'path':52s} {'seconds':>8s} {'speed-up':>9s} {'mean est.':>10s} {'mean |err|':>10s}")
    for name, r in rows.items():
        print(
            f"  {name:52s} {r['seconds']:8.1f} {base / r['seconds']:8.1f}x {r['values'].mean():10.4f} "
            f"{np.abs(r['values'] - want).mean():10.4f}"
        )
    level0 = rows["twin, resilience level 0"]["seconds"]
    print(f"  twin (level 0) vs local testing mode: {base / level0:.1f}x (target >= 5x)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    k: {
                        "seconds": v["seconds"],
                        "mean_estimate": float(v["values"].mean()),
                        "mean_abs_error": float(np.abs(v["values"] - want).mean()),
                    }
                    for k, v in rows.items()
                }
                | {"exact_mean": float(want.mean())},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    from _load import with_load

    raise SystemExit(with_load(main))
