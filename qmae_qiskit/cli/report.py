"""`qmae-qiskit report depth`: transpiled depth, gate counts, layout and success estimate for a backend."""

from __future__ import annotations

from pathlib import Path

import click

from qmae_qiskit.cli.app import QMAEGroup
from qmae_qiskit.cli.options import (
    config_from_options,
    config_options,
    data_dir_option,
    echo_json,
    echo_written,
    images_option,
    json_option,
    mask_seed_option,
    optimization_level_option,
    out_dir_option,
    transpiler_seed_option,
)
from qmae_qiskit.cli.spellings import renamed
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.noise import backend_for_spec
from qmae_qiskit.model.approx_loader import LoaderSpec
from qmae_qiskit.reports.depth import comparable, depth_report, differences, load_report, regenerate, write_report
from qmae_qiskit.reports.loader_budget import spec_for_budget
from qmae_qiskit.reports.loader_frontier import FrontierSettings, frontier_for_run, write_frontier


@click.group("report", cls=QMAEGroup)
def report_group() -> None:
    """Reports on the circuits for a backend."""


@report_group.command("depth")
@click.option(
    "--backend",
    "backend_name",
    required=True,
    help="aer_simulator, a fake backend (fake_torino, fake_fez, ...), an IBM backend, or a snapshot JSON.",
)
@optimization_level_option
@transpiler_seed_option
@config_options
@out_dir_option("Folder for <backend>-O<level>.md and .json.", default=Path("circuits"))
@click.option(
    "--loader",
    "loader_text",
    default=None,
    help="Amplitude loader: 'exact' (RY tree, the default) or 'ladder:<layers>' (fitted approximate loader).",
)
@click.option(
    "--two-qubit-budget",
    type=int,
    default=None,
    help="Pick the best loader whose inverse-loader fidelity circuit has at most this many two-qubit gates here.",
)
@json_option("the depth report")
@renamed({"--seed": "--transpiler-seed"})
def depth_cmd(
    backend_name: str,
    optimization_level: int,
    seed_transpiler: int,
    out: Path,
    as_json: bool,
    loader_text: str | None,
    two_qubit_budget: int | None,
    **cfg_opts,
) -> None:
    """Transpile the SWAP-test, reconstruction and inverse-loader circuits; report depth, gates, layout, stages, ESP."""

    cfg = config_from_options(cfg_opts)
    if loader_text is not None and two_qubit_budget is not None:
        raise QMAEError("give either --loader or --two-qubit-budget, not both")
    spec = LoaderSpec.parse(loader_text) if loader_text is not None else None
    backend = backend_for_spec(backend_name)
    if two_qubit_budget is not None:
        choice = spec_for_budget(cfg, backend, two_qubit_budget, optimization_level, seed_transpiler)
        spec = choice.spec
        if not as_json:
            click.echo(
                f"budget {two_qubit_budget}: loader {spec.label} ({choice.two_qubit_gates} two-qubit gates in the "
                f"inverse-loader fidelity circuit)"
            )
    report = depth_report(cfg, backend, optimization_level, seed_transpiler, backend_name, spec)
    files = write_report(report, out)
    lines = []
    for kind, r in report["circuits"].items():
        t, esp = r["transpiled"], r["estimated_success_probability"]
        lines.append(
            f"{kind:15s} depth {t['depth']}, two-qubit depth {t['two_qubit_depth']}, "
            f"{t['two_qubit_gates']} two-qubit gates, ESP {'n/a' if esp is None else f'{esp:.3e}'}"
        )
    echo_written(report, as_json, "\n".join(lines), files)


@report_group.command("loaders")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--backend",
    "backend_names",
    multiple=True,
    required=True,
    help="Backend to count two-qubit gates on (repeatable): fake_torino, fake_fez, a snapshot JSON, ...",
)
@click.option(
    "--layers",
    default="0,2,4,6,8,10,12,14,16",
    show_default=True,
    help="Ladder depths to report, comma-separated, all even or all odd (one fit grows through them).",
)
@images_option(100, help="Test images (the first N).")
@optimization_level_option
@transpiler_seed_option
@mask_seed_option
@click.option("--stage-iter", type=click.IntRange(min=1), default=300, show_default=True, help="L-BFGS per stage.")
@data_dir_option("$QMAE_DATA_DIR, else the run's")
@out_dir_option("Folder for loader-frontier-L<size>.json and .md.", default=Path("circuits"))
@json_option("the frontier record")
@renamed({"--samples": "--images", "--seed": "--transpiler-seed"})
def loaders_cmd(
    run_dir: Path,
    backend_names: tuple[str, ...],
    layers: str,
    images: int,
    optimization_level: int,
    seed_transpiler: int,
    mask_seed: int,
    stage_iter: int,
    data_dir: Path | None,
    out: Path,
    as_json: bool,
) -> None:
    """Loading fidelity of approximate loaders against the two-qubit gates they cost, on RUN's test images."""

    try:
        depths = [int(v) for v in layers.split(",") if v.strip()]
    except ValueError:
        raise QMAEError(f"--layers must be comma-separated whole numbers, got {layers!r}") from None
    backends = [backend_for_spec(b) for b in backend_names]
    settings = FrontierSettings(tuple(depths), optimization_level, seed_transpiler, stage_iter)
    frontier = frontier_for_run(run_dir, backends, settings, images, mask_seed, data_dir)
    files = write_frontier(frontier, out)
    lines = []
    for row in frontier.rows:
        counts = ", ".join(f"{b} {c}" for b, c in row.two_qubit_gates.items())
        lines.append(
            f"{row.loader:10s} 2q gates: {counts}; loading fidelity masked {row.masked.mean:.4f} "
            f"(min {row.masked.min:.4f}), clean {row.clean.mean:.4f} (min {row.clean.min:.4f})"
        )
    echo_written(frontier, as_json, "\n".join(lines), files)


@report_group.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@json_option("the check's result")
def check_cmd(file: Path, as_json: bool) -> None:
    """Regenerate a depth report from the settings in FILE (.json) and fail if any number differs.

    Timings and the time stamp are ignored; versions are compared too, since numbers depend on them.
    """

    stored = load_report(file)
    backend = backend_for_spec(stored.get("backend_spec", stored["backend"]))
    diffs = differences(comparable(stored), comparable(regenerate(stored, backend)))
    if diffs:
        shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
        raise QMAEError(f"{file} does not regenerate equal: {shown}")
    if as_json:
        echo_json({"file": str(file), "identical": True, "differences": []})
        return
    click.echo(f"{file}: regenerated report is identical (timings and time stamp aside)")
