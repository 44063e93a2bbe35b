"""A noise study's design and circuits (the experiment half, as qiskit-experiments splits it from its analysis).

:class:`StudySpec` is what a user asks for; :func:`design` turns it into the images (N evaluated test images, K
calibration images of the training split), the transpiled circuits, their parameter values and one task per
distinct primitive configuration the chosen methods need. Nothing here runs a circuit or reads a result.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from qmae_qiskit.data import ImageSet, load_split
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.evaluate.prepare import FIDELITY, RECONSTRUCTION, ROLES, prepare
from qmae_qiskit.hardware.execution import EstimatorTask, Executor, SamplerTask, Work
from qmae_qiskit.hardware.mitigation import Mitigation
from qmae_qiskit.hardware.spec import WithExecution
from qmae_qiskit.model.circuits import parameter_values
from qmae_qiskit.reports.depth import success_probability
from qmae_qiskit.study.methods import Method, judged_method, parse_methods
from qmae_qiskit.train.runs import load_trained


class StudySpec(WithExecution):
    """A noise study's design, validated before anything is built or sent: where and how its circuits run
    (``execution``, kept flat in records as before) and what it measures."""

    EXECUTION_DEFAULTS: ClassVar[dict[str, Any]] = {"shots": 4000}

    run: str
    samples: int = Field(100, ge=1)
    methods: str = "raw,recommended"
    calibration_images: int = Field(10, ge=0)
    calibration_split: Literal["train", "test"] = "train"
    calibration_start: int = Field(0, ge=0)
    calibration_pick: Literal["spread", "first"] = "spread"
    zne_noise_factors: list[float] = [1.0, 3.0, 5.0]
    zne_extrapolator: list[str] = ["exponential", "linear"]
    precision: float | None = Field(None, gt=0, description="wanted standard error of a calibrated fidelity")
    data_dir: str | None = None
    qpu_budget: float | None = Field(None, gt=0, description="QPU seconds the study may spend (budget design)")
    max_error: float = Field(0.05, gt=0, description="predicted error above which the verdict says unresolved")
    metrics: Literal["all", "fidelity"] = Field(
        "all", description="all: fidelity, CS and SSIM; fidelity: no reconstruction (Sampler) job at all"
    )
    scatter_from: Literal["pilot", "noise-model"] = Field(
        "pilot",
        description="with qpu_budget: the calibration scatter the allocation designs for: the pilot's (at its 84 % "
        "upper bound) or what the device's noise model predicts for 60 calibration images (study.scatter_model)",
    )
    raw_baseline: Literal["always", "shared"] = Field(
        "always",
        description="always: run 'raw' beside the listed methods even on a job of its own; shared: only where a "
        "listed method's job reads it (a budgeted study's: the baseline must not spend the budget)",
    )
    references: Literal["auto", "on", "off"] = Field(
        "auto",
        description="with qpu_budget: whether the allocation runs the per-image reference circuits; auto: only "
        "where the pilot sees them lower its residual (budget.references_test)",
    )

    @model_validator(mode="after")
    def _shots_given(self) -> StudySpec:
        if self.execution.shots is None:
            raise ValueError("a noise study needs a number of shots (--shots)")
        cap = self.execution.budget.max_qpu_seconds
        if self.qpu_budget is not None and cap is not None and self.qpu_budget > cap:
            raise QMAEError(  # known before the pilot: the allocation spends up to the whole budget
                f"--qpu-budget {self.qpu_budget:g} is more than --max-qpu-seconds {cap:g}, and a budgeted study "
                f"may spend its whole budget; pass --qpu-budget {cap:g} or less, or raise --max-qpu-seconds"
            )
        if self.qpu_budget is not None and not any(m.calibrate for m in parse_methods(self.methods, self.zne)):
            raise QMAEError(
                f"--qpu-budget designs the study from a calibrated method's fit, and --methods {self.methods!r} "
                "has none; add one (e.g. --methods raw,recommended)"
            )
        self._references_given()
        return self

    def _references_given(self) -> None:
        """``references`` and ``scatter_from`` decide for a budget's allocation."""
        if self.scatter_from != "pilot" and self.qpu_budget is None:
            raise QMAEError(
                f"--scatter-from {self.scatter_from} decides for --qpu-budget's allocation; pass a --qpu-budget, "
                "or leave it out"
            )
        if self.references == "auto":
            return
        if self.qpu_budget is None:
            raise QMAEError(
                f"--references {self.references} decides for --qpu-budget's allocation; without a budget, name the "
                "method instead (mthree+cal+ref runs the references, mthree+cal does not)"
            )
        methods = parse_methods(self.methods, self.zne)
        judged = judged_method([m.name for m in methods], {m.name for m in methods if m.calibrate})
        if self.references == "on" and not any(m.reference for m in methods if m.name == judged):
            raise QMAEError(
                f"--references on needs the method the budget is designed for (recommended, else the last "
                f"calibrated one: {judged}) to have references, and in --methods {self.methods!r} it has none; "
                "put a method with them last (e.g. --methods raw,cal,mthree+cal+ref)"
            )

    @property
    def zne(self) -> dict[str, Any]:
        """The ZNE settings of the methods that extrapolate."""
        return {"noise_factors": list(self.zne_noise_factors), "extrapolator": list(self.zne_extrapolator)}

    @classmethod
    def of_record(cls, spec: dict[str, Any]) -> StudySpec:
        """The spec a record keeps, read back as it ran: records written before ``calibration_pick`` existed drew
        the first K calibration images, those written before ``idle_relaxation`` ran on the unscheduled twin, and
        those written before ``task_seeds`` seeded every task alike."""
        old = {"calibration_pick": "first", "idle_relaxation": False, "task_seeds": "shared"}
        return cls.model_validate({**old, **spec})


