"""Backend resolution, the faked IBM boundary, noise models from names, transpiling helpers."""

from __future__ import annotations

import numpy as np
import pytest
import qiskit_ibm_runtime
from click.testing import CliRunner
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel
from qiskit_ibm_runtime.fake_provider import FakeGuadalupeV2, FakeManilaV2

from qmae_qiskit.cli import main
from qmae_qiskit.errors import QMAEError
from qmae_qiskit.hardware import backends, noise
from qmae_qiskit.hardware.transpile import map_observable, transpile_for

SECRET = "sentinel-token-0123456789abcdef"


class FakeService:
    """Stands in for the network boundary only: QiskitRuntimeService."""

    backends_by_name: dict = {}
    created = 0

    def __init__(self, *args, **kwargs):
        assert not args and not kwargs, "our code must let the runtime read the account itself"
        FakeService.created += 1

    def backend(self, name, **_):
        from qiskit.providers.exceptions import QiskitBackendNotFoundError

        if name not in self.backends_by_name:
            raise QiskitBackendNotFoundError("No backend matches the criteria.")
        return self.backends_by_name[name]

    def backends(self, **_):
        return list(self.backends_by_name.values())


class NamedGuadalupe(FakeGuadalupeV2):
    def __init__(self, name="ibm_guadalupe"):
        super().__init__()
        self.name = name


@pytest.fixture
def fake_service(monkeypatch):
    FakeService.backends_by_name = {"ibm_guadalupe": NamedGuadalupe(), "ibm_torino": NamedGuadalupe("ibm_torino")}
    FakeService.created = 0
    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", FakeService)
    monkeypatch.setenv("QISKIT_IBM_TOKEN", SECRET)
    return FakeService


def test_fake_names_come_from_the_provider():
    names = backends.fake_backend_names()
    assert {"fake_torino", "fake_fez", "fake_sherbrooke", "fake_manila"} <= set(names)
    b = backends.resolve_backend("fake_manila")
    assert isinstance(b, FakeManilaV2) and b.name == "fake_manila"
    assert isinstance(backends.resolve_backend("aer_simulator"), AerSimulator)


def test_unknown_fake_name_lists_close_matches_and_never_calls_ibm(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("a fake_ name must not reach IBM")

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", boom)
    with pytest.raises(QMAEError, match="did you mean: fake_torino"):
        backends.resolve_backend("fake_torinoo")


def test_real_backend_through_the_service(fake_service):
    b = backends.resolve_backend("ibm_guadalupe")
    assert b.name == "ibm_guadalupe" and fake_service.created == 1


def test_unknown_real_backend_lists_the_accounts_close_matches(fake_service):
    with pytest.raises(QMAEError, match="did you mean: ibm_torino"):
        backends.resolve_backend("ibm_torin")


def test_no_account_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # no saved account
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    monkeypatch.delenv("QISKIT_IBM_INSTANCE", raising=False)
    monkeypatch.setenv("QISKIT_IBM_ACCOUNT_FILE", str(tmp_path / "none.json"))
    with pytest.raises(QMAEError, match="no IBM Quantum account"):
        backends.resolve_backend("ibm_kingston")
    res = CliRunner().invoke(
        main, ["report", "depth", "--backend", "ibm_kingston", "--image-size", "4", "--out", str(tmp_path)]
    )
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "no IBM Quantum account" in res.output
    assert not list(tmp_path.glob("*.json"))


def test_connection_errors_never_show_the_token(monkeypatch):
    class Broken:
        def __init__(self):
            raise ConnectionError(f"401 for https://x/?token={SECRET}")

    monkeypatch.setenv("QISKIT_IBM_TOKEN", SECRET)
    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", Broken)
    with pytest.raises(QMAEError) as err:
        backends.resolve_backend("ibm_kingston")
    assert SECRET not in str(err.value) and "cannot connect" in str(err.value)


def test_offline_backend_is_refused(fake_service):
    class Offline(NamedGuadalupe):
        def status(self):
            from qiskit_ibm_runtime.models import BackendStatus

            return BackendStatus(self.name, "1", False, 0, "maintenance")

    FakeService.backends_by_name["ibm_offline"] = Offline("ibm_offline")
    b = backends.resolve_backend("ibm_offline")
    with pytest.raises(QMAEError, match="offline .*maintenance"):
        backends.ensure_operational(b, remote=True)
    backends.ensure_operational(backends.resolve_backend("ibm_guadalupe"), remote=True)


def test_circuit_wider_than_backend():
    qc = QuantumCircuit(6)
    with pytest.raises(QMAEError, match="needs 6 qubits but backend 'fake_manila' has 5"):
        transpile_for(qc, FakeManilaV2())


def test_mapped_observable_gives_the_same_expectation():
    """Independent check: statevector of the logical circuit vs of the ISA circuit with the mapped observable."""
    qc = QuantumCircuit(3)
    qc.ry(0.3, 0)
    qc.cx(0, 2)
    qc.ry(1.1, 1)
    qc.cx(1, 0)
    obs = SparsePauliOp("IIZ")  # Z on qubit 0
    isa = transpile_for(qc, FakeGuadalupeV2(), 3, seed=5)
    mapped = map_observable(obs, isa)
    assert mapped.num_qubits == 16
    want = Statevector(qc).expectation_value(obs).real
    got = Statevector(isa).expectation_value(mapped).real
    assert np.isclose(got, want, atol=1e-9)


def test_noise_model_from_name_equals_aers_own():
    assert noise.noise_model("fake_manila") == NoiseModel.from_backend(FakeManilaV2())
    with pytest.raises(QMAEError, match="noiseless"):
        noise.noise_model("aer_simulator")
    with pytest.raises(QMAEError, match="unknown backend"):
        noise.noise_model("fake_manilla")


def test_cli_on_a_real_backend_name_goes_through_the_service(fake_service, tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        main, ["report", "depth", "--backend", "ibm_guadalupe", "--image-size", "4", "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "ibm_guadalupe-O1-L4.json").is_file()
    res = runner.invoke(main, ["calibration", "snapshot", "--backend", "ibm_guadalupe", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    files = [f for f in tmp_path.rglob("*") if f.is_file()]
    assert len(files) == 3 and fake_service.created == 2
    for f in files:
        assert SECRET not in f.read_text()


def test_target_only_backends_carry_the_target_and_refuse_to_run_with_their_own_line():
    """The calibration snapshot's backend and the twin's compact backend share one base (backends.TargetBackend):
    each transpiles against the target it carries, and running says, in one line of its own, what to use."""
    from qmae_qiskit.hardware.calibration import SnapshotBackend, snapshot
    from qmae_qiskit.hardware.twin import CompactBackend, compact_target

    device = FakeManilaV2()
    snap_backend = SnapshotBackend(snapshot(device))
    compact = CompactBackend(compact_target(device.target, [0, 1]), "fake_manila-twin", [0, 1])
    assert set(snap_backend.target.operation_names) == set(device.target.operation_names)
    assert compact.target.num_qubits == 2 and compact.max_circuits is None
    assert compact.options.shots == 1024 and "shots" not in snap_backend.options
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    isa = transpile_for(qc, compact, seed=1)
    assert set(isa.count_ops()) <= set(compact.target.operation_names) | {"barrier"}
    with pytest.raises(QMAEError, match="calibration snapshot cannot run circuits; use it as --noise-model"):
        snap_backend.run(qc)
    with pytest.raises(QMAEError, match="compact twin backend cannot run circuits itself"):
        compact.run(qc)
