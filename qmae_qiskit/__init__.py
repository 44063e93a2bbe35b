"""qmae-qiskit: Quantum Masked Autoencoders (Andrews & Mishra) built, trained and run with Qiskit."""

from qmae_qiskit.config import QMAEConfig

__all__ = ["QMAEConfig", "__version__"]
__version__ = "0.1.0"