def updated(spec: StudySpec, **changes: Any) -> StudySpec:
    """A validated copy of ``spec`` with ``changes``, made through the flat form records keep, so that a field of
    the execution (backend, shots, loader) and one of the study's own change alike, whether the spec keeps its
    execution fields flat or composed."""
    return type(spec).model_validate({**spec.model_dump(), **changes})


@dataclass
class Design:
    """What a study runs: the prepared work of evaluated + calibration rows, and which job each method reads."""

    spec: StudySpec
    methods: list[Method]
    prepared: Any  # evaluate.prepare.Prepared over all rows
    work: Work
    n_eval: int
    n_cal: int
    fid_role: dict[str, str]  # method name -> Estimator task role
    rec_role: dict[str, str]  # method name -> Sampler task role (empty: --metrics fidelity, no Sampler job)
    calibration_indices: list[int]
    ref_role: dict[str, str]  # method name -> noise-reference Estimator task role (methods with 'ref')


def _images(spec: StudySpec, tm: Any) -> tuple[ImageSet, ImageSet]:
    """The N evaluated test images and the K calibration images (never the same images)."""

    data_dir = spec.data_dir if spec.data_dir is not None else tm.data_dir
    size = tm.cfg.image_size
    evaluated = load_split(data_dir, "test", size, limit=spec.samples)
    if len(evaluated) < spec.samples:
        raise QMAEError(f"--images {spec.samples} is more than the {len(evaluated)} test images")
    k = spec.calibration_images
    if k == 0:
        return evaluated, ImageSet(evaluated.images[:0], evaluated.labels[:0], evaluated.indices[:0])
    cal = _calibration_images(spec, data_dir, size)
    if spec.calibration_split == "test":
        shared = sorted(set(cal.indices.tolist()) & set(evaluated.indices.tolist()))
        if shared:
            raise QMAEError(
                f"calibration images {shared[:5]} are also evaluated images; take them from the "
                f"training split or start them at --calibration-start {spec.samples} or later"
            )
    return evaluated, cal


def _calibration_images(spec: StudySpec, data_dir: Any, size: int) -> ImageSet:
    """K calibration images from index ``calibration_start`` on: ``spread`` evenly over the rest of the split (the
    training split is sorted by digit, so its first K images are all zeros -- a calibration set unlike the
    evaluated images, whose fits then do not transfer), or ``first`` (the first K; studies written before
    ``spread`` existed)."""

    k, start = spec.calibration_images, spec.calibration_start
    pool = load_split(
        data_dir, spec.calibration_split, size, limit=start + k if spec.calibration_pick == "first" else None
    )
    if len(pool) < start + k:
        raise QMAEError(
            f"--calibration-images {k} from index {start} is more than the {spec.calibration_split} split holds"
        )
    if spec.calibration_pick == "first":
        return pool.subset(slice(start, start + k))
    rows = start + ((np.arange(k) + 0.5) * (len(pool) - start) / k).astype(int)
    return pool.subset(torch.as_tensor(rows))


def check_runnable(spec: StudySpec, executor: Executor) -> list[Method]:
    """The spec's methods, refused in one line where the backend or the calibration images cannot serve them."""
    if executor.kind == "exact":
        raise QMAEError(
            "a noise study needs a noisy backend: a fake device, a calibration snapshot, an IBM "
            "backend, or aer_simulator with --noise-model"
        )
    methods = parse_methods(spec.methods, spec.zne, spec.raw_baseline)
    for m in methods:
        m.estimator_mitigation.check_runnable(executor.kind, device=executor.remote)
    if any(m.calibrate for m in methods) and spec.calibration_images < 3:
        raise QMAEError(
            f"method 'cal' fits two parameters and needs at least 3 calibration images, got "
            f"--calibration-images {spec.calibration_images}"
        )
    return methods


def _check_reference_images(spec: StudySpec, methods: list[Method]) -> None:
    """The reference fit's minimum, refused before anything runs (the fit itself would refuse it after)."""
    if any(m.reference for m in methods) and spec.calibration_images < 5:
        raise QMAEError(
            f"the reference calibration ('ref', in 'recommended') fits four parameters and needs at least 5 "
            f"calibration images, got --calibration-images {spec.calibration_images}; pass more"
        )


