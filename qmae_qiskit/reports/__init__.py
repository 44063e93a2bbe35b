"""Reports on circuits as compiled for a device: depth and two-qubit counts, the loader budget, the loader
frontier. They sit above ``train`` (the frontier scores a trained run) and below ``study``, which reads depth."""
