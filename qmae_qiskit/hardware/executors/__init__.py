"""Executors of :class:`~qmae_qiskit.hardware.execution.Work`, and :func:`make_executor` to pick one by name.

A backend spec names where work runs: ``exact``; ``aer_simulator`` (with an optional ``noise_model`` spec:
a fake device name or a calibration snapshot file, applied without the device's coupling map); a fake device
name (``fake_torino``) or a calibration snapshot file, which run on the device's local twin; or an IBM backend
name, which runs on the device.
"""

from __future__ import annotations

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.backends import AER_SIMULATOR, is_fake_name, resolve_backend
from qmae_qiskit.hardware.calibration import snapshot_backend
from qmae_qiskit.hardware.execution import Executor
from qmae_qiskit.hardware.executors.aer import AerExecutor
from qmae_qiskit.hardware.executors.exact import ExactExecutor
from qmae_qiskit.hardware.executors.runtime import RuntimeExecutor
from qmae_qiskit.hardware.executors.twin import TwinExecutor
from qmae_qiskit.hardware.idle_noise import IdleNoise
from qmae_qiskit.hardware.noise import is_snapshot_spec
from qmae_qiskit.hardware.noise import noise_model as build_noise

EXACT = "exact"


def make_executor(
    backend: str, noise_model: str | None = None, idle: IdleNoise | None = None, device: str = "cpu"
) -> Executor:
    """The executor for ``backend`` (see the module docstring); bad names fail with one line and close matches.
    Coherent ``idle`` errors apply to a twin only.

    ``device`` (a resolved torch device type): ``cuda`` runs the exact path's kernel on the GPU, and Aer on its
    GPU when qiskit-aer-gpu is installed (the ``[gpu]`` extra); the other backends ignore it."""

    spec = (backend or "").strip()
    if noise_model is not None and spec != AER_SIMULATOR:
        raise QMAEError(
            f"--noise-model applies to --backend aer_simulator; {spec!r} brings its own noise "
            "(drop --noise-model, or use --backend aer_simulator --noise-model ...)"
        )
    if idle is not None and not idle.is_default and (spec in (EXACT, AER_SIMULATOR) or not _is_twin(spec)):
        raise QMAEError(
            "--idle-zz, --idle-detuning and --no-idle-relaxation apply to a device's local twin (a fake device "
            f"such as fake_torino, or a calibration snapshot file); {spec!r} is not one (drop them, or pick a twin)"
        )
    if spec == EXACT:
        return ExactExecutor(device)
    if spec == AER_SIMULATOR:
        gpu = device == "cuda"
        if noise_model is None:
            return AerExecutor(gpu=gpu)

        return AerExecutor(build_noise(noise_model), str(noise_model), gpu=gpu)
    if is_snapshot_spec(spec):
        return TwinExecutor(snapshot_backend(spec), spec, idle)
    target = resolve_backend(spec)
    if not is_fake_name(spec):  # from QiskitRuntimeService: a real device, whatever object the service returns
        return RuntimeExecutor(target)

    return TwinExecutor(target, spec, idle)


def _is_twin(spec: str) -> bool:
    """A calibration snapshot file or a fake device name: what runs on a local twin."""

    return is_snapshot_spec(spec) or is_fake_name(spec)
