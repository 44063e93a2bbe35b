"""Where the image-dependent scatter about the calibration line comes from, on a device's twin, without shot noise.

For every evaluated and calibration row of a budgeted study's design, the fidelity circuit's exact noisy value
(density matrix of the scheduled twin circuit, readout applied to the projector's qubits) is computed under the
twin's noise and under each part of it alone: readout errors; gate errors (depolarizing); thermal relaxation
(during gates and in the scheduled idle delays); gate errors and relaxation; and the whole noise with every channel
replaced by its Pauli twirl (what ideal gate twirling with infinitely many randomizations would leave). Each is
calibrated as ``cal`` does (affine fit on the K calibration rows only) and scored on the N evaluated rows, so the
table says what the calibration cannot remove even with infinitely many shots.

Then the floor a budget sets: binomial shot noise drawn on the whole-noise values (and on the reference circuits'
values: the clean image at both loaders, as ``ref`` runs them), with the shots a QPU budget buys for the fidelity
alone (``--budget`` seconds less a pilot, at the device's repetition delay and this circuit's duration), calibrated
with and without references for K = 10..60, 200 draws each: the best mean |error| either can reach.

The noise is rebuilt from the device's target with Aer's public ``basic_device_gate_errors`` /
``basic_device_readout_errors`` and explicit ``thermal_relaxation_error`` channels in the delays; the script
checks that the whole rebuilt noise gives the twin's own values (``NoiseModel.from_backend`` with its relaxation
pass) to 1e-9 before it reports anything.

    python results/hardware/scatter-sources/decompose.py results/hardware/qmae-L4 fake_marrakesh
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from qiskit import QuantumCircuit
from qiskit.quantum_info import PTM, SuperOp, pauli_basis
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel, QuantumError, pauli_error, thermal_relaxation_error
from qiskit_aer.noise.device import basic_device_gate_errors, basic_device_readout_errors
from qiskit_ibm_runtime.options_models import DynamicalDecouplingOptions

from qmae_qiskit.hardware.execution import Work
from qmae_qiskit.hardware.executors import make_executor
from qmae_qiskit.hardware.qpu_time import JOB_OVERHEAD_SECONDS, plan_work
from qmae_qiskit.hardware.schedule import decoupled
from qmae_qiskit.hardware.twin import make_twin, twin_simulator
from qmae_qiskit.model.circuits import parameter_values
from qmae_qiskit.simulate import exact
from qmae_qiskit.study.design import StudySpec, design

PARTS = {  # name: (readout, gate errors, thermal relaxation, Pauli-twirled)
    "whole twin noise": (True, True, True, False),
    "readout only": (True, False, False, False),
    "gate errors only (depolarizing)": (False, True, False, False),
    "relaxation only (gates and idle)": (False, False, True, False),
    "gate errors + relaxation": (False, True, True, False),
    "whole, every channel Pauli-twirled": (True, True, True, True),
}


def pauli_twirl(err: QuantumError) -> QuantumError:
    """The Pauli channel with the same Pauli fidelities (PTM diagonal) as ``err``."""
    n = err.num_qubits
    lam = np.diag(np.real(PTM(SuperOp(err)).data))
    basis = pauli_basis(n)
    probs = np.array([sum((1 if a.commutes(b) else -1) * lam[j] for j, b in enumerate(basis)) for a in basis])
    probs = np.clip(probs / 4**n, 0.0, None)
    probs /= probs.sum()
    return pauli_error([(b.to_label(), float(p)) for b, p in zip(basis, probs) if p > 1e-14])


def rebuilt(target, timed: QuantumCircuit, readout: bool, gates: bool, relax: bool, twirl: bool):
    """(noise model, circuit with explicit idle channels) for one part of the twin's noise."""
    noise = NoiseModel(basis_gates=list(target.operation_names))
    if gates or relax:
        for name, qubits, err in basic_device_gate_errors(target=target, gate_error=gates, thermal_relaxation=relax):
            noise.add_quantum_error(pauli_twirl(err) if twirl else err, name, qubits)
    if readout:
        for qubits, err in basic_device_readout_errors(target=target):
            noise.add_readout_error(err, qubits)
    circ = QuantumCircuit(*timed.qregs, *timed.cregs)
    for inst in timed.data:
        op = inst.operation
        if op.name != "delay":
            circ.append(inst)
            continue
        if relax:
            q = timed.find_bit(inst.qubits[0]).index
            seconds = op.duration * target.dt if op.unit == "dt" else op.duration
            assert op.unit in ("dt", "s"), op.unit
            props = target.qubit_properties[q]
            err = thermal_relaxation_error(props.t1, min(props.t2, 2 * props.t1), seconds)
            circ.append((pauli_twirl(err) if twirl else err).to_instruction(), inst.qubits)
    return noise, circ


