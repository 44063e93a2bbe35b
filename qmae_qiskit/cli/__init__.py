"""Command-line interface. Each command lives in its own module and registers itself on :data:`main`."""

from qmae_qiskit.cli import (
    calibration,  # noqa: F401  (registers `calibration`)
    circuit,  # noqa: F401  (registers `circuit`)
    classifier,  # noqa: F401  (registers `classifier`)
    evaluate,  # noqa: F401  (registers `evaluate`)
    figure8,  # noqa: F401  (registers `figure8`)
    jobs,  # noqa: F401  (registers `submit` and `jobs`)
    report,  # noqa: F401  (registers `report`)
    reproduce,  # noqa: F401  (registers `reproduce`)
    study,  # noqa: F401  (registers `study`)
    sweep,  # noqa: F401  (registers `sweep`)
    train,  # noqa: F401  (registers `train`)
)
from qmae_qiskit.cli.app import main

__all__ = ["main"]
