"""Per-sample gradient time on the QMAE training circuit: adjoint vs stock parameter shift vs the exact path.

    python benchmarks/gradient.py                 # 16x16 (18 qubits), parameter shift on a parameter subset
    python benchmarks/gradient.py --full          # parameter shift on every weight and masked-loader angle
    python benchmarks/gradient.py --json out.json # also write the numbers

What is timed, per sample, on the circuit transpiled for AerSimulator with the ancilla's Z mapped by its layout:

* forward: Aer ``EstimatorV2`` with precision 0 (what the aer_simulator training step runs);
* adjoint: :class:`~qmae_qiskit.simulate.adjoint.AdjointEstimatorGradient`, every circuit parameter (weights and both
  loaders' angles), after one warm-up call that parses the circuit;
* parameter shift: stock ``ParamShiftEstimatorGradient`` on the same Aer estimator, for the weights and the
  masked image's loader angles (what training needs: 420 + 255 at 16x16). Unless ``--full``, it runs on a
  random subset and is extrapolated linearly per parameter kind (a weight costs 4 circuits: it occurs in U and
  in U-dagger; a loader angle 2), and the output says so;
* exact: ``qmae_qiskit.simulate.exact.fidelity`` with autograd for theta and the mask token (batched, per sample).

The adjoint gradient is also checked against parameter shift on the measured subset.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from qiskit import transpile
from qiskit_aer import AerSimulator
from qiskit_aer.primitives import EstimatorV2
from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient

from qmae_qiskit.errors import one_line
from qmae_qiskit.export import random_instance
from qmae_qiskit.io import atomic_write_json
from qmae_qiskit.model.circuits import MASKED, REFERENCE, THETA, fidelity_observable, parameter_groups, training_circuit
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.loader import loader_angles
from qmae_qiskit.model.masking import insert_token
from qmae_qiskit.simulate import exact
from qmae_qiskit.simulate.adjoint import AdjointEstimatorGradient


def _timed(fn, repeat: int = 1) -> tuple[float, object]:
    """Best wall time of ``repeat`` calls and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _values(qc, instances) -> np.ndarray:
    groups = parameter_groups(qc)
    index = {p: i for i, p in enumerate(qc.parameters)}
    out = np.zeros((len(instances), qc.num_parameters))
    for b, inst in enumerate(instances):
        parts = {THETA: inst.theta, MASKED: loader_angles(inst.masked), REFERENCE: loader_angles(inst.clean)}
        for name, vals in parts.items():
            out[b, [index[p] for p in groups[name]]] = vals.numpy()
    return out


