"""What each loader budget buys: transpiled two-qubit gates of the fidelity circuit against loading fidelity.

For a trained run and N test images (the evaluation's images and masks), one ladder fit grows layer by layer
(with equal iterations per stage, so each stage is the fit a standalone ``fit_loader`` with those settings gives)
and each stage's per-image loading fidelity of the masked input and of the clean image is summarized beside the
two-qubit-gate count of the inverse-loader fidelity circuit on each backend (transpiled as ``report depth`` does).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from qiskit.providers import BackendV2

from qmae_qiskit.data import load_mnist
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.transpile import DEFAULT_SEED
from qmae_qiskit.io import atomic_write_text
from qmae_qiskit.model.approx_loader import LoaderSpec, fit_ladder_stages, ladder_states
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.masking import eval_masks
from qmae_qiskit.records import Record, save_record
from qmae_qiskit.reports.loader_budget import fidelity_circuit_two_qubit_gates
from qmae_qiskit.simulate import exact
from qmae_qiskit.train.runs import load_trained


class FidelitySummary(BaseModel):
    """Loading fidelity |<x|phi>|^2 over the images."""

    model_config = ConfigDict(extra="forbid")

    mean: float
    min: float
    p10: float
    per_image: list[float]


class ErrorSummary(BaseModel):
    """Exact fidelity of the circuit with fitted loaders minus the paper circuit's, over the images."""

    model_config = ConfigDict(extra="forbid")

    mean_abs: float
    max_abs: float
    bias: float


class FrontierRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    loader: str
    cnots_per_loader: int
    two_qubit_gates: dict[str, int]  # backend name -> transpiled count of the inverse-loader fidelity circuit
    masked: FidelitySummary
    clean: FidelitySummary
    fit_seconds: float  # cumulative fit time (masked + clean) up to this stage
    fidelity_error: ErrorSummary | None = None  # with a trained theta: what the approximation alone costs


class LoaderFrontier(Record):
    """Budget -> two-qubit gates -> loading fidelity, for one model shape and image set."""

    SCHEMA: ClassVar[str] = "qmae-qiskit/loader-frontier"
    VERSION: ClassVar[int] = 1
    WHAT: ClassVar[str] = "loader frontier"

    run: str | None
    config: QMAEConfig
    images: str
    n_images: int
    optimization_level: int
    seed_transpiler: int
    stage_iter: int
    rows: list[FrontierRow]


def _summary(f: np.ndarray) -> FidelitySummary:
    return FidelitySummary(
        mean=float(f.mean()), min=float(f.min()), p10=float(np.quantile(f, 0.1)), per_image=[float(v) for v in f]
    )


def _normalized(x: torch.Tensor) -> np.ndarray:
    X = x.detach().reshape(x.shape[0], -1).to(torch.float64).numpy()
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@dataclass(frozen=True)
class FrontierSettings:
    """How the frontier is made: the ladder depths (all even or all odd: one growth path), the transpiler's
    optimisation level and seed, and the L-BFGS iterations per two-layer stage."""

    layers: tuple[int, ...]
    optimization_level: int = 3
    seed: int = DEFAULT_SEED
    stage_iter: int = 300

    def __post_init__(self) -> None:
        if not self.layers or len({L % 2 for L in self.layers}) != 1 or min(self.layers) < 0:
            raise QMAEError(
                f"layers must be non-negative and all even or all odd (one growth path), got {list(self.layers)}"
            )


def loader_frontier(
    cfg: QMAEConfig,
    x_masked: torch.Tensor,
    x_clean: torch.Tensor,
    backends: list[BackendV2],
    settings: FrontierSettings,
    run: str | None = None,
    images: str = "",
    theta: torch.Tensor | None = None,
) -> LoaderFrontier:
    """Rows for the exact loader and for every ladder depth in ``settings.layers``.

    With ``theta`` (a trained model) each row also gives the error the approximation alone makes in the model's
    fidelity: the exact value of the inverse-loader circuit with the fitted loaders (the exact fidelity with the
    loaded states in place of the images) against the paper circuit's exact value.
    """
    targets = {"masked": _normalized(x_masked), "clean": _normalized(x_clean)}
    fids, loaded, seconds = _fit_ladders(cfg.n_qubits, targets, settings)
    errors = None if theta is None else _model_errors(cfg, theta, targets, loaded)
    specs = [LoaderSpec(), *(LoaderSpec(kind="ladder", layers=L) for L in sorted(set(settings.layers)))]
    ones = np.ones(len(x_clean))
    rows = []
    for spec in specs:
        counts = {
            b.name: fidelity_circuit_two_qubit_gates(cfg, b, spec, settings.optimization_level, settings.seed)
            for b in backends
        }
        L = int(spec.layers or 0)
        f = {"masked": ones, "clean": ones} if spec.is_exact else fids[L]
        exact_error = ErrorSummary(mean_abs=0.0, max_abs=0.0, bias=0.0)
        rows.append(
            FrontierRow(
                loader=spec.label,
                cnots_per_loader=spec.cnots(cfg.n_qubits),
                two_qubit_gates=counts,
                masked=_summary(f["masked"]),
                clean=_summary(f["clean"]),
                fit_seconds=0.0 if spec.is_exact else round(seconds[L], 2),
                fidelity_error=None if errors is None else (exact_error if spec.is_exact else errors[L]),
            )
        )
    return LoaderFrontier(
        run=run,
        config=cfg,
        images=images,
        n_images=len(x_clean),
        optimization_level=settings.optimization_level,
        seed_transpiler=settings.seed,
        stage_iter=settings.stage_iter,
        rows=rows,
    )


