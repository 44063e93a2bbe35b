"""`qmae-qiskit circuit`: export the training and reconstruction circuits."""

from __future__ import annotations

from pathlib import Path

import click

from qmae_qiskit.cli.options import config_from_options, config_options, echo_json, json_option, out_dir_option
from qmae_qiskit.cli.spellings import QMAECommand
from qmae_qiskit.export import export_circuits


@click.command("circuit", cls=QMAECommand)
@config_options
@out_dir_option("Folder for the QPY / OpenQASM 3 files.", default=Path("circuits"))
@click.option(
    "--bind-seed",
    type=int,
    default=None,
    help="Also bind random theta, mask token and image pair from this seed, with the exact fidelity.",
)
@json_option("the export report")
def circuit_cmd(out: Path, bind_seed: int | None, as_json: bool, **cfg_opts) -> None:
    """Export the SWAP-test training circuit and the reconstruction circuit (QPY and OpenQASM 3)."""

    cfg = config_from_options(cfg_opts)
    report = export_circuits(cfg, out, bind_seed)
    if as_json:
        echo_json(report)
        return
    for kind, info in report["circuits"].items():
        gates = ", ".join(f"{k}={v}" for k, v in info["gate_counts"].items())
        click.echo(
            f"{kind:15s} {info['num_qubits']} qubits, depth {info['depth']}, "
            f"{info['num_parameters']} parameters; {gates}"
        )
        for f in info["files"]:
            click.echo(f"  wrote {f}")
    if "bound" in report:
        b = report["bound"]
        click.echo(f"bound (seed {b['seed']}): exact fidelity <Z_q{b['ancilla']}> = {b['fidelity']:.12f}")
        for f in b["files"]:
            click.echo(f"  wrote {f}")
