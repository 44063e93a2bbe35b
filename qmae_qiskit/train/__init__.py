"""Training: the QMAE/QAE torch modules, fidelity backends (exact, Aer QNN), run folders, the loop."""
