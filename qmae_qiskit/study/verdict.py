"""Whether the device resolves the circuit, judged from the calibration alone, and what would help if it does not.

A calibrated estimate divides by the fitted slope: a slope within 3 standard errors of zero means the device keeps
no signal one can tell from noise, and a predicted standard error above ``max_error`` means the estimate is too
coarse to use. Both are known before any estimate is compared with an exact value, so a user on a real device
reads the verdict without an oracle.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qmae_qiskit.study.design import Design
from qmae_qiskit.study.methods import judged_method

SIGMAS = 3.0  # a slope within this many standard errors of zero is not resolved


def _slope(fits: dict[str, Any]) -> tuple[float, float]:
    """(slope, its standard error) of the fidelity map a method inverts: the reference fit's ``a`` if it has one."""
    if "fidelity_with_reference" in fits:
        ref = fits["fidelity_with_reference"]
        return float(ref["a"]), float(ref["se"][0])
    return float(fits["fidelity"]["slope"]), float(fits["fidelity"]["slope_se"])


def remedies(d: Design, parts: dict[str, float], max_error: float) -> list[str]:
    """What would help, in order of what it costs a user."""
    cfg = d.prepared.tm.cfg
    out = []
    if cfg.image_size > 4:
        out.append(f"a smaller image ({cfg.image_size // 2}x{cfg.image_size // 2} keeps more of the signal)")
    if getattr(cfg, "ansatz", "all-pairs") != "brickwork":
        out.append("the brickwork ansatz (`train --ansatz brickwork` routes without SWAPs)")
    out.append("another device (one whose fitted slope is larger: the Heron twins keep more than the Eagle ones)")
    shot, rest = parts.get("shot", 0.0) ** 2, parts.get("fit", 0.0) ** 2 + parts.get("scatter", 0.0) ** 2
    if d.rec_role and shot > 0:
        out.append(
            "the fidelity alone (`--metrics fidelity` runs no Sampler job: the same QPU time buys the fidelity "
            "more shots, up to twice as many)"
        )
    room = max_error**2 - rest
    if room > 0 and shot > 0:
        out.append(f"more budget (about {max(1.0, shot / room):.1f}x the shots per circuit)")
    else:
        out.append("more budget for calibration images (the fit and the scatter alone exceed the threshold)")
    return out


def verdict(d: Design, each: dict[str, Any]) -> dict[str, Any] | None:
    """The verdict on the judged method: slope, predicted error, resolved or not, and the line to print."""
    calibrated = {name for name, e in each.items() if e.fits}
    name = judged_method(list(each), calibrated)
    if name is None:
        return None
    e = each[name]
    slope, slope_se = _slope(e.fits)
    predicted = float(np.mean(e.std))
    parts = {k: float(np.sqrt(max(0.0, float(np.mean(v))))) for k, v in e.parts.items()}
    max_error = d.spec.max_error
    resolved = abs(slope) >= SIGMAS * slope_se and predicted <= max_error
    head = (
        f"{name}: fitted slope {slope:.3f} ± {slope_se:.3f} (the device keeps {slope:.1%} of the signal), "
        f"predicted error ±{predicted:.4f}"
    )
    if resolved:
        line = f"resolved -- {head} (threshold {max_error})"
        helps: list[str] = []
    else:
        why = "slope within 3σ of 0" if abs(slope) < SIGMAS * slope_se else f"predicted error above {max_error}"
        helps = remedies(d, parts, max_error)
        line = f"NOT RESOLVED ({why}) -- {head}; what would help: " + "; ".join(helps)
    return {
        "method": name,
        "slope": slope,
        "slope_se": slope_se,
        "predicted_error": predicted,
        "predicted_error_parts": parts,
        "max_error": max_error,
        "resolved": bool(resolved),
        "helps": helps,
        "line": line,
    }
