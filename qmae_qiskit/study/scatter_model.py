"""The calibration scatter a device's own noise model predicts, for a budget's allocation (``--scatter-from
noise-model``).

Why: a 12-image pilot at 1,000 shots cannot see a scatter of a few thousandths under its shot noise of about
±0.015, so the allocation either designs for an upper bound (up to 60 calibration images where 20-25 would do) or
misses that the per-image references pay (results/hardware/budget600-best-device). The scatter is the device's
noise acting differently on different images, and the device's reported noise (its twin: gate and readout errors,
T1/T2, idle time in the scheduled circuit) predicts it without shots: calibration images, simulated
exactly (density matrix, no shot noise) under that noise, fitted as the study fits them.

Only the allocation reads it (shots, calibration images, references); every estimate and error bar still comes
from the measurements, and the evaluated images are never simulated. The model's images are drawn as a
study of :data:`~qmae_qiskit.study.budget.MAX_CALIBRATION_IMAGES` calibration images draws them, not the pilot's
twelve: on the 8x8 `ladder:6` circuit on fake_boston twelve images put the scatter at 0.0124 without references and
0.0061 with, and every seed ran references, for 0.0108 against 0.0091 without
(results/hardware/budget600-best-device/noise-model-scatter/README.md). On a twin the model is the device's own
noise (the allocation still rests on the pilot's slope and shot noise); a real device's calibration data would
match it less well (no crosstalk, no drift); a budgeted study runs on twins only. Readout is left out: an affine map
removes it (results/hardware/scatter-sources).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from qiskit_aer import AerSimulator

from qmae_qiskit.evaluate.prepare import FIDELITY
from qmae_qiskit.hardware.execution import EstimatorTask
from qmae_qiskit.hardware.mitigation import Mitigation
from qmae_qiskit.hardware.schedule import decoupled
from qmae_qiskit.hardware.twin import DENSITY_MATRIX_MAX_QUBITS, compact_observable, make_twin, twin_simulator
from qmae_qiskit.study.budget import NoiseModel
from qmae_qiskit.study.calibration import fit_affine, fit_reference
from qmae_qiskit.study.design import Design

SOURCE = "noise-model"


def noisy_values(task: EstimatorTask, executor: Any, per_shot: bool = False) -> np.ndarray | None:
    """The exact expectation of ``task``'s observable for each of its rows under the device's noise model, on the
    circuit as the twin schedules it, with the dynamical decoupling ``task.mitigation`` asks for (None where the
    twin is too wide for a density matrix); with ``per_shot``,
    rows of (expectation, variance of one shot's reading ``<O^2> - <O>^2``: the observable's terms are measured in
    one basis, a projector's is m(1 - m), a Pauli's 1 - m^2)."""
    twin = make_twin(executor.device, task.circuit)
    if twin.num_qubits > DENSITY_MATRIX_MAX_QUBITS:
        return None
    sim = twin_simulator(twin, None, executor.idle)
    dd = (task.mitigation or Mitigation()).estimator_options().dynamical_decoupling
    circuit = sim.timed(decoupled(twin.circuit, sim, dd)).copy()
    obs = compact_observable(task.observable, twin.physical)
    circuit.save_expectation_value(obs, range(circuit.num_qubits))
    if per_shot:
        circuit.save_expectation_value((obs @ obs).simplify(), range(circuit.num_qubits), label="square")
    bind = {p: np.asarray(task.values)[:, j] for j, p in enumerate(circuit.parameters)}
    aer = AerSimulator(method="density_matrix", noise_model=sim.options.noise_model, fusion_threshold=1)
    result = aer.run(circuit, parameter_binds=[bind], shots=1).result()
    m = np.array([float(np.real(result.data(i)["expectation_value"])) for i in range(len(task.values))])
    if not per_shot:
        return m
    square = np.array([float(np.real(result.data(i)["square"])) for i in range(len(task.values))])
    return np.column_stack([m, square - m**2])


def simulable(d: Design, executor: Any) -> bool:
    """Whether the twin of ``d``'s fidelity circuit is narrow enough for exact density matrices."""
    return make_twin(executor.device, d.prepared.work.tasks[FIDELITY].circuit).num_qubits <= DENSITY_MATRIX_MAX_QUBITS


