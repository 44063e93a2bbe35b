"""Command-line interface: one thin click command per module, loaded by :data:`main` when it is used
(``qmae_qiskit.cli.app.COMMANDS``), so ``qmae-qiskit --help`` stays fast."""

from qmae_qiskit.cli.app import main

__all__ = ["main"]
