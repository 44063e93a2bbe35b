"""Evaluate a trained run as in the paper (section 4.2-4.3), on any backend: prepare -> execute -> score.

Fidelity, cosine similarity, SSIM and classifier accuracy of the reconstructions, averaged over a split, with
the no-circuit baselines beside the model. The backend is anything :func:`~qmae_qiskit.hardware.executors.
make_executor` accepts: ``exact`` (the default), ``aer_simulator`` (ideal, or with ``--noise-model``), a fake
device or a calibration snapshot (its local twin), or an IBM backend. Masks for evaluation are keyed by
(``mask_seed``, :data:`~qmae_qiskit.model.masking.EVAL_MASK_EPOCH`, image index) and depend on nothing else, so
QMAE and QAE with the same patch grid get the same mask for every image, as the paper requires.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from qmae_qiskit.data import ImageSet
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.evaluate import baselines as bl
from qmae_qiskit.evaluate.scoring import PAPER_TABLE1, PIXEL_SCALING, aggregate, score, score_images
from qmae_qiskit.hardware.mitigation import Mitigation
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.masking import EVAL_MASK_EPOCH, eval_masks
from qmae_qiskit.records import Record, legacy_provenance, load_record, save_record

if TYPE_CHECKING:
    from qmae_qiskit.hardware.qpu_time import QPUBudget

SPLITS = ("test", "train")
EVAL_FILE = "eval.json"


class EvalResult(Record):
    """eval.json: a run's scores on a split, on one backend, with the baselines on the same images and masks."""

    SCHEMA: ClassVar[str] = "qmae-qiskit/eval-result"
    VERSION: ClassVar[int] = 2
    WHAT: ClassVar[str] = "evaluation result"

    run: str
    model: str
    mask_ratio: float
    config: dict[str, Any]
    step: int
    finished: bool
    split: str
    n_images: int
    limit: int | None = None
    backend: str
    executor: dict[str, Any] = {}
    shots: int | None = None
    mitigation: str = "raw"
    fidelity_circuit: str | None = None
    circuits: dict[str, Any] = {}
    mask_seed: int = 0
    mask_epoch: int = EVAL_MASK_EPOCH
    pixel_scaling: str = PIXEL_SCALING
    classifier: dict[str, Any] | None = None
    metrics: dict[str, Any]
    baselines: dict[str, Any] | None = None
    paper: dict[str, float] | None = None
    seconds: dict[str, float] = {}
    qpu_seconds_estimate: float | None = None  # a device or its twin: hardware.qpu_time's estimate
    qpu_plan: dict[str, Any] | None = None
    qpu_usage: dict[str, dict[str, float | None]] | None = None  # a real device: what IBM reports per job

    @classmethod
    def upgrade(cls, raw: dict[str, Any], version: int | None) -> dict[str, Any] | None:
        """An eval.json of qmae-qiskit 0.1 (no schema field) reads as version 2."""
        if raw.get("schema") is None and "metrics" in raw and "run" in raw:
            return {**raw, "schema": cls.SCHEMA, "schema_version": cls.VERSION, "provenance": legacy_provenance(None)}
        return None


@dataclass
class EvalData:
    """Images, labels and source indices of the split being scored; the training images (for the baselines'
    fills) are read on first use."""

    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    train_source: tuple[str | Path | None, int] | torch.Tensor

    @property
    def train_images(self) -> torch.Tensor:
        if not isinstance(self.train_source, torch.Tensor):
            from qmae_qiskit.data import load_mnist

            data_dir, image_size = self.train_source
            self.train_source = load_mnist(data_dir, train=True, image_size=image_size).images
        return self.train_source

    def image_set(self) -> ImageSet:
        return ImageSet(self.images, self.labels, self.indices)


def load_eval_data(data_dir: str | Path | None, split: str, image_size: int, limit: int | None) -> EvalData:
    """The first ``limit`` images of ``split`` and the training images (for the baselines' fills)."""
    from qmae_qiskit.data import load_split

    if split not in SPLITS:
        raise QMAEError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if limit is not None and limit < 1:
        raise QMAEError(f"--images must be positive, got {limit}")
    data = load_split(data_dir, split, image_size, limit=limit)
    return EvalData(data.images, data.labels, data.indices, (data_dir, image_size))


def evaluate_baselines(
    cfg: QMAEConfig, ratio: float, data: EvalData, classifier: torch.nn.Module | None, mask_seed: int = 0
) -> dict[str, dict]:
    """Scores of the three no-circuit fills on ``data`` with the evaluation masks."""
    patch_idx = eval_masks(cfg, ratio, data.indices, mask_seed)
    stats = bl.fit(data.train_images, cfg)
    out = {}
    for name in bl.BASELINES:
        filled = bl.fill(name, data.images, patch_idx, cfg, stats)
        out[name] = {
            "label": bl.LABELS[name],
            "description": bl.DESCRIPTIONS[name],
            **aggregate(score_images(filled, data.images, data.labels, classifier)),
        }
    return out


def find_classifier(run_dir: Path, explicit: str | Path | None) -> Path:
    """``explicit``, else the nearest ``classifier/`` folder beside the run or above it, else runs/classifier."""
    from qmae_qiskit.evaluate.classifier import exists

    if explicit is not None:
        return Path(explicit)
    for parent in [run_dir.parent, *run_dir.parent.parents][:3]:
        if exists(parent / "classifier"):
            return parent / "classifier"
    return Path("runs/classifier")


