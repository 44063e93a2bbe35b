"""A noise study's analysis: exact values, calibration fits, estimates and their errors (pure computation).

Measurements in (the results of the design's tasks), estimates out. Calibration reads only the calibration rows'
exact values; the evaluated rows' exact values enter only :func:`summarize`, after estimation, to score the
estimates (errors, coverage of their intervals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from qmae_qiskit.evaluate.scoring import score
from qmae_qiskit.hardware.execution import Estimates, Result, Samples
from qmae_qiskit.hardware.primitives import frequencies
from qmae_qiskit.simulate import exact
from qmae_qiskit.study.calibration import fit_affine, fit_fixed_point, fit_reference, invert_fixed_point, t_quantile
from qmae_qiskit.study.design import Design
from qmae_qiskit.study.methods import Method
from qmae_qiskit.study.verdict import verdict

METRICS = ("fidelity", "cs", "ssim")


def exact_values(prepared: Any, loaded: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact fidelities (N,) and reconstructions (N, 2^n) of every row, from the exact path: of the paper's
    circuit, or (``loaded``) of the circuits that run, whose loaders may be approximate."""

    tm = prepared.tm
    masked, clean = prepared.loaded_states() if loaded else (prepared.x_masked, prepared.clean)
    with torch.no_grad():
        fids = exact.fidelity(tm.theta, masked, clean, tm.cfg).numpy()
        probs = exact.reconstruct(tm.theta, masked, tm.cfg).numpy()
    return fids, probs


def reference_exact(prepared: Any) -> np.ndarray:
    """Exact fidelities of every row's noise-reference circuit (the clean image, as loaded, at both loaders)."""

    tm = prepared.tm
    _, clean = prepared.loaded_states()
    with torch.no_grad():
        return exact.fidelity(tm.theta, clean, clean, tm.cfg).numpy()


def _frequencies(samples: Samples) -> np.ndarray:

    if samples.counts is None:
        return np.asarray(samples.probabilities)
    return frequencies(samples.counts, int(np.log2(samples.probabilities.shape[1])))


@dataclass(frozen=True)
class MethodEstimate:
    """One method's estimates of the evaluated rows: fidelities, their standard errors and its variance parts
    (``fit``, ``scatter``, ``shot``, see :mod:`.calibration`), the interval's degrees of freedom (None: normal),
    the reconstruction distributions (None under ``--metrics fidelity``) and the calibration fits."""

    fidelity: np.ndarray
    std: np.ndarray
    parts: dict[str, np.ndarray]
    dof: int | None
    probs: np.ndarray | None
    fits: dict[str, Any]


Estimated = tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray | None], dict[str, dict]]


def estimate(d: Design, results: dict[str, Result], exact_f: np.ndarray, exact_p: np.ndarray) -> Estimated:
    """Per method: fidelity estimates, their standard errors and reconstruction distributions of the evaluated
    rows, and the fitted calibration maps. Calibration uses the calibration rows' exact values only."""
    each = estimate_methods(d, results, exact_f, exact_p)
    return (
        {m: e.fidelity for m, e in each.items()},
        {m: e.std for m, e in each.items()},
        {m: e.probs for m, e in each.items()},
        {m: e.fits for m, e in each.items() if e.fits},
    )


def estimate_methods(
    d: Design, results: dict[str, Result], exact_f: np.ndarray, exact_p: np.ndarray
) -> dict[str, MethodEstimate]:
    """:class:`MethodEstimate` per method, from the measurements and the calibration rows' exact values."""
    return {m.name: _estimate_method(d, m, results, exact_f, exact_p) for m in d.methods}


