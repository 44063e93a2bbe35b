"""The repetition delay: how long a device waits after one shot's measurement before the next shot starts.

Why it matters: every shot pays it, so at IBM's default of 250 µs it is most of a study's QPU time (a 4x4
circuit runs for a few µs). Why it is not simply made short: the wait is what lets the qubits relax back to |0>
(with the device's reset, where ``init_qubits`` is on) before the next shot. A shorter delay leaves more
population in |1> from the previous shot -- a state-preparation error that grows as the delay shrinks towards the
qubits' T1 (some 100-300 µs on Eagle and Heron) and below, and that differs from qubit to qubit and from shot to
shot with what the previous shot measured. A study's calibration (``cal``, ``recommended``) absorbs the part that
acts as a fixed contraction of the signal; the rest is bias. The local twin resets its qubits perfectly, so on a
twin a shorter delay only shows what it saves, never what it costs.

The runtime takes it as ``execution.rep_delay`` (``qiskit_ibm_runtime.options_models.ExecutionOptions``), within
``backend.rep_delay_range`` (checked here where the backend states one; the device checks the rest); unset, the
device uses its ``default_rep_delay``.
"""

from __future__ import annotations

from typing import Any

from qmae_qiskit.errors import QMAEError

DEFAULT_REP_DELAY = 250e-6
"""Seconds between shots when the backend states none: the default of IBM's Eagle and Heron devices and of
every fake backend of qiskit-ibm-runtime (``backend.default_rep_delay``)."""


def _configuration(backend: Any) -> Any:
    try:
        return backend.configuration()
    except Exception:
        return None


def _stated(backend: Any, name: str) -> Any:
    """``name`` as the backend states it, on itself or on its configuration (None: it states none)."""
    for source in (backend, _configuration(backend)):
        value = getattr(source, name, None)
        if value is not None:
            return value
    return None


def default_rep_delay(backend: Any) -> float:
    """The backend's own delay (``default_rep_delay``), else :data:`DEFAULT_REP_DELAY`."""
    value = _stated(backend, "default_rep_delay")
    return float(value) if isinstance(value, (int, float)) and value > 0 else DEFAULT_REP_DELAY


def rep_delay_range(backend: Any) -> tuple[float, float] | None:
    """(shortest, longest) delay in seconds the backend accepts, or None where it states no range."""
    value = _stated(backend, "rep_delay_range")
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return low, high


def check_rep_delay(backend: Any, seconds: float | None) -> None:
    """One line if ``seconds`` is a delay ``backend`` does not take (None, its default, always passes)."""
    if seconds is None:
        return
    name = getattr(backend, "name", "the backend")
    span = rep_delay_range(backend)
    if span is not None and not span[0] <= seconds <= span[1]:
        raise QMAEError(
            f"--rep-delay {seconds:g} s is outside {name}'s range {span[0]:g} to {span[1]:g} s (rep_delay_range); "
            f"give a delay within it, or leave it out for the default {default_rep_delay(backend):g} s"
        )
