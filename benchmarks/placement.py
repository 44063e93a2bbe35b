"""Expected error of the 8x8 inverse-loader circuit with Qiskit's own layout (the baseline) and with noise-aware
placement, on each device named; the time each takes.

    python benchmarks/placement.py results/hardware/qmae-L8 --loader ladder:6 --optimization-level 3 \
        --backend fake_torino --backend fake_sherbrooke
"""

from __future__ import annotations

import json
import time

import click

from qmae_qiskit.evaluate.prepare import logical_circuits
from qmae_qiskit.hardware import DEFAULT_TRANSPILER_SEED
from qmae_qiskit.hardware.backends import resolve_backend
from qmae_qiskit.hardware.placement import place
from qmae_qiskit.hardware.transpile import two_qubit_count
from qmae_qiskit.train.runs import load_trained


@click.command()
@click.argument("run")
@click.option("--loader", default=None)
@click.option("--optimization-level", type=int, default=3)
@click.option("--transpiler-seed", type=int, default=DEFAULT_TRANSPILER_SEED)
@click.option("--backend", "backends", multiple=True, default=["fake_torino", "fake_sherbrooke"])
def main(run: str, loader: str | None, optimization_level: int, transpiler_seed: int, backends: tuple[str, ...]):
    tm = load_trained(run)
    circuit, _, _ = logical_circuits(tm, "inverse", loader)
    rows = []
    for name in backends:
        backend = resolve_backend(name)
        for placement in ("qiskit", "noise-aware"):
            t0 = time.perf_counter()
            placed = place(circuit, backend, optimization_level, transpiler_seed, placement)
            rows.append(
                {
                    "backend": name,
                    "placement": placement,
                    **placed.score.as_dict(),
                    "two_qubit_gates": two_qubit_count(placed.isa),
                    "qubits": placed.layout,
                    "matches": placed.candidates,
                    "seconds": round(time.perf_counter() - t0, 2),
                }
            )
            r = rows[-1]
            click.echo(
                f"{name:>16} {placement:>11}: score {r['score']:.3f} success {r['success']:.4f} "
                f"(gates {r['gates']:.3f} readout {r['readout']:.3f} idle {r['idle']:.3f}) "
                f"2q {r['two_qubit_gates']} qubits {r['qubits']} matches {r['matches']} {r['seconds']} s"
            )
    click.echo(json.dumps(rows))


if __name__ == "__main__":
    main()
