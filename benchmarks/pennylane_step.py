"""One QMAE training step on the same 18-qubit SWAP-test circuit in PennyLane (lightning.qubit, adjoint
differentiation, mask-token gradients included), beside our Aer step measured in the same run.

PennyLane is an optional extra (``pip install qmae-qiskit[pennylane]``); without it this prints why and exits 0.
The PennyLane circuit is built gate for gate from :func:`qmae_qiskit.model.circuits.training_circuit` (RY, RZ, CX,
SWAP, CSWAP, H; the decoder's angles are -theta), and its <Z> is checked against the exact simulator.

    python benchmarks/pennylane_step.py [--repeats 2] [--default-qubit] [--json out.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import statistics
import time


def pennylane_available() -> str | None:
    """None if PennyLane and lightning.qubit import, else the reason they do not."""
    try:
        import pennylane as qml

        qml.device("lightning.qubit", wires=1)
    except Exception as exc:  # ImportError, or a device plugin that fails to load
        return f"{type(exc).__name__}: {exc}"
    return None


def build_qnode(cfg, diff_method: str = "adjoint", device: str = "lightning.qubit"):
    """``circuit(theta, xm_angles, xr_angles) -> <Z_ancilla>`` as a torch-interface QNode."""
    import pennylane as qml

    from qmae_qiskit.model.circuits import MASKED, REFERENCE, THETA, training_circuit

    qc = training_circuit(cfg)
    groups = {THETA: 0, MASKED: 1, REFERENCE: 2}
    gates = {"ry": qml.RY, "rz": qml.RZ, "cx": qml.CNOT, "swap": qml.SWAP, "cswap": qml.CSWAP, "h": qml.Hadamard}
    ops = []  # (gate, wires, None | (argument, index, scale, shift))
    for inst in qc.data:
        name = inst.operation.name
        if name not in gates:
            raise ValueError(f"no PennyLane gate for {name!r}")
        wires = [qc.find_bit(q).index for q in inst.qubits]
        param = None
        if inst.operation.params:
            expr = inst.operation.params[0]
            (p,) = expr.parameters
            scale = float(expr.gradient(p)) if hasattr(expr, "gradient") else 1.0
            shift = float(expr.bind({p: 0.0})) if hasattr(expr, "bind") else 0.0
            param = (groups[p.vector.name], p.index, scale, shift)
        ops.append((gates[name], wires, param))
    ancilla = qc.metadata["ancilla"]
    dev = qml.device(device, wires=qc.num_qubits)

    @qml.qnode(dev, diff_method=diff_method, interface="torch")
    def circuit(theta, xm, xr):
        args = (theta, xm, xr)
        for gate, wires, param in ops:
            if param is None:
                gate(wires=wires)
            else:
                arg, index, scale, shift = param
                value = args[arg][index]
                gate(value * scale + shift if (scale, shift) != (1.0, 0.0) else value, wires=wires)
        return qml.expval(qml.PauliZ(ancilla))

    return circuit


def pennylane_step(
    cfg, repeats: int = 2, seed: int = 0, device: str = "lightning.qubit", diff_method: str = "adjoint"
) -> tuple[float, float]:
    """(median seconds of one training step for one image, |<Z> - exact|): forward, backward to theta and the mask
    token (through the loader angles), Adam update, on ``device`` with ``diff_method``."""
    import torch

    circuit = build_qnode(cfg, diff_method=diff_method, device=device)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # else the torch interface hands lightning's float64 <Z> back as float32
    try:
        return _time_pennylane(cfg, circuit, repeats, seed)
    finally:
        torch.set_default_dtype(default)


def _time_pennylane(cfg, circuit, repeats: int, seed: int) -> tuple[float, float]:
    import torch

    from qmae_qiskit.model.loader import loader_angles
    from qmae_qiskit.model.masking import insert_token, sample_mask_indices
    from qmae_qiskit.simulate import exact
    from qmae_qiskit.train.models import init_theta, init_token

    g = torch.Generator().manual_seed(seed)
    image = torch.rand(1, cfg.image_size, cfg.image_size, generator=g, dtype=torch.float64)
    patch = sample_mask_indices(cfg, 0.25, [0], seed)
    theta = init_theta(cfg, "uniform", seed).requires_grad_()
    token = init_token(cfg, "uniform", seed).requires_grad_()
    opt = torch.optim.Adam([theta, token], lr=1e-3)
    xr = loader_angles(image.reshape(1, -1))[0].detach()

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        xm = insert_token(image, patch, cfg, token).reshape(1, -1)
        f = circuit(theta, loader_angles(xm)[0], xr)
        (1 - f).backward()
        opt.step()
        return float(f.detach())

    with torch.no_grad():
        xm = insert_token(image, patch, cfg, token).reshape(1, -1)
        want = float(exact.fidelity(theta, xm, image.reshape(1, -1), cfg)[0])
        got = float(circuit(theta, loader_angles(xm)[0], xr))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), abs(got - want)


def aer_step(cfg, repeats: int = 2, seed: int = 0) -> tuple[float, str]:
    """(median seconds, gradient kind) of our Aer training step for one image (EstimatorQNN + adjoint gradient)."""
    import torch

    from qmae_qiskit.model.masking import sample_mask_indices
    from qmae_qiskit.train.adam import Adam
    from qmae_qiskit.train.models import build_model, init_theta, init_token
    from qmae_qiskit.train.qnn import AerFidelity

    backend = AerFidelity(cfg, seed=seed)
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(1, cfg.image_size, cfg.image_size, generator=g, dtype=torch.float64)
    patch = sample_mask_indices(cfg, 0.25, [0], seed)
    model = build_model("qmae", cfg, init_theta(cfg, "uniform", seed), init_token(cfg, "uniform", seed), backend)
    opt = Adam(model.parameters(), lr=1e-3)  # the training loop's optimizer

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss, _ = model.loss(images, patch)
        loss.backward()
        opt.step()

    step()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), backend.gradient_kind


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument(
        "--default-qubit", action="store_true", help="also time default.qubit with backprop (PennyLane's default)"
    )
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    from qmae_qiskit.model.config import QMAEConfig

    cfg = QMAEConfig(image_size=args.image_size)
    t_aer, kind = aer_step(cfg, args.repeats)
    print(f"ours: aer_simulator step ({kind} gradient), one {cfg.n_circuit_qubits}-qubit sample: {t_aer:.3f} s")
    result: dict = {"aer_seconds": t_aer, "pennylane_seconds": None}
    missing = pennylane_available()
    if missing is not None:
        print(
            f"PennyLane lightning.qubit is not installed ({missing}); pip install 'qmae-qiskit[pennylane]' to compare"
        )
    else:
        t_pl, err = pennylane_step(cfg, args.repeats)
        result.update(pennylane_seconds=t_pl, pennylane_vs_exact=err)
        print(
            f"baseline: PennyLane lightning.qubit + adjoint, same circuit (|<Z> - exact| = {err:.1e}): {t_pl:.3f} s; "
            f"ours takes {t_aer / t_pl:.2f} of it (target <= 0.20: {'met' if t_aer <= t_pl / 5 else 'MISSED'})"
        )
        if args.default_qubit:
            t_dq, err_dq = pennylane_step(cfg, args.repeats, device="default.qubit", diff_method="backprop")
            result.update(default_qubit_seconds=t_dq, default_qubit_vs_exact=err_dq)
            print(
                f"baseline: PennyLane default.qubit + backprop, same circuit (|<Z> - exact| = {err_dq:.1e}): "
                f"{t_dq:.3f} s; ours takes {t_aer / t_dq:.2f} of it"
            )
    if args.json:
        from qmae_qiskit.io import atomic_write_json

        atomic_write_json(args.json, result)
    return 0


if __name__ == "__main__":
    from _load import with_load

    raise SystemExit(with_load(main))