def run(image_size: int, samples: int, ps_weights: int, ps_inputs: int, full: bool, seed: int) -> dict:
    cfg = QMAEConfig(image_size=image_size)
    qc = training_circuit(cfg)
    isa = transpile(qc, AerSimulator(), optimization_level=1, seed_transpiler=seed)
    obs = fidelity_observable(qc.num_qubits).apply_layout(isa.layout)
    estimator = EstimatorV2(options={"default_precision": 0})
    instances = [random_instance(cfg, seed + s) for s in range(samples)]
    values = _values(isa, instances)
    groups = parameter_groups(isa)
    report: dict = {
        "config": cfg.model_dump(),
        "circuit": {"qubits": isa.num_qubits, "gates": isa.size(), "parameters": isa.num_parameters},
        "samples": samples,
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
    }
    print(
        f"QMAE {image_size}x{image_size}: {isa.num_qubits} qubits, {isa.size()} gates, "
        f"{isa.num_parameters} parameters; {samples} samples",
        flush=True,
    )

    # forward on Aer (exact)
    t_fwd, _ = _timed(lambda: estimator.run([(isa, obs, values)], precision=0).result())
    forward = t_fwd / samples

    # adjoint: all parameters
    grad = AdjointEstimatorGradient(estimator)
    t_parse, _ = _timed(lambda: grad.run([isa], [obs], values[:1]).result())
    t_adj, adj = _timed(lambda: grad.run([isa] * samples, [obs] * samples, values).result(), repeat=2)
    adjoint = t_adj / samples

    # stock parameter shift on one sample: a subset (or everything), extrapolated per kind
    rng = np.random.default_rng(seed)
    n_w, n_x = len(groups[THETA]), len(groups[MASKED])
    k_w, k_x = (n_w, n_x) if full else (min(ps_weights, n_w), min(ps_inputs, n_x))
    weights = [groups[THETA][i] for i in sorted(rng.choice(n_w, k_w, replace=False))]
    inputs = [groups[MASKED][i] for i in sorted(rng.choice(n_x, k_x, replace=False))]
    stock = ParamShiftEstimatorGradient(estimator)
    print(f"parameter shift on {k_w} of {n_w} weights and {k_x} of {n_x} masked-loader angles ...", flush=True)
    t_psw, res_w = _timed(lambda: stock.run([isa], [obs], values[:1], [weights]).result())
    t_psx, res_x = _timed(lambda: stock.run([isa], [obs], values[:1], [inputs]).result())
    param_shift = t_psw / k_w * n_w + t_psx / k_x * n_x
    cols = {p: i for i, p in enumerate(isa.parameters)}
    mine = adj.gradients[0]
    diff = max(
        np.abs(np.asarray(res_w.gradients[0]) - mine[[cols[p] for p in weights]]).max(),
        np.abs(np.asarray(res_x.gradients[0]) - mine[[cols[p] for p in inputs]]).max(),
    )

    # exact path with autograd (theta and token), the whole batch in one call as in exact training
    theta = instances[0].theta.clone().requires_grad_(True)
    token = instances[0].token.clone().requires_grad_(True)
    patches = torch.tensor([[i.patch] for i in instances])
    clean = torch.stack([i.clean for i in instances])

    def exact_step():
        theta.grad = token.grad = None
        masked = insert_token(clean.reshape(samples, image_size, image_size), patches, cfg, token)
        (1 - exact.fidelity(theta, masked.reshape(samples, -1), clean, cfg)).mean().backward()

    exact_step()  # warm-up
    t_exact, _ = _timed(exact_step, repeat=3)
    exact_per = t_exact / samples

    step_adjoint, step_ps = forward + adjoint, forward + param_shift
    report["seconds_per_sample"] = {
        "aer_forward": forward,
        "adjoint_gradient": adjoint,
        "adjoint_first_call_with_parse": t_parse,
        "param_shift_gradient": param_shift,
        "exact_forward_and_backward": exact_per,
        "aer_training_step_adjoint": step_adjoint,
        "aer_training_step_param_shift": step_ps,
    }
    report["param_shift"] = {
        "measured_weights": k_w,
        "measured_inputs": k_x,
        "total_weights": n_w,
        "total_inputs": n_x,
        "extrapolated": not full,
        "seconds_measured": t_psw + t_psx,
        "max_abs_difference_vs_adjoint": float(diff),
    }
    report["ratios"] = {
        "param_shift_over_adjoint_gradient": param_shift / adjoint,
        "param_shift_step_over_adjoint_step": step_ps / step_adjoint,
        "adjoint_over_exact": adjoint / exact_per,
    }
    report["targets"] = {
        "step_at_most_12s": step_adjoint <= 12.0,
        "at_least_20x_vs_param_shift": step_ps / step_adjoint >= 20,
    }

    how = "measured" if full else f"extrapolated from {k_w} weights + {k_x} angles"
    print(f"{'per sample':<42}{'seconds':>12}")
    print(f"{'Aer forward (precision 0)':<42}{forward:>12.4f}")
    print(f"{'adjoint gradient (all parameters)':<42}{adjoint:>12.4f}   (first call incl. parsing {t_parse:.3f} s)")
    print(f"{'stock parameter shift':<42}{param_shift:>12.2f}   ({n_w} weights + {n_x} masked-loader angles, {how})")
    print(f"{'exact path (torch, forward + autograd)':<42}{exact_per:>12.5f}")
    print(f"{'Aer training step with adjoint':<42}{step_adjoint:>12.4f}")
    print(f"{'Aer training step with parameter shift':<42}{step_ps:>12.2f}")
    print(
        f"ratios: parameter shift / adjoint gradient = {param_shift / adjoint:,.0f}x; "
        f"training step = {step_ps / step_adjoint:,.0f}x; adjoint / exact path = {adjoint / exact_per:,.1f}x"
    )
    print(f"adjoint vs parameter shift on the measured parameters: max |difference| = {diff:.1e}")
    print(
        f"targets: step <= 12 s: {report['targets']['step_at_most_12s']}; "
        f">= 20x vs parameter shift: {report['targets']['at_least_20x_vs_param_shift']}"
    )
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image-size", type=int, default=16, help="L (4, 8, 16, 32); default 16 (18 qubits)")
    ap.add_argument("--samples", type=int, default=4, help="samples per timed batch (default 4)")
    ap.add_argument("--ps-weights", type=int, default=12, help="weights measured by parameter shift (default 12)")
    ap.add_argument("--ps-inputs", type=int, default=8, help="masked-loader angles measured (default 8)")
    ap.add_argument("--full", action="store_true", help="parameter shift on every weight and angle (slow)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the report here (atomically)")
    args = ap.parse_args(argv)
    if args.samples < 1 or args.ps_weights < 1 or args.ps_inputs < 1:
        ap.error("--samples, --ps-weights and --ps-inputs must be at least 1")
    try:
        report = run(args.image_size, args.samples, args.ps_weights, args.ps_inputs, args.full, args.seed)
    except ValueError as exc:
        print(f"Error: {one_line(exc)}", file=sys.stderr)
        return 2
    if args.json:
        atomic_write_json(args.json, report)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    from _load import with_load

    raise SystemExit(with_load(main))
