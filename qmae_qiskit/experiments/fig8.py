"""Figure 8 as the paper drew it: the per-sample training loss (batch size 1, paper Algorithm 1) of QMAE and QAE
beside the batch-trained curves, and the numbers that separate per-sample spread from not converging.

The paper reads its Fig. 8 as "QMAE converges to ~0.25, QAE ranges from 0.2 to 0.8". With one image per step the
plotted loss is one image's 1 - <Z>, so a curve can swing over a wide range while the model does not change at
all. Two numbers tell the cases apart:

* the trend: the moving mean of the per-sample loss over the first and the last tenth of the steps (flat =
  converged, whatever the spread);
* the spread of a *fixed* model: 1 - <Z> of the final parameters on held-out test images (evaluation masks),
  5th-95th percentiles. If a converged model shows the same range image by image, the range is per-sample
  spread, not a failure to converge.

The batch runs (``reproduce``'s qmae-m25 / qae-m25) are scored the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from qmae_qiskit.data import load_mnist
from qmae_qiskit.experiments.paper_runs import RunSpec, ensure_trained
from qmae_qiskit.figures import pyplot, save_figure
from qmae_qiskit.model.config import QMAEConfig
from qmae_qiskit.model.masking import eval_masks
from qmae_qiskit.records import Record, save_record
from qmae_qiskit.simulate import exact
from qmae_qiskit.train.runs import RunSettings, load_trained, read_metrics

PERCENTILES = (5, 25, 50, 75, 95)


class Fig8Record(Record):
    """fig8-per-sample.json: the per-sample runs' trends and the held-out spread of every scored model."""

    SCHEMA: ClassVar[str] = "qmae-qiskit/fig8-per-sample"
    VERSION: ClassVar[int] = 1
    WHAT: ClassVar[str] = "Figure 8 record"

    method: str
    settings: dict[str, Any]
    per_sample: dict[str, dict[str, Any]]
    held_out: dict[str, dict[str, Any]]
    batch_runs: dict[str, dict[str, Any]]


def moving_mean(values: Sequence[float], window: int) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    c = np.cumsum(np.insert(v, 0, 0.0))
    out = np.empty_like(v)
    for i in range(len(v)):
        lo = max(0, i + 1 - window)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out


