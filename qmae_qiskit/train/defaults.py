"""Per-backend training defaults: small workloads that finish in minutes on two cores; each can be overridden.

The library owns them (the ``train`` command only parses, validates and calls), so every front end that builds a
:class:`qmae_qiskit.train.runs.RunSettings` from partial options gets the same run.
"""

from __future__ import annotations

from typing import Any

BACKEND_DEFAULTS: dict[str, dict[str, Any]] = {
    "exact": {"epochs": 1, "batch_size": 64, "train_samples": 1000, "val_samples": 200, "checkpoint_every": 10},
    "aer_simulator": {"epochs": 1, "batch_size": 4, "train_samples": 32, "val_samples": 100, "checkpoint_every": 1},
}


def with_backend_defaults(values: dict[str, Any], backend: str) -> dict[str, Any]:
    """``values`` with every setting that is missing or None taken from :data:`BACKEND_DEFAULTS` of ``backend``."""
    if backend not in BACKEND_DEFAULTS:
        raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKEND_DEFAULTS)}")
    out = dict(values)
    for key, default in BACKEND_DEFAULTS[backend].items():
        if out.get(key) is None:
            out[key] = default
    return out
