"""The mitigation methods a noise study compares, each selectable and combinable (``trex+cal``).

A method is what the primitives are asked to do (runtime Estimator options: TREX, ZNE, Pauli twirling, dynamical
decoupling), what happens to the Sampler's counts (``mthree`` readout correction), and whether the result is
calibrated against exactly known circuits (``cal``, see :mod:`qmae_qiskit.study.calibration`). Methods that ask
the primitives for the same thing share one job: ``raw`` and ``cal`` read the same measurements.

``recommended`` is ``trex+mthree+cal+ref``: TREX for the Estimator and mthree for the Sampler remove readout error
where it is cheapest (it is not global-depolarizing and bends the calibration map); the calibration against K
exactly known images takes out what is left of the device's map, and each image's noise-reference circuit corrects
for the part of the noise that depends on the image. It was the most accurate combination on the twins
(docs/results/devices.md); beyond ``raw`` it costs TREX's twirled measurements, the K calibration images, one
reference circuit per image and two readout-calibration circuits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.mitigation import Mitigation, _merge

ZNE_DEFAULT = {"noise_factors": [1, 3, 5], "extrapolator": ["exponential", "linear"]}

# name -> (Estimator options, Sampler readout, calibrate, per-image reference)
BASE: dict[str, tuple[dict[str, Any], str, bool, bool]] = {
    "raw": ({}, "none", False, False),
    "trex": ({"resilience": {"measure_mitigation": True}}, "none", False, False),
    "zne": ({"resilience": {"zne_mitigation": True}}, "none", False, False),
    "twirl": ({"twirling": {"enable_gates": True, "enable_measure": True}}, "none", False, False),
    "dd": ({"dynamical_decoupling": {"enable": True, "sequence_type": "XY4"}}, "none", False, False),
    "mthree": ({}, "mthree", False, False),
    "cal": ({}, "none", True, False),
    "ref": ({}, "none", False, True),
}
ALIASES = {"recommended": "trex+mthree+cal+ref"}
DESCRIPTIONS = {
    "raw": "no mitigation (resilience level 0)",
    "trex": "twirled readout error extinction (runtime TREX)",
    "zne": "zero-noise extrapolation by gate folding (runtime ZNE)",
    "twirl": "Pauli twirling of gates and measurements",
    "dd": "dynamical decoupling (XY4)",
    "mthree": "mthree readout correction of the Sampler counts",
    "cal": "calibration against K exactly known images in the same job (fidelity: affine; reconstruction: "
    "contraction towards the noise's fixed point)",
    "ref": "per image, a noise-reference circuit (the clean image loaded in place of the masked one, exact value "
    "known) gives the image's own slope",
}


@dataclass(frozen=True)
class Method:
    """One (possibly combined) method: its name, the primitives' options, readout correction, calibration."""

    name: str
    parts: tuple[str, ...]
    estimator: dict[str, Any] = field(default_factory=dict)
    readout: str = "none"
    calibrate: bool = False
    reference: bool = False

    @property
    def estimator_mitigation(self) -> Mitigation:
        return Mitigation(estimator=self.estimator)

    @property
    def sampler_mitigation(self) -> Mitigation:
        shared = {k: v for k, v in self.estimator.items() if k in ("twirling", "dynamical_decoupling")}
        return Mitigation(estimator=shared, readout=self.readout)

    def estimator_key(self) -> str:
        """Methods with equal keys read the same Estimator job."""
        return json.dumps(self.estimator, sort_keys=True)

    def sampler_key(self) -> str:
        """Methods with equal keys read the same Sampler job (readout correction is post-processing)."""
        shared = {k: v for k, v in self.estimator.items() if k in ("twirling", "dynamical_decoupling")}
        return json.dumps(shared, sort_keys=True)

    def describe(self) -> str:
        return " + ".join(DESCRIPTIONS[p] for p in self.parts)


def parse_method(name: str, zne: dict[str, Any] | None = None) -> Method:
    """``raw``, ``cal``, ``trex+cal``, ``recommended``, ... -> a :class:`Method` (one line on a bad name)."""
    text = name.strip().lower()
    expanded = ALIASES.get(text, text)
    parts = tuple(p.strip() for p in expanded.split("+") if p.strip())
    unknown = [p for p in parts if p not in BASE]
    if not parts or unknown:
        raise QMAEError(
            f"unknown method {name!r}; use one of {', '.join([*BASE, *ALIASES])}, or combine them "
            "with '+' (e.g. trex+cal)"
        )
    if len(set(parts)) != len(parts):
        raise QMAEError(f"method {name!r} names a part twice")
    estimator: dict[str, Any] = {}
    readout, calibrate, reference = "none", False, False
    for part in parts:
        opts, ro, cal, ref = BASE[part]
        if part == "zne":
            opts = _merge(opts, {"resilience": {"zne": dict(zne or ZNE_DEFAULT)}})
        estimator = _merge(estimator, opts)
        readout = ro if ro != "none" else readout
        calibrate = calibrate or cal
        reference = reference or ref
    if reference and not calibrate:
        raise QMAEError(
            f"method {name!r}: 'ref' reads each image's slope against the intercept of the calibration "
            "fit; combine it with cal (e.g. cal+ref)"
        )
    method = Method(text, parts, estimator, readout, calibrate, reference)
    method.estimator_mitigation.estimator_options()  # the runtime's own validation, one line on error
    return method


def parse_methods(
    text: str, zne: dict[str, Any] | None = None, raw: Literal["always", "shared"] = "always"
) -> list[Method]:
    """A comma-separated list of methods, each at most once, with ``raw`` the baseline: always included (``raw``
    "always"), or ("shared") only where a listed method's job reads it anyway. Why "shared": in a budgeted study
    a baseline on a job of its own (beside ``dd+cal``, say) spends half the budget on a number nobody judges."""
    names = [t for t in (s.strip() for s in (text or "").split(",")) if t]
    if not names:
        raise QMAEError("no methods given; e.g. --methods raw,trex,cal,recommended")
    methods = [parse_method(n, zne) for n in names]
    seen = [m.name for m in methods]
    if len(set(seen)) != len(seen):
        raise QMAEError(f"a method is listed twice in {text!r}")
    base = parse_method("raw")
    if "raw" not in seen and (raw == "always" or any(m.estimator_key() == base.estimator_key() for m in methods)):
        methods.insert(0, base)
    return methods


def judged_method(names: list[str], calibrated: set[str]) -> str | None:
    """The method a verdict is about: ``recommended`` if run, else the last calibrated one."""
    if "recommended" in calibrated:
        return "recommended"
    last = [n for n in names if n in calibrated]
    return last[-1] if last else None
