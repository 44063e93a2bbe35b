"""The client-side runtime primitives, used the same way for a device, its twin and Aer.

qiskit-ibm-runtime >= 0.50 does mitigation (TREX, ZNE, twirling, dynamical decoupling) on the client
(``executor_estimator.Estimator``, ``executor_sampler.Sampler``); the legacy ``EstimatorV2``/``SamplerV2``
are deprecated and ignore mitigation in local mode. ``mode`` is a ``Batch`` on a device, or a simulator for
the twin and for Aer: the offline path and the real path are this one code. Results are read into the
execution layer's :class:`Estimates` and :class:`Samples` here, also when a job is fetched later by its id.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qiskit.quantum_info import SparsePauliOp

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.execution import Estimates, EstimatorTask, OnSubmitted, SamplerTask, Samples, Work
from qmae_qiskit.hardware.readout import assignment_matrices, calibration_circuits, correct


def estimator_job(mode: Any, task: EstimatorTask, work: Work, seed: int | None = None) -> Any:
    """Submit one Estimator job: the task's circuit, observable and every row of parameter values; ``seed``
    seeds a simulator (``Work.seed_of`` the task's role)."""
    from qiskit_ibm_runtime.executor_estimator import Estimator  # lazy: qiskit-ibm-runtime adds ~1.6 s

    if work.shots is None:
        raise QMAEError("the runtime primitives sample: give a number of shots")
    options = work.mitigation_of(task).estimator_options(shots=work.shots, seed=seed, rep_delay=work.rep_delay)
    return Estimator(mode=mode, options=options).run([(task.circuit, task.observable, task.values)])


def sampler_job(
    mode: Any, task: SamplerTask, work: Work, calibration: list | None = None, seed: int | None = None
) -> Any:
    """Submit one Sampler job: the task's circuit for every row, then the readout calibration circuits if any;
    ``seed`` seeds a simulator."""
    from qiskit_ibm_runtime.executor_sampler import Sampler  # lazy: qiskit-ibm-runtime adds ~1.6 s

    if work.shots is None:
        raise QMAEError("the runtime primitives sample: give a number of shots")
    options = work.mitigation_of(task).sampler_options(shots=work.shots, seed=seed, rep_delay=work.rep_delay)
    pubs: list[tuple] = [(task.circuit, task.values)] + [(c,) for c in calibration or []]
    return Sampler(mode=mode, options=options).run(pubs, shots=work.shots)


def note_submitted(role: str, job: Any, ids: dict[str, str | None], on_submitted: OnSubmitted | None) -> None:
    """Note a job's id and tell the caller at once (before waiting for its result)."""
    job_id = str(job.job_id())
    ids[role] = job_id
    if on_submitted is not None:
        on_submitted(role, job_id)


def readout_calibration(task: SamplerTask, work: Work) -> list:
    """The calibration circuits the Sampler job carries when readout correction is asked for."""
    return calibration_circuits(task.circuit, task.register) if work.mitigation_of(task).readout == "mthree" else []


def read_estimates(result: Any, binomial_shots: int | None = None, readout_gain: float = 1.0) -> Estimates:
    """An Estimator job's PrimitiveResult -> values and standard errors per row; with ``binomial_shots`` (a
    projector read once on every one of that many shots, :func:`binomial_shots`) the standard error is at least
    ``sqrt((g P - P^2) / shots)``: the binomial ``P (1 - P)`` for raw shots (``g`` = 1), and for TREX, whose reading of
    a shot is ``prod_q (1 + s_q / f_q) / 2`` over the projector's qubits (``f_q`` each one's twirled readout
    fidelity), ``E[X^2] ~ g P`` with ``g = prod_q (1 + 1 / f_q) / 2`` (:func:`readout_gain`)."""
    pub = result[0]
    values = np.asarray(pub.data.evs, dtype=np.float64).reshape(-1)
    stds = np.asarray(pub.data.stds, dtype=np.float64).reshape(-1)
    meta: dict[str, Any] = {"shots": _plain(getattr(result, "metadata", {}).get("shots"))}
    if hasattr(pub.data, "evs_noise_factors"):
        meta["evs_noise_factors"] = np.asarray(pub.data.evs_noise_factors).tolist()
    if binomial_shots is not None:
        p = np.clip(values, 0.0, 1.0)
        stds = np.maximum(stds, np.sqrt((readout_gain * p - p**2) / binomial_shots))  # g >= 1: at least binomial
        meta["stds"] = f"at least the per-shot reading's (a projector read once per shot; gain {readout_gain:.4f})"
    return Estimates(values, stds, meta)


def binomial_shots(task: EstimatorTask, work: Work) -> int | None:
    """The shots over which an estimate is an average of one reading per shot, or None where the runtime's error
    is kept (another observable, or ZNE or PEC, which extrapolate or reweight several circuits' averages).

    The runtime's standard error of a multi-term observable adds its terms' variances as if they were independent;
    every Z-product of one projector is read from the same shots and they are positively correlated, so for the
    4-qubit fidelity projector (fake_marrakesh, 4,000 shots, 20-40 images, 4-6 seeds) it reported 0.0032 where 0.0072
    was measured across seeds without mitigation, and 0.0032 against 0.0078 with TREX; with gate twirling the
    observed variance was 2.8x the reported one (fake_sherbrooke, 3 qubits).
    """
    if work.shots is None or not work.mitigation_of(task).reads_each_shot or not is_projector(task.observable):
        return None
    return int(work.shots)


def shot_floor(task: EstimatorTask, work: Work, target: Any) -> tuple[int | None, float]:
    """(:func:`binomial_shots`, :func:`readout_gain`): how :func:`read_estimates` floors the task's errors, for a
    live run and for a device job's record alike."""
    return binomial_shots(task, work), readout_gain(task, work, target)


def observable_support(observable: SparsePauliOp) -> list[int]:
    """The qubits an observable measures in Z."""
    return sorted({int(q) for p in observable.paulis for q in np.nonzero(p.z)[0]})


def readout_gain(task: EstimatorTask, work: Work, target: Any) -> float:
    """``g = prod_q (1 + 1 / f_q) / 2`` over the projector's qubits when TREX rescales the readout (else 1), with
    ``f_q = 1 - 2 e_q`` the twirled readout fidelity of qubit q from the target's measurement error ``e_q`` (the
    device's calibration; TREX measures its own, which this approximates). Without it a TREX estimate near P = 1 was
    2.6x more confident in variance than its spread over eight seeds (fake_sherbrooke, 3 qubits, P ~ 0.95)."""
    if target is None or not work.mitigation_of(task).rescales_readout:
        return 1.0
    gain = 1.0
    for q in observable_support(task.observable):
        props = target["measure"].get((q,)) if "measure" in target else None
        error = float(getattr(props, "error", None) or 0.0)
        gain *= (1.0 + 1.0 / max(1.0 - 2.0 * error, 1e-3)) / 2.0
    return gain


def is_projector(observable: SparsePauliOp) -> bool:
    """Whether ``observable`` is diagonal with O^2 = O (the fidelity circuits' |0..0><0..0| on some qubits)."""
    if any(np.any(p.x) for p in observable.paulis):
        return False
    square = (observable @ observable - observable).simplify(atol=1e-12)
    return bool(np.allclose(square.coeffs, 0.0, atol=1e-12))


def read_samples(result: Any, register: str, num_bits: int, readout: str) -> Samples:
    """A Sampler job's PrimitiveResult -> counts per row, frequencies or readout-corrected probabilities."""
    bits = getattr(result[0].data, register)
    rows = int(np.prod(bits.shape)) if bits.shape else 1
    counts = (
        [{k: int(v) for k, v in bits.get_counts(loc=i).items()} for i in range(rows)]
        if bits.shape
        else [{k: int(v) for k, v in bits.get_counts().items()}]
    )
    if readout == "mthree":
        if len(result) < 3:
            raise QMAEError("the Sampler result has no readout calibration; submit again with readout correction")
        cal = [getattr(result[k].data, register).get_counts() for k in (1, 2)]
        matrices = assignment_matrices(cal[0], cal[1], num_bits)
        probs = correct(counts, matrices, num_bits)
        meta = {"readout": "mthree", "assignment_matrices": [m.tolist() for m in matrices]}
    else:
        probs = frequencies(counts, num_bits)
        meta = {"readout": "none"}
    return Samples(probs, counts, meta)


def frequencies(counts: list[dict[str, int]], num_bits: int) -> np.ndarray:
    """Counts per row -> relative frequencies (N, 2^m), bit strings read as binary (or 0x hex)."""
    out = np.zeros((len(counts), 1 << num_bits))
    for row, c in enumerate(counts):
        for key, n in c.items():
            text = key.replace(" ", "")
            out[row, int(text, 16) if text.startswith("0x") else int(text, 2)] += n
        total = out[row].sum()
        if total <= 0:
            raise QMAEError("a circuit returned no counts")
        out[row] /= total
    return out


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
