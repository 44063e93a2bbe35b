"""`python -m qmae_qiskit` runs the command line, like the `qmae-qiskit` script."""

from qmae_qiskit.cli import main

if __name__ == "__main__":
    main()