def _estimate_method(
    d: Design, m: Method, results: dict[str, Result], exact_f: np.ndarray, exact_p: np.ndarray
) -> MethodEstimate:
    """One method's estimates from its jobs' measurements (only the calibration rows' exact values are read)."""
    n, k = d.n_eval, d.n_cal
    est = results[d.fid_role[m.name]]
    assert isinstance(est, Estimates)
    measured_f, measured_s = np.asarray(est.values), np.asarray(est.stds)
    dist = _distributions(d, m, results)
    if not m.calibrate:
        shot = measured_s[:n]
        return MethodEstimate(measured_f[:n], shot, {"shot": shot**2}, None, _rows_of(dist, n), {})
    cal = slice(n, n + k)
    f_fit = fit_affine(exact_f[cal], measured_f[cal], int(np.log2(exact_p.shape[1])), measured_s[cal])
    fits: dict[str, Any] = {"fidelity": f_fit.as_dict()}
    probs = None
    if dist is not None:
        p_fit = fit_fixed_point(exact_p[cal], dist[cal])
        fits["reconstruction"] = p_fit.as_dict()
        probs = invert_fixed_point(p_fit, dist[:n])
    if m.reference:
        ref = results[d.ref_role[m.name]]
        assert isinstance(ref, Estimates)
        mr, sr, fr = np.asarray(ref.values), np.asarray(ref.stds), reference_exact(d.prepared)
        r_fit = fit_reference(exact_f[cal], measured_f[cal], mr[cal], fr[cal], (measured_s[cal], sr[cal]))
        f_est, parts = r_fit.invert_parts(measured_f[:n], mr[:n], fr[:n], (measured_s[:n], sr[:n]))
        fits["fidelity_with_reference"] = r_fit.as_dict()
        dof = r_fit.dof
    else:
        f_est, parts = f_fit.invert_parts(measured_f[:n], measured_s[:n])
        dof = f_fit.dof
    std = np.sqrt(np.maximum(sum(parts.values()), 0.0))
    return MethodEstimate(f_est, std, parts, dof, probs, fits)


def _distributions(d: Design, m: Method, results: dict[str, Result]) -> np.ndarray | None:
    """The method's measured reconstruction distributions of every row (None: the study ran no Sampler job)."""
    if m.name not in d.rec_role:
        return None
    smp = results[d.rec_role[m.name]]
    assert isinstance(smp, Samples)
    return np.asarray(smp.probabilities) if m.readout == "mthree" else _frequencies(smp)


def _rows_of(dist: np.ndarray | None, n: int) -> np.ndarray | None:
    return None if dist is None else dist[:n]


def _image_scores(probs: np.ndarray, images: torch.Tensor, labels: torch.Tensor) -> dict[str, np.ndarray]:

    s = score(torch.as_tensor(probs, dtype=torch.float64), None, images, labels, None)
    return {"cs": s["cs"].numpy(), "ssim": s["ssim"].numpy()}