def load_classifier(run_dir: Path, explicit: str | Path | None, required: bool) -> tuple[Any, dict | None, Path]:
    """(model or None, its info, its folder): required -> a missing classifier is an error with the fix."""
    from qmae_qiskit.evaluate.classifier import exists, load

    path = find_classifier(run_dir, explicit)
    if exists(path) or required:
        model, info = load(path)
        return model, info, path
    return None, None, path


def evaluate(
    run_dir: str | Path,
    split: str = "test",
    limit: int | None = None,
    backend: str = "exact",
    shots: int | None = None,
    data_dir: str | Path | None = None,
    classifier_dir: str | Path | None = None,
    use_classifier: bool = True,
    baselines: bool = True,
    mask_seed: int = 0,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = False,
    data: EvalData | None = None,
    noise_model: str | None = None,
    mitigation: Mitigation | None = None,
    fidelity_circuit: str = "auto",
    optimization_level: int = 1,
    seed_transpiler: int | None = None,
    budget: QPUBudget | None = None,
    say: Callable[[str], None] | None = None,
) -> dict:
    """Score the run in ``run_dir`` on ``split``; writes ``eval.json`` (or ``out``) and returns the same dict.

    ``shots`` None means exact values where the backend allows it (exact, ideal aer_simulator) and 4096
    otherwise. On a device or its twin the QPU plan goes to ``say`` first; a dry run (``budget``) returns
    ``{"dry_run": True, "qpu_plan": ...}`` and runs and writes nothing.
    """
    from qmae_qiskit.evaluate.prepare import EvalSpec, outputs, prepare
    from qmae_qiskit.hardware.executors import make_executor
    from qmae_qiskit.hardware.jobs import usage_of
    from qmae_qiskit.hardware.qpu_time import QPUBudget, plan_for
    from qmae_qiskit.hardware.transpile import DEFAULT_SEED
    from qmae_qiskit.train.runs import load_trained

    budget = budget or QPUBudget()
    backend = budget.backend_for(backend, say)
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    tm = load_trained(run_dir)
    cfg = tm.cfg
    executor = make_executor(backend, noise_model)
    if shots is None and (executor.kind in ("twin", "ibm") or noise_model is not None):
        shots = 4096
    spec = EvalSpec(
        backend=backend,
        noise_model=noise_model,
        shots=shots,
        fidelity_circuit=fidelity_circuit,
        optimization_level=optimization_level,
        seed_transpiler=DEFAULT_SEED if seed_transpiler is None else seed_transpiler,
        seed=seed,
        mask_seed=mask_seed,
        mitigation=mitigation or Mitigation(),
    )
    if data is None:
        data = load_eval_data(data_dir if data_dir is not None else tm.data_dir, split, cfg.image_size, limit)
    clf, clf_info, clf_path = (
        load_classifier(run_dir, classifier_dir, required=True)
        if use_classifier and not budget.dry_run
        else (None, None, None)
    )
    t1 = time.perf_counter()
    prepared = prepare(tm, data.image_set(), spec, executor)
    plan = plan_for(prepared.work, executor, budget, say)
    if budget.dry_run:
        return {"dry_run": True, "qpu_plan": None if plan is None else plan.model_dump()}
    execution = executor.run(prepared.work)
    results = execution.result()
    probs, fids = outputs(prepared, results)
    assert probs is not None
    per_image = score(probs, fids, data.images, data.labels, clf)
    t2 = time.perf_counter()
    result = EvalResult(
        run=str(run_dir),
        model=tm.kind,
        mask_ratio=tm.mask_ratio,
        config=cfg.model_dump(),
        step=tm.step,
        finished=tm.finished,
        split=split,
        n_images=len(data.images),
        limit=limit,
        backend=backend,
        executor=executor.describe(),
        shots=shots,
        mitigation=spec.mitigation.describe(),
        fidelity_circuit=None if executor.kind == "exact" else prepared.fidelity_circuit,
        circuits=prepared.circuit_summary() if executor.kind != "exact" else {},
        mask_seed=mask_seed,
        classifier=None
        if clf_info is None
        else {
            "path": str(clf_path),
            "clean_test_accuracy": clf_info.get("test_accuracy"),
            "n_train": clf_info.get("n_train"),
        },
        metrics=aggregate(per_image),
        baselines=evaluate_baselines(cfg, tm.mask_ratio, data, clf, mask_seed) if baselines else None,
        paper=PAPER_TABLE1.get(tm.kind) if cfg.image_size == 16 and math.isclose(tm.mask_ratio, 0.25) else None,
        seconds={"model": round(t2 - t1, 3), "total": round(time.perf_counter() - t0, 3)},
        qpu_seconds_estimate=None if plan is None else round(plan.qpu_seconds, 3),
        qpu_plan=None if plan is None else plan.model_dump(),
        qpu_usage={r: usage_of(j) for r, j in execution.jobs.items()} if hasattr(execution, "jobs") else None,
    )
    save_record(result, Path(out) if out is not None else run_dir / EVAL_FILE)
    return result.to_json()


def load_eval(path: str | Path) -> EvalResult:
    """Read an eval.json (a 0.1 one is upgraded on read)."""
    return load_record(EvalResult, path)
