"""Depth reports: what the QMAE circuits cost on a backend once transpiled, whole and stage by stage.

Whole-circuit numbers are of the circuit transpiled in one go -- the circuit you would actually run. For the
per-stage split each stage (embedding, encoder, trash reset, decoder, SWAP test or measurement) is cut from that
same logical circuit by instruction ranges and transpiled alone with the same pass manager and seed, starting
on the physical qubits where the previous stage left them (stage 1 starts on the whole circuit's initial layout).
No barriers are inserted, so the whole-circuit optimization is untouched; the stage sums can differ from the
whole because optimization does not cross stage boundaries when stages are transpiled alone.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar

from qiskit.circuit import QuantumCircuit
from qiskit.providers import BackendV2

from qmae_qiskit.hardware.transpile import (
    DEFAULT_SEED,
    check_level,
    final_physical,
    initial_physical,
    timed_transpile,
    two_qubit_count,
    two_qubit_depth,
)
from qmae_qiskit.io import atomic_write_text
from qmae_qiskit.model import circuits as C
from qmae_qiskit.model.approx_loader import LoaderSpec, as_spec
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.records import Record, legacy_provenance, load_record, save_record

TITLES = {
    "training": "SWAP-test training circuit (Estimator; the paper's fidelity circuit)",
    "reconstruction": "Reconstruction circuit (Sampler)",
    "inverse_fidelity": "Inverse-loader fidelity circuit (Estimator; `submit --fidelity-circuit inverse`, "
    "n + t qubits)",
}
VOLATILE_KEYS = ("transpile_seconds", "created_at", "command", "git_commit", "python")  # differ run to run
TRANSPILE_PACKAGES = ("qiskit", "qiskit-aer", "qiskit-ibm-runtime")  # versions the numbers depend on: compared


class DepthReport(Record):
    """A depth report (``report depth``): whole-circuit and per-stage costs of the QMAE circuits on a backend."""

    SCHEMA: ClassVar[str] = "qmae-qiskit/depth-report"
    VERSION: ClassVar[int] = 2
    WHAT: ClassVar[str] = "depth report"

    backend: str
    backend_spec: str
    backend_num_qubits: int | None
    optimization_level: int
    seed_transpiler: int | None
    config: dict[str, Any]
    method: dict[str, str]
    circuits: dict[str, Any]
    loader: dict[str, Any] | None = None  # absent for the exact RY tree (reports made before loaders existed)
    OMITTED_WHEN_EMPTY: ClassVar[tuple[str, ...]] = ("loader",)

    @classmethod
    def upgrade(cls, raw: dict[str, Any], version: int | None) -> dict[str, Any] | None:
        """Version 1 kept ``versions`` and ``generated_at`` at the top level; they move into the provenance."""
        if version != 1 or raw.get("schema") != cls.SCHEMA:
            return None
        out = {k: v for k, v in raw.items() if k not in ("versions", "generated_at")}
        prov = legacy_provenance(raw.get("generated_at"), raw.get("versions"))
        out.update(schema_version=cls.VERSION, provenance=prov)
        return out


LOADER_METHOD = (
    "Approximate amplitude loader: a fixed RY/CX ladder (qmae_qiskit.model.approx_loader) whose angles are fitted "
    "per image; every circuit here loads both images with it, so one transpiled circuit serves all images. Each "
    "image's loading fidelity is reported where the angles are fitted (fit_loader), not here."
)

ESP_METHOD = (
    "Estimated success probability = product over every gate of the transpiled circuit of (1 - error of that "
    "gate on those physical qubits) x product over measured qubits of (1 - readout error), errors from the "
    "backend target's calibrated InstructionProperties.error (missing errors count as 0). For the SWAP-test "
    "circuit (run with the Estimator, no measure instruction) the measured qubit is the ancilla, for the "
    "inverse-loader circuit the data qubits. Idle "
    "decoherence (T1/T2) and crosstalk are not included, so this is an optimistic figure."
)
PARAM_METHOD = (
    "Circuits are transpiled with their parameters unbound, as `submit` runs them (values are bound per image at "
    "run time), so the optimizer cannot exploit particular angles (e.g. a zero rotation)."
)
STAGE_METHOD = (
    "Whole-circuit numbers: the full circuit transpiled in one go (what would run). Per stage: the stage's "
    "instructions cut from the same logical circuit, each transpiled alone with the same pass manager and seed, "
    "stage 1 on the whole circuit's initial layout and each later stage on the final layout of the one before; "
    "no barriers are added, and stage sums may differ from the whole because optimization does not cross stages. "
    "A stage with 0 gates (the trash-reset SWAPs at O2/O3) was turned by the transpiler into a relabelling of "
    "qubits (ElidePermutations), visible in the final column of the layout."
)


# ----------------------------------------------------------------------------------------------- the stages
def stage_sizes(cfg: QMAEConfig, kind: str, loader_spec: LoaderSpec | str | None = None) -> list[tuple[str, int]]:
    """How many instructions of the logical circuit belong to each stage, in circuit order.

    The builders compose the parts inline and in this order (see :mod:`qmae_qiskit.model.circuits`), so instruction
    ranges recover the stages of the real circuit exactly; :func:`split_stages` checks the total. ``loader_spec``
    is the loader the circuit was built with (default: the exact RY tree).
    """
    enc = C.encoder(cfg, light_cone=kind != "training")
    loader = len(C.embedding(cfg, loader=loader_spec).data)
    body = [
        ("encoder", len(enc.data)),
        ("trash reset", len(C.trash_reset(cfg).data)),
        ("decoder", len(C.decoder(cfg, enc).data)),
    ]
    if kind == "training":
        return [("embedding", 2 * loader), *body, ("swap test", len(C.swap_test(cfg.n_qubits).data))]
    if kind == "inverse_fidelity":
        return [("embedding", loader), *body, ("inverse embedding", loader)]
    return [("embedding", loader), *body, ("measurement", cfg.n_qubits)]


def split_stages(qc: QuantumCircuit, sizes: list[tuple[str, int]]) -> list[tuple[str, QuantumCircuit]]:
    if sum(s for _, s in sizes) != len(qc.data):
        raise RuntimeError(f"stage sizes {sizes} do not add up to the {len(qc.data)} instructions of {qc.name}")
    out, start = [], 0
    for name, size in sizes:
        part = qc.copy_empty_like(name=name)
        for instr in qc.data[start : start + size]:
            part.append(instr)
        out.append((name, part))
        start += size
    return out


# ------------------------------------------------------------------------------------------------- metrics
def _error(backend: BackendV2, name: str, qargs: tuple[int, ...]) -> float | None:
    target = backend.target
    if name not in target.operation_names:
        return None
    props = target[name].get(qargs) if target[name] is not None else None
    return None if props is None else props.error


def success_probability(isa: QuantumCircuit, backend: BackendV2, measured: list[int]) -> float | None:
    """See :data:`ESP_METHOD`; None when the backend has no calibrated errors at all (ideal simulator)."""
    esp, seen = 1.0, False
    for instr in isa.data:
        name = instr.operation.name
        if name in ("barrier", "delay", "measure"):
            continue
        err = _error(backend, name, tuple(isa.find_bit(q).index for q in instr.qubits))
        if err is not None:
            seen = True
            esp *= 1.0 - err
    for q in measured:
        err = _error(backend, "measure", (q,))
        if err is not None:
            seen = True
            esp *= 1.0 - err
    return esp if seen else None


def _counts(qc: QuantumCircuit) -> dict:
    return {
        "depth": qc.depth(),
        "two_qubit_depth": two_qubit_depth(qc),
        "two_qubit_gates": two_qubit_count(qc),
        "size": qc.size(),
        "gate_counts": dict(sorted((k, int(v)) for k, v in qc.count_ops().items())),
    }


def circuit_report(
    qc: QuantumCircuit,
    kind: str,
    cfg: QMAEConfig,
    backend: BackendV2,
    level: int,
    seed: int,
    loader: LoaderSpec | str | None = None,
) -> dict:
    """Whole-circuit and per-stage numbers, layout and ESP for one logical circuit built with ``loader``."""
    whole = timed_transpile(qc, backend, level, seed)
    isa = whole.circuit
    init, final = initial_physical(isa), final_physical(isa)
    roles = qc.metadata["qubit_roles"]
    if kind == "training":
        measured = [final[qc.metadata["ancilla"]]]
    elif kind == "inverse_fidelity":
        measured = sorted(final[q] for q in qc.metadata["data_qubits"])
    else:
        measured = sorted({isa.find_bit(i.qubits[0]).index for i in isa.data if i.operation.name == "measure"})
    stages, layout = [], list(init)
    for name, part in split_stages(qc, stage_sizes(cfg, kind, loader)):
        t = timed_transpile(part, backend, level, seed, initial_layout=layout)
        stages.append({"stage": name, **_counts(t.circuit), "transpile_seconds": round(t.seconds, 3)})
        layout = final_physical(t.circuit)
    totals = {key: sum(s[key] for s in stages) for key in ("depth", "two_qubit_depth", "two_qubit_gates", "size")}
    return {
        "logical": {
            "num_qubits": qc.num_qubits,
            "depth": qc.depth(),
            "size": qc.size(),
            "num_parameters": qc.num_parameters,
            "gate_counts": dict(sorted((k, int(v)) for k, v in qc.count_ops().items())),
        },
        "transpiled": _counts(isa),
        "physical_qubits": sorted(set(init) | set(final)),
        "layout": [{"virtual": v, "role": roles[v], "initial": init[v], "final": final[v]} for v in range(len(init))],
        "measured_physical_qubits": measured,
        "estimated_success_probability": success_probability(isa, backend, measured),
        "transpile_seconds": round(whole.seconds, 3),
        "stages": stages,
        "stage_totals": totals,
    }


def depth_report(
    cfg: QMAEConfig,
    backend: BackendV2,
    optimization_level: int = 1,
    seed: int = DEFAULT_SEED,
    backend_spec: str | None = None,
    loader: LoaderSpec | str | None = None,
) -> dict:
    """The full report (all three circuits) as a JSON-ready dict.

    ``backend_spec`` is what the user named (a backend name or a calibration snapshot path); ``report check``
    resolves it again, so a report made against a snapshot is checked against the same snapshot. ``loader``:
    the amplitude loader of every circuit (default the exact RY tree); a fitted loader is recorded under
    ``loader`` (absent means exact, so reports made before loaders existed still check equal).
    """
    check_level(optimization_level)
    spec = as_spec(loader)
    report: dict[str, Any] = {
        "backend": backend.name,
        "backend_spec": backend_spec or backend.name,
        "backend_num_qubits": backend.num_qubits,
        "optimization_level": optimization_level,
        "seed_transpiler": seed,
        "config": cfg.model_dump(),
        "method": {"circuits": PARAM_METHOD, "stages": STAGE_METHOD, "estimated_success_probability": ESP_METHOD},
        "circuits": {},
    }
    if not spec.is_exact:
        report["loader"] = {
            **spec.model_dump(),
            "label": spec.label,
            "cnots_per_loader": spec.cnots(cfg.n_qubits),
            "description": LOADER_METHOD,
        }
    for kind, qc in (
        ("training", C.training_circuit(cfg, spec)),
        ("reconstruction", C.reconstruction_circuit(cfg, loader=spec)),
        ("inverse_fidelity", C.inverse_fidelity_circuit(cfg, spec)[0]),
    ):
        report["circuits"][kind] = circuit_report(qc, kind, cfg, backend, optimization_level, seed, spec)
    return DepthReport(**report).to_json()


def report_loader(report: dict) -> LoaderSpec:
    """The loader a report was made with (reports without a ``loader`` entry used the exact RY tree)."""
    entry = report.get("loader")
    return LoaderSpec() if not entry else LoaderSpec(kind=entry["kind"], layers=entry["layers"])


def comparable(report: dict) -> dict:
    """The report without run-to-run volatile fields (timings, time stamp, command): equal for the same seed and
    the same versions of the packages that transpile (:data:`TRANSPILE_PACKAGES`)."""

    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k not in VOLATILE_KEYS}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    out = strip(json.loads(json.dumps(report)))
    versions = (out.get("provenance") or {}).get("versions") or {}
    out["provenance"] = {"versions": {k: versions.get(k) for k in TRANSPILE_PACKAGES}}
    return out


# ------------------------------------------------------------------------------------------------- output
def report_stem(
    out: Path, backend_name: str, level: int, cfg: QMAEConfig, loader: LoaderSpec | str | None = None
) -> Path:
    """``out/<backend>-O<level>``; a non-default shape or loader adds its tag (``-L8``, ``-k5``, ``-reset``,
    ``-ladder12``)."""
    default = QMAEConfig()
    tag = ""
    if cfg.image_size != default.image_size:
        tag += f"-L{cfg.image_size}"
    if cfg.latent_qubits != QMAEConfig(image_size=cfg.image_size).latent_qubits:
        tag += f"-k{cfg.latent_qubits}"
    if cfg.trash_reset != default.trash_reset:
        tag += f"-{cfg.trash_reset}"
    if cfg.layers != default.layers:
        tag += f"-layers{cfg.layers}"
    if cfg.ansatz != default.ansatz:
        tag += f"-{cfg.ansatz}"
    spec = as_spec(loader)
    if not spec.is_exact:
        tag += f"-{spec.kind}{spec.layers}"
    return Path(out) / f"{backend_name}-O{level}{tag}"


def _fmt_esp(x: float | None) -> str:
    return "n/a (no calibrated errors)" if x is None else f"{x:.3e}"


def to_markdown(report: dict) -> str:
    """The report as markdown: what was compiled and how, a section per circuit, how the numbers are computed."""
    lines = _header_lines(report)
    for kind, r in report["circuits"].items():
        lines += _circuit_lines(TITLES.get(kind, kind), r)
    return "\n".join(lines + _method_lines(report["method"]))


def _header_lines(report: dict) -> list[str]:
    cfg = report["config"]
    layers = cfg.get("layers", 1)  # left out of one-layer reports (and of those made before layers existed)
    ansatz = cfg.get("ansatz", "all-pairs")  # likewise
    ansatz_note = "" if ansatz == "all-pairs" else f", {ansatz} ansatz"
    ansatz_opt = "" if ansatz == "all-pairs" else f" --ansatz {ansatz}"
    spec = report_loader(report)
    loader_note = "" if spec.is_exact else f", approximate loader {spec.label}"
    loader_opt = "" if spec.is_exact else f" --loader {spec.label}"
    lines = [
        f"# Depth report: {report['backend']}, optimization level {report['optimization_level']}{loader_note}",
        "",
        f"Image {cfg['image_size']}x{cfg['image_size']}, latent qubits k={cfg['latent_qubits']}, trash reset "
        f"'{cfg['trash_reset']}'{f', {layers} ansatz layers' if layers != 1 else ''}{ansatz_note}; "
        f"backend {report['backend']} "
        f"({report['backend_num_qubits']} qubits); "
        f"seed_transpiler {report['seed_transpiler']}; "
        + ", ".join(f"{k} {v}" for k, v in report["provenance"]["versions"].items() if k in TRANSPILE_PACKAGES)
        + ".",
        "",
        f"Generated {report['provenance']['created_at']} by "
        f"`qmae-qiskit report depth --backend {report['backend_spec']} "
        f"--optimization-level {report['optimization_level']} --seed {report['seed_transpiler']} "
        f"--image-size {cfg['image_size']} --latent-qubits {cfg['latent_qubits']} --trash-reset "
        f"{cfg['trash_reset']}{f' --layers {layers}' if layers != 1 else ''}{ansatz_opt}{loader_opt}`.",
        "",
    ]
    if not spec.is_exact:
        lines += [
            f"Amplitude loader: **{spec.label}** ({report['loader']['cnots_per_loader']} CNOTs per loader before "
            f"routing; the exact RY tree has {2 ** int(round(math.log2(cfg['image_size'] ** 2))) - 2}). "
            f"{report['loader']['description']}",
            "",
        ]
    return lines


def _circuit_lines(title: str, r: dict) -> list[str]:
    t = r["transpiled"]
    lines = [
        f"## {title}",
        "",
        "| | depth | two-qubit depth | two-qubit gates | size |",
        "|---|---:|---:|---:|---:|",
        f"| logical | {r['logical']['depth']} | | | {r['logical']['size']} |",
        f"| **transpiled (whole)** | **{t['depth']}** | **{t['two_qubit_depth']}** | **{t['two_qubit_gates']}** "
        f"| **{t['size']}** |",
    ]
    for s in r["stages"]:
        lines.append(
            f"| stage: {s['stage']} | {s['depth']} | {s['two_qubit_depth']} | {s['two_qubit_gates']} | {s['size']} |"
        )
    st = r["stage_totals"]
    lines += [
        f"| sum of stages | {st['depth']} | {st['two_qubit_depth']} | {st['two_qubit_gates']} | {st['size']} |",
        "",
        "Gate counts (whole): " + ", ".join(f"{k}={v}" for k, v in t["gate_counts"].items()) + ".",
        "",
        "Per stage: "
        + "; ".join(f"{s['stage']}: " + ", ".join(f"{k}={v}" for k, v in s["gate_counts"].items()) for s in r["stages"])
        + ".",
        "",
        f"Estimated success probability: **{_fmt_esp(r['estimated_success_probability'])}** "
        f"(measured physical qubits {r['measured_physical_qubits']}). "
        f"Transpile time (whole circuit): {r['transpile_seconds']} s.",
        "",
        "Layout (virtual qubit -> physical qubit at start / at end):",
        "",
        "| virtual | role | initial | final |",
        "|---:|---|---:|---:|",
    ]
    lines += [f"| {q['virtual']} | {q['role']} | {q['initial']} | {q['final']} |" for q in r["layout"]]
    lines.append("")
    return lines


def _method_lines(m: dict) -> list[str]:
    return [
        "## How the numbers are computed",
        "",
        f"- Circuits: {m['circuits']}",
        f"- Stages: {m['stages']}",
        f"- Estimated success probability: {m['estimated_success_probability']}",
        "- Timings and the time stamp vary run to run; every other number regenerates identically for the same "
        "seed and package versions.",
        "",
    ]


def write_report(report: dict, out: Path = Path("circuits")) -> list[Path]:
    """``<backend>-O<level>.json`` and ``.md`` under ``out``, each written atomically."""
    stem = report_stem(
        out, report["backend"], report["optimization_level"], QMAEConfig(**report["config"]), report_loader(report)
    )
    return [
        save_record(DepthReport.model_validate(report), stem.with_suffix(".json")),
        atomic_write_text(stem.with_suffix(".md"), to_markdown(report)),
    ]


def load_report(path: Path) -> dict:
    """A depth report as a dict (a version-1 report is upgraded on read)."""
    return load_record(DepthReport, path, "pass a .json written by `report depth`").to_json()


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Paths where two comparable reports differ (empty when they regenerate equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += differences(a.get(k), b.get(k), f"{where}.{k}" if where else str(k))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def regenerate(report: dict, backend: BackendV2) -> dict:
    """The same report computed again from the settings stored in ``report``."""
    return depth_report(
        QMAEConfig(**report["config"]),
        backend,
        report["optimization_level"],
        report["seed_transpiler"],
        report.get("backend_spec"),
        report_loader(report),
    )
