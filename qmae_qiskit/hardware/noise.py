"""Aer noise models from a backend name or a calibration snapshot (``--noise-model SPEC`` everywhere).

Both routes end in Aer's own ``NoiseModel.from_backend`` (depolarizing + thermal relaxation per gate, readout
error per qubit), so a snapshot of fake_torino and fake_torino itself give the same model.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from qiskit.providers import BackendV2
from qiskit_aer.noise import NoiseModel

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware.backends import AER_SIMULATOR, resolve_backend
from qmae_qiskit.hardware.calibration import snapshot_backend


def is_snapshot_spec(spec: str | Path) -> bool:
    """A path (existing file, ``.json`` suffix or containing a separator) rather than a backend name."""
    text = str(spec)
    return isinstance(spec, Path) or text.endswith(".json") or "/" in text or "\\" in text or Path(text).is_file()


def backend_for_spec(spec: str | Path) -> BackendV2:
    """The backend a noise spec stands for: a snapshot's rebuilt target, or a resolved backend."""
    if is_snapshot_spec(spec):
        return snapshot_backend(spec)
    return resolve_backend(str(spec))


def noise_model_for_backend(backend: BackendV2) -> NoiseModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "no QubitProperties" on targets without T1/T2
        return NoiseModel.from_backend(backend)


def noise_model(spec: str | Path) -> NoiseModel:
    """Noise model for a fake / IBM backend name (``fake_torino``) or a calibration snapshot JSON path."""
    if str(spec) == AER_SIMULATOR:
        raise QMAEError(
            "aer_simulator is noiseless; leave out the noise model, or give a fake backend "
            "(e.g. fake_torino) or a calibration snapshot file"
        )
    return noise_model_for_backend(backend_for_spec(spec))
