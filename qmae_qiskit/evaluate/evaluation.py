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
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from qmae_qiskit.data import ImageSet, load_mnist, load_split
from qmae_qiskit.device import resolve_device
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.evaluate import baselines as bl
from qmae_qiskit.evaluate.classifier import INFO, ClassifierInfo, exists, load, train_and_cache
from qmae_qiskit.evaluate.device_choice import choose_for_run
from qmae_qiskit.evaluate.prepare import outputs, prepare
from qmae_qiskit.evaluate.scoring import PAPER_TABLE1, PIXEL_SCALING, aggregate, score, score_images
from qmae_qiskit.hardware.executors import make_executor
from qmae_qiskit.hardware.qpu_fields import QPUUsage, Usage, plan_fields, usage_by_role
from qmae_qiskit.hardware.qpu_time import plan_for
from qmae_qiskit.hardware.spec import ExecutionSpec
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.masking import EVAL_MASK_EPOCH, eval_masks
from qmae_qiskit.records import Record, legacy_provenance, load_record, save_record
from qmae_qiskit.train.runs import load_trained

if TYPE_CHECKING:
    from qmae_qiskit.hardware.qpu_time import QPUPlan

SPLITS = ("test", "train")
EVAL_FILE = "eval.json"


class EvalResult(QPUUsage, Record):
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
    loader: str | None = None  # an approximate amplitude loader; absent for the exact RY tree (as before loaders)
    placement: str | None = None  # "noise-aware" where chosen; absent for Qiskit's own layout (as before placement)
    rep_delay: float | None = None  # seconds between shots where set; absent for the backend's default
    device_ranking: list[dict[str, Any]] | None = None  # --backend auto / a list: every candidate, best first
    OMITTED_WHEN_EMPTY: ClassVar[tuple[str, ...]] = (
        "loader",
        "placement",
        "rep_delay",
        "device_ranking",
    )  # + QPUUsage's

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
            data_dir, image_size = self.train_source
            self.train_source = load_mnist(data_dir, train=True, image_size=image_size).images
        return self.train_source

    def image_set(self) -> ImageSet:
        return ImageSet(self.images, self.labels, self.indices)


def load_eval_data(data_dir: str | Path | None, split: str, image_size: int, limit: int | None) -> EvalData:
    """The first ``limit`` images of ``split`` and the training images (for the baselines' fills)."""

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


def default_classifier_dir(image_size: int) -> Path:
    """Where ``evaluate`` caches a classifier it trains: ``runs/classifier`` at 16x16, else ``runs/classifier-L<L>``"""
    return Path("runs/classifier" if image_size == 16 else f"runs/classifier-L{image_size}")


def find_classifier(run_dir: Path, explicit: str | Path | None, image_size: int = 16) -> Path:
    """``explicit``, else the nearest ``classifier/`` for this image size beside the run or above it, else the cache."""

    if explicit is not None:
        return Path(explicit)
    for parent in [run_dir.parent, *run_dir.parent.parents][:3]:
        if exists(parent / "classifier"):
            if load_record(ClassifierInfo, parent / "classifier" / INFO).image_size == image_size:
                return parent / "classifier"
    return default_classifier_dir(image_size)


def load_classifier(
    run_dir: Path, explicit: str | Path | None, required: bool, image_size: int = 16, device: str = "cpu"
) -> tuple[Any, dict | None, Path]:
    """(model or None, its info, its folder): required -> a missing classifier is an error with the fix."""

    path = find_classifier(run_dir, explicit, image_size)
    if exists(path) or required:
        model, info = load(path, device)
        return model, info, path
    return None, None, path


def classifier_for_run(
    run_dir: Path, explicit: str | Path | None, data_dir: str | Path | None, image_size: int, device: str = "cpu"
) -> tuple[Any, dict | None, Path]:
    """The classifier ``evaluate`` needs: found as :func:`find_classifier` finds it, or trained once and cached.

    A user who has just trained a model expects ``evaluate`` to score it, so a missing classifier is trained
    (what ``qmae-qiskit classifier train --image-size L --out DIR`` does, with a progress bar) and said so on
    stderr. A folder named with ``--classifier`` is never trained into: a missing one is an error.
    """

    path = find_classifier(run_dir, explicit, image_size)
    if explicit is None and not exists(path):
        print(
            f"no classifier for {image_size}x{image_size} images yet: training one once into {path} (as "
            f"`qmae-qiskit classifier train --image-size {image_size} --out {path}` does); later evaluations reuse it",
            file=sys.stderr,
        )
        train_and_cache(data_dir, path, image_size=image_size, progress=True, device=device)
    return load_classifier(run_dir, path, required=True, image_size=image_size, device=device)