def errors(estimates: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    """Mean estimate, bias, mean |error|, RMS and max |error| of estimates against exact values."""
    err = np.asarray(estimates) - np.asarray(exact)
    return {
        "mean_estimate": float(np.mean(estimates)),
        "bias": float(np.mean(err)),
        "mean_abs_error": float(np.mean(np.abs(err))),
        "rms_error": float(np.sqrt(np.mean(err**2))),
        "max_abs_error": float(np.max(np.abs(err))),
    }


def cost(d: Design, m: Method, seconds: dict[str, float], plan: Any = None) -> dict[str, Any]:
    """Circuits, shots, jobs and local seconds a method reads. With the study's QPU ``plan`` the circuits and shots
    are what its jobs send for it (ZNE's folded circuits and TREX's calibration circuits included, mthree's readout
    calibration only for a method that reads it) and ``qpu_seconds`` those items' QPU time plus one overhead per job:
    a job shared with other methods counts in full for each. Without a plan (a simulator with no device), counted
    from the design (mthree adds two readout-calibration circuits)."""
    rec = [d.rec_role[m.name]] if m.name in d.rec_role else []
    roles = [d.fid_role[m.name], *rec, *([d.ref_role[m.name]] if m.reference else [])]
    out: dict[str, Any] = {
        "jobs": sorted(set(roles)),
        "seconds": round(sum(seconds.get(r, 0.0) for r in set(roles)), 3),
        "calibration_images": d.n_cal if m.calibrate else 0,
    }
    items = [i for i in (plan.items if plan is not None else []) if i.role in roles]
    if items:
        if m.readout != "mthree":  # a Sampler job's first item is its circuit, the rest mthree's calibration
            circuit_of = {r: next(i for i in items if i.role == r) for r in rec}
            items = [i for i in items if i.role not in rec or i is circuit_of[i.role]]
        jobs = len({i.role for i in items})
        qpu = sum(i.qpu_seconds for i in items) + jobs * plan.job_overhead_s
        circuits = sum(i.circuits for i in items)
        return {"circuits": circuits, "shots": sum(i.circuits * i.shots for i in items), **out, "qpu_seconds": qpu}
    rows = d.work.tasks[roles[0]].rows
    extra = (2 if m.readout == "mthree" and rec else 0) + (rows if m.reference else 0)
    return {"circuits": (1 + len(rec)) * rows + extra, "shots": ((1 + len(rec)) * rows + extra) * d.spec.shots, **out}


def interval_summary(e: MethodEstimate, exact: np.ndarray) -> dict[str, Any]:
    """The error bars scored after estimation: mean standard error and its parts, and how often the 95 % and the
    2-sigma intervals cover the exact values (the only place the evaluated images' exact values are read)."""
    q = t_quantile(e.dof)
    miss = np.abs(e.fidelity - np.asarray(exact))
    return {
        "mean_std": float(np.mean(e.std)),
        "std_parts": {k: float(np.sqrt(max(0.0, float(np.mean(v))))) for k, v in e.parts.items()},
        "interval_dof": e.dof,
        "interval_quantile_95": q,
        "coverage_95": float(np.mean(miss <= q * e.std)),
        "coverage_2sigma": float(np.mean(miss <= 2 * e.std)),
    }


def summarize(d: Design, results: dict[str, Result], seconds: dict[str, float], plan: Any = None) -> dict[str, Any]:
    """Everything the record holds except provenance: per image rows, aggregates, fits, costs (from the QPU ``plan``
    where there is one), the verdict. Under ``--metrics fidelity`` (no Sampler job) the rows and aggregates hold no
    CS or SSIM; the exact ones stay."""
    n = d.n_eval
    each = estimate_methods(d, results, *exact_values(d.prepared, loaded=True))
    exact_f, exact_p = exact_values(d.prepared)  # the paper's circuit: what every estimate is compared with
    images, labels = d.prepared.images[:n], d.prepared.labels[:n]
    exact_scores = _image_scores(exact_p[:n], images, labels)
    scores = {m: _image_scores(e.probs, images, labels) for m, e in each.items() if e.probs is not None}
    aggregates: dict[str, dict[str, Any]] = {}
    for m in d.methods:
        e = each[m.name]
        runtime_errors = {} if m.calibrate or m.estimator_mitigation.reads_each_shot else {"std_source": "runtime"}
        aggregates[m.name] = {
            "fidelity": {**errors(e.fidelity, exact_f[:n]), **interval_summary(e, exact_f[:n]), **runtime_errors},
            **{k: errors(v, exact_scores[k]) for k, v in scores.get(m.name, {}).items()},
            "cost": cost(d, m, seconds, plan),
        }
    fits = {m: e.fits for m, e in each.items() if e.fits}
    fids, stds = {m: e.fidelity for m, e in each.items()}, {m: e.std for m, e in each.items()}
    return {
        "per_image": _rows(d, exact_f, fids, stds, exact_scores, scores),
        "aggregates": aggregates,
        "fits": fits,
        "exact": {
            "fidelity": float(exact_f[:n].mean()),
            "cs": float(exact_scores["cs"].mean()),
            "ssim": float(exact_scores["ssim"].mean()),
        },
        "verdict": verdict(d, each),
    }


def _rows(
    d: Design,
    exact_f: np.ndarray,
    fids: dict[str, np.ndarray],
    stds: dict[str, np.ndarray],
    exact_scores: dict[str, np.ndarray],
    scores: dict[str, dict[str, np.ndarray]],
) -> list[dict[str, Any]]:
    """``{index, exact, estimates{method}, stds{method}, cs{exact, estimates}, ssim{...}}`` per evaluated image
    (no ``cs`` or ``ssim`` when no method estimated a reconstruction)."""
    return [
        {
            "index": int(d.prepared.indices[i]),
            "exact": float(exact_f[i]),
            "estimates": {m: float(v[i]) for m, v in fids.items()},
            "stds": {m: float(v[i]) for m, v in stds.items()},
            **{
                metric: {
                    "exact": float(exact_scores[metric][i]),
                    "estimates": {m: float(s[metric][i]) for m, s in scores.items()},
                }
                for metric in ("cs", "ssim")
                if scores
            },
        }
        for i in range(d.n_eval)
    ]
