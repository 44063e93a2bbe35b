"""`qmae-qiskit report depth`: transpiled depth, gate counts, layout and success estimate for a backend."""

from __future__ import annotations

import json
from pathlib import Path

import click

from qmae_qiskit.cli.app import main
from qmae_qiskit.cli.options import config_from_options, config_options


@main.group("report")
def report_group() -> None:
    """Reports on the circuits for a backend."""


@report_group.command("depth")
@click.option(
    "--backend",
    "backend_name",
    required=True,
    help="aer_simulator, a fake backend (fake_torino, fake_fez, ...), an IBM backend, or a snapshot JSON.",
)
@click.option(
    "--optimization-level", type=click.IntRange(0, 3), default=1, show_default=True, help="Preset pass manager level."
)
@click.option("--seed", type=int, default=1234, show_default=True, help="seed_transpiler (same seed, same report).")
@config_options
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("circuits"),
    show_default=True,
    help="Folder for <backend>-O<level>.md and .json.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of the summary.")
def depth_cmd(backend_name: str, optimization_level: int, seed: int, out: Path, as_json: bool, **cfg_opts) -> None:
    """Transpile the SWAP-test and reconstruction circuits; report depth, gates, layout, per-stage split, ESP."""
    from qmae_qiskit.hardware.depth import depth_report, write_report
    from qmae_qiskit.hardware.noise import backend_for_spec

    cfg = config_from_options(cfg_opts)
    backend = backend_for_spec(backend_name)
    report = depth_report(cfg, backend, optimization_level, seed, backend_name)
    files = write_report(report, out)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for kind, r in report["circuits"].items():
        t = r["transpiled"]
        esp = r["estimated_success_probability"]
        click.echo(
            f"{kind:15s} depth {t['depth']}, two-qubit depth {t['two_qubit_depth']}, "
            f"{t['two_qubit_gates']} two-qubit gates, ESP {'n/a' if esp is None else f'{esp:.3e}'}"
        )
    for f in files:
        click.echo(f"wrote {f}")


@report_group.command("check")
@click.argument("file", type=click.Path(path_type=Path))
def check_cmd(file: Path) -> None:
    """Regenerate a depth report from the settings in FILE (.json) and fail if any number differs.

    Timings and the time stamp are ignored; versions are compared too, since numbers depend on them.
    """
    from qmae_qiskit.errors import QMAEError
    from qmae_qiskit.hardware.depth import comparable, differences, load_report, regenerate
    from qmae_qiskit.hardware.noise import backend_for_spec

    stored = load_report(file)
    backend = backend_for_spec(stored.get("backend_spec", stored["backend"]))
    diffs = differences(comparable(stored), comparable(regenerate(stored, backend)))
    if diffs:
        shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
        raise QMAEError(f"{file} does not regenerate equal: {shown}")
    click.echo(f"{file}: regenerated report is identical (timings and time stamp aside)")