class EvalOptions(BaseModel):
    """What ``evaluate`` scores, beside where it runs: the split and its first N images, the data folder, the
    classifier and whether the no-circuit baselines are scored too."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    split: Literal["test", "train"] = "test"
    limit: int | None = Field(None, ge=1, description="the first N images of the split (--images)")
    data_dir: str | None = Field(None, description="MNIST folder [default: the run's]")
    classifier_dir: str | None = None
    use_classifier: bool = True
    baselines: bool = True
    device: str = Field("cpu", description="where torch runs the classifier and the exact path (auto, cpu, cuda)")


def evaluate(
    run_dir: str | Path,
    execution: ExecutionSpec | None = None,
    options: EvalOptions | None = None,
    out: str | Path | None = None,
    data: EvalData | None = None,
    shared_baselines: dict[str, Any] | None = None,
    progress: bool = False,
    say: Callable[[str], None] | None = None,
) -> EvalResult | QPUPlan:
    """Score the run in ``run_dir`` (``options``) on ``execution``'s backend; write ``eval.json`` (or ``out``)
    through the record codec and return it.

    ``execution.shots`` None means exact values where the backend allows it (exact, ideal aer_simulator) and 4096
    otherwise. ``data`` skips reading the images; ``shared_baselines`` are baselines already scored on the same
    images and masks (a sweep's or reproduce's, shared by several runs) and go into the record as they are.
    A device's or twin's QPU plan goes to ``say`` before anything runs (refused above the spec's cap); a dry run
    (``execution.budget``) returns the plan and runs, trains and writes nothing."""

    t0, opts, run_dir = time.perf_counter(), options or EvalOptions(), Path(run_dir)
    dev = resolve_device(opts.device).type  # a missing GPU is one line, before anything is read or written
    spec, ranking = choose_for_run(execution or ExecutionSpec(), run_dir, say)
    spec = spec.on_planned_backend(say)
    tm = load_trained(run_dir)
    executor = make_executor(spec.backend, spec.noise_model, spec.idle, dev)
    if spec.shots is None and (executor.kind in ("twin", "ibm") or spec.noise_model is not None):
        spec = spec.model_copy(update={"shots": 4096})
    source = opts.data_dir if opts.data_dir is not None else tm.data_dir
    if data is None:
        data = load_eval_data(source, opts.split, tm.cfg.image_size, opts.limit)
    t1 = time.perf_counter()
    prepared = prepare(tm, data.image_set(), spec, executor)
    plan = plan_for(prepared.work, executor, spec.budget, say)  # before a classifier is trained or anything runs
    if spec.budget.dry_run:
        assert plan is not None  # plan_for refuses a dry run off a device
        return plan
    planned = time.perf_counter() - t1
    clf: tuple[Any, dict | None, Path | None] = (None, None, None)
    if opts.use_classifier:
        clf = classifier_for_run(run_dir, opts.classifier_dir, source, tm.cfg.image_size, dev)
    t1 = time.perf_counter()
    scored = _run_and_score(prepared, data, executor, clf[0])
    t2 = time.perf_counter()
    if shared_baselines is None and opts.baselines:
        shared_baselines = evaluate_baselines(tm.cfg, tm.mask_ratio, data, clf[0], spec.mask_seed)
    extra = {
        "classifier": _classifier_summary(clf[1], clf[2]),
        "baselines": shared_baselines,
        "seconds": {"model": round(planned + t2 - t1, 3), "total": round(time.perf_counter() - t0, 3)},
        **plan_fields(plan),
        "qpu_usage": scored.usage,
        "device_ranking": ranking,
    }
    result = _record(run_dir, tm, spec, opts, executor, scored, extra)
    save_record(result, Path(out) if out is not None else run_dir / EVAL_FILE)
    return result


def _classifier_summary(info: dict | None, path: Path | None) -> dict[str, Any] | None:
    if info is None:
        return None
    summary = {"path": str(path), "clean_test_accuracy": info.get("test_accuracy"), "n_train": info.get("n_train")}
    return summary | ({"recipe": info["recipe"]} if info.get("recipe") else {})


@dataclass
class _Scored:
    prepared: Any  # evaluate.prepare.Prepared
    n_images: int
    metrics: dict[str, Any]
    usage: Usage | None = None  # a real device: what IBM reports per job


def _run_and_score(prepared: Any, data: EvalData, executor: Any, classifier: Any) -> _Scored:
    """execute -> score the prepared work: the per-image scores' aggregate (and a device's usage figures)."""

    execution = executor.run(prepared.work)
    results = execution.result()
    probs, fids = outputs(prepared, results)
    assert probs is not None
    per_image = score(probs, fids, data.images, data.labels, classifier)
    usage = usage_by_role(execution.jobs) if hasattr(execution, "jobs") else None
    return _Scored(prepared, len(data.images), aggregate(per_image), usage)


def _record(
    run_dir: Path,
    tm: Any,
    spec: ExecutionSpec,
    opts: EvalOptions,
    executor: Any,
    scored: _Scored,
    extra: dict[str, Any],
) -> EvalResult:
    """The eval.json record of one evaluation (``extra``: its classifier, baselines and seconds)."""
    exact = executor.kind == "exact"
    paper = tm.cfg.image_size == 16 and math.isclose(tm.mask_ratio, 0.25)
    return EvalResult(
        run=str(run_dir),
        model=tm.kind,
        mask_ratio=tm.mask_ratio,
        config=tm.cfg.model_dump(),
        step=tm.step,
        finished=tm.finished,
        split=opts.split,
        n_images=scored.n_images,
        limit=opts.limit,
        backend=spec.backend,
        executor=executor.describe(),
        shots=spec.shots,
        mitigation=spec.mitigation.describe(),
        fidelity_circuit=None if exact else scored.prepared.fidelity_circuit,
        circuits={} if exact else scored.prepared.circuit_summary(),
        mask_seed=spec.mask_seed,
        loader=spec.loader,
        placement=None if spec.placement == "qiskit" else spec.placement,
        rep_delay=spec.rep_delay,
        metrics=scored.metrics,
        paper=PAPER_TABLE1.get(tm.kind) if paper else None,
        **extra,
    )


def load_eval(path: str | Path) -> EvalResult:
    """Read an eval.json (a 0.1 one is upgraded on read)."""
    return load_record(EvalResult, path)
