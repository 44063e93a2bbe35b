"""What a Dask worker does: train a cell, train a classifier, score the baselines, evaluate a cell.

Every task catches its own failure and returns ``{"ok": False, "error": one line}`` instead of raising, so one bad
cell never cancels the others; the driver writes the error beside the cell. Every task reports ``seconds``: its
own compute, from after the worker is set up to its result (the sweep's overhead is wall time minus these).
Images are loaded once per worker process and kept (a worker runs many cells on the same data).
"""

from __future__ import annotations

import functools
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from qmae_qiskit.data import load_mnist
from qmae_qiskit.errors import QMAEError, one_line
from qmae_qiskit.evaluate import classifier as clf_mod
from qmae_qiskit.evaluate.evaluation import EvalData, EvalOptions, EvalResult, evaluate, evaluate_baselines
from qmae_qiskit.experiments.cells import CELL_FILE, ERROR_FILE, EVAL_FILE, Cell, ClassifierSpec, EvalSpec
from qmae_qiskit.experiments.paper_runs import ensure_classifier as ensure
from qmae_qiskit.experiments.records import CellRecord
from qmae_qiskit.hardware.spec import ExecutionSpec
from qmae_qiskit.records import save_record
from qmae_qiskit.train.runs import CHECKPOINT_FILE, CONFIG_FILE, load_checkpoint, read_settings, update_settings
from qmae_qiskit.train.training import TrainOptions, select_data, train

TaskResult = dict[str, Any]


def setup_worker(threads: int = 1) -> None:
    """One torch thread per task (a worker process runs one task at a time); idle OpenMP threads sleep."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


_DEVICE = {"name": "cpu"}  # where this worker's torch computes (set by warm_up, the same on every worker)


def device() -> str:
    """The torch device of this worker's tasks (``cpu`` unless the sweep was started with ``--device``)."""
    return _DEVICE["name"]


def warm_up(threads: int = 1, device: str = "cpu") -> float:
    """Import what the tasks use once per worker, so that the first cell on each worker does not pay for it
    (unpickling this function imports torch and the toolkit; torchvision's ResNet here), and set the worker's
    torch device; returns the seconds it took."""
    t0 = time.perf_counter()
    setup_worker(threads)
    _DEVICE["name"] = device
    import torchvision.models  # noqa: F401  # lazy: the classifier module defers it; a worker loads it once here

    return time.perf_counter() - t0


def _guard(what: str, fn: Callable[[], TaskResult], threads: int) -> TaskResult:
    setup_worker(threads)
    started = time.time()
    t0 = time.perf_counter()
    try:
        out = fn()
        out.setdefault("ok", True)
    except Exception as exc:  # a failed cell is a record, never a crash of the sweep
        text = one_line(exc) if isinstance(exc, QMAEError) else f"{type(exc).__name__}: {one_line(exc)}"
        out = {"ok": False, "error": f"{what}: {text}"}
    out["seconds"] = round(time.perf_counter() - t0, 4)
    out["span"] = [started, time.time()]  # wall-clock start and end, to see how the tasks were scheduled
    return out


@functools.lru_cache(maxsize=8)
def _mnist(data_dir: str | None, train: bool, image_size: int):

    return load_mnist(data_dir, train=train, image_size=image_size)


@functools.lru_cache(maxsize=8)
def _eval_data(data_dir: str | None, image_size: int, limit: int | None):

    train, test = _mnist(data_dir, True, image_size), _mnist(data_dir, False, image_size)
    if limit is not None:
        test = test.subset(slice(0, limit))
    return EvalData(test.images, test.labels, test.indices, train.images)


def _key(data_dir: str | Path | None) -> str | None:
    return None if data_dir is None else str(data_dir)


# -------------------------------------------------------------------------------------------------- classifier
def ensure_classifier(
    spec: ClassifierSpec, out: str | Path, data_dir: str | Path | None, test_limit: int | None, threads: int = 1
) -> TaskResult:
    """The cached classifier of ``spec`` (trained here the first time; its clean accuracy measured on the first
    ``test_limit`` test images, the ones the sweep evaluates); its info."""

    def work() -> TaskResult:

        info = ensure(
            spec.folder(Path(out)),
            data_dir,
            spec.image_size,
            False,
            lambda _: None,
            spec.settings(),
            test_limit,
            device(),
        )
        return {"info": {k: info.get(k) for k in ("test_accuracy", "n_train", "n_test", "seed", "image_size")}}

    return _guard(f"classifier {spec.key}", work, threads)


