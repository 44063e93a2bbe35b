"""`qmae-qiskit calibration snapshot|show`: freeze a backend's calibration as JSON, and look at one."""

from __future__ import annotations

import json
from pathlib import Path

import click

from qmae_qiskit.cli.app import QMAEGroup
from qmae_qiskit.cli.options import echo_json, json_option, out_dir_option
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.backends import AER_SIMULATOR, resolve_backend
from qmae_qiskit.hardware.calibration import load_snapshot, summary, write_snapshot


@click.group("calibration", cls=QMAEGroup)
def calibration_group() -> None:
    """Calibration snapshots (usable wherever --noise-model is accepted)."""


@calibration_group.command("snapshot")
@click.option("--backend", "backend_name", required=True, help="A fake backend (fake_torino, ...) or an IBM backend.")
@out_dir_option("Root folder; the file goes to <out>/<backend>/<UTC timestamp>.json.", default=Path("calibration"))
@json_option("the snapshot")
def snapshot_cmd(backend_name: str, out: Path, as_json: bool) -> None:
    """Write the backend's qubit, gate and readout calibration to a versioned JSON file."""

    if backend_name == AER_SIMULATOR:
        raise QMAEError("aer_simulator has no calibration; snapshot a fake or IBM backend (e.g. fake_torino)")
    path = write_snapshot(resolve_backend(backend_name), out)
    if as_json:
        echo_json(json.loads(path.read_text()))
        return
    click.echo(f"wrote {path}")


@calibration_group.command("show")
@click.argument("file", type=click.Path(path_type=Path))
@json_option("the summary")
def show_cmd(file: Path, as_json: bool) -> None:
    """Summarise a snapshot: source, times, T1/T2, gate and readout errors."""

    s = summary(load_snapshot(file))
    if as_json:
        echo_json(s)
        return

    def rng(st: dict | None, scale: float = 1.0, unit: str = "") -> str:
        if st is None:
            return "n/a"
        return (
            f"median {st['median'] * scale:.4g}{unit} (min {st['min'] * scale:.4g}, max {st['max'] * scale:.4g}, "
            f"{st['count']} values)"
        )

    click.echo(
        f"backend      {s['backend']} {s['backend_version'] or ''} ({s['num_qubits']} qubits, "
        f"{s['coupling_edges']} coupling edges)"
    )
    click.echo(f"source       {s['source']}")
    click.echo(f"taken at     {s['taken_at']}; calibrated {s['calibration_time'] or 'unknown'}")
    click.echo(f"basis gates  {', '.join(s['basis_gates'])}")
    click.echo(f"T1           {rng(s['t1_s'], 1e6, ' us')}")
    click.echo(f"T2           {rng(s['t2_s'], 1e6, ' us')}")
    for g, st in {**s["one_qubit_error"], **s["two_qubit_error"]}.items():
        click.echo(f"{g + ' error':12s} {rng(st)}")
    click.echo(f"readout err  {rng(s['readout_error'])}")