def _fit_ladders(n: int, targets: dict[str, np.ndarray], settings: FrontierSettings) -> tuple[dict, dict, dict]:
    """Per wanted depth: each image's loading fidelity, the loaded states and the fit's wall seconds, from one
    growth path of fits per image set."""
    wanted = set(settings.layers)
    fids: dict[int, dict[str, np.ndarray]] = {L: {} for L in wanted}
    loaded: dict[int, dict[str, np.ndarray]] = {L: {} for L in wanted}
    seconds: dict[int, float] = dict.fromkeys(wanted, 0.0)
    for which, X in targets.items():
        start = time.perf_counter()
        for L, angles in fit_ladder_stages(X, max(settings.layers), settings.stage_iter, settings.stage_iter):
            if L in wanted:
                states = ladder_states(n, L, angles)
                fids[L][which] = np.einsum("bd,bd->b", X, states) ** 2
                loaded[L][which] = states
                seconds[L] += time.perf_counter() - start
    return fids, loaded, seconds


def _model_errors(
    cfg: QMAEConfig, theta: torch.Tensor, targets: dict[str, np.ndarray], loaded: dict[int, dict[str, np.ndarray]]
) -> dict[int, ErrorSummary]:
    """Per depth: the exact model fidelity with the loaded states minus the paper circuit's, over the images."""

    def fid(m: np.ndarray, c: np.ndarray) -> np.ndarray:
        return exact.fidelity(theta.to(torch.float64), torch.from_numpy(m), torch.from_numpy(c), cfg).numpy()

    paper = fid(targets["masked"], targets["clean"])
    errors = {}
    for L, states in loaded.items():
        err = fid(states["masked"], states["clean"]) - paper
        errors[L] = ErrorSummary(
            mean_abs=float(np.abs(err).mean()), max_abs=float(np.abs(err).max()), bias=float(err.mean())
        )
    return errors


def to_markdown(fr: LoaderFrontier) -> str:
    backends = list(fr.rows[0].two_qubit_gates)
    head = " | ".join(f"2q gates {b}" for b in backends)
    with_err = fr.rows[0].fidelity_error is not None
    lines = [
        f"# Loader frontier: {fr.config.image_size}x{fr.config.image_size}, optimization level "
        f"{fr.optimization_level}, seed_transpiler {fr.seed_transpiler}",
        "",
        f"{fr.n_images} images ({fr.images}){f', run {fr.run}' if fr.run else ''}. Two-qubit gates: the "
        "inverse-loader fidelity circuit (both loaders) transpiled with unbound parameters. Loading fidelity "
        "|<x|phi>|^2 of each image's fitted ladder (L-BFGS, "
        f"{fr.stage_iter} iterations per two-layer stage); the exact RY tree loads with fidelity 1."
        + (
            " Model fidelity error: exact value of the circuit with the fitted loaders minus the paper circuit's "
            "exact value, per image (mean |error|, max |error|), for the run's trained theta."
            if with_err
            else ""
        ),
        "",
        f"| loader | CNOTs per loader | {head} | masked mean | masked min | clean mean | clean min | fit s (wall) |"
        + (" model fidelity error mean / max |" if with_err else ""),
        "|---|---:|" + "---:|" * len(backends) + "---:|---:|---:|---:|---:|" + ("---:|" if with_err else ""),
    ]
    for r in fr.rows:
        counts = " | ".join(str(r.two_qubit_gates[b]) for b in backends)
        err = r.fidelity_error
        lines.append(
            f"| {r.loader} | {r.cnots_per_loader} | {counts} | {r.masked.mean:.4f} | {r.masked.min:.4f} | "
            f"{r.clean.mean:.4f} | {r.clean.min:.4f} | {r.fit_seconds:.1f} |"
            + (f" {err.mean_abs:.4f} / {err.max_abs:.4f} |" if err is not None else "")
        )
    lines += ["", f"Command: `{fr.provenance.command}`; created {fr.provenance.created_at}.", ""]
    return "\n".join(lines)


def frontier_for_run(
    run_dir: str | Path,
    backends: list[BackendV2],
    settings: FrontierSettings,
    samples: int = 100,
    mask_seed: int = 0,
    data_dir: str | Path | None = None,
) -> LoaderFrontier:
    """:func:`loader_frontier` on a trained run's first ``samples`` test images, masked as ``evaluate`` masks
    them (evaluation masks, the run's mask token)."""

    tm = load_trained(run_dir)
    cfg = tm.cfg
    data = load_mnist(data_dir if data_dir is not None else tm.data_dir, False, cfg.image_size, limit=samples)
    with torch.no_grad():
        masked = tm.module().masked_inputs(data.images, eval_masks(cfg, tm.mask_ratio, data.indices, mask_seed))
    return loader_frontier(
        cfg,
        masked,
        data.images,
        backends,
        settings,
        run=str(run_dir),
        images=f"MNIST test images 0..{len(data) - 1}, evaluation masks seed {mask_seed}",
        theta=tm.theta,
    )


def write_frontier(fr: LoaderFrontier, out: str | Path) -> list[Path]:
    """``loader-frontier-L<size>.json`` (the record) and ``.md`` under ``out``, each written atomically."""
    stem = Path(out) / f"loader-frontier-L{fr.config.image_size}"
    return [save_record(fr, stem.with_suffix(".json")), atomic_write_text(stem.with_suffix(".md"), to_markdown(fr))]