# --------------------------------------------------------------------------------------------------- baselines
def score_baselines(
    cell: Cell, out: str | Path, data_dir: str | Path | None, classifier: TaskResult, threads: int = 1
) -> TaskResult:
    """The no-circuit fills on the cell's images and masks (shared by every cell with the same baseline key)."""

    def work() -> TaskResult:
        if not classifier.get("ok"):
            raise QMAEError(f"no classifier ({classifier.get('error')})")

        model, _ = clf_mod.load(cell.classifier.folder(Path(out)), device())
        cfg = cell.settings.config
        data = _eval_data(_key(data_dir), cfg.image_size, cell.evaluation.limit)
        return {"baselines": evaluate_baselines(cfg, cell.settings.mask_ratio, data, model, cell.evaluation.mask_seed)}

    return _guard(f"baselines {cell.baseline_key}", work, threads)


# ------------------------------------------------------------------------------------------------------ train
def train_cell(cell: Cell, out: str | Path, data_dir: str | Path | None, threads: int = 1) -> TaskResult:
    """Train the cell's run folder to the end: fresh, resumed from its checkpoint, or already done."""

    def work() -> TaskResult:

        folder = cell.folder(Path(out))
        s = cell.settings
        resume = False
        if (folder / CONFIG_FILE).is_file():
            if (folder / CHECKPOINT_FILE).is_file():
                ckpt = load_checkpoint(folder, None)
                if ckpt.finished and ckpt.step == s.total_steps:
                    if read_settings(folder) != s:  # only resumable settings differ (checked up front)
                        update_settings(folder, s)
                    return {"action": "reused"}
                resume = True
            else:  # killed between config.json and the first checkpoint: nothing trained yet
                shutil.rmtree(folder)
        elif folder.is_dir():
            for name in (ERROR_FILE, CELL_FILE, EVAL_FILE):
                (folder / name).unlink(missing_ok=True)
        data = select_data(_mnist(_key(data_dir), True, s.config.image_size), s)
        t = time.perf_counter()
        train(
            s, folder, data, TrainOptions(resume=resume, progress=False, plot=True, device=device()), data_dir=data_dir
        )
        return {"action": "resumed" if resume else "trained", "train_seconds": round(time.perf_counter() - t, 4)}

    return _guard(f"train {cell.name}", work, threads)


# --------------------------------------------------------------------------------------------------- evaluate
def evaluate_cell(
    cell: Cell,
    out: str | Path,
    data_dir: str | Path | None,
    trained: TaskResult,
    classifier: TaskResult,
    baselines: TaskResult,
    threads: int = 1,
) -> TaskResult:
    """Score the trained cell on the sweep's test images and masks; eval.json gets the shared baselines."""

    def work() -> TaskResult:
        for what, res in (("training", trained), ("classifier", classifier), ("baselines", baselines)):
            if not res.get("ok"):
                raise QMAEError(str(res.get("error") or f"{what} failed"))

        folder = cell.folder(Path(out))
        ev: EvalSpec = cell.evaluation
        data = _eval_data(_key(data_dir), cell.settings.config.image_size, ev.limit)
        result = evaluate(
            folder,
            ExecutionSpec(mask_seed=ev.mask_seed),
            EvalOptions(
                limit=ev.limit,
                classifier_dir=str(cell.classifier.folder(Path(out))),
                baselines=False,
                device=device(),
            ),
            data=data,
            shared_baselines=baselines["baselines"],
        )
        assert isinstance(result, EvalResult)  # no dry run: the exact path
        save_record(
            CellRecord(
                name=cell.name,
                axes={a: list(v) if isinstance(v, tuple) else v for a, v in cell.axes},
                classifier=cell.classifier.key,
                eval_limit=ev.limit,
                mask_seed=ev.mask_seed,
                train_action=str(trained.get("action")),
                seconds={"train": float(trained.get("seconds", 0.0))},
            ),
            folder / CELL_FILE,
        )
        (folder / ERROR_FILE).unlink(missing_ok=True)
        return {"metrics": {k: v["mean"] for k, v in result.metrics.items()}}

    return _guard(f"evaluate {cell.name}", work, threads)
