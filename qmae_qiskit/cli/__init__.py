"""Command-line interface. Each command lives in its own module and registers itself on :data:`main`."""

from qmae_qiskit.cli.app import main
from qmae_qiskit.cli import circuit  # noqa: F401  (registers `circuit`)

__all__ = ["main"]
