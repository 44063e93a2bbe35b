"""A noise study's analysis: exact values, calibration fits, estimates and their errors (pure computation).

Measurements in (the results of the design's tasks), estimates out. Calibration reads only the calibration rows'
exact values; the evaluated rows' exact values enter only :func:`summarize`, after estimation, to score the
estimates (errors, coverage of their intervals).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from qmae_qiskit.hardware.execution import Estimates, Result, Samples
from qmae_qiskit.study.calibration import fit_affine, fit_fixed_point, fit_reference, invert_fixed_point
from qmae_qiskit.study.design import Design
from qmae_qiskit.study.methods import Method

METRICS = ("fidelity", "cs", "ssim")


def exact_values(prepared: Any, loaded: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact fidelities (N,) and reconstructions (N, 2^n) of every row, from the exact path: of the paper's
    circuit, or (``loaded``) of the circuits that run, whose loaders may be approximate."""
    from qmae_qiskit.simulate import exact

    tm = prepared.tm
    masked, clean = prepared.loaded_states() if loaded else (prepared.x_masked, prepared.clean)
    with torch.no_grad():
        fids = exact.fidelity(tm.theta, masked, clean, tm.cfg).numpy()
        probs = exact.reconstruct(tm.theta, masked, tm.cfg).numpy()
    return fids, probs


def reference_exact(prepared: Any) -> np.ndarray:
    """Exact fidelities of every row's noise-reference circuit (the clean image, as loaded, at both loaders)."""
    from qmae_qiskit.simulate import exact

    tm = prepared.tm
    _, clean = prepared.loaded_states()
    with torch.no_grad():
        return exact.fidelity(tm.theta, clean, clean, tm.cfg).numpy()


def _frequencies(samples: Samples) -> np.ndarray:
    from qmae_qiskit.hardware.primitives import frequencies

    if samples.counts is None:
        return np.asarray(samples.probabilities)
    return frequencies(samples.counts, int(np.log2(samples.probabilities.shape[1])))


Estimated = tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray], dict[str, dict]]


def estimate(d: Design, results: dict[str, Result], exact_f: np.ndarray, exact_p: np.ndarray) -> Estimated:
    """Per method: fidelity estimates, their standard errors and reconstruction distributions of the evaluated
    rows, and the fitted calibration maps. Calibration uses the calibration rows' exact values only."""
    fids, stds, probs, fits = {}, {}, {}, {}
    for m in d.methods:
        fids[m.name], stds[m.name], probs[m.name], fit = _estimate_method(d, m, results, exact_f, exact_p)
        if fit:
            fits[m.name] = fit
    return fids, stds, probs, fits


def _estimate_method(
    d: Design, m: Method, results: dict[str, Result], exact_f: np.ndarray, exact_p: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """One method's (estimates, standard errors, distributions, fits) from its jobs' measurements."""
    n, k = d.n_eval, d.n_cal
    est, smp = results[d.fid_role[m.name]], results[d.rec_role[m.name]]
    assert isinstance(est, Estimates) and isinstance(smp, Samples)
    measured_f, measured_s = np.asarray(est.values), np.asarray(est.stds)
    dist = np.asarray(smp.probabilities) if m.readout == "mthree" else _frequencies(smp)
    if not m.calibrate:
        return measured_f[:n], measured_s[:n], dist[:n], {}
    cal = slice(n, n + k)
    bits = int(np.log2(dist.shape[1]))
    f_fit = fit_affine(exact_f[cal], measured_f[cal], bits)
    p_fit = fit_fixed_point(exact_p[cal], dist[cal])
    fits: dict[str, Any] = {"fidelity": f_fit.as_dict(), "reconstruction": p_fit.as_dict()}
    if m.reference:
        ref = results[d.ref_role[m.name]]
        assert isinstance(ref, Estimates)
        mr, fr = np.asarray(ref.values), reference_exact(d.prepared)
        r_fit = fit_reference(exact_f[cal], measured_f[cal], mr[cal], fr[cal])
        f_est, f_std = r_fit.invert(measured_f[:n], mr[:n], fr[:n])
        fits["fidelity_with_reference"] = r_fit.as_dict()
    else:
        f_est, f_std = f_fit.invert(measured_f[:n], measured_s[:n])
    return f_est, f_std, invert_fixed_point(p_fit, dist[:n]), fits


def _image_scores(probs: np.ndarray, images: torch.Tensor, labels: torch.Tensor) -> dict[str, np.ndarray]:
    from qmae_qiskit.evaluate.scoring import score

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


def cost(d: Design, m: Method, seconds: dict[str, float]) -> dict[str, Any]:
    """Circuits, shots, jobs and local seconds a method reads (mthree adds two readout-calibration circuits)."""
    f_role, r_role = d.fid_role[m.name], d.rec_role[m.name]
    rows = d.work.tasks[f_role].rows
    extra = (2 if m.readout == "mthree" else 0) + (rows if m.reference else 0)
    return {
        "circuits": 2 * rows + extra,
        "shots": (2 * rows + extra) * d.spec.shots,
        "jobs": sorted({f_role, r_role}),
        "seconds": round(seconds.get(f_role, 0.0) + seconds.get(r_role, 0.0), 3),
        "calibration_images": d.n_cal if m.calibrate else 0,
    }


def summarize(d: Design, results: dict[str, Result], seconds: dict[str, float]) -> dict[str, Any]:
    """Everything the record holds except provenance: per image rows, aggregates, fits, costs."""
    n = d.n_eval
    exact_f, exact_p = exact_values(d.prepared)  # the paper's circuit: what every estimate is compared with
    fids, stds, probs, fits = estimate(d, results, *exact_values(d.prepared, loaded=True))
    images, labels = d.prepared.images[:n], d.prepared.labels[:n]
    exact_scores = _image_scores(exact_p[:n], images, labels)
    scores = {m: _image_scores(p, images, labels) for m, p in probs.items()}
    aggregates: dict[str, dict[str, Any]] = {}
    for m in d.methods:
        aggregates[m.name] = {
            "fidelity": {**errors(fids[m.name], exact_f[:n]), "mean_std": float(np.mean(stds[m.name]))},
            "cs": errors(scores[m.name]["cs"], exact_scores["cs"]),
            "ssim": errors(scores[m.name]["ssim"], exact_scores["ssim"]),
            "cost": cost(d, m, seconds),
        }
    return {
        "per_image": _rows(d, exact_f, fids, stds, exact_scores, scores),
        "aggregates": aggregates,
        "fits": fits,
        "exact": {
            "fidelity": float(exact_f[:n].mean()),
            "cs": float(exact_scores["cs"].mean()),
            "ssim": float(exact_scores["ssim"].mean()),
        },
    }


def _rows(
    d: Design,
    exact_f: np.ndarray,
    fids: dict[str, np.ndarray],
    stds: dict[str, np.ndarray],
    exact_scores: dict[str, np.ndarray],
    scores: dict[str, dict[str, np.ndarray]],
) -> list[dict[str, Any]]:
    """``{index, exact, estimates{method}, stds{method}, cs{exact, estimates}, ssim{...}}`` per evaluated image."""
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
            },
        }
        for i in range(d.n_eval)
    ]
