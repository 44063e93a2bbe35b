"""Studies designed for a QPU budget: how many shots, calibration images and whether references pay.

Cost. A study's QPU time is linear in its shots and in its rows (N evaluated + K calibration images): per job,
``shots × (c0 + c1 × rows)`` plus the per-job overhead, where ``c1`` is one row's circuits × (repetition delay +
scheduled duration) and ``c0`` what a job runs whatever the rows (mthree's and TREX's calibration circuits).
Both come from :func:`qmae_qiskit.hardware.qpu_time.plan_work` on the design's own circuits at one and two rows,
so the repetition delay, the durations and everything mitigation adds are the QPU-time module's.

Error. A calibrated estimate ``x = (y - b) / a`` has, per :mod:`.calibration`, variance
``(tau^2 + v / shots) (1 + p / K) / a^2``: scatter ``tau`` about the map and per-shot variance ``v`` of the
measured value (with a reference, of ``m - g m_ref``), both amplified by 1/slope, and the fit's p parameters
estimated from K points (the mean leverage of a new point is p / K). The slope, tau and v are measured by a
small pilot study (K0 calibration images at a few shots) on the same device, whose cost counts against the
budget. The allocation is the (shots, K, references) with the smallest predicted error that fits.

A pilot of 12 points measures the scatter poorly: in the four default 4x4 studies of
results/hardware/budget600-scheduled its estimate was zero, and the error came back 1.4-3.5x the prediction. So
the allocation is chosen on the residual variance at its one-sided 84 % (one sigma) upper bound, chi-square on the
pilot fit's degrees of freedom (:meth:`NoiseModel.upper`), and carries both predictions at the chosen allocation:
``predicted_mean_abs_error`` (point) and ``predicted_mean_abs_error_upper``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import stats

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.execution import Work
from qmae_qiskit.hardware.qpu_time import JOB_OVERHEAD_SECONDS, plan_work
from qmae_qiskit.study.design import Design, StudySpec, updated
from qmae_qiskit.study.methods import ALIASES

MIN_SHOTS = 100  # fewer shots than this give no usable estimate of a probability; a pass needs at least this
PILOT_SHOTS = 1000
PILOT_IMAGES = 12  # three points per parameter of the reference fit, so its scatter has 8 degrees of freedom
MAX_CALIBRATION_IMAGES = 60
POINTS_PER_PARAMETER = 3  # fewer calibration images leave the fit's scatter and slope too loosely determined
REFERENCE_PARTS = ("ref",)
UPPER_LEVEL = 0.84  # one-sided: the residual variance lies below its bound in 84 % of pilots (one sigma)
REFERENCE_LEVEL = 0.05  # the references must lower the pilot's residual at this significance to be considered
# with the noise model's scatter, the references must be predicted to lower the standard error by 10 %: their
# coefficient is fitted on noisy points. Set after seeing the 8x8 `ladder:6` circuit on fake_boston, where the
# model predicted them 0.94-1.06 of the plain design's error and references had run for 0.0108 against 0.0091
# without (results/hardware/budget600-best-device/noise-model-scatter/README.md)
MODEL_REFERENCE_MARGIN = 0.9


@dataclass(frozen=True)
class CostModel:
    """QPU seconds of a study as ``jobs × overhead + shots × Σ_roles (c0 + c1 × rows)``, per task role."""

    per_row: dict[str, float]  # role -> seconds per shot per row
    fixed: dict[str, float]  # role -> seconds per shot whatever the rows
    overhead: float  # seconds per job

    def seconds(self, shots: int, rows: int, references: bool = True) -> float:
        roles = [r for r in self.per_row if references or not r.startswith("reference/")]
        return len(roles) * self.overhead + shots * sum(self.fixed[r] + self.per_row[r] * rows for r in roles)

    def max_shots(self, budget: float, rows: int, references: bool) -> int:
        roles = [r for r in self.per_row if references or not r.startswith("reference/")]
        per_shot = sum(self.fixed[r] + self.per_row[r] * rows for r in roles)
        return int((budget - len(roles) * self.overhead) // per_shot) if per_shot > 0 else 0


def cost_model(d: Design, backend: Any) -> CostModel:
    """Per task role of the design, its QPU seconds per shot at one and two rows -> (c1, c0)."""
    shots = PILOT_SHOTS
    per_row, fixed = {}, {}
    for role, task in d.work.tasks.items():
        secs = []
        for rows in (1, 2):
            rowed = replace(task, values=task.values[:1].repeat(rows, axis=0))
            single = Work({role: rowed}, shots=shots, rep_delay=d.work.rep_delay)
            secs.append(plan_work(single, backend).qpu_seconds - JOB_OVERHEAD_SECONDS)
        per_row[role] = (secs[1] - secs[0]) / shots
        fixed[role] = (secs[0] - per_row[role] * shots) / shots
    return CostModel(per_row, fixed, JOB_OVERHEAD_SECONDS)


@dataclass(frozen=True)
class NoiseModel:
    """What the pilot measured for one way of calibrating: slope a, scatter tau^2, per-shot variance v, p params."""

    slope: float
    scatter_var: float
    shot_var_per_shot: float
    params: int
    dof: int | None = None  # the pilot fit's degrees of freedom (points - params); None: not from a fit
    pilot_shots: int | None = None
    slope_se: float | None = None  # the pilot fit's standard error of the slope
    # (explained, signal, reference shot variance per shot): the scatter part an exact reference would explain,
    # the reference's own image-to-image variance and its shot noise; a noisy reference explains only
    # signal / (signal + shot) of it (study.scatter_model); None: the scatter is taken as it was fitted
    reference_noise: tuple[float, float, float] | None = None

    @property
    def slope_resolved(self) -> bool:
        """Whether the pilot saw the signal: slope more than 3 standard errors from zero (True when unknown).
        Unresolved, every predicted error (which divides by the slope) is unreliable, though the allocation of one
        model is not: the slope scales all its options alike."""
        return self.slope_se is None or abs(self.slope) > 3 * self.slope_se

    def std(self, shots: int, k: int) -> float:
        """Predicted standard error of a calibrated estimate at ``shots`` and ``k`` calibration images."""
        scatter = max(self.scatter_var, 0.0)
        if self.reference_noise is not None:
            explained, signal, ref_shot = self.reference_noise
            scatter += explained * (ref_shot / shots) / (signal + ref_shot / shots)
        var = (scatter + self.shot_var_per_shot / shots) * (1 + self.params / k)
        return float(np.sqrt(var) / abs(self.slope))

    @property
    def pilot_residual_var(self) -> float | None:
        """The pilot fit's residual variance: its scatter plus the pilot's own shot variance (None without it)."""
        if not self.pilot_shots:
            return None
        return self.scatter_var + self.shot_var_per_shot / self.pilot_shots

    def upper(self) -> NoiseModel | None:
        """The same model with the pilot's residual variance at its :data:`UPPER_LEVEL` upper bound (None without
        the pilot's degrees of freedom)."""
        if not self.dof or self.dof < 1 or not self.pilot_shots:
            return None
        shot = self.shot_var_per_shot / self.pilot_shots
        residual = max(self.scatter_var + shot, 0.0) * self.dof / float(stats.chi2.ppf(1 - UPPER_LEVEL, self.dof))
        return replace(self, scatter_var=residual - shot)