def projector_values(
    noise: NoiseModel, circ: QuantumCircuit, values: np.ndarray, zloc: list[int], target, readout: bool = True
) -> np.ndarray:
    """Exact P(all projector qubits read 0) per row: density matrix diagonal weighted by the readout matrices."""
    body = circ.copy()
    body.save_density_matrix()
    sim = AerSimulator(method="density_matrix", noise_model=noise, fusion_threshold=1)
    bind = {p: values[:, j] for j, p in enumerate(body.parameters)}
    res = sim.run(body, parameter_binds=[bind], shots=1).result()
    ro = {q: np.eye(2) for q in zloc}
    for qubits, err in basic_device_readout_errors(target=target) if readout else []:
        if qubits[0] in ro:
            ro[qubits[0]] = np.asarray(err.probabilities)
    out = []
    for i in range(values.shape[0]):
        diag = np.real(np.diag(np.asarray(res.data(i)["density_matrix"])))
        idx = np.arange(diag.size)
        w = np.ones_like(diag)
        for q in zloc:
            w = w * ro[q][(idx >> q) & 1, 0]
        out.append(float(diag @ w))
    return np.array(out)


def budget_floor(args, d, task, ex, timed, target, zloc, F, m) -> dict:
    """Best mean |error| over K of calibration without and with references, shot noise drawn at the shots
    ``args.budget`` buys for the fidelity alone (one job; references double the circuits)."""
    p = d.prepared
    ca = p.loader_fits["clean"].angles if p.loader_fits else None
    angles = {} if ca is None else {"masked_angles": ca, "clean_angles": ca}
    ref_values = parameter_values(task.circuit, p.tm.theta, p.clean, p.clean, **angles)
    mr = projector_values(*rebuilt(target, timed, True, True, True, False), ref_values, zloc, target)
    with torch.no_grad():
        _, clean = p.loaded_states()
        Fr = exact.fidelity(p.tm.theta, clean, clean, p.tm.cfg).numpy()
    one = plan_work(Work({"f": replace(task, values=task.values[:1])}, shots=1000), ex.target)
    per_shot = (one.qpu_seconds - JOB_OVERHEAD_SECONDS) / 1000  # one circuit's seconds per shot

    def total(jobs: int) -> float:  # shots the budget buys with one fidelity job, or with a reference job too
        return (args.budget - args.pilot - jobs * JOB_OVERHEAD_SECONDS) / per_shot

    rng = np.random.default_rng(0)
    n = d.n_eval
    out = {"budget_s": args.budget, "pilot_s": args.pilot, "seconds_per_shot": per_shot, "total_shots": int(total(1))}
    for refs in (False, True):
        best = None
        for k in range(10, d.n_cal + 1, 5):
            shots = int(total(2 if refs else 1) / ((n + k) * (2 if refs else 1)))
            rows = np.r_[np.arange(n), n + np.arange(k)]
            errs = []
            for _ in range(200):
                y = rng.binomial(shots, np.clip(m[rows], 0, 1)) / shots
                cols = [F[rows]]
                if refs:
                    cols += [rng.binomial(shots, np.clip(mr[rows], 0, 1)) / shots, Fr[rows]]
                X = np.stack([*cols, np.ones(rows.size)], 1)
                coef, *_ = np.linalg.lstsq(X[n:], y[n:], rcond=None)
                est = (y[:n] - X[:n, 1:] @ coef[1:]) / coef[0]
                errs.append(np.abs(est - F[:n]).mean())
            if best is None or np.mean(errs) < best["mean_abs_error"]:
                best = {"calibration_images": k, "shots": shots, "mean_abs_error": float(np.mean(errs))}
        out["with_references" if refs else "without_references"] = best
        print(f"floor at {args.budget:g} QPU s, references {'on' if refs else 'off'}: {best}", flush=True)
    return out