@dataclass(frozen=True)
class ModelScatter:
    """What the device's noise model says of the scatter about a design's fit, in fidelity units."""

    var: float  # about the fit, with exact (shot-free) values
    explained: float = 0.0  # with references: the part an exact reference removes (already out of ``var``)
    signal: float = 0.0  # the reference's own image-to-image variance beyond what F and F_ref predict
    reference_shot: float = 0.0  # the reference's binomial variance per shot


def model_scatter(
    pd: Design, executor: Any, exact_f: np.ndarray, reference_f: np.ndarray, method: str | None = None
) -> dict[bool, ModelScatter] | None:
    """{references: :class:`ModelScatter`} of a design's calibration rows under the device's noise model, fitted
    as ``cal`` (and, where the design runs references, as ``ref``) fits them; None where the circuit is too wide to
    simulate. The design's evaluated rows are never simulated or read.

    With exact values a reference explains all it can; measured, its own shot noise dilutes it (errors in
    variables), so the model keeps what an exact reference explains apart, for the allocation to discount at each
    number of shots (:class:`~qmae_qiskit.study.budget.NoiseModel`). Without it, the 8x8 `ladder:6` circuit on
    fake_boston (model scatter 0.0104 without references, 0.0062 with, on 60 images) was predicted to gain from
    references in every seed; with it, by at most 6 % (results/hardware/budget600-best-device/noise-model-scatter).
    The circuits are ``method``'s (None: the plain circuit), with the dynamical decoupling it asks for; ZNE,
    twirling and mthree are not modelled."""
    cal = slice(pd.n_eval, None)
    base = pd.work.tasks[pd.fid_role[method]] if method else pd.prepared.work.tasks[FIDELITY]
    assert isinstance(base, EstimatorTask)
    rows = EstimatorTask(base.circuit, base.observable, np.asarray(base.values)[cal], base.mitigation)
    m = noisy_values(rows, executor)
    if m is None:
        return None
    f = exact_f[cal]
    line = fit_affine(f, m)
    plain = (line.residual_std / line.slope) ** 2
    out = {False: ModelScatter(plain)}
    role = pd.ref_role.get(method) if method else next(iter(pd.ref_role.values()), None)
    if role:  # the judged method's own references (a method without them borrows none)
        ref = pd.work.tasks[role]
        assert isinstance(ref, EstimatorTask)
        ref_rows = EstimatorTask(ref.circuit, ref.observable, np.asarray(ref.values)[cal], ref.mitigation)
        read = noisy_values(ref_rows, executor, True)
        assert read is not None  # the same circuit as the fidelity's
        mr, shot_var = read[:, 0], read[:, 1]
        fit = fit_reference(f, m, mr, reference_f[cal])
        a = float(fit.coef[0])
        x = np.column_stack([f, reference_f[cal], np.ones_like(f)])
        own = mr - x @ np.linalg.lstsq(x, mr, rcond=None)[0]
        var = (fit.residual_std / a) ** 2
        signal = float(own @ own) / (len(f) - 3) / a**2
        out[True] = ModelScatter(var, max(plain - var, 0.0), signal, float(np.mean(shot_var)) / a**2)
    return out


def with_scatter(models: dict[bool, NoiseModel], scatter: dict[bool, ModelScatter]) -> dict[bool, NoiseModel]:
    """The pilot's models with the scatter the device's noise model predicts (fidelity units, scaled by the pilot's
    slope) in place of the pilot's own, which its shot noise hides. With references, the fidelity's own shot noise
    (the plain model's) plus the reference's part as the noise model discounts it. With no pilot degrees of freedom
    behind the scatter, neither the upper bound nor the references test applies: both designs are compared as
    predicted."""
    out = {}
    for r, m in models.items():
        s, a2 = scatter[r], m.slope**2
        if r:
            noise = (s.explained * a2, s.signal * a2, s.reference_shot * a2)
            m = replace(m, shot_var_per_shot=models[False].shot_var_per_shot, reference_noise=noise)
        out[r] = replace(m, scatter_var=s.var * a2, dof=None)
    return out


def record(prior: dict[bool, ModelScatter] | None) -> dict[str, Any]:
    """What a budgeted study's allocation records of the noise model's scatter: its source and standard deviations
    in fidelity units, or that the twin was too wide and the pilot's scatter was used (``prior`` None)."""
    if prior is None:
        return {"scatter_from": "pilot: the twin is too wide for the noise model's density matrices"}
    names = {False: "without_references", True: "with_references"}
    return {"scatter_from": SOURCE, "model_scatter_std": {names[r]: float(v.var**0.5) for r, v in prior.items()}}