def references_test(without: NoiseModel, with_refs: NoiseModel) -> dict[str, float] | None:
    """Whether the references lower the pilot's residual more than two extra fit parameters would by chance: the
    extra-sum-of-squares F test of the nested fits ``m ~ F`` and ``m ~ F + m_ref + F_ref`` on the same pilot rows
    (None without the fits' degrees of freedom).

    The two models' upper-bound predictions alone chose references in 12 of the 24 budgeted studies of
    results/hardware/budget600-fidelity, and seed to seed they flipped on one study; without shot noise they pay on
    one circuit of four (results/hardware/scatter-sources). A 12-image pilot at 1,000 shots rarely sees the scatter
    the references remove, so unless it sees them lower the residual, the cheaper design is taken."""
    r0, r1 = without.pilot_residual_var, with_refs.pilot_residual_var
    if not (without.dof and with_refs.dof) or r0 is None or r1 is None:
        return None
    rss0, rss1 = r0 * without.dof, r1 * with_refs.dof
    extra = without.dof - with_refs.dof
    if extra < 1 or rss1 <= 0:
        return None
    f = max(rss0 - rss1, 0.0) / extra / (rss1 / with_refs.dof)
    return {"f": float(f), "p_value": float(stats.f.sf(f, extra, with_refs.dof)), "level": REFERENCE_LEVEL}