def markdown(args, d, task, gap: float, rows: dict, floor: dict) -> str:
    """The report: settings, the parts table and the budget's floor (markdown: an analysis, not a record)."""
    gates = sum(1 for i in task.circuit.data if i.operation.num_qubits == 2)
    lines = [
        f"# Scatter sources: {args.run} on {args.backend}",
        "",
        f"`python results/hardware/scatter-sources/decompose.py {args.run} {args.backend}"
        + (f" --spec '{args.spec}'" if args.spec != "{}" else "")
        + (f" --dd {args.dd}" if args.dd else "")
        + f"` ({d.n_eval} evaluated images, {d.n_cal} calibration images, {gates} two-qubit gates; the rebuilt "
        f"whole noise equals the twin's to {gap:.1e}).",
        "",
        "Without shot noise, calibrated as `cal` (affine fit on the calibration rows only):",
        "",
        "| noise | slope | mean abs error | scatter std (fidelity units) |",
        "|---|---:|---:|---:|",
        *(f"| {k} | {v['slope']:.3f} | {v['mean_abs_error']:.4f} | {v['scatter_std']:.4f} |" for k, v in rows.items()),
        "",
        f"With shot noise, the fidelity alone at {floor['budget_s']:g} QPU s ({floor['pilot_s']:g} s pilot): "
        f"{floor['total_shots']:,} shots at {floor['seconds_per_shot'] * 1e6:.1f} µs each; best over K of 200 draws:",
        "",
        "| references | K | shots per circuit | mean abs error |",
        "|---|---:|---:|---:|",
        *(
            f"| {'on' if k == 'with_references' else 'off'} | {floor[k]['calibration_images']} | "
            f"{floor[k]['shots']:,} | {floor[k]['mean_abs_error']:.4f} |"
            for k in ("without_references", "with_references")
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("backend")
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--calibration-images", type=int, default=60)
    ap.add_argument("--spec", default="{}", help='more study settings as JSON, e.g. {"loader": "ladder:6"}')
    ap.add_argument("--budget", type=float, default=600.0, help="QPU seconds for the shot-noise floor")
    ap.add_argument("--pilot", type=float, default=13.0, help="QPU seconds a pilot spends of it")
    ap.add_argument("--dd", choices=["XX", "XpXm", "XY4"], help="the runtime's dynamical decoupling on the circuit")
    ap.add_argument("--out", default=str(Path(__file__).parent))
    args = ap.parse_args()
    spec = StudySpec.model_validate(
        {
            "run": args.run,
            "backend": args.backend,
            "samples": args.images,
            "methods": "raw",
            "shots": 1000,
            "calibration_images": args.calibration_images,
            "metrics": "fidelity",
            **json.loads(args.spec),
        }
    )
    ex = make_executor(spec.backend, spec.noise_model, spec.execution.idle)
    d = design(spec, ex)
    task = d.work.tasks["fidelity/raw"]
    twin = make_twin(ex.device, task.circuit)
    sim = twin_simulator(twin, 0, ex.idle)
    dd = DynamicalDecouplingOptions(enable=args.dd is not None, sequence_type=args.dd or "XX")
    timed = sim.timed(decoupled(twin.circuit, sim, dd))
    target = twin.backend.target
    zq = sorted({q for lab in task.observable.paulis for q, c in enumerate(reversed(lab.to_label())) if c == "Z"})
    zloc = [twin.physical.index(q) for q in zq]
    tm = d.prepared.tm
    masked, clean = d.prepared.loaded_states()
    with torch.no_grad():
        F = exact.fidelity(tm.theta, masked, clean, tm.cfg).numpy()
    n = d.n_eval
    # the twin's own noise, as the study's simulator builds it, for the cross-check
    own = projector_values(NoiseModel.from_backend(twin.backend), timed, task.values, zloc, target)
    rows = {}
    for name, (readout, gates, relax, twirl) in PARTS.items():
        m = projector_values(*rebuilt(target, timed, readout, gates, relax, twirl), task.values, zloc, target, readout)
        if name == "whole twin noise":
            gap = float(np.max(np.abs(m - own)))
            assert gap < 1e-9, f"the rebuilt noise is not the twin's: max difference {gap:.2e}"
        slope, icept = np.polyfit(F[n:], m[n:], 1)
        est = (m - icept) / slope
        line = np.polyfit(F, m, 1)
        rows[name] = {
            "slope": float(slope),
            "intercept": float(icept),
            "mean_abs_error": float(np.abs(est[:n] - F[:n]).mean()),
            "scatter_std": float(np.std((m - np.polyval(line, F)) / line[0])),
        }
        print(
            f"{name:36s} slope {slope:.3f}  mean |error| {rows[name]['mean_abs_error']:.4f}  "
            f"scatter {rows[name]['scatter_std']:.4f}",
            flush=True,
        )
    floor = budget_floor(args, d, task, ex, timed, target, zloc, F, own)
    size = tm.cfg.image_size
    tag = "-".join(f"{k}-{v}" for k, v in sorted(json.loads(args.spec).items())).replace(":", "")
    tag += f"-dd-{args.dd}" if args.dd else ""
    out = Path(args.out) / f"scatter-{args.backend}-L{size}{'-' + tag if tag else ''}.md"
    out.write_text(markdown(args, d, task, gap, rows, floor))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
