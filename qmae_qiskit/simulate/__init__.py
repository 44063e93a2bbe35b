"""Exact simulation without the full register: the exact path, the adjoint gradient, statevector kernels."""
