"""Backend resolution in one place: the ideal Aer simulator, offline fake backends, real IBM backends.

Every command that takes ``--backend NAME`` calls :func:`resolve_backend`, so a name means the same thing in
depth reports, noise models, calibration snapshots and job submission. Real backends come from
``QiskitRuntimeService()`` which reads a saved account or ``QISKIT_IBM_TOKEN`` / ``QISKIT_IBM_INSTANCE`` itself:
our code never holds the token, and :func:`redact` strips it from any error text we pass on.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from typing import Any

from qiskit.providers import BackendV2, Options
from qiskit.transpiler import Target
from qiskit_aer import AerSimulator

from qmae_qiskit.errors import QMAEError

AER_SIMULATOR = "aer_simulator"
TOKEN_ENV = "QISKIT_IBM_TOKEN"
INSTANCE_ENV = "QISKIT_IBM_INSTANCE"


@functools.lru_cache(maxsize=1)
def fake_backend_classes() -> dict[str, type]:
    """Short name (``fake_torino``) -> class, for every fake backend of ``qiskit_ibm_runtime.fake_provider``.

    Read from the classes' ``backend_name`` so nothing is instantiated (loading all snapshots is slow).
    """
    import qiskit_ibm_runtime.fake_provider as fp  # lazy: qiskit-ibm-runtime adds ~1.6 s
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2  # lazy: qiskit-ibm-runtime adds ~1.6 s

    out: dict[str, type] = {}
    for attr in dir(fp):
        cls = getattr(fp, attr)
        if isinstance(cls, type) and issubclass(cls, FakeBackendV2) and cls is not FakeBackendV2:
            name = getattr(cls, "backend_name", None)
            if isinstance(name, str):
                out[name] = cls
    return dict(sorted(out.items()))


class TargetBackend(BackendV2):
    """A backend that only carries a ``Target``: to transpile for, and to build a simulator or noise model from.
    It runs nothing; ``run`` says what to use instead (``cannot_run``)."""

    cannot_run = "this backend cannot run circuits"

    def __init__(self, target: Target, **kwargs: Any):
        super().__init__(**kwargs)
        self._target = target

    @property
    def target(self) -> Target:
        return self._target

    @property
    def max_circuits(self) -> None:
        return None

    @classmethod
    def _default_options(cls) -> Options:
        return Options()

    def run(self, run_input, **options):
        raise QMAEError(self.cannot_run)


def fake_backend_names() -> list[str]:
    return list(fake_backend_classes())


def is_fake_name(name: str) -> bool:
    return name == AER_SIMULATOR or name in fake_backend_classes()


def close_matches(name: str, candidates: list[str], n: int = 5) -> list[str]:
    """Close spellings of ``name`` (falls back to same-prefix names so a typo always gets a hint)."""
    hits = difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)
    if not hits:
        stem = name.split("_")[-1][:3]
        hits = [c for c in candidates if stem and stem in c][:n]
    return hits


def _unknown(name: str, candidates: list[str], where: str) -> QMAEError:
    hits = close_matches(name, candidates)
    hint = f"did you mean: {', '.join(hits)}?" if hits else f"known names: {', '.join(candidates[:12])}, ..."
    return QMAEError(f"unknown backend {name!r} ({where}); {hint}")


class NoAccountError(QMAEError):
    """No IBM Quantum account is saved or in the environment (a dry run can fall back to a fake backend)."""


def redact(text: str) -> str:
    """``text`` with the IBM token (if one is in the environment) and anything token-like replaced by ***."""
    token = os.environ.get(TOKEN_ENV)
    if token:
        text = text.replace(token, "***")
    return re.sub(r"(?i)(token|apikey|api_key)(['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+", r"\1\2***", text)


def runtime_service() -> Any:
    """A ``QiskitRuntimeService`` from the saved account or the environment; one clear line if there is none.

    Looked up as ``qiskit_ibm_runtime.QiskitRuntimeService`` at call time: that class is the network boundary,
    and tests replace exactly it.
    """
    import qiskit_ibm_runtime  # lazy: qiskit-ibm-runtime adds ~1.6 s

    try:
        return qiskit_ibm_runtime.QiskitRuntimeService()
    except Exception as exc:  # AccountNotFoundError, InvalidAccountError, network errors, ...
        kind = type(exc).__name__
        if "AccountNotFound" in kind or "No account" in str(exc) or "no default" in str(exc).lower():
            raise NoAccountError(
                f"no IBM Quantum account: set {TOKEN_ENV} (and {INSTANCE_ENV}) in the environment or save one with "
                "QiskitRuntimeService.save_account(...); offline, use a fake backend such as fake_torino"
            ) from None
        raise QMAEError(
            f"cannot connect to IBM Quantum ({kind}: {redact(str(exc))}); check the account and the "
            "network, or use a fake backend offline"
        ) from None


def resolve_backend(name: str) -> BackendV2:
    """``aer_simulator``, a fake backend short name, or a real IBM backend name -> a ``BackendV2``.

    A name starting with ``fake_`` is never sent to IBM, so a typo offline fails fast with close matches.
    """
    name = (name or "").strip()
    if not name:
        raise QMAEError("no backend given; pass --backend NAME (aer_simulator, fake_torino, ibm_torino, ...)")
    if name == AER_SIMULATOR:
        return AerSimulator()
    fakes = fake_backend_classes()
    if name in fakes:
        return fakes[name]()
    if name.startswith("fake_") or name.startswith("aer"):
        raise _unknown(name, [AER_SIMULATOR, *fakes], "not a fake backend of qiskit_ibm_runtime.fake_provider")
    service = runtime_service()
    try:
        return service.backend(name)
    except Exception as exc:
        if "NotFound" not in type(exc).__name__ and "not found" not in str(exc).lower():
            raise QMAEError(
                f"cannot get backend {name!r} from IBM Quantum ({type(exc).__name__}: {redact(str(exc))})"
            ) from None
        try:
            names = sorted(b.name for b in service.backends())
        except Exception:
            names = []
        raise _unknown(name, names, "not available to this IBM Quantum account") from None


def is_runtime_backend(backend: BackendV2) -> bool:
    """True for a backend of the IBM service (jobs run remotely), False for fake / Aer (local testing mode)."""
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2  # lazy: qiskit-ibm-runtime adds ~1.6 s

    return not isinstance(backend, (FakeBackendV2, AerSimulator)) and not getattr(backend, "is_snapshot", False)


def ensure_operational(backend: BackendV2, remote: bool | None = None) -> None:
    """Refuse an IBM backend that reports itself offline or paused (fake and Aer backends are always up).

    ``remote`` says whether the backend came from the IBM service (default: judged from its type).
    """
    if not (is_runtime_backend(backend) if remote is None else remote) or not hasattr(backend, "status"):
        return
    try:
        status = backend.status()
    except Exception as exc:
        raise QMAEError(f"cannot read the status of backend {backend.name!r} ({redact(str(exc))})") from None
    if not getattr(status, "operational", True):
        msg = getattr(status, "status_msg", "") or "not operational"
        raise QMAEError(f"backend {backend.name!r} is offline ({msg}); pick another backend or try later")


def ensure_fits(
    num_qubits: int,
    backend: BackendV2,
    what: str = "circuit",
    fix: str = "use a smaller --image-size or a larger backend",
) -> None:
    """A circuit wider than the backend fails here with the numbers and ``fix``, not deep inside the transpiler."""
    width = getattr(backend, "num_qubits", None)
    if width is not None and num_qubits > width:
        raise QMAEError(f"the {what} needs {num_qubits} qubits but backend {backend.name!r} has {width}; {fix}")


def dry_run_backend(name: str) -> tuple[str, str | None]:
    """The backend a dry run plans on, and a line saying so when it is not ``name``: an ``ibm_*`` name with no
    IBM Quantum account falls back to the fake backend of the same name (``ibm_torino`` -> ``fake_torino``),
    whose snapshot has that device's coupling map, gate set, durations and repetition delay."""

    if not name.startswith("ibm_"):
        return name, None
    try:
        runtime_service()
        return name, None
    except NoAccountError:
        fake = "fake_" + name.removeprefix("ibm_")
        if fake not in fake_backend_names():
            raise QMAEError(
                f"no IBM Quantum account and no fake backend {fake!r} to plan {name} on; save an account, "
                "or dry-run a fake device by name (e.g. --backend fake_torino)"
            ) from None
        return fake, f"no IBM Quantum account: planning on {fake}, the fake backend of {name} (its snapshot)"
