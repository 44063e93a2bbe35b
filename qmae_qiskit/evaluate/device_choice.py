"""Device choice: ``--backend auto`` or ``--backend fake_torino,fake_fez``: run on the device whose placement of the
circuit has the lowest expected error (:mod:`~qmae_qiskit.hardware.placement`'s score, idle time included).

Why a score and not a trial run: the score needs only a transpile per device (about a second each at 8x8), reads
the same calibration data the twin's noise model is built from, and is comparable across devices because it is
``-ln`` of an estimated success probability. ``auto`` ranks the devices an IBM Quantum account can reach; without
an account it ranks the fake twins of IBM's current Heron and Eagle devices (:data:`CURRENT_FAKES`) and says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from qiskit.circuit import QuantumCircuit

from qmae_qiskit.errors import QMAEError
from qmae_qiskit.evaluate.prepare import logical_circuits
from qmae_qiskit.hardware.backends import NoAccountError, fake_backend_classes, resolve_backend, runtime_service
from qmae_qiskit.hardware.placement import ErrorScore, place
from qmae_qiskit.hardware.spec import ExecutionSpec
from qmae_qiskit.model.approx_loader import as_spec
from qmae_qiskit.train.runs import load_trained

AUTO = "auto"
CURRENT_FAKES = (
    "fake_aachen",
    "fake_boston",
    "fake_fez",
    "fake_kingston",
    "fake_marrakesh",
    "fake_pittsburgh",
    "fake_torino",
    "fake_brisbane",
    "fake_sherbrooke",
)
"""Twins of IBM's Heron (r2, r3) and Eagle devices open in late 2025, as qiskit-ibm-runtime's fake provider has them."""


def is_choice(backend: str) -> bool:
    """True where ``--backend`` names several devices (a comma-separated list) or ``auto``."""
    return backend.strip() == AUTO or "," in backend


def candidates(backend: str, say: Callable[[str], None] | None = None) -> list[str]:
    """The device names a choice ranges over (each checked: an unknown name is one line with close matches)."""

    if backend.strip() == AUTO:
        try:
            service = runtime_service()
        except NoAccountError:
            if say is not None:
                say(f"--backend auto: no IBM Quantum account, so ranking the fake twins {', '.join(CURRENT_FAKES)}")
            return list(CURRENT_FAKES)
        return sorted(b.name for b in service.backends(operational=True, simulator=False))
    names = [n.strip() for n in backend.split(",")]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise QMAEError(f"--backend {backend!r}: give distinct device names separated by commas")
    for name in names:
        if name in ("exact", "aer_simulator"):
            raise QMAEError(f"--backend {backend!r}: {name} is no device; list devices or their twins (fake_torino)")
        if name.startswith("fake_") and name not in fake_backend_classes():
            resolve_backend(name)  # the one line with close matches, before any device is ranked
    return names


Ranking = list[dict[str, Any]]
"""A choice as records keep it (``device_ranking``): every candidate, best first, each with its score (None for a
device too small for the circuit), the score's parts, the qubits chosen on it and the reason for its place."""


@dataclass(frozen=True)
class Ranked:
    """One candidate device: its best placement of the circuit (no score: it cannot hold the circuit)."""

    backend: str
    score: ErrorScore | None
    layout: list[int]
    reason: str = ""

    def line(self) -> str:
        s = self.score
        if s is None:
            return f"{self.backend:>18}  {self.reason}"
        return (
            f"{self.backend:>18}  score {s.total:7.3f}  success {s.success:.3f}  (gates {s.gates:.3f}, readout "
            f"{s.readout:.3f}, idle {s.idle:.3f})  qubits {self.layout}  {self.reason}"
        )

    def as_dict(self) -> dict[str, Any]:
        score: dict[str, Any] = {"score": None} if self.score is None else self.score.as_dict()
        return {"backend": self.backend, **score, "qubits": self.layout, "reason": self.reason}


def rank(circuit: QuantumCircuit, names: list[str], spec: ExecutionSpec) -> list[Ranked]:
    """Every device of ``names``: those that hold ``circuit`` best first, each with its placement (the spec's level,
    seed and placement) and why it stands there, then those too small for it."""

    placed, small = [], []
    for name in names:
        backend = resolve_backend(name)
        if (backend.num_qubits or 0) < circuit.num_qubits:
            why = f"left out: it has {backend.num_qubits} qubits and the circuit needs {circuit.num_qubits}"
            small.append(Ranked(name, None, [], why))
            continue
        p = place(circuit, backend, spec.optimization_level, spec.seed_transpiler, spec.placement)
        placed.append(Ranked(name, p.score, p.layout))
    if not placed:
        raise QMAEError(f"no device among {', '.join(names)} has the {circuit.num_qubits} qubits the circuit needs")
    placed.sort(key=lambda r: _total(r.score))
    best = placed[0]
    out = [replace(best, reason="chosen: lowest expected error")]
    for r in placed[1:]:
        out.append(replace(r, reason=f"expected error {_total(r.score) - _total(best.score):.3f} above {best.backend}"))
    return out + small


def _total(score: ErrorScore | None) -> float:
    return math.inf if score is None else score.total


def choose(
    spec: ExecutionSpec, circuit: QuantumCircuit, say: Callable[[str], None] | None = None
) -> tuple[ExecutionSpec, Ranking]:
    """``spec`` on the device of lowest expected error for ``circuit``, and the ranking (told to ``say``)."""
    ranking = rank(circuit, candidates(spec.backend, say), spec)
    if say is not None:
        say(f"device ranking for the {circuit.num_qubits}-qubit circuit (lowest expected error first):")
        for r in ranking:
            say(r.line())
        say(f"chose {ranking[0].backend}")
    return spec.model_copy(update={"backend": ranking[0].backend}), [r.as_dict() for r in ranking]


def choose_for_run(
    spec: ExecutionSpec, run_dir: str | Path, say: Callable[[str], None] | None = None
) -> tuple[ExecutionSpec, Ranking | None]:
    """:func:`choose` for a trained run's fidelity circuit (the circuit that takes most of the QPU time); the spec
    itself, and no ranking, where its backend is one name."""
    if not is_choice(spec.backend):
        return spec, None

    tm = load_trained(Path(run_dir))
    loader = spec.loader if spec.loader is not None and not as_spec(spec.loader).is_exact else None
    kind = "swap-test" if spec.fidelity_circuit == "swap-test" else "inverse"
    circuit, _, _ = logical_circuits(tm, kind, loader)
    return choose(spec, circuit, say)


def with_chosen_device(
    spec: Any, run_dir: str | Path, say: Callable[[str], None] | None = None
) -> tuple[Any, Ranking | None]:
    """A spec that composes an :class:`ExecutionSpec` (a study's, a submission's) on the chosen device, and the
    ranking that chose it (None where the backend was one name)."""
    execution, ranking = choose_for_run(spec.execution, run_dir, say)
    return (spec if ranking is None else spec.model_copy(update={"execution": execution})), ranking


def refuse_choice(backend: str, command: str) -> None:
    """One line for a command that runs on one named device only."""
    if is_choice(backend):
        raise QMAEError(
            f"{command} runs on one device, and --backend {backend!r} names a choice; rank them first with "
            "`study noise RUN --backend LIST --dry-run` and pass the one chosen"
        )
