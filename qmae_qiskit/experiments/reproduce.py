"""One command for the paper's Table 1 and Figures 6-8: classifier, four trained runs, evaluation, figures.

Layout of ``out``::

    classifier/            classifier.json (committed) and classifier.pt (a cache: ignored by git)
    qmae-m25/ ...          one training run folder each (config.json, metrics.jsonl, checkpoint.pt, loss.png,
    qae-m25/               eval.json), trained on the exact path
    qmae-m12.5/            12.5 %: one 4x8 patch of 8 (an 8x8 grid cell cannot make 12.5 %)
    qmae-m50/              50 %: two 8x8 patches of 4
    params.json            trained theta and mask tokens as plain numbers (a ParamsRecord)
    table1.md, table1.json, fig6.png, fig7.png, fig8.png

A run folder that is already finished with the same settings is reused (not retrained), so re-running
``reproduce`` on committed results re-evaluates the committed parameters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from qmae_qiskit.device import resolve_device
from qmae_qiskit.evaluate import classifier as clf_mod
from qmae_qiskit.evaluate import figures
from qmae_qiskit.evaluate.evaluation import (
    EVAL_FILE,
    EvalData,
    evaluate_baselines,
    load_eval_data,
)
from qmae_qiskit.evaluate.scoring import PAPER_TABLE1
from qmae_qiskit.experiments import reproduce_pool as pool
from qmae_qiskit.experiments.paper_runs import (
    CLASSIFIER_DEFAULTS,
    PAPER_GAP,
    TRAIN_DEFAULTS,
    RunSpec,
    ensure_classifier,
    ensure_trained,
    run_specs,
)
from qmae_qiskit.experiments.records import ParamsRecord, Table1Record
from qmae_qiskit.experiments.reproduce_pool import Results, score_run
from qmae_qiskit.io import atomic_write_text
from qmae_qiskit.records import save_record
from qmae_qiskit.train.runs import (
    load_trained,
    read_metrics,
)


@dataclass(frozen=True)
class Execution:
    """How ``reproduce``, ``reproduce_seeds`` and ``run_sweep`` run, never what they compute: processes (or a Dask
    scheduler), the torch device, progress bars and the log."""

    workers: int | None = None  # reproduce: None = one per core (at most 5), 1 = all in this process; Dask: workers
    device: str = "cpu"
    progress: bool = True
    log: Callable[[str], None] = print
    scheduler: str | None = None  # Dask: a running dask.distributed scheduler's address (None: a local cluster)
    connect_timeout: float = 5.0  # Dask: seconds to wait for ``scheduler``


def reproduce(
    out: str | Path,
    data_dir: str | Path | None,
    test_limit: int | None = None,
    train: dict | None = None,
    classifier_settings: dict | None = None,
    mask_seed: int = 0,
    execution: Execution | None = None,
) -> dict:
    """Everything in the module docstring; returns the table1.json record.

    ``execution``: with more than one worker (the default on a multi-core CPU) the classifier, the four
    trainings, the evaluations and the baselines run as tasks on one-thread processes
    (:mod:`qmae_qiskit.experiments.reproduce_pool`); with one, in this process in turn (the path before the pool).
    The numbers are the same either way.
    """

    t0 = time.perf_counter()
    ex = execution or Execution()
    device = resolve_device(ex.device).type  # a missing GPU fails here, before anything is written
    out = Path(out)
    train = {**TRAIN_DEFAULTS, **(train or {})}
    classifier_settings = {**CLASSIFIER_DEFAULTS, **(classifier_settings or {})}
    specs = run_specs()
    job = pool.Job(out, data_dir, test_limit, mask_seed, device)
    workers = ex.workers or (1 if device == "cuda" else pool.default_workers())
    if workers > 1:
        res = pool.run_all(specs, job, train, classifier_settings, workers, ex.log)
    else:
        res = _sequential(specs, job, train, classifier_settings, ex)
    data = load_eval_data(data_dir, "test", 16, test_limit)
    for spec in specs:  # the baselines, scored once per mask ratio, join each run's record (through the codec)
        result = res.evals[spec.name].model_copy(update={"baselines": res.baselines[f"{spec.mask_ratio:g}"]})
        save_record(result, out / spec.name / EVAL_FILE)
        res.evals[spec.name] = result
    ex.log("figures")
    t = time.perf_counter()
    write_figures(out, data, mask_seed)
    res.seconds["figures"] = round(time.perf_counter() - t, 1)
    write_params(out, specs)
    res.seconds["total"] = round(time.perf_counter() - t0, 1)
    record = table_record(res, train, classifier_settings, len(data.images), mask_seed)
    record["workers"] = workers
    save_record(Table1Record.model_validate(record), out / "table1.json")
    atomic_write_text(out / "table1.md", table_markdown(record))
    return record


def _sequential(specs: list[RunSpec], job, train: dict, clf_settings: dict, ex: Execution):
    """The tasks one after another in this process (the order ``reproduce`` had before the pool)."""

    res = Results({}, {}, {}, {}, {})
    for spec in specs:
        t = time.perf_counter()
        res.actions[spec.name] = ensure_trained(spec, job.out / spec.name, train, job.data_dir, ex.progress, ex.log)
        res.seconds[f"train {spec.name}"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    res.classifier = ensure_classifier(
        job.out / "classifier", job.data_dir, 16, ex.progress, ex.log, clf_settings, job.test_limit, job.device
    )
    res.seconds["classifier"] = round(time.perf_counter() - t, 1)
    classifier, _ = clf_mod.load(job.out / "classifier", job.device)
    ex.log("evaluating on the test split (exact path)")
    data = load_eval_data(job.data_dir, "test", 16, job.test_limit)
    for spec in specs:
        t = time.perf_counter()
        res.evals[spec.name] = score_run(spec, job, data)
        res.seconds[f"evaluate {spec.name}"] = round(time.perf_counter() - t, 1)
        key = f"{spec.mask_ratio:g}"
        if key not in res.baselines:
            t = time.perf_counter()
            res.baselines[key] = evaluate_baselines(spec.config, spec.mask_ratio, data, classifier, job.mask_seed)
            res.seconds[f"baselines {key}"] = round(time.perf_counter() - t, 1)
    return res


def write_figures(out: Path, data: EvalData, mask_seed: int) -> None:

    rows = torch.tensor(figures.pick_digits(data.labels, 5))
    images, indices = data.images[rows], data.indices[rows]
    runs = {s.name: load_trained(out / s.name) for s in run_specs()}
    figures.fig6(runs["qmae-m25"], runs["qae-m25"], images, indices, out / "fig6.png", mask_seed)
    figures.fig7([runs["qmae-m12.5"], runs["qmae-m25"], runs["qmae-m50"]], images, indices, out / "fig7.png", mask_seed)
    figures.fig8(
        [("QMAE, 25 % mask", read_metrics(out / "qmae-m25")), ("QAE, 25 % mask", read_metrics(out / "qae-m25"))],
        out / "fig8.png",
    )


def write_params(out: Path, specs: list[RunSpec]) -> None:

    params = {}
    for s in specs:
        tm = load_trained(out / s.name)
        params[s.name] = {
            "model": tm.kind,
            "mask_ratio": tm.mask_ratio,
            "config": tm.cfg.model_dump(),
            "theta": tm.theta.tolist(),
            "mask_token": None if tm.token is None else tm.token.tolist(),
        }
    save_record(ParamsRecord.model_validate({"runs": params}), out / "params.json")


# ----------------------------------------------------------------------------------------------- table 1
def _means(metrics: dict) -> dict:
    return {k: v["mean"] for k, v in metrics.items()}


def table_record(res: Results, train: dict, clf_settings: dict, n_images: int, mask_seed: int) -> dict:
    """The table1.json record from what the tasks produced (``res``: evaluations with their baselines joined,
    the classifier's info, the runs' actions and the seconds) and the settings they ran with."""
    evals = {name: result.to_json() for name, result in res.evals.items()}
    baselines, clf_info = res.baselines, res.classifier
    qmae, qae = _means(evals["qmae-m25"]["metrics"]), _means(evals["qae-m25"]["metrics"])
    base25 = {
        k: _means({m: v[m] for m in ("fidelity", "cs", "ssim", "accuracy") if m in v})
        for k, v in baselines["0.25"].items()
    }
    paper = PAPER_TABLE1["qmae"]
    checks = {f"QMAE {k} > paper {paper[k]}": bool(qmae.get(k, -math.inf) > paper[k]) for k in paper}
    gap = qmae.get("accuracy", math.nan) - qae.get("accuracy", math.nan)
    checks[f"QMAE - QAE accuracy >= {PAPER_GAP:.4f}"] = bool(gap >= PAPER_GAP)
    for name, b in base25.items():
        for k in ("fidelity", "accuracy"):
            if k in b:
                checks[f"QMAE {k} > baseline {name}"] = bool(qmae.get(k, -math.inf) > b[k])
    return {
        "command": "qmae-qiskit reproduce --out results/",
        "n_test_images": n_images,
        "mask_seed": mask_seed,
        "pixel_scaling": evals["qmae-m25"]["pixel_scaling"],
        "classifier": {
            "clean_test_accuracy": clf_info.get("test_accuracy"),
            "n_train": clf_info.get("n_train"),
            "n_test": clf_info.get("n_test"),
            "settings": clf_settings,
        },
        "train_settings": train,
        "runs": res.actions,
        "ours": {name: e["metrics"] for name, e in evals.items()},
        "baselines": baselines,
        "paper": PAPER_TABLE1,
        "qmae_minus_qae_accuracy": gap,
        "paper_qmae_minus_qae_accuracy": PAPER_GAP,
        "checks": checks,
        "seconds": res.seconds,
    }


def _cells(m: dict) -> str:
    def f(k: str, pct: bool = False) -> str:
        if k not in m or m[k] is None or (isinstance(m[k], float) and math.isnan(m[k])):
            return "–"
        return f"{100 * m[k]:.2f} %" if pct else f"{m[k]:.3f}"

    return f"| {f('fidelity')} | {f('cs')} | {f('ssim')} | {f('accuracy', True)} |"


def table_markdown(rec: dict) -> str:
    """table1.md: ours beside the paper, the baselines, the other mask ratios, the checks."""
    ours = {k: _means(v) for k, v in rec["ours"].items()}
    n = rec["n_test_images"]
    lines = [
        f"# Table 1, reproduced ({n} MNIST test images, 16x16, 8 qubits, 7 latent)",
        "",
        f"Made by `{rec['command']}`; every number is the mean over the test images with the same random",
        "mask per image for every model (evaluation masks keyed by image index and `--mask-seed`).",
        "",
        "| Model (25 % mask) | Fidelity | CS | SSIM | Accuracy |",
        "|---|---|---|---|---|",
        "| **QMAE (ours)** " + _cells(ours["qmae-m25"]),
        "| QAE (ours) " + _cells(ours["qae-m25"]),
        "| QMAE (paper) " + _cells(rec["paper"]["qmae"]),
        "| QAE (paper) " + _cells(rec["paper"]["qae"]),
    ]
    for b in rec["baselines"]["0.25"].values():
        lines.append(f"| baseline: {b['label']} (no circuit) " + _baseline_cells(b))
    lines += _other_ratios_lines(rec, ours)
    c = rec["classifier"]
    lines += [
        "",
        (
            f"Classifier: ResNet18 (1-channel stem, first max-pool = identity) trained on {c['n_train']} "
            f"clean training images: **{100 * (c['clean_test_accuracy'] or 0):.2f} %** on {c['n_test']} "
            f"clean test images (paper: 99.33 % with 60,000)."
        ),
        "",
        f"Pixel scaling: {rec['pixel_scaling']}.",
        "",
        "Checks:",
        "",
    ]
    lines += [f"- [{'x' if ok else ' '}] {name}" for name, ok in rec["checks"].items()]
    t = rec["train_settings"]
    lines += [
        "",
        (
            f"Training (exact path, every run): Adam lr {t['lr']}, batch {t['batch_size']}, {t['epochs']} "
            f"epochs of {t['train_samples']} training images, theta init {t['theta_init']}, token init "
            f"{t['token_init']}, seed {t['seed']}."
        ),
        "",
        "Time: " + ", ".join(f"{k} {v:.0f} s" for k, v in rec["seconds"].items()) + ".",
        "",
    ]
    return "\n".join(lines)


def _baseline_cells(b: dict) -> str:
    return _cells(_means({k: b[k] for k in ("fidelity", "cs", "ssim", "accuracy") if k in b}))


def _other_ratios_lines(rec: dict, ours: dict) -> list[str]:
    """The QMAE - QAE gap, then QMAE and the baselines at every mask ratio."""
    gap = rec["qmae_minus_qae_accuracy"]
    paper_gap = 100 * rec["paper_qmae_minus_qae_accuracy"]
    lines = [
        "",
        f"QMAE − QAE accuracy: **{100 * gap:.2f} points** (paper: {paper_gap:.2f}).",
        "",
        "Other mask ratios (QMAE; baselines on the same masks):",
        "",
        "| Mask | Model | Fidelity | CS | SSIM | Accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for name, ratio in (("qmae-m12.5", "0.125"), ("qmae-m25", "0.25"), ("qmae-m50", "0.5")):
        lines.append(f"| {float(ratio):.1%} | QMAE " + _cells(ours[name]))
        for b in rec["baselines"][ratio].values():
            lines.append(f"| {float(ratio):.1%} | {b['label']} " + _baseline_cells(b))
    return lines
