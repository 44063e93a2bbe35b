"""Figures written by training (the loss curve); evaluation and experiments reuse its panel. Each writes atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qmae_qiskit.figures import pyplot, save_figure


def _moving_average(values: Sequence[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def draw_loss(ax: Any, records: Sequence[dict[str, Any]], title: str) -> None:
    """One Fig. 8 panel on ``ax``: batch loss 1 - <Z> per step, its moving average, validation loss per epoch."""
    steps = [int(r["step"]) for r in records]
    losses = [float(r["loss"]) for r in records]
    if steps:
        ax.plot(steps, losses, color="tab:blue", alpha=0.35, lw=1, label="batch loss")
        window = max(1, len(steps) // 20)
        if window > 1:
            ax.plot(steps, _moving_average(losses, window), color="tab:blue", lw=2, label=f"mean of {window} steps")
        val = [(int(r["step"]), 1.0 - float(r["val_fidelity"])) for r in records if r.get("val_fidelity") is not None]
        if val:
            ax.plot(*zip(*val), "o-", color="tab:orange", ms=3, lw=1.5, label="validation loss")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("step")
    ax.set_ylabel(r"fidelity loss $1 - \langle Z \rangle$")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)


def plot_loss(records: Sequence[dict[str, Any]], path: str | Path, title: str = "Training loss") -> Path:
    """Paper Fig. 8 style loss curve of one run (``loss.png`` in the run folder)."""
    fig, ax = pyplot().subplots(figsize=(6.4, 4.0), dpi=120)
    draw_loss(ax, records, title)
    fig.tight_layout()
    return save_figure(fig, path)