def trend(losses: Sequence[float]) -> dict[str, Any]:
    """Mean loss of the first and the last tenth of the steps, and the last tenth's percentiles."""
    v = np.asarray(losses, dtype=float)
    k = max(1, len(v) // 10)
    return {
        "steps": len(v),
        "first_tenth_mean": float(v[:k].mean()),
        "last_tenth_mean": float(v[-k:].mean()),
        "last_tenth_percentiles": {str(p): float(np.percentile(v[-k:], p)) for p in PERCENTILES},
        "min": float(v.min()),
        "max": float(v.max()),
    }


def held_out_losses(tm, images: torch.Tensor, indices: torch.Tensor, mask_seed: int = 0) -> np.ndarray:
    """1 - <Z> per held-out image of the fixed model ``tm`` (a TrainedModel), evaluation masks."""

    model = tm.module()
    patch_idx = eval_masks(tm.cfg, tm.mask_ratio, indices, mask_seed)
    with torch.no_grad():
        xm = model.masked_inputs(images, patch_idx)
        fid = exact.fidelity(tm.theta, xm, images.reshape(len(images), -1).to(torch.float64), tm.cfg)
    return (1.0 - fid).numpy()


def spread(losses: np.ndarray) -> dict[str, Any]:
    return {
        "n_images": int(losses.size),
        "mean": float(losses.mean()),
        "percentiles": {str(p): float(np.percentile(losses, p)) for p in PERCENTILES},
        "fraction_in_0.2_0.8": float(((losses >= 0.2) & (losses <= 0.8)).mean()),
    }


def per_sample_settings(model: str, samples: int, epochs: int, lr: float, seed: int):

    return RunSettings(
        model=model,
        backend="exact",
        config=QMAEConfig(),
        mask_ratio=0.25,
        epochs=epochs,
        batch_size=1,
        train_samples=samples,
        val_samples=0,
        lr=lr,
        seed=seed,
        checkpoint_every=max(1, samples // 10),
    )


@dataclass(frozen=True)
class Fig8Settings:
    """The per-sample runs' training (images, epochs, Adam's rate, seed) and the held-out scoring (the first
    ``held_out`` test images, evaluation masks of ``mask_seed``)."""

    samples: int = 4500
    epochs: int = 1
    lr: float = 0.001
    seed: int = 0
    held_out: int = 1000
    mask_seed: int = 0


def make_fig8(
    out: str | Path,
    data_dir: str | Path | None,
    settings: Fig8Settings = Fig8Settings(),
    batch_runs: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Fig8Record:
    """Train (or reuse) the two per-sample runs, score every model on held-out images, draw the figure."""

    out, s = Path(out), settings
    test = load_mnist(data_dir, train=False, image_size=16, limit=s.held_out)
    runs, per_sample, scored = _per_sample_runs(out, data_dir, s, test, progress, log)
    batch_curves: dict = {}
    batch: dict = {}
    if batch_runs is not None:
        batch_curves, batch, batch_scored = _batch_runs(Path(batch_runs), test, s.mask_seed)
        scored.update(batch_scored)
    record = Fig8Record(
        method=(__doc__ or "").split("\n\n")[1].replace("\n", " ").strip(),
        settings={
            "samples": s.samples,
            "epochs": s.epochs,
            "lr": s.lr,
            "seed": s.seed,
            "held_out_test_images": s.held_out,
            "mask_ratio": 0.25,
            "image_size": 16,
            "batch_size": 1,
        },
        per_sample=per_sample,
        held_out=scored,
        batch_runs=batch,
    )

    save_record(record, out / "fig8-per-sample.json")
    draw(runs, batch_curves, record, out / "fig8-per-sample.png")
    return record


def _per_sample_runs(
    out: Path, data_dir: str | Path | None, s: Fig8Settings, test: Any, progress: bool, log: Callable[[str], None]
) -> tuple[dict, dict, dict]:
    """Train (or reuse) the batch-size-1 QMAE and QAE runs: their loss records, trends and held-out spreads."""
    runs, per_sample, scored = {}, {}, {}
    for model in ("qmae", "qae"):
        rs = per_sample_settings(model, s.samples, s.epochs, s.lr, s.seed)
        spec = RunSpec(f"{model}-m25-batch1", model, 0.25, rs.config)
        train = {k: getattr(rs, k) for k in ("epochs", "batch_size", "train_samples", "val_samples", "lr", "seed")}
        ensure_trained(
            spec, out / spec.name, {**train, "checkpoint_every": rs.checkpoint_every}, data_dir, progress, log
        )
        recs = read_metrics(out / spec.name)
        runs[model] = recs
        per_sample[model] = trend([r["loss"] for r in recs])
        scored[f"{model} per-sample"] = spread(
            held_out_losses(load_trained(out / spec.name), test.images, test.indices, s.mask_seed)
        )
    return runs, per_sample, scored


def _batch_runs(batch_runs: Path, test: Any, mask_seed: int) -> tuple[dict, dict, dict]:
    """The batch-trained runs ``<batch_runs>/{qmae,qae}-m25``: loss records, trends and held-out spreads."""
    curves, batch, scored = {}, {}, {}
    for model in ("qmae", "qae"):
        folder = batch_runs / f"{model}-m25"
        tm = load_trained(folder)
        recs = read_metrics(folder)
        curves[model] = recs
        batch[model] = {
            "run": str(folder),
            "batch_size": tm.settings.batch_size,
            "epochs": tm.settings.epochs,
            **trend([r["loss"] for r in recs]),
        }
        scored[f"{model} batch"] = spread(held_out_losses(tm, test.images, test.indices, mask_seed))
    return curves, batch, scored


def _panel(ax, losses: Sequence[float], title: str, x_label: str, window: int, per_image: dict | None) -> None:
    x = np.arange(1, len(losses) + 1)
    ax.plot(x, losses, lw=0.4, alpha=0.35, color="tab:blue", label="loss of each step")
    ax.plot(x, moving_mean(losses, window), lw=2, color="tab:blue", label=f"moving mean ({window} steps)")
    if per_image is not None:
        p = per_image["percentiles"]
        ax.axhspan(p["5"], p["95"], color="tab:orange", alpha=0.15, label="final model, held-out images 5-95 %")
        ax.axhline(p["50"], color="tab:orange", lw=1.2, ls="--", label="final model, held-out median")
    ax.set_ylim(0, 1)
    ax.set_xlabel(x_label)
    ax.set_ylabel(r"$1 - \langle Z \rangle$")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")


def draw(runs: dict, batch_curves: dict, record: Fig8Record, path: Path) -> Path:
    plt = pyplot()

    rows = 2 if batch_curves else 1
    fig, axes = plt.subplots(rows, 2, figsize=(11, 3.8 * rows), dpi=120, squeeze=False)
    for i, model in enumerate(("qmae", "qae")):
        losses = [r["loss"] for r in runs[model]]
        _panel(
            axes[0][i],
            losses,
            f"({chr(97 + i)}) {model.upper()}, batch size 1 (per-sample loss, as the paper trains)",
            "step = training image",
            max(1, len(losses) // 30),
            record.held_out.get(f"{model} per-sample"),
        )
        if batch_curves:
            b = [r["loss"] for r in batch_curves[model]]
            bs = record.batch_runs[model]["batch_size"]
            _panel(
                axes[1][i],
                b,
                f"({chr(99 + i)}) {model.upper()}, batch size {bs} (mean loss of the batch)",
                "step",
                max(1, len(b) // 20),
                record.held_out.get(f"{model} batch"),
            )
    fig.tight_layout()
    return save_figure(fig, path)


def summary_text(r: Fig8Record) -> str:
    """One line per curve: trend (first -> last tenth) and the fixed model's held-out 5-95 % range."""
    lines = []
    for model, t in r.per_sample.items():
        h = r.held_out[f"{model} per-sample"]["percentiles"]
        lines.append(
            f"{model.upper()} batch 1: mean loss {t['first_tenth_mean']:.3f} -> {t['last_tenth_mean']:.3f} (first -> "
            f"last tenth of {t['steps']} steps); last tenth 5-95 %: {t['last_tenth_percentiles']['5']:.2f}-"
            f"{t['last_tenth_percentiles']['95']:.2f}; final model on held-out images 5-95 %: "
            f"{h['5']:.2f}-{h['95']:.2f}"
        )
    for model, t in r.batch_runs.items():
        h = r.held_out[f"{model} batch"]["percentiles"]
        lines.append(
            f"{model.upper()} batch {t['batch_size']}: mean loss {t['first_tenth_mean']:.3f} -> "
            f"{t['last_tenth_mean']:.3f}; final model on held-out images 5-95 %: {h['5']:.2f}-{h['95']:.2f}"
        )
    return "\n".join(lines)
