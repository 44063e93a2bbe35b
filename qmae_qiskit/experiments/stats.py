"""Statistics over seeds: Student-t 95 % intervals of cell means, grouped and paired.

Every cell contributes one number per metric: its mean over the evaluated test images (from its eval.json). A
group is the cells that differ only in seed (training seed and classifier seed); its interval treats those cells
as independent replicates: mean +- t_{0.975, n-1} * s / sqrt(n), s the sample standard deviation (ddof = 1); with
one cell there is no interval (null). Paired differences (QMAE - QAE, or model - best baseline) are taken per
replicate on the same test images and masks first, then given the same interval, which removes the variation the
two share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qmae_qiskit.experiments.records import GroupStats, PairedStats, Stat

METHOD = {
    "ci95": "Student t over seeds: mean +- t(0.975, n-1) * std / sqrt(n), std with ddof = 1, one value per cell "
    "(its mean over the evaluated test images); null for n = 1",
    "replicates": "cells that differ only in the training seed and/or the classifier seed",
    "paired": "QMAE - QAE per (seed, classifier seed) on the same test images and masks, then the t interval over "
    "the pairs",
    "baselines": "no-circuit fills on the same images and masks; they depend on the classifier seed only (accuracy), "
    "so each classifier seed counts once (fidelity, CS and SSIM do not depend on it: std 0)",
    "minus_best_baseline": "per cell, the model's value minus that of the baseline with the highest group mean, "
    "same classifier seed; t interval over the cells",
}


def t_stat(values: Sequence[float], level: float = 0.95) -> Stat:
    """Mean, sample std, n and the two-sided Student-t interval of ``values`` (null interval for n < 2)."""
    from scipy.stats import t  # lazy: scipy.stats adds ~0.5 s; only summaries need it

    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = math.fsum(values) / n
    if n < 2:
        return Stat(mean=mean, std=None, n=n, ci95=None)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return Stat(mean=mean, std=std, n=n, ci95=[mean - half, mean + half])


@dataclass(frozen=True)
class CellValues:
    """What the statistics need of one finished cell."""

    name: str
    key: tuple[tuple[str, Any], ...]  # the swept values that are not seeds
    model: str
    seed: int
    classifier_seed: int
    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]


def _stats(rows: list[dict[str, float]], metrics: Sequence[str]) -> dict[str, Stat]:
    return {m: t_stat([r[m] for r in rows]) for m in metrics if rows and all(m in r for r in rows)}


def group_stats(cells: Sequence[CellValues], metrics: Sequence[str]) -> list[GroupStats]:
    """One entry per distinct key, in first-seen order."""
    groups: dict[tuple, list[CellValues]] = {}
    for c in cells:
        groups.setdefault(c.key, []).append(c)
    out = []
    for key, members in groups.items():
        per_clf: dict[int, dict[str, dict[str, float]]] = {}
        for c in members:
            per_clf.setdefault(c.classifier_seed, c.baselines)
        names = sorted({b for bl in per_clf.values() for b in bl})
        baselines = {b: _stats([bl[b] for bl in per_clf.values() if b in bl], metrics) for b in names}
        best: dict[str, str] = {}
        minus: dict[str, Stat] = {}
        for m in metrics:
            scored = {b: s[m].mean for b, s in baselines.items() if m in s}
            if not scored or not all(m in c.metrics for c in members):
                continue
            best[m] = max(scored, key=lambda b: scored[b])
            diffs = [c.metrics[m] - c.baselines[best[m]][m] for c in members if m in c.baselines.get(best[m], {})]
            if diffs:
                minus[m] = t_stat(diffs)
        out.append(
            GroupStats(
                key=dict(key),
                cells=[c.name for c in members],
                n=len(members),
                metrics=_stats([c.metrics for c in members], metrics),
                baselines=baselines,
                best_baseline=best,
                minus_best_baseline=minus,
            )
        )
    return out


def paired_stats(
    cells: Sequence[CellValues], metrics: Sequence[str], a: str = "qmae", b: str = "qae"
) -> list[PairedStats]:
    """``a - b`` for cells equal in every swept value but the model, matched by (seed, classifier seed).

    A ``b`` group swept over fewer axes (QAE beside QMAE's token forms, in a grid of blocks) pairs with every
    ``a`` group that agrees with it on the axes it has; the most specific such ``b`` group is taken."""
    by_key: dict[tuple, dict[str, dict[tuple[int, int], CellValues]]] = {}
    for c in cells:
        rest = tuple((k, v) for k, v in c.key if k != "model")
        by_key.setdefault(rest, {}).setdefault(c.model, {})[(c.seed, c.classifier_seed)] = c
    b_keys = [k for k, models in by_key.items() if b in models]
    out = []
    for key, models in by_key.items():
        partners = [k for k in b_keys if all(item in key for item in k)]
        if a not in models or not partners:
            continue
        b_cells = by_key[max(partners, key=len)][b]
        reps = [r for r in models[a] if r in b_cells]
        if not reps:
            continue
        pairs = [(models[a][r], b_cells[r]) for r in reps]
        diffs = [
            {m: x.metrics[m] - y.metrics[m] for m in metrics if m in x.metrics and m in y.metrics} for x, y in pairs
        ]
        out.append(
            PairedStats(
                key=dict(key),
                pairs=[[x.name, y.name] for x, y in pairs],
                n=len(pairs),
                metrics=_stats(diffs, metrics),
            )
        )
    return out


def interval_text(s: Stat | None, pct: bool = False, digits: int = 3) -> str:
    """``0.734 ± 0.012 [0.722, 0.746] (n=5)``; ``0.734 (n=1)`` without an interval."""
    if s is None:
        return "–"
    f = 100.0 if pct else 1.0
    d = 2 if pct else digits
    unit = " %" if pct else ""
    if s.ci95 is None:
        return f"{f * s.mean:.{d}f}{unit} (n={s.n})"
    half = (s.ci95[1] - s.ci95[0]) / 2
    return f"{f * s.mean:.{d}f} ± {f * half:.{d}f}{unit} [{f * s.ci95[0]:.{d}f}, {f * s.ci95[1]:.{d}f}] (n={s.n})"
