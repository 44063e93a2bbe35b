"""A noise study's files: the JSON record, a markdown table and the estimate-against-exact figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qmae_qiskit.figures import pyplot, save_figure
from qmae_qiskit.io import atomic_write_text
from qmae_qiskit.records import save_record
from qmae_qiskit.study.record import NoiseStudy, default_out, load_study

__all__ = ["default_out", "figure", "load_study", "to_markdown", "write_study"]


def ranking_lines(ranking: list[dict[str, Any]]) -> list[str]:
    """The device choice that picked the backend (``--backend auto`` or a list), as a table."""
    lines = ["Device choice (expected error: -ln of the estimated success probability):", ""]
    lines += ["| device | expected error | success | qubits | reason |", "|---|---:|---:|---|---|"]
    for r in ranking:
        score = "–" if r["score"] is None else f"{r['score']:.3f}"
        success = "–" if r["score"] is None else f"{r['success']:.3f}"
        lines.append(f"| {r['backend']} | {score} | {success} | {r['qubits'] or '–'} | {r['reason']} |")
    return lines


def to_markdown(study: NoiseStudy) -> str:
    s = study.spec
    cfg = study.config
    lines = [
        f"# Noise study: {study.model.upper()} {cfg['image_size']}x{cfg['image_size']} on {study.backend}",
        "",
        f"{len(study.per_image)} test images, {s['shots']} shots, {s['calibration_images']} calibration images from "
        f"the {s['calibration_split']} split; {study.fidelity_circuit} fidelity circuit with "
        f"{study.two_qubit_gates} two-qubit gates after transpiling (O{s['optimization_level']}, seed "
        f"{s['seed_transpiler']}); executor: {study.executor.get('name')}.",
        "",
        f"Exact (paper-faithful circuit, exact path): fidelity {study.exact['fidelity']:.4f}, CS "
        f"{study.exact['cs']:.4f}, SSIM {study.exact['ssim']:.4f}.",
        "",
        "| method | fidelity | bias | mean abs err | RMS err | mean std | 95 % coverage | CS | CS mean abs err | SSIM "
        "| SSIM mean abs err | circuits | shots | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += _method_rows(study) + _table_notes(study)
    if study.verdict:
        lines += ["", f"Verdict: {study.verdict['line']}"]
    if study.allocation:
        lines += ["", allocation_line(study.allocation)]
    if study.qpu_seconds_estimate is not None:
        lines += ["", f"QPU time estimate: {study.qpu_seconds_estimate:,.1f} s on the device this twin copies."]
    if study.device_ranking:
        lines += ["", *ranking_lines(study.device_ranking)]
    lines += ["", "Methods:", ""] + [f"- `{k}`: {v}" for k, v in study.methods.items()]
    if study.fits:
        lines += [
            "",
            "Calibration fits (on the calibration images only):",
            "",
            "| method | quantity | model | fit |",
            "|---|---|---|---|",
        ]
        for name, fits in study.fits.items():
            for what, fit in fits.items():
                lines.append(f"| {name} | {what} | {fit['model']} | {_fit_summary(fit)} |")
    if study.loading:
        ld = study.loading
        lines += [
            "",
            f"Approximate amplitude loader `{ld['loader']}` on the hardware circuits: loading fidelity "
            f"masked mean {ld['masked']['mean']:.4f} (min {ld['masked']['min']:.4f}), clean mean "
            f"{ld['clean']['mean']:.4f} (min {ld['clean']['min']:.4f}); the exact values above are the "
            "paper circuit's, so the approximation's error counts against every estimate.",
        ]
    lines += ["", "Time: " + ", ".join(f"{k} {v:.1f} s" for k, v in study.seconds.items()), ""]
    return "\n".join(lines)


def _method_rows(study: NoiseStudy) -> list[str]:
    """One table row per method: the fidelity's errors and intervals, CS and SSIM where estimated, the cost."""
    rows = []
    for name, a in study.aggregates.items():
        f, cost = a["fidelity"], a["cost"]
        rows.append(
            f"| {name} | {f['mean_estimate']:.4f} | {f['bias']:+.4f} | {f['mean_abs_error']:.4f} | "
            f"{f['rms_error']:.4f} | {f.get('mean_std', float('nan')):.4f} | {_coverage(f)} | "
            f"{_score(a.get('cs'))} | {_score(a.get('ssim'))} | {cost['circuits']} | {cost['shots']:,} | "
            f"{cost['seconds']:.1f} |"
        )
    return rows


