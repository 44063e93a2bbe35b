"""Command-line interface. Each command lives in its own module and registers itself on :data:`main`."""

from qmae_qiskit.cli.app import main
from qmae_qiskit.cli import circuit  # noqa: F401  (registers `circuit`)
from qmae_qiskit.cli import classifier  # noqa: F401  (registers `classifier`)
from qmae_qiskit.cli import train  # noqa: F401  (registers `train`)
from qmae_qiskit.cli import report  # noqa: F401  (registers `report`)
from qmae_qiskit.cli import calibration  # noqa: F401  (registers `calibration`)
from qmae_qiskit.cli import evaluate  # noqa: F401  (registers `evaluate`)
from qmae_qiskit.cli import jobs  # noqa: F401  (registers `submit` and `jobs`)
from qmae_qiskit.cli import reproduce  # noqa: F401  (registers `reproduce`)

__all__ = ["main"]
