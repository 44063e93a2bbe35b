"""Plots of a sweep: each metric against each swept axis, mean with its 95 % band, best no-circuit baseline dashed.

One PNG per (metric, axis): one line per model, one panel per combination of the other swept axes (seeds are
the replicates inside each point, never an axis).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from qmae_qiskit.experiments.grid import REPLICATE_AXES
from qmae_qiskit.experiments.records import GroupStats, SweepSummary
from qmae_qiskit.figures import pyplot, save_figure

COLORS = {"qmae": "tab:blue", "qae": "tab:orange"}


def plot_axes(summary: SweepSummary) -> list[str]:
    """Swept axes worth a plot: not seeds, at least two values; the model only when nothing else is swept."""
    axes = [a for a, v in summary.grid.items() if a not in REPLICATE_AXES and len(v) > 1]
    others = [a for a in axes if a != "model"]
    return others or axes


def _label(v: Any) -> str:
    return "x".join(map(str, v)) if isinstance(v, list) else str(v)


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _panels(summary: SweepSummary, metric: str, axis: str) -> dict[tuple, list[GroupStats]]:
    """Groups per combination of the other swept axes; a group swept over fewer axes (QAE beside QMAE's token
    forms, in a grid of blocks) is drawn in every panel it agrees with instead of a panel of its own."""
    own: dict[tuple, list[GroupStats]] = {}
    for g in summary.groups:
        if axis in g.key and metric in g.metrics:
            rest = tuple((k, _label(v)) for k, v in g.key.items() if k not in (axis, "model"))
            own.setdefault(rest, []).append(g)
    wider = {r: [s for s in own if s != r and all(i in s for i in r)] for r in own}
    panels: dict[tuple, list[GroupStats]] = {r: list(gs) for r, gs in own.items() if not wider[r]}
    for r, gs in own.items():
        for s in wider[r]:
            if s in panels:
                panels[s] += gs
    return panels


def plot_metric(summary: SweepSummary, metric: str, axis: str, path: Path) -> Path | None:
    plt = pyplot()

    order = summary.grid[axis]
    numeric = _numeric(order)
    pos = {_label(v): (v if numeric else i) for i, v in enumerate(order)}
    panels = _panels(summary, metric, axis)
    if not panels:
        return None
    n = len(panels)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axs = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), dpi=110, squeeze=False)
    scale = 100.0 if metric == "accuracy" else 1.0
    for i, (rest, groups) in enumerate(panels.items()):
        ax = axs[i // cols][i % cols]
        lines: dict[str, list[GroupStats]] = {}
        for g in groups:
            lines.setdefault(str(g.key.get("model", "model")) if axis != "model" else "model", []).append(g)
        for label, gs in lines.items():
            gs = sorted(gs, key=lambda g: pos[_label(g.key[axis])])
            x = [pos[_label(g.key[axis])] for g in gs]
            st = [g.metrics[metric] for g in gs]
            y = [scale * s.mean for s in st]
            color = COLORS.get(label, "tab:green")
            name = label.upper() if label in COLORS else label
            band = [(xx, scale * s.ci95[0], scale * s.ci95[1]) for xx, s in zip(x, st) if s.ci95 is not None]
            if numeric:  # a line with its band
                ax.plot(x, y, "o-", color=color, label=name)
                if band:
                    bx, lo, hi = zip(*band)
                    ax.fill_between(bx, lo, hi, color=color, alpha=0.2, lw=0)
            else:  # categories: points with error bars
                lo = [yy - scale * s.ci95[0] if s.ci95 else 0.0 for yy, s in zip(y, st)]
                hi = [scale * s.ci95[1] - yy if s.ci95 else 0.0 for yy, s in zip(y, st)]
                ax.errorbar(x, y, yerr=[lo, hi], fmt="o", color=color, capsize=4, label=name)
        best: dict[Any, float] = {}
        for g in groups:
            best_name = g.best_baseline.get(metric)
            if best_name is not None:
                best[pos[_label(g.key[axis])]] = scale * g.baselines[best_name][metric].mean
        if best:
            bx = sorted(best)
            ax.plot(bx, [best[v] for v in bx], "--", color="gray", label="best no-circuit baseline")
        if not numeric:
            ax.set_xticks(range(len(order)), [_label(v) for v in order])
            ax.set_xlim(-0.5, len(order) - 0.5)
        ax.set_xlabel(axis)
        ax.set_ylabel(f"{metric}{' (%)' if metric == 'accuracy' else ''}")
        ax.set_title(", ".join(f"{k}={v}" for k, v in rest) or "all", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for j in range(n, rows * cols):
        axs[j // cols][j % cols].set_visible(False)
    fig.suptitle(f"{metric} vs {axis}: mean over seeds, 95 % t interval", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_summary(summary: SweepSummary, folder: str | Path) -> list[Path]:
    files = []
    for axis in plot_axes(summary):
        for metric in summary.metrics:
            p = plot_metric(summary, metric, axis, Path(folder) / f"{metric}-vs-{axis}.png")
            if p is not None:
                files.append(p)
    return files