def design(spec: StudySpec, executor: Executor) -> Design:
    """Images, circuits, parameter values and one task per distinct primitive configuration."""

    methods = check_runnable(spec, executor)
    tm = load_trained(spec.run)
    evaluated, cal = _images(spec, tm)
    _check_reference_images(spec, methods)
    rows = ImageSet(
        torch.cat([evaluated.images, cal.images]),
        torch.cat([evaluated.labels, cal.labels]),
        torch.cat([evaluated.indices, cal.indices]),
    )
    # the fidelity alone transpiles no reconstruction circuit, and its record lists none
    prepared = prepare(tm, rows, spec.execution, executor, ROLES if spec.metrics == "all" else (FIDELITY,))
    base_f = prepared.work.tasks[FIDELITY]
    assert isinstance(base_f, EstimatorTask)
    tasks: dict[str, Any] = {}
    fid_role = _estimator_tasks(methods, base_f, tasks)
    ref_role = _reference_tasks(methods, base_f, prepared, fid_role, tasks)
    rec_role: dict[str, str] = {}
    if spec.metrics == "all":
        base_r = prepared.work.tasks[RECONSTRUCTION]
        assert isinstance(base_r, SamplerTask)
        rec_role = _sampler_tasks(methods, base_r, tasks)
    check_precision(spec, executor, base_f)
    work = spec.execution.work(tasks, Mitigation())  # each task carries its method's own mitigation
    return Design(
        spec, methods, prepared, work, len(evaluated), len(cal), fid_role, rec_role, cal.indices.tolist(), ref_role
    )


def _estimator_tasks(methods: list[Method], base: EstimatorTask, tasks: dict[str, Any]) -> dict[str, str]:
    """One fidelity task per distinct Estimator configuration; method name -> its task's role."""
    roles: dict[str, str] = {}
    by_key: dict[str, str] = {}
    for m in methods:
        key = m.estimator_key()
        if key not in by_key:
            by_key[key] = f"fidelity/{m.name}"
            tasks[by_key[key]] = replace(base, mitigation=m.estimator_mitigation)
        roles[m.name] = by_key[key]
    return roles


def _reference_tasks(
    methods: list[Method], base: EstimatorTask, prepared: Any, fid_role: dict[str, str], tasks: dict[str, Any]
) -> dict[str, str]:
    """The noise-reference circuits (the clean image at both loaders) of the methods with 'ref'."""
    if not any(m.reference for m in methods):
        return {}

    angles = {}
    if prepared.loader_fits:  # the reference loads the clean image's fitted state at both loaders
        clean_angles = prepared.loader_fits["clean"].angles
        angles = {"masked_angles": clean_angles, "clean_angles": clean_angles}
    values = parameter_values(base.circuit, prepared.tm.theta, prepared.clean, prepared.clean, **angles)
    roles: dict[str, str] = {}
    for m in methods:
        if m.reference:
            role = f"reference/{fid_role[m.name].split('/', 1)[1]}"
            if role not in tasks:
                tasks[role] = replace(base, values=values, mitigation=m.estimator_mitigation)
            roles[m.name] = role
    return roles


def _sampler_tasks(methods: list[Method], base: SamplerTask, tasks: dict[str, Any]) -> dict[str, str]:
    """One reconstruction task per distinct Sampler configuration (readout correction is post-processing)."""
    roles: dict[str, str] = {}
    by_key: dict[str, str] = {}
    for m in methods:
        key = m.sampler_key()
        readout = "mthree" if any(o.readout == "mthree" and o.sampler_key() == key for o in methods) else "none"
        if key not in by_key:
            by_key[key] = f"reconstruction/{m.name}"
            tasks[by_key[key]] = replace(
                base, mitigation=Mitigation(estimator=m.sampler_mitigation.estimator, readout=readout)
            )
        roles[m.name] = by_key[key]
    return roles


def check_precision(spec: StudySpec, executor: Executor, task: EstimatorTask) -> None:
    """Refuse shots that cannot reach ``--precision``: a calibrated estimate's shot noise is the raw one divided by
    the fitted slope, which the device's estimated success probability of this ISA circuit bounds from above."""
    if spec.precision is None or executor.target is None:
        return

    esp = success_probability(task.circuit, executor.target, [])
    if esp is None:
        return
    worst = 0.5 / np.sqrt(spec.shots)  # binomial standard error of a probability, at most 0.5/sqrt(shots)
    if worst / esp > spec.precision:
        need = int(np.ceil((0.5 / (esp * spec.precision)) ** 2))
        raise QMAEError(
            f"--shots {spec.shots} is too few for --precision {spec.precision}: with the circuit's "
            f"estimated success probability {esp:.3f} a calibrated fidelity needs about {need} shots; "
            "raise --shots or relax --precision"
        )