def _table_notes(study: NoiseStudy) -> list[str]:
    """What a reader must know about the table: errors that are the runtime's, metrics not estimated."""
    notes: list[str] = []
    runtime = [name for name, a in study.aggregates.items() if a["fidelity"].get("std_source") == "runtime"]
    if runtime:
        notes += [
            "",
            f"{', '.join(f'`{r}`' for r in runtime)}: standard errors as the runtime reports them. ZNE and PEC "
            "extrapolate or reweight several circuits, and the runtime adds the projector's Pauli terms as if "
            "they were independent, so these errors can be smaller than the raw estimate's (fake_marrakesh 4×4: "
            "±0.0063 against ±0.0078): they may understate the error and are no calibrated intervals.",
        ]
    if study.spec.get("metrics") == "fidelity":
        notes += ["", "`--metrics fidelity`: no reconstruction (Sampler) job ran, so CS and SSIM were not estimated."]
    return notes


def allocation_line(a: dict) -> str:
    """A budgeted study's allocation in one paragraph: what the pilot measured and what was chosen, and why."""
    pilot = a["pilot"]
    scatter = "scatter (noise model)" if a.get("scatter_from") == "noise-model" else "scatter"
    models = ", ".join(
        f"{k.replace('_', ' ')}: slope {m['slope']:.3f}, {scatter} {m['scatter_std']:.4f}, shot std "
        f"{m['shot_std_per_shot']:.3f}/sqrt(shots)"
        for k, m in pilot["models"].items()
    )
    opts = "; ".join(
        f"{k.replace('_', ' ')} ±{o['predicted_std']:.4f} ({o['shots']} shots, K={o['calibration_images']})"
        for k, o in a["options"].items()
    )
    return (
        f"Budget {a['budget_s']:g} QPU s: a pilot ({pilot['calibration_images']} calibration images at "
        f"{pilot['shots']} shots, {pilot['qpu_seconds']:.1f} s, method {pilot['method']}) measured {models}. "
        f"Chosen: {a['shots']} shots per circuit, {a['calibration_images']} calibration images, references "
        f"{'on' if a['references'] else 'off'} (best of{_chosen_on(a)}: {opts}); predicted standard error "
        f"±{a['predicted_std']:.4f}, "
        f"mean |error| {a['predicted_mean_abs_error']:.4f}{_upper_text(a)}; {a['qpu_seconds']:.1f} QPU s beside the "
        f"pilot.{_references_text(a)}{_unresolved_pilot(a)}"
    )


def _references_text(a: dict) -> str:
    """The pilot's test of the references (absent in allocations before it was made)."""
    t = a.get("references_test")
    rule = a.get("references_rule")
    if rule is not None:
        seen = "" if t is None else f" (the pilot's F test: F = {t['f']:.2f}, p = {t['p_value']:.2f})"
        return f" References {rule}, as --references {rule} asked{seen}."
    if t is None:
        return ""
    seen = t["p_value"] <= t["level"]
    return (
        f" The pilot {'saw' if seen else 'did not see'} the references lower its residual (F = {t['f']:.2f}, "
        f"p = {t['p_value']:.2f}{'' if seen else ', so they were not considered'})."
    )


def _unresolved_pilot(a: dict) -> str:
    """A warning where the pilot's slope was within 3 sigma of zero: the predictions divide by it."""
    chosen = a["pilot"]["models"].get("with_references" if a["references"] else "without_references", {})
    if chosen.get("slope_resolved", True):
        return ""
    return (
        f" The pilot's slope ({chosen['slope']:.3f} ± {chosen['slope_se']:.3f}) is within 3σ of zero: it barely saw "
        "the signal, so these predictions are unreliable; the study's own fit below is what to read."
    )