def noise_models(fits: dict[str, Any], pilot_shots: int) -> dict[bool, NoiseModel]:
    """{references: model} from a pilot's fits of the judged method (the plain affine fit and, if run, the
    reference fit)."""
    out = {}
    f = fits["fidelity"]
    shot = (f.get("shot_std") or 0.0) ** 2
    out[False] = NoiseModel(
        f["slope"], f["residual_std"] ** 2 - shot, shot * pilot_shots, 2, f["points"] - 2, pilot_shots, f["slope_se"]
    )
    if "fidelity_with_reference" in fits:
        r = fits["fidelity_with_reference"]
        shot = (r.get("shot_std") or 0.0) ** 2
        out[True] = NoiseModel(
            r["a"], r["residual_std"] ** 2 - shot, shot * pilot_shots, 4, r["points"] - 4, pilot_shots, r["se"][0]
        )
    return out


def considered(models: dict[bool, NoiseModel], rule: str = "auto") -> tuple[dict[bool, NoiseModel], dict | None]:
    """(the designs the allocation compares, the pilot's references test): ``rule`` is the study's
    ``references``: ``on`` or ``off`` takes that design alone (the user's call where they know better than a
    12-image pilot, e.g. the 2-layer brickwork circuit on fake_sherbrooke, whose scatter the references share:
    results/hardware/budget600-best-device); ``auto`` drops the references unless the pilot saw them lower its
    residual (:func:`references_test`)."""
    test = references_test(models[False], models[True]) if False in models and True in models else None
    if rule in ("on", "off"):
        want = rule == "on"
        if want not in models:
            raise QMAEError(f"--references {rule}: the pilot ran no design {'with' if want else 'without'} them")
        return {want: models[want]}, test
    if test is not None and test["p_value"] > REFERENCE_LEVEL:
        return {False: models[False]}, test  # the pilot did not see the references lower the residual
    return models, test


def allocate(
    budget: float,
    n: int,
    costs: CostModel,
    models: dict[bool, NoiseModel],
    spent: float = 0.0,
    rule: str = "auto",
) -> dict[str, Any]:
    """The (shots, K, references) with the smallest predicted error within ``budget - spent`` QPU seconds.

    Chosen on each model's upper bound (:meth:`NoiseModel.upper`) where the pilot gives one: twelve pilot images at
    1,000 shots cannot see a scatter of a few thousandths under their shot noise, measured it as zero in every
    default 4x4 study, and the point estimate then bought the fewest calibration images and the most shots, so the
    error came back 1.4-3.5x the prediction and intervals fitted on 12 degrees of freedom covered 80 %. Designing
    for the bound buys calibration images against a scatter the pilot cannot rule out; the point prediction is
    kept beside it. Which designs are compared is :func:`considered`'s (``rule``: the study's ``references``)."""
    left = budget - spent
    best: dict[str, Any] | None = None
    options: dict[str, Any] = {}
    compared, test = considered(models, rule)
    for references, point in compared.items():
        model = point.upper() or point
        k_min = POINTS_PER_PARAMETER * model.params
        choice = None
        for k in range(k_min, MAX_CALIBRATION_IMAGES + 1):
            shots = costs.max_shots(left, n + k, references)
            if shots < MIN_SHOTS:
                break
            std = model.std(shots, k)
            if choice is None or std < choice["predicted_std"]:
                choice = {"shots": shots, "calibration_images": k, "predicted_std": std}
        if choice is not None:
            rows = n + int(choice["calibration_images"])
            choice["qpu_seconds"] = costs.seconds(int(choice["shots"]), rows, references)
            options["with_references" if references else "without_references"] = choice
            key = choice["predicted_std"] / (MODEL_REFERENCE_MARGIN if point.reference_noise is not None else 1.0)
            if best is None or key < best["key"]:
                best = {**choice, "references": references, "key": key}
    if best is None:
        check_minimum(budget, n, costs, {r: m.params for r, m in compared.items()}, spent)
        raise AssertionError("unreachable: a budget above the minimum allows one pass")
    del best["key"]
    point = models[bool(best["references"])]
    upper = point.upper()
    shots, k = int(best["shots"]), int(best["calibration_images"])
    best["chosen_on"] = "point" if upper is None else "upper"
    best["predicted_std"] = point.std(shots, k)
    best["predicted_mean_abs_error"] = float(best["predicted_std"] * np.sqrt(2 / np.pi))
    if upper is not None:
        best["predicted_mean_abs_error_upper"] = float(upper.std(shots, k) * np.sqrt(2 / np.pi))
    best["options"] = options
    if test is not None:
        best["references_test"] = test
    if rule != "auto":
        best["references_rule"] = rule
    return best


