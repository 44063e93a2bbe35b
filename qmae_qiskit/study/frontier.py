"""`study frontier`: a device's estimate error against the two-qubit-gate budget of the hardware circuit.

Each point is a noise study (:mod:`qmae_qiskit.study.noise`) with one approximate loader: fewer two-qubit gates mean
less noise but a coarser loading of the images, and every study compares with the paper circuit's exact values,
so both costs show. A user reads off which budget a device can afford.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from qmae_qiskit.evaluate.device_choice import refuse_choice
from qmae_qiskit.figures import pyplot, save_figure
from qmae_qiskit.hardware.executors import make_executor
from qmae_qiskit.hardware.qpu_fields import QPUEstimate, plan_fields
from qmae_qiskit.hardware.qpu_time import combine, plan_each
from qmae_qiskit.io import atomic_write_text
from qmae_qiskit.records import Record, save_record
from qmae_qiskit.study.design import StudySpec, design, updated
from qmae_qiskit.study.noise import run_designed
from qmae_qiskit.study.record import NoiseStudy

if TYPE_CHECKING:
    from qmae_qiskit.hardware.qpu_time import QPUPlan


class Frontier(QPUEstimate, Record):
    """frontier-<backend>-L<size>.json: per loader, the circuit's two-qubit gates and each method's errors."""

    SCHEMA: ClassVar[str] = "qmae-qiskit/noise-frontier"
    VERSION: ClassVar[int] = 1
    WHAT: ClassVar[str] = "noise frontier"

    backend: str
    config: dict[str, Any]
    spec: dict[str, Any]
    points: list[dict[str, Any]]
    # QPUEstimate: every study's plan, summed


def point(study: NoiseStudy) -> dict[str, Any]:
    """The frontier's row for one study."""
    loading = study.loading or {}
    return {
        "loader": loading.get("loader", "exact"),
        "two_qubit_gates": study.two_qubit_gates,
        "loading_fidelity_masked": loading.get("masked", {}).get("mean", 1.0),
        "loading_fidelity_clean": loading.get("clean", {}).get("mean", 1.0),
        "exact_fidelity": study.exact["fidelity"],
        "methods": {
            name: {
                "mean_abs_error": a["fidelity"]["mean_abs_error"],
                "bias": a["fidelity"]["bias"],
                "rms_error": a["fidelity"]["rms_error"],
                "cs_mean_abs_error": a["cs"]["mean_abs_error"] if "cs" in a else None,
            }
            for name, a in study.aggregates.items()
        },
        "seconds": study.seconds.get("total"),
        "qpu_seconds_estimate": study.qpu_seconds_estimate,
    }


def run_frontier(
    spec: StudySpec, loaders: list[str], client: Any = None, say: Callable[[str], None] | None = None
) -> Frontier | QPUPlan:
    """One study per loader (the spec's own loader is ignored), on a local backend. Every study is designed
    first and, on a device's twin, their QPU plans, summed, go to ``say`` (or are refused by the spec's cap)
    before any runs; a dry run returns that plan and runs and writes nothing."""

    refuse_choice(spec.backend, "study frontier")
    spec = spec.on_planned_backend(say)
    executor = make_executor(spec.backend, spec.noise_model, spec.execution.idle)
    assert not executor.remote, "a frontier runs on a local backend"
    designs = []
    for loader in loaders:
        t0 = time.perf_counter()
        designs.append((design(updated(spec, loader=None if loader == "exact" else loader), executor), t0))
    plans = plan_each([d.work for d, _ in designs], executor, spec.budget, say)
    total = None if plans[0] is None else combine([p for p in plans if p is not None])
    if spec.budget.dry_run:
        assert total is not None  # plan_each refuses a dry run off a device
        return total
    points, config = [], {}
    for (d, t0), plan in zip(designs, plans, strict=True):
        study = run_designed(d, executor, plan, Path("jobs"), client, t0)
        assert not isinstance(study, str), "a frontier runs on a local backend"
        points.append(point(study))
        config = study.config
    points.sort(key=lambda p: p["two_qubit_gates"])
    return Frontier(
        backend=spec.backend,
        config=config,
        spec=spec.model_dump(),
        points=points,
        **plan_fields(total),
    )


def to_markdown(frontier: Frontier) -> str:
    methods = list(frontier.points[0]["methods"]) if frontier.points else []
    s = frontier.spec
    lines = [
        f"# Estimate error against the two-qubit-gate budget: {frontier.backend}",
        "",
        f"{s['samples']} test images, {s['shots']} shots, {s['calibration_images']} calibration images, O"
        f"{s['optimization_level']}; each row is a noise study whose hardware circuits use that loader, "
        "compared with the paper circuit's exact fidelity.",
        "",
        "| loader | two-qubit gates | loading fidelity (masked / clean) | "
        + " | ".join(f"{m} mean abs err" for m in methods)
        + " | seconds |",
        "|---|---:|---|" + "---:|" * len(methods) + "---:|",
    ]
    for p in frontier.points:
        errs = " | ".join(f"{p['methods'][m]['mean_abs_error']:.4f}" for m in methods)
        lines.append(
            f"| {p['loader']} | {p['two_qubit_gates']} | {p['loading_fidelity_masked']:.4f} / "
            f"{p['loading_fidelity_clean']:.4f} | {errs} | {p['seconds'] or 0:.0f} |"
        )
    return "\n".join(lines) + "\n"


def figure(frontier: Frontier, path: Path) -> Path:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    gates = [p["two_qubit_gates"] for p in frontier.points]
    for m in frontier.points[0]["methods"]:
        ax.plot(gates, [p["methods"][m]["mean_abs_error"] for p in frontier.points], "o-", label=m)
    ax.set_yscale("log")
    ax.set_xlabel("two-qubit gates of the fidelity circuit (transpiled)")
    ax.set_ylabel("mean |estimate - exact| (fidelity)")
    ax.set_title(f"{frontier.backend}: error against budget")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def write_frontier(frontier: Frontier, out: Path) -> list[Path]:
    out = Path(out)
    return [
        save_record(frontier, out),
        atomic_write_text(out.with_suffix(".md"), to_markdown(frontier)),
        figure(frontier, out.with_suffix(".png")),
    ]