def _chosen_on(a: dict) -> str:
    """What the options were compared on (allocations before ``chosen_on`` used the point estimate)."""
    if a.get("scatter_from") == "noise-model":
        return (
            ", with the scatter the device's noise model predicts for 60 calibration images, references needing a "
            "10 % lower predicted error"
        )
    if str(a.get("scatter_from", "")).startswith("pilot:"):
        return f", with the pilot's scatter at its 84 % upper bound ({a['scatter_from']})"
    return ", with the pilot's scatter at its 84 % upper bound" if a.get("chosen_on") == "upper" else ""


def _upper_text(a: dict) -> str:
    """The prediction with the pilot's scatter at its upper bound (absent in allocations before it was recorded)."""
    upper = a.get("predicted_mean_abs_error_upper")
    return "" if upper is None else f" (up to {upper:.4f} with the pilot's scatter at its 84 % upper bound)"


def _score(a: dict | None) -> str:
    """A reconstruction score's mean estimate and mean |error| cells ('--' where no Sampler job ran)."""
    return "-- | --" if a is None else f"{a['mean_estimate']:.4f} | {a['mean_abs_error']:.4f}"


def _coverage(f: dict) -> str:
    """The 95 % intervals' coverage, absent from studies written before it was recorded."""
    return f"{f['coverage_95']:.0%}" if "coverage_95" in f else "--"


def _fit_summary(fit: dict) -> str:
    """The fitted numbers worth reading, with standard errors where the fit has them."""
    if "slope_se" in fit:
        dep = fit.get("depolarizing_intercept")
        return (
            f"slope {fit['slope']:.4f} ± {fit['slope_se']:.4f}, intercept {fit['intercept']:.5f} ± "
            f"{fit['intercept_se']:.5f}, residual {fit['residual_std']:.5f}"
            + ("" if dep is None else f" (depolarizing would give intercept {dep:.5f})")
        )
    if "fixed_point_distance_from_uniform" in fit:
        return (
            f"slope {fit['slope']:.4f}, fixed point {fit['fixed_point_distance_from_uniform']:.3f} (TV) from "
            f"uniform, residual {fit['residual_std']:.5f}"
        )
    se = fit.get("se", [float("nan")] * 4)
    return (
        f"a {fit['a']:.4f} ± {se[0]:.4f}, g {fit['g']:.4f} ± {se[1]:.4f}, h {fit['h']:.4f} ± {se[2]:.4f}, "
        f"c {fit['c']:.4f} ± {se[3]:.4f}, residual {fit['residual_std']:.5f}"
    )


def figure(study: NoiseStudy, path: Path) -> Path:
    """Estimate against exact per method, fidelity and CS (where estimated), with the y = x line."""
    plt = pyplot()

    metrics = ("fidelity", "cs") if study.per_image and "cs" in study.per_image[0] else ("fidelity",)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        exact = [r["exact"] if metric == "fidelity" else r[metric]["exact"] for r in study.per_image]
        for name in study.aggregates:
            est = [
                r["estimates"][name] if metric == "fidelity" else r[metric]["estimates"][name] for r in study.per_image
            ]
            ax.scatter(exact, est, s=10, label=name, alpha=0.7)
        lo = min(0.0, min(exact))
        ax.plot([lo, 1], [lo, 1], "k--", lw=1, label="y = x")
        ax.set_xlabel(f"exact {metric}")
        ax.set_ylabel(f"estimated {metric}")
        ax.set_title(f"{metric}: {study.backend}, {study.config['image_size']}x{study.config['image_size']}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def write_study(study: NoiseStudy, out: Path) -> list[Path]:
    """``out`` (.json) and the .md and .png beside it, each written atomically."""
    out = Path(out)
    return [
        save_record(study, out),
        atomic_write_text(out.with_suffix(".md"), to_markdown(study)),
        figure(study, out.with_suffix(".png")),
    ]
