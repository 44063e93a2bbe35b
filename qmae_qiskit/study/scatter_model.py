"""The calibration scatter a device's own noise model predicts, for a budget's allocation (``--scatter-from
noise-model``).

Why: a 12-image pilot at 1,000 shots cannot see a scatter of a few thousandths under its shot noise of about
±0.015, so the allocation either designs for an upper bound (up to 60 calibration images where 20-25 would do) or
misses that the per-image references pay (results/hardware/budget600-best-device). The scatter is the device's
noise acting differently on different images, and the device's reported noise (its twin: gate and readout errors,
T1/T2, idle time in the scheduled circuit) predicts it without shots: the pilot's own calibration images, simulated
exactly (density matrix, no shot noise) under that noise, fitted as the study fits them.

Only the allocation reads it (shots, calibration images, references); every estimate and error bar still comes
from the measurements, and the evaluated images are never simulated. On a twin the model is the device's own
noise, so the prediction is as good as it gets; on a device it is as good as its calibration data (no crosstalk,
no drift). Readout is left out: an affine map removes it (results/hardware/scatter-sources).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qiskit_aer import AerSimulator

from qmae_qiskit.hardware.execution import EstimatorTask
from qmae_qiskit.hardware.twin import DENSITY_MATRIX_MAX_QUBITS, compact_observable, make_twin, twin_simulator
from qmae_qiskit.study.calibration import fit_affine, fit_reference
from qmae_qiskit.study.design import Design

SOURCE = "noise-model"


def noisy_values(task: EstimatorTask, executor: Any) -> np.ndarray | None:
    """The exact expectation of ``task``'s observable for each of its rows under the device's noise model, on the
    circuit as the twin schedules it (None where the twin is too wide for a density matrix)."""
    twin = make_twin(executor.device, task.circuit)
    if twin.num_qubits > DENSITY_MATRIX_MAX_QUBITS:
        return None
    sim = twin_simulator(twin, None, executor.idle)
    circuit = sim.timed(twin.circuit).copy()
    circuit.save_expectation_value(compact_observable(task.observable, twin.physical), range(circuit.num_qubits))
    bind = {p: np.asarray(task.values)[:, j] for j, p in enumerate(circuit.parameters)}
    aer = AerSimulator(method="density_matrix", noise_model=sim.options.noise_model, fusion_threshold=1)
    result = aer.run(circuit, parameter_binds=[bind], shots=1).result()
    return np.array([float(np.real(result.data(i)["expectation_value"])) for i in range(len(task.values))])


def model_scatter(pd: Design, executor: Any, exact_f: np.ndarray, reference_f: np.ndarray) -> dict[bool, float] | None:
    """{references: the scatter's variance in fidelity units} of the pilot's calibration rows under the device's
    noise model, fitted as ``cal`` (and, where the pilot runs references, as ``ref``) fits them; None where the
    circuit is too wide to simulate. The pilot's evaluated row is never simulated or read."""
    cal = slice(pd.n_eval, None)
    base = pd.prepared.work.tasks["fidelity"]
    assert isinstance(base, EstimatorTask)
    rows = EstimatorTask(base.circuit, base.observable, np.asarray(base.values)[cal], base.mitigation)
    m = noisy_values(rows, executor)
    if m is None:
        return None
    line = fit_affine(exact_f[cal], m)
    out = {False: (line.residual_std / line.slope) ** 2}
    if pd.ref_role:
        ref = pd.work.tasks[next(iter(pd.ref_role.values()))]
        assert isinstance(ref, EstimatorTask)
        mr = noisy_values(EstimatorTask(ref.circuit, ref.observable, np.asarray(ref.values)[cal]), executor)
        assert mr is not None  # the same circuit as the fidelity's
        fit = fit_reference(exact_f[cal], m, mr, reference_f[cal])
        out[True] = (fit.residual_std / fit.coef[0]) ** 2
    return out
