"""``reproduce``'s work as independent tasks on a pool of one-thread processes (spawned, so nothing is shared).

Nine tasks: the classifier and the four trainings need nothing, the three baseline scorings need the classifier,
and each run's evaluation needs its training and the classifier. :func:`run_all` starts every task as soon as
what it needs is done, so the classifier trains beside the four runs. On two cores one thread per process beats
two threads per task (torch's second thread adds far less than a second process does). Every task computes
exactly what the sequential path computes: the classifier pins its own thread count, and the exact-path
metrics are the same to every stored digit.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from qmae_qiskit.evaluate import classifier as clf_mod
from qmae_qiskit.evaluate.evaluation import EvalOptions, EvalResult, evaluate, evaluate_baselines, load_eval_data
from qmae_qiskit.experiments.paper_runs import ensure_classifier, ensure_trained
from qmae_qiskit.hardware.spec import ExecutionSpec


@dataclass(frozen=True)
class Job:
    """What every task needs: where, which data, which images and masks are scored, on which device."""

    out: Path
    data_dir: str | Path | None
    test_limit: int | None
    mask_seed: int
    device: str = "cpu"


def default_workers() -> int:
    """One process per core this process may use, at most five (the five tasks that need nothing)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(5, cores))


def _init_worker() -> None:
    torch.set_num_threads(1)


@functools.lru_cache(maxsize=2)
def _data(data_dir: str | Path | None, test_limit: int | None):

    return load_eval_data(data_dir, "test", 16, test_limit)


@functools.lru_cache(maxsize=2)
def _classifier(folder: str, device: str):

    return clf_mod.load(folder, device)[0]


def train_task(spec: Any, job: Job, train: dict) -> tuple[str, float]:
    """Train one run (or reuse it); (what was done, seconds)."""

    t = time.perf_counter()
    action = ensure_trained(spec, job.out / spec.name, train, job.data_dir, False, lambda _: None)
    return action, round(time.perf_counter() - t, 1)


def classifier_task(job: Job, settings: dict) -> tuple[dict, float]:
    """Train the classifier unless it is cached; (its info, seconds)."""

    t = time.perf_counter()
    info = ensure_classifier(
        job.out / "classifier", job.data_dir, 16, False, lambda _: None, settings, job.test_limit, job.device
    )
    return info, round(time.perf_counter() - t, 1)


def score_run(spec: Any, job: Job, data: Any) -> Any:
    """One run scored on ``data`` on the exact path (an ``EvalResult`` without baselines: they are scored once per
    mask ratio and join the record afterwards)."""

    options = EvalOptions(
        limit=job.test_limit, classifier_dir=str(job.out / "classifier"), baselines=False, device=job.device
    )
    result = evaluate(job.out / spec.name, ExecutionSpec(mask_seed=job.mask_seed), options, data=data)
    assert isinstance(result, EvalResult)  # no dry run: the exact path
    return result


def evaluate_task(spec: Any, job: Job) -> tuple[Any, float]:
    """One run scored on the test images (its ``EvalResult`` without baselines); (the record, seconds)."""
    t = time.perf_counter()
    result = score_run(spec, job, _data(job.data_dir, job.test_limit))
    return result, round(time.perf_counter() - t, 1)


def baselines_task(spec: Any, job: Job) -> tuple[dict, float]:
    """The no-circuit fills at the run's mask ratio and patch grid; (their scores, seconds)."""

    t = time.perf_counter()
    model = _classifier(str(job.out / "classifier"), job.device)
    rec = evaluate_baselines(spec.config, spec.mask_ratio, _data(job.data_dir, job.test_limit), model, job.mask_seed)
    return rec, round(time.perf_counter() - t, 1)


@dataclass
class Results:
    actions: dict[str, str]
    classifier: dict
    evals: dict[str, Any]  # run name -> EvalResult (without baselines until reproduce joins them)
    baselines: dict[str, dict]
    seconds: dict[str, float]


def run_all(
    specs: list, job: Job, train: dict, clf_settings: dict, workers: int, log: Callable[[str], None]
) -> Results:
    """Every task of ``reproduce`` on ``workers`` processes, each started once what it needs is done."""

    res = Results({}, {}, {}, {}, {})
    keys = {f"{s.mask_ratio:g}": s for s in specs}  # one baseline scoring per mask ratio
    with ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"), initializer=_init_worker) as pool:
        todo: dict[Future, tuple[str, str]] = {pool.submit(classifier_task, job, clf_settings): ("classifier", "")}
        todo.update({pool.submit(train_task, s, job, train): ("train", s.name) for s in specs})
        log(f"training the classifier and {len(specs)} runs on {workers} processes (one thread each)")
        while todo:
            finished, _ = wait(todo, return_when=FIRST_COMPLETED)
            for fut in finished:
                kind, name = todo.pop(fut)
                value, secs = fut.result()  # a failed task raises here; the pool cancels the rest
                res.seconds[f"{kind} {name}".strip()] = secs
                log(f"{kind} {name}: done in {secs:.0f} s".replace("  ", " "))
                _store(res, kind, name, value)
                for new in _ready(kind, name, res, specs, keys):
                    fn, arg, key = new
                    todo[pool.submit(fn, arg, job)] = key
    return res


def _store(res: Results, kind: str, name: str, value: Any) -> None:
    if kind == "classifier":
        res.classifier = value
    elif kind == "train":
        res.actions[name] = value
    elif kind == "evaluate":
        res.evals[name] = value
    else:
        res.baselines[name] = value


def _ready(kind: str, name: str, res: Results, specs: list, keys: dict) -> list[tuple[Callable, Any, tuple]]:
    """The tasks that the one just finished makes runnable."""
    if kind == "classifier":
        new: list[tuple[Callable, Any, tuple]] = [(baselines_task, s, ("baselines", k)) for k, s in keys.items()]
        return new + [(evaluate_task, s, ("evaluate", s.name)) for s in specs if s.name in res.actions]
    if kind == "train" and res.classifier:
        spec = next(s for s in specs if s.name == name)
        return [(evaluate_task, spec, ("evaluate", name))]
    return []