def minimum_seconds(n: int, costs: CostModel, params: dict[bool, int], spent: float = 0.0) -> float:
    """QPU seconds of the cheapest pass: ``n`` images at MIN_SHOTS with the fewest calibration images."""
    return spent + min(costs.seconds(MIN_SHOTS, n + POINTS_PER_PARAMETER * p, r) for r, p in params.items())


def check_minimum(budget: float, n: int, costs: CostModel, params: dict[bool, int], spent: float = 0.0) -> None:
    """One line naming the minimum when ``budget`` cannot pay for one pass (before anything runs)."""
    need = minimum_seconds(n, costs, params, spent)
    if budget < need:
        raise QMAEError(
            f"--qpu-budget {budget:g} is too small for one pass: {n} images at {MIN_SHOTS} shots with the fewest "
            f"calibration images need at least {np.ceil(need):,.0f} QPU seconds (pilot included); raise "
            "--qpu-budget or pass fewer --images"
        )


def without_references(methods: str) -> str:
    """The methods with every 'ref' part dropped (``recommended`` -> ``trex+mthree+cal``), each once."""
    out: list[str] = []
    for name in (m.strip().lower() for m in methods.split(",") if m.strip()):
        parts = [p for p in ALIASES.get(name, name).split("+") if p not in REFERENCE_PARTS]
        kept = "+".join(parts)
        if kept and kept not in out:
            out.append(kept)
    return ",".join(out)


def pilot_spec(spec: StudySpec) -> StudySpec:
    """The pilot: one evaluated image (never read), PILOT_IMAGES calibration images at PILOT_SHOTS shots; with
    ``--references off`` it runs no reference circuits either."""
    methods = without_references(spec.methods) if spec.references == "off" else spec.methods
    return updated(
        spec,
        samples=1,
        calibration_images=PILOT_IMAGES,
        shots=PILOT_SHOTS,
        qpu_budget=None,
        references="auto",
        scatter_from="pilot",
        methods=methods,
    )


def model_spec(spec: StudySpec) -> StudySpec:
    """The design whose calibration rows the device's noise model is run on: the pilot's, with every candidate
    calibration image a budget may choose (:mod:`qmae_qiskit.study.scatter_model`)."""
    return updated(pilot_spec(spec), calibration_images=MAX_CALIBRATION_IMAGES)


def budgeted_spec(spec: StudySpec, allocation: dict[str, Any]) -> StudySpec:
    """The study spec the allocation chose."""
    methods = spec.methods if allocation["references"] else without_references(spec.methods)
    return updated(
        spec, shots=int(allocation["shots"]), calibration_images=int(allocation["calibration_images"]), methods=methods
    )


def pilot_summary(plan: Any, models: dict[bool, NoiseModel]) -> dict[str, Any]:
    """What the pilot cost and measured, for the record."""
    return {
        "shots": PILOT_SHOTS,
        "calibration_images": PILOT_IMAGES,
        "qpu_seconds": round(float(plan.qpu_seconds), 3),
        "models": {
            ("with_references" if r else "without_references"): {
                "slope": m.slope,
                **({} if m.slope_se is None else {"slope_se": m.slope_se, "slope_resolved": m.slope_resolved}),
                "scatter_std": float(np.sqrt(max(m.scatter_var, 0.0))),
                **_upper_scatter(m),
                "shot_std_per_shot": float(np.sqrt(m.shot_var_per_shot)),
                "parameters": m.params,
                **({} if m.reference_noise is None else {"reference_noise": list(m.reference_noise)}),
            }
            for r, m in models.items()
        },
    }


def _upper_scatter(m: NoiseModel) -> dict[str, float]:
    upper = m.upper()
    return {} if upper is None else {"scatter_std_upper": float(np.sqrt(max(upper.scatter_var, 0.0)))}
